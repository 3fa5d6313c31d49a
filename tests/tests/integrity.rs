//! No lab member can break, crash or wipe the lab's board. Each attack comes through a real
//! socket with a real observer token of the lab, as anyone in the room could get one from the
//! projected join code. After each: the attacker got an `error`, a bystander phone kept syncing,
//! and a fresh phone loads the whole board, before and after a restart.

use std::num::NonZeroU64;

use automerge::legacy::{ObjectId, OpId};
use automerge::sync::{self, SyncDoc};
use automerge::transaction::{Transactable, Transaction};
use automerge::{ActorId, Automerge, Change, ExpandedChange, ObjType, ReadDoc, ROOT};
use labboard::storage::{SqliteStorage, Storage};
use labboard_protocol::client::{Client, DocHandle};
use labboard_protocol::{Message, PeerId};
use labboard_tests::{within, Joined, Lab, RawPeer, TestServer};

/// A phone of the lab: its client, its copy of the board and who it is.
struct Phone {
    client: Client,
    doc: DocHandle,
    author_id: String,
}

impl Phone {
    async fn observer(server: &TestServer, lab: &Lab, name: &str) -> Self {
        let joined = server
            .joined(&lab.join_code, name, &format!("key of {name}"))
            .await;
        Self::connect(server, lab, name, joined).await
    }

    async fn facilitator(server: &TestServer, lab: &Lab) -> Self {
        let token = server.facilitate(lab).await;
        let joined = Joined {
            token,
            author_id: String::new(),
        };
        Self::connect(server, lab, "facilitator", joined).await
    }

    async fn connect(server: &TestServer, lab: &Lab, name: &str, joined: Joined) -> Self {
        let client = within(
            "phone connects",
            Client::connect(&server.sync_url(&joined.token), PeerId::from(name)),
        )
        .await
        .expect("the token opens a socket");
        let doc = within("phone finds the board", client.find(lab.doc_id))
            .await
            .expect("the board is there");
        Self {
            client,
            doc,
            author_id: joined.author_id,
        }
    }

    /// Writes a note as the web client does, and waits until the server acknowledged it.
    async fn note(&self, id: &str, text: &str) {
        let author = self.author_id.clone();
        self.doc.change(|tx| {
            let notes = tx.get(ROOT, "notes").unwrap().unwrap().1;
            let note = tx.put_object(&notes, id, ObjType::Map).unwrap();
            tx.put(&note, "text", text).unwrap();
            tx.put(&note, "authorId", author.as_str()).unwrap();
            tx.put(&note, "category", "strategies").unwrap();
            tx.put_object(&note, "children", ObjType::List).unwrap();
            tx.put_object(&note, "reactions", ObjType::Map).unwrap();
        });
        within("the note is acknowledged", self.doc.wait_synced())
            .await
            .expect("the phone's connection stays open");
    }
}

fn note_ids(doc: &Automerge) -> Vec<String> {
    let notes = doc.get(ROOT, "notes").unwrap().unwrap().1;
    doc.keys(&notes).collect()
}

/// A lab with two honest phones that wrote a note each.
struct Scene {
    server: TestServer,
    lab: Lab,
    bystander: Phone,
}

impl Scene {
    async fn new() -> Self {
        let server = TestServer::start().await;
        let lab = server.create_lab("Making ten").await;
        let ana = Phone::observer(&server, &lab, "ana").await;
        ana.note("n-ana", "T. counted on from 7").await;
        let bystander = Phone::observer(&server, &lab, "ben").await;
        bystander.note("n-ben", "M. drew a ten frame").await;
        ana.client.close().await;
        Self {
            server,
            lab,
            bystander,
        }
    }

    /// An attacker's raw connection with an observer token of the lab.
    async fn attacker(&self, name: &str) -> (RawPeer, PeerId) {
        let joined = self
            .server
            .joined(&self.lab.join_code, name, "attacker")
            .await;
        let (raw, server_peer) = within(
            "attacker joins",
            RawPeer::joined(&self.server.sync_url(&joined.token), name),
        )
        .await
        .unwrap();
        (raw, server_peer)
    }

    /// Sends `changes` as one sync message from a raw peer and returns the `error` it gets.
    async fn send_changes(&self, changes: &[Change], name: &str) -> String {
        let (mut raw, server_peer) = self.attacker(name).await;
        let board = self.bystander.doc.fork();
        let mut heads = board.get_heads();
        heads.extend(changes.iter().map(Change::hash));
        heads.sort();
        let message = sync::Message {
            heads,
            need: Vec::new(),
            have: Vec::new(),
            changes: sync::ChunkList::from(
                changes
                    .iter()
                    .map(|c| c.raw_bytes().to_vec())
                    .collect::<Vec<_>>(),
            ),
            flags: None,
            version: sync::MessageVersion::V1,
        };
        raw.send(&Message::Sync {
            sender_id: PeerId::from(name),
            target_id: server_peer,
            document_id: self.lab.doc_id,
            data: message.encode(),
        })
        .await
        .unwrap();
        let closed = raw.closed().await;
        match closed.error {
            Some(error) => error,
            None => panic!("no error before the close: {:?}", closed.code),
        }
    }

    /// The bystander still syncs, a fresh phone loads the board with every honest note, and
    /// so does one after a restart.
    async fn assert_board_intact(self, extra_notes: &[&str]) {
        let Self {
            server,
            lab,
            bystander,
        } = self;
        let mut expected: Vec<String> = ["n-ana", "n-ben", "n-after"]
            .iter()
            .chain(extra_notes)
            .map(|s| (*s).to_owned())
            .collect();
        expected.sort();
        bystander.note("n-after", "after the attack").await;
        let fresh = Phone::observer(&server, &lab, "fresh").await;
        let mut seen = fresh.doc.with_doc(note_ids);
        seen.sort();
        assert_eq!(seen, expected, "a fresh phone sees every honest note");
        let heads = bystander.doc.heads();
        assert_eq!(fresh.doc.heads(), heads);
        fresh.client.close().await;
        bystander.client.close().await;

        let dir = server.stop().await;
        let server = TestServer::start_in(dir, |_| {}).await;
        let after = Phone::observer(&server, &lab, "after-restart").await;
        assert_eq!(
            after.doc.heads(),
            heads,
            "the board reloads to the same heads"
        );
        let mut seen = after.doc.with_doc(note_ids);
        seen.sort();
        assert_eq!(seen, expected);
        after.client.close().await;
        server.stop().await;
    }
}

/// A change of a fork of `doc` made by `edit`.
fn change_of(doc: &Automerge, edit: impl FnOnce(&mut Transaction<'_>)) -> Change {
    let mut fork = doc.fork();
    let mut tx = fork.transaction();
    edit(&mut tx);
    tx.commit();
    fork.get_last_local_change().unwrap().clone()
}

/// Re-encodes a change after `edit` changed its fields, as a hand-made client could.
fn crafted(change: &Change, edit: impl FnOnce(&mut ExpandedChange)) -> Change {
    let mut expanded = change.decode();
    expanded.hash = None;
    edit(&mut expanded);
    Change::from(expanded)
}

fn add_scalar_note(tx: &mut Transaction<'_>) {
    let notes = tx.get(ROOT, "notes").unwrap().unwrap().1;
    tx.put(&notes, "n-evil", "evil").unwrap();
}

#[tokio::test]
async fn a_change_that_would_make_the_board_unloadable_is_refused() {
    let scene = Scene::new().await;
    let board = scene.bystander.doc.fork();
    let honest = change_of(&board, add_scalar_note);
    // A new actor, seq 1, start_op equal to the board's max op instead of max + 1.
    let bad = crafted(&honest, |c| {
        c.actor_id = ActorId::random();
        c.seq = 1;
        c.start_op = NonZeroU64::new(honest.start_op().get() - 1).unwrap();
    });
    let error = scene.send_changes(&[bad], "eve").await;
    assert!(error.contains("start_op"), "{error}");
    scene.assert_board_intact(&[]).await;
}

#[tokio::test]
async fn a_second_change_with_a_used_seq_is_refused() {
    let scene = Scene::new().await;
    let board = scene.bystander.doc.fork();
    let honest = change_of(&board, add_scalar_note);
    // Two changes of one actor with seq 1: the stored board would reload to other heads.
    let twin = crafted(&honest, |c| c.time += 1);
    let error = scene.send_changes(&[honest, twin], "eve").await;
    assert!(error.contains("seq"), "{error}");
    scene.assert_board_intact(&[]).await;
}

#[tokio::test]
async fn an_op_that_panics_inside_automerge_is_refused_and_the_lab_stays_up() {
    let scene = Scene::new().await;
    let board = scene.bystander.doc.fork();
    let honest = change_of(&board, |tx| {
        let notes = tx.get(ROOT, "notes").unwrap().unwrap().1;
        let note = tx.put_object(&notes, "n-evil", ObjType::Map).unwrap();
        tx.put_object(&note, "text", ObjType::Text).unwrap();
    });
    // A `Make(Text)` whose pred counter does not fit automerge's 32 bits.
    let bad = crafted(&honest, |c| {
        let actor = c.actor_id.clone();
        let op = c.operations.last_mut().unwrap();
        op.pred = vec![OpId(u64::from(u32::MAX) + 9, actor)]
            .into_iter()
            .collect();
    });
    let error = scene.send_changes(&[bad], "eve").await;
    assert!(error.contains("refused"), "{error}");
    // And one writing into an object that does not exist.
    let bad = crafted(&honest, |c| {
        c.operations[0].obj = ObjectId::Id(OpId(3, ActorId::random()));
    });
    let error = scene.send_changes(&[bad], "eve-2").await;
    assert!(error.contains("does not exist"), "{error}");
    scene.assert_board_intact(&[]).await;
}

/// Observers' edits that are the facilitator's: each is refused for an observer (and never
/// reaches a second phone) and goes through for the facilitator.
#[tokio::test]
async fn observers_cannot_rewrite_the_board_and_the_facilitator_can() {
    type Edit = fn(&mut Transaction<'_>);
    let edits: [(&str, Edit); 6] = [
        ("rename the lab", |tx| {
            let lab = tx.get(ROOT, "lab").unwrap().unwrap().1;
            tx.put(&lab, "title", "Renamed").unwrap();
        }),
        ("start a phase", |tx| {
            tx.put(ROOT, "currentPhase", "lesson-1").unwrap();
        }),
        ("rename a phase", |tx| {
            let phases = tx.get(ROOT, "phases").unwrap().unwrap().1;
            let plan = tx.get(&phases, "plan").unwrap().unwrap().1;
            tx.put(&plan, "label", "Planning").unwrap();
        }),
        ("pin someone's note", |tx| {
            let notes = tx.get(ROOT, "notes").unwrap().unwrap().1;
            let note = tx.get(&notes, "n-ana").unwrap().unwrap().1;
            tx.put(&note, "pinned", true).unwrap();
        }),
        ("edit someone's note", |tx| {
            let notes = tx.get(ROOT, "notes").unwrap().unwrap().1;
            let note = tx.get(&notes, "n-ana").unwrap().unwrap().1;
            tx.put(&note, "text", "rewritten").unwrap();
        }),
        ("delete someone's note", |tx| {
            let notes = tx.get(ROOT, "notes").unwrap().unwrap().1;
            tx.delete(&notes, "n-ana").unwrap();
        }),
    ];
    let scene = Scene::new().await;
    let facilitator = Phone::facilitator(&scene.server, &scene.lab).await;
    for (what, edit) in edits {
        let eve = Phone::observer(&scene.server, &scene.lab, "eve").await;
        eve.doc.change(edit);
        let refused = eve.doc.heads();
        let closed = within("the server refuses eve's change", eve.client.closed()).await;
        let error = closed.error.unwrap_or_default();
        assert!(error.contains("not allowed"), "{what}: {error}");

        facilitator.doc.change(edit);
        let done = facilitator.doc.heads();
        within(
            "the facilitator's edit reaches the bystander",
            scene
                .bystander
                .doc
                .wait_until(|d| done.iter().all(|h| d.get_change_by_hash(h).is_some())),
        )
        .await
        .unwrap_or_else(|err| panic!("{what}: {err}"));
        let leaked = scene
            .bystander
            .doc
            .with_doc(|d| refused.iter().any(|h| d.get_change_by_hash(h).is_some()));
        assert!(!leaked, "{what}: eve's change reached the bystander");
    }
    // Nobody, not even the facilitator, removes the board's notes.
    facilitator
        .doc
        .change(|tx| tx.delete(ROOT, "notes").unwrap());
    let closed = within("refused", facilitator.client.closed()).await;
    assert!(
        closed.error.unwrap_or_default().contains("structure"),
        "the facilitator may not delete `notes`"
    );
    within(
        "the bystander still syncs",
        scene.bystander.doc.wait_synced(),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn observers_edit_and_delete_their_own_notes_and_react_as_themselves() {
    let scene = Scene::new().await;
    let ben = &scene.bystander;
    ben.note("n-mine", "first draft").await;
    ben.doc.change(|tx| {
        let notes = tx.get(ROOT, "notes").unwrap().unwrap().1;
        let mine = tx.get(&notes, "n-mine").unwrap().unwrap().1;
        tx.put(&mine, "text", "second draft").unwrap();
        let anas = tx.get(&notes, "n-ana").unwrap().unwrap().1;
        let reactions = tx.get(&anas, "reactions").unwrap().unwrap().1;
        tx.put(&reactions, ben.author_id.as_str(), 1_i64).unwrap();
    });
    within(
        "ben's edit and reaction are acknowledged",
        ben.doc.wait_synced(),
    )
    .await
    .expect("allowed");
    ben.doc.change(|tx| {
        let notes = tx.get(ROOT, "notes").unwrap().unwrap().1;
        tx.delete(&notes, "n-mine").unwrap();
    });
    within("ben's deletion is acknowledged", ben.doc.wait_synced())
        .await
        .expect("allowed");
    // A reaction under someone else's id is not.
    ben.doc.change(|tx| {
        let notes = tx.get(ROOT, "notes").unwrap().unwrap().1;
        let anas = tx.get(&notes, "n-ana").unwrap().unwrap().1;
        let reactions = tx.get(&anas, "reactions").unwrap().unwrap().1;
        tx.put(&reactions, "a-someone-else", 1_i64).unwrap();
    });
    let closed = within("refused", ben.client.closed()).await;
    assert!(
        closed.error.unwrap_or_default().contains("reaction"),
        "a reaction as someone else is refused"
    );
}

#[tokio::test]
async fn presence_cannot_be_forged_or_silenced() {
    let scene = Scene::new().await;
    let mut presence = scene.bystander.client.ephemeral();
    let (mut eve, server_peer) = scene.attacker("eve").await;
    // Eve needs to be syncing the board for her presence to be relayed at all.
    let hello = Automerge::new()
        .generate_sync_message(&mut sync::State::new())
        .unwrap();
    eve.send(&Message::Request {
        sender_id: PeerId::from("eve"),
        target_id: server_peer.clone(),
        document_id: scene.lab.doc_id,
        data: hello.encode(),
    })
    .await
    .unwrap();
    let ephemeral = |sender: &str, session: &str, count: u64, data: &[u8]| Message::Ephemeral {
        sender_id: PeerId::from(sender),
        target_id: server_peer.clone(),
        count,
        session_id: session.into(),
        document_id: scene.lab.doc_id,
        data: data.to_vec(),
    };
    // In ben's name, and with a counter pushed far ahead: neither is relayed.
    eve.send(&ephemeral("ben", "ben-session", 1, b"forged"))
        .await
        .unwrap();
    eve.send(&ephemeral("eve", "eve-session", 1 << 53, b"huge"))
        .await
        .unwrap();
    eve.send(&ephemeral("eve", "eve-session", 1, b"honest"))
        .await
        .unwrap();
    let first = within("eve's honest presence arrives", presence.recv())
        .await
        .unwrap();
    assert_eq!(first.sender_id, PeerId::from("eve"));
    assert_eq!(
        first.data, b"honest",
        "only eve's honest message is relayed"
    );
    scene.assert_board_intact(&[]).await;
}

/// A board stored by an older version with a change that does not load: the server skips it,
/// serves the rest, and stores the board without it.
#[tokio::test]
async fn a_board_stored_with_a_bad_change_is_recovered() {
    let scene = Scene::new().await;
    let Scene {
        server,
        lab,
        bystander,
    } = scene;
    let board = bystander.doc.fork();
    bystander.client.close().await;
    let dir = server.stop().await;

    // What an older version stored: the bad change as a chunk, then an honest one after it.
    let honest = change_of(&board, add_scalar_note);
    let bad = crafted(&honest, |c| {
        c.actor_id = ActorId::random();
        c.seq = 1;
        c.start_op = NonZeroU64::new(honest.start_op().get() - 1).unwrap();
    });
    let later = change_of(&board, |tx| {
        let notes = tx.get(ROOT, "notes").unwrap().unwrap().1;
        tx.put(&notes, "n-later", "written after it").unwrap();
    });
    let store = SqliteStorage::open(dir.path()).unwrap();
    store
        .append(lab.doc_id, bad.raw_bytes().to_vec())
        .await
        .unwrap();
    store
        .append(lab.doc_id, later.raw_bytes().to_vec())
        .await
        .unwrap();
    store.close().await.unwrap();
    // Loaded the old way, the bad change is taken in, and the board saved from that no longer
    // loads: what a restart after compaction did to such a lab.
    let old_way = Automerge::load(&store_bytes(dir.path(), &lab).await).unwrap();
    assert!(old_way.get_change_by_hash(&bad.hash()).is_some());
    assert!(Automerge::load(&old_way.save()).is_err());

    let server = TestServer::start_in(dir, |_| {}).await;
    let phone = Phone::observer(&server, &lab, "carol").await;
    let mut seen = phone.doc.with_doc(note_ids);
    seen.sort();
    assert_eq!(seen, ["n-ana", "n-ben", "n-later"]);
    assert!(phone
        .doc
        .with_doc(|d| d.get_change_by_hash(&bad.hash()).is_none()));
    let heads = phone.doc.heads();
    phone.client.close().await;
    let dir = server.stop().await;

    // What is stored now loads on its own, to the same heads.
    let stored = store_bytes(dir.path(), &lab).await;
    assert_eq!(Automerge::load(&stored).unwrap().get_heads(), heads);
}

/// Everything stored of the lab's board, concatenated.
async fn store_bytes(dir: &std::path::Path, lab: &Lab) -> Vec<u8> {
    let store = SqliteStorage::open(dir).unwrap();
    let stored = store.load(lab.doc_id).await.unwrap().unwrap();
    store.close().await.unwrap();
    stored.concatenated()
}
