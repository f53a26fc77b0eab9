//! `igdm privacy`: the shipped retention policies, and export bundle verification.

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use privacy_kit::export::verify_bundle;
use privacy_kit::retention::presets;

use super::Failure;

/// Privacy tools: retention presets and export bundle checks.
#[derive(Debug, Args)]
pub struct PrivacyArgs {
    #[command(subcommand)]
    command: PrivacyCommand,
}

#[derive(Debug, Subcommand)]
enum PrivacyCommand {
    /// Print the shipped retention policies (the published promises they implement).
    Presets {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Check an export bundle's manifest and checksums; prints `valid` or fails with the reason.
    VerifyBundle {
        /// The bundle (a zip file made by `privacy_kit::export`).
        file: PathBuf,
    },
}

/// Runs an `igdm privacy` subcommand.
pub fn run(args: PrivacyArgs) -> Result<ExitCode, Failure> {
    match args.command {
        PrivacyCommand::Presets { json } => print_presets(json),
        PrivacyCommand::VerifyBundle { file } => verify(&file),
    }
}

fn print_presets(json: bool) -> Result<ExitCode, Failure> {
    let policies = presets();
    if json {
        let text = serde_json::to_string_pretty(&policies)
            .map_err(|e| Failure::new(format!("cannot encode the presets: {e}")))?;
        println!("{text}");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<14} {:<24} {:<10} {:<34} {:<10} promise",
        "name", "data class", "keep for", "counted from", "then"
    );
    for p in &policies {
        let anchors: Vec<String> = p.anchors.iter().map(ToString::to_string).collect();
        println!(
            "{:<14} {:<24} {:<10} {:<34} {:<10} {}",
            p.name,
            p.data_class.to_string(),
            p.keep_for.to_string(),
            anchors.join(" or "),
            p.then.to_string(),
            p.promise
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn verify(path: &PathBuf) -> Result<ExitCode, Failure> {
    let file = File::open(path)
        .map_err(|e| Failure::new(format!("cannot open {}: {e}", path.display())))?;
    let manifest = verify_bundle(BufReader::new(file))
        .map_err(|e| Failure::new(format!("{} is not a valid bundle: {e}", path.display())))?;
    println!(
        "valid: {} files, {} records, subject {}, generated {}",
        manifest.files.len(),
        manifest.records(),
        manifest.subject,
        manifest.generated_at.to_rfc3339()
    );
    Ok(ExitCode::SUCCESS)
}
