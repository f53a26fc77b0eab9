//! A local simulator of the Instagram Platform (the Instagram API with Instagram Login), for
//! tests, demos and development before an app passes Meta's review.
//!
//! It answers the paths, parameters and shapes that `instagram-graph` uses (OAuth, `/me`,
//! media, comments, the Send API, private replies, conversations, user profiles, the messenger
//! profile, webhook subscriptions), keeps state, enforces the platform rules that matter
//! (token expiry and revocation, scopes, the 24-hour window and `HUMAN_AGENT`'s 7 days, one
//! private reply per comment within 7 days, the 1,000-byte text limit, per-account rate limits
//! with usage headers), and delivers signed webhooks with Meta's retry behaviour. Tests script
//! simulated people with [`RunningSimulator::person`] (or `POST /_sim/actions`), inject faults,
//! and assert on everything recorded.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use instagram_graph::Client;
//! use instagram_sim::{AccountSpec, MediaSpec, SimConfig, Simulator};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let sim = Simulator::start(SimConfig::for_tests()).await?;
//! let shop = sim.create_account(AccountSpec::new("shop"))?;
//! let reel = sim.add_media(&shop.ig_user_id, MediaSpec::reel("Comment LINK for the link"))?;
//!
//! // A simulated person comments; the account answers with the real client.
//! let comment = sim.person("alice").comment(&reel, "LINK please")?;
//! let client = Client::builder(shop.access_token.clone()).base_url(sim.base_url()).build()?;
//! client.private_reply(comment.clone(), "Here it is: https://example.com").await?;
//!
//! // A second private reply to the same comment is refused, like on Instagram.
//! let again = client.private_reply(comment, "again").await.unwrap_err();
//! assert_eq!(again.kind(), &instagram_graph::ErrorKind::InvalidPrivateReply);
//! assert_eq!(sim.private_replies().len(), 1);
//! sim.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! # Webhooks
//!
//! Give [`SimConfig::webhook_url`]; every action (and every message the account sends, as an
//! echo) is POSTed there as `{"object":"instagram","entry":[...]}` (`messaging[]` for messages,
//! postbacks, reactions and reads; `changes[]` for comments and mentions), signed with
//! `X-Hub-Signature-256` over the exact body with the app secret. An account receives webhooks
//! once it called `POST /me/subscribed_apps` (or was created [`AccountSpec::subscribed`]).
//! First attempts go out one at a time in queue order (unless reordering is injected); a
//! non-2xx answer or a timeout is retried after each of [`DeliveryConfig::retry_delays`] in
//! the background, so one failing delivery does not hold back the others.
//! [`RunningSimulator::deliveries`] lists every attempt with its status and latency.
//!
//! # Scripting over HTTP
//!
//! The same API is served as JSON under `/_sim`: `POST /_sim/accounts` ([`AccountSpec`]),
//! `POST /_sim/accounts/{account}/media` ([`MediaSpec`]), `POST /_sim/people` ([`PersonSpec`]),
//! `POST /_sim/actions` ([`Action`]), `POST /_sim/accounts/{account}/revoke`,
//! `.../expire_tokens`, `.../change_password`, `.../tokens`, `POST /_sim/clock/advance`
//! (`{"seconds": n}`), `GET|PUT /_sim/faults` ([`Faults`]), `PUT /_sim/webhook`
//! (`{"url": ...}`), `GET /_sim/requests`, `/_sim/sent`, `/_sim/public_replies`,
//! `/_sim/deliveries`, `/_sim/comments/{id}`, and `DELETE /_sim/records`.

mod config;
mod error;
mod graph;
mod model;
mod oauth;
mod script;
mod server;
mod sim_api;
mod state;
mod webhook;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

pub use config::{DeliveryConfig, Faults, RateLimits, SimConfig};
pub use error::{Error, ErrorKind};
pub use model::{
    AccountInfo, AccountSpec, CommentInfo, Delivery, DeliveryAttempt, DeliveryKind,
    DeliveryOutcome, MediaKind, MediaSpec, PersonSpec, PublicReply, RecordedRequest, SentKind,
    SentMessage, ALL_SCOPES,
};
pub use script::{Action, ActionOutcome};

use state::State;

/// State shared by the server, the delivery worker and every handle.
pub(crate) struct Shared {
    state: Mutex<State>,
    changed: watch::Sender<u64>,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wakes every waiter: something changed.
    pub(crate) fn bump(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }
}

/// Starts simulators.
#[derive(Debug, Clone, Copy)]
pub struct Simulator;

impl Simulator {
    /// Binds [`SimConfig::listen`] (a random port by default), starts serving and delivering
    /// webhooks, and returns the handle. Fails with [`ErrorKind::Bind`] when the address is taken.
    pub async fn start(config: SimConfig) -> Result<RunningSimulator, Error> {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|e| {
                Error::new(
                    ErrorKind::Bind,
                    format!(
                        "cannot listen on {}: {e}; pick another address or port 0",
                        config.listen
                    ),
                )
            })?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::new(ErrorKind::Bind, format!("no local address: {e}")))?;
        let base_url = format!("http://{addr}");
        let (outbox, queue) = tokio::sync::mpsc::unbounded_channel();
        let mut state = State::new(&config);
        state.base_url = base_url.clone();
        state.outbox = Some(outbox);
        let (changed, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            changed,
        });
        let (halt, halted) = watch::channel(false);
        let worker = tokio::spawn(webhook::run(
            shared.clone(),
            queue,
            config.delivery.clone(),
            halted,
        ));
        let app = server::router(shared.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let result = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
            if let Err(error) = result {
                tracing::error!(%error, "instagram-sim: server stopped");
            }
        });
        Ok(RunningSimulator {
            shared,
            addr,
            base_url,
            tasks: Arc::new(Mutex::new(Some(Tasks {
                stop,
                halt,
                server,
                worker,
            }))),
        })
    }
}

struct Tasks {
    stop: oneshot::Sender<()>,
    /// Stops the retries running in their own tasks.
    halt: watch::Sender<bool>,
    server: JoinHandle<()>,
    worker: JoinHandle<()>,
}

/// A running simulator. Cheap to clone; every clone drives the same simulator.
#[derive(Clone)]
pub struct RunningSimulator {
    shared: Arc<Shared>,
    addr: SocketAddr,
    base_url: String,
    tasks: Arc<Mutex<Option<Tasks>>>,
}

impl std::fmt::Debug for RunningSimulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningSimulator")
            .field("base_url", &self.base_url)
            .finish()
    }
}

impl RunningSimulator {
    /// The base URL (`http://127.0.0.1:PORT`): give it to `instagram_graph::ClientBuilder::base_url`
    /// and, for OAuth, as both hosts of `OAuthClient::base_urls`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The authorize page (`{base}/oauth/authorize`), which stands for
    /// `https://www.instagram.com/oauth/authorize`. It takes the same parameters, consents at
    /// once for the account named by the extra parameter `account` (username or id; default the
    /// first account created), and redirects to `redirect_uri` with `code` and `state`
    /// (`deny=1` redirects with `error=access_denied`).
    pub fn authorize_url(&self) -> String {
        format!("{}/oauth/authorize", self.base_url)
    }

    /// The app id.
    pub fn app_id(&self) -> String {
        self.shared.lock().app_id.clone()
    }

    /// The app secret (signs webhooks).
    pub fn app_secret(&self) -> String {
        self.shared.lock().app_secret.clone()
    }

    fn with_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let out = f(&mut self.shared.lock());
        self.shared.bump();
        out
    }

    /// Creates a professional account and a long-lived token for it.
    pub fn create_account(&self, spec: AccountSpec) -> Result<AccountInfo, Error> {
        self.with_state(|s| script::create_account(s, &spec))
    }

    /// Adds a media object to an account (IG user id or username); returns the media id.
    pub fn add_media(&self, account: &str, spec: MediaSpec) -> Result<String, Error> {
        self.with_state(|s| script::add_media(s, account, &spec))
    }

    /// Creates or updates a simulated person.
    pub fn add_person(&self, spec: PersonSpec) -> Result<(), Error> {
        self.with_state(|s| script::add_person(s, &spec))
    }

    /// A simulated person (created on first action), to script comments, DMs and taps.
    pub fn person(&self, username: &str) -> Person<'_> {
        Person {
            sim: self,
            username: username.to_owned(),
        }
    }

    /// Performs an action: updates the state and queues the webhook.
    pub fn perform(&self, action: Action) -> Result<ActionOutcome, Error> {
        self.with_state(|s| script::apply(s, action))
    }

    /// The account removes the app: tokens answer 190/458, the subscription ends, and the
    /// deauthorize callback is sent (when configured). Logging in again re-installs the app.
    pub fn revoke_app(&self, account: &str) -> Result<(), Error> {
        self.with_state(|s| script::revoke_app(s, account))
    }

    /// Every token of the account expires now (190/463).
    pub fn expire_tokens(&self, account: &str) -> Result<(), Error> {
        self.with_state(|s| script::expire_tokens(s, account))
    }

    /// The account's password changed: every token answers 190/460.
    pub fn change_password(&self, account: &str) -> Result<(), Error> {
        self.with_state(|s| script::change_password(s, account))
    }

    /// Issues another long-lived token for the account with only these scopes.
    pub fn issue_token(&self, account: &str, scopes: &[&str]) -> Result<String, Error> {
        let scopes = scopes.iter().map(|s| (*s).to_owned()).collect();
        self.with_state(|s| script::issue_token(s, account, scopes))
    }

    /// Moves the simulated clock forward (token expiry, windows, rate limits).
    pub fn advance_clock(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.with_state(|s| s.clock.advance(ms));
    }

    /// The simulated time.
    pub fn now(&self) -> DateTime<Utc> {
        state::to_time(self.shared.lock().now())
    }

    /// Replaces the injected faults.
    pub fn set_faults(&self, faults: Faults) {
        self.with_state(|s| s.faults = faults);
    }

    /// The injected faults.
    pub fn faults(&self) -> Faults {
        self.shared.lock().faults.clone()
    }

    /// Sets (or clears) the webhook URL for deliveries from now on.
    pub fn set_webhook_url(&self, url: Option<String>) {
        self.with_state(|s| s.webhook_url = url);
    }

    /// Every Graph and OAuth request received, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// Every accepted Send API call (messages, private replies, reactions, sender actions).
    pub fn sent_messages(&self) -> Vec<SentMessage> {
        self.shared.lock().sent.clone()
    }

    /// How many Send API calls were accepted so far: the length of
    /// [`sent_messages`](Self::sent_messages), without copying them (for waiting loops and
    /// benchmarks).
    pub fn sent_count(&self) -> usize {
        self.shared.lock().sent.len()
    }

    /// The accepted private replies.
    pub fn private_replies(&self) -> Vec<SentMessage> {
        self.sent_messages()
            .into_iter()
            .filter(|m| m.kind == SentKind::PrivateReply)
            .collect()
    }

    /// The public replies the accounts posted under comments.
    pub fn public_replies(&self) -> Vec<PublicReply> {
        self.shared.lock().public_replies.clone()
    }

    /// Every webhook delivery with its attempts, in sending order.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.shared.lock().deliveries.clone()
    }

    /// The state of a comment (hidden, deleted, replied).
    pub fn comment(&self, id: &str) -> Option<CommentInfo> {
        self.shared.lock().comment_info(id)
    }

    /// The IGSID of a person for an account, once they interacted.
    pub fn igsid(&self, username: &str, account: &str) -> Option<String> {
        let state = self.shared.lock();
        let account = state.find_account(account)?;
        state.people.get(username)?.igsids.get(&account).cloned()
    }

    /// Forgets the recorded requests, sent messages, public replies and deliveries.
    pub fn clear_records(&self) {
        self.with_state(|s| {
            s.requests.clear();
            s.sent.clear();
            s.public_replies.clear();
            s.deliveries.clear();
        });
    }

    /// Waits until `condition` holds, re-checking after every change of the simulator (a
    /// request, an action, a delivery attempt). Fails with [`ErrorKind::Timeout`] after
    /// `timeout`.
    pub async fn wait_until<F>(&self, timeout: Duration, mut condition: F) -> Result<(), Error>
    where
        F: FnMut(&Self) -> bool,
    {
        let mut changes = self.shared.changed.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if condition(self) {
                return Ok(());
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                _ => {
                    return if condition(self) {
                        Ok(())
                    } else {
                        Err(Error::new(
                            ErrorKind::Timeout,
                            format!("the condition did not hold within {timeout:?}"),
                        ))
                    };
                }
            }
        }
    }

    /// Waits until at least `count` deliveries are finished (delivered, failed or without
    /// URL) and returns them all.
    pub async fn wait_for_deliveries(
        &self,
        count: usize,
        timeout: Duration,
    ) -> Result<Vec<Delivery>, Error> {
        self.wait_until(timeout, |sim| {
            sim.shared
                .lock()
                .deliveries
                .iter()
                .filter(|d| d.outcome != DeliveryOutcome::Pending)
                .count()
                >= count
        })
        .await?;
        Ok(self.deliveries())
    }

    /// Waits until at least `count` Send API calls were accepted and returns them all.
    pub async fn wait_for_sent(
        &self,
        count: usize,
        timeout: Duration,
    ) -> Result<Vec<SentMessage>, Error> {
        self.wait_until(timeout, |sim| sim.shared.lock().sent.len() >= count)
            .await?;
        Ok(self.sent_messages())
    }

    /// Waits until every queued webhook is finished.
    pub async fn wait_for_webhooks_idle(&self, timeout: Duration) -> Result<(), Error> {
        self.wait_until(timeout, |sim| sim.shared.lock().pending == 0)
            .await
    }

    /// Stops serving and delivering. Idempotent; other clones stop too.
    pub async fn shutdown(&self) {
        let tasks = self
            .tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(tasks) = tasks {
            let _ = tasks.stop.send(());
            let _ = tasks.halt.send(true);
            tasks.worker.abort();
            let server = tasks.server;
            let abort = server.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), server)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

/// A simulated person, from [`RunningSimulator::person`]. Every method performs an [`Action`]
/// and returns the id it created (comment id or message id). `account` takes the account's IG
/// user id or username.
#[derive(Debug, Clone)]
pub struct Person<'a> {
    sim: &'a RunningSimulator,
    username: String,
}

impl Person<'_> {
    /// The username.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The person's IGSID for the account, once they interacted.
    pub fn igsid(&self, account: &str) -> Option<String> {
        self.sim.igsid(&self.username, account)
    }

    fn run(&self, action: Action) -> Result<String, Error> {
        self.sim.perform(action).map(|o| o.id)
    }

    /// Comments on a media object; returns the comment id.
    pub fn comment(&self, media_id: &str, text: &str) -> Result<String, Error> {
        self.run(Action::Comment {
            person: self.username.clone(),
            media_id: media_id.to_owned(),
            text: text.to_owned(),
            parent_id: None,
        })
    }

    /// Replies to a top-level comment; returns the new comment id.
    pub fn reply_to_comment(
        &self,
        media_id: &str,
        parent_id: &str,
        text: &str,
    ) -> Result<String, Error> {
        self.run(Action::Comment {
            person: self.username.clone(),
            media_id: media_id.to_owned(),
            text: text.to_owned(),
            parent_id: Some(parent_id.to_owned()),
        })
    }

    /// Mentions the account in a comment on the person's own post; returns the comment id.
    pub fn mention_in_comment(&self, account: &str) -> Result<String, Error> {
        self.run(Action::CommentMention {
            person: self.username.clone(),
            account: account.to_owned(),
        })
    }

    /// Sends a DM; returns the message id.
    pub fn dm(&self, account: &str, text: &str) -> Result<String, Error> {
        self.run(Action::Dm {
            person: self.username.clone(),
            account: account.to_owned(),
            text: text.to_owned(),
        })
    }

    /// Taps a quick reply; returns the message id.
    pub fn quick_reply(&self, account: &str, title: &str, payload: &str) -> Result<String, Error> {
        self.run(Action::QuickReply {
            person: self.username.clone(),
            account: account.to_owned(),
            title: title.to_owned(),
            payload: payload.to_owned(),
        })
    }

    /// Replies to a story of the account (`None`: a story the simulator does not track).
    pub fn story_reply(
        &self,
        account: &str,
        story_id: Option<&str>,
        text: &str,
    ) -> Result<String, Error> {
        self.run(Action::StoryReply {
            person: self.username.clone(),
            account: account.to_owned(),
            story_id: story_id.map(str::to_owned),
            text: text.to_owned(),
        })
    }

    /// Mentions the account in the person's story; returns the message id.
    pub fn mention_in_story(&self, account: &str) -> Result<String, Error> {
        self.run(Action::StoryMention {
            person: self.username.clone(),
            account: account.to_owned(),
        })
    }

    /// Taps a postback button, ice breaker or menu item; returns the postback's message id.
    pub fn tap_button(&self, account: &str, title: &str, payload: &str) -> Result<String, Error> {
        self.run(Action::Postback {
            person: self.username.clone(),
            account: account.to_owned(),
            title: title.to_owned(),
            payload: payload.to_owned(),
        })
    }

    /// Reacts to a message (`None`: `love`).
    pub fn react(&self, account: &str, mid: &str, reaction: Option<&str>) -> Result<String, Error> {
        self.run(Action::React {
            person: self.username.clone(),
            account: account.to_owned(),
            mid: mid.to_owned(),
            reaction: reaction.map(str::to_owned),
        })
    }

    /// Removes a reaction.
    pub fn unreact(&self, account: &str, mid: &str) -> Result<String, Error> {
        self.run(Action::Unreact {
            person: self.username.clone(),
            account: account.to_owned(),
            mid: mid.to_owned(),
        })
    }

    /// Unsends one of the person's messages.
    pub fn unsend(&self, account: &str, mid: &str) -> Result<String, Error> {
        self.run(Action::Unsend {
            person: self.username.clone(),
            account: account.to_owned(),
            mid: mid.to_owned(),
        })
    }

    /// Reads the conversation up to `mid` (`None`: the latest message).
    pub fn read(&self, account: &str, mid: Option<&str>) -> Result<String, Error> {
        self.run(Action::Read {
            person: self.username.clone(),
            account: account.to_owned(),
            mid: mid.map(str::to_owned),
        })
    }
}
