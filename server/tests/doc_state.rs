//! `DocState`, the server's per-document sync logic, driven without sockets.
//!
//! The property test runs four phones (plain `Automerge` replicas, each with its own
//! `sync::State` for the server) against one `DocState`, over per-link FIFO queues: a seeded RNG
//! picks which link delivers next, so interleavings vary while each link keeps its order. The
//! server is driven exactly as `DocActor` drives it: apply a batch, append `unsaved()` to an
//! in-memory store and `mark_saved`, only then send `outgoing()`. Phones edit, go offline and
//! come back on a new connection with fresh sync states on both sides; the server may restart
//! from its store. At every step, whatever heads the server advertises must already load from the
//! store ("stored before advertised"); at the end, once everyone is back and the links are quiet,
//! every phone, the server and the store agree on the heads.
//!
//! The unit tests below cover `doc-unavailable` for requests of an empty document and the
//! deduplication of ephemeral relays.

use std::collections::VecDeque;

use automerge::sync::{self, SyncDoc};
use automerge::transaction::Transactable;
use automerge::{Automerge, AutomergeError, ChangeHash, ObjType, ReadDoc, ROOT};
use labboard::document::{ConnId, DocState, SyncKind};
use labboard::ingest::Writer;
use labboard_protocol::{DocumentId, Message, PeerId};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Phones in the simulated classroom.
const PHONES: usize = 4;

/// Most commands the simulated actor applies in one batch before persisting and replying. The
/// real actor takes up to 64; a few suffice to mix several phones' messages in one batch.
const MAX_SIM_BATCH: usize = 3;

/// Deliveries after which a settling network is declared stuck. Settling a run of at most 120
/// operations takes a few hundred.
const MAX_SETTLE_DELIVERIES: usize = 100_000;

fn server_peer() -> PeerId {
    PeerId::from("labboard-test-server")
}

/// One local edit on a phone's board.
#[derive(Debug, Clone)]
enum Edit {
    PutNote {
        key: u8,
        text: String,
    },
    DeleteNote {
        key: u8,
    },
    /// Inserts at `at` modulo the text length plus one.
    InsertText {
        at: usize,
        text: String,
    },
    /// Deletes up to `len` characters from `at` modulo the text length.
    DeleteText {
        at: usize,
        len: usize,
    },
}

/// One step of a simulated lesson.
#[derive(Debug, Clone)]
enum Op {
    Edit(usize, Edit),
    /// Delivers up to this many queued messages, each on a link the RNG picks.
    Deliver(usize),
    /// The phone's connection drops: whatever is in flight either way is lost.
    Disconnect(usize),
    /// The phone comes back on a new connection (no-op if it is online).
    Reconnect(usize),
    /// The server is killed between two batches and reloads the document from its store; every
    /// connection drops.
    RestartServer,
}

fn arb_edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        3 => (0..6u8, "[a-z ]{0,12}").prop_map(|(key, text)| Edit::PutNote { key, text }),
        1 => (0..6u8).prop_map(|key| Edit::DeleteNote { key }),
        3 => (any::<usize>(), "[a-z ]{1,8}").prop_map(|(at, text)| Edit::InsertText { at, text }),
        1 => (any::<usize>(), 1..5usize).prop_map(|(at, len)| Edit::DeleteText { at, len }),
    ]
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0..PHONES, arb_edit()).prop_map(|(phone, edit)| Op::Edit(phone, edit)),
        8 => (1..8usize).prop_map(Op::Deliver),
        2 => (0..PHONES).prop_map(Op::Disconnect),
        2 => (0..PHONES).prop_map(Op::Reconnect),
        1 => Just(Op::RestartServer),
    ]
}

/// The object under `key` at the root, created if missing. Two phones may create it
/// concurrently; Automerge then picks the same winner everywhere.
fn root_object(
    tx: &mut automerge::transaction::Transaction<'_>,
    key: &str,
    kind: ObjType,
) -> Result<automerge::ObjId, AutomergeError> {
    match tx.get(ROOT, key)? {
        Some((automerge::Value::Object(found), id)) if found == kind => Ok(id),
        _ => tx.put_object(ROOT, key, kind),
    }
}

fn apply_edit(doc: &mut Automerge, edit: &Edit) {
    doc.transact::<_, _, AutomergeError>(|tx| {
        let notes = root_object(tx, "notes", ObjType::Map)?;
        let text = root_object(tx, "text", ObjType::Text)?;
        match edit {
            Edit::PutNote { key, text } => tx.put(&notes, format!("n{key}"), text.as_str())?,
            Edit::DeleteNote { key } => {
                if tx.get(&notes, format!("n{key}"))?.is_some() {
                    tx.delete(&notes, format!("n{key}"))?;
                }
            }
            Edit::InsertText { at, text: insert } => {
                let at = at % (tx.length(&text) + 1);
                tx.splice_text(&text, at, 0, insert)?;
            }
            Edit::DeleteText { at, len } => {
                let length = tx.length(&text);
                if length > 0 {
                    let at = at % length;
                    let len = (*len).min(length - at);
                    tx.splice_text(&text, at, len as isize, "")?;
                }
            }
        }
        Ok(())
    })
    .expect("edits on a well-formed board succeed");
}

/// One phone and both directions of its link to the server.
///
/// A phone without the board asks for it with `request`, one with it offers it with `sync`. Any
/// phone may edit at any time: one that asked and then makes the board itself must still get it
/// onto the server, and two phones that make it concurrently must converge.
struct Phone {
    peer_id: PeerId,
    doc: Automerge,
    /// This phone's sync state for the server; fresh on every connection.
    sync: sync::State,
    /// The server's id for our current connection; `None` while offline.
    conn: Option<ConnId>,
    /// Phone -> server: the encoded automerge sync message and whether it went as `request`.
    up: VecDeque<(SyncKind, Vec<u8>)>,
    /// Server -> phone.
    down: VecDeque<Message>,
}

impl Phone {
    fn has_doc(&self) -> bool {
        !self.doc.get_heads().is_empty()
    }

    /// Generates our next sync message, if any, and queues it for the server. A phone without
    /// the document asks with `request`, as automerge-repo does.
    fn send_sync(&mut self) {
        if self.conn.is_none() {
            return;
        }
        if let Some(message) = self.doc.generate_sync_message(&mut self.sync) {
            let kind = if !self.has_doc() {
                SyncKind::Request
            } else {
                SyncKind::Sync
            };
            self.up.push_back((kind, message.encode()));
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Link {
    Up(usize),
    Down(usize),
}

/// Four phones and one `DocState` with its store, connected by in-order queues.
struct SimNetwork {
    doc_id: DocumentId,
    server: DocState,
    /// The in-memory storage: chunks appended in order, as `Storage::append` does.
    store: Vec<Vec<u8>>,
    /// `store` replayed chunk by chunk, so that advertised heads can be checked cheaply.
    stored: Automerge,
    phones: Vec<Phone>,
    next_conn: ConnId,
    rng: StdRng,
}

impl SimNetwork {
    fn new(phones: usize, seed: u64) -> Self {
        let doc_id = DocumentId::random();
        let mut net = Self {
            doc_id,
            server: DocState::new(doc_id, server_peer()),
            store: Vec::new(),
            stored: Automerge::new(),
            phones: (0..phones)
                .map(|i| Phone {
                    peer_id: PeerId::new(format!("phone-{i}")),
                    doc: Automerge::new(),
                    sync: sync::State::new(),
                    conn: None,
                    up: VecDeque::new(),
                    down: VecDeque::new(),
                })
                .collect(),
            next_conn: 1,
            rng: StdRng::seed_from_u64(seed),
        };
        for phone in 0..phones {
            net.reconnect(phone);
        }
        net
    }

    fn run(&mut self, op: &Op) {
        match op {
            Op::Edit(phone, edit) => self.edit(*phone, edit),
            Op::Deliver(count) => self.deliver_some(*count),
            Op::Disconnect(phone) => self.disconnect(*phone),
            Op::Reconnect(phone) => self.reconnect(*phone),
            Op::RestartServer => self.restart_server(),
        }
    }

    fn edit(&mut self, phone: usize, edit: &Edit) {
        let phone = &mut self.phones[phone];
        apply_edit(&mut phone.doc, edit);
        phone.send_sync();
    }

    fn disconnect(&mut self, phone: usize) {
        let phone = &mut self.phones[phone];
        if let Some(conn) = phone.conn.take() {
            // False if none of this connection's messages reached the server; fine either way.
            self.server.detach(conn);
            assert!(!self.server.is_attached(conn));
        }
        phone.up.clear();
        phone.down.clear();
    }

    /// A new connection: fresh sync states on both sides, and the phone speaks first.
    fn reconnect(&mut self, phone: usize) {
        let phone = &mut self.phones[phone];
        if phone.conn.is_some() {
            return;
        }
        phone.conn = Some(self.next_conn);
        self.next_conn += 1;
        phone.sync = sync::State::new();
        phone.send_sync();
    }

    /// `kill -9` between two batches: the document comes back from the store alone.
    fn restart_server(&mut self) {
        for phone in 0..self.phones.len() {
            self.disconnect(phone);
        }
        self.server = DocState::load(self.doc_id, server_peer(), &self.store.concat())
            .expect("the store always loads");
        assert_eq!(
            self.server.doc().get_heads(),
            self.stored.get_heads(),
            "the restarted server lost stored changes"
        );
    }

    fn busy_links(&self) -> Vec<Link> {
        let mut links = Vec::new();
        for (i, phone) in self.phones.iter().enumerate() {
            if !phone.up.is_empty() {
                links.push(Link::Up(i));
            }
            if !phone.down.is_empty() {
                links.push(Link::Down(i));
            }
        }
        links
    }

    /// Delivers up to `count` messages, fewer if the links fall quiet.
    fn deliver_some(&mut self, count: usize) {
        for _ in 0..count {
            if !self.deliver_one() {
                return;
            }
        }
    }

    /// Delivers the next message of one busy link; false if every link is quiet.
    fn deliver_one(&mut self) -> bool {
        let links = self.busy_links();
        if links.is_empty() {
            return false;
        }
        match links[self.rng.random_range(0..links.len())] {
            Link::Up(phone) => self.server_batch(phone),
            Link::Down(phone) => self.phone_receives(phone),
        }
        true
    }

    /// The actor's loop body: apply a batch (the first command from `first`, then a few more
    /// from whichever links the RNG picks), persist, and only then reply.
    fn server_batch(&mut self, first: usize) {
        let extra = self.rng.random_range(0..MAX_SIM_BATCH);
        let mut from = first;
        for _ in 0..=extra {
            let phone = &mut self.phones[from];
            let (kind, bytes) = phone.up.pop_front().expect("picked a busy link");
            let conn = phone.conn.expect("an online phone has a connection");
            let message = sync::Message::decode(&bytes).expect("phones send valid messages");
            self.server
                .receive(
                    conn,
                    phone.peer_id.clone(),
                    &Writer::server(),
                    kind,
                    message,
                )
                .expect("the server accepts valid sync messages");
            let busy: Vec<usize> = (0..self.phones.len())
                .filter(|&i| !self.phones[i].up.is_empty())
                .collect();
            if busy.is_empty() {
                break;
            }
            from = busy[self.rng.random_range(0..busy.len())];
        }
        self.persist();
        self.reply();
    }

    fn persist(&mut self) {
        let Some((chunk, heads)) = self.server.unsaved() else {
            return;
        };
        self.stored
            .load_incremental(&chunk)
            .expect("an unsaved chunk loads on top of the store");
        assert_eq!(
            self.stored.get_heads(),
            heads,
            "the unsaved chunk does not bring the store to the heads it claims"
        );
        self.store.push(chunk);
        self.server.mark_saved(heads);
        assert!(
            self.server.unsaved().is_none(),
            "still unsaved after saving"
        );
    }

    fn reply(&mut self) {
        for (conn, message) in self.server.outgoing() {
            let phone = self
                .phones
                .iter_mut()
                .find(|phone| phone.conn == Some(conn))
                .unwrap_or_else(|| panic!("message for connection {conn}, which is gone"));
            match &message {
                Message::Sync {
                    sender_id,
                    target_id,
                    document_id,
                    data,
                } => {
                    assert_eq!(*sender_id, server_peer());
                    assert_eq!(*target_id, phone.peer_id);
                    assert_eq!(*document_id, self.doc_id);
                    let decoded = sync::Message::decode(data).expect("server sends valid sync");
                    let unstored: Vec<&ChangeHash> = decoded
                        .heads
                        .iter()
                        .filter(|head| self.stored.get_change_by_hash(head).is_none())
                        .collect();
                    assert!(
                        unstored.is_empty(),
                        "advertised heads {unstored:?} before storing them"
                    );
                }
                Message::DocUnavailable {
                    target_id,
                    document_id,
                    ..
                } => {
                    assert_eq!(*target_id, phone.peer_id);
                    assert_eq!(*document_id, self.doc_id);
                    assert!(
                        !self.server.exists(),
                        "doc-unavailable for a document the server has"
                    );
                }
                other => panic!("unexpected message from the server: {other:?}"),
            }
            phone.down.push_back(message);
        }
    }

    fn phone_receives(&mut self, phone: usize) {
        let phone = &mut self.phones[phone];
        match phone.down.pop_front().expect("picked a busy link") {
            Message::Sync { data, .. } => {
                let message = sync::Message::decode(&data).expect("checked when sent");
                phone
                    .doc
                    .receive_sync_message(&mut phone.sync, message)
                    .expect("phones accept the server's sync messages");
                phone.send_sync();
            }
            // automerge-repo keeps listening after `doc-unavailable`; so does our phone.
            Message::DocUnavailable { .. } => {}
            other => panic!("unexpected message from the server: {other:?}"),
        }
    }

    fn reconnect_all_and_settle(&mut self) {
        for phone in 0..self.phones.len() {
            self.reconnect(phone);
        }
        let mut delivered = 0;
        while self.deliver_one() {
            delivered += 1;
            assert!(
                delivered < MAX_SETTLE_DELIVERIES,
                "the network did not settle after {delivered} deliveries"
            );
        }
    }

    fn server_heads(&self) -> Vec<ChangeHash> {
        self.server.doc().get_heads()
    }

    fn phone_heads(&self) -> Vec<Vec<ChangeHash>> {
        self.phones.iter().map(|p| p.doc.get_heads()).collect()
    }

    /// What a server restarted now would load.
    fn loaded_heads(&self) -> Vec<ChangeHash> {
        DocState::load(self.doc_id, server_peer(), &self.store.concat())
            .expect("the store loads")
            .doc()
            .get_heads()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn replicas_converge_and_the_store_keeps_up(
        ops in prop::collection::vec(arb_op(), 1..120),
        seed: u64,
    ) {
        let mut net = SimNetwork::new(PHONES, seed);
        for op in &ops {
            net.run(op);
        }
        net.reconnect_all_and_settle();

        let server = net.server_heads();
        for (i, heads) in net.phone_heads().iter().enumerate() {
            prop_assert_eq!(heads, &server, "phone {} diverged from the server", i);
        }
        prop_assert!(net.server.unsaved().is_none());
        prop_assert_eq!(net.loaded_heads(), server, "the store lags the server");
        // Whatever a phone made reached the server.
        let edited = ops.iter().any(|op| matches!(op, Op::Edit(..)));
        prop_assert_eq!(net.server.exists(), edited);
    }
}

// --- unit tests ---------------------------------------------------------------------------

/// A phone-side replica with its sync state, for the hand-driven tests below.
struct Replica {
    doc: Automerge,
    sync: sync::State,
}

impl Replica {
    fn new(doc: Automerge) -> Self {
        Self {
            doc,
            sync: sync::State::new(),
        }
    }

    fn message(&mut self) -> sync::Message {
        self.doc
            .generate_sync_message(&mut self.sync)
            .expect("a sync message to send")
    }

    fn receive(&mut self, message: &Message) {
        let Message::Sync { data, .. } = message else {
            panic!("expected sync, got {message:?}");
        };
        let message = sync::Message::decode(data).unwrap();
        self.doc
            .receive_sync_message(&mut self.sync, message)
            .unwrap();
    }
}

fn board() -> Automerge {
    let mut doc = Automerge::new();
    apply_edit(
        &mut doc,
        &Edit::PutNote {
            key: 1,
            text: "first".into(),
        },
    );
    doc
}

/// Persists as the actor does, then returns what the server sends.
fn persist_and_reply(state: &mut DocState) -> Vec<(ConnId, Message)> {
    if let Some((_chunk, heads)) = state.unsaved() {
        state.mark_saved(heads);
    }
    state.outgoing()
}

#[test]
fn a_request_for_an_empty_document_gets_one_doc_unavailable_and_then_the_document() {
    let doc_id = DocumentId::random();
    let mut state = DocState::new(doc_id, server_peer());
    let mut asker = Replica::new(Automerge::new());
    state
        .receive(
            1,
            PeerId::from("asker"),
            &Writer::server(),
            SyncKind::Request,
            asker.message(),
        )
        .unwrap();
    assert!(state.unsaved().is_none());
    let out = state.outgoing();
    assert_eq!(
        out,
        vec![(
            1,
            Message::DocUnavailable {
                sender_id: server_peer(),
                target_id: PeerId::from("asker"),
                document_id: doc_id,
            }
        )]
    );
    assert!(state.outgoing().is_empty(), "told twice, or sent a sync");

    // Another phone uploads the document. Until its changes are stored, nobody hears of them,
    // and the asker hears nothing at all while the server is still empty.
    let mut author = Replica::new(board());
    state
        .receive(
            2,
            PeerId::from("author"),
            &Writer::server(),
            SyncKind::Sync,
            author.message(),
        )
        .unwrap();
    let out = persist_and_reply(&mut state);
    assert!(out.iter().all(|(conn, _)| *conn == 2), "{out:?}");
    assert!(!state.exists());
    author.receive(&out[0].1);
    state
        .receive(
            2,
            PeerId::from("author"),
            &Writer::server(),
            SyncKind::Sync,
            author.message(),
        )
        .unwrap();
    assert!(state.exists());
    assert!(state.outgoing().is_empty(), "advertised unsaved heads");

    let out = persist_and_reply(&mut state);
    let to_asker: Vec<&Message> = out
        .iter()
        .filter(|(conn, _)| *conn == 1)
        .map(|(_, m)| m)
        .collect();
    assert_eq!(to_asker.len(), 1, "{out:?}");
    assert!(matches!(to_asker[0], Message::Sync { .. }));
    asker.receive(to_asker[0]);
    assert_eq!(asker.doc.get_heads(), author.doc.get_heads());
}

#[test]
fn a_request_for_an_existing_document_gets_it_without_doc_unavailable() {
    let doc_id = DocumentId::random();
    let stored = board();
    let mut state = DocState::load(doc_id, server_peer(), &stored.save()).unwrap();
    let mut asker = Replica::new(Automerge::new());
    state
        .receive(
            1,
            PeerId::from("asker"),
            &Writer::server(),
            SyncKind::Request,
            asker.message(),
        )
        .unwrap();
    let out = persist_and_reply(&mut state);
    assert_eq!(out.len(), 1, "{out:?}");
    asker.receive(&out[0].1);
    assert_eq!(asker.doc.get_heads(), stored.get_heads());
}

fn ephemeral_targets(out: &[(ConnId, Message)]) -> Vec<ConnId> {
    out.iter()
        .map(|(conn, message)| {
            assert!(matches!(message, Message::Ephemeral { .. }), "{message:?}");
            *conn
        })
        .collect()
}

#[test]
fn ephemeral_messages_are_relayed_once_and_never_back_to_their_author() {
    let mut state = DocState::new(DocumentId::random(), server_peer());
    let alice = PeerId::from("alice");
    state.attach(1, alice.clone(), Writer::server());
    state.attach(2, PeerId::from("bob"), Writer::server());
    state.attach(3, PeerId::from("carol"), Writer::server());
    // Alice's second tab, or her stale connection before the server noticed the new one.
    state.attach(4, alice.clone(), Writer::server());
    let mut relay = |from: ConnId, sender: &PeerId, session: &str, count: u64| {
        ephemeral_targets(&state.relay_ephemeral(
            from,
            sender.clone(),
            session.into(),
            count,
            b"cursor".to_vec(),
        ))
    };

    assert_eq!(relay(1, &alice, "s1", 1), vec![2, 3]);
    assert_eq!(
        relay(1, &alice, "s1", 1),
        Vec::<ConnId>::new(),
        "relayed twice"
    );
    // Bob's client echoes the relay back: already seen.
    assert_eq!(relay(2, &alice, "s1", 1), Vec::<ConnId>::new());
    assert_eq!(relay(1, &alice, "s1", 3), vec![2, 3]);
    assert_eq!(
        relay(1, &alice, "s1", 2),
        Vec::<ConnId>::new(),
        "older count"
    );
    // An echo under alice's id from another connection is not relayed: a phone speaks only
    // for itself.
    assert_eq!(relay(3, &alice, "s1", 4), Vec::<ConnId>::new());
    assert_eq!(relay(4, &alice, "s1", 4), vec![2, 3]);
    // A counter pushed far ahead, which would make her later messages look old, is dropped.
    assert_eq!(relay(1, &alice, "s1", 1 << 53), Vec::<ConnId>::new());
    assert_eq!(relay(1, &alice, "s1", 5), vec![2, 3]);
    // Counts are per session and per author.
    assert_eq!(relay(1, &alice, "s2", 1), vec![2, 3]);
    let bob = PeerId::from("bob");
    assert_eq!(relay(2, &bob, "s1", 1), vec![1, 3, 4]);
}

#[test]
fn ephemeral_messages_skip_detached_connections() {
    let mut state = DocState::new(DocumentId::random(), server_peer());
    state.attach(1, PeerId::from("alice"), Writer::server());
    state.attach(2, PeerId::from("bob"), Writer::server());
    state.attach(3, PeerId::from("carol"), Writer::server());
    assert!(state.detach(3));
    let out = state.relay_ephemeral(1, PeerId::from("alice"), "s".into(), 1, b"x".to_vec());
    assert_eq!(ephemeral_targets(&out), vec![2]);
    let Message::Ephemeral {
        sender_id,
        target_id,
        count,
        session_id,
        data,
        ..
    } = &out[0].1
    else {
        unreachable!("checked above");
    };
    assert_eq!(
        (sender_id, target_id, *count, session_id.as_str(), &data[..]),
        (
            &PeerId::from("alice"),
            &PeerId::from("bob"),
            1,
            "s",
            &b"x"[..]
        )
    );
}

/// Exchanges messages between one replica and the server, persisting as the actor does, until
/// neither side has anything to say.
fn sync_until_quiet(state: &mut DocState, conn: ConnId, peer: &PeerId, replica: &mut Replica) {
    for _ in 0..20 {
        let mut quiet = true;
        if let Some(message) = replica.doc.generate_sync_message(&mut replica.sync) {
            quiet = false;
            state
                .receive(
                    conn,
                    peer.clone(),
                    &Writer::server(),
                    SyncKind::Sync,
                    message,
                )
                .unwrap();
        }
        for (to, message) in persist_and_reply(state) {
            if to == conn {
                if let Message::Sync { .. } = message {
                    quiet = false;
                    replica.receive(&message);
                }
            }
        }
        if quiet {
            return;
        }
    }
    panic!("no quiet after 20 rounds");
}

/// A phone asks for a board the server lacks (`doc-unavailable`), then gets the board by other
/// means (it creates it, or its own storage finishes loading) and offers it on the same
/// connection. The Rust client does exactly this for `find` -> `Unavailable` ->
/// `create_with_id` on one connection.
#[test]
fn a_peer_that_asked_for_an_empty_document_can_then_upload_it() {
    let mut state = DocState::new(DocumentId::random(), server_peer());
    let phone = PeerId::from("phone");
    let mut replica = Replica::new(Automerge::new());
    state
        .receive(
            1,
            phone.clone(),
            &Writer::server(),
            SyncKind::Request,
            replica.message(),
        )
        .unwrap();
    let out = persist_and_reply(&mut state);
    assert!(
        matches!(&out[..], [(1, Message::DocUnavailable { .. })]),
        "{out:?}"
    );

    replica.doc = board();
    sync_until_quiet(&mut state, 1, &phone, &mut replica);
    assert_eq!(
        state.doc().get_heads(),
        replica.doc.get_heads(),
        "the server never asked for the changes the phone offered"
    );
}

/// Phone A's change crosses the server's relay of B's change, and A's two messages (its change,
/// then its answer to the relay, which carries no changes) reach the server in one batch. The
/// server must still acknowledge A's change: automerge takes a change-less message whose heads
/// equal ours as proof that the peer knows we are in sync, which is only true if the server
/// answered the message before it. Found by the load generator, where such a phone kept its
/// last note "waiting" for good.
#[test]
fn a_change_that_crosses_a_relay_is_still_acknowledged_when_batched() {
    // The case needs A's answer to the relay to carry no changes. Whether it does depends on
    // automerge's Bloom filter over change hashes, which differ at every run (random actors,
    // times): now and then A sends its change again, which is another case. So the case is set
    // up afresh until it occurs; each time it does, the server must acknowledge A's change.
    assert!(
        (0..20).any(|_| crossing_change_is_acknowledged()),
        "A's answer to the relay never came without changes"
    );
}

/// One try of the case above: false when A's answer happened to carry changes; panics when the
/// server failed to acknowledge A's change.
fn crossing_change_is_acknowledged() -> bool {
    let doc_id = DocumentId::random();
    let stored = board();
    let mut state = DocState::load(doc_id, server_peer(), &stored.save()).unwrap();
    let (peer_a, peer_b) = (PeerId::from("a"), PeerId::from("b"));
    let mut a = Replica::new(Automerge::new());
    let mut b = Replica::new(Automerge::new());
    sync_until_quiet(&mut state, 1, &peer_a, &mut a);
    sync_until_quiet(&mut state, 2, &peer_b, &mut b);

    // A writes c1 and sends it; B writes b1, which the server stores and relays to A first.
    apply_edit(
        &mut a.doc,
        &Edit::PutNote {
            key: 2,
            text: "c1".into(),
        },
    );
    let with_c1 = a.message();
    apply_edit(
        &mut b.doc,
        &Edit::PutNote {
            key: 3,
            text: "b1".into(),
        },
    );
    let with_b1 = b.message();
    state
        .receive(
            2,
            peer_b.clone(),
            &Writer::server(),
            SyncKind::Sync,
            with_b1,
        )
        .unwrap();
    let relay: Vec<Message> = persist_and_reply(&mut state)
        .into_iter()
        .filter(|(to, _)| *to == 1)
        .map(|(_, message)| message)
        .collect();
    assert_eq!(relay.len(), 1, "B's change is relayed to A");
    a.receive(&relay[0]);
    let answer = a.message();
    if !answer.changes.is_empty() {
        return false;
    }

    // Both of A's messages in one batch.
    state
        .receive(
            1,
            peer_a.clone(),
            &Writer::server(),
            SyncKind::Sync,
            with_c1,
        )
        .unwrap();
    state
        .receive(1, peer_a.clone(), &Writer::server(), SyncKind::Sync, answer)
        .unwrap();
    for (to, message) in persist_and_reply(&mut state) {
        if to == 1 {
            a.receive(&message);
        }
    }
    sync_until_quiet(&mut state, 1, &peer_a, &mut a);

    let mut acknowledged = a.sync.their_heads.clone().unwrap_or_default();
    acknowledged.sort();
    assert_eq!(a.doc.get_heads(), state.doc().get_heads());
    assert_eq!(
        acknowledged,
        a.doc.get_heads(),
        "the server never told A it has A's change"
    );
    true
}
