//! `igdm webhook parse FILE`: print the normalized events of a webhook notification as JSON lines.
//!
//! One event per line, in document order, ids as strings and times in RFC 3339 UTC. Exit 0 when
//! every part was read; exit 1 with one line on standard error when the input is not a
//! notification, or (after printing the good events) when some parts could not be read.

use std::io::{Read, Write};
use std::process::ExitCode;

use clap::Args as ClapArgs;
use instagram_graph::webhook;

use super::Failure;

/// Arguments of `igdm webhook parse`.
#[derive(Debug, ClapArgs)]
pub struct Args {
    /// The notification body as received (JSON); `-` reads standard input.
    #[arg(value_name = "FILE", allow_hyphen_values = true)]
    pub file: String,
}

/// Reads the input named by `file` (`-` for standard input).
fn read(file: &str) -> Result<Vec<u8>, Failure> {
    if file == "-" {
        let mut body = Vec::new();
        std::io::stdin()
            .read_to_end(&mut body)
            .map_err(|e| Failure::new(format!("cannot read standard input: {e}")))?;
        Ok(body)
    } else {
        std::fs::read(file).map_err(|e| Failure::new(format!("cannot read {file}: {e}")))
    }
}

/// Runs `igdm webhook parse`.
pub fn run(args: Args) -> Result<ExitCode, Failure> {
    let body = read(&args.file)?;
    let name = if args.file == "-" {
        "standard input"
    } else {
        args.file.as_str()
    };
    let notification = webhook::parse(&body).map_err(|e| Failure::new(format!("{name}: {e}")))?;

    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for event in notification.events() {
        let line = serde_json::to_string(event)
            .map_err(|e| Failure::new(format!("cannot print an event as JSON: {e}")))?;
        if writeln!(out, "{line}").is_err() {
            // The reader went away (e.g. `| head`): nothing more to do.
            return Ok(ExitCode::SUCCESS);
        }
    }
    if out.flush().is_err() {
        return Ok(ExitCode::SUCCESS);
    }

    match notification.errors() {
        [] => Ok(ExitCode::SUCCESS),
        [only] => Err(Failure::new(format!(
            "{name}: one part of the notification could not be read ({} events printed): {only}",
            notification.events().len()
        ))),
        [first, rest @ ..] => Err(Failure::new(format!(
            "{name}: {} parts of the notification could not be read ({} events printed); first: {first}",
            rest.len() + 1,
            notification.events().len()
        ))),
    }
}
