//! `igdm webhook ...`: sign and verify Meta webhook deliveries and decode `signed_request`s.
//!
//! Each subcommand is one variant of [`WebhookCommand`] with its own argument struct, and one
//! arm in [`run`]. Other files may add subcommands to this group (for example `webhook parse` in
//! `webhook_parse.rs`): add a variant that wraps their argument struct and an arm that calls
//! their function. [`read_input`] reads a `FILE` argument, where `-` means standard input.

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, Subcommand};
use webhook_verify::{meta, signed_request};

use super::{webhook_parse, Failure};

/// The `webhook` subcommands.
#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// Print the `X-Hub-Signature-256` value (`sha256=<hex>`) of a file's bytes.
    Sign(SignArgs),
    /// Check an `X-Hub-Signature-256` (or legacy `sha1=`) value against a file's bytes; prints
    /// `valid` or fails.
    Verify(VerifyArgs),
    /// Verify a Meta `signed_request` (deauthorize / data-deletion callback) and print its payload
    /// as JSON.
    SignedRequest(SignedRequestArgs),
    /// Parse a webhook notification and print its normalized events as JSON lines.
    Parse(webhook_parse::Args),
}

/// Arguments of `igdm webhook sign`.
#[derive(Debug, Args)]
pub struct SignArgs {
    /// The app secret (App settings > Basic).
    #[arg(long, env = "IGDM_APP_SECRET", hide_env_values = true)]
    secret: String,
    /// The body to sign, exactly as sent; `-` reads standard input.
    #[arg(value_name = "FILE")]
    file: String,
}

/// Arguments of `igdm webhook verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// An app secret; repeat it to accept any of several secrets while rotating.
    #[arg(
        long = "secret",
        value_name = "SECRET",
        env = "IGDM_APP_SECRET",
        hide_env_values = true,
        required = true
    )]
    secrets: Vec<String>,
    /// The `X-Hub-Signature-256` header value, e.g. `sha256=757107ea...`; a legacy
    /// `X-Hub-Signature` value (`sha1=...`) is checked as SHA-1.
    #[arg(long, value_name = "HEADER", allow_hyphen_values = true)]
    signature: String,
    /// The body as received; `-` reads standard input.
    #[arg(value_name = "FILE")]
    file: String,
}

/// Arguments of `igdm webhook signed-request`.
#[derive(Debug, Args)]
pub struct SignedRequestArgs {
    /// An app secret; repeat it to accept any of several secrets while rotating.
    #[arg(
        long = "secret",
        value_name = "SECRET",
        env = "IGDM_APP_SECRET",
        hide_env_values = true,
        required = true
    )]
    secrets: Vec<String>,
    /// Also refuse a request issued more than this many seconds ago (by this machine's clock).
    #[arg(long, value_name = "SECONDS")]
    max_age: Option<u64>,
    /// The `signed_request` value (a leading `signed_request=` is ignored); `-` reads standard
    /// input.
    #[arg(value_name = "VALUE", allow_hyphen_values = true)]
    value: String,
}

/// Runs one `webhook` subcommand.
pub fn run(command: WebhookCommand) -> Result<ExitCode, Failure> {
    match command {
        WebhookCommand::Sign(args) => sign(&args),
        WebhookCommand::Verify(args) => verify(&args),
        WebhookCommand::SignedRequest(args) => decode_signed_request(&args),
        WebhookCommand::Parse(args) => webhook_parse::run(args),
    }
}

fn sign(args: &SignArgs) -> Result<ExitCode, Failure> {
    let body = read_input(&args.file)?;
    let signature = meta::sign(args.secret.as_bytes(), &body).map_err(verdict)?;
    println!("{signature}");
    Ok(ExitCode::SUCCESS)
}

fn verify(args: &VerifyArgs) -> Result<ExitCode, Failure> {
    let body = read_input(&args.file)?;
    let legacy = args
        .signature
        .trim_start()
        .get(..5)
        .is_some_and(|head| head.eq_ignore_ascii_case("sha1="));
    if legacy {
        meta::sha1::verify_with_any(&args.secrets, &body, &args.signature).map_err(verdict)?;
    } else {
        meta::verify_with_any(&args.secrets, &body, &args.signature).map_err(verdict)?;
    }
    println!("valid");
    Ok(ExitCode::SUCCESS)
}

fn decode_signed_request(args: &SignedRequestArgs) -> Result<ExitCode, Failure> {
    let value = if args.value == "-" {
        String::from_utf8(read_input("-")?)
            .map_err(|_| Failure::new("the signed_request on standard input is not UTF-8"))?
    } else {
        args.value.clone()
    };
    let value = value.trim();
    let value = value.strip_prefix("signed_request=").unwrap_or(value);
    let (request, _) = signed_request::decode_with_any(value, &args.secrets).map_err(verdict)?;
    if let Some(max_age) = args.max_age {
        request
            .ensure_fresh(Duration::from_secs(max_age), unix_now()?)
            .map_err(verdict)?;
    }
    let json = serde_json::to_string_pretty(&request.to_json())
        .map_err(|err| Failure::new(format!("cannot print the payload: {err}")))?;
    println!("{json}");
    Ok(ExitCode::SUCCESS)
}

/// Reads the bytes of a `FILE` argument; `-` reads standard input to its end.
pub fn read_input(file: &str) -> Result<Vec<u8>, Failure> {
    if file == "-" {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .map_err(|err| Failure::new(format!("cannot read standard input: {err}")))?;
        return Ok(bytes);
    }
    std::fs::read(Path::new(file))
        .map_err(|err| Failure::new(format!("cannot read `{file}`: {err}")))
}

/// Seconds since the Unix epoch by this machine's clock.
pub fn unix_now() -> Result<i64, Failure> {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|_| Failure::new("the system clock is before 1970; set the clock"))?;
    i64::try_from(since.as_secs()).map_err(|_| Failure::new("the system clock is out of range"))
}

fn verdict(err: webhook_verify::Error) -> Failure {
    Failure::new(err.to_string())
}
