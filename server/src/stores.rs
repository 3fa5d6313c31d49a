//! The stores a server runs on, opened from the configuration: the embedded SQLite file in the
//! data directory, or a PostgreSQL database that any number of nodes share (`--database-url`).

use crate::config::{Config, DatabaseUrl};
use crate::labs::LabStore;
use crate::ops::ReadyProbe;
use crate::pg::Pg;
use crate::photos::PhotoStore;
use crate::storage::{PgStorage, SqliteStorage, Storage};
use crate::ServerError;
use std::sync::Arc;

/// Documents, labs with their tokens, and photos, all in one database.
pub struct Stores {
    pub documents: Arc<dyn Storage>,
    pub labs: LabStore,
    pub photos: PhotoStore,
    /// How `/readyz` checks that the database takes writes.
    pub ready_probe: ReadyProbe,
    /// The database shared with other nodes, whose notifications this node listens to; `None`
    /// on the embedded store, which one node owns.
    pub shared: Option<Pg>,
    /// Where the data is, for the start-up log (no password).
    pub location: String,
}

impl Stores {
    /// The stores `config` names: PostgreSQL with `--database-url`, else SQLite in the data
    /// directory.
    pub async fn open(config: &Config) -> Result<Self, ServerError> {
        match &config.database_url {
            Some(url) => Self::postgres(url, config).await,
            None => Self::sqlite(config),
        }
    }

    /// The PostgreSQL database at `url`, migrated, shared with any other node given it.
    pub async fn postgres(url: &DatabaseUrl, config: &Config) -> Result<Self, ServerError> {
        let location = url.redacted();
        let failed = |source| ServerError::Database {
            url: location.clone(),
            source,
        };
        let pg = Pg::connect(url.as_str()).await.map_err(failed)?;
        let documents = PgStorage::new(pg.clone()).await.map_err(failed)?;
        Ok(Self {
            documents: Arc::new(documents),
            labs: LabStore::postgres(pg.clone(), config.token_ttl),
            photos: PhotoStore::postgres(pg.clone()),
            ready_probe: ReadyProbe::Postgres(pg.clone()),
            shared: Some(pg),
            location,
        })
    }

    /// The embedded SQLite file in the data directory.
    pub fn sqlite(config: &Config) -> Result<Self, ServerError> {
        let dir = config.data_dir.display().to_string();
        let store =
            SqliteStorage::open(&config.data_dir).map_err(|source| ServerError::Storage {
                dir: dir.clone(),
                source,
            })?;
        let labs = LabStore::open(store.path(), config.token_ttl)?;
        let photos = PhotoStore::open(store.path()).map_err(|source| ServerError::Storage {
            dir: dir.clone(),
            source,
        })?;
        Ok(Self {
            ready_probe: ReadyProbe::Sqlite(store.path().to_path_buf()),
            location: store.path().display().to_string(),
            documents: Arc::new(store),
            labs,
            photos,
            shared: None,
        })
    }
}
