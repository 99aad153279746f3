//! Entry point: parses the command line, then opens the window or runs a headless command.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc keeps freed tensor buffers for reuse; the system allocator hands every buffer over 128 KiB back
/// to the kernel, and the page faults of re-mapping them cost a quarter of a training step.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Sets candle's thread counts once, before any other thread starts:
/// - `RAYON_NUM_THREADS` (matrix products, and the VAE's minibatch shards, in one rayon pool): candle asks for it
///   on every matrix product, and unset that reads and parses `/proc/cpuinfo` each time (60 % of a small BNN
///   training step). Set to the core count, it is a lookup.
/// - `CANDLE_NUM_THREADS` = 1 (candle's elementwise operations): their worker threads wait spinning, which on
///   two cores takes time from the thread doing the work, and one call at a time can use them, so the VAE's two
///   shards would queue. Measured on two cores: BNN epoch 4.0-5.0 ms either way, the VAE's shards 30 % faster.
#[allow(unsafe_code, reason = "std::env::set_var is unsafe in edition 2024; see the SAFETY note")]
fn set_compute_threads_once() {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        let threads = candle_core::utils::get_num_threads();
        // SAFETY: this runs first in `main`, before any other thread exists, so nothing reads or writes the
        // environment at the same time.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", threads.to_string()) };
    }
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        // SAFETY: as above.
        unsafe { std::env::set_var("CANDLE_NUM_THREADS", "1") };
    }
}

fn main() -> ExitCode {
    set_compute_threads_once();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = bayes_explorer::cli::Cli::parse();
    match cli.command {
        Some(command) => bayes_explorer::cli::run(command),
        None => match bayes_explorer::ui::run_app(cli.renderer, cli.present) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: cannot open the window: {e}");
                ExitCode::FAILURE
            }
        },
    }
}
