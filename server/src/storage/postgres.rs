//! Documents on PostgreSQL, the store several nodes share.
//!
//! Every part of a document, snapshot or incremental chunk, is a row of `doc_parts` with its
//! own sequence number. An append inserts one chunk and announces it on
//! [`CHUNKS_CHANNEL`](crate::pg::CHUNKS_CHANNEL) in the same transaction, so other nodes hear of
//! it only once it is committed. A compaction inserts its snapshot as a part and deletes exactly
//! the parts it covered: when two nodes compact the same document at once, each keeps its own
//! snapshot and neither deletes a part whose changes it lacks.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use labboard_protocol::DocumentId;
use tokio_postgres::Row;

use super::{ChunkSeq, Storage, StorageError, StoredDoc};
use crate::pg::{Pg, CHUNKS_CHANNEL};

/// Inserts the document's row, or marks it updated.
const TOUCH_DOCUMENT: &str = "INSERT INTO documents (doc_id, created_at, updated_at)
     VALUES ($1, $2, $2)
     ON CONFLICT (doc_id) DO UPDATE SET updated_at = EXCLUDED.updated_at";

pub struct PgStorage {
    pg: Pg,
    storage_id: String,
    /// Set by `close`. The pool is shared with the other stores of the node (labs, photos), so
    /// closing documents' storage refuses its own calls and leaves the pool to them.
    closed: AtomicBool,
}

impl std::fmt::Debug for PgStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStorage")
            .field("storage_id", &self.storage_id)
            .finish_non_exhaustive()
    }
}

impl PgStorage {
    /// Documents' storage on the database of `pg` (already migrated by [`Pg::connect`]).
    pub async fn new(pg: Pg) -> Result<Self, StorageError> {
        let storage_id = pg.storage_id().await?;
        Ok(Self {
            pg,
            storage_id,
            closed: AtomicBool::new(false),
        })
    }

    /// A connection of the pool, unless storage was closed.
    async fn client(&self) -> Result<deadpool_postgres::Object, StorageError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StorageError::Closed);
        }
        self.pg.client().await
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Adds rows of `(seq, snapshot, data)` to `stored`, in the order given (by sequence number).
fn collect_parts(stored: &mut StoredDoc, rows: &[Row]) -> Result<(), StorageError> {
    for row in rows {
        let seq: Option<ChunkSeq> = row.try_get(0)?;
        let Some(seq) = seq else {
            // The document's row without any part (the outer join of `load`).
            continue;
        };
        let snapshot: bool = row.try_get(1)?;
        let data: Vec<u8> = row.try_get(2)?;
        if snapshot {
            stored
                .snapshot
                .get_or_insert_with(Vec::new)
                .extend_from_slice(&data);
        } else {
            stored.chunks.push(data);
        }
        stored.parts.push(seq);
    }
    Ok(())
}

#[async_trait]
impl Storage for PgStorage {
    fn storage_id(&self) -> &str {
        &self.storage_id
    }

    async fn load(&self, doc: DocumentId) -> Result<Option<StoredDoc>, StorageError> {
        let client = self.client().await?;
        // One statement, so the document's row and its parts are read from one snapshot.
        let rows = client
            .query(
                "SELECT p.seq, p.snapshot, p.data
                 FROM documents d LEFT JOIN doc_parts p ON p.doc_id = d.doc_id
                 WHERE d.doc_id = $1
                 ORDER BY p.seq",
                &[&doc.to_string()],
            )
            .await?;
        if rows.is_empty() {
            return Ok(None);
        }
        let mut stored = StoredDoc::default();
        collect_parts(&mut stored, &rows)?;
        Ok(Some(stored))
    }

    async fn append(&self, doc: DocumentId, chunk: Vec<u8>) -> Result<ChunkSeq, StorageError> {
        let mut client = self.client().await?;
        let doc = doc.to_string();
        let tx = client.transaction().await?;
        let seq = insert_part(&tx, &doc, false, &chunk).await?;
        // Delivered to listeners only when the transaction commits.
        let payload = format!("{doc} {seq} {}", self.pg.node_id());
        tx.execute("SELECT pg_notify($1, $2)", &[&CHUNKS_CHANNEL, &payload])
            .await?;
        tx.commit().await?;
        Ok(seq)
    }

    async fn load_new(
        &self,
        doc: DocumentId,
        known: &[ChunkSeq],
    ) -> Result<StoredDoc, StorageError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT seq, snapshot, data FROM doc_parts
                 WHERE doc_id = $1 AND seq <> ALL($2)
                 ORDER BY seq",
                &[&doc.to_string(), &known],
            )
            .await?;
        let mut new = StoredDoc::default();
        collect_parts(&mut new, &rows)?;
        Ok(new)
    }

    async fn compact(
        &self,
        doc: DocumentId,
        snapshot: Vec<u8>,
        covered: &[ChunkSeq],
    ) -> Result<Option<ChunkSeq>, StorageError> {
        let mut client = self.client().await?;
        let doc = doc.to_string();
        let tx = client.transaction().await?;
        let seq = insert_part(&tx, &doc, true, &snapshot).await?;
        tx.execute(
            "DELETE FROM doc_parts WHERE doc_id = $1 AND seq = ANY($2)",
            &[&doc, &covered],
        )
        .await?;
        tx.commit().await?;
        Ok(Some(seq))
    }

    async fn delete(&self, doc: DocumentId) -> Result<(), StorageError> {
        let client = self.client().await?;
        // The parts go with the document's row (ON DELETE CASCADE).
        client
            .execute(
                "DELETE FROM documents WHERE doc_id = $1",
                &[&doc.to_string()],
            )
            .await?;
        Ok(())
    }

    async fn close(&self) -> Result<(), StorageError> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Err(StorageError::Closed);
        }
        Ok(())
    }
}

/// Records the document as touched and inserts one part of it; returns the part's number.
async fn insert_part(
    tx: &tokio_postgres::Transaction<'_>,
    doc: &str,
    snapshot: bool,
    data: &[u8],
) -> Result<ChunkSeq, StorageError> {
    tx.execute(TOUCH_DOCUMENT, &[&doc, &now_ms()]).await?;
    let row = tx
        .query_one(
            "INSERT INTO doc_parts (doc_id, snapshot, data) VALUES ($1, $2, $3) RETURNING seq",
            &[&doc, &snapshot, &data],
        )
        .await?;
    Ok(row.try_get(0)?)
}
