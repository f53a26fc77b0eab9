//! The reference service: webhook in, DM out, durable, on SQLite by default.
//!
//! ```text
//! Meta --POST--> /webhooks/instagram
//!    verify (webhook-verify, raw bytes) --bad--> 401, counted, nothing stored
//!    store the raw notification in `inbox` (key = sha256 of body), group commit --> 200
//! inbox worker (claims rows with a lease)
//!    parse (instagram-graph) -> events, each keyed (mid | comment id | kind+ids+time)
//!    decide (automation-core, its stores on SQL) -> outbox rows, same transaction
//! sender (claims outbox rows with a lease, per-account rate limiter)
//!    Graph API call -> delivery log: queued -> sent | retry | failed(kind); 190 -> needs reconnect
//! echoes / read receipts -> delivered, read
//!    ai_reply rows: the model's answer (or the fallback) from the contact's last messages (`ai`)
//! outbound webhooks: events enqueued in the inbox transaction, POSTed signed (Standard
//!    Webhooks) by the delivery worker with retries; signed inbound webhooks update contacts and
//!    queue DMs (`http::outbound`)
//! ```
//!
//! Start it in-process with [`Service::start`]; `igdm serve` does the same from the command line.
//!
//! ```no_run
//! # async fn run() -> Result<(), igdm::service::Error> {
//! use igdm::service::{Config, Service};
//! let running = Service::start(Config::for_tests("/tmp/igdm-example")).await?;
//! println!("listening on {}", running.base_url());
//! running.shutdown().await;
//! # Ok(()) }
//! ```

pub mod ai;
pub mod config;
pub mod db;
pub mod egress;
mod error;
pub mod http;
pub mod metrics;
pub mod pipeline;
pub mod testing;
pub mod vault;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::Config;
pub use error::{Error, ErrorKind, Result};

use http::AppState;
use pipeline::Shared;

/// The reference service.
#[derive(Debug)]
pub struct Service;

impl Service {
    /// Opens the database (running the migrations), binds the listener, and spawns the HTTP
    /// server, the group-commit task and (unless `workers = false`) the pipeline workers and the
    /// token refresh job.
    pub async fn start(config: Config) -> Result<RunningService> {
        config.validate()?;
        let config = Arc::new(config);
        let db = db::Db::connect(&config.database_url(), config.max_connections).await?;
        let vault = vault::Vault::from_config(&config)?;
        let metrics = Arc::new(metrics::Metrics::new());
        let shared = Arc::new(Shared::new(db.clone(), config.clone(), metrics, vault).await?);
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|e| {
                Error::new(
                    ErrorKind::Io,
                    format!("cannot listen on {}: {e}", config.listen),
                )
            })?;
        let addr = listener.local_addr()?;
        let (ingest, ingest_task) = http::webhook::Ingest::spawn(db.clone(), config.ingest_batch);
        let mut secrets = vec![config.app_secret.as_bytes().to_vec()];
        secrets.extend(
            config
                .previous_app_secrets
                .iter()
                .map(|s| s.as_bytes().to_vec()),
        );
        let public_url = config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{addr}"));
        let state = Arc::new(AppState {
            shared: shared.clone(),
            ingest,
            secrets,
            oauth_states: Default::default(),
            public_url,
            access_log: Default::default(),
        });
        let (stop, stopped) = watch::channel(false);
        let mut server_stop = stopped.clone();
        let app = http::router(state);
        let server = tokio::spawn(async move {
            let shutdown = async move {
                let _ = server_stop.wait_for(|s| *s).await;
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::error!(error = %e, "the HTTP server stopped");
            }
        });
        let mut workers = Vec::new();
        if config.workers {
            workers = spawn_workers(&shared, &stopped);
        }
        tracing::info!(%addr, database = ?db.backend(), "igdm service started");
        Ok(RunningService {
            addr,
            shared,
            stop,
            server: Some(server),
            ingest_task: Some(ingest_task),
            workers,
        })
    }
}

/// Spawns the inbox worker, the sender loops and the background jobs.
fn spawn_workers(shared: &Arc<Shared>, stopped: &watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
    let mut handles = Vec::new();
    let poll = shared.config.poll_interval();
    let mut jobs = vec![("inbox", 0u8)];
    // several sender loops: one calls while another waits for the writer
    jobs.extend(std::iter::repeat_n(
        ("sender", 1),
        shared.config.sender_loops.max(1),
    ));
    jobs.extend([
        ("refresh", 2),
        ("wake", 3),
        ("outbound", 4),
        ("retention", 5),
        ("ownership", 6),
        ("backfill", 7),
    ]);
    for (name, job) in jobs {
        let shared = shared.clone();
        let mut stopped = stopped.clone();
        handles.push(tokio::spawn(async move {
            loop {
                if *stopped.borrow() {
                    break;
                }
                let outcome = match job {
                    0 => pipeline::inbox::run_once(&shared).await,
                    1 => pipeline::sender::run_once(&shared).await,
                    3 => pipeline::wake::run_once(&shared).await,
                    4 => pipeline::outbound::run_once(&shared).await,
                    5 => pipeline::retention::run_once(&shared).await,
                    6 => pipeline::ownership::run_once(&shared).await,
                    7 => pipeline::backfill::run_once(&shared).await,
                    _ => refresh_tokens(&shared).await,
                };
                // A small inbox batch: the notifications arriving in the next moment share the
                // next batch's transaction (one commit, a few statements for all of them).
                if let (0, Ok(n)) = (job, &outcome) {
                    let small = i64::try_from(*n).unwrap_or(i64::MAX) < shared.config.inbox_batch / 2;
                    if *n > 0 && small && shared.config.inbox_linger_ms > 0 {
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_millis(shared.config.inbox_linger_ms)) => {}
                            _ = stopped.changed() => {}
                        }
                    }
                }
                let idle = match outcome {
                    Ok(n) => n == 0,
                    Err(e) => {
                        tracing::warn!(worker = name, error = %e, "worker round failed");
                        true
                    }
                };
                if idle || matches!(job, 2 | 5) {
                    let wait = match job {
                        2 => Duration::from_secs(3600),
                        5 => Duration::from_secs(shared.config.retention_interval_secs.max(1)),
                        _ => poll,
                    };
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = stopped.changed() => {}
                    }
                }
            }
        }));
    }
    handles
}

/// Refreshes long-lived tokens that expire within `refresh_within_days`.
async fn refresh_tokens(shared: &Shared) -> Result<usize> {
    let now = db::now_ms();
    let before = now + shared.config.refresh_within_days * 86_400_000;
    let due = db::accounts::expiring(&shared.db, before).await?;
    let graph_base = shared
        .config
        .oauth_graph_base_url
        .clone()
        .unwrap_or_else(|| shared.config.graph_base_url.clone());
    let oauth = instagram_graph::oauth::OAuthClient::new(instagram_graph::oauth::OAuthConfig::new(
        shared.config.app_id.clone(),
        shared.config.app_secret.clone(),
        String::new(),
    ))
    .base_urls(
        shared.config.oauth_api_base_url.trim_end_matches('/'),
        graph_base.trim_end_matches('/'),
    );
    let mut refreshed = 0;
    for account in due {
        let Some((sealed, _)) = db::accounts::sealed_token(&shared.db, &account).await? else {
            continue;
        };
        let token = shared.vault.open(&account, &sealed)?;
        let token = instagram_graph::model::AccessToken::from(token.expose().as_str());
        match oauth.refresh(&token).await {
            Ok(r) => {
                let long = r.into_inner();
                let sealed = shared
                    .vault
                    .seal(&account, long.access_token.expose_secret())?;
                let expires = long
                    .expires_in
                    .and_then(|s| i64::try_from(s).ok())
                    .map(|s| now + s * 1000);
                db::accounts::set_token(&shared.db, &account, &sealed, expires, now).await?;
                shared.forget_client(&account);
                refreshed += 1;
            }
            Err(e) if matches!(e.kind(), instagram_graph::ErrorKind::TokenInvalid { .. }) => {
                db::accounts::set_status(
                    &shared.db,
                    &account,
                    db::accounts::NEEDS_RECONNECT,
                    Some("the token could not be refreshed (error 190); reconnect the account"),
                    now,
                )
                .await?;
                shared.forget_client(&account);
                tracing::warn!(
                    account,
                    "token refresh refused (190): account needs reconnect"
                );
            }
            Err(e) => tracing::warn!(account, error = %e, "token refresh failed"),
        }
    }
    Ok(refreshed)
}

/// A started service.
#[derive(Debug)]
pub struct RunningService {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    server: Option<JoinHandle<()>>,
    ingest_task: Option<JoinHandle<()>>,
    workers: Vec<JoinHandle<()>>,
}

impl RunningService {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The webhook callback URL (`<base>/webhooks/instagram`).
    pub fn webhook_url(&self) -> String {
        format!("{}/webhooks/instagram", self.base_url())
    }

    /// The shared state (database, metrics, engine), for embedders and tests.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Stores an account that already holds a token (sealed in the vault), subscribes it to
    /// webhooks and syncs its media, like the end of the OAuth connect flow.
    pub async fn connect_account(
        &self,
        account: &str,
        username: Option<&str>,
        token: &str,
        expires_at: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<()> {
        http::connect::connect_with_token(
            &self.shared,
            account,
            username,
            token,
            expires_at.map(|t| t.timestamp_millis()),
        )
        .await
    }

    /// Like [`connect_account`](Self::connect_account), into organization `org` (an account
    /// connected to another organization is refused with [`ErrorKind::Conflict`]).
    pub async fn connect_account_in(
        &self,
        org: &str,
        account: &str,
        username: Option<&str>,
        token: &str,
    ) -> Result<()> {
        http::connect::connect_with_token_in(&self.shared, org, account, username, token, None)
            .await
    }

    /// Refreshes now the tokens that expire within `refresh_within_days` (the background job does
    /// this hourly); how many were refreshed.
    pub async fn refresh_tokens(&self) -> Result<usize> {
        refresh_tokens(&self.shared).await
    }

    /// Validates and stores automations (a rules file in JSON or TOML) and makes them live.
    pub async fn put_automations(&self, text: &str) -> Result<()> {
        let file = automation_core::RulesFile::parse(text)?;
        match self.shared.save_automations(file).await? {
            Ok(()) => Ok(()),
            Err(problems) => Err(Error::new(
                ErrorKind::Automation,
                problems
                    .iter()
                    .map(|p| match (&p.rule, &p.field) {
                        (Some(r), Some(f)) => format!("`{r}` {f}: {}", p.message),
                        (Some(r), None) => format!("`{r}`: {}", p.message),
                        _ => p.message.clone(),
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
            )),
        }
    }

    /// Stops every task at once, without letting any finish its work: what a crash or a killed
    /// process does. Claimed rows stay leased; a later start takes them over when the leases
    /// expire. For tests of crash recovery.
    pub async fn abort(mut self) {
        for task in self
            .workers
            .drain(..)
            .chain(self.server.take())
            .chain(self.ingest_task.take())
        {
            task.abort();
            let _ = task.await;
        }
        self.shared.db.close().await;
    }

    /// Stops the workers, then the server (in-flight requests finish), then the commit task.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for worker in self.workers.drain(..) {
            let _ = worker.await;
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
        // No call is in flight any more: another instance may take this one's accounts.
        if let Err(e) = pipeline::ownership::release(&self.shared).await {
            tracing::warn!(error = %e, "could not release the account leases; they expire");
        }
        if let Some(task) = self.ingest_task.take() {
            task.abort();
            let _ = task.await;
        }
        self.shared.db.close().await;
    }
}
