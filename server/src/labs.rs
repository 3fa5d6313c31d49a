//! Labs and who may reach them: lab records, join codes, facilitator keys and access tokens,
//! kept in the server's store, the SQLite file or PostgreSQL (tables `labs`, `tokens` and
//! `members`; a lab's `photos` are deleted with it).
//!
//! A token is granted by joining with a code (observer) or by presenting the facilitator key
//! (facilitator). It names one lab and one role, expires, and is stored only as a hash.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use labboard_protocol::DocumentId;
use rusqlite::{params, Connection, ErrorCode, OptionalExtension};
use serde::Serialize;
use tokio_postgres::error::SqlState;

use crate::pg::{Pg, LABS_CHANNEL};
use crate::secrets;
use crate::storage::sqlite::open_connection;
use crate::storage::StorageError;

/// Attempts at drawing a join code that no active lab uses before giving up.
const JOIN_CODE_ATTEMPTS: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Observer,
    Facilitator,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Observer => "observer",
            Role::Facilitator => "facilitator",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "observer" => Some(Role::Observer),
            "facilitator" => Some(Role::Facilitator),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A lab as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lab {
    pub lab_id: String,
    pub doc_id: DocumentId,
    pub title: String,
    pub school: String,
    pub grade: String,
    pub date: String,
    pub join_code: Option<String>,
    /// Milliseconds since the epoch.
    pub created_at: i64,
    /// When the lab was ended (milliseconds since the epoch); `None` while it runs.
    pub ended_at: Option<i64>,
}

/// What a valid token allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub lab_id: String,
    pub doc_id: DocumentId,
    pub role: Role,
    pub name: String,
    /// What this holder's notes, reactions and time-outs carry as `authorId`: the server checks
    /// every change against it.
    pub author_id: String,
    /// Milliseconds since the epoch.
    pub expires_at: i64,
}

impl Grant {
    /// Time left before the token expires.
    pub fn remaining(&self) -> Duration {
        let left = self.expires_at.saturating_sub(now_ms());
        Duration::from_millis(u64::try_from(left).unwrap_or(0))
    }
}

/// A freshly issued token.
#[derive(Debug, Clone)]
pub struct Issued {
    pub token: String,
    pub grant: Grant,
}

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("no free join code found after {JOIN_CODE_ATTEMPTS} attempts")]
    NoFreeJoinCode,
}

impl From<rusqlite::Error> for LabError {
    fn from(err: rusqlite::Error) -> Self {
        LabError::Storage(StorageError::from(err))
    }
}

impl From<tokio_postgres::Error> for LabError {
    fn from(err: tokio_postgres::Error) -> Self {
        LabError::Storage(StorageError::from(err))
    }
}

pub struct LabStore {
    backend: Backend,
    token_ttl: Duration,
}

enum Backend {
    /// The server's SQLite file. std Mutex: held only inside spawn_blocking, never across an
    /// await.
    Sqlite(Arc<Mutex<Connection>>),
    /// The database every node shares; lab ends and deletions are announced on
    /// [`LABS_CHANNEL`].
    Postgres(Pg),
}

/// What giving a lab a new join code did.
enum CodeWrite {
    Written,
    /// An active lab has this code already: draw another.
    Taken,
    NoLab,
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl LabStore {
    /// Opens the lab tables of the SQLite database at `path` (already migrated by the storage).
    pub fn open(path: &Path, token_ttl: Duration) -> Result<Self, LabError> {
        Ok(Self {
            backend: Backend::Sqlite(Arc::new(Mutex::new(open_connection(path)?))),
            token_ttl,
        })
    }

    /// The lab tables of the PostgreSQL database of `pg` (migrated by [`Pg::connect`]).
    pub fn postgres(pg: Pg, token_ttl: Duration) -> Self {
        Self {
            backend: Backend::Postgres(pg),
            token_ttl,
        }
    }

    /// Records a new lab with a fresh join code; returns the code.
    pub async fn create(
        &self,
        lab_id: String,
        doc_id: DocumentId,
        info: labboard_protocol::board::LabInfo,
        facilitator_key_hash: Vec<u8>,
    ) -> Result<String, LabError> {
        let now = now_ms();
        for _ in 0..JOIN_CODE_ATTEMPTS {
            let code = secrets::new_join_code();
            let lab = NewLab {
                lab_id: lab_id.clone(),
                doc_id: doc_id.to_string(),
                info: info.clone(),
                facilitator_key_hash: facilitator_key_hash.clone(),
                join_code: code.clone(),
                created_at: now,
            };
            if self.insert(lab).await? {
                return Ok(code);
            }
        }
        Err(LabError::NoFreeJoinCode)
    }

    /// Records the lab; false if an active lab has its join code already.
    async fn insert(&self, lab: NewLab) -> Result<bool, LabError> {
        match &self.backend {
            Backend::Sqlite(conn) => {
                blocking(conn, move |conn| {
                    let inserted = conn.execute(
                        "INSERT INTO labs (lab_id, doc_id, title, school, grade, date, join_code,
                                           facilitator_key_hash, created_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                        params![
                            lab.lab_id,
                            lab.doc_id,
                            lab.info.title,
                            lab.info.school,
                            lab.info.grade,
                            lab.info.date,
                            lab.join_code,
                            lab.facilitator_key_hash,
                            lab.created_at
                        ],
                    );
                    match inserted {
                        Ok(_) => Ok(true),
                        Err(err) if is_join_code_conflict(&err) => Ok(false),
                        Err(err) => Err(err.into()),
                    }
                })
                .await
            }
            Backend::Postgres(pg) => {
                let client = pg.client().await?;
                let inserted = client
                    .execute(
                        "INSERT INTO labs (lab_id, doc_id, title, school, grade, date, join_code,
                                           facilitator_key_hash, created_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                        &[
                            &lab.lab_id,
                            &lab.doc_id,
                            &lab.info.title,
                            &lab.info.school,
                            &lab.info.grade,
                            &lab.info.date,
                            &lab.join_code,
                            &lab.facilitator_key_hash,
                            &lab.created_at,
                        ],
                    )
                    .await;
                match inserted {
                    Ok(_) => Ok(true),
                    Err(err) if is_pg_join_code_conflict(&err) => Ok(false),
                    Err(err) => Err(err.into()),
                }
            }
        }
    }

    /// The labs that `filter` selects, in the SQL of the store's backend.
    async fn select(&self, filter: LabFilter) -> Result<Vec<Lab>, LabError> {
        match &self.backend {
            Backend::Sqlite(conn) => {
                blocking(conn, move |conn| {
                    let (condition, args): (&str, Vec<&dyn rusqlite::ToSql>) = match &filter {
                        LabFilter::All => ("ORDER BY created_at DESC, lab_id", vec![]),
                        LabFilter::Id(id) => ("WHERE lab_id = ?1", vec![id]),
                        LabFilter::JoinCode(code) => {
                            ("WHERE join_code = ?1 AND ended_at IS NULL", vec![code])
                        }
                        LabFilter::FacilitatorKey(id, hash) => (
                            "WHERE lab_id = ?1 AND facilitator_key_hash = ?2",
                            vec![id, hash],
                        ),
                        LabFilter::EndedBefore(cutoff) => {
                            ("WHERE ended_at IS NOT NULL AND ended_at < ?1", vec![cutoff])
                        }
                    };
                    let mut stmt =
                        conn.prepare_cached(&format!("{LAB_COLUMNS} FROM labs {condition}"))?;
                    let rows = stmt.query_map(args.as_slice(), |row| {
                        Ok(StoredLab {
                            lab_id: row.get(0)?,
                            doc_id: row.get(1)?,
                            title: row.get(2)?,
                            school: row.get(3)?,
                            grade: row.get(4)?,
                            date: row.get(5)?,
                            join_code: row.get(6)?,
                            created_at: row.get(7)?,
                            ended_at: row.get(8)?,
                        })
                    })?;
                    let rows = rows.collect::<Result<Vec<_>, _>>()?;
                    Ok(rows.into_iter().filter_map(StoredLab::into_lab).collect())
                })
                .await
            }
            Backend::Postgres(pg) => {
                type Arg<'a> = &'a (dyn tokio_postgres::types::ToSql + Sync);
                let (condition, args): (&str, Vec<Arg<'_>>) = match &filter {
                    // COLLATE "C": ties ordered by bytes, as SQLite does.
                    LabFilter::All => ("ORDER BY created_at DESC, lab_id COLLATE \"C\"", vec![]),
                    LabFilter::Id(id) => ("WHERE lab_id = $1", vec![id]),
                    LabFilter::JoinCode(code) => {
                        ("WHERE join_code = $1 AND ended_at IS NULL", vec![code])
                    }
                    LabFilter::FacilitatorKey(id, hash) => (
                        "WHERE lab_id = $1 AND facilitator_key_hash = $2",
                        vec![id, hash],
                    ),
                    LabFilter::EndedBefore(cutoff) => {
                        ("WHERE ended_at IS NOT NULL AND ended_at < $1", vec![cutoff])
                    }
                };
                let client = pg.client().await?;
                let stmt = client
                    .prepare_cached(&format!("{LAB_COLUMNS} FROM labs {condition}"))
                    .await?;
                let mut labs = Vec::new();
                for row in client.query(&stmt, &args).await? {
                    let stored = StoredLab {
                        lab_id: row.try_get(0)?,
                        doc_id: row.try_get(1)?,
                        title: row.try_get(2)?,
                        school: row.try_get(3)?,
                        grade: row.try_get(4)?,
                        date: row.try_get(5)?,
                        join_code: row.try_get(6)?,
                        created_at: row.try_get(7)?,
                        ended_at: row.try_get(8)?,
                    };
                    labs.extend(stored.into_lab());
                }
                Ok(labs)
            }
        }
    }

    pub async fn list(&self) -> Result<Vec<Lab>, LabError> {
        self.select(LabFilter::All).await
    }

    pub async fn get(&self, lab_id: &str) -> Result<Option<Lab>, LabError> {
        let labs = self.select(LabFilter::Id(lab_id.to_owned())).await?;
        Ok(labs.into_iter().next())
    }

    /// The running lab whose current join code this is (already normalized): an ended lab's
    /// code joins nothing.
    pub async fn by_join_code(&self, code: &str) -> Result<Option<Lab>, LabError> {
        let labs = self.select(LabFilter::JoinCode(code.to_owned())).await?;
        Ok(labs.into_iter().next())
    }

    /// The lab, if `key_hash` is its facilitator key's hash.
    pub async fn by_facilitator_key(
        &self,
        lab_id: &str,
        key_hash: Vec<u8>,
    ) -> Result<Option<Lab>, LabError> {
        let labs = self
            .select(LabFilter::FacilitatorKey(lab_id.to_owned(), key_hash))
            .await?;
        Ok(labs.into_iter().next())
    }

    /// Issues a token for `lab` with `role`, valid for the configured lifetime. Expired tokens
    /// are swept at the same time.
    pub async fn issue(
        &self,
        lab: &Lab,
        role: Role,
        name: String,
        author_id: String,
    ) -> Result<Issued, LabError> {
        let token = secrets::new_token();
        let token_hash = secrets::hash(&token);
        let now = now_ms();
        let ttl = i64::try_from(self.token_ttl.as_millis()).unwrap_or(i64::MAX);
        let grant = Grant {
            lab_id: lab.lab_id.clone(),
            doc_id: lab.doc_id,
            role,
            name,
            author_id,
            expires_at: now.saturating_add(ttl),
        };
        let row = grant.clone();
        match &self.backend {
            Backend::Sqlite(conn) => {
                blocking(conn, move |conn| {
                    let tx = conn.transaction()?;
                    tx.prepare_cached("DELETE FROM tokens WHERE expires_at <= ?1")?
                        .execute(params![now])?;
                    tx.prepare_cached(
                        "INSERT INTO tokens (token_hash, lab_id, role, name, author_id, expires_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    )?
                    .execute(params![
                        token_hash,
                        row.lab_id,
                        row.role.as_str(),
                        row.name,
                        row.author_id,
                        row.expires_at
                    ])?;
                    // A device that ever signed in as facilitator stays one in the lab's record.
                    tx.prepare_cached(
                        "INSERT INTO members (lab_id, author_id, role) VALUES (?1, ?2, ?3)
                         ON CONFLICT (lab_id, author_id) DO UPDATE SET role = CASE
                             WHEN excluded.role = 'facilitator' THEN 'facilitator'
                             ELSE members.role END",
                    )?
                    .execute(params![
                        row.lab_id,
                        row.author_id,
                        row.role.as_str()
                    ])?;
                    tx.commit()?;
                    Ok(())
                })
                .await?;
            }
            Backend::Postgres(pg) => {
                let mut client = pg.client().await?;
                let tx = client.transaction().await?;
                // Nodes sweeping at once skip each other's rows instead of waiting on them.
                let sweep = tx
                    .prepare_cached(
                        "DELETE FROM tokens WHERE token_hash IN (
                             SELECT token_hash FROM tokens WHERE expires_at <= $1
                             FOR UPDATE SKIP LOCKED)",
                    )
                    .await?;
                tx.execute(&sweep, &[&now]).await?;
                let insert = tx
                    .prepare_cached(
                        "INSERT INTO tokens (token_hash, lab_id, role, name, author_id, expires_at)
                         VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .await?;
                tx.execute(
                    &insert,
                    &[
                        &token_hash,
                        &row.lab_id,
                        &row.role.as_str(),
                        &row.name,
                        &row.author_id,
                        &row.expires_at,
                    ],
                )
                .await?;
                // A device that ever signed in as facilitator stays one in the lab's record.
                let member = tx
                    .prepare_cached(
                        "INSERT INTO members (lab_id, author_id, role) VALUES ($1, $2, $3)
                         ON CONFLICT (lab_id, author_id) DO UPDATE SET role = CASE
                             WHEN excluded.role = 'facilitator' THEN 'facilitator'
                             ELSE members.role END",
                    )
                    .await?;
                tx.execute(&member, &[&row.lab_id, &row.author_id, &row.role.as_str()])
                    .await?;
                tx.commit().await?;
            }
        }
        Ok(Issued { token, grant })
    }

    /// What `token` allows, if it is known and has not expired.
    pub async fn grant(&self, token: &str) -> Result<Option<Grant>, LabError> {
        let token_hash = secrets::hash(token);
        let now = now_ms();
        let row: Option<GrantRow> = match &self.backend {
            Backend::Sqlite(conn) => {
                blocking(conn, move |conn| {
                    Ok(conn
                        .prepare_cached(
                            "SELECT t.lab_id, l.doc_id, t.role, t.name, t.author_id, t.expires_at
                             FROM tokens t JOIN labs l ON l.lab_id = t.lab_id
                             WHERE t.token_hash = ?1 AND t.expires_at > ?2",
                        )?
                        .query_row(params![token_hash, now], |row| {
                            Ok((
                                row.get(0)?,
                                row.get(1)?,
                                row.get(2)?,
                                row.get(3)?,
                                row.get(4)?,
                                row.get(5)?,
                            ))
                        })
                        .optional()?)
                })
                .await?
            }
            Backend::Postgres(pg) => {
                let client = pg.client().await?;
                let stmt = client
                    .prepare_cached(
                        "SELECT t.lab_id, l.doc_id, t.role, t.name, t.author_id, t.expires_at
                         FROM tokens t JOIN labs l ON l.lab_id = t.lab_id
                         WHERE t.token_hash = $1 AND t.expires_at > $2",
                    )
                    .await?;
                match client.query_opt(&stmt, &[&token_hash, &now]).await? {
                    Some(row) => Some((
                        row.try_get(0)?,
                        row.try_get(1)?,
                        row.try_get(2)?,
                        row.try_get(3)?,
                        row.try_get(4)?,
                        row.try_get(5)?,
                    )),
                    None => None,
                }
            }
        };
        Ok(
            row.and_then(|(lab_id, doc_id, role, name, author_id, expires_at)| {
                Some(Grant {
                    lab_id,
                    doc_id: doc_id.parse().ok()?,
                    role: Role::parse(&role)?,
                    name,
                    author_id,
                    expires_at,
                })
            }),
        )
    }

    /// The role each author id of the lab was granted, kept after its tokens are swept:
    /// facilitator if a facilitator token ever granted it.
    pub async fn author_roles(&self, lab_id: &str) -> Result<HashMap<String, Role>, LabError> {
        let lab_id = lab_id.to_owned();
        let rows: Vec<(String, String)> = match &self.backend {
            Backend::Sqlite(conn) => {
                blocking(conn, move |conn| {
                    let mut statement = conn
                        .prepare_cached("SELECT author_id, role FROM members WHERE lab_id = ?1")?;
                    let rows = statement
                        .query_map(params![lab_id], |row| Ok((row.get(0)?, row.get(1)?)))?;
                    Ok(rows.collect::<Result<Vec<_>, _>>()?)
                })
                .await?
            }
            Backend::Postgres(pg) => {
                let client = pg.client().await?;
                let stmt = client
                    .prepare_cached("SELECT author_id, role FROM members WHERE lab_id = $1")
                    .await?;
                let rows = client.query(&stmt, &[&lab_id]).await?;
                rows.iter()
                    .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
                    .collect::<Result<_, tokio_postgres::Error>>()?
            }
        };
        let mut roles = HashMap::new();
        for (author_id, role) in rows {
            let Some(role) = Role::parse(&role) else {
                continue;
            };
            let known = roles.entry(author_id).or_insert(role);
            if role == Role::Facilitator {
                *known = Role::Facilitator;
            }
        }
        Ok(roles)
    }

    /// How many devices (distinct author ids) were ever granted a token for each lab that has
    /// any, by lab id. Unlike tokens, this survives the sweep of expired tokens.
    pub async fn member_counts(&self) -> Result<HashMap<String, usize>, LabError> {
        let rows: Vec<(String, i64)> = match &self.backend {
            Backend::Sqlite(conn) => {
                blocking(conn, |conn| {
                    let mut statement = conn
                        .prepare_cached("SELECT lab_id, COUNT(*) FROM members GROUP BY lab_id")?;
                    let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
                    Ok(rows.collect::<Result<Vec<_>, _>>()?)
                })
                .await?
            }
            Backend::Postgres(pg) => {
                let client = pg.client().await?;
                let stmt = client
                    .prepare_cached("SELECT lab_id, COUNT(*) FROM members GROUP BY lab_id")
                    .await?;
                let rows = client.query(&stmt, &[]).await?;
                rows.iter()
                    .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
                    .collect::<Result<_, tokio_postgres::Error>>()?
            }
        };
        Ok(rows
            .into_iter()
            .map(|(lab_id, count)| (lab_id, usize::try_from(count).unwrap_or(0)))
            .collect())
    }

    /// How many devices (distinct author ids) were ever granted a token for the lab.
    pub async fn member_count(&self, lab_id: &str) -> Result<usize, LabError> {
        let lab_id = lab_id.to_owned();
        let count: i64 = match &self.backend {
            Backend::Sqlite(conn) => {
                blocking(conn, move |conn| {
                    Ok(conn
                        .prepare_cached("SELECT COUNT(*) FROM members WHERE lab_id = ?1")?
                        .query_row(params![lab_id], |row| row.get(0))?)
                })
                .await?
            }
            Backend::Postgres(pg) => {
                let client = pg.client().await?;
                let stmt = client
                    .prepare_cached("SELECT COUNT(*) FROM members WHERE lab_id = $1")
                    .await?;
                client.query_one(&stmt, &[&lab_id]).await?.try_get(0)?
            }
        };
        Ok(usize::try_from(count).unwrap_or(0))
    }

    /// Gives the lab a new join code; the old one stops working at once.
    pub async fn rotate_join_code(&self, lab_id: &str) -> Result<Option<String>, LabError> {
        for _ in 0..JOIN_CODE_ATTEMPTS {
            let code = secrets::new_join_code();
            match self.set_join_code(lab_id.to_owned(), code.clone()).await? {
                CodeWrite::Written => return Ok(Some(code)),
                CodeWrite::Taken => continue,
                CodeWrite::NoLab => return Ok(None),
            }
        }
        Err(LabError::NoFreeJoinCode)
    }

    async fn set_join_code(&self, lab_id: String, code: String) -> Result<CodeWrite, LabError> {
        let updated = match &self.backend {
            Backend::Sqlite(conn) => {
                blocking(conn, move |conn| {
                    match conn.execute(
                        "UPDATE labs SET join_code = ?2 WHERE lab_id = ?1",
                        params![lab_id, code],
                    ) {
                        Ok(updated) => Ok(Some(updated)),
                        Err(err) if is_join_code_conflict(&err) => Ok(None),
                        Err(err) => Err(err.into()),
                    }
                })
                .await?
            }
            Backend::Postgres(pg) => {
                let client = pg.client().await?;
                match client
                    .execute(
                        "UPDATE labs SET join_code = $2 WHERE lab_id = $1",
                        &[&lab_id, &code],
                    )
                    .await
                {
                    Ok(updated) => Some(usize::try_from(updated).unwrap_or(usize::MAX)),
                    Err(err) if is_pg_join_code_conflict(&err) => None,
                    Err(err) => return Err(err.into()),
                }
            }
        };
        Ok(match updated {
            None => CodeWrite::Taken,
            Some(0) => CodeWrite::NoLab,
            Some(_) => CodeWrite::Written,
        })
    }

    /// Ends the lab now, unless it has ended already. Returns when it ended, or `None` if there
    /// is no such lab. On PostgreSQL every call that finds the lab announces
    /// `ended <lab id> <doc id> <node id>` on [`LABS_CHANNEL`] when it commits, so every node
    /// stops the board (stopping an ended board again changes nothing).
    pub async fn end(&self, lab_id: &str) -> Result<Option<i64>, LabError> {
        let lab_id = lab_id.to_owned();
        let now = now_ms();
        match &self.backend {
            Backend::Sqlite(conn) => {
                blocking(conn, move |conn| {
                    let tx = conn.transaction()?;
                    tx.prepare_cached(
                        "UPDATE labs SET ended_at = ?2 WHERE lab_id = ?1 AND ended_at IS NULL",
                    )?
                    .execute(params![lab_id, now])?;
                    let ended_at = tx
                        .prepare_cached("SELECT ended_at FROM labs WHERE lab_id = ?1")?
                        .query_row(params![lab_id], |row| row.get::<_, Option<i64>>(0))
                        .optional()?
                        .flatten();
                    tx.commit()?;
                    Ok(ended_at)
                })
                .await
            }
            Backend::Postgres(pg) => {
                let mut client = pg.client().await?;
                let tx = client.transaction().await?;
                let ended = tx
                    .query_opt(
                        "UPDATE labs SET ended_at = COALESCE(ended_at, $2) WHERE lab_id = $1
                         RETURNING ended_at, doc_id",
                        &[&lab_id, &now],
                    )
                    .await?;
                let ended_at = match ended {
                    Some(row) => {
                        let doc_id: String = row.try_get(1)?;
                        announce(&tx, pg, "ended", &lab_id, &doc_id).await?;
                        row.try_get(0)?
                    }
                    None => None,
                };
                tx.commit().await?;
                Ok(ended_at)
            }
        }
    }
}

/// On a database shared by several nodes, how long a document without a lab must have been
/// untouched to count as an orphan.
const SHARED_ORPHAN_AFTER_MS: i64 = 10 * 60 * 1000;

impl LabStore {
    /// Labs that ended before `cutoff` (milliseconds since the epoch).
    pub async fn ended_before(&self, cutoff: i64) -> Result<Vec<Lab>, LabError> {
        self.select(LabFilter::EndedBefore(cutoff)).await
    }

    /// Documents in storage that belong to no lab: left behind by a crash between storing a new
    /// board and recording its lab, or between removing a lab and its board.
    pub async fn orphan_documents(&self) -> Result<Vec<DocumentId>, LabError> {
        const ORPHANS: &str =
            "SELECT doc_id FROM documents WHERE doc_id NOT IN (SELECT doc_id FROM labs)";
        let ids: Vec<String> = match &self.backend {
            Backend::Sqlite(conn) => {
                blocking(conn, |conn| {
                    let mut stmt = conn.prepare(ORPHANS)?;
                    let ids = stmt.query_map([], |row| row.get(0))?;
                    Ok(ids.collect::<Result<Vec<_>, _>>()?)
                })
                .await?
            }
            Backend::Postgres(pg) => {
                // Another node may be between storing a new lab's board and recording the lab:
                // only a document untouched for a while is an orphan there.
                let client = pg.client().await?;
                let cutoff = now_ms().saturating_sub(SHARED_ORPHAN_AFTER_MS);
                let rows = client
                    .query(
                        "SELECT doc_id FROM documents WHERE updated_at < $1 \
                         AND doc_id NOT IN (SELECT doc_id FROM labs)",
                        &[&cutoff],
                    )
                    .await?;
                rows.iter()
                    .map(|row| row.try_get(0))
                    .collect::<Result<_, _>>()?
            }
        };
        Ok(ids.iter().filter_map(|id| id.parse().ok()).collect())
    }

    /// Removes the lab, every token of it, the record of who joined it and its photos. Returns
    /// false if there was no such lab. On PostgreSQL a deletion announces
    /// `deleted <lab id> <doc id> <node id>` on [`LABS_CHANNEL`] when it commits.
    pub async fn delete(&self, lab_id: &str) -> Result<bool, LabError> {
        let lab_id = lab_id.to_owned();
        match &self.backend {
            Backend::Sqlite(conn) => {
                blocking(conn, move |conn| {
                    let tx = conn.transaction()?;
                    tx.execute("DELETE FROM tokens WHERE lab_id = ?1", params![lab_id])?;
                    tx.execute("DELETE FROM members WHERE lab_id = ?1", params![lab_id])?;
                    // secure_delete zeroes the freed pages; the checkpoint that follows the
                    // board's deletion empties the log.
                    tx.execute("DELETE FROM photos WHERE lab_id = ?1", params![lab_id])?;
                    let removed =
                        tx.execute("DELETE FROM labs WHERE lab_id = ?1", params![lab_id])?;
                    tx.commit()?;
                    Ok(removed > 0)
                })
                .await
            }
            Backend::Postgres(pg) => {
                let mut client = pg.client().await?;
                let tx = client.transaction().await?;
                // Tokens, members and photos go with the lab (ON DELETE CASCADE).
                let removed = tx
                    .query_opt(
                        "DELETE FROM labs WHERE lab_id = $1 RETURNING doc_id",
                        &[&lab_id],
                    )
                    .await?;
                if let Some(row) = &removed {
                    let doc_id: String = row.try_get(0)?;
                    announce(&tx, pg, "deleted", &lab_id, &doc_id).await?;
                }
                tx.commit().await?;
                Ok(removed.is_some())
            }
        }
    }
}

/// Runs `f` on the SQLite connection on a blocking thread.
async fn blocking<T: Send + 'static>(
    conn: &Arc<Mutex<Connection>>,
    f: impl FnOnce(&mut Connection) -> Result<T, LabError> + Send + 'static,
) -> Result<T, LabError> {
    let conn = Arc::clone(conn);
    tokio::task::spawn_blocking(move || {
        let mut conn = conn
            .lock()
            .expect("lab store lock is never held across a panic");
        f(&mut conn)
    })
    .await
    .map_err(|err| LabError::Storage(StorageError::Io(std::io::Error::other(err))))?
}

/// Tells every node, when `tx` commits, that `event` happened to the lab.
async fn announce(
    tx: &deadpool_postgres::Transaction<'_>,
    pg: &Pg,
    event: &str,
    lab_id: &str,
    doc_id: &str,
) -> Result<(), LabError> {
    let payload = format!("{event} {lab_id} {doc_id} {}", pg.node_id());
    tx.execute("SELECT pg_notify($1, $2)", &[&LABS_CHANNEL, &payload])
        .await?;
    Ok(())
}

/// A lab about to be recorded.
struct NewLab {
    lab_id: String,
    doc_id: String,
    info: labboard_protocol::board::LabInfo,
    facilitator_key_hash: Vec<u8>,
    join_code: String,
    created_at: i64,
}

/// Which labs [`LabStore::select`] reads.
enum LabFilter {
    /// Every lab, newest first.
    All,
    Id(String),
    /// The running lab with this join code.
    JoinCode(String),
    /// The lab with this id and this facilitator key hash.
    FacilitatorKey(String, Vec<u8>),
    /// Labs that ended before this time.
    EndedBefore(i64),
}

const LAB_COLUMNS: &str =
    "SELECT lab_id, doc_id, title, school, grade, date, join_code, created_at, ended_at";

/// A row of `labs` as either backend reads it ([`LAB_COLUMNS`]).
struct StoredLab {
    lab_id: String,
    doc_id: String,
    title: String,
    school: String,
    grade: String,
    date: String,
    join_code: Option<String>,
    created_at: i64,
    ended_at: Option<i64>,
}

impl StoredLab {
    /// The lab; `None` if its document id is unreadable (never written by this server).
    fn into_lab(self) -> Option<Lab> {
        let Ok(doc_id) = self.doc_id.parse() else {
            tracing::error!(doc_id = %self.doc_id, "lab row with an invalid document id");
            return None;
        };
        Some(Lab {
            lab_id: self.lab_id,
            doc_id,
            title: self.title,
            school: self.school,
            grade: self.grade,
            date: self.date,
            join_code: self.join_code,
            created_at: self.created_at,
            ended_at: self.ended_at,
        })
    }
}

/// A token's row joined with its lab's document id: lab id, document id, role, name, author
/// id, expiry.
type GrantRow = (String, String, String, String, String, i64);

fn is_join_code_conflict(err: &rusqlite::Error) -> bool {
    matches!(
        err,
        rusqlite::Error::SqliteFailure(e, Some(text))
            if e.code == ErrorCode::ConstraintViolation && text.contains("join_code")
    )
}

fn is_pg_join_code_conflict(err: &tokio_postgres::Error) -> bool {
    err.as_db_error().is_some_and(|db| {
        *db.code() == SqlState::UNIQUE_VIOLATION
            && db
                .constraint()
                .is_some_and(|name| name.contains("join_code"))
    })
}

/// Stores on either backend for the unit tests of this module and of [`crate::photos`]: every
/// case runs on SQLite and on PostgreSQL ([`on_both_backends`]).
#[cfg(test)]
pub(crate) mod testing {
    use std::time::Duration;

    use crate::pg::Pg;
    use crate::photos::PhotoStore;
    use crate::storage::SqliteStorage;

    use super::LabStore;

    /// A database of a test's own.
    pub(crate) enum Db {
        Sqlite {
            storage: SqliteStorage,
            _dir: tempfile::TempDir,
        },
        /// A fresh database on the test server.
        Postgres { url: String },
    }

    impl Db {
        pub(crate) async fn sqlite() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let storage = SqliteStorage::open(dir.path()).unwrap();
            Self::Sqlite { storage, _dir: dir }
        }

        pub(crate) async fn postgres() -> Self {
            Self::Postgres {
                url: crate::pg::testing::scratch_database().await,
            }
        }

        /// A new pool on the PostgreSQL database: a node of its own. Panics on SQLite.
        pub(crate) async fn pg(&self) -> Pg {
            match self {
                Self::Sqlite { .. } => panic!("not a PostgreSQL database"),
                Self::Postgres { url } => Pg::connect(url).await.unwrap(),
            }
        }

        /// A lab store of its own on the database (on PostgreSQL, as another node would open it).
        pub(crate) async fn labs(&self, token_ttl: Duration) -> LabStore {
            match self {
                Self::Sqlite { storage, .. } => LabStore::open(storage.path(), token_ttl).unwrap(),
                Self::Postgres { .. } => LabStore::postgres(self.pg().await, token_ttl),
            }
        }

        /// A photo store of its own on the database.
        pub(crate) async fn photos(&self) -> PhotoStore {
            match self {
                Self::Sqlite { storage, .. } => PhotoStore::open(storage.path()).unwrap(),
                Self::Postgres { .. } => PhotoStore::postgres(self.pg().await),
            }
        }

        /// Records a document with no content, as the document storage would.
        pub(crate) async fn add_document(&self, doc_id: &str) {
            match self {
                Self::Sqlite { storage, .. } => {
                    rusqlite::Connection::open(storage.path())
                        .unwrap()
                        .execute(
                            "INSERT INTO documents (doc_id, created_at, updated_at)
                             VALUES (?1, 0, 0)",
                            [doc_id],
                        )
                        .unwrap();
                }
                Self::Postgres { .. } => {
                    let client = self.pg().await.client().await.unwrap();
                    client
                        .execute(
                            "INSERT INTO documents (doc_id, created_at, updated_at)
                             VALUES ($1, 0, 0)",
                            &[&doc_id],
                        )
                        .await
                        .unwrap();
                }
            }
        }
    }

    /// Runs each named case, an `async fn(&Db)` of the module calling the macro, as one test on
    /// SQLite (`sqlite::<case>`) and one on PostgreSQL (`postgres::<case>`).
    macro_rules! on_both_backends {
        ($($case:ident),+ $(,)?) => {
            mod sqlite {
                $(
                    #[tokio::test]
                    async fn $case() {
                        super::$case(&$crate::labs::testing::Db::sqlite().await).await;
                    }
                )+
            }
            mod postgres {
                $(
                    #[tokio::test]
                    async fn $case() {
                        super::$case(&$crate::labs::testing::Db::postgres().await).await;
                    }
                )+
            }
        };
    }
    pub(crate) use on_both_backends;
}

#[cfg(test)]
mod tests {
    use super::testing::{on_both_backends, Db};
    use super::*;
    use labboard_protocol::board::LabInfo;

    on_both_backends!(
        codes_keys_and_tokens,
        tokens_expire,
        members_are_counted_by_device_and_outlive_their_tokens,
        a_taken_join_code_is_drawn_again_and_a_taken_lab_id_is_an_error,
        labs_end_once_and_are_listed_newest_first,
        documents_without_a_lab_are_orphans,
    );

    async fn lab(labs: &LabStore, key: &str) -> Lab {
        let lab_id = secrets::new_lab_id();
        labs.create(
            lab_id.clone(),
            DocumentId::random(),
            LabInfo {
                title: "Making ten".into(),
                ..LabInfo::default()
            },
            secrets::hash(key),
        )
        .await
        .unwrap();
        labs.get(&lab_id).await.unwrap().unwrap()
    }

    async fn codes_keys_and_tokens(db: &Db) {
        let labs = db.labs(Duration::from_secs(3600)).await;
        let a = lab(&labs, "key-a").await;
        let b = lab(&labs, "key-b").await;
        assert_ne!(a.join_code, b.join_code);
        let code = a.join_code.clone().unwrap();
        assert_eq!(labs.by_join_code(&code).await.unwrap(), Some(a.clone()));
        assert_eq!(labs.list().await.unwrap().len(), 2);

        assert!(labs
            .by_facilitator_key(&a.lab_id, secrets::hash("key-b"))
            .await
            .unwrap()
            .is_none());
        assert!(labs
            .by_facilitator_key(&a.lab_id, secrets::hash("key-a"))
            .await
            .unwrap()
            .is_some());

        let issued = labs
            .issue(&a, Role::Observer, "Ana".into(), "a-ana".into())
            .await
            .unwrap();
        let grant = labs.grant(&issued.token).await.unwrap().unwrap();
        assert_eq!(grant, issued.grant);
        assert_eq!(grant.doc_id, a.doc_id);
        assert!(labs.grant("not a token").await.unwrap().is_none());

        let new_code = labs.rotate_join_code(&a.lab_id).await.unwrap().unwrap();
        assert_ne!(Some(new_code.clone()), a.join_code);
        assert!(labs.by_join_code(&code).await.unwrap().is_none());
        assert!(labs.by_join_code(&new_code).await.unwrap().is_some());
        assert_eq!(labs.rotate_join_code("no-such-lab").await.unwrap(), None);

        assert!(labs.delete(&a.lab_id).await.unwrap());
        assert!(!labs.delete(&a.lab_id).await.unwrap());
        assert!(labs.grant(&issued.token).await.unwrap().is_none());
        assert!(labs.get(&b.lab_id).await.unwrap().is_some());
    }

    async fn tokens_expire(db: &Db) {
        let labs = db.labs(Duration::ZERO).await;
        let a = lab(&labs, "key").await;
        let issued = labs
            .issue(&a, Role::Facilitator, "F".into(), "a-f".into())
            .await
            .unwrap();
        assert!(labs.grant(&issued.token).await.unwrap().is_none());
    }

    async fn members_are_counted_by_device_and_outlive_their_tokens(db: &Db) {
        let labs = db.labs(Duration::ZERO).await;
        let a = lab(&labs, "key-a").await;
        let b = lab(&labs, "key-b").await;
        for (role, author) in [
            (Role::Facilitator, "a-f"),
            (Role::Observer, "a-ana"),
            (Role::Observer, "a-ana"),
            (Role::Observer, "a-bo"),
        ] {
            labs.issue(&a, role, "x".into(), author.into())
                .await
                .unwrap();
        }
        labs.issue(&b, Role::Observer, "x".into(), "a-ana".into())
            .await
            .unwrap();
        // Every token has expired and all but the last were swept by the next issue; who
        // wrote as what stays known.
        let roles = labs.author_roles(&a.lab_id).await.unwrap();
        assert_eq!(
            roles,
            HashMap::from([
                ("a-f".to_owned(), Role::Facilitator),
                ("a-ana".to_owned(), Role::Observer),
                ("a-bo".to_owned(), Role::Observer),
            ])
        );
        // An observer's device that signs in as facilitator is a facilitator from then on.
        labs.issue(&a, Role::Facilitator, "x".into(), "a-bo".into())
            .await
            .unwrap();
        labs.issue(&a, Role::Observer, "x".into(), "a-bo".into())
            .await
            .unwrap();
        assert_eq!(
            labs.author_roles(&a.lab_id).await.unwrap().get("a-bo"),
            Some(&Role::Facilitator)
        );
        assert_eq!(labs.member_count(&a.lab_id).await.unwrap(), 3);
        assert_eq!(labs.member_count(&b.lab_id).await.unwrap(), 1);
        let counts = labs.member_counts().await.unwrap();
        assert_eq!(counts.get(&a.lab_id), Some(&3));
        assert_eq!(counts.get(&b.lab_id), Some(&1));

        assert!(labs.delete(&a.lab_id).await.unwrap());
        assert_eq!(labs.member_count(&a.lab_id).await.unwrap(), 0);
        assert_eq!(labs.member_counts().await.unwrap().get(&a.lab_id), None);
        assert!(labs.author_roles(&a.lab_id).await.unwrap().is_empty());
    }

    async fn a_taken_join_code_is_drawn_again_and_a_taken_lab_id_is_an_error(db: &Db) {
        let labs = db.labs(Duration::from_secs(3600)).await;
        let a = lab(&labs, "key").await;
        let new_lab = |lab_id: &str, join_code: &str| NewLab {
            lab_id: lab_id.to_owned(),
            doc_id: DocumentId::random().to_string(),
            info: LabInfo::default(),
            facilitator_key_hash: secrets::hash("key"),
            join_code: join_code.to_owned(),
            created_at: now_ms(),
        };
        let taken = a.join_code.clone().unwrap();
        // The code is taken: the caller draws another.
        assert!(!labs.insert(new_lab("other-lab", &taken)).await.unwrap());
        // The lab id is taken: that is no reason to draw again.
        assert!(labs
            .insert(new_lab(&a.lab_id, &secrets::new_join_code()))
            .await
            .is_err());
        assert!(matches!(
            labs.set_join_code(a.lab_id.clone(), taken.clone())
                .await
                .unwrap(),
            CodeWrite::Written
        ));
        let b = lab(&labs, "key-b").await;
        assert!(matches!(
            labs.set_join_code(b.lab_id.clone(), taken).await.unwrap(),
            CodeWrite::Taken
        ));
        assert_eq!(labs.list().await.unwrap().len(), 2);
    }

    async fn labs_end_once_and_are_listed_newest_first(db: &Db) {
        let labs = db.labs(Duration::from_secs(3600)).await;
        let mut made = Vec::new();
        for key in ["k1", "k2", "k3", "k4"] {
            made.push(lab(&labs, key).await);
        }
        let listed = labs.list().await.unwrap();
        let mut expected = made.clone();
        expected.sort_by(|x, y| {
            y.created_at
                .cmp(&x.created_at)
                .then_with(|| x.lab_id.cmp(&y.lab_id))
        });
        assert_eq!(listed, expected);

        let a = &made[0];
        let ended_at = labs.end(&a.lab_id).await.unwrap().unwrap();
        assert!(ended_at >= a.created_at);
        // Ending again keeps the first end.
        assert_eq!(labs.end(&a.lab_id).await.unwrap(), Some(ended_at));
        assert_eq!(labs.end("no-such-lab").await.unwrap(), None);
        assert_eq!(
            labs.get(&a.lab_id).await.unwrap().unwrap().ended_at,
            Some(ended_at)
        );
        // An ended lab's code joins nothing.
        let code = a.join_code.clone().unwrap();
        assert_eq!(labs.by_join_code(&code).await.unwrap(), None);

        assert!(labs.ended_before(ended_at).await.unwrap().is_empty());
        let ended = labs.ended_before(ended_at + 1).await.unwrap();
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].lab_id, a.lab_id);
    }

    async fn documents_without_a_lab_are_orphans(db: &Db) {
        let labs = db.labs(Duration::from_secs(3600)).await;
        let a = lab(&labs, "key").await;
        let orphan = DocumentId::random();
        db.add_document(&a.doc_id.to_string()).await;
        db.add_document(&orphan.to_string()).await;
        assert_eq!(labs.orphan_documents().await.unwrap(), vec![orphan]);
        assert!(labs.delete(&a.lab_id).await.unwrap());
        let mut orphans = labs.orphan_documents().await.unwrap();
        orphans.sort_by_key(ToString::to_string);
        let mut expected = vec![orphan, a.doc_id];
        expected.sort_by_key(ToString::to_string);
        assert_eq!(orphans, expected);
        // On a shared database another node may be between storing a new lab's board and
        // recording the lab: a document touched just now is no orphan yet there.
        if let Db::Postgres { .. } = db {
            let fresh = DocumentId::random();
            let client = db.pg().await.client().await.unwrap();
            client
                .execute(
                    "INSERT INTO documents (doc_id, created_at, updated_at) VALUES ($1, $2, $2)",
                    &[&fresh.to_string(), &now_ms()],
                )
                .await
                .unwrap();
            let orphans = labs.orphan_documents().await.unwrap();
            assert!(!orphans.contains(&fresh), "{orphans:?}");
            assert!(orphans.contains(&orphan));
        }
    }

    /// Ends and deletions are announced to every node listening, in the transaction that makes
    /// them; rotating a join code, and ending or deleting no lab, announce nothing.
    #[tokio::test]
    async fn ends_and_deletions_are_announced_on_postgres() {
        use futures_util::StreamExt;

        let db = Db::postgres().await;
        let Db::Postgres { url } = &db else {
            unreachable!()
        };
        let (listener, mut connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap();
        let (sender, mut payloads) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut messages = futures_util::stream::poll_fn(|cx| connection.poll_message(cx));
            while let Some(Ok(message)) = messages.next().await {
                if let tokio_postgres::AsyncMessage::Notification(note) = message {
                    let _ = sender.send(note.payload().to_owned());
                }
            }
        });
        listener
            .batch_execute(&format!("LISTEN {LABS_CHANNEL}"))
            .await
            .unwrap();

        let pg = db.pg().await;
        let node = pg.node_id().to_owned();
        let labs = LabStore::postgres(pg, Duration::from_secs(3600));
        let a = lab(&labs, "key").await;
        labs.rotate_join_code(&a.lab_id).await.unwrap().unwrap();
        labs.end(&a.lab_id).await.unwrap().unwrap();
        assert_eq!(labs.end("no-such-lab").await.unwrap(), None);
        assert!(labs.delete(&a.lab_id).await.unwrap());
        assert!(!labs.delete(&a.lab_id).await.unwrap());
        // Notifications arrive in the order their transactions committed: everything announced
        // above arrives before this.
        listener
            .batch_execute(&format!("NOTIFY {LABS_CHANNEL}, 'last'"))
            .await
            .unwrap();
        let mut seen = Vec::new();
        loop {
            let payload = payloads.recv().await.expect("the listener is connected");
            if payload == "last" {
                break;
            }
            seen.push(payload);
        }
        assert_eq!(
            seen,
            [
                format!("ended {} {} {node}", a.lab_id, a.doc_id),
                format!("deleted {} {} {node}", a.lab_id, a.doc_id),
            ]
        );
    }
}
