//! Running tests on both databases: SQLite always, PostgreSQL when `IGDM_TEST_POSTGRES_URL` is
//! set to a role that may create databases (for example
//! `postgres://igdm:igdm@127.0.0.1:55432/igdm`; `.ci/postgres start` starts such a server).
//!
//! A test body runs once per backend inside [`on_each_backend`]; inside it,
//! [`fresh_database`] gives each service its own empty database (a new SQLite file in the test's
//! data directory, or a new PostgreSQL database that is dropped when the body has finished), so
//! tests stay independent and can run in parallel.
//!
//! ```no_run
//! # async fn run() {
//! use igdm::service::{testing, Config};
//! testing::on_each_backend(|| async {
//!     let mut config = Config::for_tests("/tmp/igdm-example");
//!     config.database = testing::fresh_database().await; // None on SQLite: the data_dir file
//!     // ... start the service and test it ...
//! })
//! .await;
//! # }
//! ```

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use sqlx::{Connection, Executor};

/// A test's data directory, removed when dropped (`.0`), and the database its service uses
/// (`.1`, for [`Config::database`](super::Config::database): a fresh PostgreSQL database from
/// [`fresh_database`], or `None` for SQLite in the directory).
#[derive(Debug)]
pub struct TestDir(pub std::path::PathBuf, pub Option<String>);

impl TestDir {
    /// A new directory named after the test, with a fresh database of the current backend.
    pub async fn new(name: &str) -> TestDir {
        let mut dir = TestDir::local(name);
        dir.1 = fresh_database().await;
        dir
    }

    /// A new directory named after the test, for SQLite only (no database is created).
    pub fn local(name: &str) -> TestDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "igdm-test-{name}-{}-{}-{}",
            std::process::id(),
            chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("the test's temporary directory can be created");
        TestDir(path, None)
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The environment variable naming the PostgreSQL server used by the tests.
pub const POSTGRES_URL_VAR: &str = "IGDM_TEST_POSTGRES_URL";

/// The database a test body runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TestBackend {
    /// SQLite: a file in the test's data directory.
    Sqlite,
    /// PostgreSQL: a new database per service, created through this URL.
    Postgres {
        /// A URL whose role may `CREATE DATABASE`.
        admin_url: String,
    },
}

#[derive(Debug, Clone)]
struct Current {
    backend: TestBackend,
    created: Arc<Mutex<Vec<String>>>,
}

tokio::task_local! {
    static CURRENT: Current;
}

/// The PostgreSQL URL from `IGDM_TEST_POSTGRES_URL`, if set and not empty.
pub fn postgres_admin_url() -> Option<String> {
    std::env::var(POSTGRES_URL_VAR)
        .ok()
        .filter(|u| !u.trim().is_empty())
}

/// The backend the current test body runs on ([`TestBackend::Sqlite`] outside
/// [`on_each_backend`]).
pub fn current_backend() -> TestBackend {
    CURRENT
        .try_with(|c| c.backend.clone())
        .unwrap_or(TestBackend::Sqlite)
}

/// Runs `test` on SQLite, then on PostgreSQL when `IGDM_TEST_POSTGRES_URL` is set (otherwise it
/// prints that the PostgreSQL run was skipped). The PostgreSQL databases the body created with
/// [`fresh_database`] are dropped after it returns.
pub async fn on_each_backend<F, Fut>(test: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()>,
{
    run_on(TestBackend::Sqlite, &test).await;
    match postgres_admin_url() {
        Some(admin_url) => run_on(TestBackend::Postgres { admin_url }, &test).await,
        None => println!("PostgreSQL run skipped: set {POSTGRES_URL_VAR} to run it too"),
    }
}

/// Runs `test` once on `backend`; PostgreSQL databases it created are dropped afterwards.
pub async fn run_on<F, Fut>(backend: TestBackend, test: &F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()>,
{
    let current = Current {
        backend: backend.clone(),
        created: Arc::default(),
    };
    CURRENT.scope(current.clone(), test()).await;
    if let TestBackend::Postgres { admin_url } = backend {
        let names = match current.created.lock() {
            Ok(mut names) => std::mem::take(&mut *names),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        };
        for name in names {
            // Best effort: a database left behind only takes space on a test server.
            let _ = drop_database(&admin_url, &name).await;
        }
    }
}

/// A new, empty database for one service on the current backend: `None` on SQLite (the service
/// then uses its `data_dir`), a `postgres://` URL of a new database on PostgreSQL.
///
/// # Panics
/// On PostgreSQL, when the database cannot be created (a test helper: the test fails).
pub async fn fresh_database() -> Option<String> {
    let current = CURRENT.try_with(|c| c.clone()).ok()?;
    let TestBackend::Postgres { admin_url } = &current.backend else {
        return None;
    };
    let (name, url) = match create_database(admin_url).await {
        Ok(created) => created,
        Err(e) => panic!("cannot create a test database on PostgreSQL: {e}"),
    };
    if let Ok(mut names) = current.created.lock() {
        names.push(name);
    }
    Some(url)
}

/// Creates a new database through `admin_url`; its name and URL.
pub async fn create_database(admin_url: &str) -> Result<(String, String), String> {
    static N: AtomicU64 = AtomicU64::new(0);
    let name = format!(
        "igdm_t_{}_{}_{}",
        std::process::id(),
        chrono::Utc::now().timestamp_micros(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let mut conn = sqlx::PgConnection::connect(admin_url)
        .await
        .map_err(|e| format!("cannot connect to {POSTGRES_URL_VAR}: {e}"))?;
    conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .await
        .map_err(|e| format!("CREATE DATABASE failed: {e}"))?;
    let _ = conn.close().await;
    let mut url = url::Url::parse(admin_url).map_err(|e| format!("{POSTGRES_URL_VAR}: {e}"))?;
    url.set_path(&format!("/{name}"));
    Ok((name, url.to_string()))
}

/// Drops a database created by [`create_database`], closing its remaining connections.
pub async fn drop_database(admin_url: &str, name: &str) -> Result<(), String> {
    let mut conn = sqlx::PgConnection::connect(admin_url)
        .await
        .map_err(|e| e.to_string())?;
    conn.execute(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
    )))
    .await
    .map_err(|e| e.to_string())?;
    let _ = conn.close().await;
    Ok(())
}
