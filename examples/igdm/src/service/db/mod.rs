//! Storage on sqlx: SQLite by default (WAL, `synchronous=FULL`), PostgreSQL for `postgres://`
//! URLs. One schema with a migration folder per backend, embedded and run at start. All SQL is
//! portable (`$1` parameters, `ON CONFLICT`, times as integer Unix milliseconds).

pub mod accounts;
pub mod automation_store;
pub mod automations;
pub mod backfill;
pub mod conversations;
pub mod crm;
pub mod delivery_log;
pub mod inbox;
pub mod outbound;
pub mod outbox;
pub mod ownership;
pub mod privacy;
pub mod rows;
pub mod teams;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyConnection, AnyPool, Executor, Transaction};
use tokio::sync::{Mutex, OwnedMutexGuard};

use super::error::{Error, ErrorKind, Result};

/// Which database the service talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite (a file, WAL mode).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// A write transaction on either backend. It dereferences to the connection, so statements run
/// on `&mut *tx`. On SQLite it holds the process's writer turn (see [`Db::begin`]) until it is
/// committed, rolled back or dropped.
#[derive(Debug)]
pub struct Tx {
    inner: Transaction<'static, Any>,
    _turn: Option<OwnedMutexGuard<()>>,
    backend: Backend,
}

impl Tx {
    /// The backend of the transaction.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Serializes, across instances, the transactions that decide for one contact of an
    /// account (its limits, counters and flow state are read, then written): on PostgreSQL a
    /// transaction-scoped advisory lock, held until commit or rollback. On SQLite the write
    /// transaction already excludes every other.
    pub async fn lock_contact(&mut self, account: &str, contact: &str) -> Result<()> {
        if self.backend == Backend::Postgres {
            sqlx::query(
                "SELECT COUNT(*) FROM (SELECT pg_advisory_xact_lock(hashtextextended($1, 0))) AS l",
            )
            .bind(format!("{account}/{contact}"))
            .execute(&mut *self.inner)
            .await?;
        }
        Ok(())
    }

    /// [`lock_contact`](Self::lock_contact) for several contacts ((account, contact) pairs) in
    /// one statement, in one global order (so that two transactions locking overlapping sets
    /// cannot deadlock each other).
    pub async fn lock_contacts(&mut self, contacts: &[(&str, &str)]) -> Result<()> {
        if self.backend != Backend::Postgres || contacts.is_empty() {
            return Ok(());
        }
        for chunk in contacts.chunks(1000) {
            let sql = format!(
                "SELECT COUNT(*) FROM (SELECT pg_advisory_xact_lock(h) FROM \
                 (SELECT hashtextextended(k, 0) AS h FROM (VALUES {}) AS v(k) \
                 ORDER BY h OFFSET 0) AS s) AS l",
                (1..=chunk.len())
                    .map(|i| format!("(${i})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (account, contact) in chunk {
                query = query.bind(format!("{account}/{contact}"));
            }
            query.execute(&mut *self.inner).await?;
        }
        Ok(())
    }

    /// Commits the transaction.
    pub async fn commit(self) -> Result<()> {
        self.inner.commit().await?;
        Ok(())
    }

    /// Rolls the transaction back.
    pub async fn rollback(self) -> Result<()> {
        self.inner.rollback().await?;
        Ok(())
    }
}

impl std::ops::Deref for Tx {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        &self.inner
    }
}

impl std::ops::DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.inner
    }
}

/// The database: a connection pool and its backend.
#[derive(Debug, Clone)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    /// SQLite has one writer at a time; a writer that finds the lock taken sleeps in SQLite's
    /// busy handler (1 ms up to 100 ms per try). Write transactions of this process take turns
    /// here instead, so they queue in order and wake the moment the previous one ends.
    writer: Arc<Mutex<()>>,
    /// Held by every clone: the WAL checkpointer stops when the last clone is dropped.
    _alive: Arc<()>,
}

impl Db {
    /// Connects to `url` and runs the migrations. For a SQLite file the parent directory is
    /// created; `sqlite::memory:` keeps one connection (one in-memory database).
    pub async fn connect(url: &str, max_connections: u32) -> Result<Db> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(Error::config(format!(
                "unsupported database URL scheme in `{}`; use sqlite://PATH or postgres://...",
                redact_url(url)
            )));
        };
        let mut url = url.to_string();
        let mut max = max_connections.max(1);
        if backend == Backend::Sqlite {
            if url.contains(":memory:") || url.contains("mode=memory") {
                max = 1;
            } else {
                let path = url
                    .trim_start_matches("sqlite://")
                    .trim_start_matches("sqlite:")
                    .split('?')
                    .next()
                    .unwrap_or_default()
                    .to_string();
                if let Some(parent) = std::path::Path::new(&path).parent() {
                    if !parent.as_os_str().is_empty() {
                        std::fs::create_dir_all(parent)?;
                    }
                }
                if !url.contains('?') {
                    url.push_str("?mode=rwc");
                }
            }
        }
        let options = AnyConnectOptions::from_str(&url).map_err(|e| {
            Error::config(format!("invalid database URL `{}`: {e}", redact_url(&url)))
        })?;
        let mut pool = AnyPoolOptions::new()
            .max_connections(max)
            .acquire_timeout(Duration::from_secs(30));
        if backend == Backend::Sqlite {
            // No ping on acquire: it is a round trip to the connection's worker thread (inside
            // the writer turn, for a write transaction) that finds nothing wrong with a local
            // file; connections are still checked when they are released.
            pool = pool
                .test_before_acquire(false)
                .after_connect(|conn, _meta| {
                    Box::pin(async move {
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                         PRAGMA busy_timeout = 30000; PRAGMA foreign_keys = ON; \
                         PRAGMA wal_autocheckpoint = 0;",
                        )
                        .await?;
                        Ok(())
                    })
                });
        }
        let pool = pool.connect_with(options).await.map_err(|e| {
            Error::new(
                ErrorKind::Database,
                format!("cannot open the database `{}`: {e}", redact_url(&url)),
            )
        })?;
        let db = Db {
            pool,
            backend,
            writer: Arc::new(Mutex::new(())),
            _alive: Arc::new(()),
        };
        db.migrate().await?;
        if backend == Backend::Sqlite && !(url.contains(":memory:") || url.contains("mode=memory"))
        {
            tokio::spawn(checkpoints(
                db.pool.clone(),
                db.writer.clone(),
                Arc::downgrade(&db._alive),
            ));
        }
        Ok(db)
    }

    async fn migrate(&self) -> Result<()> {
        match self.backend {
            Backend::Sqlite => {
                sqlx::migrate!("./migrations/sqlite")
                    .run(&self.pool)
                    .await?
            }
            Backend::Postgres => {
                sqlx::migrate!("./migrations/postgres")
                    .run(&self.pool)
                    .await?
            }
        }
        Ok(())
    }

    /// The connection pool.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Begins a write transaction. On SQLite it first waits for this process's writer turn,
    /// then runs `BEGIN IMMEDIATE` (so that it takes the write lock up front and never fails
    /// half-way on a busy database); a task must not begin a second transaction while it holds
    /// one.
    pub async fn begin(&self) -> Result<Tx> {
        let tx = match self.backend {
            Backend::Sqlite => {
                let turn = self.writer.clone().lock_owned().await;
                Tx {
                    inner: self.pool.begin_with("BEGIN IMMEDIATE").await?,
                    _turn: Some(turn),
                    backend: self.backend,
                }
            }
            Backend::Postgres => Tx {
                inner: self.pool.begin().await?,
                _turn: None,
                backend: self.backend,
            },
        };
        Ok(tx)
    }

    /// A read transaction for one organization's request. On PostgreSQL with an application
    /// role (`database_app_role`), it runs as that role with `igdm.org_id` set to `org`, so
    /// that row-level security hides every other organization's rows (a second wall behind the
    /// queries' own scoping). Dropping it rolls back.
    ///
    /// Its statements read one snapshot: on PostgreSQL the transaction is `REPEATABLE READ`
    /// (by default each statement would see the commits made since the previous one, and a
    /// conversation could be read before a batch's commit and its messages after it). SQLite's
    /// read transactions are snapshots already.
    pub async fn read_as(&self, org: &str, app_role: Option<&str>) -> Result<Reader> {
        let mut tx = self.pool.begin().await?;
        if self.backend == Backend::Postgres {
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(&mut *tx)
                .await?;
            if let Some(role) = app_role {
                act_for(&mut tx, org, role).await?;
            }
        }
        Ok(tx)
    }

    /// A write transaction for one organization's request (see [`Db::begin`]). On PostgreSQL
    /// with an application role (`database_app_role`), it runs as that role with `igdm.org_id`
    /// set to `org`, as [`Db::read_as`] does: row-level security then stands behind the
    /// request's writes too, and a statement that named another organization's row would
    /// change nothing. Elsewhere it is [`Db::begin`].
    pub async fn begin_as(&self, org: &str, app_role: Option<&str>) -> Result<Tx> {
        let mut tx = self.begin().await?;
        if let (Backend::Postgres, Some(role)) = (self.backend, app_role) {
            act_for(&mut tx.inner, org, role).await?;
        }
        Ok(tx)
    }

    /// Whether `query` (a `SELECT 1 ... LIMIT 1` with the time as `$1`) finds a row, read on
    /// the pool: idle polls ask this before they take a write transaction (most find nothing).
    pub async fn finds(&self, query: &'static str, now: i64) -> Result<bool> {
        let found: Option<i64> = sqlx::query_scalar(query)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
        Ok(found.is_some())
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// How often the WAL is checkpointed. Each pass ends with `fsync`s of the WAL and the database
/// file, which slow the commits that overlap them: under a steady load, passes once a second cut
/// the group commit's p99 by about a third compared with five a second.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(1000);

/// A WAL this long (in 4 KiB frames: 64 MiB) is checkpointed between two write transactions,
/// so that the next one starts it over (a checkpoint that runs beside writers may never catch
/// up with them).
const WAL_RESTART_FRAMES: i64 = 16_384;

/// Copies the SQLite WAL back into the database file, beside the writers.
///
/// SQLite's automatic checkpoint runs inside the commit that crosses its threshold: the copy
/// and its `fsync`s of the database file would then hold this process's writer turn, and every
/// write would wait behind them. The connections turn it off (`wal_autocheckpoint = 0`) and
/// this task checkpoints `PASSIVE`ly instead, which runs concurrently with the writer. When the
/// WAL is long, one checkpoint takes the writer turn (little is left to copy by then) so that
/// the next write transaction restarts the WAL from its beginning. Stops when the pool is closed
/// or the last `Db` clone is dropped.
async fn checkpoints(pool: AnyPool, writer: Arc<Mutex<()>>, alive: std::sync::Weak<()>) {
    let passive = || async {
        sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(&pool)
            .await
    };
    loop {
        tokio::time::sleep(CHECKPOINT_EVERY).await;
        if alive.strong_count() == 0 || pool.is_closed() {
            return;
        }
        match passive().await {
            Ok((_, frames, _)) if frames >= WAL_RESTART_FRAMES => {
                let _turn = writer.lock().await;
                if let Err(e) = passive().await {
                    tracing::warn!(error = %e, "WAL checkpoint failed; retried shortly");
                }
            }
            Ok(_) => {}
            Err(e) if pool.is_closed() => {
                tracing::debug!(error = %e, "WAL checkpointer stopped: the pool is closed");
                return;
            }
            Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed; retried shortly"),
        }
    }
}

/// `table` as a statement's target that must be searched by `index`: on SQLite, `table INDEXED
/// BY index`. Without statistics, SQLite's planner prefers an equality on a status column
/// (`status = 'sent'`) to a key list, and then walks every row of that status once per key;
/// PostgreSQL plans by its statistics.
pub(crate) fn indexed_by(backend: Backend, table: &str, index: &str) -> String {
    match backend {
        Backend::Sqlite => format!("{table} INDEXED BY {index}"),
        Backend::Postgres => table.to_string(),
    }
}

/// A read transaction from [`Db::read_as`]; it dereferences to the connection.
pub type Reader = Transaction<'static, Any>;

/// Makes the rest of PostgreSQL transaction `tx` run as `role` for organization `org` (row-level
/// security's `igdm.org_id`); both end with the transaction.
async fn act_for(tx: &mut Transaction<'static, Any>, org: &str, role: &str) -> Result<()> {
    if !is_identifier(role) {
        return Err(Error::config(
            "database_app_role must be a plain PostgreSQL role name (a-z, 0-9, _)",
        ));
    }
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("SET LOCAL ROLE {role}")))
        .execute(&mut **tx)
        .await?;
    sqlx::query("SELECT set_config('igdm.org_id', $1, true)")
        .bind(org)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Whether `s` is a plain lower-case SQL identifier.
pub fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// The URL without its password, for messages.
fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("****"));
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Unix milliseconds to a UTC time (the epoch when out of range).
pub fn to_time(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// A fresh database in a new temporary directory (removed when dropped).
    pub struct TempDb {
        pub db: Db,
        pub dir: TempDir,
    }

    /// A temporary directory removed on drop.
    pub struct TempDir(pub std::path::PathBuf);

    impl TempDir {
        pub fn new() -> TempDir {
            use std::sync::atomic::{AtomicU64, Ordering};
            static N: AtomicU64 = AtomicU64::new(0);
            let path = std::env::temp_dir().join(format!(
                "igdm-test-{}-{}-{}",
                std::process::id(),
                now_ms(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&path).unwrap();
            TempDir(path)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    pub async fn temp_db() -> TempDb {
        let dir = TempDir::new();
        let url = format!("sqlite://{}", dir.0.join("t.db").display());
        let db = Db::connect(&url, 4).await.unwrap();
        TempDb { db, dir }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sqlite_file_runs_migrations_in_wal_mode() {
        let t = testing::temp_db().await;
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(t.db.pool())
            .await
            .unwrap();
        assert_eq!(mode.to_lowercase(), "wal");
        let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(t.db.pool())
            .await
            .unwrap();
        assert_eq!(sync, 2, "synchronous = FULL");
        // migrations are idempotent on restart
        let url = format!("sqlite://{}", t.dir.0.join("t.db").display());
        Db::connect(&url, 2).await.unwrap();
    }

    #[tokio::test]
    async fn the_wal_is_copied_into_the_database_file_in_the_background() {
        let t = testing::temp_db().await;
        let file = t.dir.0.join("t.db");
        let size = || std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
        let before = size();
        let mut tx = t.db.begin().await.unwrap();
        for i in 0..2000 {
            sqlx::query("INSERT INTO wakes (account, contact, due_at) VALUES ($1, $2, $3)")
                .bind(format!("account-{i}"))
                .bind(format!("contact-{i:0>200}"))
                .bind(i64::from(i))
                .execute(&mut *tx)
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
        // commits never checkpoint (that would hold the writer turn): the task does
        let automatic: i64 = sqlx::query_scalar("PRAGMA wal_autocheckpoint")
            .fetch_one(t.db.pool())
            .await
            .unwrap();
        assert_eq!(automatic, 0);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while size() == before {
            assert!(
                std::time::Instant::now() < deadline,
                "the checkpointer never copied the WAL back"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(size() > before + 400_000, "{} -> {}", before, size());
    }

    #[tokio::test]
    async fn in_memory_database_works() {
        let db = Db::connect("sqlite::memory:", 8).await.unwrap();
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM inbox")
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(n, 0);
    }

    #[tokio::test]
    async fn unknown_schemes_are_refused() {
        let e = Db::connect("mysql://u:pw@host/db", 1).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(!e.message().contains("pw@"), "{e}");
    }
}
