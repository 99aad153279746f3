#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use bayes_explorer::Lab;
use bayes_explorer::data::prepare::{default_spec_for_lab, prepare};
use bayes_explorer::data::{SynthKind, SynthSpec};
use bayes_explorer::models::flow::{FlowConfig, FlowTrainer};
use bayes_explorer::train::Trainer;
use std::sync::Arc;
use std::time::Instant;
fn main() {
    let table = SynthSpec::default_for(SynthKind::Moons).generate();
    let spec = default_spec_for_lab(Lab::Flow, &table);
    let data = Arc::new(prepare(&table, &spec).unwrap());
    let mut t = FlowTrainer::new(FlowConfig::default(), &data).unwrap();
    for _ in 0..10 {
        let s = Instant::now();
        t.step().unwrap();
        println!("step {:?}", s.elapsed());
    }
    let params = t.params().unwrap();
    let net = bayes_explorer::models::flow::FlowNet::from_params(&params, candle_core::DType::F32).unwrap();
    let x: Vec<f32> = data.x_train[..512].to_vec();
    for _ in 0..3 {
        let s = Instant::now();
        net.log_density(&x).unwrap();
        println!("fwd256 {:?}", s.elapsed());
    }
}
