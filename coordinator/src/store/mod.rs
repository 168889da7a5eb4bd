//! The coordinator's durable state in SQLite (WAL), through sqlx with embedded migrations.
//!
//! One file per concern: [`projects`], [`pipelines`], [`jobs`], [`artifacts`], [`agents`],
//! [`logs`], [`deliveries`], [`deployments`], [`resource_groups`], [`variables`]. The
//! functions here are plain reads and writes; every decision about what state comes next
//! is the scheduler's.

pub mod agents;
pub mod artifacts;
mod cache;
pub mod deliveries;
pub mod deployments;
pub mod health;
pub mod job_queries;
pub mod jobs;
pub mod logs;
pub mod pipelines;
pub mod projects;
pub mod resource_groups;
pub mod variables;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};

use crate::secrets::SecretBox;

/// What can go wrong reading or writing the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored JSON is invalid: {0}")]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Secret(#[from] crate::secrets::SecretError),
    #[error("the store has no secret key to seal or open project secrets with")]
    NoSecretKey,
}

/// The database: a pool of connections, cheap to clone. With the coordinator's
/// [`SecretBox`] ([`Store::with_secrets`]) it seals project secrets on the way in and
/// opens them on the way out.
#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
    secrets: Option<SecretBox>,
    cache: std::sync::Arc<cache::ProjectCache>,
}

impl Store {
    /// Opens (creating if needed) the database at `url` (`sqlite://path` or a plain path)
    /// and brings its schema up to date.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        let options = if url.starts_with("sqlite:") {
            SqliteConnectOptions::from_str(url)?
        } else {
            SqliteConnectOptions::new().filename(Path::new(url))
        }
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(30))
        .foreign_keys(true)
        // Reads of pages no other connection changed come from the map, not a copy
        // through pread; the page cache of each connection holds the hot indexes.
        .pragma("mmap_size", (64 << 20).to_string())
        .pragma("cache_size", "-8192");
        // A connection of SQLite's is a file handle in this process: it cannot go stale
        // the way a network connection can, so it is not pinged at every acquire.
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .test_before_acquire(false)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Store {
            pool,
            secrets: None,
            cache: Default::default(),
        })
    }

    /// The same store, sealing and opening project secrets with `secrets`.
    pub fn with_secrets(self, secrets: SecretBox) -> Store {
        Store {
            pool: self.pool,
            secrets: Some(secrets),
            cache: Default::default(),
        }
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// A transaction that may read before it writes. It takes SQLite's write lock at its
    /// start (`BEGIN IMMEDIATE`), so a concurrent writer makes it wait its turn (the busy
    /// timeout) instead of failing with `database is locked` when it upgrades.
    pub(crate) async fn write(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    fn secrets(&self) -> Result<&SecretBox, StoreError> {
        self.secrets.as_ref().ok_or(StoreError::NoSecretKey)
    }
}
