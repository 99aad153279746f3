#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::time::Instant;

use bayes_explorer::Lab;
use bayes_explorer::data::prepare::{default_spec_for_lab, prepare};
use bayes_explorer::data::{SynthKind, SynthSpec};
use bayes_explorer::models::flow::{FlowConfig, FlowTrainer};
use bayes_explorer::train::Trainer;

fn rss_mb() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
        / 1024
}

fn main() {
    let table = SynthSpec::default_for(SynthKind::Moons).generate();
    let spec = default_spec_for_lab(Lab::Flow, &table);
    let data = Arc::new(prepare(&table, &spec).unwrap());
    let mut t = FlowTrainer::new(FlowConfig::default(), &data).unwrap();
    let started = Instant::now();
    for i in 0..20 {
        t.step().unwrap();
        if i % 10 == 9 {
            println!(
                "step {} rss {} MB, {:.1} ms/step",
                i + 1,
                rss_mb(),
                started.elapsed().as_secs_f64() * 1e3 / (i + 1) as f64
            );
        }
    }
}
