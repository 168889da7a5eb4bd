//! The store in SQLite (WAL), through sqlx with embedded migrations: every trait of
//! [`crate::store`] for [`SqliteStore`], one file per concern beside the trait's.
//!
//! One coordinator process owns the database file. A write transaction that reads
//! first takes SQLite's write lock at its start ([`SqliteStore::write`]), so concurrent
//! writers wait their turn (the busy timeout) instead of failing with `database is
//! locked`.

mod agents;
mod artifacts;
mod cache;
mod deliveries;
mod deployments;
mod jobs;
mod logs;
mod pipelines;
mod projects;
mod resource_groups;
mod variables;

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};

use super::{Storage, StoreError};
use crate::secrets::SecretBox;

/// The database: a pool of connections. With the coordinator's [`SecretBox`] it seals
/// project secrets on the way in and opens them on the way out.
pub struct SqliteStore {
    pool: SqlitePool,
    secrets: Option<SecretBox>,
    cache: cache::ProjectCache,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` (`sqlite://path` or a plain path)
    /// and brings its schema up to date.
    pub async fn open(url: &str, secrets: Option<SecretBox>) -> Result<SqliteStore, StoreError> {
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
        Ok(SqliteStore {
            pool,
            secrets,
            cache: cache::ProjectCache::default(),
        })
    }

    fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// A transaction that may read before it writes. It takes SQLite's write lock at its
    /// start (`BEGIN IMMEDIATE`), so a concurrent writer makes it wait its turn (the busy
    /// timeout) instead of failing with `database is locked` when it upgrades.
    async fn write(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    fn secrets(&self) -> Result<&SecretBox, StoreError> {
        self.secrets.as_ref().ok_or(StoreError::NoSecretKey)
    }
}

#[async_trait]
impl Storage for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(self.pool()).await?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    fn backend(&self) -> &'static str {
        "sqlite"
    }
}

/// `Store::open` for the SQLite backend.
pub(super) async fn open(
    url: &str,
    secrets: Option<SecretBox>,
) -> Result<Arc<dyn Storage>, StoreError> {
    Ok(Arc::new(SqliteStore::open(url, secrets).await?))
}
