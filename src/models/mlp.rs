//! A deterministic dense network, z = act(W x + b) per layer, trained by minibatch gradient descent:
//! MSE for a numeric target, softmax cross-entropy for a label. It is the BNN lab's baseline (the course's
//! "baseline" row in models.md) and the first model the training worker runs.

use std::sync::Arc;

use candle_core::{D, DType, Device, Tensor, Var};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Uniform};
use serde::{Deserialize, Serialize};

use crate::Lab;
use crate::compute::Activation;
use crate::compute::TrainError;
use crate::compute::cpu::guard::{LastGood, Located, Probe};
use crate::compute::cpu::optim::{Optimizer, OptimizerKind, guarded_step};
use crate::data::prepare::{OutputKind, Prepared};
use crate::models::trainer::{EpochRecord, RunSnapshot, Trainer};

/// Architecture and training settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MlpConfig {
    /// Units of each hidden layer.
    pub hidden: Vec<usize>,
    /// Hidden activation.
    pub activation: Activation,
    /// Optimiser.
    pub optimizer: OptimizerKind,
    /// Learning rate.
    pub learning_rate: f64,
    /// Rows per minibatch.
    pub batch_size: usize,
    /// Epochs to train.
    pub epochs: usize,
    /// Seed of the initial weights and the minibatch order.
    pub seed: u64,
}

impl Default for MlpConfig {
    /// The course's baseline: [8, 8] sigmoid, RMSprop 1e-3, batch 256, 100 epochs.
    fn default() -> Self {
        Self {
            hidden: vec![8, 8],
            activation: Activation::Sigmoid,
            optimizer: OptimizerKind::RmsProp,
            learning_rate: 1e-3,
            batch_size: 256,
            epochs: 100,
            seed: 42,
        }
    }
}

/// Regression or classification, from the prepared data's output column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Task {
    Regression,
    Classification { n_classes: usize },
}

/// The network and its training state.
pub struct MlpTrainer {
    config: MlpConfig,
    task: Task,
    device: Device,
    /// Per layer: weights `[in, out]` and bias `[out]`.
    layers: Vec<(Var, Var)>,
    names: Vec<String>,
    optimizer: Optimizer,
    x_train: Tensor, // [n_train, d]
    y_train: Tensor, // [n_train] f32 (regression) or u32 (classes)
    x_test: Tensor,  // [n_test, d]
    y_test: Tensor,  // [n_test]
    n_train: usize,
    order: Vec<usize>,
    cursor: usize,
    rng: ChaCha8Rng,
    step: u64,
    epoch_loss_sum: f64,
    epoch_batches: usize,
    batch_loss: f64,
    history: Vec<EpochRecord>,
    /// RMSE of predicting the training mean (regression), for comparison.
    mean_baseline_rmse: Option<f64>,
    /// Parameter values at which the loss was last measured finite.
    last_good: LastGood,
}

impl MlpTrainer {
    /// Builds the network for `data` (which must have an output column and at least one training row).
    pub fn new(config: MlpConfig, data: &Arc<Prepared>) -> Result<Self, TrainError> {
        let device = Device::Cpu;
        let Some((_, kind)) = &data.output else {
            return Err(TrainError::Data("the dense network needs a target or label column".into()));
        };
        let task = match kind {
            OutputKind::Regression => Task::Regression,
            OutputKind::Classes { classes } => Task::Classification { n_classes: classes.len().max(2) },
        };
        let d = data.n_features();
        let n_train = data.n_train();
        if n_train == 0 || d == 0 {
            return Err(TrainError::Data("no training rows or no features".into()));
        }
        if config.batch_size == 0 || config.hidden.contains(&0) {
            return Err(TrainError::Data("batch size and layer widths must be at least 1".into()));
        }
        let n_out = match task {
            Task::Regression => 1,
            Task::Classification { n_classes } => n_classes,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let mut widths = vec![d];
        widths.extend(&config.hidden);
        widths.push(n_out);
        let mut layers = Vec::new();
        let mut names = Vec::new();
        for (i, pair) in widths.windows(2).enumerate() {
            let (fan_in, fan_out) = (pair[0], pair[1]);
            // Glorot uniform, as Keras' Dense initialises.
            let limit = (6.0 / (fan_in + fan_out) as f64).sqrt() as f32;
            let dist = Uniform::new_inclusive(-limit, limit).map_err(|e| TrainError::Data(e.to_string()))?;
            let w: Vec<f32> = (0..fan_in * fan_out).map(|_| dist.sample(&mut rng)).collect();
            layers.push((Var::from_slice(&w, (fan_in, fan_out), &device)?, Var::zeros(fan_out, DType::F32, &device)?));
            names.push(format!("layer {} weights", i + 1));
            names.push(format!("layer {} biases", i + 1));
        }
        let vars: Vec<Var> = layers.iter().flat_map(|(w, b)| [w.clone(), b.clone()]).collect();
        let optimizer = Optimizer::new(config.optimizer, config.learning_rate, &vars)?;
        let y = |v: &[f32]| -> candle_core::Result<Tensor> {
            match task {
                Task::Regression => Tensor::from_slice(v, v.len(), &device),
                Task::Classification { .. } => {
                    let idx: Vec<u32> = v.iter().map(|&c| c as u32).collect();
                    Tensor::from_slice(&idx, idx.len(), &device)
                }
            }
        };
        let mean_baseline_rmse = (task == Task::Regression && !data.y_test.is_empty()).then(|| {
            let mean = data.y_train.iter().map(|&v| f64::from(v)).sum::<f64>() / n_train as f64;
            let mse =
                data.y_test.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / data.y_test.len() as f64;
            mse.sqrt()
        });
        let mut order: Vec<usize> = (0..n_train).collect();
        order.shuffle(&mut rng);
        Ok(Self {
            task,
            x_train: Tensor::from_slice(&data.x_train, (n_train, d), &device)?,
            y_train: y(&data.y_train)?,
            x_test: Tensor::from_slice(&data.x_test, (data.n_test(), d), &device)?,
            y_test: y(&data.y_test)?,
            n_train,
            order,
            cursor: 0,
            rng,
            step: 0,
            epoch_loss_sum: 0.0,
            epoch_batches: 0,
            batch_loss: f64::NAN,
            history: Vec::new(),
            mean_baseline_rmse,
            last_good: LastGood::default(),
            layers,
            names,
            optimizer,
            device,
            config,
        })
    }

    /// The network's output: `[n, 1]` for regression, logits `[n, classes]` for classification.
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        forward_layers(&self.layers, self.config.activation, x, &mut Probe::off())
    }

    /// Mean loss over rows: squared error, or cross-entropy of the softmax.
    fn loss(&self, out: &Tensor, y: &Tensor) -> candle_core::Result<Tensor> {
        match self.task {
            Task::Regression => out.squeeze(1)?.sub(y)?.sqr()?.mean_all(),
            Task::Classification { .. } => {
                // log softmax = logits - logsumexp(logits), stabilised by the row maximum.
                let max = out.max_keepdim(1)?;
                let shifted = out.broadcast_sub(&max)?;
                let lse = shifted.exp()?.sum_keepdim(1)?.log()?;
                let log_p = shifted.broadcast_sub(&lse)?;
                let picked = log_p.gather(&y.unsqueeze(1)?, 1)?;
                picked.neg()?.mean_all()
            }
        }
    }

    /// Loss and (RMSE or accuracy) over a whole split.
    fn evaluate(&self, x: &Tensor, y: &Tensor) -> candle_core::Result<(f64, f64)> {
        if x.dim(0)? == 0 {
            return Ok((f64::NAN, f64::NAN));
        }
        let out = self.forward(x)?;
        let loss = f64::from(self.loss(&out, y)?.to_scalar::<f32>()?);
        let quality = match self.task {
            Task::Regression => loss.sqrt(),
            Task::Classification { .. } => {
                let predicted = out.argmax_keepdim(D::Minus1)?.squeeze(1)?;
                let correct = predicted.eq(y)?.to_dtype(DType::F32)?.mean_all()?.to_scalar::<f32>()?;
                f64::from(correct)
            }
        };
        Ok((loss, quality))
    }

    fn finish_epoch(&mut self) -> Result<(), TrainError> {
        let (train_loss, train_q) = self.evaluate(&self.x_train, &self.y_train)?;
        let (test_loss, test_q) = self.evaluate(&self.x_test, &self.y_test)?;
        let quality = match self.task {
            Task::Regression => "rmse",
            Task::Classification { .. } => "accuracy",
        };
        let mut metrics = vec![
            ("batch_loss_mean".to_owned(), self.epoch_loss_sum / self.epoch_batches.max(1) as f64),
            ("train_loss".to_owned(), train_loss),
            ("test_loss".to_owned(), test_loss),
            (format!("train_{quality}"), train_q),
            (format!("test_{quality}"), test_q),
        ];
        if let Some(b) = self.mean_baseline_rmse {
            metrics.push(("mean_predictor_test_rmse".to_owned(), b));
        }
        self.history.push(EpochRecord { epoch: self.history.len() + 1, metrics });
        self.epoch_loss_sum = 0.0;
        self.epoch_batches = 0;
        self.order.shuffle(&mut self.rng);
        self.cursor = 0;
        Ok(())
    }

    fn steps_per_epoch(&self) -> usize {
        self.n_train.div_ceil(self.config.batch_size)
    }

    /// Predictions for rows of standardised features `[n, d]`: the value (regression) or class index.
    pub fn predict(&self, x: &[f32]) -> Result<Vec<f32>, TrainError> {
        let d = self.x_train.dim(1)?;
        let n = x.len() / d.max(1);
        let out = self.forward(&Tensor::from_slice(x, (n, d), &self.device)?)?;
        Ok(match self.task {
            Task::Regression => out.squeeze(1)?.to_vec1()?,
            Task::Classification { .. } => {
                out.argmax_keepdim(D::Minus1)?.squeeze(1)?.to_dtype(DType::F32)?.to_vec1()?
            }
        })
    }
}

/// The network's output for `x` (see [`MlpTrainer::forward`]), each layer's pre-activations and activations
/// checked with `probe`.
fn forward_layers(
    layers: &[(Var, Var)],
    activation: Activation,
    x: &Tensor,
    probe: &mut Probe,
) -> candle_core::Result<Tensor> {
    let mut h = x.clone();
    let last = layers.len() - 1;
    for (i, (w, b)) in layers.iter().enumerate() {
        h = h.matmul(w.as_tensor())?.broadcast_add(b.as_tensor())?;
        probe.check(&h, || format!("layer {}'s pre-activations", i + 1))?;
        if i < last {
            h = activation.apply(&h)?;
            probe.check(&h, || format!("layer {}'s activations", i + 1))?;
        }
    }
    Ok(h)
}

/// Where the pass that computes the loss of `x` against `y` first holds a NaN or an infinity: for the NaN guard.
fn locate_non_finite(layers: &[(Var, Var)], activation: Activation, task: Task, x: &Tensor, y: &Tensor) -> Located {
    let mut probe = Probe::on();
    let out = forward_layers(layers, activation, x, &mut probe)?;
    if task == Task::Regression {
        // The squared errors before their mean (the cross-entropy's terms are the loss's own).
        probe.check(&out.squeeze(1)?.sub(y)?.sqr()?, || "the squared errors".to_owned())?;
    }
    Ok(probe.found())
}

impl Trainer for MlpTrainer {
    fn step(&mut self) -> Result<(), TrainError> {
        if self.finished() {
            return Ok(());
        }
        let end = (self.cursor + self.config.batch_size).min(self.n_train);
        let idx: Vec<u32> = self.order[self.cursor..end].iter().map(|&i| i as u32).collect();
        let idx = Tensor::from_slice(&idx, idx.len(), &self.device)?;
        let x = self.x_train.index_select(&idx, 0)?; // [batch, d]
        let y = self.y_train.index_select(&idx, 0)?; // [batch]
        let out = self.forward(&x)?;
        let loss = self.loss(&out, &y)?;
        let step = self.step + 1;
        let vars: Vec<Var> = self.layers.iter().flat_map(|(w, b)| [w.clone(), b.clone()]).collect();
        let (layers, activation, task) = (&self.layers, self.config.activation, self.task);
        // On failure nothing below runs: the step is not counted and the cursor stays on this minibatch.
        self.batch_loss = guarded_step(
            &mut self.optimizer,
            &vars,
            &self.names,
            &mut self.last_good,
            &loss,
            "the loss",
            step,
            || locate_non_finite(layers, activation, task, &x, &y),
        )?;
        self.step = step;
        self.epoch_loss_sum += self.batch_loss;
        self.epoch_batches += 1;
        self.cursor = end;
        if self.cursor >= self.n_train {
            self.finish_epoch()?;
        }
        Ok(())
    }

    fn finished(&self) -> bool {
        self.history.len() >= self.config.epochs
    }

    fn snapshot(&self) -> RunSnapshot {
        RunSnapshot {
            lab: Lab::Bnn,
            epoch: self.history.len(),
            total_epochs: self.config.epochs,
            step: self.step,
            steps_per_epoch: self.steps_per_epoch(),
            learning_rate: self.optimizer.learning_rate,
            batch_loss: self.batch_loss,
            history: self.history.clone(),
            model: None,
        }
    }

    fn set_learning_rate(&mut self, learning_rate: f64) {
        self.optimizer.learning_rate = learning_rate;
    }

    fn epochs_done(&self) -> usize {
        self.history.len()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::{MlpConfig, MlpTrainer};
    use crate::Lab;
    use crate::compute::TrainError;
    use crate::compute::cpu::guard::testing::{poke, values};
    use crate::data::BuiltinFile;
    use crate::data::prepare::{default_spec_for_lab, prepare};
    use crate::models::trainer::Trainer;

    /// A NaN or a huge value put into one layer after two steps: the guard names where the pass first holds a
    /// NaN or an infinity, the weights go back to their values before step 2, and the failed step does not count.
    #[test]
    fn the_guard_names_where_an_injected_non_finite_value_first_appears() {
        let table = BuiltinFile::WineRed.load().expect("red wine");
        let data = Arc::new(prepare(&table, &default_spec_for_lab(Lab::Bnn, &table)).expect("red wine prepares"));
        let cases = [
            ("layer 2 weights", Some(3), f32::NAN, "layer 2's pre-activations"),
            // Outputs of about 1e31, whose squares are not finite.
            ("layer 3 biases", None, 1e31, "the squared errors"),
        ];
        for (name, index, value, expected) in cases {
            let config = MlpConfig { batch_size: 64, epochs: 2, ..MlpConfig::default() };
            let mut trainer = MlpTrainer::new(config, &data).expect("a network");
            trainer.step().expect("step 1");
            let vars = |t: &MlpTrainer| t.layers.iter().flat_map(|(w, b)| [w.clone(), b.clone()]).collect::<Vec<_>>();
            let before_step_2 = values(&vars(&trainer));
            trainer.step().expect("step 2");
            poke(&vars(&trainer), &trainer.names, name, index, value);
            let bookkeeping = |t: &MlpTrainer| {
                (t.step, t.cursor, t.epoch_loss_sum.to_bits(), t.epoch_batches, t.batch_loss.to_bits())
            };
            let before = bookkeeping(&trainer);
            let what = format!("{name}[{index:?}] = {value}");
            let error = trainer.step().expect_err(&what);
            assert_eq!(error, TrainError::NonFinite { location: expected.to_owned(), step: 3 }, "{what}");
            assert!(values(&vars(&trainer)) == before_step_2, "{what}: not the values before step 2");
            assert_eq!(bookkeeping(&trainer), before, "{what}: the failed step left a trace");
            trainer.step().unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!((trainer.step, trainer.cursor), (3, 3 * 64), "{what}: the next step takes the same minibatch");
        }
    }
}
