//! The document actor against a store that can be made to refuse, as a full disk does.
//!
//! A phone (a plain `Automerge` replica with its `sync::State`) talks to a real actor spawned by
//! a real `Registry`, through its inbox and an outbox, with no sockets. Time is paused, so the
//! actor's retry timer runs through minutes of a full disk at once.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use automerge::sync::{self, SyncDoc};
use automerge::transaction::Transactable;
use automerge::{Automerge, ROOT};
use futures_util::FutureExt;
use labboard::document::{ActorSettings, DocCommand, DocHandle, SyncKind};
use labboard::ingest::Writer;
use labboard::outbox::{Kick, Outbox, OutboxReceiver, Outgoing};
use labboard::registry::Registry;
use labboard::storage::{ChunkSeq, MemoryStorage, Storage, StorageError, StoredDoc};
use labboard_protocol::{DocumentId, Message, PeerId};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long the phone waits for an answer (paused time: no real waiting).
const ANSWER_WITHIN: Duration = Duration::from_secs(5);

/// A store whose disk can fill up: appends and compactions are then refused with `DiskFull`.
#[derive(Default)]
struct Disk {
    inner: MemoryStorage,
    full: AtomicBool,
    /// Only compactions are refused: a disk with room for a note but not for a snapshot.
    no_room_for_snapshots: AtomicBool,
    refused: AtomicUsize,
}

impl Disk {
    fn refuse(&self) -> StorageError {
        self.refused.fetch_add(1, Ordering::SeqCst);
        StorageError::DiskFull("the test's disk is full".into())
    }
}

#[async_trait]
impl Storage for Disk {
    fn storage_id(&self) -> &str {
        "test-disk"
    }

    async fn load(&self, doc: DocumentId) -> Result<Option<StoredDoc>, StorageError> {
        self.inner.load(doc).await
    }

    async fn load_new(
        &self,
        doc: DocumentId,
        known: &[ChunkSeq],
    ) -> Result<StoredDoc, StorageError> {
        self.inner.load_new(doc, known).await
    }

    async fn append(&self, doc: DocumentId, chunk: Vec<u8>) -> Result<ChunkSeq, StorageError> {
        if self.full.load(Ordering::SeqCst) {
            return Err(self.refuse());
        }
        self.inner.append(doc, chunk).await
    }

    async fn compact(
        &self,
        doc: DocumentId,
        snapshot: Vec<u8>,
        covered: &[ChunkSeq],
    ) -> Result<Option<ChunkSeq>, StorageError> {
        if self.full.load(Ordering::SeqCst) || self.no_room_for_snapshots.load(Ordering::SeqCst) {
            return Err(self.refuse());
        }
        self.inner.compact(doc, snapshot, covered).await
    }

    async fn delete(&self, doc: DocumentId) -> Result<(), StorageError> {
        self.inner.delete(doc).await
    }

    async fn close(&self) -> Result<(), StorageError> {
        self.inner.close().await
    }
}

/// A phone attached to one document through an outbox.
struct Phone {
    doc: Automerge,
    state: sync::State,
    outbox: Outbox,
    rx: OutboxReceiver,
    kick: Arc<Kick>,
}

impl Phone {
    fn new() -> Self {
        let (outbox, rx, kick) = Outbox::new();
        Self {
            doc: Automerge::new(),
            state: sync::State::new(),
            outbox,
            rx,
            kick,
        }
    }

    fn post(&mut self, key: &str) {
        let mut tx = self.doc.transaction();
        tx.put(ROOT, key, "a note").unwrap();
        tx.commit();
    }

    /// Sends whatever the phone's sync state says is due; false if nothing was.
    async fn sync(&mut self, handle: &DocHandle) -> bool {
        let Some(message) = self.doc.generate_sync_message(&mut self.state) else {
            return false;
        };
        let command = DocCommand::Sync {
            conn: 1,
            peer_id: PeerId::from("phone"),
            // A document that is not a board: the role rules do not come into it.
            writer: Writer::server(),
            outbox: self.outbox.clone(),
            kind: SyncKind::Sync,
            message,
        };
        handle.send(command).await.expect("the actor is running");
        true
    }

    /// Applies the next message the server sends within `wait`; false if none came.
    async fn receive(&mut self, wait: Duration) -> bool {
        let Ok(out) = tokio::time::timeout(wait, self.rx.recv()).await else {
            return false;
        };
        let out = out.expect("the outbox is open");
        let Outgoing::Message(message) = out else {
            panic!("the server failed the phone: {out:?}");
        };
        let Message::Sync { data, .. } = *message else {
            panic!("expected a sync message, got {message:?}");
        };
        let message = sync::Message::decode(&data).unwrap();
        self.doc
            .receive_sync_message(&mut self.state, message)
            .unwrap();
        true
    }

    /// Exchanges messages until neither side has anything to say.
    async fn settle(&mut self, handle: &DocHandle) {
        loop {
            let sent = self.sync(handle).await;
            let received = self.receive(ANSWER_WITHIN).await;
            if !sent && !received {
                return;
            }
        }
    }

    /// Whether the server has acknowledged our heads: the last heads it sent are ours.
    fn acknowledged(&self) -> bool {
        self.state.their_heads.as_deref() == Some(&self.doc.get_heads()[..])
    }

    fn connected(&self) -> bool {
        self.kick.fired().now_or_never().is_none()
    }
}

fn registry(disk: &Arc<Disk>) -> Arc<Registry> {
    Registry::new(
        PeerId::from("server"),
        Arc::clone(disk) as Arc<dyn Storage>,
        TaskTracker::new(),
        CancellationToken::new(),
        ActorSettings {
            idle_unload_after: Duration::from_secs(3600),
            compact_after_chunks: labboard::document::COMPACT_AFTER_CHUNKS,
        },
    )
}

#[tokio::test(start_paused = true)]
async fn a_full_disk_holds_acknowledgements_keeps_the_phone_and_retries_until_space_returns() {
    let disk = Arc::new(Disk::default());
    let registry = registry(&disk);
    let id = DocumentId::random();
    let handle = registry.get(id).unwrap();
    let mut phone = Phone::new();
    phone.post("before");
    phone.settle(&handle).await;
    assert!(phone.acknowledged());

    disk.full.store(true, Ordering::SeqCst);
    phone.post("while full");
    assert!(phone.sync(&handle).await);
    // Minutes of a full disk go by.
    assert!(
        !phone.receive(Duration::from_secs(120)).await,
        "nothing is sent while unstored"
    );
    assert!(!phone.acknowledged());
    assert!(phone.connected(), "the phone stays attached");
    assert_eq!(registry.waiting_for_storage(), 1);
    let attempts = disk.refused.load(Ordering::SeqCst);
    // Retried all along, at most every 2 s once backed off: about 60 in two minutes.
    assert!((40..=120).contains(&attempts), "{attempts} attempts");

    // More notes while full are taken in and wait too.
    phone.post("still full");
    phone.sync(&handle).await;
    assert!(!phone.receive(Duration::from_secs(10)).await);
    assert!(!phone.acknowledged());

    disk.full.store(false, Ordering::SeqCst);
    phone.settle(&handle).await;
    assert!(phone.acknowledged());
    assert!(phone.connected());
    assert_eq!(registry.waiting_for_storage(), 0);
    let stored = disk.inner.load(id).await.unwrap().expect("stored");
    let mut reloaded = Automerge::new();
    reloaded.load_incremental(&stored.concatenated()).unwrap();
    assert_eq!(reloaded.get_heads(), phone.doc.get_heads());
}

#[tokio::test(start_paused = true)]
async fn a_compaction_that_does_not_fit_keeps_the_chunks_and_the_phone() {
    let disk = Arc::new(Disk::default());
    disk.no_room_for_snapshots.store(true, Ordering::SeqCst);
    let registry = registry(&disk);
    let id = DocumentId::random();
    let handle = registry.get(id).unwrap();
    let mut phone = Phone::new();
    // Past the point where the document compacts, one stored chunk per note.
    for n in 0..80 {
        phone.post(&format!("n{n}"));
        phone.settle(&handle).await;
        assert!(phone.acknowledged(), "note {n}");
    }
    assert!(phone.connected());
    assert!(disk.refused.load(Ordering::SeqCst) >= 1, "compaction tried");
    assert_eq!(registry.waiting_for_storage(), 0);
    let stored = disk.inner.load(id).await.unwrap().unwrap();
    assert_eq!(stored.snapshot, None);
    assert_eq!(stored.chunks.len(), 80, "no chunk deleted");
}
