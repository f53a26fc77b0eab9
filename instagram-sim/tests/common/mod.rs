//! Shared helpers: a simulator with an account, and a webhook receiver that verifies
//! signatures with `webhook-verify`.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use instagram_graph::Client;
use instagram_sim::{AccountInfo, AccountSpec, MediaSpec, RunningSimulator, SimConfig, Simulator};

/// Generous: the machine is small and busy.
pub const WAIT: Duration = Duration::from_secs(20);

pub struct Setup {
    pub sim: RunningSimulator,
    pub shop: AccountInfo,
    pub client: Client,
    pub reel: String,
}

pub async fn setup(config: SimConfig) -> Setup {
    let sim = Simulator::start(config).await.unwrap();
    let shop = sim
        .create_account(AccountSpec::new("shop").subscribed())
        .unwrap();
    let reel = sim
        .add_media("shop", MediaSpec::reel("Comment LINK"))
        .unwrap();
    let client = client_for(&sim, &shop.access_token);
    Setup {
        sim,
        shop,
        client,
        reel,
    }
}

pub fn client_for(sim: &RunningSimulator, token: &str) -> Client {
    Client::builder(token.to_owned())
        .base_url(sim.base_url())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

#[derive(Default)]
pub struct Received {
    pub valid: Vec<String>,
    pub invalid: usize,
    /// Statuses to answer, in order; 200 once exhausted.
    pub script: Vec<u16>,
}

#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    pub inner: Arc<Mutex<Received>>,
}

impl Receiver {
    pub fn valid(&self) -> Vec<String> {
        self.inner.lock().unwrap().valid.clone()
    }

    pub fn invalid(&self) -> usize {
        self.inner.lock().unwrap().invalid
    }

    pub fn answer_next(&self, statuses: &[u16]) {
        self.inner.lock().unwrap().script = statuses.to_vec();
    }
}

struct Hook {
    secret: String,
    inner: Arc<Mutex<Received>>,
}

async fn hook(State(hook): State<Arc<Hook>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let signature = headers
        .get("x-hub-signature-256")
        .map(|v| v.as_bytes().to_vec())
        .unwrap_or_default();
    let mut inner = hook.inner.lock().unwrap();
    if webhook_verify::meta::verify(hook.secret.as_bytes(), &body, &signature).is_err() {
        inner.invalid += 1;
        return StatusCode::UNAUTHORIZED;
    }
    let status = if inner.script.is_empty() {
        200
    } else {
        inner.script.remove(0)
    };
    if status == 200 {
        inner
            .valid
            .push(String::from_utf8_lossy(&body).into_owned());
    }
    StatusCode::from_u16(status).unwrap()
}

/// Starts a receiver that verifies `X-Hub-Signature-256` with `secret`.
pub async fn receiver(secret: &str) -> Receiver {
    let inner = Arc::new(Mutex::new(Received::default()));
    let state = Arc::new(Hook {
        secret: secret.to_owned(),
        inner: inner.clone(),
    });
    let app = Router::new().route("/hook", post(hook)).with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Receiver { url, inner }
}
