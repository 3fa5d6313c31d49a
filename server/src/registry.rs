//! Open documents: `DocumentId -> DocHandle`, spawning an actor on first use and forgetting it
//! when it unloads. A message is routed by one map lookup, whatever the number of open labs.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use labboard_protocol::{DocumentId, PeerId};
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::document::{ActorSettings, DocActor, DocCommand, DocError, DocHandle, INBOX_CAPACITY};
use crate::storage::{Storage, StorageError};

pub struct Registry {
    // std Mutex: held only for map operations, never across an await.
    docs: Mutex<Docs>,
    pub(crate) server_peer: PeerId,
    pub(crate) store: Arc<dyn Storage>,
    tracker: TaskTracker,
    /// Parent of every actor's stop token.
    pub(crate) stop: CancellationToken,
    pub(crate) settings: ActorSettings,
    /// Documents whose changes storage currently refuses (disk full), see [`WaitingForStorage`].
    waiting_for_storage: Arc<AtomicUsize>,
}

/// Counts one document in [`Registry::waiting_for_storage`] for as long as it lives.
#[derive(Debug)]
pub(crate) struct WaitingForStorage(Arc<AtomicUsize>);

impl WaitingForStorage {
    pub(crate) fn new(registry: &Registry) -> Self {
        registry.waiting_for_storage.fetch_add(1, Ordering::Relaxed);
        Self(Arc::clone(&registry.waiting_for_storage))
    }
}

impl Drop for WaitingForStorage {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[derive(Default)]
struct Docs {
    open: HashMap<DocumentId, DocHandle>,
    /// Deleted documents: never loaded again by this process (ids are random, never reused).
    deleted: HashSet<DocumentId>,
    /// Boards of labs that have ended: read-only whenever they are loaded.
    ended: HashSet<DocumentId>,
    next_generation: u64,
}

impl Registry {
    pub fn new(
        server_peer: PeerId,
        store: Arc<dyn Storage>,
        tracker: TaskTracker,
        stop: CancellationToken,
        settings: ActorSettings,
    ) -> Arc<Self> {
        Arc::new(Self {
            docs: Mutex::new(Docs::default()),
            server_peer,
            store,
            tracker,
            stop,
            settings,
            waiting_for_storage: Arc::default(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Docs> {
        self.docs
            .lock()
            .expect("registry lock is never held across a panic")
    }

    /// The handle of an open document, spawning its actor (which loads it) if needed; `None`
    /// for a deleted document.
    pub fn get(self: &Arc<Self>, id: DocumentId) -> Option<DocHandle> {
        let mut docs = self.lock();
        if let Some(handle) = docs.open.get(&id) {
            return Some(handle.clone());
        }
        if docs.deleted.contains(&id) {
            return None;
        }
        docs.next_generation += 1;
        let generation = docs.next_generation;
        let (tx, rx) = mpsc::channel(INBOX_CAPACITY);
        let stored_elsewhere = Arc::new(Notify::new());
        let handle = DocHandle {
            tx,
            generation,
            stored_elsewhere: Arc::clone(&stored_elsewhere),
        };
        docs.open.insert(id, handle.clone());
        let actor = DocActor::new(id, generation, rx, stored_elsewhere, Arc::clone(self));
        self.tracker.spawn(
            actor
                .run()
                .instrument(tracing::info_span!("doc", doc_id = %id)),
        );
        Some(handle)
    }

    /// The document as stored, saved: loaded by its actor the way phones are served it (an open
    /// actor answers from memory, with every change its phones have seen acknowledged). `None`
    /// for a deleted document.
    pub async fn read(self: &Arc<Self>, id: DocumentId) -> Result<Option<Vec<u8>>, DocError> {
        self.ask(id, |reply| DocCommand::Read { reply }).await
    }

    /// Sends the document's actor (loading it if needed) a command that answers on `reply`.
    /// `None` for a deleted document.
    async fn ask<T>(
        self: &Arc<Self>,
        id: DocumentId,
        command: impl FnOnce(tokio::sync::oneshot::Sender<Result<T, DocError>>) -> DocCommand,
    ) -> Result<Option<T>, DocError> {
        let Some(handle) = self.get(id) else {
            return Ok(None);
        };
        let (reply, answer) = tokio::sync::oneshot::channel();
        handle
            .send(command(reply))
            .await
            .map_err(|_| DocError::Stopped)?;
        answer.await.map_err(|_| DocError::Stopped)?.map(Some)
    }

    /// How many notes (and hidden notes) the board holds, counted by its actor in memory.
    /// `None` for a deleted document.
    pub async fn note_counts(
        self: &Arc<Self>,
        id: DocumentId,
    ) -> Result<Option<crate::export::NoteCounts>, DocError> {
        self.ask(id, |reply| DocCommand::CountNotes { reply }).await
    }

    /// Deletes a document for good: its actor stops (closing the connections attached to it),
    /// nothing can load it again, and storage forgets it.
    pub async fn delete(&self, id: DocumentId) -> Result<(), StorageError> {
        self.stop_deleted(id).await;
        self.store.delete(id).await
    }

    /// Stops the document's actor here, if it is open, without storing anything more, and never
    /// loads it again: another node deleted it from the shared store.
    pub async fn stop_deleted(&self, id: DocumentId) {
        let handle = {
            let mut docs = self.lock();
            docs.deleted.insert(id);
            docs.open.remove(&id)
        };
        if let Some(handle) = handle {
            let (done, stopped) = tokio::sync::oneshot::channel();
            if handle.send(DocCommand::Delete { done }).await.is_ok() {
                // An actor that dies first has stopped writing all the same.
                let _stopped = stopped.await;
            }
        }
    }

    /// Makes the board of an ended lab read-only: an open actor applies nothing more once this
    /// returns, and any later load starts read-only.
    pub async fn end(&self, id: DocumentId) {
        let handle = {
            let mut docs = self.lock();
            docs.ended.insert(id);
            docs.open.get(&id).cloned()
        };
        if let Some(handle) = handle {
            let (done, ended) = tokio::sync::oneshot::channel();
            if handle.send(DocCommand::End { done }).await.is_ok() {
                // An actor that stops first applies nothing more either; its successor loads
                // read-only.
                let _ended = ended.await;
            }
        }
    }

    /// Another node stored parts of the document: its actor here, if it is open, takes them in
    /// and syncs this node's peers with them.
    pub fn stored_elsewhere(&self, id: DocumentId) {
        if let Some(handle) = self.lock().open.get(&id) {
            handle.stored_elsewhere.notify_one();
        }
    }

    /// Every open document looks for what other nodes stored: after this node may have missed
    /// their notifications (its listening connection to the database was lost).
    pub fn all_stored_elsewhere(&self) {
        for handle in self.lock().open.values() {
            handle.stored_elsewhere.notify_one();
        }
    }

    pub fn is_ended(&self, id: DocumentId) -> bool {
        self.lock().ended.contains(&id)
    }

    /// Number of documents loaded in memory.
    pub fn open_count(&self) -> usize {
        self.lock().open.len()
    }

    /// Open documents holding changes that storage refused for now (disk full): their phones
    /// wait for an acknowledgement until the changes are stored.
    pub fn waiting_for_storage(&self) -> usize {
        self.waiting_for_storage.load(Ordering::Relaxed)
    }

    pub fn is_open(&self, id: DocumentId) -> bool {
        self.lock().open.contains_key(&id)
    }

    /// Forgets the actor of that generation (a newer actor for the same id stays).
    pub(crate) fn remove(&self, id: DocumentId, generation: u64) {
        let mut docs = self.lock();
        if docs
            .open
            .get(&id)
            .is_some_and(|h| h.generation == generation)
        {
            docs.open.remove(&id);
        }
    }

    /// Forgets the actor if only the registry holds its handle and its inbox is empty. Handles
    /// are only cloned under this lock, so nobody can start sending to it afterwards.
    pub(crate) fn remove_if_unused(
        &self,
        id: DocumentId,
        generation: u64,
        inbox: &mpsc::Receiver<DocCommand>,
    ) -> bool {
        let mut docs = self.lock();
        let unused = docs.open.get(&id).is_some_and(|h| {
            h.generation == generation && h.tx.strong_count() == 1 && inbox.is_empty()
        });
        if unused {
            docs.open.remove(&id);
        }
        unused
    }
}
