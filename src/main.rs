//! Entry point: parses the command line, then opens the window or runs a headless command.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc keeps freed tensor buffers for reuse; the system allocator hands every buffer over 128 KiB back
/// to the kernel, and the page faults of re-mapping them cost a quarter of a training step.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// candle runs on one thread unless `RAYON_NUM_THREADS` says otherwise. Two reasons:
/// - candle asks for its thread count on every matrix product; unset, that reads and parses `/proc/cpuinfo`
///   each time (60 % of a small BNN training step). Set, it is a lookup.
/// - On the labs' shapes candle's own threads do not pay: measured on two cores, a VAE step, a RealNVP epoch
///   and a BNN epoch take as long with two threads as with one (the idle threads spin while one works). The
///   cores work on separate things instead: the VAE's minibatch shards (`models::vae::SHARDS`), the BNN's
///   prediction loops, the view threads beside the training thread.
#[allow(unsafe_code, reason = "std::env::set_var is unsafe in edition 2024; see the SAFETY note")]
fn set_compute_threads_once() {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        // SAFETY: this runs first in `main`, before any other thread exists, so nothing reads or writes the
        // environment at the same time.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", "1") };
    }
}

fn main() -> ExitCode {
    set_compute_threads_once();
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
