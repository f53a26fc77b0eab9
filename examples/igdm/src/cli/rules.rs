//! `igdm rules`: validate a rules file and test it against an event.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use automation_core::{Engine, InboundEvent, MemoryStore, RuleSet, RulesFile};
use chrono::{DateTime, Utc};
use clap::Subcommand;

use super::Failure;

/// The `rules` subcommands.
#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Validate a rules file (TOML or JSON); errors name the rule, field, and location.
    Check {
        /// The rules file (`.toml` or `.json`).
        file: PathBuf,
    },
    /// Decide one event against a rules file and print the decision as JSON.
    Test {
        /// The rules file (`.toml` or `.json`).
        #[arg(long)]
        rules: PathBuf,
        /// The event, as JSON (see `automation_core::InboundEvent`).
        #[arg(long)]
        event: PathBuf,
        /// The time to decide at (RFC 3339); defaults to the event's `occurred_at`.
        #[arg(long)]
        now: Option<String>,
        /// The seed for random choices (public reply and spin variants).
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
}

/// Runs a `rules` subcommand.
pub fn run(command: RulesCommand) -> Result<ExitCode, Failure> {
    match command {
        RulesCommand::Check { file } => check(&file),
        RulesCommand::Test {
            rules,
            event,
            now,
            seed,
        } => test(&rules, &event, now.as_deref(), seed),
    }
}

fn read(path: &Path) -> Result<String, Failure> {
    std::fs::read_to_string(path)
        .map_err(|e| Failure::new(format!("cannot read {}: {e}", path.display())))
}

fn parse(path: &Path, text: &str) -> Result<RulesFile, Failure> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let parsed = match ext {
        "json" => RulesFile::from_json(text),
        "toml" => RulesFile::from_toml(text),
        _ => RulesFile::parse(text),
    };
    parsed.map_err(|e| Failure::new(format!("{}: {e}", path.display())))
}

/// Where in the file the rule or flow `id` is defined (1-based line), if it can be found.
fn line_of(text: &str, id: &str) -> Option<usize> {
    let id = id.strip_prefix("flow ").unwrap_or(id);
    let quoted = format!("\"{id}\"");
    text.lines()
        .position(|line| {
            let l = line.trim_start().trim_start_matches('{').trim_start();
            (l.starts_with("id") || l.starts_with("\"id\"")) && l.contains(&quoted)
        })
        .map(|i| i + 1)
}

fn check(path: &Path) -> Result<ExitCode, Failure> {
    let text = read(path)?;
    let file = parse(path, &text)?;
    let errors = RuleSet::check(&file);
    if errors.is_empty() {
        println!(
            "{}: ok ({} rules, {} flows)",
            path.display(),
            file.rules.len(),
            file.flows.len()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let located: Vec<String> = errors
        .iter()
        .map(|e| match e.rule().and_then(|r| line_of(&text, r)) {
            Some(line) => format!("{}:{line}: {e}", path.display()),
            None => format!("{}: {e}", path.display()),
        })
        .collect();
    for l in &located {
        println!("{l}");
    }
    let first = located.first().cloned().unwrap_or_default();
    let more = match located.len() {
        1 => String::new(),
        n => format!(" (and {} more errors, listed on stdout)", n - 1),
    };
    Err(Failure::new(format!("{first}{more}")))
}

fn test(
    rules_path: &Path,
    event_path: &Path,
    now: Option<&str>,
    seed: u64,
) -> Result<ExitCode, Failure> {
    let text = read(rules_path)?;
    let file = parse(rules_path, &text)?;
    let set = RuleSet::from_file(file).map_err(|e| {
        let at = e
            .rule()
            .and_then(|r| line_of(&text, r))
            .map(|l| format!(":{l}"))
            .unwrap_or_default();
        Failure::new(format!("{}{at}: {e}", rules_path.display()))
    })?;
    let event_text = read(event_path)?;
    let de = &mut serde_json::Deserializer::from_str(&event_text);
    let event: InboundEvent = serde::Deserialize::deserialize(de)
        .map_err(|e| Failure::new(format!("{}: not a valid event: {e}", event_path.display())))?;
    let now: DateTime<Utc> = match now {
        Some(s) => DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| {
                Failure::new(format!(
                    "--now `{s}` is not an RFC 3339 time (for example 2024-05-01T12:00:00Z)"
                ))
            })?,
        None => event.occurred_at,
    };
    let engine = Engine::new(set);
    let store = MemoryStore::new();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| Failure::new(format!("cannot start the async runtime: {e}")))?;
    let decision = runtime
        .block_on(engine.decide(&store, &event, now, seed))
        .map_err(|e| Failure::new(format!("deciding failed: {e}")))?;
    let json = serde_json::to_string_pretty(&decision)
        .map_err(|e| Failure::new(format!("cannot print the decision: {e}")))?;
    println!("{json}");
    Ok(ExitCode::SUCCESS)
}
