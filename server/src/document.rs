//! One open document: [`DocState`] holds the sync logic as plain methods, [`DocActor`] is the
//! task around it that performs storage and delivery in the one safe order:
//!
//! 1. apply every queued input (sync messages, ephemeral relays, detaches);
//! 2. append the new changes to storage and wait until they are durable;
//! 3. only then generate sync messages, which advertise the new heads, for every peer.
//!
//! A phone that saw its change acknowledged can therefore rely on it surviving a `kill -9`.
//! When storage refuses for a reason that passes (disk full), step 3 waits: the changes stay in
//! memory, unacknowledged, every peer stays attached, and a timer retries (see `Unstored`).
//!
//! A stored lab board of an older schema is upgraded as the actor loads it, by one change of the
//! server's own replica, and that change is stored before any peer is served.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use automerge::sync::{self, BloomFilter, Capability, Have, SyncDoc};
use automerge::{Automerge, ChangeHash};
use labboard_protocol::{board, DocumentId, Message, PeerId};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::outbox::{Outbox, Outgoing};
use crate::registry::Registry;
use crate::storage::{ChunkSeq, Storage, StorageError};

/// Identifies one WebSocket connection for the life of the process.
pub type ConnId = u64;

/// Commands queued for one document. Large enough that a burst from a full lab fits; a full
/// inbox makes connections wait, which slows their phones through TCP.
pub const INBOX_CAPACITY: usize = 256;

/// Most commands applied before one storage append and one round of replies: a burst costs
/// one fsync and one sync message per peer instead of one per note.
const MAX_BATCH: usize = 64;

/// Incremental chunks after which the document is rewritten as one snapshot.
const COMPACT_AFTER_CHUNKS: usize = 64;

/// Sessions remembered for ephemeral deduplication before the memory is cleared.
const MAX_EPHEMERAL_SESSIONS: usize = 4096;

/// First wait before storing again after storage refused for a reason that passes (disk full,
/// database busy); doubled after each failed attempt up to [`STORE_RETRY_MAX`].
const STORE_RETRY_FIRST: Duration = Duration::from_millis(250);

/// Longest wait between attempts while storage keeps refusing: once there is space again, the
/// waiting changes are stored and acknowledged within this long.
const STORE_RETRY_MAX: Duration = Duration::from_secs(2);

/// How often a lasting storage failure is logged again, so a full disk is seen in the log
/// without filling what is left of it.
const STORE_FAILURE_LOG_EVERY: Duration = Duration::from_secs(30);

/// Sync messages taken in while storage refuses, after which the actor takes no more until
/// storing works again. Each holds back a reply of a few hundred bytes, so this bounds what a
/// long outage costs to a megabyte or two per document; connections then wait on the full
/// inbox, which slows their phones. A busy lab (twelve phones, a note every five seconds each)
/// takes about half an hour to get there.
const MAX_INPUTS_WHILE_UNSTORED: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncKind {
    Sync,
    /// The peer lacks the document and wants `doc-unavailable` if we lack it too.
    Request,
}

#[derive(Debug, thiserror::Error)]
pub enum DocError {
    #[error("sync message could not be applied: {0}")]
    Apply(#[source] automerge::AutomergeError),
    #[error("stored document could not be loaded: {0}")]
    Load(#[source] automerge::AutomergeError),
    #[error("stored board could not be upgraded: {0}")]
    Upgrade(#[source] automerge::AutomergeError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Everything the server knows about one peer of one document.
struct PeerSync {
    peer_id: PeerId,
    state: sync::State,
    /// Asked for the document while we had nothing: no sync messages until we do.
    awaiting_doc: bool,
    /// Owed a `doc-unavailable`.
    tell_unavailable: bool,
    /// Our heads when we last asked automerge what to send this peer, if the peer has sent
    /// nothing since. With the document and the sync state both unchanged, asking again would
    /// get the same nothing, at the price of a bloom filter over the document: after every
    /// batch of acknowledgements, for every peer of the lab.
    quiet_at: Option<Vec<ChangeHash>>,
}

/// The sync logic of one document, without I/O.
pub struct DocState {
    id: DocumentId,
    server_peer: PeerId,
    doc: Automerge,
    peers: BTreeMap<ConnId, PeerSync>,
    saved_heads: Vec<ChangeHash>,
    ephemeral_seen: HashMap<(PeerId, String), u64>,
    /// Replies generated right after each received message, sent by the next `outgoing`.
    replies: Vec<(ConnId, Message)>,
    /// The whole document as last saved, for peers that have nothing and for compaction.
    snapshot: Option<Snapshot>,
}

/// The document saved at some heads. Saving (mostly deflate) is most of what serving a board
/// to a fresh phone or projector costs, and the phones of a lab tend to arrive together; one
/// save per version serves them all, and the next compaction too.
struct Snapshot {
    heads: Vec<ChangeHash>,
    bytes: Vec<u8>,
    /// Every change hash of the document.
    hashes: Vec<ChangeHash>,
    /// A bloom filter over `hashes`: our `have` when nothing is shared yet.
    bloom: BloomFilter,
}

impl Snapshot {
    fn of<'a>(doc: &Automerge, cache: &'a mut Option<Snapshot>) -> &'a Snapshot {
        let heads = doc.get_heads();
        match cache {
            Some(snapshot) if snapshot.heads == heads => {}
            _ => {
                let hashes: Vec<ChangeHash> = doc
                    .get_changes_meta(&[])
                    .into_iter()
                    .map(|meta| meta.hash)
                    .collect();
                let bloom = BloomFilter::from_hashes(hashes.iter());
                *cache = Some(Snapshot {
                    heads,
                    bytes: doc.save(),
                    hashes,
                    bloom,
                });
            }
        }
        cache.as_ref().expect("filled above")
    }
}

/// Our side of the sync messages of one round: the document at `heads`, as this server.
struct Sender<'a> {
    doc: &'a Automerge,
    heads: &'a [ChangeHash],
    snapshot: &'a mut Option<Snapshot>,
    server_peer: &'a PeerId,
    id: DocumentId,
}

impl Sender<'_> {
    /// The next sync message for one peer, if it is owed one.
    fn sync_message(&mut self, peer: &mut PeerSync) -> Option<Message> {
        let (doc, heads) = (self.doc, self.heads);
        if peer.awaiting_doc {
            if heads.is_empty() {
                return None;
            }
            peer.awaiting_doc = false;
        }
        // A peer that had nothing and has not answered the whole document we sent it yet
        // would get the whole document again with every change; its answer comes first.
        let awaiting_first_answer =
            peer.state.in_flight && peer.state.their_heads.as_ref().is_some_and(Vec::is_empty);
        if awaiting_first_answer {
            return None;
        }
        let quiet = peer.quiet_at.as_deref() == Some(heads);
        if quiet || in_sync(&peer.state, heads) {
            // Every test that syncs checks the shortcut against automerge itself.
            debug_assert!(
                doc.generate_sync_message(&mut peer.state.clone()).is_none(),
                "skipped a sync message automerge would send"
            );
            if !quiet {
                peer.quiet_at = Some(heads.to_vec());
            }
            return None;
        }
        let message = whole_document(doc, &mut peer.state, self.snapshot)
            .or_else(|| doc.generate_sync_message(&mut peer.state));
        // Asked again with nothing new on either side, automerge would say nothing: a message
        // it just sent is in flight.
        peer.quiet_at = Some(heads.to_vec());
        let message = message?;
        Some(Message::Sync {
            sender_id: self.server_peer.clone(),
            target_id: peer.peer_id.clone(),
            document_id: self.id,
            data: message.encode(),
        })
    }
}

/// Whether automerge's `generate_sync_message` would certainly answer `None`: the peer told us
/// it has exactly our heads and needs nothing, and we already told it those heads. Checked
/// first because automerge computes a bloom filter over the document before it finds that out.
fn in_sync(state: &sync::State, heads: &[ChangeHash]) -> bool {
    state.have_responded
        && !state.needs_reset
        && state.last_sent_heads == heads
        && state.their_heads.as_deref() == Some(heads)
        && state.their_need.as_ref().is_some_and(Vec::is_empty)
}

/// The first sync message to a peer that has nothing, from the cached snapshot: exactly what
/// `generate_sync_message` would send (the whole document, for peers that understand v2
/// messages), without saving the document again for every such peer. `None` when the peer is
/// not in that position; the caller then asks automerge.
fn whole_document(
    doc: &Automerge,
    state: &mut sync::State,
    cache: &mut Option<Snapshot>,
) -> Option<sync::Message> {
    let has_nothing = !state.have_responded
        && state.their_heads.as_deref() == Some(&[])
        && state.their_need.is_some()
        && state
            .their_have
            .as_ref()
            .is_some_and(|have| have.iter().all(|have| have.last_sync.is_empty()))
        && state
            .their_capabilities
            .as_ref()
            .is_some_and(|caps| caps.contains(&Capability::MessageV2))
        && state.shared_heads.is_empty()
        && !state.read_only
        && !state.peer_read_only
        && !state.needs_reset;
    if !has_nothing || doc.get_heads().is_empty() {
        return None;
    }
    let snapshot = Snapshot::of(doc, cache);
    state.have_responded = true;
    state.last_sent_heads.clone_from(&snapshot.heads);
    state.sent_hashes.extend(snapshot.hashes.iter().copied());
    state.in_flight = true;
    let mut flags = sync::MessageFlags::new();
    flags.set(sync::MessageFlags::SUPPORTS_SYNC_RESET);
    Some(sync::Message {
        heads: snapshot.heads.clone(),
        need: Vec::new(),
        have: vec![Have {
            last_sync: Vec::new(),
            bloom: snapshot.bloom.clone(),
        }],
        changes: sync::ChunkList::from(snapshot.bytes.clone()),
        flags: Some(flags),
        version: sync::MessageVersion::V2,
    })
}

impl DocState {
    pub fn new(id: DocumentId, server_peer: PeerId) -> Self {
        Self::with_doc(id, server_peer, Automerge::new())
    }

    /// Restores a stored document (snapshot and chunks, concatenated).
    pub fn load(id: DocumentId, server_peer: PeerId, bytes: &[u8]) -> Result<Self, DocError> {
        let mut doc = Automerge::new();
        doc.load_incremental(bytes).map_err(DocError::Load)?;
        Ok(Self::with_doc(id, server_peer, doc))
    }

    fn with_doc(id: DocumentId, server_peer: PeerId, doc: Automerge) -> Self {
        let saved_heads = doc.get_heads();
        Self {
            id,
            server_peer,
            doc,
            peers: BTreeMap::new(),
            saved_heads,
            ephemeral_seen: HashMap::new(),
            replies: Vec::new(),
            snapshot: None,
        }
    }

    /// Brings a board of an older schema to the current one ([`board::upgrade`]), as one change
    /// by this replica's actor; leaves anything else alone. True if it made a change, which is
    /// unsaved like any other until [`Self::mark_saved`].
    pub fn upgrade_board(&mut self) -> Result<bool, DocError> {
        board::upgrade(&mut self.doc).map_err(DocError::Upgrade)
    }

    pub fn doc(&self) -> &Automerge {
        &self.doc
    }

    /// The whole document, saved; kept until the document changes.
    pub fn save(&mut self) -> Vec<u8> {
        Snapshot::of(&self.doc, &mut self.snapshot).bytes.clone()
    }

    /// A document exists once it has a change.
    pub fn exists(&self) -> bool {
        !self.doc.get_heads().is_empty()
    }

    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    pub fn is_attached(&self, conn: ConnId) -> bool {
        self.peers.contains_key(&conn)
    }

    /// Starts syncing with a connection, from a fresh sync state.
    pub fn attach(&mut self, conn: ConnId, peer_id: PeerId) {
        self.peers.entry(conn).or_insert_with(|| PeerSync {
            peer_id,
            state: sync::State::new(),
            awaiting_doc: false,
            tell_unavailable: false,
            quiet_at: None,
        });
    }

    pub fn detach(&mut self, conn: ConnId) -> bool {
        self.peers.remove(&conn).is_some()
    }

    /// Applies one sync message from a peer, attaching it if needed.
    pub fn receive(
        &mut self,
        conn: ConnId,
        peer_id: PeerId,
        kind: SyncKind,
        message: sync::Message,
    ) -> Result<(), DocError> {
        self.attach(conn, peer_id);
        let peer = self
            .peers
            .get_mut(&conn)
            .expect("attached on the line above");
        peer.quiet_at = None;
        self.doc
            .receive_sync_message(&mut peer.state, message)
            .map_err(DocError::Apply)?;
        match kind {
            SyncKind::Request if self.doc.get_heads().is_empty() => {
                peer.awaiting_doc = true;
                peer.tell_unavailable = true;
            }
            // A `sync` means the peer has the document (or is uploading it): talk again, even
            // if it asked for it earlier while we had nothing.
            SyncKind::Sync => {
                peer.awaiting_doc = false;
                peer.tell_unavailable = false;
            }
            SyncKind::Request => {}
        }
        // Answer this message before applying the next one, as a one-at-a-time peer would:
        // automerge takes a change-less message whose heads equal ours as "they know we are in
        // sync", which only holds if we answered the message that brought us to those heads.
        // Applying two messages of one phone in a batch and answering once would leave that
        // phone without the acknowledgement of its last change. The reply is held until the
        // batch is stored.
        let heads = self.doc.get_heads();
        let mut sender = Sender {
            doc: &self.doc,
            heads: &heads,
            snapshot: &mut self.snapshot,
            server_peer: &self.server_peer,
            id: self.id,
        };
        if let Some(reply) = sender.sync_message(peer) {
            self.replies.push((conn, reply));
        }
        Ok(())
    }

    /// The changes not yet stored, as one chunk, with the heads they bring us to.
    pub fn unsaved(&self) -> Option<(Vec<u8>, Vec<ChangeHash>)> {
        let heads = self.doc.get_heads();
        (heads != self.saved_heads).then(|| (self.doc.save_after(&self.saved_heads), heads))
    }

    /// Records that storage holds everything up to `heads`.
    pub fn mark_saved(&mut self, heads: Vec<ChangeHash>) {
        self.saved_heads = heads;
    }

    /// How many changes are not stored yet.
    pub fn unsaved_change_count(&self) -> usize {
        self.doc.get_changes_meta(&self.saved_heads).len()
    }

    /// Sync messages and `doc-unavailable`s owed to peers. Only call once [`Self::unsaved`] is
    /// `None`: these messages advertise our heads.
    pub fn outgoing(&mut self) -> Vec<(ConnId, Message)> {
        let heads = self.doc.get_heads();
        if heads != self.saved_heads {
            tracing::error!(doc_id = %self.id, "refusing to advertise unsaved heads");
            return Vec::new();
        }
        let exists = !heads.is_empty();
        let mut out = std::mem::take(&mut self.replies);
        let mut sender = Sender {
            doc: &self.doc,
            heads: &heads,
            snapshot: &mut self.snapshot,
            server_peer: &self.server_peer,
            id: self.id,
        };
        for (&conn, peer) in &mut self.peers {
            if peer.tell_unavailable {
                peer.tell_unavailable = false;
                if !exists {
                    out.push((
                        conn,
                        Message::DocUnavailable {
                            sender_id: self.server_peer.clone(),
                            target_id: peer.peer_id.clone(),
                            document_id: self.id,
                        },
                    ));
                }
            }
            out.extend(sender.sync_message(peer).map(|message| (conn, message)));
        }
        out
    }

    /// Relays an ephemeral message to every other peer of the document, once per
    /// (author, session, count): clients echo relays back, so without this two phones and the
    /// server would loop forever.
    pub fn relay_ephemeral(
        &mut self,
        from: ConnId,
        sender_id: PeerId,
        session_id: String,
        count: u64,
        data: Vec<u8>,
    ) -> Vec<(ConnId, Message)> {
        if self.ephemeral_seen.len() >= MAX_EPHEMERAL_SESSIONS {
            self.ephemeral_seen.clear();
        }
        let key = (sender_id.clone(), session_id.clone());
        if self
            .ephemeral_seen
            .get(&key)
            .is_some_and(|&seen| count <= seen)
        {
            return Vec::new();
        }
        self.ephemeral_seen.insert(key, count);
        self.peers
            .iter()
            .filter(|(&conn, peer)| conn != from && peer.peer_id != sender_id)
            .map(|(&conn, peer)| {
                (
                    conn,
                    Message::Ephemeral {
                        sender_id: sender_id.clone(),
                        target_id: peer.peer_id.clone(),
                        count,
                        session_id: session_id.clone(),
                        document_id: self.id,
                        data: data.clone(),
                    },
                )
            })
            .collect()
    }
}

/// Inputs for a document actor.
#[derive(Debug)]
pub enum DocCommand {
    Sync {
        conn: ConnId,
        peer_id: PeerId,
        outbox: Outbox,
        kind: SyncKind,
        message: sync::Message,
    },
    Ephemeral {
        conn: ConnId,
        sender_id: PeerId,
        session_id: String,
        count: u64,
        data: Vec<u8>,
    },
    Detach {
        conn: ConnId,
    },
    /// The document is being deleted: close every peer, write nothing more, stop, then say so.
    Delete {
        done: tokio::sync::oneshot::Sender<()>,
    },
}

/// The cheap side of an actor, held by the registry and by attached connections.
#[derive(Debug, Clone)]
pub struct DocHandle {
    pub(crate) tx: mpsc::Sender<DocCommand>,
    pub(crate) generation: u64,
}

impl DocHandle {
    /// Queues a command, waiting while the actor is busy. Gives the command back if the actor
    /// has stopped.
    pub async fn send(&self, command: DocCommand) -> Result<(), DocCommand> {
        self.tx.send(command).await.map_err(|err| err.0)
    }
}

/// Tunables of document actors.
#[derive(Debug, Clone, Copy)]
pub struct ActorSettings {
    pub idle_unload_after: Duration,
}

pub struct DocActor {
    id: DocumentId,
    generation: u64,
    server_peer: PeerId,
    store: Arc<dyn Storage>,
    registry: Arc<Registry>,
    rx: mpsc::Receiver<DocCommand>,
    outboxes: HashMap<ConnId, Outbox>,
    stop: CancellationToken,
    settings: ActorSettings,
    last_seq: Option<ChunkSeq>,
    chunks_since_snapshot: usize,
    /// Chunks after which the next compaction is due; further off after one failed.
    compact_at_chunks: usize,
    /// Set while storage refuses the unsaved changes for a reason that passes.
    unstored: Option<Unstored>,
}

/// Changes that storage refused for a reason that passes (disk full, database busy). They stay
/// in memory, nobody is told about them (so no phone sees them acknowledged), and a timer tries
/// to store them again. The phones stay connected and keep their own copies meanwhile.
struct Unstored {
    since: Instant,
    attempts: u32,
    retry_at: Instant,
    /// Sync messages taken in since storing began to fail.
    inputs: usize,
    logged_at: Instant,
    /// Counts this document in [`Registry::waiting_for_storage`] while it exists.
    _counted: crate::registry::WaitingForStorage,
}

impl DocActor {
    pub(crate) fn new(
        id: DocumentId,
        generation: u64,
        rx: mpsc::Receiver<DocCommand>,
        registry: Arc<Registry>,
    ) -> Self {
        Self {
            id,
            generation,
            server_peer: registry.server_peer.clone(),
            store: Arc::clone(&registry.store),
            stop: registry.stop.child_token(),
            settings: registry.settings,
            registry,
            rx,
            outboxes: HashMap::new(),
            last_seq: None,
            chunks_since_snapshot: 0,
            compact_at_chunks: COMPACT_AFTER_CHUNKS,
            unstored: None,
        }
    }

    pub async fn run(mut self) {
        let mut state = match self.load().await {
            Ok(state) => state,
            Err(err) => {
                tracing::error!(error = %err, "document could not be loaded");
                self.fail_everyone("the server could not load this document");
                return;
            }
        };
        tracing::debug!(exists = state.exists(), "document loaded");
        // An upgraded board is stored before anyone is served.
        if let Err(err) = self.store_and_answer(&mut state).await {
            tracing::error!(error = %err, "storing the upgraded board failed");
            self.fail_everyone("the server could not store this document; reconnect to retry");
            return;
        }
        let mut idle_since = Some(Instant::now());
        let mut batch = Vec::with_capacity(MAX_BATCH);
        loop {
            let idle_deadline = idle_since.map(|since| since + self.settings.idle_unload_after);
            let retry_at = self.unstored.as_ref().map(|unstored| unstored.retry_at);
            let taking = self
                .unstored
                .as_ref()
                .is_none_or(|unstored| unstored.inputs < MAX_INPUTS_WHILE_UNSTORED);
            tokio::select! {
                command = self.rx.recv(), if taking => match command {
                    Some(command) => batch.push(command),
                    None => break,
                },
                () = sleep_until_opt(retry_at) => {}
                () = sleep_until_opt(idle_deadline) => {
                    if self.try_unload(&mut state).await {
                        return;
                    }
                    idle_since = Some(Instant::now());
                    continue;
                }
                () = self.stop.cancelled() => break,
            }
            while taking && batch.len() < MAX_BATCH {
                match self.rx.try_recv() {
                    Ok(command) => batch.push(command),
                    Err(_) => break,
                }
            }
            if let Some(at) = batch
                .iter()
                .position(|c| matches!(c, DocCommand::Delete { .. }))
            {
                let DocCommand::Delete { done } = batch.swap_remove(at) else {
                    unreachable!("found at this position above");
                };
                self.stop_for_deletion(batch.drain(..), done);
                return;
            }
            if let Some(unstored) = &mut self.unstored {
                unstored.inputs += batch
                    .iter()
                    .filter(|command| matches!(command, DocCommand::Sync { .. }))
                    .count();
            }
            for command in batch.drain(..) {
                self.apply(&mut state, command);
            }
            if let Err(err) = self.store_and_answer(&mut state).await {
                tracing::error!(error = %err, "storing changes failed; unloading document");
                self.fail_everyone("the server could not store this document; reconnect to retry");
                return;
            }
            idle_since = (state.peer_count() == 0).then(Instant::now);
        }
        self.shut_down(&mut state).await;
        self.registry.remove(self.id, self.generation);
    }

    /// Stores what is unsaved, then sends every peer what it is owed, in that order. While
    /// storage refuses for a reason that passes, the changes wait in memory and nothing that
    /// would acknowledge them is sent; a timer tries again ([`Unstored`]). Other storage errors
    /// are returned.
    async fn store_and_answer(&mut self, state: &mut DocState) -> Result<(), DocError> {
        if self
            .unstored
            .as_ref()
            .is_some_and(|unstored| Instant::now() < unstored.retry_at)
        {
            return Ok(());
        }
        match self.persist(state).await {
            Ok(()) => {
                if let Some(unstored) = self.unstored.take() {
                    tracing::info!(
                        waited = ?unstored.since.elapsed(),
                        attempts = unstored.attempts,
                        "storage works again; waiting changes stored"
                    );
                }
            }
            Err(DocError::Storage(err)) if err.is_retryable() => {
                self.storing_refused(state, &err);
                return Ok(());
            }
            Err(err) => return Err(err),
        }
        for (conn, message) in state.outgoing() {
            self.deliver(state, conn, Outgoing::Message(Box::new(message)));
        }
        Ok(())
    }

    /// Records a failed attempt to store, schedules the next and logs, rate-limited.
    fn storing_refused(&mut self, state: &DocState, err: &StorageError) {
        let now = Instant::now();
        let what = match err {
            StorageError::DiskFull(_) => "disk full",
            _ => "database busy",
        };
        let changes = state.unsaved_change_count();
        match &mut self.unstored {
            None => {
                tracing::error!(
                    error = %err,
                    changes,
                    peers = state.peer_count(),
                    "{what}; changes waiting in memory, unacknowledged, until they can be stored"
                );
                self.unstored = Some(Unstored {
                    since: now,
                    attempts: 1,
                    retry_at: now + STORE_RETRY_FIRST,
                    inputs: 0,
                    logged_at: now,
                    _counted: crate::registry::WaitingForStorage::new(&self.registry),
                });
            }
            Some(unstored) => {
                unstored.attempts += 1;
                let delay = STORE_RETRY_FIRST
                    .saturating_mul(1 << (unstored.attempts - 1).min(8))
                    .min(STORE_RETRY_MAX);
                unstored.retry_at = now + delay;
                if now >= unstored.logged_at + STORE_FAILURE_LOG_EVERY {
                    unstored.logged_at = now;
                    tracing::error!(
                        error = %err,
                        changes,
                        waited = ?unstored.since.elapsed(),
                        attempts = unstored.attempts,
                        "{what}; changes still waiting to be stored"
                    );
                } else {
                    tracing::debug!(error = %err, changes, "storing again failed");
                }
            }
        }
    }

    /// Shutting down: every change should be durable already; fold them into a snapshot so the
    /// next start loads one blob.
    async fn shut_down(&mut self, state: &mut DocState) {
        if self.unstored.is_some() {
            if let Err(err) = self.persist(state).await {
                // Nothing of these was acknowledged: the phones that made them still hold them
                // and send them again when they reconnect.
                tracing::error!(
                    error = %err,
                    changes = state.unsaved_change_count(),
                    "shutting down with changes that could not be stored; \
                     their phones still hold them and resend them on reconnecting"
                );
                return;
            }
            self.unstored = None;
            tracing::info!("storage works again; waiting changes stored at shutdown");
        }
        if let Err(err) = self.compact(state).await {
            tracing::warn!(error = %err, "compaction at shutdown failed; chunks kept");
        }
    }

    async fn load(&mut self) -> Result<DocState, DocError> {
        match self.store.load(self.id).await? {
            None => Ok(DocState::new(self.id, self.server_peer.clone())),
            Some(stored) => {
                self.last_seq = stored.last_seq;
                self.chunks_since_snapshot = stored.chunks.len();
                let mut state =
                    DocState::load(self.id, self.server_peer.clone(), &stored.concatenated())?;
                // Old boards are upgraded before anyone sees them, and stored like any change
                // (by `run`, before it takes any input).
                if state.upgrade_board()? {
                    tracing::info!(schema = board::BOARD_SCHEMA_VERSION, "board upgraded");
                }
                Ok(state)
            }
        }
    }

    fn apply(&mut self, state: &mut DocState, command: DocCommand) {
        match command {
            DocCommand::Sync {
                conn,
                peer_id,
                outbox,
                kind,
                message,
            } => {
                self.outboxes.entry(conn).or_insert(outbox);
                if let Err(err) = state.receive(conn, peer_id, kind, message) {
                    tracing::warn!(conn_id = conn, error = %err, "rejected sync message");
                    if let Some(outbox) = self.outboxes.remove(&conn) {
                        outbox.fail(format!("sync message for document {}: {err}", self.id));
                    }
                    state.detach(conn);
                }
            }
            DocCommand::Ephemeral {
                conn,
                sender_id,
                session_id,
                count,
                data,
            } => {
                for (to, message) in state.relay_ephemeral(conn, sender_id, session_id, count, data)
                {
                    self.deliver(state, to, Outgoing::Message(Box::new(message)));
                }
            }
            DocCommand::Detach { conn } => {
                self.outboxes.remove(&conn);
                state.detach(conn);
            }
            DocCommand::Delete { .. } => unreachable!("handled before applying a batch"),
        }
    }

    /// Ends this actor without storing anything more: the document is being deleted.
    fn stop_for_deletion(
        &mut self,
        pending: impl Iterator<Item = DocCommand>,
        done: tokio::sync::oneshot::Sender<()>,
    ) {
        for command in pending {
            if let DocCommand::Sync { conn, outbox, .. } = command {
                self.outboxes.entry(conn).or_insert(outbox);
            }
        }
        self.fail_everyone("this lab was deleted");
        tracing::info!("document deleted; actor stopped");
        // The deleter may have given up waiting; the actor has stopped either way.
        let _told = done.send(());
    }

    fn deliver(&mut self, state: &mut DocState, conn: ConnId, out: Outgoing) {
        let delivered = self
            .outboxes
            .get(&conn)
            .is_some_and(|outbox| outbox.deliver(out));
        if !delivered {
            // Gone or too far behind: it resyncs from a fresh state when it reconnects.
            self.outboxes.remove(&conn);
            state.detach(conn);
        }
    }

    async fn persist(&mut self, state: &mut DocState) -> Result<(), DocError> {
        let Some((chunk, heads)) = state.unsaved() else {
            return Ok(());
        };
        let seq = self.store.append(self.id, chunk).await?;
        state.mark_saved(heads);
        self.last_seq = Some(seq);
        self.chunks_since_snapshot += 1;
        if self.chunks_since_snapshot >= self.compact_at_chunks {
            // The changes are stored already. A failed compaction stored nothing and deleted no
            // chunk; it is tried again after as many chunks more, so a nearly full disk does not
            // see a whole snapshot written with every note.
            if let Err(err) = self.compact(state).await {
                tracing::warn!(
                    error = %err,
                    chunks = self.chunks_since_snapshot,
                    "compaction failed; chunks kept"
                );
                self.compact_at_chunks = self.chunks_since_snapshot + COMPACT_AFTER_CHUNKS;
            }
        }
        Ok(())
    }

    async fn compact(&mut self, state: &mut DocState) -> Result<(), DocError> {
        if self.chunks_since_snapshot == 0 {
            return Ok(());
        }
        let snapshot = state.save();
        self.store.compact(self.id, snapshot, self.last_seq).await?;
        self.chunks_since_snapshot = 0;
        self.compact_at_chunks = COMPACT_AFTER_CHUNKS;
        tracing::debug!("document compacted");
        Ok(())
    }

    /// Unloads if nobody holds a handle and nothing is queued. Compacts first, while still
    /// registered, so no second actor for this document can load it meanwhile.
    async fn try_unload(&mut self, state: &mut DocState) -> bool {
        if self.unstored.is_some() {
            // Its changes exist only here until storage takes them.
            return false;
        }
        if let Err(err) = self.compact(state).await {
            tracing::warn!(error = %err, "compaction before unload failed; staying loaded");
            return false;
        }
        if self
            .registry
            .remove_if_unused(self.id, self.generation, &self.rx)
        {
            tracing::debug!("idle document unloaded");
            true
        } else {
            false
        }
    }

    /// Stops this actor after a failure: every attached or waiting connection is told and
    /// closed, so its phone reconnects and resends what was not stored.
    fn fail_everyone(&mut self, text: &str) {
        self.registry.remove(self.id, self.generation);
        self.rx.close();
        while let Ok(command) = self.rx.try_recv() {
            if let DocCommand::Sync { conn, outbox, .. } = command {
                self.outboxes.entry(conn).or_insert(outbox);
            }
        }
        for (_, outbox) in self.outboxes.drain() {
            outbox.fail(text);
        }
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use automerge::transaction::Transactable;
    use automerge::{ObjType, ReadDoc, ROOT};

    use super::*;

    fn loaded(build: impl FnOnce(&mut automerge::transaction::Transaction<'_>)) -> DocState {
        let mut doc = Automerge::new();
        let mut tx = doc.transaction();
        build(&mut tx);
        tx.commit();
        DocState::load(DocumentId::random(), PeerId::from("server"), &doc.save()).unwrap()
    }

    #[test]
    fn an_old_board_is_upgraded_as_an_unsaved_change() {
        let mut state = loaded(|tx| {
            tx.put(ROOT, "schemaVersion", 1_u64).unwrap();
            tx.put_object(ROOT, "lab", ObjType::Map).unwrap();
            tx.put_object(ROOT, "notes", ObjType::Map).unwrap();
        });
        assert!(state.unsaved().is_none());
        assert!(state.upgrade_board().unwrap());
        let (_, heads) = state.unsaved().expect("the upgrade is not stored yet");
        let version = state.doc().get(ROOT, "schemaVersion").unwrap().unwrap().0;
        assert_eq!(version.as_u64(), Some(board::BOARD_SCHEMA_VERSION));
        state.mark_saved(heads);
        assert!(!state.upgrade_board().unwrap(), "nothing more to do");
        assert!(state.unsaved().is_none());
    }

    /// A document of `notes` changes by three actors, as phones would write it.
    fn written(notes: usize) -> Automerge {
        let mut doc = Automerge::new();
        let mut tx = doc.transaction();
        tx.put_object(ROOT, "notes", ObjType::Map).unwrap();
        tx.commit();
        let mut phones: Vec<Automerge> = (0..3).map(|_| doc.fork()).collect();
        for i in 0..notes {
            let phone = &mut phones[i % 3];
            let notes_obj = phone.get(ROOT, "notes").unwrap().unwrap().1;
            let mut tx = phone.transaction();
            let note = tx
                .put_object(&notes_obj, format!("n{i}"), ObjType::Map)
                .unwrap();
            tx.put(
                &note,
                "text",
                format!("child {i} counted on from the bigger number"),
            )
            .unwrap();
            tx.commit();
        }
        for phone in &mut phones {
            doc.merge(phone).unwrap();
        }
        doc
    }

    /// The sync state of a peer that has nothing, after its first message.
    fn fresh_peer(doc: &mut Automerge) -> sync::State {
        let first = Automerge::new()
            .generate_sync_message(&mut sync::State::new())
            .unwrap();
        let mut state = sync::State::new();
        doc.receive_sync_message(&mut state, first).unwrap();
        state
    }

    #[test]
    fn a_peer_with_nothing_gets_exactly_what_automerge_would_send() {
        let mut doc = written(30);
        let mut ours = fresh_peer(&mut doc);
        let mut automerges = ours.clone();
        let expected = doc.generate_sync_message(&mut automerges).unwrap();
        let mut cache = None;
        let message = whole_document(&doc, &mut ours, &mut cache).expect("a peer with nothing");
        assert_eq!(message.clone().encode(), expected.encode());
        assert_eq!(
            ours, automerges,
            "the sync state moves on as automerge's would"
        );

        let mut phone = Automerge::new();
        phone
            .receive_sync_message(&mut sync::State::new(), message)
            .unwrap();
        assert_eq!(phone.get_heads(), doc.get_heads());

        // Answered once: after that automerge takes over, and says nothing while in flight.
        assert!(whole_document(&doc, &mut ours, &mut cache).is_none());
        assert!(doc.generate_sync_message(&mut ours).is_none());
    }

    #[test]
    fn the_snapshot_serves_every_fresh_peer_until_the_document_changes() {
        let mut doc = written(12);
        let mut cache = None;
        let (mut one, mut two) = (fresh_peer(&mut doc), fresh_peer(&mut doc));
        let first = whole_document(&doc, &mut one, &mut cache).unwrap();
        let saved_at = cache.as_ref().unwrap().heads.clone();
        let second = whole_document(&doc, &mut two, &mut cache).unwrap();
        assert_eq!(first.encode(), second.encode());

        let notes = doc.get(ROOT, "notes").unwrap().unwrap().1;
        let mut tx = doc.transaction();
        tx.put(&notes, "late", "a late note").unwrap();
        tx.commit();
        let mut ours = fresh_peer(&mut doc);
        let mut automerges = ours.clone();
        let third = whole_document(&doc, &mut ours, &mut cache).unwrap();
        assert_ne!(cache.as_ref().unwrap().heads, saved_at);
        assert_eq!(
            third.encode(),
            doc.generate_sync_message(&mut automerges).unwrap().encode()
        );
    }

    #[test]
    fn peers_with_something_are_left_to_automerge() {
        let mut doc = written(6);
        let mut cache = None;
        // A phone holding part of the board.
        let phone = written(0);
        let mut phone_state = sync::State::new();
        let hello = phone.generate_sync_message(&mut phone_state).unwrap();
        let mut state = sync::State::new();
        doc.receive_sync_message(&mut state, hello).unwrap();
        assert!(whole_document(&doc, &mut state, &mut cache).is_none());
        assert!(cache.is_none(), "no save for a peer that does not need one");
        // Nor is an empty document sent whole.
        let mut empty = Automerge::new();
        let mut state = fresh_peer(&mut empty);
        assert!(whole_document(&empty, &mut state, &mut cache).is_none());
    }

    #[test]
    fn a_document_that_is_not_a_board_is_not_upgraded() {
        let mut state = loaded(|tx| {
            tx.put(ROOT, "title", "someone else's document").unwrap();
        });
        assert!(!state.upgrade_board().unwrap());
        assert!(state.unsaved().is_none());
    }
}
