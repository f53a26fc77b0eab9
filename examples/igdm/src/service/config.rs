//! The service configuration: a TOML file, `IGDM_*` environment variables and command-line flags
//! (in rising precedence), with defaults that run out of the box on a local SQLite database.
//!
//! ```
//! use igdm::service::Config;
//! let config = Config::from_toml(r#"
//! listen = "127.0.0.1:0"
//! app_secret = "s3cret"
//! verify_token = "vt"
//! graph_base_url = "http://127.0.0.1:9999"
//! "#).unwrap();
//! assert_eq!(config.verify_token, "vt");
//! assert!(config.database_url().starts_with("sqlite:"));
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::error::{Error, Result};

/// The service configuration. Every field has a default (see [`Config::default`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// Address to listen on. Default `127.0.0.1:8080`; port 0 picks a free port.
    pub listen: SocketAddr,
    /// The public base URL of this service (for the OAuth redirect). Default: `http://<listen>`.
    pub public_url: Option<String>,
    /// Directory for the SQLite database and the vault key file. Default `./igdm-data`.
    pub data_dir: PathBuf,
    /// `sqlite://PATH`, `sqlite::memory:` or `postgres://...`. Default: `<data_dir>/igdm.db`.
    pub database: Option<String>,
    /// Most database connections. Default 8.
    pub max_connections: u32,
    /// PostgreSQL only: a role without ownership of the tables that the service's login role
    /// may `SET ROLE` to (grant it `SELECT, INSERT, UPDATE, DELETE` on the tables and `USAGE`
    /// on the sequences). When set, the management API reads, and makes its
    /// organization-scoped writes (CRM, team inbox, members), as that role with `igdm.org_id`
    /// set to the caller's organization, so row-level security backs the queries' own scoping.
    /// The pipeline workers, which serve every organization, and the privacy module keep the
    /// login role: its deletion cascades reach the raw notifications, which only the owner
    /// reads, and its audit register is one hash chain across organizations, whose writer must
    /// see the last entry. Default: none (the login role reads and writes; the scoping in the
    /// queries is the only wall).
    pub database_app_role: Option<String>,
    /// The Meta app id.
    pub app_id: String,
    /// The Meta app secret: verifies webhook signatures and exchanges OAuth codes.
    pub app_secret: String,
    /// Older app secrets still accepted on webhooks while rotating.
    pub previous_app_secrets: Vec<String>,
    /// The verify token of the webhook subscription handshake.
    pub verify_token: String,
    /// The Graph API base URL (the simulator's URL in tests). Default `https://graph.instagram.com`.
    pub graph_base_url: String,
    /// The Graph API version path segment. Default: instagram-graph's default.
    pub graph_version: String,
    /// The OAuth authorize page. Default `https://www.instagram.com/oauth/authorize`.
    pub oauth_authorize_url: String,
    /// The OAuth code-exchange base (`<base>/oauth/access_token`). Default `https://api.instagram.com`.
    pub oauth_api_base_url: String,
    /// The long-lived token base (`<base>/access_token`). Default: `graph_base_url`.
    pub oauth_graph_base_url: Option<String>,
    /// The vault key: 64 hex characters (32 bytes). When absent, a key file is used.
    pub vault_key: Option<String>,
    /// The vault key file, created with 0600 permissions when missing. Default `<data_dir>/vault.key`.
    pub vault_key_file: Option<PathBuf>,
    /// Operator keys of the management API (`Authorization: Bearer KEY`): each acts as the Owner
    /// of the bootstrap organization. Members log in with sessions and organizations create their
    /// own API keys besides.
    pub api_keys: Vec<String>,
    /// Memory cost of the argon2id password hash in KiB (time cost 2, one lane). Default 19456
    /// (19 MiB, argon2's default); lower it only for tests.
    pub password_memory_kib: u32,
    /// How long a login session lasts, in hours. Default 336 (14 days).
    pub session_hours: i64,
    /// Largest accepted webhook body in bytes. Default 1 MiB.
    pub body_limit: usize,
    /// Most notifications committed in one group commit. Default 512.
    pub ingest_batch: usize,
    /// Inbox rows claimed per round. Default 64.
    pub inbox_batch: i64,
    /// After an inbox batch of fewer than half `inbox_batch` notifications, how long the inbox
    /// worker waits before the next one, in milliseconds, so that the notifications arriving
    /// meanwhile share one transaction (fewer, larger commits under load, at most this much
    /// more delay). 0 turns it off. Default 20.
    pub inbox_linger_ms: u64,
    /// Outbox rows claimed per round. Default 64.
    pub outbox_batch: i64,
    /// Outbox rows sent concurrently, per sender loop. Default 16. Each call's attempt is
    /// committed just before it, and the attempts of calls that start together share a commit:
    /// at `outbox_batch` (the most a round can start), a round's attempts take one commit
    /// instead of one per wave, which matters under load on SQLite's single writer. Each
    /// outcome is committed as soon as its call returns (outcomes that arrive together share a
    /// commit), and only then is its slot freed: a crash leaves at most this many rows per loop
    /// attempted but not recorded, failed as ambiguous and never re-sent.
    pub sender_concurrency: usize,
    /// Sender loops, each claiming and sending its own batch of outbox rows: while one waits
    /// for its attempts' commit or records its outcomes, another calls. Default 2.
    pub sender_loops: usize,
    /// How long a claim lasts before another worker may take the row over, in seconds. Default 60.
    pub lease_secs: u64,
    /// On PostgreSQL with several instances: how long an instance owns an account's sending
    /// before it must renew, in seconds (renewed every second; at least 5). When an
    /// instance dies, its accounts are sent for again after this plus one second. Default 10.
    pub account_lease_secs: u64,
    /// How often idle workers look for work, in milliseconds. Default 200.
    pub poll_interval_ms: u64,
    /// Timeout of one Graph API call in milliseconds. A send still unresolved this long after
    /// its lease is treated as abandoned (ambiguous, never re-sent). Default 30000.
    pub call_timeout_ms: u64,
    /// Most attempts per outbox row. Default 5.
    pub max_attempts: u32,
    /// First retry backoff in milliseconds (doubled per attempt, jittered). Default 1000.
    pub retry_base_ms: u64,
    /// Longest retry backoff in milliseconds. Default 60000.
    pub retry_max_ms: u64,
    /// Sends per second per account (Meta: 100). Default 100.
    pub send_per_second: u32,
    /// Private replies per hour per account (Meta: 750). Default 750.
    pub private_replies_per_hour: u32,
    /// Refresh tokens expiring within this many days. Default 10.
    pub refresh_within_days: i64,
    /// Run the retention sweeper (privacy-kit retention policies per account) every this many
    /// seconds. Default 3600.
    pub retention_interval_secs: u64,
    /// Export download links expire after this many seconds (and after one download). Default
    /// 86400.
    pub export_link_ttl_secs: u64,
    /// Team inbox: when an agent replies to a conversation or it is assigned to a member, the
    /// automations stop answering that contact until the conversation is closed or this many
    /// hours pass (events meanwhile are recorded as decided `paused`, with no outbox rows).
    /// Default 24.
    pub inbox_human_hours: u64,
    /// The management API's access log (P17) keeps entries this many days; the retention
    /// sweeper deletes older ones. Default 365.
    pub access_log_days: u32,
    /// Run the pipeline workers (off: only ingest). Default true.
    pub workers: bool,
    /// Log as JSON lines. Default false.
    pub log_json: bool,
    /// The language model answering `ai_reply` automations (`[ai]` table). Absent: AI replies
    /// send their fallback text (and the log says why).
    pub ai: Option<AiConfig>,
    /// A responder of your own for `ai_reply` automations (set in code, not in TOML); it takes
    /// precedence over `ai`, whose `timeout_ms` still bounds it (10 s when `ai` is absent).
    #[serde(skip)]
    pub ai_responder: Option<std::sync::Arc<dyn super::ai::Responder>>,
    /// Outbound webhook deliveries (`[outbound]` table).
    pub outbound: OutboundConfig,
}

/// An OpenAI-compatible chat-completions endpoint (`POST {base_url}/chat/completions`).
///
/// ```
/// use igdm::service::Config;
/// let config = Config::from_toml(r#"
/// [ai]
/// base_url = "http://127.0.0.1:11434/v1"
/// model = "llama3.2"
/// timeout_ms = 8000
/// "#).unwrap();
/// let ai = config.ai.unwrap();
/// assert_eq!(ai.model, "llama3.2");
/// assert!(ai.api_key.is_none()); // or IGDM_AI_API_KEY / --ai-api-key
/// ```
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct AiConfig {
    /// The API base, without `/chat/completions`. Default `https://api.openai.com/v1`.
    pub base_url: String,
    /// The model name. Default `gpt-4o-mini`.
    pub model: String,
    /// The API key, sent as `Authorization: Bearer`; never logged. Also `IGDM_AI_API_KEY`.
    pub api_key: Option<String>,
    /// How long to wait for an answer before sending the fallback, in milliseconds. Default 10000.
    pub timeout_ms: u64,
}

impl Default for AiConfig {
    fn default() -> Self {
        Self {
            base_url: "https://api.openai.com/v1".into(),
            model: "gpt-4o-mini".into(),
            api_key: None,
            timeout_ms: 10_000,
        }
    }
}

impl std::fmt::Debug for AiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AiConfig")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "****"))
            .field("timeout_ms", &self.timeout_ms)
            .finish()
    }
}

/// How outbound webhooks are delivered.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct OutboundConfig {
    /// Most attempts per delivery. Default 8.
    pub max_attempts: u32,
    /// First retry backoff in milliseconds (doubled per attempt, with jitter). Default 5000.
    pub retry_base_ms: u64,
    /// Longest retry backoff in milliseconds. Default 3600000 (1 h).
    pub retry_max_ms: u64,
    /// Timeout of one delivery in milliseconds. Default 10000.
    pub timeout_ms: u64,
    /// Deliveries claimed per round. Default 32.
    pub batch: i64,
    /// Largest accepted inbound webhook body in bytes. Default 256 KiB.
    pub inbound_body_limit: usize,
    /// Allow outbound webhooks and automation webhook actions to call loopback, private and
    /// link-local addresses (see `igdm::service::egress`). Default false: only public
    /// addresses, so that users cannot make the service call its own network.
    pub allow_private_targets: bool,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            retry_base_ms: 5_000,
            retry_max_ms: 3_600_000,
            timeout_ms: 10_000,
            batch: 32,
            inbound_body_limit: 256 * 1024,
            allow_private_targets: false,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            data_dir: PathBuf::from("igdm-data"),
            database: None,
            max_connections: 8,
            database_app_role: None,
            app_id: "igdm-local-app".into(),
            app_secret: "igdm-local-app-secret".into(),
            previous_app_secrets: Vec::new(),
            verify_token: "igdm-verify-token".into(),
            graph_base_url: "https://graph.instagram.com".into(),
            graph_version: instagram_graph::DEFAULT_GRAPH_VERSION.into(),
            oauth_authorize_url: "https://www.instagram.com/oauth/authorize".into(),
            oauth_api_base_url: "https://api.instagram.com".into(),
            oauth_graph_base_url: None,
            vault_key: None,
            vault_key_file: None,
            api_keys: Vec::new(),
            password_memory_kib: 19 * 1024,
            session_hours: 14 * 24,
            body_limit: 1024 * 1024,
            ingest_batch: 512,
            inbox_batch: 64,
            inbox_linger_ms: 20,
            outbox_batch: 64,
            sender_concurrency: 16,
            sender_loops: 2,
            lease_secs: 60,
            account_lease_secs: 10,
            poll_interval_ms: 200,
            call_timeout_ms: 30_000,
            max_attempts: 5,
            retry_base_ms: 1000,
            retry_max_ms: 60_000,
            send_per_second: 100,
            private_replies_per_hour: 750,
            refresh_within_days: 10,
            retention_interval_secs: 3600,
            export_link_ttl_secs: 86_400,
            inbox_human_hours: 24,
            access_log_days: 365,
            workers: true,
            log_json: false,
            ai: None,
            ai_responder: None,
            outbound: OutboundConfig::default(),
        }
    }
}

impl Config {
    /// Parses a TOML configuration; missing fields keep their defaults.
    pub fn from_toml(text: &str) -> Result<Self> {
        toml::from_str(text).map_err(|e| {
            Error::config(format!(
                "invalid configuration: {}",
                e.to_string().replace('\n', " ")
            ))
        })
    }

    /// Reads a TOML configuration file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::config(format!(
                "cannot read the configuration file {}: {e}",
                path.display()
            ))
        })?;
        Self::from_toml(&text)
            .map_err(|e| Error::config(format!("{}: {}", path.display(), e.message())))
    }

    /// A configuration for tests: random port, the given data directory, workers polling fast.
    pub fn for_tests(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.into(),
            poll_interval_ms: 20,
            inbox_linger_ms: 5,
            retry_base_ms: 20,
            retry_max_ms: 200,
            lease_secs: 5,
            account_lease_secs: 5,
            call_timeout_ms: 2_000,
            outbound: OutboundConfig {
                retry_base_ms: 20,
                retry_max_ms: 200,
                timeout_ms: 2_000,
                // tests deliver to receivers on this machine
                allow_private_targets: true,
                ..OutboundConfig::default()
            },
            password_memory_kib: 64,
            ..Self::default()
        }
    }

    /// The database URL: `database`, or the SQLite file under `data_dir`.
    pub fn database_url(&self) -> String {
        match &self.database {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("igdm.db").display()),
        }
    }

    /// The vault key file path.
    pub fn vault_key_path(&self) -> PathBuf {
        self.vault_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("vault.key"))
    }

    /// The lease duration.
    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.lease_secs.max(1))
    }

    /// How long an account's send ownership lasts (see `account_lease_secs`).
    pub fn account_lease(&self) -> Duration {
        Duration::from_secs(self.account_lease_secs.max(5))
    }

    /// The idle poll interval.
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms.max(1))
    }

    /// Checks values that would make the service misbehave.
    pub fn validate(&self) -> Result<()> {
        if self.app_secret.is_empty() {
            return Err(Error::config(
                "app_secret is empty; set IGDM_APP_SECRET to the Meta app secret",
            ));
        }
        if self.verify_token.is_empty() {
            return Err(Error::config(
                "verify_token is empty; set IGDM_VERIFY_TOKEN to the token entered in the App Dashboard",
            ));
        }
        for (name, url) in [
            ("graph_base_url", &self.graph_base_url),
            ("oauth_authorize_url", &self.oauth_authorize_url),
            ("oauth_api_base_url", &self.oauth_api_base_url),
        ] {
            url::Url::parse(url).map_err(|e| {
                Error::config(format!(
                    "{name} `{url}` is not a URL ({e}); give http(s)://host[:port]"
                ))
            })?;
        }
        if self.body_limit == 0
            || self.ingest_batch == 0
            || self.sender_concurrency == 0
            || self.sender_loops == 0
        {
            return Err(Error::config(
                "body_limit, ingest_batch, sender_concurrency and sender_loops must be above 0",
            ));
        }
        if self.account_lease_secs < 5 {
            return Err(Error::config(
                "account_lease_secs must be at least 5 (an owner stops calling 1 s before its lease ends)",
            ));
        }
        if let Some(ai) = &self.ai {
            url::Url::parse(&ai.base_url).map_err(|e| {
                Error::config(format!(
                    "ai.base_url `{}` is not a URL ({e}); give http(s)://host[:port]/v1",
                    ai.base_url
                ))
            })?;
            if ai.model.trim().is_empty() {
                return Err(Error::config(
                    "ai.model is empty; name the model to ask (for example gpt-4o-mini)",
                ));
            }
        }
        if self.outbound.batch <= 0 || self.outbound.max_attempts == 0 {
            return Err(Error::config(
                "outbound.batch and outbound.max_attempts must be above 0",
            ));
        }
        if let Some(role) = &self.database_app_role {
            if !super::db::is_identifier(role) {
                return Err(Error::config(format!(
                    "database_app_role `{role}` is not a plain PostgreSQL role name; use a-z, 0-9 and _"
                )));
            }
        }
        if self.inbox_batch <= 0 || self.outbox_batch <= 0 {
            return Err(Error::config(
                "inbox_batch and outbox_batch must be above 0",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_run_out_of_the_box() {
        let config = Config::default();
        config.validate().unwrap();
        assert!(config.database_url().ends_with("igdm-data/igdm.db"));
        assert_eq!(config.send_per_second, 100);
        assert_eq!(config.private_replies_per_hour, 750);
    }

    #[test]
    fn unknown_fields_are_refused_with_their_name() {
        let e = Config::from_toml("listne = \"127.0.0.1:1\"").unwrap_err();
        assert!(e.message().contains("listne"), "{e}");
    }

    #[test]
    fn the_ai_api_key_is_never_printed() {
        let config = Config::from_toml(
            "[ai]\nbase_url = \"http://127.0.0.1:1/v1\"\nmodel = \"m\"\napi_key = \"sk-secret-123\"\n",
        )
        .unwrap();
        config.validate().unwrap();
        let printed = format!("{config:?}");
        assert!(!printed.contains("sk-secret-123"), "{printed}");
        assert!(printed.contains("****"), "{printed}");
        let bad = Config::from_toml("[ai]\nbase_url = \"nope\"\n").unwrap();
        assert!(bad
            .validate()
            .unwrap_err()
            .message()
            .contains("ai.base_url"));
    }

    #[test]
    fn zero_sizes_are_refused_with_their_names() {
        let config = Config::from_toml("sender_loops = 0").unwrap();
        let e = config.validate().unwrap_err();
        assert!(e.message().contains("sender_loops"), "{e}");
        let config = Config::from_toml("sender_loops = 3\nsender_concurrency = 8").unwrap();
        config.validate().unwrap();
        assert_eq!((config.sender_loops, config.sender_concurrency), (3, 8));
    }

    #[test]
    fn bad_urls_are_refused() {
        let config = Config {
            graph_base_url: "not a url".into(),
            ..Config::default()
        };
        assert!(config
            .validate()
            .unwrap_err()
            .message()
            .contains("graph_base_url"));
    }
}
