//! Durable document storage behind a small trait.
//!
//! A document is stored as snapshots (`Automerge::save`) plus the incremental chunks appended
//! since (`Automerge::save_after`), each part with a sequence number. Loading concatenates
//! them; compaction stores a new snapshot and deletes, in one transaction, exactly the parts the
//! snapshot covers: the ones its writer had loaded or appended. So when two nodes hold the same
//! document open (PostgreSQL), a compaction never deletes a part whose changes its snapshot
//! lacks. An `append` that returned `Ok` is durable: the document actor only advertises heads
//! after it.

use std::path::Path;

use async_trait::async_trait;
use labboard_protocol::DocumentId;

pub mod memory;
pub mod postgres;
pub mod sqlite;

pub use memory::MemoryStorage;
pub use postgres::PgStorage;
pub use sqlite::SqliteStorage;

/// Creates the data directory, and any missing parent, for the owner only (mode 0700 on Unix).
/// An existing directory keeps its mode: it may hold other things; the files the server writes
/// in it are owner-only themselves.
pub fn create_data_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// The position of an appended chunk; increases with every append across all documents.
pub type ChunkSeq = i64;

/// What storage holds of one document (or, from [`Storage::load_new`], what was added to it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoredDoc {
    /// The snapshot, or several concatenated (what `Automerge::load` accepts).
    pub snapshot: Option<Vec<u8>>,
    /// Incremental chunks in append order.
    pub chunks: Vec<Vec<u8>>,
    /// The sequence numbers of the parts returned, snapshots and chunks: what a compaction by
    /// the holder of these bytes may delete ([`Storage::compact`]'s `covered`).
    pub parts: Vec<ChunkSeq>,
}

impl StoredDoc {
    /// The bytes `Automerge::load` accepts: snapshot then chunks, concatenated.
    pub fn concatenated(&self) -> Vec<u8> {
        let size = self.snapshot.as_ref().map_or(0, Vec::len)
            + self.chunks.iter().map(Vec::len).sum::<usize>();
        let mut all = Vec::with_capacity(size);
        if let Some(snapshot) = &self.snapshot {
            all.extend_from_slice(snapshot);
        }
        for chunk in &self.chunks {
            all.extend_from_slice(chunk);
        }
        all
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The file system of the data directory has no space left (SQLite's `SQLITE_FULL`, or
    /// `ENOSPC`). Nothing of the failed write was stored, and storage works again once there is
    /// space.
    #[error("disk full: no space left for the database ({0})")]
    DiskFull(String),
    /// Another connection to the database holds a lock for longer than the busy timeout.
    #[error("database busy: {0}")]
    Busy(String),
    #[error("sqlite: {0}")]
    Sqlite(rusqlite::Error),
    /// The PostgreSQL server cannot be reached or is shutting down; the same write may succeed
    /// once it is back.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("postgresql: {0}")]
    Postgres(String),
    #[error("storage io: {0}")]
    Io(std::io::Error),
    #[error("storage is closed")]
    Closed,
    /// The database was written by a newer Labboard: its schema version is above the newest
    /// this binary knows. Nothing was changed in it.
    #[error(
        "the database has schema version {found}, written by a newer Labboard; this Labboard \
         knows schema versions up to {known}. Run the newer Labboard on it, or restore a backup \
         taken before the upgrade (see the README, Backups)"
    )]
    NewerSchema { found: i64, known: i64 },
}

impl StorageError {
    /// Whether the same write may succeed later, with nothing to change but waiting: the disk
    /// is full, the database is busy or unreachable. Anything else is a fault that retrying will not fix.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::DiskFull(_) | Self::Busy(_) | Self::Unavailable(_)
        )
    }
}

impl From<rusqlite::Error> for StorageError {
    fn from(err: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode;
        match err.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => Self::DiskFull(err.to_string()),
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
                Self::Busy(err.to_string())
            }
            _ => Self::Sqlite(err),
        }
    }
}

impl From<std::io::Error> for StorageError {
    fn from(err: std::io::Error) -> Self {
        if err.kind() == std::io::ErrorKind::StorageFull {
            Self::DiskFull(err.to_string())
        } else {
            Self::Io(err)
        }
    }
}

#[async_trait]
pub trait Storage: Send + Sync + 'static {
    /// The stable id of this store, sent to peers as `storageId`.
    fn storage_id(&self) -> &str;
    async fn load(&self, doc: DocumentId) -> Result<Option<StoredDoc>, StorageError>;
    /// Durably appends one incremental chunk.
    async fn append(&self, doc: DocumentId, chunk: Vec<u8>) -> Result<ChunkSeq, StorageError>;
    /// The parts of the document stored since: every part whose sequence number is not in
    /// `known` (parts appended or compacted by another node). Empty if there are none, or if the
    /// document is not stored.
    async fn load_new(
        &self,
        doc: DocumentId,
        known: &[ChunkSeq],
    ) -> Result<StoredDoc, StorageError>;
    /// Stores `snapshot` and deletes the parts listed in `covered`, whose changes the snapshot
    /// holds, and no other. Returns the snapshot's own sequence number where the backend keeps
    /// snapshots as parts (then it goes into the next compaction's `covered`), `None` where the
    /// snapshot replaces the one before (a single node owns the store).
    async fn compact(
        &self,
        doc: DocumentId,
        snapshot: Vec<u8>,
        covered: &[ChunkSeq],
    ) -> Result<Option<ChunkSeq>, StorageError>;
    /// Removes everything stored of the document.
    async fn delete(&self, doc: DocumentId) -> Result<(), StorageError>;
    /// Finishes outstanding writes; later calls fail with `Closed`.
    async fn close(&self) -> Result<(), StorageError>;
}
