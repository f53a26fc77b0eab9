//! The pipeline: the inbox worker (parse, decide, outbox rows in one transaction) and the sender
//! (rate-limited Graph API calls with retries and a delivery log). Both claim rows with leases,
//! so a crashed or restarted worker loses nothing and sends nothing twice.

pub mod backfill;
pub mod convert;
pub mod data_access;
pub mod inbox;
pub mod org_retention;
pub mod outbound;
pub mod ownership;
pub mod ratelimit;
pub mod retention;
pub mod sender;
pub mod wake;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use automation_core::Engine;
use instagram_graph::{Client, Flavor};

use super::config::Config;
use super::db::{self, Db};
use super::error::{Error, ErrorKind, Result};
use super::metrics::Metrics;
use super::vault::Vault;
use ratelimit::RateLimiter;

/// State shared by the HTTP handlers and the workers.
#[derive(Debug)]
pub struct Shared {
    /// The database.
    pub db: Db,
    /// The configuration.
    pub config: Arc<Config>,
    /// The metrics.
    pub metrics: Arc<Metrics>,
    /// The token vault.
    pub vault: Vault,
    /// The rate limiter.
    pub limiter: RateLimiter,
    /// Paces the Send API calls themselves: the limiter above admits a batch's rows while the
    /// batch is prepared, and the calls go out together afterwards; the pacer holds each call
    /// until the platform's sliding window has room at the moment it is made.
    pub pacer: RateLimiter,
    /// A Graph API client without a token, at the configured base URL; per-account clients
    /// share its connection pool.
    pub graph: Client,
    /// A plain HTTP client for automation webhooks and outbound webhook deliveries; unless
    /// `outbound.allow_private_targets`, it resolves names to public addresses only (see
    /// `egress`).
    pub http: reqwest::Client,
    /// Which accounts this instance sends for (all of them on SQLite).
    pub ownership: ownership::Ownership,
    /// The model answering `ai_reply` actions (`[ai]`); `None`: they send their fallback.
    pub ai: Option<Arc<dyn crate::service::ai::Responder>>,
    /// The accounts whose messages are not read (P5), rebuilt with the engine.
    pub data_access: data_access::Cache,
    /// Records the sender loops' attempts before their calls, several in one commit.
    pub attempts: sender::Attempts,
    engine: RwLock<Arc<Engine>>,
    /// Engine changes take turns: each reads the stored automations and installs the engine
    /// built from them before the next one starts, so an engine built from an older read
    /// never replaces a newer one.
    engine_turn: tokio::sync::Mutex<()>,
    clients: Mutex<HashMap<String, (String, Client)>>,
}

impl Shared {
    /// Builds the shared state; the engine starts with the stored automations.
    pub async fn new(
        db: Db,
        config: Arc<Config>,
        metrics: Arc<Metrics>,
        vault: Vault,
    ) -> Result<Self> {
        let graph = Client::builder("")
            .base_url(config.graph_base_url.clone())
            .graph_version(config.graph_version.clone())
            .timeout(std::time::Duration::from_millis(
                config.call_timeout_ms.max(1),
            ))
            .build()?;
        let rules = db::automations::rule_set(&db).await?;
        let shared = Self {
            limiter: RateLimiter::new(config.send_per_second, config.private_replies_per_hour),
            pacer: RateLimiter::new(config.send_per_second, config.private_replies_per_hour),
            http: {
                let builder =
                    reqwest::Client::builder().timeout(std::time::Duration::from_secs(10));
                if config.outbound.allow_private_targets {
                    builder
                } else {
                    builder.dns_resolver(Arc::new(super::egress::PublicResolver))
                }
            }
            .build()
            .map_err(|e| Error::config(format!("cannot build the HTTP client: {e}")))?,
            graph,
            ownership: ownership::Ownership::new(db.backend()),
            ai: crate::service::ai::from_config(&config),
            engine: RwLock::new(Arc::new(Engine::new(rules))),
            data_access: data_access::Cache::default(),
            attempts: sender::Attempts::start(db.clone(), {
                // a claim's lease, beyond the call's timeout
                let lease = i64::try_from(config.lease().as_millis()).unwrap_or(60_000);
                lease + i64::try_from(config.call_timeout_ms).unwrap_or(30_000)
            }),
            engine_turn: tokio::sync::Mutex::new(()),
            clients: Mutex::new(HashMap::new()),
            db,
            config,
            metrics,
            vault,
        };
        shared.data_access.refresh(&shared.db).await?;
        Ok(shared)
    }

    /// The current engine.
    pub fn engine(&self) -> Arc<Engine> {
        match self.engine.read() {
            Ok(e) => e.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn set_engine(&self, engine: Engine) {
        let mut slot = match self.engine.write() {
            Ok(e) => e,
            Err(poisoned) => poisoned.into_inner(),
        };
        *slot = Arc::new(engine);
    }

    /// Reloads the engine from the stored automations.
    pub async fn reload_engine(&self) -> Result<()> {
        let _turn = self.engine_turn.lock().await;
        let rules = db::automations::rule_set(&self.db).await?;
        self.set_engine(Engine::new(rules));
        self.data_access.refresh(&self.db).await
    }

    /// Validates and stores `file` (see [`db::automations::save`]) and makes the stored
    /// automations live; on invalid input nothing changes and the problems are returned.
    pub async fn save_automations(
        &self,
        file: automation_core::RulesFile,
    ) -> Result<std::result::Result<(), Vec<db::automations::Problem>>> {
        let refused = webhook_targets_refused(&file, self.config.outbound.allow_private_targets);
        if !refused.is_empty() {
            return Ok(Err(refused));
        }
        let _turn = self.engine_turn.lock().await;
        let saved = db::automations::save(&self.db, file, db::now_ms())
            .await?
            .map(|set| self.set_engine(Engine::new(set)));
        self.data_access.refresh(&self.db).await?;
        Ok(saved)
    }

    /// A Graph API client with `account`'s token (opened from the vault; cached until the
    /// sealed token changes).
    pub async fn client_for(&self, account: &str) -> Result<Client> {
        let Some((sealed, _status)) = db::accounts::sealed_token(&self.db, account).await? else {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!(
                    "account {account} is not connected; connect it through /connect/instagram"
                ),
            ));
        };
        if let Ok(cache) = self.clients.lock() {
            if let Some((cached, client)) = cache.get(account) {
                if *cached == sealed {
                    return Ok(client.clone());
                }
            }
        }
        let token = self.vault.open(account, &sealed)?;
        let client = self
            .graph
            .with_token(token.expose().as_str(), Flavor::InstagramLogin);
        if let Ok(mut cache) = self.clients.lock() {
            cache.insert(account.to_string(), (sealed, client.clone()));
        }
        Ok(client)
    }

    /// Forgets the cached client of `account`.
    pub fn forget_client(&self, account: &str) {
        if let Ok(mut cache) = self.clients.lock() {
            cache.remove(account);
        }
    }
}

/// The `webhook` actions and flow steps of `file` whose URL the service would refuse to call
/// (server-side request forgery guard, see `service::egress`), located: refused when the
/// automations are saved rather than at each firing.
fn webhook_targets_refused(
    file: &automation_core::RulesFile,
    allow_private: bool,
) -> Vec<db::automations::Problem> {
    use automation_core::flow::StepKind;
    use automation_core::rule::Action;
    let refused = |rule: &str, field: String, url: &str| {
        crate::service::egress::check_url(url, allow_private)
            .err()
            .map(|message| db::automations::Problem {
                rule: Some(rule.to_owned()),
                field: Some(field),
                position: None,
                message,
            })
    };
    let mut problems = Vec::new();
    for rule in &file.rules {
        for (i, action) in rule.actions.iter().enumerate() {
            if let Action::Webhook { url, .. } = action {
                problems.extend(refused(&rule.id, format!("actions[{i}].url"), url));
            }
        }
    }
    for flow in &file.flows {
        for (i, step) in flow.steps.iter().enumerate() {
            if let StepKind::Webhook { url, .. } = &step.kind {
                problems.extend(refused(&flow.id, format!("steps[{i}].url"), url));
            }
        }
    }
    problems
}

/// A unique lease owner for one claim round.
pub(crate) fn lease_owner(worker: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static ROUND: AtomicU64 = AtomicU64::new(0);
    format!(
        "{worker}-{}-{}-{}",
        std::process::id(),
        db::now_ms(),
        ROUND.fetch_add(1, Ordering::Relaxed)
    )
}
