//! Entry point: parses the command line, then opens the window or runs a headless command.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc keeps freed tensor buffers for reuse; the system allocator hands every buffer over 128 KiB back
/// to the kernel, and the page faults of re-mapping them cost a quarter of a training step.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
