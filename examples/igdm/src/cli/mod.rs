//! The subcommand groups of `igdm`, one file each.
//!
//! Every subcommand returns `Result<ExitCode, Failure>`. A [`Failure`] is printed as one line on
//! standard error (`igdm: <what was wrong>`) and ends the process with its exit code.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
mod demo;
mod graph;
mod privacy;
mod rules;
mod serve;
mod sim;
mod webhook;
mod webhook_parse;

/// The igdm command line: tools for Instagram DM and comment automation.
#[derive(Debug, Parser)]
#[command(name = "igdm", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommand groups.
#[derive(Debug, Subcommand)]
enum Command {
    /// Run the demo: the simulator and the service in one process, comment in, DM out.
    Demo,
    /// Sign and verify Meta webhook deliveries and decode `signed_request`s.
    #[command(subcommand)]
    Webhook(webhook::WebhookCommand),
    /// Privacy tools: retention presets, export bundle verification.
    Privacy(privacy::PrivacyArgs),
    /// Validate rules files and test them against events.
    #[command(subcommand)]
    Rules(rules::RulesCommand),
    /// Call the Instagram Graph API (read endpoints, text DMs, private replies) and print JSON.
    Graph(graph::GraphArgs),
    /// Run the Instagram Platform simulator (Graph API, OAuth, webhooks) until Ctrl-C.
    Sim(sim::SimArgs),
    /// Run the reference service: webhook in, decisions, DMs out (SQLite by default).
    Serve(Box<serve::ServeArgs>),
    /// Benchmarks of the reference service (webhook ingest).
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

/// Why a subcommand failed: a one-line message and the exit code to end with.
#[derive(Debug)]
pub struct Failure {
    /// The exit code (1 for a negative verdict or bad input, 2 for usage errors).
    pub code: u8,
    /// One line saying what was wrong and, where it helps, what to do.
    pub message: String,
}

impl Failure {
    /// A failure that exits with code 1.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            code: 1,
            message: message.into(),
        }
    }
}

/// Parses the command line, runs the subcommand, and turns its outcome into an exit code.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let outcome: Result<ExitCode, Failure> = match cli.command {
        Command::Demo => demo::run(),
        Command::Webhook(command) => webhook::run(command),
        Command::Privacy(args) => privacy::run(args),
        Command::Rules(command) => rules::run(command),
        Command::Graph(args) => graph::run(args),
        Command::Sim(args) => sim::run(args),
        Command::Serve(args) => serve::run(*args),
        Command::Bench(command) => bench::run(command),
    };
    match outcome {
        Ok(code) => code,
        Err(failure) => {
            let line = failure.message.replace('\n', " ");
            eprintln!("igdm: {line}");
            ExitCode::from(failure.code)
        }
    }
}
