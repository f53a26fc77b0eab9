//! `igdm`: the command line of the igdm SDK and its reference service.
//!
//! `main` only parses the arguments and hands them to [`cli::run`]; each subcommand group lives in
//! its own file under `cli/`.

mod cli;

fn main() -> std::process::ExitCode {
    cli::run()
}
