//! An in-memory store for unit tests of the document logic.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use labboard_protocol::DocumentId;

use super::{ChunkSeq, Storage, StorageError, StoredDoc};

#[derive(Default)]
pub struct MemoryStorage {
    // std Mutex: never held across an await.
    inner: Mutex<Inner>,
}

/// A snapshot and the chunks appended after it.
type Stored = (Option<Vec<u8>>, Vec<(ChunkSeq, Vec<u8>)>);

#[derive(Default)]
struct Inner {
    next_seq: ChunkSeq,
    docs: HashMap<DocumentId, Stored>,
    closed: bool,
}

impl MemoryStorage {
    fn with<T>(
        &self,
        f: impl FnOnce(&mut Inner) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        let mut inner = self
            .inner
            .lock()
            .expect("memory storage lock is never held across a panic");
        if inner.closed {
            return Err(StorageError::Closed);
        }
        f(&mut inner)
    }
}

#[async_trait]
impl Storage for MemoryStorage {
    fn storage_id(&self) -> &str {
        "memory"
    }

    async fn load(&self, doc: DocumentId) -> Result<Option<StoredDoc>, StorageError> {
        self.with(|inner| {
            Ok(inner.docs.get(&doc).map(|(snapshot, chunks)| StoredDoc {
                snapshot: snapshot.clone(),
                chunks: chunks.iter().map(|(_, c)| c.clone()).collect(),
                parts: chunks.iter().map(|(seq, _)| *seq).collect(),
            }))
        })
    }

    async fn load_new(
        &self,
        doc: DocumentId,
        known: &[ChunkSeq],
    ) -> Result<StoredDoc, StorageError> {
        self.with(|inner| {
            let mut new = StoredDoc::default();
            for (seq, chunk) in inner.docs.get(&doc).map_or(&[][..], |d| &d.1[..]) {
                if !known.contains(seq) {
                    new.chunks.push(chunk.clone());
                    new.parts.push(*seq);
                }
            }
            Ok(new)
        })
    }

    async fn append(&self, doc: DocumentId, chunk: Vec<u8>) -> Result<ChunkSeq, StorageError> {
        self.with(|inner| {
            inner.next_seq += 1;
            let seq = inner.next_seq;
            inner.docs.entry(doc).or_default().1.push((seq, chunk));
            Ok(seq)
        })
    }

    async fn compact(
        &self,
        doc: DocumentId,
        snapshot: Vec<u8>,
        covered: &[ChunkSeq],
    ) -> Result<Option<ChunkSeq>, StorageError> {
        self.with(|inner| {
            let entry = inner.docs.entry(doc).or_default();
            entry.0 = Some(snapshot);
            entry.1.retain(|(seq, _)| !covered.contains(seq));
            Ok(None)
        })
    }

    async fn delete(&self, doc: DocumentId) -> Result<(), StorageError> {
        self.with(|inner| {
            inner.docs.remove(&doc);
            Ok(())
        })
    }

    async fn close(&self) -> Result<(), StorageError> {
        self.with(|inner| {
            inner.closed = true;
            Ok(())
        })
    }
}
