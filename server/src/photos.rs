//! Photos of student work, kept outside the board's Automerge document: table `photos` of the
//! server's store (the SQLite file or PostgreSQL), scoped to a lab and deleted with it (see
//! [`crate::labs::LabStore::delete`]).
//!
//! A photo's id is the SHA-256 of the bytes uploaded, written as 64 lowercase hex digits. What
//! is stored is those bytes with their metadata stripped ([`crate::photometa`]); a phone strips
//! before uploading, so for it both are the same.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use tokio::runtime::Handle;

use crate::labs::now_ms;
use crate::pg::Pg;
use crate::storage::sqlite::{open_connection, NOTES_FIRST};
use crate::storage::StorageError;

/// Whether `id` is how photo ids are written: 64 lowercase hex digits.
pub fn valid_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The SHA-256 of `bytes` in lowercase hex: the id of a photo uploaded as `bytes`.
pub fn id_of(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A stored photo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Photo {
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// What [`PhotoStore::put`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Put {
    /// Stored now, durably, taking `size` bytes.
    Stored { size: u64 },
    /// The lab already had this photo, of `size` bytes; nothing was stored.
    Existing { size: u64 },
    /// The lab has ended: it takes no new photos.
    Ended,
    /// There is no such lab (any more).
    NoLab,
    /// The photo would take the lab's photos past `limit` bytes; `used` are taken.
    Full { used: u64, limit: u64 },
}

pub struct PhotoStore {
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    /// The server's SQLite file. std Mutex: held only inside spawn_blocking, never across an
    /// await.
    Sqlite(Arc<Mutex<Connection>>),
    /// The database every node shares.
    Postgres(Pg),
}

/// The quota check shared by both backends: `Some` if a photo of `size` bytes would take the
/// lab's photos, `used` bytes now, past `limit`.
fn over_quota(used: i64, size: u64, limit: u64) -> Option<Put> {
    let used = u64::try_from(used).unwrap_or(0);
    (used.saturating_add(size) > limit).then_some(Put::Full { used, limit })
}

impl PhotoStore {
    /// Opens the photo table of the SQLite database at `path` (already migrated by the
    /// storage), with the durability settings of every connection to it.
    pub fn open(path: &Path) -> Result<Self, StorageError> {
        Ok(Self {
            backend: Backend::Sqlite(Arc::new(Mutex::new(open_connection(path)?))),
        })
    }

    /// The photo table of the PostgreSQL database of `pg` (migrated by [`Pg::connect`]).
    pub fn postgres(pg: Pg) -> Self {
        Self {
            backend: Backend::Postgres(pg),
        }
    }

    /// Stores `bytes` as photo `id` of the lab, unless the lab has it already, has ended, is
    /// gone, or its photos would take more than `lab_limit` bytes. Returns once the photo is
    /// durably stored (SQLite's `synchronous = FULL`, PostgreSQL's commit). The quota is
    /// checked and the photo stored in one transaction that excludes every other upload to the
    /// lab, from any node.
    pub async fn put(
        &self,
        lab_id: &str,
        id: &str,
        content_type: &str,
        bytes: Vec<u8>,
        lab_limit: u64,
    ) -> Result<Put, StorageError> {
        let (lab_id, id, content_type) =
            (lab_id.to_owned(), id.to_owned(), content_type.to_owned());
        let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        let stored_size = i64::try_from(size).unwrap_or(i64::MAX);
        let now = now_ms();
        match &self.backend {
            Backend::Sqlite(conn) => {
                blocking(conn, move |conn| {
                    // Notes first: a photo waits while the documents' writer commits.
                    NOTES_FIRST.bulk_turn();
                    // Immediate: the quota is checked and the photo stored under one write lock.
                    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                    let existing: Option<i64> = tx
                        .prepare_cached("SELECT size FROM photos WHERE lab_id = ?1 AND id = ?2")?
                        .query_row(params![lab_id, id], |row| row.get(0))
                        .optional()?;
                    if let Some(size) = existing {
                        return Ok(Put::Existing {
                            size: u64::try_from(size).unwrap_or(0),
                        });
                    }
                    let ended: Option<Option<i64>> = tx
                        .prepare_cached("SELECT ended_at FROM labs WHERE lab_id = ?1")?
                        .query_row(params![lab_id], |row| row.get(0))
                        .optional()?;
                    match ended {
                        None => return Ok(Put::NoLab),
                        Some(Some(_)) => return Ok(Put::Ended),
                        Some(None) => {}
                    }
                    let used: i64 = tx
                        .prepare_cached(
                            "SELECT COALESCE(SUM(size), 0) FROM photos WHERE lab_id = ?1",
                        )?
                        .query_row(params![lab_id], |row| row.get(0))?;
                    if let Some(full) = over_quota(used, size, lab_limit) {
                        return Ok(full);
                    }
                    tx.prepare_cached(
                        "INSERT INTO photos (lab_id, id, content_type, bytes, size, created_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    )?
                    .execute(params![
                        lab_id,
                        id,
                        content_type,
                        bytes,
                        stored_size,
                        now
                    ])?;
                    tx.commit()?;
                    Ok(Put::Stored { size })
                })
                .await
            }
            Backend::Postgres(pg) => {
                let mut client = pg.client().await?;
                let tx = client.transaction().await?;
                // The lab's row, locked until the commit: uploads to the lab from every node
                // take turns, so no two pass the quota together (tokens and members, which
                // only reference the row, are not held up).
                let lab = tx
                    .query_opt(
                        "SELECT ended_at FROM labs WHERE lab_id = $1 FOR NO KEY UPDATE",
                        &[&lab_id],
                    )
                    .await?;
                // Returning before the commit rolls the transaction back. A lab that is gone
                // has no photos either.
                let Some(lab) = lab else {
                    return Ok(Put::NoLab);
                };
                let existing = tx
                    .query_opt(
                        "SELECT size FROM photos WHERE lab_id = $1 AND id = $2",
                        &[&lab_id, &id],
                    )
                    .await?;
                if let Some(row) = existing {
                    return Ok(Put::Existing {
                        size: u64::try_from(row.try_get::<_, i64>(0)?).unwrap_or(0),
                    });
                }
                if lab.try_get::<_, Option<i64>>(0)?.is_some() {
                    return Ok(Put::Ended);
                }
                let used: i64 = tx
                    .query_one(
                        "SELECT COALESCE(SUM(size), 0)::BIGINT FROM photos WHERE lab_id = $1",
                        &[&lab_id],
                    )
                    .await?
                    .try_get(0)?;
                if let Some(full) = over_quota(used, size, lab_limit) {
                    return Ok(full);
                }
                tx.execute(
                    "INSERT INTO photos (lab_id, id, content_type, bytes, size, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                    &[&lab_id, &id, &content_type, &bytes, &stored_size, &now],
                )
                .await?;
                tx.commit().await?;
                Ok(Put::Stored { size })
            }
        }
    }

    /// Photo `id` of the lab, if it has one.
    pub async fn get(&self, lab_id: &str, id: &str) -> Result<Option<Photo>, StorageError> {
        let (lab_id, id) = (lab_id.to_owned(), id.to_owned());
        match &self.backend {
            Backend::Sqlite(conn) => blocking(conn, move |conn| get(conn, &lab_id, &id)).await,
            Backend::Postgres(pg) => pg_get(pg, &lab_id, &id).await,
        }
    }

    /// A reader of the lab's photos for work already on a blocking thread (the record and the
    /// zip export, built in `spawn_blocking`): it reads one photo at a time, so that such work
    /// holds only the photo it is writing out, and other requests get the store between reads.
    /// Call it on the async runtime (a PostgreSQL reader runs its queries there).
    pub fn reader(&self) -> PhotoReader {
        PhotoReader {
            backend: self.backend.clone(),
            runtime: match self.backend {
                Backend::Sqlite(_) => None,
                Backend::Postgres(_) => Some(Handle::current()),
            },
        }
    }

    /// Whether the lab has photo `id`, without reading it.
    pub async fn exists(&self, lab_id: &str, id: &str) -> Result<bool, StorageError> {
        let (lab_id, id) = (lab_id.to_owned(), id.to_owned());
        match &self.backend {
            Backend::Sqlite(conn) => {
                blocking(conn, move |conn| {
                    Ok(conn
                        .prepare_cached("SELECT 1 FROM photos WHERE lab_id = ?1 AND id = ?2")?
                        .query_row(params![lab_id, id], |_| Ok(()))
                        .optional()?
                        .is_some())
                })
                .await
            }
            Backend::Postgres(pg) => {
                let client = pg.client().await?;
                let stmt = client
                    .prepare_cached("SELECT 1 FROM photos WHERE lab_id = $1 AND id = $2")
                    .await?;
                Ok(client.query_opt(&stmt, &[&lab_id, &id]).await?.is_some())
            }
        }
    }

    /// How many photos the lab has and how many bytes they take.
    pub async fn usage(&self, lab_id: &str) -> Result<(u64, u64), StorageError> {
        let lab_id = lab_id.to_owned();
        let (count, bytes): (i64, i64) = match &self.backend {
            Backend::Sqlite(conn) => {
                blocking(conn, move |conn| {
                    Ok(conn
                        .prepare_cached(
                            "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM photos WHERE lab_id = ?1",
                        )?
                        .query_row(params![lab_id], |row| Ok((row.get(0)?, row.get(1)?)))?)
                })
                .await?
            }
            Backend::Postgres(pg) => {
                let client = pg.client().await?;
                let stmt = client
                    .prepare_cached(
                        "SELECT COUNT(*), COALESCE(SUM(size), 0)::BIGINT
                         FROM photos WHERE lab_id = $1",
                    )
                    .await?;
                let row = client.query_one(&stmt, &[&lab_id]).await?;
                (row.try_get(0)?, row.try_get(1)?)
            }
        };
        Ok((
            u64::try_from(count).unwrap_or(0),
            u64::try_from(bytes).unwrap_or(0),
        ))
    }
}

/// Runs `f` on the SQLite connection on a blocking thread.
async fn blocking<T: Send + 'static>(
    conn: &Arc<Mutex<Connection>>,
    f: impl FnOnce(&mut Connection) -> Result<T, StorageError> + Send + 'static,
) -> Result<T, StorageError> {
    let conn = Arc::clone(conn);
    tokio::task::spawn_blocking(move || {
        let mut conn = conn
            .lock()
            .expect("photo store lock is never held across a panic");
        f(&mut conn)
    })
    .await
    .map_err(|err| StorageError::Io(std::io::Error::other(err)))?
}

fn get(conn: &Connection, lab_id: &str, id: &str) -> Result<Option<Photo>, StorageError> {
    Ok(conn
        .prepare_cached("SELECT content_type, bytes FROM photos WHERE lab_id = ?1 AND id = ?2")?
        .query_row(params![lab_id, id], |row| {
            Ok(Photo {
                content_type: row.get(0)?,
                bytes: row.get(1)?,
            })
        })
        .optional()?)
}

async fn pg_get(pg: &Pg, lab_id: &str, id: &str) -> Result<Option<Photo>, StorageError> {
    let client = pg.client().await?;
    let stmt = client
        .prepare_cached("SELECT content_type, bytes FROM photos WHERE lab_id = $1 AND id = $2")
        .await?;
    match client.query_opt(&stmt, &[&lab_id, &id]).await? {
        Some(row) => Ok(Some(Photo {
            content_type: row.try_get(0)?,
            bytes: row.try_get(1)?,
        })),
        None => Ok(None),
    }
}

/// What the store knows of a photo, without its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhotoInfo {
    pub id: String,
    pub content_type: String,
    pub size: u64,
}

/// Blocking reads of the photo store (see [`PhotoStore::reader`]). Call it only where blocking
/// is allowed: on a `spawn_blocking` thread, never on the async runtime.
pub struct PhotoReader {
    backend: Backend,
    /// The runtime a PostgreSQL reader's queries run on, while the calling thread waits.
    runtime: Option<Handle>,
}

impl PhotoReader {
    fn lock(conn: &Mutex<Connection>) -> std::sync::MutexGuard<'_, Connection> {
        conn.lock()
            .expect("photo store lock is never held across a panic")
    }

    /// Waits on this thread for `work`, run on the runtime the reader was made on.
    fn wait<T>(&self, work: impl std::future::Future<Output = T>) -> T {
        self.runtime
            .as_ref()
            .expect("a PostgreSQL reader is made with the runtime's handle")
            .block_on(work)
    }

    /// Photo `id` of the lab, if it has one.
    pub fn get(&self, lab_id: &str, id: &str) -> Result<Option<Photo>, StorageError> {
        match &self.backend {
            Backend::Sqlite(conn) => get(&Self::lock(conn), lab_id, id),
            Backend::Postgres(pg) => self.wait(pg_get(pg, lab_id, id)),
        }
    }

    /// Every photo of the lab, by id, without the bytes.
    pub fn list(&self, lab_id: &str) -> Result<Vec<PhotoInfo>, StorageError> {
        match &self.backend {
            Backend::Sqlite(conn) => {
                let conn = Self::lock(conn);
                let mut statement = conn.prepare_cached(
                    "SELECT id, content_type, size FROM photos WHERE lab_id = ?1 ORDER BY id",
                )?;
                let rows = statement.query_map(params![lab_id], |row| {
                    let size: i64 = row.get(2)?;
                    Ok(PhotoInfo {
                        id: row.get(0)?,
                        content_type: row.get(1)?,
                        size: u64::try_from(size).unwrap_or(0),
                    })
                })?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            }
            Backend::Postgres(pg) => self.wait(async {
                let client = pg.client().await?;
                // COLLATE "C": ordered by bytes, as SQLite does.
                let rows = client
                    .query(
                        "SELECT id, content_type, size FROM photos WHERE lab_id = $1
                         ORDER BY id COLLATE \"C\"",
                        &[&lab_id],
                    )
                    .await?;
                rows.iter()
                    .map(|row| {
                        Ok(PhotoInfo {
                            id: row.try_get(0)?,
                            content_type: row.try_get(1)?,
                            size: u64::try_from(row.try_get::<_, i64>(2)?).unwrap_or(0),
                        })
                    })
                    .collect()
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labs::testing::{on_both_backends, Db};
    use crate::labs::LabStore;
    use crate::secrets;
    use labboard_protocol::board::LabInfo;
    use labboard_protocol::DocumentId;
    use std::time::Duration;

    on_both_backends!(
        photos_are_kept_per_lab_within_the_quota_and_go_with_their_lab,
        uploads_from_two_nodes_at_once_stay_within_the_quota,
    );

    async fn lab(labs: &LabStore) -> String {
        let lab_id = secrets::new_lab_id();
        labs.create(
            lab_id.clone(),
            DocumentId::random(),
            LabInfo {
                title: "Fractions".into(),
                ..LabInfo::default()
            },
            secrets::hash("key"),
        )
        .await
        .unwrap();
        lab_id
    }

    #[test]
    fn ids_are_64_lowercase_hex_digits() {
        let id = id_of(b"photo");
        assert!(valid_id(&id), "{id}");
        assert_eq!(
            id_of(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(!valid_id(&id.to_uppercase()));
        assert!(!valid_id(&id[1..]));
        assert!(!valid_id(&format!("{}g", &id[1..])));
        assert!(!valid_id(""));
    }

    async fn photos_are_kept_per_lab_within_the_quota_and_go_with_their_lab(db: &Db) {
        let labs = db.labs(Duration::from_secs(3600)).await;
        let photos = db.photos().await;
        let a = lab(&labs).await;
        let b = lab(&labs).await;

        let first = vec![1u8; 60];
        let id = id_of(&first);
        let put = |lab: &str, id: &str, bytes: Vec<u8>| {
            let (lab, id) = (lab.to_owned(), id.to_owned());
            let photos = &photos;
            async move {
                photos
                    .put(&lab, &id, "image/png", bytes, 100)
                    .await
                    .unwrap()
            }
        };
        assert_eq!(put(&a, &id, first.clone()).await, Put::Stored { size: 60 });
        assert_eq!(
            put(&a, &id, first.clone()).await,
            Put::Existing { size: 60 }
        );
        assert_eq!(photos.usage(&a).await.unwrap(), (1, 60));
        // Another lab has its own photos and its own quota.
        assert_eq!(photos.get(&b, &id).await.unwrap(), None);
        assert!(!photos.exists(&b, &id).await.unwrap());
        assert_eq!(put(&b, &id, first.clone()).await, Put::Stored { size: 60 });
        // 60 + 41 > 100.
        let second = vec![2u8; 41];
        assert_eq!(
            put(&a, &id_of(&second), second).await,
            Put::Full {
                used: 60,
                limit: 100
            }
        );
        let third = vec![3u8; 40];
        assert_eq!(
            put(&a, &id_of(&third), third).await,
            Put::Stored { size: 40 }
        );
        assert_eq!(photos.usage(&a).await.unwrap(), (2, 100));
        assert_eq!(
            photos.get(&a, &id).await.unwrap(),
            Some(Photo {
                content_type: "image/png".into(),
                bytes: first.clone()
            })
        );

        assert_eq!(put("no-such-lab", &id, first.clone()).await, Put::NoLab);
        labs.end(&b).await.unwrap();
        let fourth = vec![4u8; 10];
        assert_eq!(put(&b, &id_of(&fourth), fourth).await, Put::Ended);
        // A photo the ended lab has already is still reported as there.
        assert_eq!(
            put(&b, &id, first.clone()).await,
            Put::Existing { size: 60 }
        );
        assert!(photos.exists(&b, &id).await.unwrap());

        // The blocking reader sees the same, listed by id, without the bytes.
        let reader = photos.reader();
        let mut listed = vec![
            PhotoInfo {
                id: id.clone(),
                content_type: "image/png".into(),
                size: 60,
            },
            PhotoInfo {
                id: id_of(&[3u8; 40]),
                content_type: "image/png".into(),
                size: 40,
            },
        ];
        listed.sort_by(|x, y| x.id.cmp(&y.id));
        let (a2, id2) = (a.clone(), id.clone());
        let (list, got, none, empty) = tokio::task::spawn_blocking(move || {
            (
                reader.list(&a2).unwrap(),
                reader.get(&a2, &id2).unwrap(),
                reader.get("no-such-lab", &id2).unwrap(),
                reader.list("no-such-lab").unwrap(),
            )
        })
        .await
        .unwrap();
        assert_eq!(list, listed);
        assert_eq!(got.map(|p| p.bytes), Some(first.clone()));
        assert_eq!(none, None);
        assert_eq!(empty, []);

        assert!(labs.delete(&a).await.unwrap());
        assert_eq!(photos.usage(&a).await.unwrap(), (0, 0));
        assert_eq!(photos.get(&a, &id).await.unwrap(), None);
        assert_eq!(photos.usage(&b).await.unwrap(), (1, 60));
    }

    /// The record and the zip export read photos on `spawn_blocking` threads of the server's
    /// multi-thread runtime, while a PostgreSQL reader's queries run on that runtime: more
    /// readers at once than worker threads all finish.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_postgres_reader_reads_from_blocking_threads() {
        let db = Db::postgres().await;
        let labs = db.labs(Duration::from_secs(3600)).await;
        let photos = db.photos().await;
        let a = lab(&labs).await;
        let bytes = vec![7u8; 30];
        let id = id_of(&bytes);
        photos
            .put(&a, &id, "image/jpeg", bytes.clone(), 100)
            .await
            .unwrap();
        let reads = (0..8).map(|_| {
            let reader = photos.reader();
            let (a, id) = (a.clone(), id.clone());
            tokio::task::spawn_blocking(move || {
                (reader.list(&a).unwrap(), reader.get(&a, &id).unwrap())
            })
        });
        for read in futures_util::future::join_all(reads).await {
            let (list, got) = read.unwrap();
            assert_eq!(
                list,
                [PhotoInfo {
                    id: id.clone(),
                    content_type: "image/jpeg".into(),
                    size: 30
                }]
            );
            assert_eq!(got.map(|photo| photo.bytes), Some(bytes.clone()));
        }
    }

    /// Stores of their own, as on separate nodes, each uploading a different photo to one lab
    /// at the same time: the quota holds one of them, so exactly one is stored.
    async fn uploads_from_two_nodes_at_once_stay_within_the_quota(db: &Db) {
        const NODES: u8 = 6;
        let labs = db.labs(Duration::from_secs(3600)).await;
        let a = lab(&labs).await;
        let mut nodes = Vec::new();
        for _ in 0..NODES {
            nodes.push(db.photos().await);
        }
        let puts = nodes.iter().zip(0..NODES).map(|(photos, n)| {
            let bytes = vec![n; 60];
            let id = id_of(&bytes);
            let a = a.clone();
            async move { photos.put(&a, &id, "image/png", bytes, 100).await.unwrap() }
        });
        let mut outcomes = futures_util::future::join_all(puts).await;
        outcomes.sort_by_key(|put| matches!(put, Put::Full { .. }));
        let mut expected = vec![
            Put::Full {
                used: 60,
                limit: 100
            };
            usize::from(NODES)
        ];
        expected[0] = Put::Stored { size: 60 };
        assert_eq!(outcomes, expected);
        assert_eq!(nodes[0].usage(&a).await.unwrap(), (1, 60));
    }
}
