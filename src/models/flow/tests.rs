//! The flow's trainer against its contracts: the NaN guard's, the optimiser's state, the NLL's gradient against
//! finite differences, and the hand-written RealNVP passes against candle's.

use std::sync::Arc;

use candle_core::DType;

use super::{FlowConfig, FlowKind, FlowNet, FlowTrainer};
use crate::Lab;
use crate::compute::cpu::coupling as coupling_cpu;
use crate::data::prepare::{Prepared, default_spec_for_lab, prepare};
use crate::data::{SynthKind, SynthSpec};
use crate::models::trainer::Trainer;
use crate::models::trainer::testing::assert_the_guard_catches;

/// `n_points` of the two moons, prepared for the flow lab.
fn moons(n_points: usize) -> Arc<Prepared> {
    let table = SynthSpec { n_points, ..SynthSpec::default_for(SynthKind::Moons) }.generate();
    Arc::new(prepare(&table, &default_spec_for_lab(Lab::Flow, &table)).expect("moons"))
}

/// A NaN or an infinity put into one variable after two steps: the third step fails and the guard names the
/// quantity where the pass first holds it (the last layer first: training pulls the data back through the
/// flow), or the loss when every point's log-density is finite and only their mean overflows; the variables go
/// back to their values before step 2 (the last at which the loss was finite), and nothing of the failed step
/// counts: the next one, at a lower rate, takes the same minibatch ([`assert_the_guard_catches`]).
#[test]
fn the_guard_names_where_an_injected_non_finite_value_first_appears() {
    use FlowKind::{Affine, Maf, RealNvp};

    let data = moons(300);
    let (inf, nan) = (f32::INFINITY, f32::NAN);
    // (kind, variable, element (all when None), value, what the guard must name)
    let cases = [
        // Infinite hidden units (a NaN would leave the ReLU as 0): the scale's tanh gets ∞ − ∞.
        (RealNvp, "layer 2 scale net dense 1 biases", None, inf, "dense layer 1 of coupling layer 2's scale net"),
        (RealNvp, "layer 2 shift net dense 2 biases", None, inf, "coupling layer 2's shift t"),
        (RealNvp, "layer 2 scale net dense 2 biases", None, nan, "coupling layer 2's scale s"),
        (RealNvp, "layer 1 shift net dense 1 biases", None, inf, "dense layer 1 of coupling layer 1's shift net"),
        (Maf, "layer 1 MADE dense 1 biases", None, inf, "dense layer 1 of MAF layer 1's MADE network"),
        (Maf, "layer 2 MADE dense 2 biases", Some(0), inf, "MAF layer 2's shift"),
        (Maf, "layer 2 MADE dense 2 biases", Some(3), inf, "MAF layer 2's log-scale"),
        // exp(100) overflows f32.
        (Maf, "layer 2 MADE dense 2 biases", Some(2), -100.0, "layer 2's output"),
        (Affine, "layer 2 log-scale", Some(0), -100.0, "affine layer 2's inverse scale"),
        (Affine, "layer 1 shift", Some(1), inf, "layer 1's output"),
        // z is about 1e35, finite; its square is not.
        (Affine, "layer 1 log-scale", None, -80.0, "the base density log p_z"),
        // Layer 2's log|det| is 3e38, every log-density about −3e38, finite; their sum over the batch is not.
        (Affine, "layer 2 log-scale", None, 1.5e38, "the negative log-likelihood"),
    ];
    for (kind, name, index, value, expected) in cases {
        let config =
            FlowConfig { hidden: vec![8], layers: 2, batch_size: 32, epochs: 2, ..FlowConfig::default_for(kind) };
        let mut trainer = FlowTrainer::new(config, &data).expect("flow");
        let what = format!("{kind:?}, {name}[{index:?}] = {value}");
        assert_the_guard_catches(&mut trainer, (name, index, value, expected), 32, 1e-3, |_| (), &what);
    }
}

/// Adam's moments must not keep the graph of the step they came from: candle's gradients of these
/// layers remember it, and a chain of moments then kept every step's activations alive (185 MB a step
/// for the Keras RealNVP, until the machine ran out of memory).
#[test]
fn optimiser_state_keeps_no_graph_after_steps() {
    let data = moons(300);
    for kind in FlowKind::ALL {
        let config = FlowConfig { hidden: vec![8, 8], layers: 2, batch_size: 32, ..FlowConfig::default_for(kind) };
        let mut trainer = FlowTrainer::new(config, &data).expect("flow");
        for _ in 0..3 {
            trainer.step().expect("step");
        }
        assert!(trainer.variables.optimizer.state_is_detached(), "{kind:?}: the optimiser's moments keep a graph");
    }
}

/// The gradient of the NLL that training follows equals central finite differences of the NLL, for
/// weights and biases of every part (scale net, shift net, MADE, affine), so candle's autodiff through the
/// masks, narrows and exponentials is what the maths says.
#[test]
fn nll_gradient_matches_finite_differences() {
    let data = moons(300);
    for kind in FlowKind::ALL {
        // The weights' own gradient: `params` gives the weights themselves without an average.
        let config = FlowConfig {
            hidden: vec![6],
            layers: 2,
            batch_size: 32,
            weight_average: None,
            ..FlowConfig::default_for(kind)
        };
        let mut trainer = FlowTrainer::new(config, &data).expect("flow");
        // A few steps at a high rate, so no parameter sits at its (zero) initial value.
        trainer.variables.optimizer.learning_rate = 0.05;
        for _ in 0..5 {
            trainer.step().expect("step");
        }
        let x = trainer.model.x_train.narrow(0, 0, 64).expect("batch");
        // The finite differences in f64 with a small step, so that a step rarely crosses a ReLU's kink.
        let x64 = x.to_dtype(DType::F64).expect("f64");
        let nll = |t: &FlowTrainer| -> f64 {
            let net = FlowNet::from_params(&t.params().expect("params"), DType::F64).expect("f64 net");
            let lp = net.log_density_tensor(&x64).expect("density").mean_all().expect("mean");
            -lp.to_scalar::<f64>().expect("scalar")
        };
        let loss = trainer.net().log_density_tensor(&x).expect("d").mean_all().expect("m").neg().expect("neg");
        let grads = loss.backward().expect("backward");
        for (v, var) in trainer.variables.vars.iter().enumerate() {
            let Some(g) = grads.get(var.as_tensor()) else { continue };
            let g: Vec<f32> = g.flatten_all().expect("flat").to_vec1().expect("grad");
            let original: Vec<f32> = var.as_tensor().flatten_all().expect("flat").to_vec1().expect("values");
            let shape = var.as_tensor().shape().clone();
            for j in [0, original.len() / 2, original.len() - 1] {
                let h = 1e-3f32;
                let mut plus = original.clone();
                plus[j] += h;
                var.set(&candle_core::Tensor::from_slice(&plus, shape.clone(), &candle_core::Device::Cpu).expect("t"))
                    .expect("set");
                let up = nll(&trainer);
                let mut minus = original.clone();
                minus[j] -= h;
                var.set(&candle_core::Tensor::from_slice(&minus, shape.clone(), &candle_core::Device::Cpu).expect("t"))
                    .expect("set");
                let down = nll(&trainer);
                var.set(
                    &candle_core::Tensor::from_slice(&original, shape.clone(), &candle_core::Device::Cpu).expect("t"),
                )
                .expect("set");
                let fd = (up - down) / (2.0 * f64::from(h));
                let got = f64::from(g[j]);
                assert!(
                    (got - fd).abs() <= 2e-3 + 2e-2 * fd.abs(),
                    "{kind:?} {} [{j}]: autodiff {got} vs finite difference {fd}",
                    trainer.variables.names[v]
                );
            }
        }
    }
}

/// A small RealNVP (5 layers, odd widths) on 400 moons points after `steps` steps at a high learning rate, so
/// that its scales are far from zero, and its data; without a weight average, so that its `params` are the weights
/// its passes take.
fn small_trained_realnvp(steps: usize) -> (FlowTrainer, Arc<Prepared>) {
    let data = moons(400);
    let config = FlowConfig {
        hidden: vec![24, 17],
        layers: 5,
        batch_size: 64,
        learning_rate: 2e-2,
        weight_average: None,
        ..FlowConfig::default_for(FlowKind::RealNvp)
    };
    let mut trainer = FlowTrainer::new(config, &data).expect("flow");
    for _ in 0..steps {
        trainer.step().expect("step");
    }
    (trainer, data)
}

/// The RealNVP's density grid by the hand-written forward pass equals candle's at every stage (a trained flow,
/// so the scales are far from zero; a grid of 70 x 70 cells, not a multiple of the chunk), densities and the
/// stage's own log|det|; the grid really went by hand (a MAF, which has no hand-written pass, is not one).
#[test]
fn the_hand_written_density_grid_matches_candle() {
    let (trainer, data) = small_trained_realnvp(30);
    let net = FlowNet::from_params(&trainer.params().expect("params"), DType::F32).expect("net");
    assert!(net.with_coupling_values(|_| ()).is_some(), "a RealNVP takes the hand-written pass");
    let bounds = [-2.5, 2.5, -2.0, 2.2];
    let points = super::grid_points(70, bounds);
    for k in 0..=net.n_layers() {
        let (density, log_det) = net.stage_density_grid(k, 70, bounds).expect("grid");
        let (want_density, want_log_det) = net.stage_density_grid_by_tensors(k, &points).expect("candle grid");
        assert_eq!((density.len(), log_det.len()), (4900, 4900));
        for (i, (d, w)) in density.iter().zip(&want_density).enumerate() {
            assert!((d - w).abs() <= 1e-4 * w.abs().max(1e-3), "stage {k} cell {i}: density {d} vs {w}");
        }
        for (i, (l, w)) in log_det.iter().zip(&want_log_det).enumerate() {
            assert!((l - w).abs() <= 1e-4 * w.abs().max(1.0), "stage {k} cell {i}: log-det {l} vs {w}");
        }
        if k > 0 {
            assert!(log_det.iter().any(|&l| l.abs() > 1e-2), "stage {k}: the layer moved nothing");
        }
    }
    let maf = FlowTrainer::new(FlowConfig::default_for(FlowKind::Maf), &data).expect("maf");
    let maf = FlowNet::from_params(&maf.params().expect("params"), DType::F32).expect("net");
    assert!(maf.with_coupling_values(|_| ()).is_none());
}

/// The RealNVP's stages by the hand-written pass equal candle's in both directions, at every stage and for every
/// layer's log|det| (a trained flow; 2,500 points, more than two chunks and not a multiple of one), pulled back
/// from every stage; and the two directions undo each other.
#[test]
fn the_hand_written_stages_match_candle() {
    let (trainer, data) = small_trained_realnvp(30);
    let net = FlowNet::from_params(&trainer.params().expect("params"), DType::F32).expect("net");
    let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(9);
    let z = super::gaussian_points(2_500, 2, &mut rng);
    let close = |what: &str, got: &[f32], want: &[f32]| {
        assert_eq!(got.len(), want.len(), "{what}: lengths");
        for (i, (a, b)) in got.iter().zip(want).enumerate() {
            assert!((a - b).abs() <= 1e-4 * b.abs().max(1.0), "{what} [{i}]: {a} vs candle's {b}");
        }
    };
    let forward = net.forward_stages(&z).expect("hand-written");
    let want = net.forward_stages_by_tensors(&z).expect("candle");
    assert_eq!((forward.points.len(), forward.log_det.len()), (6, 5));
    for k in 0..=5 {
        close(&format!("generation stage {k}"), &forward.points[k], &want.points[k]);
    }
    for k in 0..5 {
        close(&format!("generation log|det| of layer {}", k + 1), &forward.log_det[k], &want.log_det[k]);
        assert!(forward.log_det[k].iter().any(|&l| l.abs() > 1e-2), "layer {}: moved nothing", k + 1);
    }
    for from in 0..=5 {
        let back = net.inverse_stages(&forward.points[from], from).expect("hand-written");
        let want = net.inverse_stages_by_tensors(&forward.points[from], from).expect("candle");
        assert_eq!((back.points.len(), back.log_det.len()), (from + 1, from));
        for k in 0..=from {
            close(&format!("inference from {from}, stage {k}"), &back.points[k], &want.points[k]);
            // The round trip: pulled back from stage `from`, each stage is the one pushed forward.
            close(&format!("round trip from {from}, stage {k}"), &back.points[k], &forward.points[k]);
        }
        for k in 0..from {
            close(&format!("inference from {from}, log|det| {}", k + 1), &back.log_det[k], &want.log_det[k]);
        }
    }
    let x = &data.x_train;
    let back = net.inverse_stages(x, 5).expect("data");
    close("the data pulled back", &back.points[0], &net.inverse_stages_by_tensors(x, 5).expect("candle").points[0]);
    assert!(net.inverse_stages(&x[..3], 5).is_err(), "a half row is candle's error to report");
}

/// The hand-written RealNVP pass (models::coupling_cpu) gives candle autograd's loss and gradients, for a flow
/// trained away from its initial values (so every net and mask matters), on a full minibatch and on a ragged one
/// of 37 rows, with odd widths and an odd number of layers; and a step by either path moves the flow alike.
#[test]
fn the_hand_written_realnvp_pass_matches_candle_autograd() {
    let (mut trainer, data) = small_trained_realnvp(12);
    let params = trainer.params().expect("params");
    let refs = coupling_cpu::coupling_refs(&params).expect("coupling layers");
    // One workspace for both minibatches, the smaller second: buffers left from a larger pass must not leak in.
    let mut work = coupling_cpu::RealNvpWorkspace::default();
    for rows in [64, 37] {
        let x = trainer.model.x_train.narrow(0, 0, rows).expect("rows");
        let points: Vec<f32> = x.flatten_all().and_then(|t| t.to_vec1()).expect("points");
        let loss = trainer.net().log_density_tensor(&x).and_then(|l| l.mean_all()?.neg()).expect("loss");
        let grads = loss.backward().expect("backward");
        // From the plain parameters, and from the live variables' own storage: the same numbers.
        let got = coupling_cpu::realnvp_loss_and_gradients(&refs, 2, &points, &mut work).expect("loss");
        let from_params = work.gradients.clone();
        let live = trainer
            .net()
            .with_coupling_values(|layers| coupling_cpu::realnvp_loss_and_gradients(layers, 2, &points, &mut work))
            .flatten()
            .expect("live loss");
        assert_eq!(got.to_bits(), live.to_bits());
        assert_eq!(from_params, work.gradients);
        let reference = f64::from(loss.to_scalar::<f32>().expect("scalar"));
        assert!((got - reference).abs() < 1e-5 * (1.0 + reference.abs()), "{got} vs {reference}");
        let total: usize = trainer.variables.vars.iter().map(|v| v.as_tensor().elem_count()).sum();
        assert_eq!(work.gradients.len(), total);
        let mut offset = 0;
        for (var, name) in trainer.variables.vars.iter().zip(&trainer.variables.names) {
            let want: Vec<f32> =
                grads.get(var.as_tensor()).expect("gradient").flatten_all().and_then(|t| t.to_vec1()).expect("vec");
            let got = &work.gradients[offset..offset + want.len()];
            offset += want.len();
            let scale = want.iter().fold(0.0f32, |a, &b| a.max(b.abs())).max(1e-3);
            for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
                assert!((g - w).abs() <= 1e-4 * scale, "{name}[{i}] with {rows} rows: {g} vs candle {w}");
            }
        }
    }
    // The held-out NLL by the forward half of the pass, as candle computes it.
    let by_hand = trainer.model.heldout_nll().expect("by hand");
    let by_candle = trainer.model.mean_nll(&trainer.model.x_test).expect("by candle");
    assert!((by_hand - by_candle).abs() < 1e-5 * (1.0 + by_candle.abs()), "{by_hand} vs candle {by_candle}");
    // Ten more steps each way from the same state: the same losses to float rounding.
    let mut by_hand = FlowTrainer::new(trainer.config().clone(), &data).expect("flow");
    let mut by_candle = FlowTrainer::new(trainer.config().clone(), &data).expect("flow");
    by_candle.set_hand_written_pass(false);
    for step in 0..10 {
        by_hand.step().expect("step");
        by_candle.step().expect("step");
        let (a, b) = (by_hand.epoch_loop().batch_loss(), by_candle.epoch_loop().batch_loss());
        assert!((a - b).abs() < 1e-3 * (1.0 + b.abs()), "step {step}: {a} by hand vs {b} by candle");
    }
}

/// Each initialisation draws what it says: Glorot-uniform weights (variance limit² / 3 with limit
/// √(6 / (fan_in + fan_out))) and zero biases, or weights and biases uniform in ±1/√fan_in; every value inside its
/// limit, the sample variance within a few standard errors of the uniform's; a MAF's output layer starts at zero
/// either way, so each of its layers starts as the identity. A run file written before the choice existed reads as
/// Glorot with Keras' Adam epsilon, what it was trained with.
#[test]
fn each_initialisation_draws_from_its_distribution() {
    use super::FlowInit;
    use crate::compute::params::FlowLayerParams;
    let mut rng = rand::SeedableRng::seed_from_u64(5);
    for init in FlowInit::ALL {
        let config = FlowConfig { init, ..FlowConfig::default_for(FlowKind::RealNvp) };
        let (net, _, _) = FlowNet::new(&config, 2, &mut rng).expect("a flow");
        let params = net.params().expect("params");
        for layer in &params.layers {
            let FlowLayerParams::Coupling { scale_net, shift_net, .. } = layer else { panic!("a coupling layer") };
            for dense in scale_net.layers.iter().chain(&shift_net.layers) {
                let (fan_in, fan_out) = (dense.n_in as f64, dense.n_out as f64);
                let limit = match init {
                    FlowInit::Glorot => (6.0 / (fan_in + fan_out)).sqrt(),
                    FlowInit::FanIn => 1.0 / fan_in.sqrt(),
                };
                let check = |values: &[f32], what: &str| {
                    assert!(values.iter().all(|&v| f64::from(v).abs() <= limit * (1.0 + 1e-6)), "{init:?} {what}");
                    let n = values.len() as f64;
                    let var = values.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / n;
                    // Var(U²) for U uniform on ±a is 4a⁴/45; the mean of n squares has sd √(4/45)·a²/√n.
                    let expected = limit * limit / 3.0;
                    let se = (4.0_f64 / 45.0).sqrt() * limit * limit / n.sqrt();
                    assert!((var - expected).abs() < 5.0 * se, "{init:?} {what}: variance {var}, expected {expected}");
                };
                check(&dense.weights, "weights");
                match init {
                    FlowInit::Glorot => assert!(dense.biases.iter().all(|&b| b == 0.0)),
                    // 2 or 256 biases: the 256s are checked against the distribution, the 2s for their limit.
                    FlowInit::FanIn if dense.n_out > 2 => check(&dense.biases, "biases"),
                    FlowInit::FanIn => assert!(dense.biases.iter().all(|&b| f64::from(b).abs() <= limit)),
                }
            }
        }
        let config = FlowConfig { init, hidden: vec![32, 32], ..FlowConfig::default_for(FlowKind::Maf) };
        let (net, _, _) = FlowNet::new(&config, 2, &mut rng).expect("a MAF");
        for layer in &net.params().expect("params").layers {
            let FlowLayerParams::Maf { made } = layer else { panic!("a MAF layer") };
            let last = made.layers.last().expect("an output layer");
            assert!(last.weights.iter().chain(&last.biases).all(|&v| v == 0.0), "{init:?}: the MAF starts at identity");
        }
    }
    let mut old = serde_json::to_value(FlowConfig::default()).expect("json");
    old.as_object_mut().expect("an object").remove("init");
    old.as_object_mut().expect("an object").remove("adam_epsilon");
    old.as_object_mut().expect("an object").remove("lr_schedule");
    old.as_object_mut().expect("an object").remove("clip_norm");
    let read: FlowConfig = serde_json::from_value(old).expect("an old config reads");
    assert_eq!(read.clip_norm, None, "old runs trained unclipped");
    assert_eq!(read.init, FlowInit::Glorot);
    assert_eq!(read.lr_schedule, crate::models::trainer::LrSchedule::Constant, "old runs trained at a constant rate");
    assert_eq!(read.adam_epsilon.to_bits(), crate::compute::cpu::optim::KERAS_EPSILON.to_bits());
}

/// The cosine schedule only scales each step's rate: a cosine run equals, to the last bit, a constant-rate run
/// whose rate is set to lr · ½(1 + cos(π t / T)) before its step t, over the run's T steps; and it ends elsewhere
/// than a run at the set rate throughout.
#[test]
fn a_cosine_run_is_a_constant_run_at_the_decayed_rate() {
    use crate::models::trainer::LrSchedule;

    let data = moons(300);
    let constant_config = FlowConfig { hidden: vec![8], layers: 2, batch_size: 64, epochs: 3, ..FlowConfig::default() };
    assert_eq!(constant_config.lr_schedule, LrSchedule::Constant, "the default");
    let base = FlowConfig { lr_schedule: LrSchedule::Cosine, ..constant_config.clone() };
    let mut cosine = FlowTrainer::new(base.clone(), &data).expect("flow");
    let mut stepped = FlowTrainer::new(constant_config.clone(), &data).expect("flow");
    let mut constant = FlowTrainer::new(constant_config, &data).expect("flow");
    let total = cosine.epoch_loop().total_steps();
    assert_eq!(total, 3 * data.n_train().div_ceil(64) as u64);
    let mut t = 0;
    while !cosine.finished() {
        // The rate the window shows as the cosine run's "Rate now" is the rate of its next step.
        let now = cosine.snapshot().rate_now(LrSchedule::Cosine);
        assert_eq!(now.to_bits(), (base.learning_rate * LrSchedule::Cosine.factor(t, total)).to_bits());
        stepped.set_learning_rate(now);
        for trainer in [&mut cosine, &mut stepped, &mut constant] {
            trainer.step().expect("step");
        }
        t += 1;
    }
    assert_eq!((t, stepped.finished(), constant.finished()), (total, true, true));
    let values = |trainer: &FlowTrainer| -> Vec<Vec<f32>> {
        let vars = &trainer.variables.vars;
        vars.iter().map(|v| v.as_tensor().flatten_all().expect("flat").to_vec1().expect("values")).collect()
    };
    assert_eq!(values(&cosine), values(&stepped), "the same steps at the same rates");
    assert_ne!(values(&cosine), values(&constant), "a constant rate ends elsewhere");
}

/// The orders a flow announces before its first step ([`FlowTrainer::minibatch_orders`], what `train flow
/// --export-orders` writes) are the ones its epochs take, for every kind of flow and both RealNVP passes: each
/// epoch's order, read from the loop as the epoch starts, equals the announced one, and after two epochs the loop
/// announces the rest of the same list. Each is a permutation of the training rows, and no two epochs share one.
#[test]
fn announced_minibatch_orders_are_the_ones_the_epochs_take() {
    let data = moons(300);
    let n_train = data.n_train();
    let mut runs: Vec<(FlowKind, bool)> = FlowKind::ALL.iter().map(|&kind| (kind, true)).collect();
    runs.push((FlowKind::RealNvp, false));
    for (kind, hand_written) in runs {
        let config = FlowConfig {
            hidden: vec![8],
            layers: 2,
            batch_size: 32,
            epochs: 4,
            seed: 7,
            ..FlowConfig::default_for(kind)
        };
        let mut trainer = FlowTrainer::new(config, &data).expect("flow");
        trainer.set_hand_written_pass(hand_written);
        let announced = trainer.minibatch_orders();
        assert_eq!(announced.len(), 4, "{kind:?}: one order per epoch");
        for (e, order) in announced.iter().enumerate() {
            let mut sorted = order.clone();
            sorted.sort_unstable();
            assert!(sorted.iter().copied().eq(0..n_train as u32), "{kind:?}: epoch {e}'s order is not a permutation");
            for later in &announced[e + 1..] {
                assert_ne!(order, later, "{kind:?}: two epochs announce the same order");
            }
        }
        let mut taken = Vec::new();
        while !trainer.finished() {
            let state = trainer.epoch_loop().state();
            if state.cursor == 0 && taken.len() == trainer.epoch_loop().epochs_done() {
                taken.push(state.order);
                if taken.len() == 3 {
                    assert_eq!(trainer.minibatch_orders(), announced[2..], "{kind:?}: the rest announced mid-run");
                }
            }
            trainer.step().expect("step");
        }
        assert_eq!(taken, announced, "{kind:?} (hand-written pass: {hand_written}): the epochs took other orders");
    }
}

/// With a weight average the steps are the same as without one (the same weights after every step), and the model
/// the run evaluates and shows is the average: `params` equals the recursion a ← d a + (1 − d) w over the weights
/// each step t started from, with d = min(decay, (1 + t) / (10 + t)); each epoch's held-out NLL is the average's,
/// and it is not the last step's weights'.
#[test]
fn a_weight_average_leaves_the_steps_and_is_the_model_the_run_evaluates() {
    use crate::compute::params::{FlowLayerParams, FlowParams};
    use crate::models::trainer::EpochModel;
    use crate::models::trainer::testing::expected_average;

    let data = moons(300);
    let base = FlowConfig { hidden: vec![8], layers: 2, batch_size: 64, epochs: 2, ..FlowConfig::default() };
    assert_eq!(base.weight_average, Some(super::WEIGHT_AVERAGE), "RealNVP's default");
    let decay = 0.9;
    let mut averaged =
        FlowTrainer::new(FlowConfig { weight_average: Some(decay), ..base.clone() }, &data).expect("flow");
    let mut plain = FlowTrainer::new(FlowConfig { weight_average: None, ..base }, &data).expect("flow");
    let flat = |p: &FlowParams| -> Vec<f64> {
        let mut out = Vec::new();
        for layer in &p.layers {
            let FlowLayerParams::Coupling { scale_net, shift_net, .. } = layer else { panic!("a RealNVP") };
            for dense in scale_net.layers.iter().chain(&shift_net.layers) {
                out.extend(dense.weights.iter().chain(&dense.biases).map(|&v| f64::from(v)));
            }
        }
        out
    };
    let expected = expected_average(&mut plain, &mut averaged, decay, |t| flat(&t.params().expect("params")));
    let values = |trainer: &FlowTrainer| -> Vec<Vec<f32>> {
        let vars = &trainer.variables.vars;
        vars.iter().map(|v| v.as_tensor().flatten_all().expect("flat").to_vec1().expect("values")).collect()
    };
    assert_eq!(values(&averaged), values(&plain), "the average changed the steps");
    let got = flat(&averaged.params().expect("params"));
    let worst = got.iter().zip(&expected).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    assert!(worst < 1e-5, "the average is {worst} from its recursion");
    assert!(got != flat(&plain.params().expect("params")), "the model is the last step's weights");
    // The last epoch's held-out NLL is the average's (by candle, from its plain parameters), not the weights'.
    let nll_of = |p: &FlowParams| -> f64 {
        let net = FlowNet::from_params(p, DType::F32).expect("net");
        let x: Vec<f32> = data.x_test.clone();
        -net.log_density(&x).expect("density").iter().map(|&v| f64::from(v)).sum::<f64>() / (x.len() / 2) as f64
    };
    let reported = |trainer: &FlowTrainer| -> f64 {
        let last = trainer.epoch_loop().history().last().expect("an epoch");
        last.metrics.iter().find(|(k, _)| k == "heldout_nll").expect("held-out").1
    };
    let (of_average, of_weights) = (nll_of(&averaged.params().expect("p")), nll_of(&plain.params().expect("p")));
    assert!((reported(&averaged) - of_average).abs() < 1e-4, "{} against {of_average}", reported(&averaged));
    assert!((reported(&plain) - of_weights).abs() < 1e-4, "{} against {of_weights}", reported(&plain));
    assert!((of_average - of_weights).abs() > 1e-4, "the average and the weights evaluate alike");
    // A saved state names its averages and puts them back.
    let state = averaged.model.extra_state();
    assert_eq!(state.len(), averaged.variables.vars.len());
    assert!(state[0].0.starts_with("weight average of "), "{}", state[0].0);
    assert!(plain.model.extra_state().is_empty());
    assert!(plain.model.restore_extra(&state, None).is_err(), "a flow without an average took one");
}
