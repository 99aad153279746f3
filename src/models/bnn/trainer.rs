//! Training the BNN: [`BnnModel`] (its step on a minibatch and its figures at an epoch's end) in the shared loop,
//! as [`BnnTrainer`], on the seeded subset of the training rows a run uses ([`train_subset`]).

use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::Lab;
use crate::compute::TrainError;
use crate::data::prepare::{OutputKind, Prepared};
use crate::models::ModelView;
use crate::models::bnn::{
    BnnConfig, BnnNet, BnnParams, BnnTask, BnnView, MAX_HISTORY, ParamHistory, Predictive, evaluation_metrics,
    predictive_cpu,
};
use crate::models::stats::mean_and_sd;
use crate::models::trainer::{EpochEnd, EpochLoop, EpochModel, EpochTrainer, Minibatch, StepLoss, Variables};

/// The BNN's side of its training: the network, the training rows in use and the posterior's history.
pub struct BnnModel {
    config: BnnConfig,
    net: BnnNet,
    data: Arc<Prepared>,
    x_train: Tensor, // [n_used, d]
    y_train: Tensor, // [n_used] f32 or u32
    /// The training rows in use (the seeded subset), indices into the training split.
    used_rows: Vec<usize>,
    params_history: Arc<ParamHistory>,
}

/// The BNN and its training state: a [`BnnModel`] in the shared loop. Its loss terms, averaged per epoch, are the
/// data term, the KL term and their sum.
pub type BnnTrainer = EpochTrainer<BnnModel, 3>;

impl BnnTrainer {
    /// Builds the network for `data` (which must have an output column and at least one training row).
    pub fn new(config: BnnConfig, data: &Arc<Prepared>) -> Result<Self, TrainError> {
        let Some((_, kind)) = &data.output else {
            return Err(TrainError::Data("the BNN needs a target or label column".into()));
        };
        let task = match kind {
            OutputKind::Regression => BnnTask::Regression(config.head),
            OutputKind::Classes { classes, .. } => BnnTask::Classification { n_classes: classes.len().max(2) },
        };
        let d = data.n_features();
        let n_train = data.n_train();
        if n_train == 0 || d == 0 {
            return Err(TrainError::Data("no training rows or no features".into()));
        }
        if config.batch_size == 0 {
            return Err(TrainError::Data("the batch size must be at least 1".into()));
        }
        if !(config.train_fraction > 0.0 && config.train_fraction <= 1.0) {
            return Err(TrainError::Data("the training fraction must be in (0, 1]".into()));
        }
        let used_rows = train_subset(n_train, config.train_fraction, config.seed);
        let device = Device::Cpu;
        let x: Vec<f32> = used_rows.iter().flat_map(|&i| data.x_train[i * d..(i + 1) * d].iter().copied()).collect();
        let y: Vec<f32> = used_rows.iter().map(|&i| data.y_train[i]).collect();
        let y_train = match task {
            BnnTask::Classification { .. } => {
                let idx: Vec<u32> = y.iter().map(|&c| c as u32).collect();
                Tensor::from_vec(idx, y.len(), &device)?
            }
            BnnTask::Regression(_) => Tensor::from_vec(y.clone(), y.len(), &device)?,
        };
        let regression = matches!(task, BnnTask::Regression(_));
        let net = BnnNet::new(&config, d, task, regression.then(|| mean_and_sd(&y)), DType::F32)?;
        let (vars, names) = net.vars();
        let variables = Variables::new(vars, names, config.optimizer, config.learning_rate)?;
        let rng = ChaCha8Rng::seed_from_u64(config.seed ^ 0x005e_edb4);
        let epochs = EpochLoop::new(used_rows.len(), config.batch_size, config.epochs, rng);
        let initial = Arc::new(net.params()?.without_scales());
        let model = BnnModel {
            x_train: Tensor::from_vec(x, (used_rows.len(), d), &device)?,
            y_train,
            used_rows,
            params_history: Arc::new(vec![(0, initial)]),
            data: Arc::clone(data),
            net,
            config,
        };
        Ok(Self { model, variables, epochs })
    }

    /// Training rows in use.
    #[must_use]
    pub fn n_used(&self) -> usize {
        self.model.used_rows.len()
    }

    /// The posterior now, as plain data.
    pub fn params(&self) -> Result<BnnParams, TrainError> {
        Ok(self.model.net.params()?)
    }

    /// Monte Carlo predictions on the test split with `n_samples` samples (seeded by `seed`), on the CPU.
    pub fn test_predictive(&self, n_samples: usize, seed: u64) -> Result<Predictive, TrainError> {
        let params = self.model.net.params()?;
        Ok(predictive_cpu(&params, &self.model.data.x_test, &self.model.data.y_test, n_samples, seed))
    }
}

impl EpochModel<3> for BnnModel {
    const LAB: Lab = Lab::Bnn;

    fn train_on(&mut self, batch: &mut Minibatch, variables: &mut Variables) -> Result<StepLoss<3>, TrainError> {
        let x = batch.select(&self.x_train)?; // [batch, d]
        let y = batch.select(&self.y_train)?; // [batch]
        let eps = self.net.draw_noise(&mut batch.rng)?;
        let n_train = self.used_rows.len();
        let terms = self.net.loss(&x, &y, &eps, n_train)?;
        let net = &self.net;
        let total = variables.guarded_step(&terms.total, "the loss (data term + KL)", batch.step, || {
            net.locate_non_finite(&x, &y, &eps, n_train)
        })?;
        let data = f64::from(terms.data.to_dtype(DType::F32)?.to_scalar::<f32>()?);
        let kl = f64::from(terms.kl.to_dtype(DType::F32)?.to_scalar::<f32>()?);
        Ok(StepLoss { total, terms: [data, kl, total] })
    }

    fn end_epoch(&mut self, end: &EpochEnd<3>) -> Result<Vec<(String, f64)>, TrainError> {
        let params = self.net.params()?;
        let [data_loss, kl_loss, loss] = end.means;
        let mut metrics =
            vec![("data_loss".to_owned(), data_loss), ("kl_loss".to_owned(), kl_loss), ("loss".to_owned(), loss)];
        metrics.extend(evaluation_metrics(&params, &self.config, &self.data, &self.used_rows, end.epoch));
        let history = Arc::make_mut(&mut self.params_history);
        history.push((end.epoch, Arc::new(params.without_scales())));
        crate::models::trainer::thin_history(history, MAX_HISTORY);
        Ok(metrics)
    }

    fn restore_extra(&mut self, extra: &[(String, Vec<f32>)], view: Option<&ModelView>) -> Result<(), String> {
        if let Some((name, _)) = extra.first() {
            return Err(format!("the BNN keeps no {name}"));
        }
        if let Some(ModelView::Bnn { view, .. }) = view {
            self.params_history = Arc::clone(&view.history);
        }
        Ok(())
    }

    fn model_view(&self, step: u64) -> Option<ModelView> {
        let params = self.net.params().ok()?;
        Some(ModelView::Bnn {
            step,
            view: Arc::new(BnnView { params: Arc::new(params), history: Arc::clone(&self.params_history) }),
        })
    }
}

/// The seeded subset of `0..n_train` holding `fraction` of it (at least one row), in increasing order.
#[must_use]
pub fn train_subset(n_train: usize, fraction: f64, seed: u64) -> Vec<usize> {
    if fraction >= 1.0 {
        return (0..n_train).collect();
    }
    let keep = ((n_train as f64 * fraction).round() as usize).clamp(1, n_train);
    let mut all: Vec<usize> = (0..n_train).collect();
    all.shuffle(&mut ChaCha8Rng::seed_from_u64(seed ^ 0x0005_0b5e));
    let mut kept = all[..keep].to_vec();
    kept.sort_unstable();
    kept
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::Lab;
    use crate::data::BuiltinFile;
    use crate::data::prepare::{default_spec_for_lab, prepare};
    use crate::models::bnn::{BnnConfig, BnnTrainer, Posterior};
    use crate::models::trainer::testing::assert_the_guard_catches;

    /// A NaN, an infinity or a huge value put into one layer's variables after two steps, in a mean-field network
    /// and in the deterministic baseline: the third step fails, the guard names the quantity where the pass first
    /// holds a NaN or an infinity, the variables go back to their values before step 2, and nothing of the failed
    /// step counts (not the step, the cursor, the epoch's sums nor the weight draws): the next step, at a lower rate,
    /// redoes it ([`assert_the_guard_catches`]).
    #[test]
    fn the_guard_names_where_an_injected_non_finite_value_first_appears() {
        use Posterior::{Deterministic, MeanField};

        let table = BuiltinFile::WineRed.load().expect("red wine");
        let data = Arc::new(prepare(&table, &default_spec_for_lab(Lab::Bnn, &table)).expect("red wine prepares"));
        // (posterior, variable, element (all when None), value, what the guard must name)
        let cases = [
            (MeanField, "layer 2 posterior means", Some(0), f32::INFINITY, "layer 2's weight sample"),
            // Finite weights whose products with layer 1's activations (sigmoids, about 0.5) add up past f32.
            (MeanField, "layer 2 posterior means", None, 3e38, "layer 2's pre-activations"),
            // Outputs of about 1e31, whose squared errors are not finite.
            (MeanField, "layer 3 posterior means", None, 1e30, "the likelihood term"),
            // Standard deviations of 1e20: finite draws, saturated sigmoids, but squares past f32 in the KL.
            (MeanField, "layer 1 posterior scales", None, 1e20, "layer 1's KL term"),
            // The baseline's weights are its means, checked as the sample they stand for.
            (Deterministic, "layer 2 posterior means", Some(3), f32::NAN, "layer 2's weight sample"),
            (Deterministic, "layer 3 posterior means", None, 1e31, "the likelihood term"),
        ];
        for (posterior, name, index, value, expected) in cases {
            let config = BnnConfig {
                hidden: vec![4, 4],
                posterior,
                batch_size: 64,
                epochs: 2,
                predictive_samples: 5,
                ..BnnConfig::default()
            };
            let mut trainer = BnnTrainer::new(config, &data).expect("a BNN");
            let what = format!("{posterior:?}, {name}[{index:?}] = {value}");
            assert_the_guard_catches(&mut trainer, (name, index, value, expected), 64, 1e-3, |_| (), &what);
        }
    }
}
