//! Labs and who may reach them: lab records, join codes, facilitator keys and access tokens,
//! kept in the server's SQLite file (tables `labs`, `tokens` and `members`; a lab's `photos` are
//! deleted with it).
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

pub struct LabStore {
    // std Mutex: held only inside spawn_blocking, never across an await.
    conn: Arc<Mutex<Connection>>,
    token_ttl: Duration,
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl LabStore {
    /// Opens the lab tables of the database at `path` (already migrated by the storage).
    pub fn open(path: &Path, token_ttl: Duration) -> Result<Self, LabError> {
        Ok(Self {
            conn: Arc::new(Mutex::new(open_connection(path)?)),
            token_ttl,
        })
    }

    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, LabError> + Send + 'static,
    ) -> Result<T, LabError> {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut conn = conn
                .lock()
                .expect("lab store lock is never held across a panic");
            f(&mut conn)
        })
        .await
        .map_err(|err| LabError::Storage(StorageError::Io(std::io::Error::other(err))))?
    }

    /// Records a new lab with a fresh join code; returns the code.
    pub async fn create(
        &self,
        lab_id: String,
        doc_id: DocumentId,
        info: labboard_protocol::board::LabInfo,
        facilitator_key_hash: Vec<u8>,
    ) -> Result<String, LabError> {
        self.with(move |conn| {
            let now = now_ms();
            for _ in 0..JOIN_CODE_ATTEMPTS {
                let code = secrets::new_join_code();
                let inserted = conn.execute(
                    "INSERT INTO labs (lab_id, doc_id, title, school, grade, date, join_code,
                                       facilitator_key_hash, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    params![
                        lab_id,
                        doc_id.to_string(),
                        info.title,
                        info.school,
                        info.grade,
                        info.date,
                        code,
                        facilitator_key_hash,
                        now
                    ],
                );
                match inserted {
                    Ok(_) => return Ok(code),
                    Err(err) if is_join_code_conflict(&err) => continue,
                    Err(err) => return Err(err.into()),
                }
            }
            Err(LabError::NoFreeJoinCode)
        })
        .await
    }

    pub async fn list(&self) -> Result<Vec<Lab>, LabError> {
        self.with(|conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "{LAB_COLUMNS} FROM labs ORDER BY created_at DESC, lab_id"
            ))?;
            let labs = stmt
                .query_map([], lab_from_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(labs.into_iter().flatten().collect())
        })
        .await
    }

    pub async fn get(&self, lab_id: &str) -> Result<Option<Lab>, LabError> {
        let lab_id = lab_id.to_owned();
        self.with(move |conn| {
            Ok(conn
                .prepare_cached(&format!("{LAB_COLUMNS} FROM labs WHERE lab_id = ?1"))?
                .query_row(params![lab_id], lab_from_row)
                .optional()?
                .flatten())
        })
        .await
    }

    /// The running lab whose current join code this is (already normalized): an ended lab's
    /// code joins nothing.
    pub async fn by_join_code(&self, code: &str) -> Result<Option<Lab>, LabError> {
        let code = code.to_owned();
        self.with(move |conn| {
            Ok(conn
                .prepare_cached(&format!(
                    "{LAB_COLUMNS} FROM labs WHERE join_code = ?1 AND ended_at IS NULL"
                ))?
                .query_row(params![code], lab_from_row)
                .optional()?
                .flatten())
        })
        .await
    }

    /// The lab, if `key_hash` is its facilitator key's hash.
    pub async fn by_facilitator_key(
        &self,
        lab_id: &str,
        key_hash: Vec<u8>,
    ) -> Result<Option<Lab>, LabError> {
        let lab_id = lab_id.to_owned();
        self.with(move |conn| {
            Ok(conn
                .prepare_cached(&format!(
                    "{LAB_COLUMNS} FROM labs WHERE lab_id = ?1 AND facilitator_key_hash = ?2"
                ))?
                .query_row(params![lab_id, key_hash], lab_from_row)
                .optional()?
                .flatten())
        })
        .await
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
        self.with(move |conn| {
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
                     WHEN excluded.role = 'facilitator' THEN 'facilitator' ELSE members.role END",
            )?
            .execute(params![row.lab_id, row.author_id, row.role.as_str()])?;
            tx.commit()?;
            Ok(())
        })
        .await?;
        Ok(Issued { token, grant })
    }

    /// What `token` allows, if it is known and has not expired.
    pub async fn grant(&self, token: &str) -> Result<Option<Grant>, LabError> {
        let token_hash = secrets::hash(token);
        self.with(move |conn| {
            let row = conn
                .prepare_cached(
                    "SELECT t.lab_id, l.doc_id, t.role, t.name, t.author_id, t.expires_at
                     FROM tokens t JOIN labs l ON l.lab_id = t.lab_id
                     WHERE t.token_hash = ?1 AND t.expires_at > ?2",
                )?
                .query_row(params![token_hash, now_ms()], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, String>(3)?,
                        row.get::<_, String>(4)?,
                        row.get::<_, i64>(5)?,
                    ))
                })
                .optional()?;
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
        })
        .await
    }

    /// The role each author id of the lab was granted, kept after its tokens are swept:
    /// facilitator if a facilitator token ever granted it.
    pub async fn author_roles(&self, lab_id: &str) -> Result<HashMap<String, Role>, LabError> {
        let lab_id = lab_id.to_owned();
        self.with(move |conn| {
            let mut roles = HashMap::new();
            let mut statement =
                conn.prepare_cached("SELECT author_id, role FROM members WHERE lab_id = ?1")?;
            let rows = statement.query_map(params![lab_id], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })?;
            for row in rows {
                let (author_id, role) = row?;
                let Some(role) = Role::parse(&role) else {
                    continue;
                };
                let known = roles.entry(author_id).or_insert(role);
                if role == Role::Facilitator {
                    *known = Role::Facilitator;
                }
            }
            Ok(roles)
        })
        .await
    }

    /// How many devices (distinct author ids) were ever granted a token for each lab that has
    /// any, by lab id. Unlike tokens, this survives the sweep of expired tokens.
    pub async fn member_counts(&self) -> Result<HashMap<String, usize>, LabError> {
        self.with(|conn| {
            let mut statement =
                conn.prepare_cached("SELECT lab_id, COUNT(*) FROM members GROUP BY lab_id")?;
            let rows = statement.query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
            })?;
            let mut counts = HashMap::new();
            for row in rows {
                let (lab_id, count) = row?;
                counts.insert(lab_id, usize::try_from(count).unwrap_or(0));
            }
            Ok(counts)
        })
        .await
    }

    /// How many devices (distinct author ids) were ever granted a token for the lab.
    pub async fn member_count(&self, lab_id: &str) -> Result<usize, LabError> {
        let lab_id = lab_id.to_owned();
        self.with(move |conn| {
            let count: i64 = conn
                .prepare_cached("SELECT COUNT(*) FROM members WHERE lab_id = ?1")?
                .query_row(params![lab_id], |row| row.get(0))?;
            Ok(usize::try_from(count).unwrap_or(0))
        })
        .await
    }

    /// Gives the lab a new join code; the old one stops working at once.
    pub async fn rotate_join_code(&self, lab_id: &str) -> Result<Option<String>, LabError> {
        let lab_id = lab_id.to_owned();
        self.with(move |conn| {
            for _ in 0..JOIN_CODE_ATTEMPTS {
                let code = secrets::new_join_code();
                match conn.execute(
                    "UPDATE labs SET join_code = ?2 WHERE lab_id = ?1",
                    params![lab_id, code],
                ) {
                    Ok(0) => return Ok(None),
                    Ok(_) => return Ok(Some(code)),
                    Err(err) if is_join_code_conflict(&err) => continue,
                    Err(err) => return Err(err.into()),
                }
            }
            Err(LabError::NoFreeJoinCode)
        })
        .await
    }

    /// Ends the lab now, unless it has ended already. Returns when it ended, or `None` if there
    /// is no such lab.
    pub async fn end(&self, lab_id: &str) -> Result<Option<i64>, LabError> {
        let lab_id = lab_id.to_owned();
        self.with(move |conn| {
            let tx = conn.transaction()?;
            tx.prepare_cached(
                "UPDATE labs SET ended_at = ?2 WHERE lab_id = ?1 AND ended_at IS NULL",
            )?
            .execute(params![lab_id, now_ms()])?;
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

    /// Labs that ended before `cutoff` (milliseconds since the epoch).
    pub async fn ended_before(&self, cutoff: i64) -> Result<Vec<Lab>, LabError> {
        self.with(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "{LAB_COLUMNS} FROM labs WHERE ended_at IS NOT NULL AND ended_at < ?1"
            ))?;
            let labs = stmt
                .query_map(params![cutoff], lab_from_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(labs.into_iter().flatten().collect())
        })
        .await
    }

    /// Documents in storage that belong to no lab: left behind by a crash between storing a new
    /// board and recording its lab, or between removing a lab and its board.
    pub async fn orphan_documents(&self) -> Result<Vec<DocumentId>, LabError> {
        self.with(|conn| {
            let mut stmt = conn.prepare(
                "SELECT doc_id FROM documents WHERE doc_id NOT IN (SELECT doc_id FROM labs)",
            )?;
            let ids = stmt
                .query_map([], |row| row.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(ids.iter().filter_map(|id| id.parse().ok()).collect())
        })
        .await
    }

    /// Removes the lab, every token of it, the record of who joined it and its photos. Returns
    /// false if there was no such lab.
    pub async fn delete(&self, lab_id: &str) -> Result<bool, LabError> {
        let lab_id = lab_id.to_owned();
        self.with(move |conn| {
            let tx = conn.transaction()?;
            tx.execute("DELETE FROM tokens WHERE lab_id = ?1", params![lab_id])?;
            tx.execute("DELETE FROM members WHERE lab_id = ?1", params![lab_id])?;
            // secure_delete zeroes the freed pages; the checkpoint that follows the board's
            // deletion empties the log.
            tx.execute("DELETE FROM photos WHERE lab_id = ?1", params![lab_id])?;
            let removed = tx.execute("DELETE FROM labs WHERE lab_id = ?1", params![lab_id])?;
            tx.commit()?;
            Ok(removed > 0)
        })
        .await
    }
}

const LAB_COLUMNS: &str =
    "SELECT lab_id, doc_id, title, school, grade, date, join_code, created_at, ended_at";

/// A lab row; `None` if its document id is unreadable (never written by this server).
fn lab_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Option<Lab>> {
    let doc_id: String = row.get(1)?;
    let Ok(doc_id) = doc_id.parse() else {
        tracing::error!(doc_id = %doc_id, "lab row with an invalid document id");
        return Ok(None);
    };
    Ok(Some(Lab {
        lab_id: row.get(0)?,
        doc_id,
        title: row.get(2)?,
        school: row.get(3)?,
        grade: row.get(4)?,
        date: row.get(5)?,
        join_code: row.get(6)?,
        created_at: row.get(7)?,
        ended_at: row.get(8)?,
    }))
}

fn is_join_code_conflict(err: &rusqlite::Error) -> bool {
    matches!(
        err,
        rusqlite::Error::SqliteFailure(e, Some(text))
            if e.code == ErrorCode::ConstraintViolation && text.contains("join_code")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::SqliteStorage;
    use labboard_protocol::board::LabInfo;

    async fn store(dir: &Path, ttl: Duration) -> LabStore {
        let storage = SqliteStorage::open(dir).unwrap();
        LabStore::open(storage.path(), ttl).unwrap()
    }

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

    #[tokio::test]
    async fn codes_keys_and_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let labs = store(dir.path(), Duration::from_secs(3600)).await;
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

        assert!(labs.delete(&a.lab_id).await.unwrap());
        assert!(!labs.delete(&a.lab_id).await.unwrap());
        assert!(labs.grant(&issued.token).await.unwrap().is_none());
        assert!(labs.get(&b.lab_id).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn tokens_expire() {
        let dir = tempfile::tempdir().unwrap();
        let labs = store(dir.path(), Duration::ZERO).await;
        let a = lab(&labs, "key").await;
        let issued = labs
            .issue(&a, Role::Facilitator, "F".into(), "a-f".into())
            .await
            .unwrap();
        assert!(labs.grant(&issued.token).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn members_are_counted_by_device_and_outlive_their_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let labs = store(dir.path(), Duration::ZERO).await;
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
    }
}
