//! The embedded default store: one SQLite file in WAL mode.
//!
//! Writes go to one writer thread that commits everything queued at that moment in a single
//! transaction (group commit), with `synchronous = FULL`, so a reply of `Ok` means the data is on
//! disk and one fsync serves many documents under load. Reads use their own connection, which WAL
//! lets run beside the writer.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use labboard_protocol::DocumentId;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use tokio::sync::{mpsc, oneshot};

use super::{ChunkSeq, Storage, StorageError, StoredDoc};

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "labboard.db";

/// Writes waiting for the writer thread. Each document actor has at most one write in flight,
/// so this only fills when hundreds of documents write at once; then actors wait their turn.
const WRITE_QUEUE: usize = 1024;

/// Most writes committed in one transaction; bounds how long one commit holds the others.
const MAX_BATCH: usize = 512;

/// The schema version this binary writes: the number of [`MIGRATIONS`]. A database with a higher
/// `user_version` was written by a newer Labboard and is refused.
pub const SCHEMA_VERSION: i64 = 6;

/// Schema migrations; the database's `PRAGMA user_version` is how many have run. Tables of
/// every part of the server live here, so one file and one version describe the database.
const MIGRATIONS: [&str; SCHEMA_VERSION as usize] = [
    // 1: documents.
    "
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS documents (
    doc_id     TEXT PRIMARY KEY,
    snapshot   BLOB,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS chunks (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT,
    doc_id TEXT NOT NULL REFERENCES documents(doc_id) ON DELETE CASCADE,
    data   BLOB NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS chunks_by_doc ON chunks(doc_id, seq);
",
    // 2: labs and their access tokens.
    "
CREATE TABLE IF NOT EXISTS labs (
    lab_id               TEXT PRIMARY KEY,
    doc_id               TEXT NOT NULL UNIQUE,
    title                TEXT NOT NULL,
    school               TEXT NOT NULL,
    grade                TEXT NOT NULL,
    date                 TEXT NOT NULL,
    join_code            TEXT UNIQUE,
    facilitator_key_hash BLOB NOT NULL,
    created_at           INTEGER NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS tokens (
    token_hash BLOB PRIMARY KEY,
    lab_id     TEXT NOT NULL REFERENCES labs(lab_id) ON DELETE CASCADE,
    role       TEXT NOT NULL,
    name       TEXT NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS tokens_by_lab ON tokens(lab_id);
",
    // 3: the author id each token grants (what its holder's notes carry). Tokens issued before
    // get one of their own.
    "
ALTER TABLE tokens ADD COLUMN author_id TEXT NOT NULL DEFAULT '';
UPDATE tokens SET author_id = 'a' || lower(hex(substr(token_hash, 1, 12)));
",
    // 4: when a lab was ended (milliseconds since the epoch); NULL while it runs.
    "
ALTER TABLE labs ADD COLUMN ended_at INTEGER;
",
    // 5: every device (author id) ever granted a token for a lab, with its role (facilitator
    // once it ever signed in as one), kept after its tokens are swept, so the lab can say how
    // many phones joined it and the export each author's role. Filled from the tokens stored.
    "
CREATE TABLE IF NOT EXISTS members (
    lab_id    TEXT NOT NULL REFERENCES labs(lab_id) ON DELETE CASCADE,
    author_id TEXT NOT NULL,
    role      TEXT NOT NULL,
    PRIMARY KEY (lab_id, author_id)
) STRICT;
INSERT OR IGNORE INTO members (lab_id, author_id, role)
    SELECT lab_id, author_id,
           CASE WHEN SUM(role = 'facilitator') > 0 THEN 'facilitator' ELSE 'observer' END
    FROM tokens GROUP BY lab_id, author_id;
",
    // 6: photos of student work, outside the board's document: the bytes as stored (metadata
    // stripped), keyed by the SHA-256 of the bytes uploaded, and deleted with their lab.
    "
CREATE TABLE IF NOT EXISTS photos (
    lab_id       TEXT NOT NULL REFERENCES labs(lab_id) ON DELETE CASCADE,
    id           TEXT NOT NULL,
    content_type TEXT NOT NULL,
    bytes        BLOB NOT NULL,
    size         INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (lab_id, id)
) STRICT;
",
];

enum WriteOp {
    Append {
        doc: DocumentId,
        chunk: Vec<u8>,
        reply: oneshot::Sender<Result<ChunkSeq, StorageError>>,
    },
    Compact {
        doc: DocumentId,
        snapshot: Vec<u8>,
        covered: Vec<ChunkSeq>,
        reply: oneshot::Sender<Result<(), StorageError>>,
    },
    Delete {
        doc: DocumentId,
        reply: oneshot::Sender<Result<(), StorageError>>,
    },
    Close {
        reply: oneshot::Sender<Result<(), StorageError>>,
    },
}

pub struct SqliteStorage {
    path: PathBuf,
    storage_id: String,
    // std Mutex: held only inside spawn_blocking, never across an await.
    reader: Arc<Mutex<Connection>>,
    // std Mutex: held only to clone or take the sender.
    writer: Mutex<Option<mpsc::Sender<WriteOp>>>,
}

impl SqliteStorage {
    /// Opens (creating if needed) `labboard.db` in `data_dir` and starts the writer thread.
    pub fn open(data_dir: &Path) -> Result<Self, StorageError> {
        Self::open_with(data_dir, |_| Ok(()))
    }

    /// [`Self::open`], with `prepare` run on the writer's connection first (tests use it to
    /// cap the database's size).
    fn open_with(
        data_dir: &Path,
        prepare: impl FnOnce(&Connection) -> rusqlite::Result<()>,
    ) -> Result<Self, StorageError> {
        super::create_data_dir(data_dir)?;
        let path = data_dir.join(DB_FILE);
        restrict_to_owner(&path)?;
        let mut writer_conn = open_connection(&path)?;
        migrate(&mut writer_conn)?;
        prepare(&writer_conn)?;
        let storage_id = storage_id(&writer_conn)?;
        let reader = open_connection(&path)?;
        let (tx, rx) = mpsc::channel(WRITE_QUEUE);
        std::thread::Builder::new()
            .name("labboard-sqlite-writer".into())
            .spawn(move || write_loop(writer_conn, rx))?;
        Ok(Self {
            path,
            storage_id,
            reader: Arc::new(Mutex::new(reader)),
            writer: Mutex::new(Some(tx)),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs a read on the reader connection, off the async threads.
    async fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StorageError> {
        // Closed storage refuses reads as well as writes.
        self.writer()?;
        let reader = Arc::clone(&self.reader);
        tokio::task::spawn_blocking(move || {
            let conn = reader
                .lock()
                .expect("reader lock is never held across a panic");
            read(&conn).map_err(StorageError::from)
        })
        .await
        .map_err(|err| StorageError::Io(std::io::Error::other(err)))?
    }

    fn writer(&self) -> Result<mpsc::Sender<WriteOp>, StorageError> {
        self.writer
            .lock()
            .expect("writer lock is never held across a panic")
            .clone()
            .ok_or(StorageError::Closed)
    }

    async fn write<T>(
        &self,
        op: impl FnOnce(oneshot::Sender<Result<T, StorageError>>) -> WriteOp,
    ) -> Result<T, StorageError> {
        let (reply, answer) = oneshot::channel();
        self.writer()?
            .send(op(reply))
            .await
            .map_err(|_| StorageError::Closed)?;
        answer.await.map_err(|_| StorageError::Closed)?
    }
}

/// Makes the database file and its `-wal` and `-shm` companions readable by the owner only
/// (0600): the file is created so before SQLite opens it (an empty file is a new database to
/// SQLite, which gives the companions the database file's mode), and files an older version
/// left readable by others are tightened.
fn restrict_to_owner(db: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(db)?;
        for suffix in ["", "-wal", "-shm"] {
            let mut name = db.as_os_str().to_owned();
            name.push(suffix);
            let file = PathBuf::from(name);
            match std::fs::metadata(&file) {
                Ok(meta) if meta.permissions().mode() & 0o077 != 0 => {
                    tracing::warn!(file = %file.display(), "database file was readable by others; making it owner-only");
                    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))?;
                }
                Ok(_) => {}
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => return Err(err),
            }
        }
    }
    #[cfg(not(unix))]
    let _ = db;
    Ok(())
}

/// Opens a connection to the database with the settings every part of the server relies on.
pub(crate) fn open_connection(path: &Path) -> Result<Connection, StorageError> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Deleted content is overwritten, so a deleted lab leaves nothing readable in the file.
    conn.pragma_update(None, "secure_delete", "ON")?;
    conn.busy_handler(Some(wait_for_lock))?;
    Ok(conn)
}

/// The readiness probe: writes a row through a fresh connection with the server's settings and
/// reads it back. A fresh connection each time, so the probe sees the database as a restarted
/// server would (a file made read-only, a full or broken disk), and a failed probe leaves nothing
/// behind.
pub(crate) fn write_read_probe(path: &Path) -> Result<(), StorageError> {
    let conn = open_connection(path)?;
    let stamp = uuid::Uuid::new_v4().to_string();
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('ready_probe', ?1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![stamp],
    )?;
    let read: String = conn.query_row(
        "SELECT value FROM meta WHERE key = 'ready_probe'",
        [],
        |row| row.get(0),
    )?;
    if read == stamp {
        Ok(())
    } else {
        Err(StorageError::Io(std::io::Error::other(
            "the probe's row read back differs from what was written",
        )))
    }
}

/// Who goes first for the database file's one write lock: the documents' writer (notes, the
/// changes phones wait on) before bulk writes (photos, hundreds of kB each). SQLite grants the
/// lock to whoever asks when it is free; without this, a stream of photo uploads kept a note's
/// commit waiting behind one photo after another. A bulk writer waits here while a documents'
/// commit is under way or waiting for the lock, so a note waits for at most the one photo being
/// written when it came.
pub(crate) struct WriteOrder {
    urgent: Mutex<usize>,
    done: Condvar,
}

/// The process's one order (every connection of the process writes the same file).
pub(crate) static NOTES_FIRST: WriteOrder = WriteOrder {
    urgent: Mutex::new(0),
    done: Condvar::new(),
};

impl WriteOrder {
    /// Runs an urgent write: bulk writers wait until it is done.
    pub(crate) fn urgent<T>(&self, write: impl FnOnce() -> T) -> T {
        struct Urgent<'a>(&'a WriteOrder);
        impl Drop for Urgent<'_> {
            fn drop(&mut self) {
                let mut urgent = self.0.urgent.lock().unwrap_or_else(|e| e.into_inner());
                *urgent -= 1;
                if *urgent == 0 {
                    self.0.done.notify_all();
                }
            }
        }
        *self.urgent.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        let _urgent = Urgent(self);
        write()
    }

    /// Waits (blocking the thread) until no urgent write is under way or waiting.
    pub(crate) fn bulk_turn(&self) {
        let mut urgent = self.urgent.lock().unwrap_or_else(|e| e.into_inner());
        while *urgent > 0 {
            urgent = self.done.wait(urgent).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// Tries for the lock another connection holds (the documents' writer, the photo store, the labs
/// API all write to the one file) this many times before giving up with SQLITE_BUSY...
const LOCK_TRIES: i32 = 5_000;

/// ...sleeping this long between the first tries, then 1 ms: about 5 s in all.
const LOCK_FIRST_SLEEP: std::time::Duration = std::time::Duration::from_micros(200);

/// SQLite's busy handler. Its own (`busy_timeout`) sleeps up to 100 ms between tries, so a
/// note's write that met a photo's (a few milliseconds of fsync) waited 50–100 ms for nothing;
/// this one tries again soon after the lock is free.
fn wait_for_lock(tries: i32) -> bool {
    if tries >= LOCK_TRIES {
        return false;
    }
    std::thread::sleep(if tries < 50 {
        LOCK_FIRST_SLEEP
    } else {
        std::time::Duration::from_millis(1)
    });
    true
}

fn migrate(conn: &mut Connection) -> Result<(), StorageError> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(StorageError::NewerSchema {
            found: version,
            known: SCHEMA_VERSION,
        });
    }
    let done = usize::try_from(version).unwrap_or(0);
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(done) {
        let tx = conn.transaction()?;
        tx.execute_batch(migration)?;
        tx.pragma_update(None, "user_version", index + 1)?;
        tx.commit()?;
    }
    Ok(())
}

fn storage_id(conn: &Connection) -> Result<String, StorageError> {
    let existing: Option<String> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'storage_id'",
            [],
            |row| row.get(0),
        )
        .optional()?;
    if let Some(id) = existing {
        return Ok(id);
    }
    let id = uuid::Uuid::new_v4().to_string();
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('storage_id', ?1)",
        params![id],
    )?;
    Ok(id)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn write_loop(mut conn: Connection, mut rx: mpsc::Receiver<WriteOp>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let ops = batch.len();
        let started = std::time::Instant::now();
        let close = NOTES_FIRST.urgent(|| commit_batch(&mut conn, &mut batch));
        crate::ops::metrics().storage_commit(ops, started.elapsed());
        if let Some(close_reply) = close {
            checkpoint_truncate(&conn);
            // The caller may have stopped waiting; nothing else to tell.
            drop(close_reply.send(Ok(())));
            return;
        }
    }
}

/// Outcome of one op inside the batch transaction, replied to after the commit.
enum Done {
    Seq(
        oneshot::Sender<Result<ChunkSeq, StorageError>>,
        Result<ChunkSeq, StorageError>,
    ),
    Unit(
        oneshot::Sender<Result<(), StorageError>>,
        Result<(), StorageError>,
    ),
}

impl Done {
    fn error(&self) -> Option<&StorageError> {
        match self {
            Done::Seq(_, result) => result.as_ref().err(),
            Done::Unit(_, result) => result.as_ref().err(),
        }
    }

    fn reply(self) {
        // A caller that gave up waiting has nothing more to learn.
        match self {
            Done::Seq(reply, result) => drop(reply.send(result)),
            Done::Unit(reply, result) => drop(reply.send(result)),
        }
    }

    fn fail(self, cause: &StorageError) {
        match self {
            Done::Seq(reply, _) => drop(reply.send(Err(replicate(cause)))),
            Done::Unit(reply, _) => drop(reply.send(Err(replicate(cause)))),
        }
    }
}

/// Runs the batch in one transaction and replies to every op, whatever happens. Returns the
/// reply channel of a `Close` found in the batch (ops after it are refused).
///
/// Each op runs in a savepoint, so one op that fails on its own (a constraint) does not spoil
/// the others. Some errors end the whole transaction instead: SQLite rolls it back itself on
/// `SQLITE_FULL` or an I/O error, and its savepoints with it. Then every op of the batch fails
/// with that cause, the connection is left outside any transaction and stays usable, and
/// nothing of the batch was stored.
fn commit_batch(
    conn: &mut Connection,
    batch: &mut Vec<WriteOp>,
) -> Option<oneshot::Sender<Result<(), StorageError>>> {
    let mut done = Vec::with_capacity(batch.len());
    let mut close = None;
    let deletes = batch.iter().any(|op| matches!(op, WriteOp::Delete { .. }));
    let mut ops = batch.drain(..);
    let outcome = (|| -> Result<(), StorageError> {
        let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for op in ops.by_ref() {
            if close.is_some() {
                refuse(op);
                continue;
            }
            if let WriteOp::Close { reply } = op {
                close = Some(reply);
                continue;
            }
            let mut sp = match tx.savepoint() {
                Ok(sp) => sp,
                Err(err) => {
                    let cause = StorageError::from(err);
                    op_failed(op, &cause);
                    return Err(cause);
                }
            };
            let result = apply(&sp, op, &mut close);
            let Some(err) = result.as_ref().and_then(Done::error) else {
                let released = sp.commit();
                done.extend(result);
                released?;
                continue;
            };
            if sp.is_autocommit() {
                // SQLite rolled back the whole transaction: its savepoints are gone too.
                let cause = replicate(err);
                drop(sp);
                done.extend(result);
                return Err(cause);
            }
            let rolled_back = sp.rollback();
            drop(sp);
            done.extend(result);
            rolled_back?;
        }
        tx.commit()?;
        Ok(())
    })();
    let unstarted: Vec<WriteOp> = ops.collect();
    match outcome {
        Ok(()) => {
            if deletes {
                // Before anyone hears "deleted": move the deletion into the main file and empty
                // the log, so the deleted content is gone from both (secure_delete zeroes it in
                // the file).
                checkpoint_truncate(conn);
            }
            done.into_iter().for_each(Done::reply);
        }
        Err(cause) => {
            crate::ops::metrics().error(crate::ops::ErrorKind::Storage);
            if cause.is_retryable() {
                // The callers report it, once per document, and try again.
                tracing::debug!(error = %cause, ops = done.len(), "sqlite batch not stored");
            } else {
                tracing::error!(error = %cause, ops = done.len(), "sqlite batch failed");
            }
            for d in done {
                d.fail(&cause);
            }
            for op in unstarted {
                match op {
                    WriteOp::Close { reply } if close.is_none() => close = Some(reply),
                    op if close.is_some() => refuse(op),
                    op => op_failed(op, &cause),
                }
            }
        }
    }
    close
}

/// Answers an op that never ran because its batch failed with `cause`.
fn op_failed(op: WriteOp, cause: &StorageError) {
    match op {
        WriteOp::Append { reply, .. } => drop(reply.send(Err(replicate(cause)))),
        WriteOp::Compact { reply, .. }
        | WriteOp::Delete { reply, .. }
        | WriteOp::Close { reply } => drop(reply.send(Err(replicate(cause)))),
    }
}

/// The same error again, for each op of a failed batch.
fn replicate(err: &StorageError) -> StorageError {
    match err {
        StorageError::DiskFull(text) => StorageError::DiskFull(text.clone()),
        StorageError::Busy(text) => StorageError::Busy(text.clone()),
        StorageError::Unavailable(text) => StorageError::Unavailable(text.clone()),
        StorageError::Postgres(text) => StorageError::Postgres(text.clone()),
        StorageError::Sqlite(err) => StorageError::Sqlite(clone_err(err)),
        StorageError::Io(err) => StorageError::Io(std::io::Error::new(err.kind(), err.to_string())),
        StorageError::Closed => StorageError::Closed,
        StorageError::NewerSchema { found, known } => StorageError::NewerSchema {
            found: *found,
            known: *known,
        },
    }
}

/// Checkpoints the whole log into the database file and truncates it, retrying while readers
/// briefly hold older snapshots.
fn checkpoint_truncate(conn: &Connection) {
    const ATTEMPTS: usize = 20;
    for attempt in 1..=ATTEMPTS {
        // Columns: busy (1 if readers kept it from finishing), log frames, frames checkpointed.
        let busy = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
            row.get::<_, i64>(0)
        });
        match busy {
            Ok(0) => return,
            Ok(_) if attempt < ATTEMPTS => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Ok(_) => tracing::warn!("wal checkpoint stayed busy; deleted data remains in the log"),
            Err(err) => {
                tracing::warn!(error = %err, "wal checkpoint failed");
                return;
            }
        }
    }
}

fn clone_err(err: &rusqlite::Error) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(err.to_string().into())
}

fn refuse(op: WriteOp) {
    match op {
        WriteOp::Append { reply, .. } => drop(reply.send(Err(StorageError::Closed))),
        WriteOp::Compact { reply, .. }
        | WriteOp::Delete { reply, .. }
        | WriteOp::Close { reply } => drop(reply.send(Err(StorageError::Closed))),
    }
}

fn apply(
    conn: &Connection,
    op: WriteOp,
    close: &mut Option<oneshot::Sender<Result<(), StorageError>>>,
) -> Option<Done> {
    match op {
        WriteOp::Append { doc, chunk, reply } => Some(Done::Seq(
            reply,
            append(conn, doc, &chunk).map_err(Into::into),
        )),
        WriteOp::Compact {
            doc,
            snapshot,
            covered,
            reply,
        } => Some(Done::Unit(
            reply,
            compact(conn, doc, &snapshot, &covered).map_err(Into::into),
        )),
        WriteOp::Delete { doc, reply } => {
            Some(Done::Unit(reply, delete(conn, doc).map_err(Into::into)))
        }
        WriteOp::Close { reply } => {
            *close = Some(reply);
            None
        }
    }
}

fn touch_document(conn: &Connection, doc: &str, now: i64) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO documents (doc_id, created_at, updated_at) VALUES (?1, ?2, ?2)
         ON CONFLICT (doc_id) DO UPDATE SET updated_at = excluded.updated_at",
    )?
    .execute(params![doc, now])?;
    Ok(())
}

fn append(conn: &Connection, doc: DocumentId, chunk: &[u8]) -> rusqlite::Result<ChunkSeq> {
    let doc = doc.to_string();
    touch_document(conn, &doc, now_ms())?;
    conn.prepare_cached("INSERT INTO chunks (doc_id, data) VALUES (?1, ?2)")?
        .execute(params![doc, chunk])?;
    Ok(conn.last_insert_rowid())
}

fn compact(
    conn: &Connection,
    doc: DocumentId,
    snapshot: &[u8],
    covered: &[ChunkSeq],
) -> rusqlite::Result<()> {
    let doc = doc.to_string();
    touch_document(conn, &doc, now_ms())?;
    conn.prepare_cached("UPDATE documents SET snapshot = ?2 WHERE doc_id = ?1")?
        .execute(params![doc, snapshot])?;
    let mut delete = conn.prepare_cached("DELETE FROM chunks WHERE doc_id = ?1 AND seq = ?2")?;
    for seq in covered {
        delete.execute(params![doc, seq])?;
    }
    Ok(())
}

fn delete(conn: &Connection, doc: DocumentId) -> rusqlite::Result<()> {
    let doc = doc.to_string();
    conn.prepare_cached("DELETE FROM chunks WHERE doc_id = ?1")?
        .execute(params![doc])?;
    conn.prepare_cached("DELETE FROM documents WHERE doc_id = ?1")?
        .execute(params![doc])?;
    Ok(())
}

fn load(conn: &Connection, doc: DocumentId) -> rusqlite::Result<Option<StoredDoc>> {
    let doc = doc.to_string();
    let snapshot: Option<Option<Vec<u8>>> = conn
        .prepare_cached("SELECT snapshot FROM documents WHERE doc_id = ?1")?
        .query_row(params![doc], |row| row.get(0))
        .optional()?;
    let Some(snapshot) = snapshot else {
        return Ok(None);
    };
    let mut stmt =
        conn.prepare_cached("SELECT seq, data FROM chunks WHERE doc_id = ?1 ORDER BY seq")?;
    let mut stored = StoredDoc {
        snapshot,
        ..StoredDoc::default()
    };
    let rows = stmt.query_map(params![doc], |row| {
        Ok((row.get::<_, ChunkSeq>(0)?, row.get::<_, Vec<u8>>(1)?))
    })?;
    for row in rows {
        let (seq, data) = row?;
        stored.chunks.push(data);
        stored.parts.push(seq);
    }
    Ok(Some(stored))
}

/// The chunks not in `known`; the snapshot is only ever written by the node that holds them all.
fn load_new(conn: &Connection, doc: DocumentId, known: &[ChunkSeq]) -> rusqlite::Result<StoredDoc> {
    let mut stmt =
        conn.prepare_cached("SELECT seq, data FROM chunks WHERE doc_id = ?1 ORDER BY seq")?;
    let rows = stmt.query_map(params![doc.to_string()], |row| {
        Ok((row.get::<_, ChunkSeq>(0)?, row.get::<_, Vec<u8>>(1)?))
    })?;
    let mut new = StoredDoc::default();
    for row in rows {
        let (seq, data) = row?;
        if !known.contains(&seq) {
            new.chunks.push(data);
            new.parts.push(seq);
        }
    }
    Ok(new)
}

#[async_trait]
impl Storage for SqliteStorage {
    fn storage_id(&self) -> &str {
        &self.storage_id
    }

    async fn load(&self, doc: DocumentId) -> Result<Option<StoredDoc>, StorageError> {
        self.read(move |conn| load(conn, doc)).await
    }

    async fn load_new(
        &self,
        doc: DocumentId,
        known: &[ChunkSeq],
    ) -> Result<StoredDoc, StorageError> {
        let known = known.to_vec();
        self.read(move |conn| load_new(conn, doc, &known)).await
    }

    async fn append(&self, doc: DocumentId, chunk: Vec<u8>) -> Result<ChunkSeq, StorageError> {
        self.write(|reply| WriteOp::Append { doc, chunk, reply })
            .await
    }

    async fn compact(
        &self,
        doc: DocumentId,
        snapshot: Vec<u8>,
        covered: &[ChunkSeq],
    ) -> Result<Option<ChunkSeq>, StorageError> {
        let covered = covered.to_vec();
        self.write(|reply| WriteOp::Compact {
            doc,
            snapshot,
            covered,
            reply,
        })
        .await?;
        Ok(None)
    }

    async fn delete(&self, doc: DocumentId) -> Result<(), StorageError> {
        self.write(|reply| WriteOp::Delete { doc, reply }).await
    }

    async fn close(&self) -> Result<(), StorageError> {
        let result = self.write(|reply| WriteOp::Close { reply }).await;
        self.writer
            .lock()
            .expect("writer lock is never held across a panic")
            .take();
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bulk_write_waits_for_the_urgent_ones_under_way() {
        let order = Arc::new(WriteOrder {
            urgent: Mutex::new(0),
            done: Condvar::new(),
        });
        let log = Arc::new(Mutex::new(Vec::new()));
        let (started_tx, started) = std::sync::mpsc::channel();
        let (go, go_rx) = std::sync::mpsc::channel::<()>();
        let urgent = {
            let (order, log) = (Arc::clone(&order), Arc::clone(&log));
            std::thread::spawn(move || {
                order.urgent(|| {
                    started_tx.send(()).unwrap();
                    go_rx.recv().unwrap();
                    log.lock().unwrap().push("note");
                })
            })
        };
        started.recv().unwrap();
        let bulk = {
            let (order, log) = (Arc::clone(&order), Arc::clone(&log));
            std::thread::spawn(move || {
                order.bulk_turn();
                log.lock().unwrap().push("photo");
            })
        };
        // Give the bulk writer every chance to go first if it did not wait.
        std::thread::sleep(std::time::Duration::from_millis(50));
        go.send(()).unwrap();
        urgent.join().unwrap();
        bulk.join().unwrap();
        assert_eq!(*log.lock().unwrap(), ["note", "photo"]);
        // With nothing urgent, a bulk write goes at once; a panicking urgent write still lets go.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            order.urgent(|| panic!("the write failed"))
        }));
        order.bulk_turn();
    }

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn the_data_dir_and_database_files_are_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("data");
        let store = SqliteStorage::open(&dir).unwrap();
        store.append(DocumentId::random(), vec![1]).await.unwrap();
        let db = dir.join(DB_FILE);
        assert_eq!(mode(&dir), 0o700);
        // While open in WAL mode, all three files exist.
        for file in [DB_FILE, "labboard.db-wal", "labboard.db-shm"] {
            assert_eq!(mode(&dir.join(file)), 0o600, "{file}");
        }
        store.close().await.unwrap();

        // A database an older version left readable by others is tightened when opened.
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
        let store = SqliteStorage::open(&dir).unwrap();
        assert_eq!(mode(&db), 0o600);
        store.close().await.unwrap();
    }

    /// A database that may grow by only a few pages answers as a full disk does: SQLite
    /// reports `SQLITE_FULL`, and for a single-row insert it rolls back the whole transaction.
    #[tokio::test]
    async fn a_full_disk_is_reported_as_such_and_storage_keeps_working() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStorage::open_with(dir.path(), |conn| {
            let pages: i64 = conn.query_row("PRAGMA page_count", [], |row| row.get(0))?;
            conn.pragma_update(None, "max_page_count", pages + 8)
        })
        .unwrap();
        let store = Arc::new(store);
        let doc = DocumentId::random();
        let first = store.append(doc, vec![1; 64]).await.unwrap();
        let big = vec![7; 256 * 1024];

        // Alone, and among writes that fit (which may share its batch).
        assert!(matches!(
            store.append(doc, big.clone()).await,
            Err(StorageError::DiskFull(_))
        ));
        let tasks: Vec<_> = (0..8u8)
            .map(|i| {
                let store = Arc::clone(&store);
                let chunk = if i % 2 == 0 { big.clone() } else { vec![i; 16] };
                tokio::spawn(async move { (i, store.append(doc, chunk).await) })
            })
            .collect();
        let mut stored = vec![vec![1; 64]];
        for task in tasks {
            match task.await.unwrap() {
                (i, Ok(_)) => {
                    assert_eq!(i % 2, 1, "a write too big for the disk was stored");
                    stored.push(vec![i; 16]);
                }
                (_, Err(err)) => {
                    assert!(matches!(err, StorageError::DiskFull(_)), "{err}");
                    assert!(err.is_retryable());
                    assert!(err.to_string().starts_with("disk full"), "{err}");
                }
            }
        }

        // A compaction that does not fit stores nothing and deletes no chunk.
        assert!(matches!(
            store.compact(doc, big.clone(), &[first]).await,
            Err(StorageError::DiskFull(_))
        ));
        let mut loaded = store.load(doc).await.unwrap().unwrap();
        assert_eq!(loaded.snapshot, None);
        loaded.chunks.sort();
        stored.sort();
        assert_eq!(loaded.chunks, stored, "exactly the writes answered Ok");

        // Storage was never closed by it.
        store.append(doc, vec![9]).await.unwrap();
        store.compact(doc, vec![5], &[]).await.unwrap();
        store.close().await.unwrap();
    }
}

#[cfg(test)]
mod schema_tests {
    use super::*;

    /// A database as a Labboard of schema `version` left it: only the first `version`
    /// migrations run, and rows of every kind that version stored.
    fn database_at(dir: &Path, version: usize, doc: DocumentId) {
        let mut conn = open_connection(&dir.join(DB_FILE)).unwrap();
        for (index, migration) in MIGRATIONS.iter().enumerate().take(version) {
            let tx = conn.transaction().unwrap();
            tx.execute_batch(migration).unwrap();
            tx.pragma_update(None, "user_version", index + 1).unwrap();
            tx.commit().unwrap();
        }
        let doc = doc.to_string();
        conn.execute(
            "INSERT INTO documents (doc_id, snapshot, created_at, updated_at) VALUES (?1, ?2, 1, 2)",
            params![doc, b"snapshot".as_slice()],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO chunks (doc_id, data) VALUES (?1, ?2)",
            params![doc, b"chunk".as_slice()],
        )
        .unwrap();
        if version >= 2 {
            conn.execute(
                "INSERT INTO labs (lab_id, doc_id, title, school, grade, date, join_code,
                                   facilitator_key_hash, created_at)
                 VALUES ('lab1', ?1, 'Making ten', 'Hill School', '1', '2025-03-04', 'ABC123',
                         x'00', 3)",
                params![doc],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO tokens (token_hash, lab_id, role, name, expires_at)
                 VALUES (x'0102030405060708090a0b0c0d', 'lab1', 'facilitator', 'Ana', 4)",
                [],
            )
            .unwrap();
        }
        if version >= 3 {
            conn.execute(
                "UPDATE tokens SET author_id = 'a-ana' WHERE lab_id = 'lab1'",
                [],
            )
            .unwrap();
        }
        if version >= 4 {
            conn.execute("UPDATE labs SET ended_at = 5 WHERE lab_id = 'lab1'", [])
                .unwrap();
        }
        if version >= 5 {
            conn.execute(
                "INSERT INTO members (lab_id, author_id, role) VALUES ('lab1', 'a-ana', 'facilitator'),
                                                               ('lab1', 'a-ben', 'observer')",
                [],
            )
            .unwrap();
        }
        if version >= 6 {
            conn.execute(
                "INSERT INTO photos (lab_id, id, content_type, bytes, size, created_at)
                 VALUES ('lab1', 'p1', 'image/jpeg', x'ffd8ffd9', 4, 6)",
                [],
            )
            .unwrap();
        }
    }

    fn count(conn: &Connection, sql: &str) -> i64 {
        conn.query_row(sql, [], |row| row.get(0)).unwrap()
    }

    #[tokio::test]
    async fn every_earlier_schema_version_migrates_and_keeps_its_rows() {
        assert_eq!(SCHEMA_VERSION, i64::try_from(MIGRATIONS.len()).unwrap());
        for version in 1..=MIGRATIONS.len() {
            let dir = tempfile::tempdir().unwrap();
            let doc = DocumentId::random();
            database_at(dir.path(), version, doc);

            let store = SqliteStorage::open(dir.path())
                .unwrap_or_else(|err| panic!("opening a version {version} database: {err}"));
            let stored = store.load(doc).await.unwrap().expect("the document");
            assert_eq!(stored.snapshot.as_deref(), Some(b"snapshot".as_slice()));
            assert_eq!(stored.chunks, vec![b"chunk".to_vec()], "version {version}");
            store.close().await.unwrap();

            let conn = open_connection(&dir.path().join(DB_FILE)).unwrap();
            let at: i64 = conn
                .pragma_query_value(None, "user_version", |row| row.get(0))
                .unwrap();
            assert_eq!(at, SCHEMA_VERSION, "from version {version}");
            if version < 2 {
                assert_eq!(count(&conn, "SELECT COUNT(*) FROM labs"), 0);
                continue;
            }
            let (title, ended): (String, Option<i64>) = conn
                .query_row(
                    "SELECT title, ended_at FROM labs WHERE lab_id = 'lab1'",
                    [],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .unwrap();
            assert_eq!(title, "Making ten");
            assert_eq!(ended, (version >= 4).then_some(5), "version {version}");
            // The token's author: its own id (version 2, given one by migration 3) or the
            // one stored.
            let author: String = conn
                .query_row("SELECT author_id FROM tokens", [], |row| row.get(0))
                .unwrap();
            let expected_author = if version >= 3 {
                "a-ana".to_owned()
            } else {
                "a0102030405060708090a0b0c".to_owned()
            };
            assert_eq!(author, expected_author, "version {version}");
            // Members: filled from the tokens by migration 5, or as stored.
            let members: Vec<(String, String)> = conn
                .prepare("SELECT author_id, role FROM members ORDER BY author_id")
                .unwrap()
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            let mut expected = vec![(expected_author, "facilitator".to_owned())];
            if version >= 5 {
                expected.push(("a-ben".to_owned(), "observer".to_owned()));
            }
            assert_eq!(members, expected, "version {version}");
            assert_eq!(
                count(&conn, "SELECT COUNT(*) FROM photos"),
                i64::from(version >= 6),
                "version {version}"
            );
        }
    }

    #[tokio::test]
    async fn a_database_from_a_newer_version_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DB_FILE);
        {
            let conn = open_connection(&path).unwrap();
            conn.pragma_update(None, "user_version", SCHEMA_VERSION + 3)
                .unwrap();
        }
        let err = SqliteStorage::open(dir.path())
            .err()
            .expect("a newer database is refused");
        assert!(
            matches!(err, StorageError::NewerSchema { found, known }
                if found == SCHEMA_VERSION + 3 && known == SCHEMA_VERSION),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(
            text.contains(&format!("schema version {}", SCHEMA_VERSION + 3)),
            "{text}"
        );
        assert!(text.contains(&format!("up to {SCHEMA_VERSION}")), "{text}");
        let conn = open_connection(&path).unwrap();
        let at: i64 = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap();
        assert_eq!(at, SCHEMA_VERSION + 3);
        assert_eq!(
            count(
                &conn,
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'"
            ),
            0,
            "nothing was created in it"
        );
    }
}
