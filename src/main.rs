//! Entry point: parses the command line, then opens the window or runs a headless command.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = bayes_explorer::cli::Cli::parse();
    match cli.command {
        Some(command) => bayes_explorer::cli::run(command),
        None => match bayes_explorer::ui::run_app() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: cannot open the window: {e}");
                ExitCode::FAILURE
            }
        },
    }
}
