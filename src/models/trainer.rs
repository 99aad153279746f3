//! The contract between a model and the worker thread that trains it: [`Trainer`] (one step, the snapshot, the
//! learning rate), the plain-data [`RunSnapshot`] and [`EpochRecord`] the views draw (with a [`ModelView`], a copy of
//! the parameters) and [`thin_history`] for bounded per-epoch histories. Every model in `models` implements
//! [`Trainer`]; `train` runs it on its own thread and re-exports these types.
//!
//! The loop every model trains by is written once, here: [`EpochTrainer`] owns the bookkeeping ([`EpochLoop`]: the
//! seeded minibatch order and its cursor, the step and epoch counters, the epoch's loss sums and the history), the
//! variables with their optimiser and NaN guard ([`Variables`]), and the model, which supplies what is its own
//! ([`EpochModel`]): one step on a minibatch, and its figures at an epoch's end.

use candle_core::{Device, Tensor, Var};
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::Lab;
use crate::compute::TrainError;
use crate::compute::cpu::guard::{LastGood, Located, check_loss};
use crate::compute::cpu::optim::{FlatGradients, Optimizer, OptimizerKind, guarded_step};
use crate::models::ModelView;
use crate::models::resume::{LoopState, RngState, TrainState, VariableState};

/// One epoch's figures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based epoch.
    pub epoch: usize,
    /// Named metrics (`train_loss`, `test_rmse`, ...), in a stable order.
    pub metrics: Vec<(String, f64)>,
}

impl EpochRecord {
    /// The value of a metric.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<f64> {
        self.metrics.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }
}

/// What a run looks like now: plain data the UI can draw.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunSnapshot {
    /// Which lab's model.
    pub lab: Lab,
    /// Epochs completed.
    pub epoch: usize,
    /// Epochs the run is set to last.
    pub total_epochs: usize,
    /// Optimisation steps taken in all.
    pub step: u64,
    /// Steps in one epoch.
    pub steps_per_epoch: usize,
    /// Learning rate in use.
    pub learning_rate: f64,
    /// Loss of the latest minibatch.
    pub batch_loss: f64,
    /// Every completed epoch, oldest first.
    pub history: Vec<EpochRecord>,
    /// A plain-data copy of the model for the views; refreshed at most every [`MODEL_VIEW_INTERVAL_SECS`]
    /// while running, and at once on a step, a pause or an epoch's end.
    #[serde(skip)]
    pub model: Option<ModelView>,
}

/// Seconds between copies of the model's parameters while a run is going.
pub const MODEL_VIEW_INTERVAL_SECS: f64 = 0.4;

impl RunSnapshot {
    /// The factor `schedule` puts on the set rate for the run's next step: its factor after the steps taken of all
    /// the run's steps (as [`EpochTrainer`]'s step sets it).
    #[must_use]
    pub fn rate_factor(&self, schedule: LrSchedule) -> f64 {
        schedule.factor(self.step, (self.total_epochs * self.steps_per_epoch) as u64)
    }

    /// The rate the run's next step takes under `schedule`: the set rate times [`Self::rate_factor`].
    #[must_use]
    pub fn rate_now(&self, schedule: LrSchedule) -> f64 {
        self.learning_rate * self.rate_factor(schedule)
    }

    /// Fraction of the run done, 0 to 1.
    #[must_use]
    pub fn fraction(&self) -> f32 {
        let total = (self.total_epochs * self.steps_per_epoch.max(1)) as f32;
        if total == 0.0 { 0.0 } else { (self.step as f32 / total).min(1.0) }
    }
}

/// How the learning rate moves over a run: a factor on the set rate at each step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LrSchedule {
    /// The set rate at every step (the Keras examples').
    #[default]
    Constant,
    /// Cosine decay: the set rate at the first step, falling as ½(1 + cos(π t / T)) to nearly 0 at the last of the
    /// run's T steps. The last epochs then take ever smaller steps and settle in a minimum, where a constant rate
    /// keeps jumping around it (and can end a run in the middle of a spike).
    Cosine,
}

impl LrSchedule {
    /// Both, in menu order.
    pub const ALL: [Self; 2] = [Self::Constant, Self::Cosine];

    /// The factor on the set rate for the step after `done` of the run's `total` steps (a continued run's total is
    /// its new one, so the decay stretches over it).
    #[must_use]
    pub fn factor(self, done: u64, total: u64) -> f64 {
        match self {
            Self::Constant => 1.0,
            Self::Cosine if total == 0 => 1.0,
            Self::Cosine => {
                let t = (done as f64 / total as f64).min(1.0);
                0.5 * (1.0 + (std::f64::consts::PI * t).cos())
            }
        }
    }

    /// Name shown to the user.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Constant => "Constant",
            Self::Cosine => "Cosine decay to 0",
        }
    }

    /// What run files written before the choice existed were trained with.
    #[must_use]
    pub fn before_choice() -> Self {
        Self::Constant
    }
}

/// A model being trained. Implemented by each lab's model; owned by one worker thread.
pub trait Trainer: Send {
    /// Takes one optimisation step (one minibatch). On error the parameters are unchanged.
    fn step(&mut self) -> Result<(), TrainError>;
    /// True when the configured number of epochs is done.
    fn finished(&self) -> bool;
    /// The latest state as plain data.
    fn snapshot(&self) -> RunSnapshot;
    /// Sets the learning rate for the following steps.
    fn set_learning_rate(&mut self, learning_rate: f64);
    /// Completed epochs, oldest first (the last one also comes as the worker's `EpochDone` event).
    fn epochs_done(&self) -> usize;
    /// A plain-data copy of the parameters for the views, if the model offers one. Called at most every
    /// [`MODEL_VIEW_INTERVAL_SECS`] while running, so it may copy.
    fn model_view(&self) -> Option<ModelView> {
        None
    }
    /// The metric of an epoch's record that measures the model on rows it does not train on, where the model at
    /// that metric's lowest ([`lowest_held_out`]) is worth keeping: the flow's held-out NLL and the VAE's test
    /// negative ELBO, which their overfitting notes offer to show. `None` for the others.
    fn held_out_metric(&self) -> Option<&'static str> {
        None
    }
    /// The whole training state, from which the run continues exactly (see [`TrainState`]); taken between steps.
    ///
    /// # Errors
    /// When this trainer cannot be continued (a replayed run) or a copy fails.
    fn train_state(&self) -> Result<TrainState, TrainError> {
        Err(TrainError::Data("this run cannot be continued: it has no training state".into()))
    }
}

/// A step's loss: the minibatch's loss, and the `TERMS` terms [`EpochLoop`] sums over the epoch, whose means start
/// the epoch's record (the total among them, where a loss has parts).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepLoss<const TERMS: usize> {
    /// The minibatch's loss, what the step minimised (the snapshot's `batch_loss`).
    pub total: f64,
    /// The terms summed over the epoch.
    pub terms: [f64; TERMS],
}

/// The minibatch of one step, from [`EpochLoop::next_batch`].
#[derive(Debug)]
pub struct Minibatch {
    /// Indices of the rows, in the epoch's shuffled order: `[rows]` u32, for `index_select` on dimension 0.
    pub index: Tensor,
    /// The number of the step this minibatch is for (1-based; the NaN guard names it).
    pub step: u64,
    /// Epochs done before this step, the current one's fraction included (a KL weight's schedule reads it).
    pub progress: f64,
    /// The generator for the step's own draws (weight or latent noise): a copy of the loop's, kept by
    /// [`EpochLoop::commit`] only when the step succeeds, so a failed step leaves no trace and the next one redoes
    /// it exactly.
    pub rng: ChaCha8Rng,
    /// Where the cursor goes once the step is committed.
    end: usize,
}

impl Minibatch {
    /// Rows of `rows_of` (`[n, ...]`) in this minibatch: `[batch, ...]`.
    pub fn select(&self, rows_of: &Tensor) -> candle_core::Result<Tensor> {
        rows_of.index_select(&self.index, 0)
    }

    /// Rows in the minibatch.
    #[must_use]
    pub fn len(&self) -> usize {
        self.index.elem_count()
    }

    /// True for a minibatch without rows (never handed out by [`EpochLoop`]).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An epoch that has just ended, for [`EpochModel::end_epoch`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpochEnd<const TERMS: usize> {
    /// Its number, 1-based.
    pub epoch: usize,
    /// The mean over its minibatches of each of [`StepLoss::terms`].
    pub means: [f64; TERMS],
}

/// The bookkeeping of minibatch training, the same for every model: epochs of `batch_size`-row minibatches in an
/// order shuffled by a seeded generator (at the start and after each epoch), the step and epoch counters, each
/// epoch's sums of the loss terms, the latest minibatch's loss and every epoch's record. The same generator serves
/// the steps' own draws ([`Minibatch::rng`]), so a run's random numbers come in one seeded sequence: the first
/// order, each step's draws, the next epoch's order, and so on.
#[derive(Clone, Debug)]
pub struct EpochLoop<const TERMS: usize> {
    total_epochs: usize,
    batch_size: usize,
    /// Indices of the training rows in this epoch's order.
    order: Vec<usize>,
    /// Rows of `order` this epoch has taken.
    cursor: usize,
    rng: ChaCha8Rng,
    /// Optimisation steps taken in all.
    step: u64,
    /// This epoch's sums of the loss terms, and the minibatches they add up.
    sums: [f64; TERMS],
    batches: usize,
    batch_loss: f64,
    history: Vec<EpochRecord>,
}

impl<const TERMS: usize> EpochLoop<TERMS> {
    /// A loop of `total_epochs` epochs over `n_rows` training rows in minibatches of `batch_size` (at least 1),
    /// its first order shuffled by `rng`, which it keeps.
    #[must_use]
    pub fn new(n_rows: usize, batch_size: usize, total_epochs: usize, mut rng: ChaCha8Rng) -> Self {
        let mut order: Vec<usize> = (0..n_rows).collect();
        order.shuffle(&mut rng);
        Self {
            total_epochs,
            batch_size: batch_size.max(1),
            order,
            cursor: 0,
            rng,
            step: 0,
            sums: [0.0; TERMS],
            batches: 0,
            batch_loss: f64::NAN,
            history: Vec::new(),
        }
    }

    /// True when the configured number of epochs is done.
    #[must_use]
    pub fn finished(&self) -> bool {
        self.history.len() >= self.total_epochs
    }

    /// True when every row of this epoch has been taken and the epoch awaits [`Self::close_epoch`].
    #[must_use]
    pub fn epoch_complete(&self) -> bool {
        self.cursor >= self.order.len()
    }

    /// Completed epochs.
    #[must_use]
    pub fn epochs_done(&self) -> usize {
        self.history.len()
    }

    /// Optimisation steps taken in all.
    #[must_use]
    pub fn step(&self) -> u64 {
        self.step
    }

    /// Rows of this epoch's order taken so far.
    #[must_use]
    pub fn cursor(&self) -> usize {
        self.cursor
    }

    /// Minibatches in one epoch.
    #[must_use]
    pub fn steps_per_epoch(&self) -> usize {
        self.order.len().div_ceil(self.batch_size)
    }

    /// Steps in the whole run, as it is set now.
    #[must_use]
    pub fn total_steps(&self) -> u64 {
        (self.total_epochs * self.steps_per_epoch()) as u64
    }

    /// Epochs done, this one's fraction included: `epochs_done + batches / steps_per_epoch`.
    #[must_use]
    pub fn progress(&self) -> f64 {
        let steps = self.steps_per_epoch().max(1) as f64;
        self.history.len() as f64 + self.batches as f64 / steps
    }

    /// The loss of the latest minibatch (NaN before the first step).
    #[must_use]
    pub fn batch_loss(&self) -> f64 {
        self.batch_loss
    }

    /// This epoch's sums of the loss terms and the minibatches they add up.
    #[must_use]
    pub fn epoch_sums(&self) -> ([f64; TERMS], usize) {
        (self.sums, self.batches)
    }

    /// The generator, as the next step will copy it.
    #[must_use]
    pub fn rng(&self) -> &ChaCha8Rng {
        &self.rng
    }

    /// Every completed epoch's record, oldest first.
    #[must_use]
    pub fn history(&self) -> &[EpochRecord] {
        &self.history
    }

    /// The next minibatch: the following `batch_size` rows of the order (fewer at the epoch's end), or `None` when
    /// the run is finished or the epoch awaits [`Self::close_epoch`].
    pub fn next_batch(&self) -> candle_core::Result<Option<Minibatch>> {
        if self.finished() || self.epoch_complete() {
            return Ok(None);
        }
        let end = (self.cursor + self.batch_size).min(self.order.len());
        let index: Vec<u32> = self.order[self.cursor..end].iter().map(|&i| i as u32).collect();
        Ok(Some(Minibatch {
            index: Tensor::from_vec(index, end - self.cursor, &Device::Cpu)?,
            step: self.step + 1,
            progress: self.progress(),
            rng: self.rng.clone(),
            end,
        }))
    }

    /// Counts the step `batch` was for, which succeeded with `loss`: keeps its generator, adds its terms to the
    /// epoch's sums and moves the cursor past it. Returns [`Self::epoch_complete`].
    pub fn commit(&mut self, batch: Minibatch, loss: StepLoss<TERMS>) -> bool {
        self.rng = batch.rng;
        self.batch_loss = loss.total;
        self.step = batch.step;
        for (sum, term) in self.sums.iter_mut().zip(loss.terms) {
            *sum += term;
        }
        self.batches += 1;
        self.cursor = batch.end;
        self.epoch_complete()
    }

    /// The epoch that has just ended: its number and the means of its loss terms.
    #[must_use]
    pub fn epoch_end(&self) -> EpochEnd<TERMS> {
        let batches = self.batches.max(1) as f64;
        EpochEnd { epoch: self.history.len() + 1, means: self.sums.map(|sum| sum / batches) }
    }

    /// Records the ended epoch with `metrics`, clears the sums and starts the next epoch in a fresh order.
    pub fn close_epoch(&mut self, metrics: Vec<(String, f64)>) {
        self.history.push(EpochRecord { epoch: self.history.len() + 1, metrics });
        self.sums = [0.0; TERMS];
        self.batches = 0;
        self.order.shuffle(&mut self.rng);
        self.cursor = 0;
    }

    /// The order in which each epoch from the current one to the last takes the training rows, as the loop will
    /// shuffle them, provided the steps draw nothing from [`Minibatch::rng`] (a flow's do not; a VAE's and a BNN's
    /// draw their noise there, which moves the later orders).
    #[must_use]
    pub fn orders_ahead(&self) -> Vec<Vec<u32>> {
        let mut rng = self.rng.clone();
        let mut order = self.order.clone();
        let epochs = self.total_epochs.saturating_sub(self.history.len());
        let mut orders = Vec::with_capacity(epochs);
        for epoch in 0..epochs {
            if epoch > 0 {
                order.shuffle(&mut rng);
            }
            orders.push(order.iter().map(|&i| i as u32).collect());
        }
        orders
    }

    /// The loop's position and generator (the history is the snapshot's).
    #[must_use]
    pub fn state(&self) -> LoopState {
        LoopState {
            order: self.order.iter().map(|&i| i as u32).collect(),
            cursor: self.cursor,
            rng: RngState::of(&self.rng),
            step: self.step,
            sums: self.sums.to_vec(),
            batches: self.batches,
            batch_loss: self.batch_loss,
        }
    }

    /// Puts the loop where `state` says, with `history` behind it, now to last `total_epochs` epochs.
    ///
    /// # Errors
    /// A message naming what does not fit this loop (the order is not a permutation of its rows, the cursor lies
    /// past it, the number of loss terms differs).
    pub fn restore(&mut self, state: &LoopState, history: Vec<EpochRecord>, total_epochs: usize) -> Result<(), String> {
        let n = self.order.len();
        let mut seen = vec![false; n];
        for &i in &state.order {
            match seen.get_mut(i as usize) {
                Some(s) if !*s => *s = true,
                _ => return Err(format!("the saved minibatch order is not an order of the {n} training rows")),
            }
        }
        if state.order.len() != n {
            return Err(format!("the saved minibatch order has {} rows; the data has {n}", state.order.len()));
        }
        if state.cursor > n {
            return Err(format!("the saved position {} lies past the epoch's {n} rows", state.cursor));
        }
        let Ok(sums) = <[f64; TERMS]>::try_from(state.sums.as_slice()) else {
            return Err(format!("{} loss terms are saved; the model has {TERMS}", state.sums.len()));
        };
        if history.iter().enumerate().any(|(i, r)| r.epoch != i + 1) {
            return Err("the saved epochs are not numbered 1, 2, 3, ...".into());
        }
        self.order = state.order.iter().map(|&i| i as usize).collect();
        self.cursor = state.cursor;
        self.rng = state.rng.rng();
        self.step = state.step;
        self.sums = sums;
        self.batches = state.batches;
        self.batch_loss = state.batch_loss;
        self.history = history;
        self.total_epochs = total_epochs;
        Ok(())
    }

    /// The run as plain data, without a copy of the model.
    #[must_use]
    pub fn snapshot(&self, lab: Lab, learning_rate: f64) -> RunSnapshot {
        RunSnapshot {
            lab,
            epoch: self.history.len(),
            total_epochs: self.total_epochs,
            step: self.step,
            steps_per_epoch: self.steps_per_epoch(),
            learning_rate,
            batch_loss: self.batch_loss,
            history: self.history.clone(),
            model: None,
        }
    }
}

/// A model's candle variables and what updating them takes: their names (for the NaN guard's and the optimiser's
/// messages), the optimiser, and the NaN guard's copy of the last values at which the loss was finite.
pub struct Variables {
    /// The variables, in the order the optimiser and a hand-written pass's flat gradient take them.
    pub vars: Vec<Var>,
    /// One name per variable ("layer 2 posterior means").
    pub names: Vec<String>,
    /// The optimiser; its learning rate is the run's.
    pub optimizer: Optimizer,
    /// The values the NaN guard goes back to.
    pub last_good: LastGood,
}

impl Variables {
    /// `vars` named by `names`, with a fresh `kind` optimiser at `learning_rate`.
    pub fn new(
        vars: Vec<Var>,
        names: Vec<String>,
        kind: OptimizerKind,
        learning_rate: f64,
    ) -> Result<Self, TrainError> {
        let optimizer = Optimizer::new(kind, learning_rate, &vars)?;
        Ok(Self { vars, names, optimizer, last_good: LastGood::default() })
    }

    /// One step by candle's autograd on `loss` (named `loss_name` when only the loss itself is not finite), guarded
    /// (see [`guarded_step`]); `locate` names where a failing pass first holds a NaN or an infinity. Returns the
    /// loss; on error the variables are their last good values.
    pub fn guarded_step(
        &mut self,
        loss: &Tensor,
        loss_name: &str,
        step: u64,
        locate: impl FnOnce() -> Located,
    ) -> Result<f64, TrainError> {
        let Self { vars, names, optimizer, last_good } = self;
        guarded_step(optimizer, vars, names, last_good, loss, loss_name, step, locate)
    }

    /// One step by a hand-written pass that gave `loss` and `gradients` (flat, the variables end to end): the
    /// guard's check of `loss` (as [`Self::guarded_step`]), then the update, which writes the values it replaces
    /// into the guard's copy itself.
    pub fn guarded_flat_step(
        &mut self,
        loss: f64,
        gradients: FlatGradients<'_>,
        loss_name: &str,
        step: u64,
        locate: impl FnOnce() -> Located,
    ) -> Result<(), TrainError> {
        check_loss(loss, &self.vars, &self.last_good, loss_name, step, locate)?;
        let last_good = Some(&mut self.last_good);
        self.optimizer.step_with_flat_gradients(&self.vars, &self.names, gradients, last_good, step)
    }
}

/// What a model supplies to [`EpochTrainer`]: its step on one minibatch and its figures at an epoch's end; the loop
/// around them is the trainer's. `TERMS` loss terms of each step are averaged over the epoch.
pub trait EpochModel<const TERMS: usize>: Send {
    /// The lab the model belongs to.
    const LAB: Lab;

    /// One optimisation step on `batch` (its rows by [`Minibatch::select`], its draws from [`Minibatch::rng`]),
    /// updating `variables`. On error the model and the variables are as they were (the NaN guard), and the step
    /// does not count.
    fn train_on(&mut self, batch: &mut Minibatch, variables: &mut Variables) -> Result<StepLoss<TERMS>, TrainError>;

    /// The metrics of the epoch that has just ended, starting with the named means of its loss terms. Called once
    /// per epoch, after its last step; when it fails, the trainer's next step calls it again instead of training.
    fn end_epoch(&mut self, end: &EpochEnd<TERMS>) -> Result<Vec<(String, f64)>, TrainError>;

    /// A plain-data copy of the parameters after `step` steps, for the views.
    fn model_view(&self, step: u64) -> Option<ModelView>;

    /// See [`Trainer::held_out_metric`].
    const HELD_OUT: Option<&'static str> = None;

    /// How the learning rate moves over the run (constant unless the model's settings say otherwise).
    fn lr_schedule(&self) -> LrSchedule {
        LrSchedule::Constant
    }

    /// What the model keeps outside its variables that its next steps depend on, named (the convolutional VAE's
    /// running averages); nothing for most models.
    fn extra_state(&self) -> Vec<(String, Vec<f32>)> {
        Vec::new()
    }

    /// Puts back what [`Self::extra_state`] took, and the views' histories from `view` (a copy
    /// [`Self::model_view`] made at the same step), when continuing a run.
    ///
    /// # Errors
    /// A message naming what does not fit.
    fn restore_extra(&mut self, extra: &[(String, Vec<f32>)], view: Option<&ModelView>) -> Result<(), String> {
        let _ = view;
        match extra.first() {
            None => Ok(()),
            Some((name, _)) => Err(format!("this model keeps no {name}")),
        }
    }
}

/// A model trained by the shared loop: the model (`M`), its [`Variables`] and the [`EpochLoop`]. Each lab's trainer
/// is one of these (`BnnTrainer`, `VaeTrainer`, `FlowTrainer`), with the lab's constructor and queries.
pub struct EpochTrainer<M, const TERMS: usize> {
    /// The model: networks, data and whatever its steps and evaluations need.
    pub(in crate::models) model: M,
    /// The variables, optimiser and NaN guard.
    pub(in crate::models) variables: Variables,
    /// The minibatch order, counters, sums and history.
    pub(in crate::models) epochs: EpochLoop<TERMS>,
}

impl<M, const TERMS: usize> EpochTrainer<M, TERMS> {
    /// The loop's bookkeeping.
    #[must_use]
    pub fn epoch_loop(&self) -> &EpochLoop<TERMS> {
        &self.epochs
    }
}

impl<M: EpochModel<TERMS>, const TERMS: usize> EpochTrainer<M, TERMS> {
    /// The training state now (see [`TrainState`]): copies of the variables, the optimiser's moments, the guard's
    /// copy, the loop's position and generator and the model's own state.
    pub fn train_state(&self) -> Result<TrainState, TrainError> {
        let variables = self
            .variables
            .vars
            .iter()
            .zip(&self.variables.names)
            .map(|(var, name)| {
                let t = var.as_tensor();
                Ok(VariableState {
                    name: name.clone(),
                    shape: t.dims().to_vec(),
                    values: t.to_dtype(candle_core::DType::F32)?.flatten_all()?.to_vec1()?,
                })
            })
            .collect::<candle_core::Result<_>>()?;
        Ok(TrainState {
            epochs: self.epochs.state(),
            variables,
            optimizer: self.variables.optimizer.state()?,
            last_good: self.variables.last_good.values()?,
            model: self.model.extra_state(),
        })
    }

    /// This freshly built trainer (the run's settings and data) put into `state`, with `history` behind it, set to
    /// last `total_epochs` epochs; `view` is the model's copy saved with the state, whose histories the views go on
    /// from. Its next steps are the ones the run would have taken had it never stopped.
    ///
    /// # Errors
    /// [`TrainError::Data`] naming what in the state does not fit the model the settings build.
    pub fn resume(
        mut self,
        state: &TrainState,
        history: Vec<EpochRecord>,
        total_epochs: usize,
        view: Option<&ModelView>,
    ) -> Result<Self, TrainError> {
        let unfit = |why: String| TrainError::Data(format!("the saved training state does not fit the model: {why}"));
        let vars = &self.variables.vars;
        if state.variables.len() != vars.len() {
            return Err(unfit(format!("{} variables are saved; the model has {}", state.variables.len(), vars.len())));
        }
        for ((saved, var), name) in state.variables.iter().zip(vars).zip(&self.variables.names) {
            if saved.name != *name || saved.shape != var.dims() || saved.values.len() != var.elem_count() {
                return Err(unfit(format!(
                    "the saved {} {:?} is not the model's {name} {:?}",
                    saved.name,
                    saved.shape,
                    var.dims()
                )));
            }
        }
        self.epochs.restore(&state.epochs, history, total_epochs).map_err(unfit)?;
        self.variables.optimizer.restore(&state.optimizer).map_err(unfit)?;
        self.variables.last_good.set_values(vars, state.last_good.as_deref()).map_err(unfit)?;
        for (saved, var) in state.variables.iter().zip(vars) {
            let t = var.as_tensor();
            var.set(&Tensor::from_slice(&saved.values, t.shape(), t.device())?.to_dtype(t.dtype())?)?;
        }
        self.model.restore_extra(&state.model, view).map_err(unfit)?;
        Ok(self)
    }
}

impl<M: EpochModel<TERMS>, const TERMS: usize> Trainer for EpochTrainer<M, TERMS> {
    fn step(&mut self) -> Result<(), TrainError> {
        if let Some(mut batch) = self.epochs.next_batch()? {
            let schedule = self.model.lr_schedule();
            self.variables.optimizer.rate_factor = schedule.factor(self.epochs.step(), self.epochs.total_steps());
            // On failure nothing below runs: the step is not counted and the cursor stays on this minibatch.
            let loss = self.model.train_on(&mut batch, &mut self.variables)?;
            self.epochs.commit(batch, loss);
        }
        if self.epochs.epoch_complete() && !self.epochs.finished() {
            let metrics = self.model.end_epoch(&self.epochs.epoch_end())?;
            self.epochs.close_epoch(metrics);
        }
        Ok(())
    }

    fn finished(&self) -> bool {
        self.epochs.finished()
    }

    fn snapshot(&self) -> RunSnapshot {
        self.epochs.snapshot(M::LAB, self.variables.optimizer.learning_rate)
    }

    fn set_learning_rate(&mut self, learning_rate: f64) {
        self.variables.optimizer.learning_rate = learning_rate;
    }

    fn epochs_done(&self) -> usize {
        self.epochs.epochs_done()
    }

    fn model_view(&self) -> Option<ModelView> {
        self.model.model_view(self.epochs.step())
    }

    fn held_out_metric(&self) -> Option<&'static str> {
        M::HELD_OUT
    }

    fn train_state(&self) -> Result<TrainState, TrainError> {
        EpochTrainer::train_state(self)
    }
}

/// Epochs a held-out curve is averaged over (trailing) where its lowest is looked for, so that one epoch's jump
/// neither makes nor hides it.
pub const HELD_OUT_WINDOW: usize = 5;

/// The index in `values` (a held-out figure per epoch, oldest first) where their mean over the [`HELD_OUT_WINDOW`]
/// values to it is the lowest, from the first whole window on (the earliest where two are equal); `None` before a
/// whole window, or where a value is not finite (a run stopped by a NaN).
#[must_use]
pub fn lowest_held_out(values: &[f64]) -> Option<usize> {
    if values.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let mean = |i: usize| trailing_mean(values, i);
    (HELD_OUT_WINDOW - 1..values.len()).min_by(|&a, &b| mean(a).total_cmp(&mean(b)))
}

/// The mean of `values` over the [`HELD_OUT_WINDOW`] of them to index `i` (fewer at the start).
#[must_use]
pub fn trailing_mean(values: &[f64], i: usize) -> f64 {
    let window = &values[(i + 1).saturating_sub(HELD_OUT_WINDOW)..=i];
    window.iter().sum::<f64>() / window.len() as f64
}

/// Thins a per-epoch history `(epoch, record)` that has grown past `max` entries: keeps the epochs that are
/// multiples of the smallest power-of-two stride that brings it within `max` (epoch 0 always), and the latest.
/// A long run thus stays visible from its start, evenly at a coarser step, with the newest epochs at full
/// resolution until the next thinning, and its memory stays bounded.
pub fn thin_history<T>(history: &mut Vec<(usize, T)>, max: usize) {
    let max = max.max(2);
    if history.len() <= max {
        return;
    }
    let last = history.len() - 1;
    let kept_at =
        |stride: usize| history.iter().enumerate().filter(|(i, (e, _))| *i == last || e % stride == 0).count();
    let mut stride = 2;
    while kept_at(stride) > max {
        stride *= 2;
    }
    let mut i = 0;
    history.retain(|(epoch, _)| {
        let keep = i == last || epoch % stride == 0;
        i += 1;
        keep
    });
}

/// What the trainers' tests share.
#[cfg(test)]
pub(crate) mod testing {
    use std::fmt::Debug;

    use super::{EpochModel, EpochTrainer, Trainer};
    use crate::compute::TrainError;
    use crate::compute::cpu::guard::testing::{poke, values};

    /// Steps `plain` and `averaged` (one run twice, the second keeping a weight average with `decay`) to their end,
    /// and returns what the average must then hold: the recursion a ← d a + (1 − d) w over the values `flat` reads
    /// of `plain`'s model (its weights) as each step t starts, with d = min(decay, (1 + t) / (10 + t)).
    pub(crate) fn expected_average<M: EpochModel<TERMS>, const TERMS: usize>(
        plain: &mut EpochTrainer<M, TERMS>,
        averaged: &mut EpochTrainer<M, TERMS>,
        decay: f64,
        flat: impl Fn(&EpochTrainer<M, TERMS>) -> Vec<f64>,
    ) -> Vec<f64> {
        let mut expected = flat(plain);
        let mut t = 0u64;
        while !plain.finished() {
            let started_from = flat(plain);
            plain.step().expect("step");
            averaged.step().expect("step");
            if plain.epoch_loop().step() == t {
                continue; // an epoch's close: no step taken
            }
            t = plain.epoch_loop().step();
            let d = decay.min((1.0 + t as f64) / (10.0 + t as f64));
            for (e, w) in expected.iter_mut().zip(started_from) {
                *e = d * *e + (1.0 - d) * w;
            }
        }
        assert!(averaged.finished());
        expected
    }

    /// The NaN guard's contract on a trainer with batches of `batch_size` rows: after two steps, the variable
    /// `name` (its element `index`, or all of it when `None`) is set to `value`; the third step must fail, the guard
    /// naming `expected` as where the pass first holds a NaN or an infinity; the variables must go back to their
    /// values before step 2, and nothing of the failed step may count (not the step, the cursor, the epoch's sums,
    /// the latest loss, the generator's draws, nor what `model_state` reads of the model): the next step, at
    /// `lower_rate`, redoes it on the same minibatch. `what` names the case in the messages.
    pub(crate) fn assert_the_guard_catches<M: EpochModel<TERMS>, T: PartialEq + Debug, const TERMS: usize>(
        trainer: &mut EpochTrainer<M, TERMS>,
        (name, index, value, expected): (&str, Option<usize>, f32, &str),
        batch_size: usize,
        lower_rate: f64,
        model_state: impl Fn(&M) -> T,
        what: &str,
    ) {
        trainer.step().expect("step 1");
        let before_step_2 = values(&trainer.variables.vars);
        trainer.step().expect("step 2");
        poke(&trainer.variables.vars, &trainer.variables.names, name, index, value);
        let bookkeeping = |t: &EpochTrainer<M, TERMS>| {
            let run = &t.epochs;
            let (sums, batches) = run.epoch_sums();
            let counts = (run.step(), run.cursor(), batches, run.epochs_done());
            (counts, sums.map(f64::to_bits), run.batch_loss().to_bits(), run.rng().clone(), model_state(&t.model))
        };
        let before = bookkeeping(trainer);
        let error = trainer.step().expect_err(what);
        assert_eq!(error, TrainError::NonFinite { location: expected.to_owned(), step: 3 }, "{what}");
        assert!(values(&trainer.variables.vars) == before_step_2, "{what}: not the values before step 2");
        assert!(bookkeeping(trainer) == before, "{what}: the failed step left a trace");
        trainer.set_learning_rate(lower_rate);
        trainer.step().unwrap_or_else(|e| panic!("{what}: after lowering the rate: {e}"));
        let redone = (trainer.epochs.step(), trainer.epochs.cursor());
        assert_eq!(redone, (3, 3 * batch_size), "{what}: the next step takes the same minibatch");
        assert!(trainer.epochs.batch_loss().is_finite(), "{what}");
    }
}

#[cfg(test)]
mod tests {
    use super::{LrSchedule, thin_history};

    /// The cosine factor starts at 1, is ½ halfway, falls at every step and ends near (not at) 0; a constant
    /// schedule and an empty run keep the set rate.
    /// The lowest of a held-out curve is that of its five-epoch means, from the first whole window; none before one
    /// or with a value that is not finite; the earliest of equal means.
    #[test]
    fn the_held_out_lowest_is_that_of_the_trailing_means() {
        use super::{lowest_held_out, trailing_mean};
        assert_eq!(lowest_held_out(&[3.0, 2.0, 1.0, 2.0]), None, "no whole window yet");
        // A single low epoch among high ones moves its window's mean least where it is averaged longest.
        let spike = [5.0, 5.0, 5.0, 5.0, 5.0, 0.0, 5.0, 5.0, 5.0, 5.0, 3.5, 3.5, 3.5, 3.5, 3.5];
        assert_eq!(lowest_held_out(&spike), Some(14), "the level run of 3.5s, not the single 0 (its means are 4)");
        assert!((trailing_mean(&spike, 5) - 4.0).abs() < 1e-12 && (trailing_mean(&spike, 1) - 5.0).abs() < 1e-12);
        assert_eq!(lowest_held_out(&[1.0; 8]), Some(4), "the earliest of equal means");
        assert_eq!(lowest_held_out(&[1.0, 1.0, f64::NAN, 1.0, 1.0, 1.0]), None);
    }

    #[test]
    fn the_cosine_factor_falls_from_one_to_nearly_zero() {
        let cosine = |t| LrSchedule::Cosine.factor(t, 100);
        let exactly = |x: f64, y: f64| x.to_bits() == y.to_bits();
        assert!(exactly(cosine(0), 1.0), "the first step: {}", cosine(0));
        assert!((cosine(50) - 0.5).abs() < 1e-12);
        assert!(cosine(99) > 0.0 && cosine(99) < 1e-3, "the last step: {}", cosine(99));
        assert!((0..99).all(|t| cosine(t + 1) < cosine(t)));
        assert!(cosine(100).abs() < 1e-15, "past the run's end (not reached: a continued run's total grows)");
        assert!((0..=100).all(|t| exactly(LrSchedule::Constant.factor(t, 100), 1.0)));
        assert!(exactly(LrSchedule::Cosine.factor(0, 0), 1.0));
    }

    /// A history recorded every epoch for 10,000 epochs and thinned as it grows never holds more than the limit,
    /// keeps the first and the latest epoch, and covers the run evenly: no gap wider than twice the run over the
    /// limit (a history that halved itself from the front would leave one gap of thousands of epochs after epoch 0).
    #[test]
    fn a_thinned_history_stays_bounded_keeps_both_ends_and_covers_the_run_evenly() {
        let (max, epochs) = (400, 10_000usize);
        let mut history = Vec::new();
        for epoch in 0..=epochs {
            history.push((epoch, ()));
            thin_history(&mut history, max);
            assert!(history.len() <= max, "{} entries after epoch {epoch}", history.len());
            assert_eq!((history[0].0, history[history.len() - 1].0), (0, epoch));
        }
        let widest = history.windows(2).map(|w| w[1].0 - w[0].0).max().unwrap_or(0);
        assert!(widest <= 2 * epochs / max, "widest gap {widest} epochs");
        assert!(history.len() >= max / 2, "{} entries kept", history.len());
    }

    /// Ten rows in minibatches of four: three steps an epoch (the last of two rows), every row once per epoch; the
    /// epoch's record comes after its third step, with the means of the terms over its three steps; the progress,
    /// the counters and the snapshot follow; a minibatch's draws advance the generator only when it is committed;
    /// after the last epoch the loop is finished and hands out no minibatch.
    #[test]
    fn the_loop_takes_every_row_once_an_epoch_and_averages_the_terms() {
        use rand::{Rng, SeedableRng};
        use rand_chacha::ChaCha8Rng;

        use super::{EpochEnd, EpochLoop, StepLoss};
        use crate::Lab;

        let mut run = EpochLoop::<2>::new(10, 4, 2, ChaCha8Rng::seed_from_u64(1));
        for epoch in 1..=2 {
            let mut seen = Vec::new();
            for k in 0..3 {
                let progress = (epoch - 1) as f64 + f64::from(k) / 3.0;
                assert!((run.progress() - progress).abs() < 1e-12, "epoch {epoch}, step {k}");
                let mut dropped = run.next_batch().expect("a tensor").expect("a minibatch");
                let _: u64 = dropped.rng.random();
                drop(dropped);
                let mut batch = run.next_batch().expect("a tensor").expect("a minibatch");
                assert_eq!(&batch.rng, run.rng(), "a dropped minibatch's draws are forgotten");
                let draw: u64 = batch.rng.random();
                let rows: Vec<u32> = batch.index.to_vec1().expect("indices");
                assert_eq!(rows.len(), if k < 2 { 4 } else { 2 });
                seen.extend(rows);
                let after = batch.rng.clone();
                let complete = run.commit(batch, StepLoss { total: 9.0, terms: [1.0, f64::from(k)] });
                assert_eq!(complete, k == 2);
                assert!(run.rng() == &after && draw != 0, "a committed minibatch's draws are kept");
            }
            assert!(run.next_batch().expect("no tensor").is_none(), "the epoch awaits its close");
            assert_eq!(run.epoch_end(), EpochEnd { epoch, means: [1.0, 1.0] });
            run.close_epoch(vec![("x".to_owned(), 0.0)]);
            seen.sort_unstable();
            assert_eq!(seen, (0..10).collect::<Vec<u32>>(), "epoch {epoch}: every row once");
        }
        assert!(run.finished() && run.next_batch().expect("no tensor").is_none());
        let snapshot = run.snapshot(Lab::Flow, 0.5);
        let counts = (snapshot.epoch, snapshot.step, snapshot.steps_per_epoch, snapshot.history.len());
        assert_eq!(counts, (2, 6, 3, 2));
        assert_eq!((snapshot.batch_loss, snapshot.learning_rate, snapshot.lab), (9.0, 0.5, Lab::Flow));
    }
}
