//! Training a flow: [`FlowModel`] (its step on a minibatch, by the hand-written RealNVP pass or candle's
//! autograd, and its held-out NLL at an epoch's end) in the shared loop, as [`FlowTrainer`].

use std::sync::Arc;

use candle_core::{Device, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::Lab;
use crate::compute::TrainError;
use crate::compute::cpu::coupling as coupling_cpu;
use crate::compute::cpu::optim::{FlatGradients, OptimizerKind};
use crate::compute::params::FlowParams;
use crate::data::prepare::Prepared;
use crate::models::ModelView;
use crate::models::average::WeightAverage;
use crate::models::flow::{FlowConfig, FlowKind, FlowNet};
use crate::models::trainer::{
    EpochEnd, EpochLoop, EpochModel, EpochTrainer, LrSchedule, Minibatch, StepLoss, Variables,
};

/// The flow's side of its training: the layers and the points.
pub struct FlowModel {
    config: FlowConfig,
    net: FlowNet,
    pub(super) x_train: Tensor, // [n_train, 2]
    pub(super) x_test: Tensor,  // [n_test, 2]
    /// A RealNVP takes its steps (and its held-out NLL) by [`coupling_cpu`]'s hand-written pass (the default)
    /// rather than candle's autograd: the same loss and gradients in well under half the time (BENCHMARKS.md).
    hand_written_pass: bool,
    /// The hand-written pass's buffers, reused from step to step.
    workspace: coupling_cpu::RealNvpWorkspace,
    /// The moving average of the weights ([`FlowConfig::weight_average`]): what the run evaluates, shows and saves
    /// as its model, while the steps move the weights themselves.
    average: Option<WeightAverage>,
}

/// The trainable flow: a [`FlowModel`] in the shared loop. Its one loss term is the minibatch's mean negative
/// log-likelihood.
pub type FlowTrainer = EpochTrainer<FlowModel, 1>;

impl FlowTrainer {
    /// Builds a flow for `data`, which must have exactly two (standardised) features.
    pub fn new(config: FlowConfig, data: &Arc<Prepared>) -> Result<Self, TrainError> {
        let device = Device::Cpu;
        let dim = data.n_features();
        if dim != 2 {
            return Err(TrainError::Data(format!("a flow models two columns; this data has {dim} features")));
        }
        let n_train = data.n_train();
        if n_train == 0 {
            return Err(TrainError::Data("no training rows".into()));
        }
        if config.batch_size == 0 || config.layers == 0 || config.hidden.contains(&0) {
            return Err(TrainError::Data("batch size, layers and widths must be at least 1".into()));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let (net, vars, names) = FlowNet::new(&config, dim, &mut rng)?;
        let mut variables = Variables::new(vars, names, OptimizerKind::Adam, config.learning_rate)?;
        variables.optimizer.set_epsilon(config.adam_epsilon);
        variables.optimizer.set_clip_norm(config.clip_norm);
        // The generator that drew the weights goes on to shuffle the minibatches.
        let epochs = EpochLoop::new(n_train, config.batch_size, config.epochs, rng);
        let average = match config.weight_average {
            Some(decay) => Some(WeightAverage::new(decay, &variables.vars, &variables.names)?),
            None => None,
        };
        let model = FlowModel {
            net,
            x_train: Tensor::from_slice(&data.x_train, (n_train, dim), &device)?,
            x_test: Tensor::from_slice(&data.x_test, (data.n_test(), dim), &device)?,
            hand_written_pass: true,
            workspace: coupling_cpu::RealNvpWorkspace::default(),
            average,
            config,
        };
        Ok(Self { model, variables, epochs })
    }

    /// The settings this flow was built with.
    #[must_use]
    pub fn config(&self) -> &FlowConfig {
        &self.model.config
    }

    /// Takes a RealNVP's steps by candle's autograd (`false`) instead of the hand-written pass (`true`, the
    /// default): for comparing the two.
    pub fn set_hand_written_pass(&mut self, on: bool) {
        self.model.hand_written_pass = on;
    }

    /// The live model as tensors (shares the variables): the weights the steps move, not their average.
    #[must_use]
    pub fn net(&self) -> &FlowNet {
        &self.model.net
    }

    /// The order in which each epoch of the run takes the training rows (indices into them), from the current epoch
    /// to the last: a flow's steps draw nothing at random, so its orders are fixed before its first step.
    #[must_use]
    pub fn minibatch_orders(&self) -> Vec<Vec<u32>> {
        self.epochs.orders_ahead()
    }

    /// The model as plain data (MADE weights with their masks applied): the average of the weights where the run
    /// keeps one ([`FlowConfig::weight_average`]), else the weights now.
    ///
    /// # Errors
    /// A weight that cannot be read.
    pub fn params(&self) -> Result<FlowParams, TrainError> {
        self.model.params()
    }
}

impl FlowModel {
    /// Mean negative log-likelihood over the rows of `x`, in chunks to bound memory.
    pub(super) fn mean_nll(&self, x: &Tensor) -> candle_core::Result<f64> {
        let n = x.dim(0)?;
        if n == 0 {
            return Ok(f64::NAN);
        }
        let mut sum = 0.0;
        let chunk = 4096;
        for start in (0..n).step_by(chunk) {
            let len = chunk.min(n - start);
            let lp = self.net.log_density_tensor(&x.narrow(0, start, len)?)?;
            sum -= f64::from(lp.sum_all()?.to_scalar::<f32>()?);
        }
        Ok(sum / n as f64)
    }

    /// A RealNVP with the hand-written pass switched on.
    fn takes_hand_written_pass(&self) -> bool {
        self.config.kind == FlowKind::RealNvp && self.hand_written_pass
    }

    /// The held-out points' mean NLL: by the hand-written pass when the steps take it (the same numbers as
    /// [`Self::mean_nll`] to float rounding, in a fraction of the time), else by candle.
    pub(super) fn heldout_nll(&mut self) -> Result<f64, TrainError> {
        if self.takes_hand_written_pass() && self.x_test.dim(0)? > 0 {
            let points: Vec<f32> = self.x_test.flatten_all()?.to_vec1()?;
            let (net, work) = (&self.net, &mut self.workspace);
            let nll = net.with_coupling_values(|layers| coupling_cpu::realnvp_nll(layers, net.dim(), &points, work));
            if let Some(nll) = nll.flatten() {
                return Ok(nll);
            }
        }
        Ok(self.mean_nll(&self.x_test)?)
    }

    /// See [`FlowTrainer::params`].
    fn params(&self) -> Result<FlowParams, TrainError> {
        WeightAverage::apply(self.average.as_ref(), || Ok(self.net.params()?))
    }

    /// The held-out NLL of the model: of the weights' average where the run keeps one.
    fn model_heldout_nll(&mut self) -> Result<f64, TrainError> {
        WeightAverage::apply_mut(self, |m| &mut m.average, Self::heldout_nll)
    }
}

impl EpochModel<1> for FlowModel {
    const LAB: Lab = Lab::Flow;
    const HELD_OUT: Option<&'static str> = Some("heldout_nll");

    fn train_on(&mut self, batch: &mut Minibatch, variables: &mut Variables) -> Result<StepLoss<1>, TrainError> {
        let x = batch.select(&self.x_train)?; // [batch, 2]
        let net = &self.net;
        let loss_name = "the negative log-likelihood";
        let loss = if self.takes_hand_written_pass() {
            // The same loss and gradients as candle's autograd below, by hand (models::coupling_cpu), on the
            // variables' own values and into buffers kept from the last step.
            let points: Vec<f32> = x.flatten_all()?.to_vec1()?;
            let workspace = &mut self.workspace;
            let loss = net
                .with_coupling_values(|layers| {
                    coupling_cpu::realnvp_loss_and_gradients(layers, net.dim(), &points, workspace)
                })
                .flatten()
                .ok_or_else(|| TrainError::Backend("the hand-written pass needs affine coupling layers".into()))?;
            let loss = f64::from(loss as f32);
            let gradients = FlatGradients::One(&self.workspace.gradients);
            variables.guarded_flat_step(loss, gradients, loss_name, batch.step, || net.locate_non_finite(&x))?;
            loss
        } else {
            let loss = net.log_density_tensor(&x)?.mean_all()?.neg()?;
            variables.guarded_step(&loss, loss_name, batch.step, || net.locate_non_finite(&x))?
        };
        // The step was taken: its loss, at the values it started from (the guard's copy), was finite.
        if let Some(average) = &mut self.average {
            average.update(variables.last_good.copies(), batch.step)?;
        }
        Ok(StepLoss { total: loss, terms: [loss] })
    }

    fn end_epoch(&mut self, end: &EpochEnd<1>) -> Result<Vec<(String, f64)>, TrainError> {
        let heldout = self.model_heldout_nll()?;
        // Keras logs the running mean of the minibatch losses as the training loss; so do we, which keeps an
        // epoch from costing a second pass over the data.
        let [train] = end.means;
        Ok(vec![("train_nll".to_owned(), train), ("heldout_nll".to_owned(), heldout)])
    }

    fn lr_schedule(&self) -> LrSchedule {
        self.config.lr_schedule
    }

    fn extra_state(&self) -> Vec<(String, Vec<f32>)> {
        self.average.as_ref().map(WeightAverage::state).unwrap_or_default()
    }

    fn restore_extra(&mut self, extra: &[(String, Vec<f32>)], _view: Option<&ModelView>) -> Result<(), String> {
        match WeightAverage::restore_from(&mut self.average, extra, "flow")?.first() {
            None => Ok(()),
            Some((name, _)) => Err(format!("a flow keeps no {name}")),
        }
    }

    fn model_view(&self, step: u64) -> Option<ModelView> {
        match self.params() {
            Ok(p) => Some(ModelView::Flow { step, params: Arc::new(p) }),
            Err(e) => {
                log::warn!("cannot copy the flow's parameters: {e}");
                None
            }
        }
    }
}
