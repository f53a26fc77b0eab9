//! `igdm sim`: run the Instagram Platform simulator (`instagram-sim`) until Ctrl-C.
//!
//! It seeds one demo account (subscribed to webhooks) with a reel, and prints the base URL, the
//! account's id and token, and the reel id. Point `igdm graph --api-base` or the service at the
//! base URL; script people over HTTP under `/_sim` (see the `instagram-sim` crate docs).

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Args;
use instagram_sim::{AccountSpec, MediaSpec, SimConfig, Simulator};

use super::Failure;

/// Options of `igdm sim`.
#[derive(Debug, Args)]
pub struct SimArgs {
    /// The address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8787")]
    listen: SocketAddr,
    /// Where to deliver webhook notifications (e.g. http://127.0.0.1:8080/webhooks/instagram).
    #[arg(long)]
    webhook_url: Option<String>,
    /// Where to POST the deauthorize callback (`signed_request`) when the app is revoked.
    #[arg(long)]
    deauthorize_url: Option<String>,
    /// Do not echo the account's own messages as webhooks (`message.is_echo`).
    #[arg(long)]
    no_echoes: bool,
    /// The app secret that signs webhooks and is checked at the token exchanges.
    #[arg(
        long,
        env = "IGDM_APP_SECRET",
        hide_env_values = true,
        default_value = "sim-app-secret"
    )]
    app_secret: String,
    /// The Instagram app id.
    #[arg(long, default_value = "990602627938098")]
    app_id: String,
    /// The username of the seeded demo account.
    #[arg(long, default_value = "demo_shop")]
    account: String,
    /// The seed of fault injection.
    #[arg(long, default_value_t = 0x5EED)]
    seed: u64,
}

/// Runs the simulator until Ctrl-C.
pub fn run(args: SimArgs) -> Result<ExitCode, Failure> {
    for (flag, url) in [
        ("--webhook-url", &args.webhook_url),
        ("--deauthorize-url", &args.deauthorize_url),
    ] {
        if let Some(url) = url {
            check_url(flag, url)?;
        }
    }
    if args.app_secret.is_empty() {
        return Err(Failure::new("--app-secret must not be empty"));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure::new(format!("could not start the async runtime: {e}")))?;
    runtime.block_on(serve(args))
}

fn check_url(flag: &str, url: &str) -> Result<(), Failure> {
    let parsed = reqwest::Url::parse(url).map_err(|e| {
        Failure::new(format!(
            "{flag} `{url}` is not a URL ({e}); give e.g. http://127.0.0.1:8080/webhooks"
        ))
    })?;
    if matches!(parsed.scheme(), "http" | "https") {
        Ok(())
    } else {
        Err(Failure::new(format!(
            "{flag} `{url}` must be http or https"
        )))
    }
}

async fn serve(args: SimArgs) -> Result<ExitCode, Failure> {
    let mut config = SimConfig::default()
        .with_listen(args.listen)
        .with_app_id(args.app_id)
        .with_app_secret(args.app_secret)
        .with_seed(args.seed);
    config.webhook_url = args.webhook_url.clone();
    config.deauthorize_url = args.deauthorize_url.clone();
    config.echoes = !args.no_echoes;
    let sim = Simulator::start(config)
        .await
        .map_err(|e| Failure::new(e.to_string()))?;
    let account = sim
        .create_account(AccountSpec::new(args.account).subscribed())
        .map_err(|e| Failure::new(e.to_string()))?;
    let reel = sim
        .add_media(
            &account.ig_user_id,
            MediaSpec::reel("Comment LINK to get the link"),
        )
        .map_err(|e| Failure::new(e.to_string()))?;
    println!("instagram-sim listening on {}", sim.base_url());
    println!(
        "account: {} (ig_user_id {})",
        account.username, account.ig_user_id
    );
    println!("access_token: {}", account.access_token);
    println!("app_id: {}", account.app_id);
    println!("reel: {reel}");
    match &args.webhook_url {
        Some(url) => println!("webhooks: {url}"),
        None => println!("webhooks: none (give --webhook-url)"),
    }
    println!(
        "try: curl -s -X POST {}/_sim/actions -H 'content-type: application/json' -d '{{\"action\":\"comment\",\"person\":\"alice\",\"media_id\":\"{reel}\",\"text\":\"LINK\"}}'",
        sim.base_url()
    );
    println!("Press Ctrl-C to stop.");
    tokio::signal::ctrl_c()
        .await
        .map_err(|e| Failure::new(format!("cannot wait for Ctrl-C: {e}")))?;
    sim.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
