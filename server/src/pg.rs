//! PostgreSQL, the store of a cluster: any number of nodes share one database for documents,
//! labs, tokens and photos, and tell each other what changed through `LISTEN/NOTIFY`.
//!
//! Selected by `--database-url postgres://…`; without it the embedded SQLite file is used and
//! nothing here runs.

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::NoTls;

use crate::storage::StorageError;

/// PostgreSQL for the unit tests: the tests crate's module (this crate cannot depend on it).
#[cfg(test)]
#[path = "../../tests/src/pg.rs"]
#[allow(dead_code)] // The helpers only the integration tests use.
pub(crate) mod testing;

/// The schema version this binary writes: the number of [`MIGRATIONS`]. A database with a
/// higher version was written by a newer Labboard and is refused.
pub const SCHEMA_VERSION: i64 = 1;

/// Connections in the pool of one node.
const POOL_SIZE: usize = 16;

/// How long a request waits for a connection of the pool, and for one to be made.
const POOL_WAIT: Duration = Duration::from_secs(10);

/// Key of the advisory lock that lets one node at a time migrate the schema.
const MIGRATION_LOCK: i64 = 0x6c61_6262_6f61_7264; // "labboard"

/// The channel on which nodes announce stored chunks: `<doc id> <seq> <node id>`.
pub const CHUNKS_CHANNEL: &str = "labboard_chunks";
/// The channel on which nodes announce changes of labs: `<event> <lab id> <doc id> <node id>`.
pub const LABS_CHANNEL: &str = "labboard_labs";

/// Schema migrations, in order; `meta.schema_version` is how many have run.
///
/// Documents are stored as parts: a snapshot (`Automerge::save`) or an incremental chunk
/// (`Automerge::save_after`), each with a sequence number. A document may have more than one
/// snapshot part: two nodes that compact the same document at once each write their own, and
/// each deletes only the parts it had applied, so no change is ever lost to a compaction.
const MIGRATIONS: [&str; SCHEMA_VERSION as usize] = [
    // 1: everything.
    "
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS documents (
    doc_id     TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS doc_parts (
    seq      BIGSERIAL PRIMARY KEY,
    doc_id   TEXT NOT NULL REFERENCES documents(doc_id) ON DELETE CASCADE,
    snapshot BOOLEAN NOT NULL,
    data     BYTEA NOT NULL
);
CREATE INDEX IF NOT EXISTS doc_parts_by_doc ON doc_parts(doc_id, seq);
CREATE TABLE IF NOT EXISTS labs (
    lab_id               TEXT PRIMARY KEY,
    doc_id               TEXT NOT NULL UNIQUE,
    title                TEXT NOT NULL,
    school               TEXT NOT NULL,
    grade                TEXT NOT NULL,
    date                 TEXT NOT NULL,
    join_code            TEXT UNIQUE,
    facilitator_key_hash BYTEA NOT NULL,
    created_at           BIGINT NOT NULL,
    ended_at             BIGINT
);
CREATE TABLE IF NOT EXISTS tokens (
    token_hash BYTEA PRIMARY KEY,
    lab_id     TEXT NOT NULL REFERENCES labs(lab_id) ON DELETE CASCADE,
    role       TEXT NOT NULL,
    name       TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    author_id  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tokens_by_lab ON tokens(lab_id);
CREATE INDEX IF NOT EXISTS tokens_by_expiry ON tokens(expires_at);
CREATE TABLE IF NOT EXISTS members (
    lab_id    TEXT NOT NULL REFERENCES labs(lab_id) ON DELETE CASCADE,
    author_id TEXT NOT NULL,
    role      TEXT NOT NULL,
    PRIMARY KEY (lab_id, author_id)
);
CREATE TABLE IF NOT EXISTS photos (
    lab_id       TEXT NOT NULL REFERENCES labs(lab_id) ON DELETE CASCADE,
    id           TEXT NOT NULL,
    content_type TEXT NOT NULL,
    bytes        BYTEA NOT NULL,
    size         BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (lab_id, id)
);
",
];

/// The error and its causes: `tokio_postgres` keeps what the server said (or the I/O error) in
/// the source, and says only "db error" itself.
fn describe(err: &tokio_postgres::Error) -> String {
    let mut text = err.to_string();
    let mut cause = std::error::Error::source(err);
    while let Some(err) = cause {
        text.push_str(": ");
        text.push_str(&err.to_string());
        cause = err.source();
    }
    text
}

impl From<tokio_postgres::Error> for StorageError {
    fn from(err: tokio_postgres::Error) -> Self {
        use tokio_postgres::error::SqlState;
        let code = err.code();
        let text = describe(&err);
        if err.is_closed()
            || code.is_none() && err.as_db_error().is_none()
            || code.is_some_and(|code| {
                code.code().starts_with("08") // connection exception
                    || *code == SqlState::ADMIN_SHUTDOWN
                    || *code == SqlState::CRASH_SHUTDOWN
                    || *code == SqlState::CANNOT_CONNECT_NOW
                    || *code == SqlState::TOO_MANY_CONNECTIONS
                    || *code == SqlState::T_R_SERIALIZATION_FAILURE
                    || *code == SqlState::T_R_DEADLOCK_DETECTED
            })
        {
            Self::Unavailable(text)
        } else if code == Some(&SqlState::DISK_FULL) {
            Self::DiskFull(text)
        } else {
            Self::Postgres(text)
        }
    }
}

impl From<deadpool_postgres::PoolError> for StorageError {
    fn from(err: deadpool_postgres::PoolError) -> Self {
        match err {
            // No connection could be made (the server is down or restarting, or refuses this
            // login for now): nothing was written, and the same write may work later.
            deadpool_postgres::PoolError::Backend(err) => match Self::from(err) {
                Self::Postgres(text) | Self::DiskFull(text) => Self::Unavailable(text),
                other => other,
            },
            other => Self::Unavailable(other.to_string()),
        }
    }
}

/// The connection pool of one node, on a migrated database.
#[derive(Clone)]
pub struct Pg {
    pool: Pool,
    /// What the pool's connections were made from, for the node's listening connection.
    config: std::sync::Arc<tokio_postgres::Config>,
    /// This node's id for this run, in every notification it sends, so it can tell its own.
    node: String,
}

impl std::fmt::Debug for Pg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password.
        f.debug_struct("Pg").finish_non_exhaustive()
    }
}

impl Pg {
    /// Connects to `url`, checks that the database is reachable and migrates its schema (one
    /// node at a time, under an advisory lock). Refuses a database written by a newer
    /// Labboard without changing it.
    pub async fn connect(url: &str) -> Result<Self, StorageError> {
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|err: tokio_postgres::Error| StorageError::Postgres(format!("{err}")))?;
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(POOL_WAIT))
            .recycle_timeout(Some(POOL_WAIT))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|err| StorageError::Postgres(err.to_string()))?;
        let pg = Self {
            pool,
            config: std::sync::Arc::new(config),
            node: uuid::Uuid::new_v4().simple().to_string(),
        };
        pg.migrate().await?;
        Ok(pg)
    }

    /// A connection of the pool.
    pub async fn client(&self) -> Result<deadpool_postgres::Object, StorageError> {
        Ok(self.pool.get().await?)
    }

    /// A connection of its own, outside the pool, for `LISTEN`: the caller polls it for
    /// notifications.
    pub(crate) async fn dedicated(
        &self,
    ) -> Result<
        (
            tokio_postgres::Client,
            tokio_postgres::Connection<tokio_postgres::Socket, tokio_postgres::tls::NoTlsStream>,
        ),
        StorageError,
    > {
        Ok(self.config.connect(NoTls).await?)
    }

    /// This node's id for this run (a new one at every start).
    pub fn node_id(&self) -> &str {
        &self.node
    }

    async fn migrate(&self) -> Result<(), StorageError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        )
        .await?;
        let version: i64 = tx
            .query_opt("SELECT value FROM meta WHERE key = 'schema_version'", &[])
            .await?
            .map(|row| row.get::<_, String>(0))
            .and_then(|text| text.parse().ok())
            .unwrap_or(0);
        if version > SCHEMA_VERSION {
            return Err(StorageError::NewerSchema {
                found: version,
                known: SCHEMA_VERSION,
            });
        }
        let done = usize::try_from(version).unwrap_or(0);
        for migration in MIGRATIONS.iter().skip(done) {
            tx.batch_execute(migration).await?;
        }
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('schema_version', $1)
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            &[&SCHEMA_VERSION.to_string()],
        )
        .await?;
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('storage_id', $1) ON CONFLICT (key) DO NOTHING",
            &[&uuid::Uuid::new_v4().to_string()],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The database's stable id, the same on every node (sent to peers as `storageId`).
    pub async fn storage_id(&self) -> Result<String, StorageError> {
        let client = self.client().await?;
        let row = client
            .query_one("SELECT value FROM meta WHERE key = 'storage_id'", &[])
            .await?;
        Ok(row.get(0))
    }

    /// Writes a row through a pooled connection and reads it back, in one transaction (so
    /// nodes probing at once take turns on the one row): the readiness probe.
    pub async fn write_read_probe(&self) -> Result<(), StorageError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let stamp = uuid::Uuid::new_v4().to_string();
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('ready_probe', $1)
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            &[&stamp],
        )
        .await?;
        let read: String = tx
            .query_one("SELECT value FROM meta WHERE key = 'ready_probe'", &[])
            .await?
            .get(0);
        tx.commit().await?;
        if read == stamp {
            Ok(())
        } else {
            Err(StorageError::Postgres(
                "the probe's row read back differs from what was written".into(),
            ))
        }
    }
}
