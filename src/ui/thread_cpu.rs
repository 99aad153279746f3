//! Where the cores went: the CPU time of each of this process's threads, read from Linux's `/proc/self/task`, so
//! that `bench window` can say how much of the machine training, the window's renderer (Mesa's llvmpipe runs its
//! rasteriser on threads of our process), the UI thread and the view threads each took. Elsewhere there is no
//! `/proc`, and the breakdown is empty.

use std::collections::HashMap;

use serde::Serialize;

/// Each thread's name and CPU seconds at one moment, by thread id ([`thread_cpu_seconds`]).
pub(crate) type ThreadTimes = HashMap<u32, (String, f64)>;

/// CPU seconds each thread of this process had run when read. Empty where `/proc` is not there; a thread that ends
/// while the list is read is left out.
#[must_use]
pub(crate) fn thread_cpu_seconds() -> ThreadTimes {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return HashMap::new() };
    tasks
        .flatten()
        .filter_map(|task| {
            let tid: u32 = task.file_name().to_str()?.parse().ok()?;
            let name = std::fs::read_to_string(task.path().join("comm")).ok()?.trim_end().to_owned();
            let seconds = on_cpu_seconds(&std::fs::read_to_string(task.path().join("schedstat")).ok()?)?;
            Some((tid, (name, seconds)))
        })
        .collect()
}

/// Seconds on the CPU from a `schedstat` line: its first field, in nanoseconds.
fn on_cpu_seconds(schedstat: &str) -> Option<f64> {
    let nanoseconds: u64 = schedstat.split_whitespace().next()?.parse().ok()?;
    Some(nanoseconds as f64 * 1e-9)
}

/// What a thread is, from its name: the name without the number a pool gives each of its threads
/// (`llvmpipe-3` is `llvmpipe`), or `main (UI)` for the process's first thread, where eframe runs the window.
fn kind(tid: u32, name: &str) -> String {
    if tid == std::process::id() {
        return "main (UI)".to_owned();
    }
    let stem = name.trim_end_matches(|c: char| c.is_ascii_digit()).trim_end_matches(['-', ':', '_', ' ']);
    if stem.is_empty() { name.to_owned() } else { stem.to_owned() }
}

/// The cores one kind of thread kept busy over a measurement.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ThreadCores {
    /// The threads' kind (see [`kind`]).
    pub threads: String,
    /// Their CPU seconds over the wall-clock seconds: 1.0 is one core all the time.
    pub cores: f64,
}

/// The cores each kind of thread used between the snapshots `before` and `after` ([`thread_cpu_seconds`]) taken
/// `wall_seconds` apart, busiest first; kinds under half a per cent of a core are left out. A thread that started
/// in between counts from zero; one that ended in between is not in `after` and is not counted.
#[must_use]
pub(crate) fn cores_by_kind(before: &ThreadTimes, after: &ThreadTimes, wall_seconds: f64) -> Vec<ThreadCores> {
    let mut by_kind: HashMap<String, f64> = HashMap::new();
    for (&tid, (name, seconds)) in after {
        let start = before.get(&tid).map_or(0.0, |(_, s)| *s);
        *by_kind.entry(kind(tid, name)).or_default() += (seconds - start).max(0.0);
    }
    let mut cores: Vec<ThreadCores> = by_kind
        .into_iter()
        .map(|(threads, seconds)| ThreadCores { threads, cores: seconds / wall_seconds.max(1e-9) })
        .filter(|t| t.cores >= 0.005)
        .collect();
    cores.sort_by(|a, b| b.cores.total_cmp(&a.cores).then_with(|| a.threads.cmp(&b.threads)));
    cores
}

/// `cores` as one line: `train-flow 1.65, llvmpipe 0.21, main (UI) 0.04`.
#[must_use]
pub fn describe(cores: &[ThreadCores]) -> String {
    cores.iter().map(|t| format!("{} {:.2}", t.threads, t.cores)).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::mpsc;

    use super::{ThreadCores, cores_by_kind, describe, kind, on_cpu_seconds, thread_cpu_seconds};

    #[test]
    fn a_pool_threads_number_is_dropped_and_the_first_thread_is_the_ui() {
        assert_eq!(kind(u32::MAX, "llvmpipe-12"), "llvmpipe");
        assert_eq!(kind(u32::MAX, "train-flow"), "train-flow");
        assert_eq!(kind(u32::MAX, "rayon 3"), "rayon");
        assert_eq!(kind(u32::MAX, "42"), "42");
        assert_eq!(kind(std::process::id(), "bayes-explorer"), "main (UI)");
        assert_eq!(on_cpu_seconds("1500000000 20 7\n"), Some(1.5));
        assert_eq!(on_cpu_seconds(""), None);
    }

    /// Threads of one kind are added, a thread that started in between counts from zero, and the busiest kind
    /// comes first.
    #[test]
    fn the_cores_of_a_kind_add_its_threads_cpu_time_over_the_wall_time() {
        let entry = |name: &str, s: f64| (name.to_owned(), s);
        let before = HashMap::from([(10, entry("llvmpipe-0", 1.0)), (11, entry("llvmpipe-1", 2.0))]);
        let after = HashMap::from([
            (10, entry("llvmpipe-0", 1.5)),
            (11, entry("llvmpipe-1", 2.25)),
            (12, entry("train-flow", 3.0)),
            (13, entry("idle", 0.001)),
        ]);
        let cores = cores_by_kind(&before, &after, 2.0);
        assert_eq!(
            cores,
            vec![
                ThreadCores { threads: "train-flow".into(), cores: 1.5 },
                ThreadCores { threads: "llvmpipe".into(), cores: 0.375 },
            ]
        );
        assert_eq!(describe(&cores), "train-flow 1.50, llvmpipe 0.38");
    }

    /// On Linux, a thread that spins until its own clock says 0.1 s of CPU shows at least that much between two
    /// snapshots, under its name.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_spinning_threads_cpu_time_is_read_under_its_name() {
        let before = thread_cpu_seconds();
        let (spun, stop) = (mpsc::channel::<()>(), mpsc::channel::<()>());
        let (spun_tx, spun_rx) = spun;
        let (stop_tx, stop_rx) = stop;
        let spinner = std::thread::Builder::new()
            .name("spin-probe-7".into())
            .spawn(move || {
                let own =
                    || std::fs::read_to_string("/proc/thread-self/schedstat").ok().and_then(|s| on_cpu_seconds(&s));
                let mut x = 1u64;
                while own().is_some_and(|s| s < 0.1) {
                    for _ in 0..10_000 {
                        x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
                    }
                }
                let _ = spun_tx.send(());
                let _ = stop_rx.recv();
            })
            .expect("a thread");
        spun_rx.recv().expect("the spinner spun");
        let after = thread_cpu_seconds();
        let _ = stop_tx.send(());
        spinner.join().expect("the spinner ends");
        let cores = cores_by_kind(&before, &after, 1.0);
        let spin = cores.iter().find(|t| t.threads == "spin-probe").expect("the spinner's kind");
        assert!(spin.cores >= 0.1, "{cores:?}");
    }
}
