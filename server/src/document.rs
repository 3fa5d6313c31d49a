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
use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::ingest::{self, Refusal, Tips, Waiting, Writer};
use crate::outbox::{Outbox, Outgoing};
use crate::registry::Registry;
use crate::storage::{ChunkSeq, Storage, StorageError, StoredDoc};

/// Identifies one WebSocket connection for the life of the process.
pub type ConnId = u64;

/// Commands queued for one document. Large enough that a burst from a full lab fits; a full
/// inbox makes connections wait, which slows their phones through TCP.
pub const INBOX_CAPACITY: usize = 256;

/// Most commands applied before one storage append and one round of replies: a burst costs
/// one fsync and one sync message per peer instead of one per note.
const MAX_BATCH: usize = 64;

/// Incremental chunks after which the document is rewritten as one snapshot, by default
/// (`--compact-after-chunks`).
pub const COMPACT_AFTER_CHUNKS: usize = 64;

/// Sessions remembered for ephemeral deduplication before the memory is cleared.
const MAX_EPHEMERAL_SESSIONS: usize = 4096;

/// Largest step of an ephemeral session's counter that is relayed. Clients count up by one per
/// message; a jump this large only serves to make later honest messages look old.
const MAX_EPHEMERAL_COUNT_STEP: u64 = 100_000;

/// Largest counter a session may start at here. A client keeps counting across a server
/// restart, so a session new to us may be well under way; at one presence message a second it
/// would take 136 years to reach this.
const MAX_EPHEMERAL_FIRST_COUNT: u64 = 1 << 32;

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

/// What a phone is told when it sends changes to the board of a lab that has ended; the web
/// client recognises the lab's end by these words.
pub const ENDED_MESSAGE: &str = "this lab has ended; nothing more can be added";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncKind {
    Sync,
    /// The peer lacks the document and wants `doc-unavailable` if we lack it too.
    Request,
}

impl From<Refusal> for DocError {
    fn from(refusal: Refusal) -> Self {
        Self::Refused(Box::new(refusal))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DocError {
    /// The message failed a check ([`ingest`]): nothing of it reached the document.
    #[error("sync message refused: {0}")]
    Refused(Box<Refusal>),
    /// The message brought changes to the board of a lab that has ended. Phones recognise
    /// these words.
    #[error("{ENDED_MESSAGE}")]
    Ended,
    /// Automerge failed or panicked while applying a message that passed every check. The
    /// document may be half-changed: the actor reloads it from storage.
    #[error("sync message could not be applied: {0}")]
    Poisoned(String),
    #[error("stored document could not be loaded: {0}")]
    Load(#[source] automerge::AutomergeError),
    #[error("stored board could not be upgraded: {0}")]
    Upgrade(#[source] automerge::AutomergeError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The actor stopped (deleted, unloading after a failure, shutting down) before answering.
    #[error("the document stopped before answering")]
    Stopped,
}

/// Everything the server knows about one peer of one document.
struct PeerSync {
    peer_id: PeerId,
    /// Who the peer's token says it is: what its changes may do.
    writer: Writer,
    state: sync::State,
    /// Its changes still missing dependencies.
    waiting: Waiting,
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
    /// Each actor's last change: what incoming changes are checked against.
    tips: Tips,
    peers: BTreeMap<ConnId, PeerSync>,
    saved_heads: Vec<ChangeHash>,
    ephemeral_seen: HashMap<(PeerId, String), u64>,
    /// Replies generated right after each received message, sent by the next `outgoing`.
    replies: Vec<(ConnId, Message)>,
    /// The whole document as last saved, for peers that have nothing and for compaction.
    snapshot: Option<Snapshot>,
    /// The lab has ended: the board is read-only, every new change is refused.
    ended: bool,
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
        let snapshot = &mut *self.snapshot;
        let state = &mut peer.state;
        let generated = ingest::contained(|| {
            whole_document(doc, state, snapshot).or_else(|| doc.generate_sync_message(state))
        });
        let message = match generated {
            Ok(message) => message,
            Err(panic) => {
                // The document is intact (generating only reads it); the peer's sync state,
                // built from what the peer told us, is not. Start that peer over.
                tracing::warn!(
                    doc_id = %self.id,
                    peer_id = %peer.peer_id,
                    error = %panic,
                    "generating a sync message panicked; resetting the peer's sync state"
                );
                peer.state = sync::State::new();
                peer.state.needs_reset = true;
                None
            }
        };
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

/// Loads a stored snapshot. One written by an older version may hold a change automerge's
/// checks refuse; it is loaded without them as a last resort.
fn load_snapshot(snapshot: &[u8]) -> Result<Automerge, DocError> {
    match ingest::contained(|| Automerge::load(snapshot)) {
        Ok(Ok(doc)) => return Ok(doc),
        Ok(Err(err)) => {
            tracing::error!(error = %err, "stored snapshot does not load; retrying without verification")
        }
        Err(panic) => {
            tracing::error!(error = %panic, "stored snapshot does not load; retrying without verification")
        }
    }
    ingest::contained(|| {
        Automerge::load_with_options(
            snapshot,
            automerge::LoadOptions::new()
                .on_partial_load(automerge::OnPartialLoad::Ignore)
                .verification_mode(automerge::VerificationMode::DontCheck),
        )
    })
    .map_err(DocError::Poisoned)?
    .map_err(DocError::Load)
}

/// Whether automerge's `generate_sync_message` would certainly answer `None`: the peer told us
/// it has exactly our heads, last synced at them and needs nothing, and we already told it
/// those heads. Checked first because automerge computes a bloom filter over the document
/// before it finds that out. A peer claiming our heads while its `have` says it last synced
/// elsewhere (an honest one never does) is left to automerge, which trusts the `have`.
fn in_sync(state: &sync::State, heads: &[ChangeHash]) -> bool {
    state.have_responded
        && !state.needs_reset
        && state.last_sent_heads == heads
        && state.their_heads.as_deref() == Some(heads)
        && state.their_need.as_ref().is_some_and(Vec::is_empty)
        && state
            .their_have
            .as_ref()
            .is_some_and(|haves| haves.iter().all(|have| have.last_sync == heads))
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

    /// Restores a stored document (snapshot and chunks, concatenated) that is trusted as it is:
    /// for tests and for documents this server wrote after checking them.
    pub fn load(id: DocumentId, server_peer: PeerId, bytes: &[u8]) -> Result<Self, DocError> {
        let doc = ingest::contained(|| Automerge::load(bytes))
            .map_err(DocError::Poisoned)?
            .map_err(DocError::Load)?;
        Ok(Self::with_doc(id, server_peer, doc))
    }

    /// Restores a stored document, checking every change of its incremental chunks as if a
    /// phone had sent it: a change stored by an older version that does not load is skipped,
    /// and so is anything that depends on it. Returns the state and what was skipped, in words.
    pub fn load_stored(
        id: DocumentId,
        server_peer: PeerId,
        stored: &StoredDoc,
    ) -> Result<(Self, Vec<String>), DocError> {
        let doc = match &stored.snapshot {
            Some(snapshot) => load_snapshot(snapshot)?,
            None => Automerge::new(),
        };
        let mut state = Self::with_doc(id, server_peer, doc);
        let skipped = state.apply_chunks(&stored.chunks)?;
        state.saved_heads = state.doc.get_heads();
        Ok((state, skipped))
    }

    /// Applies what another node stored of this document since it was loaded here
    /// ([`Storage::load_new`]): a snapshot it compacted, chunks it appended. They count as stored;
    /// changes of this replica that wait for storage stay unsaved. Returns what was skipped, as
    /// [`Self::load_stored`] does.
    pub fn take_stored(&mut self, new: &StoredDoc) -> Result<Vec<String>, DocError> {
        let was_saved = self.doc.get_heads() == self.saved_heads;
        if let Some(snapshot) = &new.snapshot {
            let applied = ingest::contained(|| self.doc.load_incremental(snapshot));
            if !matches!(applied, Ok(Ok(_))) {
                return Err(DocError::Poisoned(
                    "a snapshot stored by another node could not be applied".into(),
                ));
            }
            self.tips = Tips::of(&self.doc);
        }
        let skipped = self.apply_chunks(&new.chunks)?;
        if was_saved {
            self.saved_heads = self.doc.get_heads();
        }
        Ok(skipped)
    }

    /// Applies stored chunks through the same checks as a peer's changes, skipping (and naming)
    /// those that do not pass.
    fn apply_chunks(&mut self, chunks: &[Vec<u8>]) -> Result<Vec<String>, DocError> {
        let mut skipped = Vec::new();
        let server = Writer::server();
        for (index, chunk) in chunks.iter().enumerate() {
            let mut waiting = Waiting::default();
            let admitted = match ingest::admit(
                &self.doc,
                &mut self.tips,
                &mut waiting,
                &server,
                std::iter::once(chunk.as_slice()),
            ) {
                Ok(admitted) => admitted,
                Err(refusal) => {
                    skipped.push(format!("chunk {index}: {refusal}"));
                    continue;
                }
            };
            if !waiting.is_empty() {
                skipped.push(format!(
                    "chunk {index}: {} changes whose dependencies are missing",
                    waiting.len()
                ));
            }
            let bytes: Vec<u8> = admitted
                .changes
                .iter()
                .flat_map(|change| change.raw_bytes().iter().copied())
                .collect();
            let applied = ingest::contained(|| self.doc.load_incremental(&bytes));
            if !matches!(applied, Ok(Ok(_))) {
                return Err(DocError::Poisoned(format!(
                    "chunk {index} passed every check but could not be applied"
                )));
            }
        }
        Ok(skipped)
    }

    fn with_doc(id: DocumentId, server_peer: PeerId, doc: Automerge) -> Self {
        let saved_heads = doc.get_heads();
        Self {
            id,
            server_peer,
            tips: Tips::of(&doc),
            doc,
            peers: BTreeMap::new(),
            saved_heads,
            ephemeral_seen: HashMap::new(),
            replies: Vec::new(),
            snapshot: None,
            ended: false,
        }
    }

    /// Makes the board read-only: from now on a message bringing any change the document does
    /// not have is refused with [`DocError::Ended`]. Syncing what exists keeps working.
    pub fn end(&mut self) {
        self.ended = true;
    }

    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// Brings a board of an older schema to the current one ([`board::upgrade`]), as one change
    /// by this replica's actor; leaves anything else alone. True if it made a change, which is
    /// unsaved like any other until [`Self::mark_saved`].
    pub fn upgrade_board(&mut self) -> Result<bool, DocError> {
        let upgraded = board::upgrade(&mut self.doc).map_err(DocError::Upgrade)?;
        if upgraded {
            self.tips = Tips::of(&self.doc);
        }
        Ok(upgraded)
    }

    pub fn doc(&self) -> &Automerge {
        &self.doc
    }

    /// The whole document, saved; kept until the document changes.
    pub fn save(&mut self) -> Vec<u8> {
        Snapshot::of(&self.doc, &mut self.snapshot).bytes.clone()
    }

    /// The whole document, saved, after checking that it loads again to the same heads.
    pub fn verified_snapshot(&mut self) -> Result<Vec<u8>, DocError> {
        let bytes = ingest::contained(|| self.save()).map_err(DocError::Poisoned)?;
        let heads = self.doc.get_heads();
        match ingest::contained(|| Automerge::load(&bytes).map(|doc| doc.get_heads())) {
            Ok(Ok(loaded)) if loaded == heads => Ok(bytes),
            Ok(Ok(_)) => Err(DocError::Poisoned(
                "the saved document loads to other heads".into(),
            )),
            Ok(Err(err)) => Err(DocError::Poisoned(format!(
                "the saved document does not load: {err}"
            ))),
            Err(panic) => Err(DocError::Poisoned(panic)),
        }
    }

    /// The document as stored, saved: what every peer may have seen acknowledged. Changes still
    /// waiting for storage (disk full) are left out, as they are from every peer.
    pub fn stored_save(&mut self) -> Result<Vec<u8>, DocError> {
        if self.doc.get_heads() == self.saved_heads {
            return ingest::contained(|| self.save()).map_err(DocError::Poisoned);
        }
        let doc = &self.doc;
        let heads = &self.saved_heads;
        ingest::contained(|| doc.fork_at(heads).map(|stored| stored.save()))
            .map_err(DocError::Poisoned)?
            .map_err(DocError::Load)
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
    pub fn attach(&mut self, conn: ConnId, peer_id: PeerId, writer: Writer) {
        self.peers.entry(conn).or_insert_with(|| PeerSync {
            peer_id,
            writer,
            state: sync::State::new(),
            waiting: Waiting::default(),
            awaiting_doc: false,
            tell_unavailable: false,
            quiet_at: None,
        });
    }

    /// The attached peers, for carrying them over to a reloaded state.
    pub fn attached(&self) -> Vec<(ConnId, PeerId, Writer)> {
        self.peers
            .iter()
            .map(|(&conn, peer)| (conn, peer.peer_id.clone(), peer.writer.clone()))
            .collect()
    }

    /// Attaches a peer after this state was reloaded from storage: whatever it sent that was not
    /// stored is gone here, so the next message tells it to forget what it believes it sent us
    /// (a sync reset) and it sends it again.
    pub fn reattach(&mut self, conn: ConnId, peer_id: PeerId, writer: Writer) {
        self.attach(conn, peer_id, writer);
        if let Some(peer) = self.peers.get_mut(&conn) {
            peer.state.needs_reset = true;
        }
    }

    pub fn detach(&mut self, conn: ConnId) -> bool {
        self.peers.remove(&conn).is_some()
    }

    /// Applies one sync message from a peer, attaching it if needed. Its changes pass the
    /// checks of [`ingest`] first: a refused message changes nothing. A
    /// [`DocError::Poisoned`] means the document must be reloaded.
    pub fn receive(
        &mut self,
        conn: ConnId,
        peer_id: PeerId,
        writer: &Writer,
        kind: SyncKind,
        message: sync::Message,
    ) -> Result<(), DocError> {
        self.attach(conn, peer_id, writer.clone());
        let peer = self
            .peers
            .get_mut(&conn)
            .expect("attached on the line above");
        peer.quiet_at = None;
        // One connection has one token; this only matters to callers that mix them.
        peer.writer.clone_from(writer);
        if self.ended {
            // Checked on copies: a refused message must leave the tips and the peer's waiting
            // changes as they were.
            let mut tips = self.tips.clone();
            let mut waiting = Waiting::default();
            let admitted = ingest::admit(
                &self.doc,
                &mut tips,
                &mut waiting,
                &peer.writer,
                message.changes.iter(),
            )?;
            if !admitted.changes.is_empty() || !waiting.is_empty() {
                return Err(DocError::Ended);
            }
            // Anything still waiting from before the end can never be applied now.
            peer.waiting = Waiting::default();
        }
        let admitted = ingest::admit(
            &self.doc,
            &mut self.tips,
            &mut peer.waiting,
            &peer.writer,
            message.changes.iter(),
        )?;
        // Automerge gets what passed, and instead of heads it cannot have yet, what they wait
        // for, so that it asks the peer for exactly that.
        let heads = if peer.waiting.is_empty() {
            message.heads
        } else {
            peer.waiting.frontier(&message.heads)
        };
        let checked = sync::Message {
            heads,
            changes: sync::ChunkList::from(
                admitted
                    .changes
                    .iter()
                    .chain(&admitted.known)
                    .map(|change| change.raw_bytes().to_vec())
                    .collect::<Vec<_>>(),
            ),
            ..message
        };
        let doc = &mut self.doc;
        let state = &mut peer.state;
        let new_changes = admitted.changes.len() as u64;
        match ingest::contained(|| doc.receive_sync_message(state, checked)) {
            Ok(Ok(())) => {
                crate::ops::metrics().changes_applied.inc_by(new_changes);
            }
            Ok(Err(err)) => return Err(DocError::Poisoned(err.to_string())),
            Err(panic) => return Err(DocError::Poisoned(panic)),
        }
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
        // Only a peer's own presence, from its own connection.
        if self
            .peers
            .get(&from)
            .is_none_or(|peer| peer.peer_id != sender_id)
        {
            return Vec::new();
        }
        if self.ephemeral_seen.len() >= MAX_EPHEMERAL_SESSIONS {
            self.ephemeral_seen.clear();
        }
        let key = (sender_id.clone(), session_id.clone());
        let sensible = match self.ephemeral_seen.get(&key) {
            Some(&seen) => count > seen && count - seen <= MAX_EPHEMERAL_COUNT_STEP,
            None => count <= MAX_EPHEMERAL_FIRST_COUNT,
        };
        if !sensible {
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
        /// Who the connection's token says the peer is.
        writer: Writer,
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
    /// Reads the document as stored (for exports): answered with [`DocState::stored_save`].
    Read {
        reply: tokio::sync::oneshot::Sender<Result<Vec<u8>, DocError>>,
    },
    /// Counts the board's notes (for the labs home page), without saving the document.
    CountNotes {
        reply: tokio::sync::oneshot::Sender<Result<crate::export::NoteCounts, DocError>>,
    },
    /// The document is being deleted: close every peer, write nothing more, stop, then say so.
    Delete {
        done: tokio::sync::oneshot::Sender<()>,
    },
    /// The lab has ended: the board becomes read-only, and `done` is answered once what was
    /// applied before it is stored, so nothing queued after this command changes it.
    End {
        done: tokio::sync::oneshot::Sender<()>,
    },
}

/// The cheap side of an actor, held by the registry and by attached connections.
#[derive(Debug, Clone)]
pub struct DocHandle {
    pub(crate) tx: mpsc::Sender<DocCommand>,
    pub(crate) generation: u64,
    /// Woken when another node stored parts of this document (PostgreSQL); wakes coalesce.
    pub(crate) stored_elsewhere: Arc<Notify>,
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
    /// Chunks stored after which a document is compacted.
    pub compact_after_chunks: usize,
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
    /// The stored parts whose changes this replica holds: a compaction may delete these.
    parts: Vec<ChunkSeq>,
    /// Woken when another node stored parts of this document.
    stored_elsewhere: Arc<Notify>,
    /// When to look again for what other nodes stored, after looking failed.
    look_again_at: Option<Instant>,
    chunks_since_snapshot: usize,
    /// Chunks after which the next compaction is due; further off after one failed.
    compact_at_chunks: usize,
    /// Set while storage refuses the unsaved changes for a reason that passes.
    unstored: Option<Unstored>,
    /// Callers of [`DocCommand::End`], answered once the batch that ended the board is stored:
    /// the changes applied before the end are then on disk, and nothing comes after them.
    ended_waiters: Vec<tokio::sync::oneshot::Sender<()>>,
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
        stored_elsewhere: Arc<Notify>,
        registry: Arc<Registry>,
    ) -> Self {
        let settings = registry.settings;
        Self {
            id,
            generation,
            server_peer: registry.server_peer.clone(),
            store: Arc::clone(&registry.store),
            stop: registry.stop.child_token(),
            settings,
            registry,
            rx,
            outboxes: HashMap::new(),
            parts: Vec::new(),
            stored_elsewhere,
            look_again_at: None,
            chunks_since_snapshot: 0,
            compact_at_chunks: settings.compact_after_chunks,
            unstored: None,
            ended_waiters: Vec::new(),
        }
    }

    pub async fn run(mut self) {
        let mut state = match self.load().await {
            Ok(state) => state,
            Err(err) => {
                tracing::error!(error = %err, "document could not be loaded");
                crate::ops::metrics().error(crate::ops::ErrorKind::Document);
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
                () = woken_or_at(&self.stored_elsewhere, self.look_again_at) => {
                    self.look_again_at = None;
                    if !self.take_stored_elsewhere(&mut state).await {
                        return;
                    }
                    continue;
                }
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
            let mut damaged = false;
            if let Some(unstored) = &mut self.unstored {
                unstored.inputs += batch
                    .iter()
                    .filter(|command| matches!(command, DocCommand::Sync { .. }))
                    .count();
            }
            for command in batch.drain(..) {
                if damaged {
                    // What the damaged state would have done with it is redone after the
                    // reload: peers resend, and a leaving peer still leaves.
                    self.skip(command);
                } else if !self.apply(&mut state, command) {
                    damaged = true;
                }
            }
            if damaged {
                state = match self.reload(state).await {
                    Ok(state) => state,
                    Err(err) => {
                        tracing::error!(error = %err, "document could not be reloaded");
                        self.fail_everyone(
                            "the server could not reload this document; reconnect to retry",
                        );
                        return;
                    }
                };
            }
            if let Err(err) = self.store_and_answer(&mut state).await {
                tracing::error!(error = %err, "storing changes failed; unloading document");
                self.fail_everyone("the server could not store this document; reconnect to retry");
                return;
            }
            for done in self.ended_waiters.drain(..) {
                // The caller may have given up waiting; the board is read-only either way.
                let _told = done.send(());
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
            StorageError::Unavailable(_) => "database unavailable",
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
            None => {
                let mut state = DocState::new(self.id, self.server_peer.clone());
                if self.registry.is_ended(self.id) {
                    state.end();
                }
                Ok(state)
            }
            Some(stored) => {
                self.parts.clone_from(&stored.parts);
                self.chunks_since_snapshot = stored.chunks.len();
                let (mut state, skipped) =
                    DocState::load_stored(self.id, self.server_peer.clone(), &stored)?;
                if !skipped.is_empty() {
                    for what in &skipped {
                        tracing::error!(skipped = %what, "stored change skipped: it does not load");
                    }
                    tracing::warn!(
                        chunks = skipped.len(),
                        "document recovered without the changes that do not load"
                    );
                    // Store what was kept as one snapshot, so the bad chunks are gone for good.
                    // If that cannot be done now, they are skipped again at the next load.
                    self.chunks_since_snapshot = self.chunks_since_snapshot.max(1);
                    if let Err(err) = self.compact(&mut state).await {
                        tracing::warn!(error = %err, "recovered document not compacted yet");
                    }
                }
                // Old boards are upgraded before anyone sees them, and stored like any change
                // (by `run`, before it takes any input).
                if state.upgrade_board()? {
                    tracing::info!(schema = board::BOARD_SCHEMA_VERSION, "board upgraded");
                }
                if self.registry.is_ended(self.id) {
                    state.end();
                }
                Ok(state)
            }
        }
    }

    /// Applies one command. False if the document may be damaged and must be reloaded.
    fn apply(&mut self, state: &mut DocState, command: DocCommand) -> bool {
        match command {
            DocCommand::Sync {
                conn,
                peer_id,
                writer,
                outbox,
                kind,
                message,
            } => {
                self.outboxes.entry(conn).or_insert(outbox);
                match state.receive(conn, peer_id.clone(), &writer, kind, message) {
                    Ok(()) => {}
                    Err(err) => {
                        let poisoned = matches!(err, DocError::Poisoned(_));
                        if poisoned {
                            crate::ops::metrics().error(crate::ops::ErrorKind::Document);
                            tracing::error!(conn_id = conn, peer_id = %peer_id, error = %err, "applying a checked sync message failed; reloading the document");
                        } else if matches!(err, DocError::Ended) {
                            tracing::info!(conn_id = conn, peer_id = %peer_id, "refused changes to an ended lab's board");
                        } else {
                            tracing::warn!(conn_id = conn, peer_id = %peer_id, error = %err, "refused sync message");
                        }
                        if let Some(outbox) = self.outboxes.remove(&conn) {
                            outbox.fail(format!("sync message for document {}: {err}", self.id));
                        }
                        state.detach(conn);
                        return !poisoned;
                    }
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
            DocCommand::End { done } => {
                state.end();
                tracing::info!("lab ended; board read-only");
                self.ended_waiters.push(done);
            }
            DocCommand::Detach { conn } => {
                self.outboxes.remove(&conn);
                state.detach(conn);
            }
            DocCommand::Read { reply } => {
                // The reader may have given up waiting; nothing to do then.
                let _answered = reply.send(state.stored_save());
            }
            DocCommand::CountNotes { reply } => {
                let doc = &state.doc;
                let counts = ingest::contained(|| crate::export::NoteCounts::of(doc))
                    .map_err(DocError::Poisoned);
                let _answered = reply.send(counts);
            }
            DocCommand::Delete { .. } => unreachable!("handled before applying a batch"),
        }
        true
    }

    /// Replaces a state that may be damaged by the document as stored, keeping every attached
    /// peer: their unstored changes come again after a sync reset. Nothing unstored was ever
    /// acknowledged.
    async fn reload(&mut self, damaged: DocState) -> Result<DocState, DocError> {
        let mut state = self.load().await?;
        // Whatever waited in memory for storage is gone with the damaged state; its phones
        // resend it.
        self.unstored = None;
        for (conn, peer_id, writer) in damaged.attached() {
            state.reattach(conn, peer_id, writer);
        }
        tracing::info!(peers = state.peer_count(), "document reloaded from storage");
        Ok(state)
    }

    /// Takes a command without applying it, while the state is about to be reloaded.
    fn skip(&mut self, command: DocCommand) {
        match command {
            DocCommand::Sync { conn, outbox, .. } => {
                self.outboxes.entry(conn).or_insert(outbox);
            }
            DocCommand::Detach { conn } => {
                self.outboxes.remove(&conn);
            }
            // A dropped reply tells the reader to try again.
            DocCommand::Ephemeral { .. }
            | DocCommand::Read { .. }
            | DocCommand::CountNotes { .. } => {}
            // The reloaded state reads the end from the registry, which knew it first.
            DocCommand::End { done } => self.ended_waiters.push(done),
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
        self.parts.push(seq);
        self.chunks_since_snapshot += 1;
        self.compact_when_due(state).await;
        Ok(())
    }

    /// Compacts once enough chunks were stored since the last snapshot, by this node or others
    /// (then the parts this replica knows of stay few). Everything here must be stored already.
    async fn compact_when_due(&mut self, state: &mut DocState) {
        if self.chunks_since_snapshot < self.compact_at_chunks {
            return;
        }
        // A failed compaction stored nothing and deleted no chunk; it is tried again after as
        // many chunks more, so a nearly full disk does not see a whole snapshot written with
        // every note.
        if let Err(err) = self.compact(state).await {
            tracing::warn!(
                error = %err,
                chunks = self.chunks_since_snapshot,
                "compaction failed; chunks kept"
            );
            self.compact_at_chunks =
                self.chunks_since_snapshot + self.settings.compact_after_chunks;
        }
    }

    /// Applies what other nodes stored of this document and syncs this node's peers with it.
    /// False if the actor must stop: the document could be neither taken in nor reloaded.
    async fn take_stored_elsewhere(&mut self, state: &mut DocState) -> bool {
        let new = match self.store.load_new(self.id, &self.parts).await {
            Ok(new) => new,
            Err(err) => {
                tracing::warn!(error = %err, "reading what other nodes stored failed; trying again");
                self.look_again_at = Some(Instant::now() + STORE_RETRY_FIRST);
                return true;
            }
        };
        if new.parts.is_empty() {
            return true;
        }
        match state.take_stored(&new) {
            Ok(skipped) => {
                for what in &skipped {
                    tracing::error!(skipped = %what, "change stored by another node skipped: it does not load");
                }
                self.parts.extend_from_slice(&new.parts);
                self.chunks_since_snapshot += new.parts.len();
                tracing::debug!(parts = new.parts.len(), "took in what another node stored");
            }
            Err(err) => {
                tracing::error!(error = %err, "taking in what another node stored failed; reloading the document");
                let damaged =
                    std::mem::replace(state, DocState::new(self.id, self.server_peer.clone()));
                match self.reload(damaged).await {
                    Ok(reloaded) => *state = reloaded,
                    Err(err) => {
                        tracing::error!(error = %err, "document could not be reloaded");
                        self.fail_everyone(
                            "the server could not reload this document; reconnect to retry",
                        );
                        return false;
                    }
                }
            }
        }
        if self.unstored.is_none() {
            for (conn, message) in state.outgoing() {
                self.deliver(state, conn, Outgoing::Message(Box::new(message)));
            }
            self.compact_when_due(state).await;
        }
        true
    }

    async fn compact(&mut self, state: &mut DocState) -> Result<(), DocError> {
        if self.chunks_since_snapshot == 0 {
            return Ok(());
        }
        // The chunks go once the snapshot that replaces them is known to load.
        let snapshot = state.verified_snapshot()?;
        let snapshot_part = self.store.compact(self.id, snapshot, &self.parts).await?;
        self.parts.clear();
        self.parts.extend(snapshot_part);
        self.chunks_since_snapshot = 0;
        self.compact_at_chunks = self.settings.compact_after_chunks;
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

/// Returns once `notify` wakes, or at `deadline` if there is one.
async fn woken_or_at(notify: &Notify, deadline: Option<Instant>) {
    tokio::select! {
        () = notify.notified() => {}
        () = sleep_until_opt(deadline) => {}
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

    #[test]
    fn a_read_leaves_out_what_is_not_stored_yet() {
        let mut state = loaded(|tx| {
            tx.put(ROOT, "schemaVersion", 1_u64).unwrap();
            tx.put_object(ROOT, "lab", ObjType::Map).unwrap();
        });
        let stored = state.doc().get_heads();
        let read = Automerge::load(&state.stored_save().unwrap()).unwrap();
        assert_eq!(read.get_heads(), stored);
        assert!(state.upgrade_board().unwrap());
        // The upgrade waits for storage: a reader sees the board as stored.
        let read = Automerge::load(&state.stored_save().unwrap()).unwrap();
        assert_eq!(read.get_heads(), stored);
        let (_, heads) = state.unsaved().unwrap();
        state.mark_saved(heads.clone());
        let read = Automerge::load(&state.stored_save().unwrap()).unwrap();
        assert_eq!(read.get_heads(), heads);
        assert_ne!(heads, stored);
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
