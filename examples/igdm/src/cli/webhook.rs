//! `igdm webhook ...`: tools for Meta webhook deliveries.
//!
//! Each subcommand is one variant of [`WebhookCommand`] with its own argument struct, and one arm
//! in [`run`].

use std::process::ExitCode;

use clap::Subcommand;

use super::{webhook_parse, Failure};

/// The `webhook` subcommands.
#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// Parse a webhook notification and print its normalized events as JSON lines.
    Parse(webhook_parse::Args),
}

/// Runs a `webhook` subcommand.
pub fn run(command: WebhookCommand) -> Result<ExitCode, Failure> {
    match command {
        WebhookCommand::Parse(args) => webhook_parse::run(args),
    }
}
