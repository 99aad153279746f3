//! Training the VAE: [`VaeModel`] (its step on a minibatch, by the hand-written passes or candle's autograd, and
//! its figures at an epoch's end) in the shared loop, as [`VaeTrainer`].

use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::iter::{IntoParallelRefIterator, ParallelIterator};

use crate::Lab;
use crate::compute::TrainError;
use crate::compute::cpu::guard::{check_loss, loss_value};
use crate::compute::cpu::optim::OptimizerKind;
use crate::compute::cpu::vae::shard_bounds;
use crate::compute::cpu::{conv as conv_cpu, vae as vae_cpu};
use crate::data::prepare::{OutputKind, Prepared};
use crate::models::ModelView;
use crate::models::average::WeightAverage;
use crate::models::conv::{BatchStats, pool_stats};
use crate::models::trainer::{EpochEnd, EpochLoop, EpochModel, EpochTrainer, Minibatch, StepLoss, Variables};
use crate::models::vae::network::Networks;
use crate::models::vae::{
    ElboFigures, MAX_RECONSTRUCTIONS, RECON_IMAGES, VaeConfig, VaeNet, VaeParams, VaeView, inputs_refusal,
    knn_accuracy, vae_inputs,
};

/// The VAE's side of its training: the networks, the inputs, the hand-written passes' buffers and the
/// reconstructions kept after each epoch.
pub struct VaeModel {
    pub(super) config: VaeConfig,
    pub(super) net: VaeNet,
    n_in: usize,
    image_side: Option<usize>,
    pub(super) x_train: Tensor, // [n_train, n_in]
    x_test: Tensor,             // [n_test, n_in]
    /// Class labels of the training and test rows, when the data has a label column (for the kNN score).
    labels: Option<(Vec<u32>, Vec<u32>)>,
    /// Steps go by the hand-written passes (the default: [`vae_cpu`] for the MLP VAE, [`conv_cpu`] for the
    /// convolutional one) rather than candle's autograd: the same loss and gradients in less time (BENCHMARKS.md).
    hand_written_pass: bool,
    /// The hand-written passes' buffers, reused from step to step (one of them stays empty).
    workspace: vae_cpu::MlpVaeWorkspace,
    conv_workspace: conv_cpu::ConvVaeWorkspace,
    /// The first [`RECON_IMAGES`] test inputs `[k, n_in]`.
    originals: Tensor,
    reconstructions: Arc<Vec<(usize, Vec<f32>)>>,
    /// The moving average of the weights ([`VaeConfig::weight_average`]): what the run evaluates, shows and saves
    /// as its model, while the steps move the weights themselves.
    average: Option<WeightAverage>,
}

/// The VAE and its training state: a [`VaeModel`] in the shared loop. Its loss terms, averaged per epoch, are the
/// reconstruction term, the KL term and the loss (reconstruction + beta KL).
pub type VaeTrainer = EpochTrainer<VaeModel, 3>;

/// One shard's share of a step.
pub(super) struct Shard {
    pub(super) rows: usize,
    pub(super) recon: f64,
    pub(super) kl: f64,
    pub(super) total: f64,
    /// `None` when the loss was not finite (no backward pass then).
    pub(super) grads: Option<candle_core::backprop::GradStore>,
    pub(super) norm_stats: (BatchStats, BatchStats),
}

/// One step's inputs: the minibatch `x` `[batch, n_in]`, its latent noise `eps` `[batch, latent]`, the KL weight
/// and the step's number.
struct StepInputs<'a> {
    x: &'a Tensor,
    eps: &'a Tensor,
    beta: f64,
    step: u64,
}

/// Rows of the training split evaluated at each epoch's end (all of the test split is).
const EVAL_TRAIN_ROWS: usize = 1000;

/// What the guard names when only the VAE's loss itself is not finite.
const LOSS_NAME: &str = "the loss (reconstruction + KL)";

impl VaeTrainer {
    /// Builds the VAE for `data` (its features; a label column, if any, only colours the views and scores the
    /// latent space).
    pub fn new(config: VaeConfig, data: &Arc<Prepared>) -> Result<Self, TrainError> {
        let n_in = data.n_features();
        let n_train = data.n_train();
        if n_in == 0 || n_train == 0 {
            return Err(TrainError::Data("the VAE needs feature columns and training rows".into()));
        }
        if config.batch_size == 0 {
            return Err(TrainError::Data("the batch size must be at least 1".into()));
        }
        let (train, test, image_side) = vae_inputs(data, config.likelihood);
        if let Some(why) = inputs_refusal(config.arch, config.likelihood, n_in, image_side.is_some()) {
            return Err(TrainError::Data(why));
        }
        let net = VaeNet::new(&config, n_in, DType::F32)?;
        let (vars, names) = net.vars();
        let variables = Variables::new(vars, names, OptimizerKind::Adam, config.learning_rate)?;
        let average = average_of(&config, &variables)?;
        let rng = ChaCha8Rng::seed_from_u64(config.seed ^ 0x0000_7ae5);
        let epochs = EpochLoop::new(n_train, config.batch_size, config.epochs, rng);
        let labels = match &data.output {
            Some((_, OutputKind::Classes { .. })) => Some((
                data.y_train.iter().map(|&c| c as u32).collect(),
                data.y_test.iter().map(|&c| c as u32).collect(),
            )),
            _ => None,
        };
        let device = Device::Cpu;
        let x_test = Tensor::from_vec(test, (data.n_test(), n_in), &device)?;
        let originals = x_test.narrow(0, 0, data.n_test().min(RECON_IMAGES))?;
        let mut model = VaeModel {
            x_train: Tensor::from_vec(train, (n_train, n_in), &device)?,
            x_test,
            originals,
            reconstructions: Arc::new(Vec::new()),
            n_in,
            image_side,
            labels,
            hand_written_pass: true,
            workspace: vae_cpu::MlpVaeWorkspace::default(),
            conv_workspace: conv_cpu::ConvVaeWorkspace::default(),
            average,
            net,
            config,
        };
        model.record_reconstructions(0)?;
        Ok(Self { model, variables, epochs })
    }

    /// Whether steps take the hand-written passes (the default) or candle's autograd (for comparisons).
    pub fn set_hand_written_pass(&mut self, on: bool) {
        self.model.hand_written_pass = on;
    }

    /// Recon, KL and negative ELBO (beta 1) per input over `x`, one seeded latent draw per input. Like every figure
    /// and view of the trainer, of the model the run keeps: the weights' average where it keeps one
    /// ([`VaeConfig::weight_average`]), else the weights now.
    pub fn elbo(&self, x: &Tensor, seed: u64) -> Result<ElboFigures, TrainError> {
        self.model.averaged(|m| m.elbo(x, seed))
    }

    /// Test-split figures.
    pub fn test_elbo(&self) -> Result<ElboFigures, TrainError> {
        self.model.averaged(VaeModel::test_elbo)
    }

    /// Latent means `[n, latent]` of the training and test inputs.
    pub fn latent_means(&self) -> Result<(Vec<f32>, Vec<f32>), TrainError> {
        self.model.averaged(VaeModel::latent_means)
    }

    /// The share of test inputs whose 5 nearest training latent means (Euclidean) vote for their label; `None`
    /// without labels.
    pub fn knn5_accuracy(&self) -> Result<Option<f64>, TrainError> {
        self.model.averaged(VaeModel::knn5_accuracy)
    }

    /// `decoder(mean of encoder(x))` of the first `n` test inputs `[n, n_in]` (fewer if the split is smaller).
    pub fn test_reconstructions(&self, n: usize) -> Result<Vec<f32>, TrainError> {
        self.model.averaged(|model| {
            let x = model.x_test.narrow(0, 0, n.min(model.x_test.dim(0)?))?;
            let (mu, _) = model.net.encode(&x)?;
            Ok(model.net.decode_mean(&mu)?.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?)
        })
    }

    /// The first `n` test inputs `[n, n_in]` as the model sees them (scaled, binarised for Bernoulli).
    pub fn test_inputs(&self, n: usize) -> Result<Vec<f32>, TrainError> {
        let x_test = &self.model.x_test;
        Ok(x_test.narrow(0, 0, n.min(x_test.dim(0)?))?.flatten_all()?.to_vec1()?)
    }

    /// Mean squared error of `decoder(mean of encoder(x))` against `x` over the test inputs.
    pub fn roundtrip_mse(&self) -> Result<f64, TrainError> {
        self.model.averaged(|model| {
            let (mu, _) = model.net.encode(&model.x_test)?;
            let back = model.net.decode_mean(&mu)?;
            Ok(f64::from(back.sub(&model.x_test)?.sqr()?.mean_all()?.to_dtype(DType::F32)?.to_scalar::<f32>()?))
        })
    }

    /// The network as plain data: the weights' average where the run keeps one, else the weights now.
    pub fn params(&self) -> Result<VaeParams, TrainError> {
        self.model.averaged(VaeModel::params)
    }

    /// Inputs per row.
    #[must_use]
    pub fn n_in(&self) -> usize {
        self.model.n_in
    }

    /// The trainer of [`Self::new`] with the networks of `params` (a saved model's) in place of fresh ones, for
    /// evaluating them as the trainer does ([`Self::test_elbo`], [`Self::knn5_accuracy`]): the same figures to
    /// the last bit as the model gave when it was trained. Training from here starts a fresh optimiser.
    pub fn with_params(config: VaeConfig, data: &Arc<Prepared>, params: &VaeParams) -> Result<Self, TrainError> {
        if params.arch() != config.arch || params.latent != config.latent || params.likelihood != config.likelihood {
            return Err(TrainError::Data(format!(
                "the saved VAE ({}, latent {}, {}) is not the one the settings describe ({}, latent {}, {})",
                params.arch().cli_name(),
                params.latent,
                params.likelihood.cli_name(),
                config.arch.cli_name(),
                config.latent,
                config.likelihood.cli_name()
            )));
        }
        let mut trainer = Self::new(config, data)?;
        if params.n_in() != trainer.model.n_in {
            return Err(TrainError::Data(format!(
                "the saved VAE takes {} values per input but the data has {}",
                params.n_in(),
                trainer.model.n_in
            )));
        }
        trainer.model.net = VaeNet::from_params(params, DType::F32)?;
        let (vars, names) = trainer.model.net.vars();
        trainer.variables = Variables::new(vars, names, OptimizerKind::Adam, trainer.model.config.learning_rate)?;
        // An average of the new variables, starting at the saved weights.
        trainer.model.average = average_of(&trainer.model.config, &trainer.variables)?;
        trainer.model.reconstructions = Arc::new(Vec::new());
        trainer.model.record_reconstructions(0)?;
        Ok(trainer)
    }
}

/// The moving average of `variables` that `config` asks for, starting at their values now.
fn average_of(config: &VaeConfig, variables: &Variables) -> Result<Option<WeightAverage>, TrainError> {
    config.weight_average.map(|decay| WeightAverage::new(decay, &variables.vars, &variables.names)).transpose()
}

impl VaeModel {
    /// `f` of the model the run keeps: with the weights' average in the variables where the run keeps one (and
    /// the variables' own values back afterwards), else of the weights now.
    fn averaged<R>(&self, f: impl FnOnce(&Self) -> Result<R, TrainError>) -> Result<R, TrainError> {
        WeightAverage::apply(self.average.as_ref(), || f(self))
    }

    /// The loss and its gradients for the minibatch `x` with noise `eps`, in [`SHARDS`](super::SHARDS) parts as
    /// parallel tasks.
    pub(super) fn forward_backward_in_shards(
        &self,
        x: &Tensor,
        eps: &Tensor,
        beta: f64,
    ) -> Result<Vec<Shard>, TrainError> {
        let n = x.dim(0)?;
        let net = &self.net;
        let run = |start: usize, rows: usize| -> Result<Shard, TrainError> {
            let l = net.loss(&x.narrow(0, start, rows)?, &eps.narrow(0, start, rows)?, beta)?;
            let total = loss_value(&l.total)?;
            let grads = if total.is_finite() { Some(l.total.backward()?) } else { None };
            let (recon, kl) = (loss_value(&l.recon)?, loss_value(&l.kl)?);
            Ok(Shard { rows, recon, kl, total, grads, norm_stats: l.norm_stats })
        };
        let bounds = shard_bounds(n);
        if bounds.len() == 1 {
            return Ok(vec![run(0, n)?]);
        }
        // Rayon tasks in the pool candle's matrix products use: a shard's products run on its own worker while the
        // other is busy, and help the other shard when it is not; no thread waits spinning on another.
        bounds.par_iter().map(|&(start, rows)| run(start, rows)).collect()
    }

    /// One step by the hand-written pass ([`vae_cpu`] for the MLP VAE, [`conv_cpu`] for the convolutional one):
    /// the loss terms of the step's minibatch, after the guard's check and the update (and the convolutional VAE's
    /// running averages).
    fn hand_written_step(&mut self, variables: &mut Variables, inputs: &StepInputs) -> Result<StepLoss<3>, TrainError> {
        let StepInputs { x, eps, beta, step } = *inputs;
        let points: Vec<f32> = x.flatten_all()?.to_vec1()?;
        let noise: Vec<f32> = eps.flatten_all()?.to_vec1()?;
        let net = &self.net;
        let loss = match &net.networks {
            Networks::Mlp { .. } => {
                let work = &mut self.workspace;
                net.with_mlp_values(beta, |vae| vae_cpu::mlp_vae_loss_and_gradients(vae, &points, &noise, work))
            }
            Networks::Conv(conv) => {
                let work = &mut self.conv_workspace;
                conv.with_values(net.likelihood, beta, |vae| {
                    conv_cpu::conv_vae_loss_and_gradients(vae, &points, &noise, work)
                })
            }
        };
        let loss = loss
            .flatten()
            .ok_or_else(|| TrainError::Backend("the hand-written pass needs the VAE's variables in f32".into()))?;
        let gradients = if net.is_mlp() { self.workspace.gradients() } else { self.conv_workspace.gradients() };
        variables.guarded_flat_step(loss.total, gradients, LOSS_NAME, step, || net.locate_non_finite(x, eps, beta))?;
        if !self.net.is_mlp() {
            let stats = pool_stats(&self.conv_workspace.batch_stats());
            self.net.update_running(&stats);
        }
        Ok(StepLoss { total: loss.total, terms: [loss.recon, loss.kl, loss.total] })
    }

    /// One step by candle's autograd, in [`SHARDS`](super::SHARDS) parallel shards: the loss terms, after the
    /// guard's check and the update (and the convolutional VAE's running averages).
    fn candle_step(&mut self, variables: &mut Variables, inputs: &StepInputs) -> Result<StepLoss<3>, TrainError> {
        let StepInputs { x, eps, beta, step } = *inputs;
        let shards = self.forward_backward_in_shards(x, eps, beta)?;
        let n = x.dim(0)?;
        let share = |s: &Shard| s.rows as f64 / n as f64;
        let mean = |f: fn(&Shard) -> f64| shards.iter().map(|s| share(s) * f(s)).sum::<f64>();
        let (recon, kl, total) = (mean(|s| s.recon), mean(|s| s.kl), mean(|s| s.total));
        // The NaN guard, in its two pieces (the gradients come from the shards, not from one backward pass).
        let net = &self.net;
        let Variables { vars, names, optimizer, last_good } = variables;
        check_loss(total, vars, last_good, LOSS_NAME, step, || net.locate_non_finite(x, eps, beta))?;
        last_good.remember(vars)?;
        // The minibatch's gradient: the shards' weighted by their rows, into the first shard's store.
        let mut shards = shards;
        let mut grads = shards[0].grads.take().ok_or_else(|| TrainError::Backend("no gradients".into()))?;
        for var in vars.iter() {
            let mut sum: Option<Tensor> = None;
            for (k, shard) in shards.iter().enumerate() {
                let g = if k == 0 {
                    grads.get(var.as_tensor())
                } else {
                    shard.grads.as_ref().and_then(|g| g.get(var.as_tensor()))
                };
                if let Some(g) = g {
                    let part = (g * share(shard))?;
                    sum = Some(match sum {
                        Some(t) => (t + part)?,
                        None => part,
                    });
                }
            }
            if let Some(sum) = sum {
                grads.insert(var.as_tensor(), sum);
            }
        }
        optimizer.step(vars, names, &grads, step)?;
        let parts: Vec<(usize, &(BatchStats, BatchStats))> = shards.iter().map(|s| (s.rows, &s.norm_stats)).collect();
        self.net.update_running(&pool_stats(&parts));
        Ok(StepLoss { total, terms: [recon, kl, total] })
    }

    /// Records the reconstructions of the fixed test inputs after `epoch`.
    fn record_reconstructions(&mut self, epoch: usize) -> Result<(), TrainError> {
        if self.originals.dim(0)? == 0 {
            return Ok(());
        }
        let (mu, _) = self.net.encode(&self.originals)?;
        let back = self.net.decode_mean(&mu)?.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        let history = Arc::make_mut(&mut self.reconstructions);
        history.push((epoch, back));
        crate::models::trainer::thin_history(history, MAX_RECONSTRUCTIONS);
        Ok(())
    }

    /// The KL weight after `progress` epochs (fractional).
    fn beta_at(&self, progress: f64) -> f64 {
        self.config.beta_schedule.weight(self.config.beta, progress)
    }

    /// See [`VaeTrainer::elbo`].
    fn elbo(&self, x: &Tensor, seed: u64) -> Result<ElboFigures, TrainError> {
        let n = x.dim(0)?;
        if n == 0 {
            return Ok(ElboFigures { recon: f64::NAN, kl: f64::NAN, neg_elbo: f64::NAN });
        }
        let (mut recon, mut kl) = (0.0, 0.0);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let chunk = self.net.eval_chunk();
        for start in (0..n).step_by(chunk) {
            let len = (n - start).min(chunk);
            let xb = x.narrow(0, start, len)?;
            let eps = self.net.draw_noise(len, &mut rng)?;
            let l = self.net.eval_loss(&xb, &eps, 1.0)?;
            recon += f64::from(l.recon.to_dtype(DType::F32)?.to_scalar::<f32>()?) * len as f64;
            kl += f64::from(l.kl.to_dtype(DType::F32)?.to_scalar::<f32>()?) * len as f64;
        }
        let (recon, kl) = (recon / n as f64, kl / n as f64);
        Ok(ElboFigures { recon, kl, neg_elbo: recon + kl })
    }

    /// See [`VaeTrainer::test_elbo`].
    fn test_elbo(&self) -> Result<ElboFigures, TrainError> {
        self.elbo(&self.x_test, self.config.seed ^ 0x7e57)
    }

    /// See [`VaeTrainer::latent_means`].
    fn latent_means(&self) -> Result<(Vec<f32>, Vec<f32>), TrainError> {
        let enc = |x: &Tensor| -> Result<Vec<f32>, TrainError> {
            Ok(self.net.encode(x)?.0.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?)
        };
        Ok((enc(&self.x_train)?, enc(&self.x_test)?))
    }

    /// See [`VaeTrainer::knn5_accuracy`].
    fn knn5_accuracy(&self) -> Result<Option<f64>, TrainError> {
        let Some((train_labels, test_labels)) = &self.labels else { return Ok(None) };
        let (train, test) = self.latent_means()?;
        Ok(Some(knn_accuracy(&train, train_labels, &test, test_labels, self.config.latent, 5)))
    }

    /// See [`VaeTrainer::params`].
    pub(super) fn params(&self) -> Result<VaeParams, TrainError> {
        Ok(self.net.params(self.image_side)?)
    }
}

impl EpochModel<3> for VaeModel {
    const LAB: Lab = Lab::Vae;
    // The model at the test figure's lowest, which the overfitting note offers to show (MNIST 5k's is at epoch 36).
    const HELD_OUT: Option<&'static str> = Some("test_neg_elbo");

    fn train_on(&mut self, batch: &mut Minibatch, variables: &mut Variables) -> Result<StepLoss<3>, TrainError> {
        let x = batch.select(&self.x_train)?; // [batch, n_in]
        let eps = self.net.draw_noise(batch.len(), &mut batch.rng)?; // [batch, latent]
        let inputs = StepInputs { x: &x, eps: &eps, beta: self.beta_at(batch.progress), step: batch.step };
        let loss = if self.hand_written_pass {
            self.hand_written_step(variables, &inputs)?
        } else {
            self.candle_step(variables, &inputs)?
        };
        // The step was taken: its loss, at the values it started from (the guard's copy), was finite.
        if let Some(average) = &mut self.average {
            average.update(variables.last_good.copies(), batch.step)?;
        }
        Ok(loss)
    }

    fn end_epoch(&mut self, end: &EpochEnd<3>) -> Result<Vec<(String, f64)>, TrainError> {
        // The figures and the reconstructions are the model's the run keeps: the weights' average, where it keeps
        // one.
        WeightAverage::apply_mut(self, |m| &mut m.average, |m| m.epoch_figures(end))
    }

    fn extra_state(&self) -> Vec<(String, Vec<f32>)> {
        let mut extra = self.net.running_stats();
        extra.extend(self.average.as_ref().map(WeightAverage::state).unwrap_or_default());
        extra
    }

    fn restore_extra(&mut self, extra: &[(String, Vec<f32>)], view: Option<&ModelView>) -> Result<(), String> {
        let stats = WeightAverage::restore_from(&mut self.average, extra, "VAE")?;
        self.net.set_running_stats(&stats)?;
        if let Some(ModelView::Vae { view, .. }) = view {
            self.reconstructions = Arc::clone(&view.reconstructions);
        }
        Ok(())
    }

    fn model_view(&self, step: u64) -> Option<ModelView> {
        let params = self.averaged(Self::params).ok()?;
        let originals = self.originals.flatten_all().ok()?.to_vec1::<f32>().ok()?;
        Some(ModelView::Vae {
            step,
            view: Arc::new(VaeView {
                params: Arc::new(params),
                originals: Arc::new(originals),
                reconstructions: Arc::clone(&self.reconstructions),
            }),
        })
    }
}

impl VaeModel {
    /// The figures at an epoch's end (of the variables' values now) and the reconstructions kept.
    fn epoch_figures(&mut self, end: &EpochEnd<3>) -> Result<Vec<(String, f64)>, TrainError> {
        let epoch = end.epoch;
        let n_eval = self.x_train.dim(0)?.min(EVAL_TRAIN_ROWS);
        let train = self.elbo(&self.x_train.narrow(0, 0, n_eval)?, self.config.seed.wrapping_add(epoch as u64))?;
        let test = self.test_elbo()?;
        let [recon_loss, kl_loss, loss] = end.means;
        let mut metrics = vec![
            ("loss".to_owned(), loss),
            ("recon_loss".to_owned(), recon_loss),
            ("kl_loss".to_owned(), kl_loss),
            // The epoch's end: `epoch` whole epochs done.
            ("beta".to_owned(), self.beta_at(epoch as f64)),
            ("train_neg_elbo".to_owned(), train.neg_elbo),
            ("test_neg_elbo".to_owned(), test.neg_elbo),
            ("test_recon".to_owned(), test.recon),
            ("test_kl".to_owned(), test.kl),
        ];
        if let Some(accuracy) = self.knn5_accuracy()? {
            metrics.push(("knn5_accuracy".to_owned(), accuracy));
        }
        // KL per latent dimension over the test inputs: a dimension near 0 has collapsed to the prior.
        let (mu, logvar) = self.net.encode(&self.x_test)?;
        let per_dim = ((mu.sqr()? + logvar.exp()?)? - &logvar)?.affine(0.5, -0.5)?.mean(0)?;
        for (j, v) in per_dim.to_dtype(DType::F32)?.to_vec1::<f32>()?.iter().enumerate() {
            metrics.push((format!("kl_dim_{}", j + 1), f64::from(*v)));
        }
        self.record_reconstructions(epoch)?;
        Ok(metrics)
    }
}
