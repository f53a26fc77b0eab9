//! `igdm serve`: runs the reference service (webhook in, DM out) until Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use igdm::service::{Config, Service};

use super::Failure;

/// Settings come from the TOML file (`--config`), then `IGDM_*` environment variables, then
/// these flags, each overriding the one before. Every setting has a default that runs locally:
/// a SQLite database and a generated vault key under `./igdm-data`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TOML configuration file (every field of the service configuration; see the docs of
    /// `igdm::service::Config`).
    #[arg(long, env = "IGDM_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "IGDM_LISTEN")]
    listen: Option<SocketAddr>,
    /// Public base URL of this service, for the OAuth redirect [default: http://<listen>].
    #[arg(long, env = "IGDM_PUBLIC_URL")]
    public_url: Option<String>,
    /// Data directory: SQLite database and vault key file [default: ./igdm-data].
    #[arg(long, env = "IGDM_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Database URL: sqlite://PATH or postgres://USER:PASS@HOST/DB [default: <data-dir>/igdm.db].
    #[arg(long, env = "IGDM_DATABASE_URL")]
    database_url: Option<String>,
    /// Meta app id.
    #[arg(long, env = "IGDM_APP_ID")]
    app_id: Option<String>,
    /// Meta app secret (verifies webhook signatures, exchanges OAuth codes).
    #[arg(long, env = "IGDM_APP_SECRET", hide_env_values = true)]
    app_secret: Option<String>,
    /// Verify token of the webhook subscription handshake.
    #[arg(long, env = "IGDM_VERIFY_TOKEN", hide_env_values = true)]
    verify_token: Option<String>,
    /// Graph API base URL [default: https://graph.instagram.com].
    #[arg(long, env = "IGDM_GRAPH_BASE_URL")]
    graph_base_url: Option<String>,
    /// Graph API version [default: instagram-graph's].
    #[arg(long, env = "IGDM_GRAPH_VERSION")]
    graph_version: Option<String>,
    /// OAuth authorize page [default: https://www.instagram.com/oauth/authorize].
    #[arg(long, env = "IGDM_OAUTH_AUTHORIZE_URL")]
    oauth_authorize_url: Option<String>,
    /// OAuth code-exchange base [default: https://api.instagram.com].
    #[arg(long, env = "IGDM_OAUTH_API_BASE_URL")]
    oauth_api_base_url: Option<String>,
    /// Long-lived token base [default: the Graph API base URL].
    #[arg(long, env = "IGDM_OAUTH_GRAPH_BASE_URL")]
    oauth_graph_base_url: Option<String>,
    /// Vault key, 64 hex characters [default: a generated key file, 0600, under the data dir].
    #[arg(long, env = "IGDM_VAULT_KEY", hide_env_values = true)]
    vault_key: Option<String>,
    /// Vault key file [default: <data-dir>/vault.key].
    #[arg(long, env = "IGDM_VAULT_KEY_FILE")]
    vault_key_file: Option<PathBuf>,
    /// Operator keys of the management API, comma-separated: each acts as the Owner of the
    /// bootstrap organization (members log in and organizations mint their own keys besides).
    #[arg(
        long,
        env = "IGDM_API_KEYS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    api_keys: Option<Vec<String>>,
    /// PostgreSQL: a non-owner role the login role may SET ROLE to; the management API reads
    /// and writes as it with the caller's organization set, under row-level security
    /// [default: none].
    #[arg(long, env = "IGDM_DATABASE_APP_ROLE")]
    database_app_role: Option<String>,
    /// Memory cost of the argon2id password hash in KiB [default: 19456].
    #[arg(long, env = "IGDM_PASSWORD_MEMORY_KIB")]
    password_memory_kib: Option<u32>,
    /// How long a login session lasts, in hours [default: 336].
    #[arg(long, env = "IGDM_SESSION_HOURS")]
    session_hours: Option<i64>,
    /// Largest webhook body in bytes [default: 1048576].
    #[arg(long, env = "IGDM_BODY_LIMIT")]
    body_limit: Option<usize>,
    /// Most database connections [default: 8].
    #[arg(long, env = "IGDM_MAX_CONNECTIONS")]
    max_connections: Option<u32>,
    /// Sends per second per account [default: 100].
    #[arg(long, env = "IGDM_SEND_PER_SECOND")]
    send_per_second: Option<u32>,
    /// Private replies per hour per account [default: 750].
    #[arg(long, env = "IGDM_PRIVATE_REPLIES_PER_HOUR")]
    private_replies_per_hour: Option<u32>,
    /// Most attempts per outbound action [default: 5].
    #[arg(long, env = "IGDM_MAX_ATTEMPTS")]
    max_attempts: Option<u32>,
    /// Lease of claimed rows in seconds [default: 60].
    #[arg(long, env = "IGDM_LEASE_SECS")]
    lease_secs: Option<u64>,
    /// Seconds an instance owns an account's sending when several instances share one
    /// PostgreSQL database (renewed every second; at least 5) [default: 10].
    #[arg(long, env = "IGDM_ACCOUNT_LEASE_SECS")]
    account_lease_secs: Option<u64>,
    /// Log as JSON lines.
    #[arg(long, env = "IGDM_LOG_JSON")]
    log_json: bool,
    /// Only ingest webhooks; do not run the pipeline workers.
    #[arg(long, env = "IGDM_NO_WORKERS")]
    no_workers: bool,
    /// Base URL of an OpenAI-compatible chat-completions API for `ai_reply` automations
    /// (`[ai] base_url`; setting any `--ai-*` turns AI replies on) [default: https://api.openai.com/v1].
    #[arg(long, env = "IGDM_AI_BASE_URL")]
    ai_base_url: Option<String>,
    /// Model asked for AI replies (`[ai] model`) [default: gpt-4o-mini].
    #[arg(long, env = "IGDM_AI_MODEL")]
    ai_model: Option<String>,
    /// API key of the model endpoint (`[ai] api_key`); never logged.
    #[arg(long, env = "IGDM_AI_API_KEY", hide_env_values = true)]
    ai_api_key: Option<String>,
    /// Milliseconds to wait for the model before sending the fallback (`[ai] timeout_ms`)
    /// [default: 10000].
    #[arg(long, env = "IGDM_AI_TIMEOUT_MS")]
    ai_timeout_ms: Option<u64>,
    /// Log filter (tracing env-filter syntax) [default: info].
    #[arg(long, env = "IGDM_LOG", default_value = "info")]
    log: String,
}

impl ServeArgs {
    fn config(self) -> Result<(Config, String), Failure> {
        let mut c = match &self.config {
            Some(path) => Config::from_file(path).map_err(|e| Failure::new(e.to_string()))?,
            None => Config::default(),
        };
        macro_rules! set {
            ($($field:ident),*) => { $( if let Some(v) = self.$field { c.$field = v; } )* };
        }
        set!(
            listen,
            data_dir,
            app_id,
            app_secret,
            verify_token,
            graph_base_url,
            graph_version,
            oauth_authorize_url,
            oauth_api_base_url,
            api_keys,
            password_memory_kib,
            session_hours,
            body_limit,
            max_connections,
            send_per_second,
            private_replies_per_hour,
            max_attempts,
            lease_secs,
            account_lease_secs
        );
        if self.public_url.is_some() {
            c.public_url = self.public_url;
        }
        if self.database_app_role.is_some() {
            c.database_app_role = self.database_app_role;
        }
        if self.database_url.is_some() {
            c.database = self.database_url;
        }
        if self.oauth_graph_base_url.is_some() {
            c.oauth_graph_base_url = self.oauth_graph_base_url;
        }
        if self.vault_key.is_some() {
            c.vault_key = self.vault_key;
        }
        if self.vault_key_file.is_some() {
            c.vault_key_file = self.vault_key_file;
        }
        if self.ai_base_url.is_some()
            || self.ai_model.is_some()
            || self.ai_api_key.is_some()
            || self.ai_timeout_ms.is_some()
        {
            let ai = c.ai.get_or_insert_with(Default::default);
            if let Some(v) = self.ai_base_url {
                ai.base_url = v;
            }
            if let Some(v) = self.ai_model {
                ai.model = v;
            }
            if let Some(v) = self.ai_api_key {
                ai.api_key = Some(v);
            }
            if let Some(v) = self.ai_timeout_ms {
                ai.timeout_ms = v;
            }
        }
        c.log_json |= self.log_json;
        c.workers &= !self.no_workers;
        c.validate().map_err(|e| Failure::new(e.to_string()))?;
        Ok((c, self.log))
    }
}

/// Runs `igdm serve`.
pub fn run(args: ServeArgs) -> Result<ExitCode, Failure> {
    let (config, filter) = args.config()?;
    let filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .map_err(|e| Failure::new(format!("invalid --log filter: {e}")))?;
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if config.log_json {
        subscriber.json().try_init()
    } else {
        subscriber.try_init()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::new(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async move {
        let running = Service::start(config)
            .await
            .map_err(|e| Failure::new(e.to_string()))?;
        eprintln!(
            "igdm serve: listening on {} (webhook: {}); Ctrl-C stops",
            running.base_url(),
            running.webhook_url()
        );
        let _ = tokio::signal::ctrl_c().await;
        running.shutdown().await;
        Ok(ExitCode::SUCCESS)
    })
}
