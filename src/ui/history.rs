//! A lab's models over its run, for the epoch scrubber and for "Record animation…" over the epochs: every model copy
//! the views receive, thinned as the run goes on to stay within a memory budget (the first model and the latest
//! always kept, the others spread as evenly over the epochs as the budget allows), and the scrubber above the
//! lab's views that puts one of them on show.

use std::sync::Arc;

use crate::compute::params::{FlowLayerParams, FlowParams, MlpParams};
use crate::models::bnn::BnnParams;
use crate::models::vae::{VaeNetworks, VaeParams};
use crate::ui::lab_page::together;

/// Memory a lab's history may hold (the parameters' floats). A RealNVP of the Keras example's size is about 9.5 MB
/// a model, so about 21 models; the course's MLP VAE about 2.2 MB, so about 90; the BNN of the wine data a few kB, so
/// thousands.
pub const HISTORY_BUDGET_BYTES: usize = 200 * 1024 * 1024;

const MIB: f64 = 1024.0 * 1024.0;

/// A model the history can hold: how much memory it takes.
pub trait ModelBytes {
    /// Bytes of its parameters.
    fn bytes(&self) -> usize;
}

fn mlp_floats(mlp: &MlpParams) -> usize {
    mlp.layers.iter().map(|l| l.weights.len() + l.biases.len()).sum()
}

impl ModelBytes for FlowParams {
    fn bytes(&self) -> usize {
        let floats: usize = self
            .layers
            .iter()
            .map(|layer| match layer {
                FlowLayerParams::Affine { shift, log_scale } => shift.len() + log_scale.len(),
                FlowLayerParams::Coupling { mask, scale_net, shift_net } => {
                    mask.len() + mlp_floats(scale_net) + mlp_floats(shift_net)
                }
                FlowLayerParams::Maf { made } => mlp_floats(made),
            })
            .sum();
        floats * std::mem::size_of::<f32>()
    }
}

impl ModelBytes for BnnParams {
    fn bytes(&self) -> usize {
        let floats: usize = self.layers.iter().map(|l| l.mean.len() + l.sd.len() + l.scale_tril.len()).sum();
        floats * std::mem::size_of::<f32>()
    }
}

impl ModelBytes for VaeParams {
    fn bytes(&self) -> usize {
        let floats = match &self.networks {
            VaeNetworks::Mlp { encoder, decoder } => mlp_floats(encoder) + mlp_floats(decoder),
            // The running averages of batch normalisation are kept too: two more floats per channel.
            VaeNetworks::Conv(conv) => {
                conv.n_params()
                    + conv
                        .encoder
                        .iter()
                        .chain(&conv.decoder)
                        .filter_map(|l| l.norm.as_ref())
                        .map(|n| 2 * n.gamma.len())
                        .sum::<usize>()
            }
        };
        floats * std::mem::size_of::<f32>()
    }
}

/// A worker's copy of any lab's model (the command line's `--animate` keeps these).
impl ModelBytes for crate::models::ModelView {
    fn bytes(&self) -> usize {
        match self {
            Self::Flow { params, .. } => params.bytes(),
            Self::Vae { view, .. } => view.params.bytes(),
            Self::Bnn { view, .. } => view.params.bytes(),
        }
    }
}

/// One model of the run.
#[derive(Debug)]
pub struct HistoryEntry<P> {
    /// The optimisation step it is from.
    pub step: u64,
    /// Where that is in epochs (step / steps per epoch).
    pub epoch: f64,
    /// Its parameters (shared with the snapshot it came in: no copy).
    pub params: Arc<P>,
}

impl<P> Clone for HistoryEntry<P> {
    fn clone(&self) -> Self {
        Self { step: self.step, epoch: self.epoch, params: Arc::clone(&self.params) }
    }
}

/// The run's models, oldest first, within [`HISTORY_BUDGET_BYTES`] (or the budget given).
#[derive(Debug)]
pub struct ModelHistory<P> {
    entries: Vec<HistoryEntry<P>>,
    budget_bytes: usize,
    /// The step of the model [`Self::pin`] keeps, and whether the pin put it in (rather than finding it kept).
    pinned: Option<(u64, bool)>,
}

impl<P> Clone for ModelHistory<P> {
    fn clone(&self) -> Self {
        Self { entries: self.entries.clone(), budget_bytes: self.budget_bytes, pinned: self.pinned }
    }
}

impl<P: ModelBytes> Default for ModelHistory<P> {
    fn default() -> Self {
        Self::with_budget(HISTORY_BUDGET_BYTES)
    }
}

impl<P: ModelBytes> ModelHistory<P> {
    /// An empty history holding at most `budget_bytes` of parameters (at least the first and the latest model).
    #[must_use]
    pub fn with_budget(budget_bytes: usize) -> Self {
        Self { entries: Vec::new(), budget_bytes, pinned: None }
    }

    /// The models kept, oldest first.
    #[must_use]
    pub fn entries(&self) -> &[HistoryEntry<P>] {
        &self.entries
    }

    /// The (step, epoch) of every model kept, oldest first.
    #[must_use]
    pub fn epochs(&self) -> Vec<(u64, f64)> {
        self.entries.iter().map(|e| (e.step, e.epoch)).collect()
    }

    /// Bytes held.
    #[must_use]
    pub fn bytes(&self) -> usize {
        self.entries.iter().map(|e| e.params.bytes()).sum()
    }

    /// The most it may hold.
    #[must_use]
    pub fn budget_bytes(&self) -> usize {
        self.budget_bytes
    }

    /// Forgets every model (a new run).
    pub fn clear(&mut self) {
        self.entries.clear();
        self.pinned = None;
    }

    /// Adds the model of `step` (ignored when it is not newer than the latest, a model only pinned aside), then
    /// thins the history to the budget: while over it, drops the model between the two closest neighbours (never
    /// the first, the latest or the pinned one).
    pub fn push(&mut self, step: u64, epoch: f64, params: Arc<P>) {
        // The pinned model came as the others do as well: it stays once no longer pinned.
        if let Some((pinned, inserted)) = &mut self.pinned
            && *pinned == step
        {
            *inserted = false;
        }
        // Newer than the latest that came as the others do: a model the pin alone put in may be newer still (the
        // flow's at its lowest is sent at its epoch's end, before the snapshot of a step before it is taken in).
        let pinned_alone = self.pinned.filter(|&(_, inserted)| inserted).map(|(pinned, _)| pinned);
        if self.entries.iter().rev().find(|e| Some(e.step) != pinned_alone).is_some_and(|e| e.step >= step) {
            return;
        }
        if let Err(at) = self.entries.binary_search_by_key(&step, |e| e.step) {
            self.entries.insert(at, HistoryEntry { step, epoch, params });
            self.thin();
        }
    }

    /// Keeps the model of `step` where its step falls among those kept (older than the latest as it may be: the
    /// flow's model at its lowest held-out NLL so far, sent apart from the snapshots), never thinned away, in place
    /// of the model pinned before, which goes unless it came as the others do too or is the first kept. One of
    /// that step already kept stays and is pinned.
    pub fn pin(&mut self, step: u64, epoch: f64, params: Arc<P>) {
        if self.pinned.is_some_and(|(pinned, _)| pinned == step) {
            return;
        }
        // The model pinned before goes where the pin alone put it there, unless it is the first kept (the run's
        // start as the views saw it).
        if let Some((old, true)) = self.pinned.take()
            && let Ok(i) = self.entries.binary_search_by_key(&old, |e| e.step)
            && i > 0
        {
            self.entries.remove(i);
        }
        let inserted = match self.entries.binary_search_by_key(&step, |e| e.step) {
            Ok(_) => false,
            Err(at) => {
                self.entries.insert(at, HistoryEntry { step, epoch, params });
                true
            }
        };
        self.pinned = Some((step, inserted));
        self.thin();
    }

    /// The step of the pinned model ([`Self::pin`]), while it is kept.
    #[must_use]
    pub fn pinned(&self) -> Option<u64> {
        self.pinned.map(|(step, _)| step).filter(|&step| self.entries.iter().any(|e| e.step == step))
    }

    /// Thins the history to the budget: while over it, drops the model between the two closest neighbours (never
    /// the first, the latest or the pinned one).
    fn thin(&mut self) {
        let mut bytes = self.bytes();
        while self.entries.len() > 3 && bytes > self.budget_bytes {
            let kept = self.pinned.and_then(|(step, _)| self.entries.iter().position(|e| e.step == step));
            // The inner model whose neighbours are closest: dropping it leaves the most even spacing.
            let drop = (1..self.entries.len() - 1)
                .filter(|&i| Some(i) != kept)
                .min_by(|&a, &b| {
                    let gap = |i: usize| self.entries[i + 1].epoch - self.entries[i - 1].epoch;
                    gap(a).total_cmp(&gap(b))
                })
                .unwrap_or(1);
            bytes -= self.entries.remove(drop).params.bytes();
        }
        // Three models over the budget: the kept one goes too, as any would.
        while self.entries.len() > 2 && bytes > self.budget_bytes {
            bytes -= self.entries.remove(1).params.bytes();
        }
    }

    /// The model kept nearest to `epoch`.
    #[must_use]
    pub fn nearest(&self, epoch: f64) -> Option<usize> {
        (0..self.entries.len())
            .min_by(|&a, &b| (self.entries[a].epoch - epoch).abs().total_cmp(&(self.entries[b].epoch - epoch).abs()))
    }

    /// The epoch of the model kept nearest to `epoch`: the one [`EpochScrubber::show_nearest`] would put on show.
    #[must_use]
    pub fn nearest_epoch(&self, epoch: f64) -> Option<f64> {
        self.nearest(epoch).map(|i| self.entries[i].epoch)
    }
}

/// A replay of the run's training (**Replay**, or R) takes about this long in all, each kept model on show for
/// [`REPLAY_INTERVAL`]'s bounds at most and at least.
const REPLAY_SECONDS: f64 = 10.0;
/// The shortest and longest a replay shows each kept model, in seconds.
const REPLAY_INTERVAL: (f64, f64) = (0.1, 0.6);

/// A lab's history and the epoch scrubber over it: which kept model every view of the lab shows, or the run's
/// latest; and a replay of the training, which shows each kept model in turn.
#[derive(Debug)]
pub struct EpochScrubber<P> {
    /// The run's models so far.
    pub history: ModelHistory<P>,
    /// The step of the model put on show; `None` follows the run (Latest).
    pub step: Option<u64>,
    /// A replay under way: when (the window's clock, in seconds) its model on show came on.
    replay: Option<f64>,
}

impl<P: ModelBytes> Default for EpochScrubber<P> {
    fn default() -> Self {
        Self { history: ModelHistory::default(), step: None, replay: None }
    }
}

impl<P: ModelBytes> EpochScrubber<P> {
    /// Forgets the run (a new one starts) and follows the latest again.
    pub fn clear(&mut self) {
        self.history.clear();
        self.step = None;
        self.replay = None;
    }

    /// True while a replay shows the run's kept models in turn.
    #[must_use]
    pub fn replaying(&self) -> bool {
        self.replay.is_some()
    }

    /// Starts a replay at `now` (the window's clock, in seconds), from the model on show or, when the views follow
    /// the run, from the first kept; or stops the one under way where it is. True when the model on show changed.
    pub fn toggle_replay(&mut self, now: f64) -> bool {
        if self.replay.take().is_some() || self.history.entries().len() < 2 {
            return false;
        }
        self.replay = Some(now);
        if self.scrubbed().is_none() {
            self.step = Some(self.history.entries()[0].step);
            return true;
        }
        false
    }

    /// Puts the model kept nearest to `epoch` on show (an overfitting note's Show epoch), stopping a replay; false
    /// when none is kept.
    pub fn show_nearest(&mut self, epoch: f64) -> bool {
        let Some(i) = self.history.nearest(epoch) else { return false };
        self.step = Some(self.history.entries[i].step);
        self.replay = None;
        true
    }

    /// Stops a replay where it is (a recording or the user takes the scrubber over).
    pub fn stop_replay(&mut self) {
        self.replay = None;
    }

    /// How long a replay shows each kept model.
    fn replay_interval(&self) -> f64 {
        #[allow(clippy::cast_precision_loss)] // at most a few thousand models
        let n = self.history.entries().len().max(1) as f64;
        (REPLAY_SECONDS / n).clamp(REPLAY_INTERVAL.0, REPLAY_INTERVAL.1)
    }

    /// Moves a replay on to the next kept model once the one on show has been on for its interval and the views
    /// show it (`ready`: a view computed on its own thread has come in for it), at `now`; on the latest it ends and
    /// the views follow the run again. True when the model on show changed.
    fn advance_replay(&mut self, now: f64, ready: bool, ctx: &egui::Context) -> bool {
        let Some(since) = self.replay else { return false };
        let interval = self.replay_interval();
        let left = since + interval - now;
        if left > 0.0 || !ready {
            ctx.request_repaint_after(std::time::Duration::from_secs_f64(left.max(0.02)));
            return false;
        }
        let entries = self.history.entries();
        let index = self.scrubbed().and_then(|on| entries.iter().position(|e| e.step == on.step));
        match index {
            Some(i) if i + 2 < entries.len() => {
                self.step = Some(entries[i + 1].step);
                self.replay = Some(now);
                ctx.request_repaint_after(std::time::Duration::from_secs_f64(interval));
            }
            // The next is the latest (or the views follow the run already): the replay is over.
            _ => {
                self.step = None;
                self.replay = None;
            }
        }
        true
    }

    /// The history's entry on show (`None` when it follows the run). A model thinned away since it was chosen
    /// gives way to the nearest kept.
    #[must_use]
    pub fn scrubbed(&self) -> Option<&HistoryEntry<P>> {
        let step = self.step?;
        let entries = self.history.entries();
        // The latest model is the run's own: on it (where a recording over the epochs ends), the views follow the
        // run again.
        if entries.last().is_some_and(|e| e.step == step) {
            return None;
        }
        entries.iter().find(|e| e.step == step).or_else(|| entries.iter().min_by_key(|e| e.step.abs_diff(step)))
    }

    /// The epoch on show when scrubbed, for the loss curves' mark.
    #[must_use]
    pub fn scrubbed_epoch(&self) -> Option<f64> {
        self.scrubbed().map(|e| e.epoch)
    }

    /// The slider over the models kept, the epoch on show, Latest, which follows the run again, and **Replay**,
    /// which shows the kept models in turn from the one on show (the first, when the views follow the run) to the
    /// latest, each once `ready` says the views show it; `what`: the views it moves ("every view"). True when the
    /// model on show changed (the user moved the slider or pressed Latest, or the replay moved on).
    pub fn ui(&mut self, what: &str, ready: bool, ui: &mut egui::Ui) -> bool {
        let now = ui.input(|i| i.time);
        let moved = self.advance_replay(now, ready, ui.ctx());
        let entries = self.history.entries();
        let n = entries.len();
        if n < 2 {
            return moved;
        }
        let on_show = self.scrubbed().map(|e| e.step);
        let mut index = on_show.and_then(|step| entries.iter().position(|e| e.step == step)).unwrap_or(n - 1);
        let (epoch, step) = (entries[index].epoch, entries[index].step);
        let pinned =
            self.history.pinned().and_then(|step| entries.iter().find(|e| e.step == step)).map_or(String::new(), |e| {
                format!(", and epoch {:.0}'s, the lowest of the held-out NLL so far", e.epoch)
            });
        let kept = format!(
            "{n} models of this run are kept, {:.0} MiB (at most {} MiB: the first, the latest and evenly spread epochs between{pinned})",
            self.history.bytes() as f64 / MIB,
            self.history.budget_bytes() as f64 / MIB
        );
        let mut chosen = None;
        let mut latest = false;
        let mut toggled = false;
        // Wrapped, in three pieces, so that in a narrow window (half a screen) the buttons go to a second line rather
        // than past the page's edge.
        ui.horizontal_wrapped(|ui| {
            // Wide enough to reach each kept model (egui's default is 100 points).
            let slider_width = (ui.available_width() * 0.35).clamp(160.0, 420.0);
            together(ui, "epoch-scrubber-slider", |ui| {
                let id = ui.label("Epoch").id;
                ui.spacing_mut().slider_width = slider_width;
                let slider = egui::Slider::new(&mut index, 0..=n - 1).show_value(false);
                if ui.add(slider).labelled_by(id).on_hover_text(&kept).changed() {
                    chosen = Some(index);
                }
            });
            let text = if on_show.is_some() {
                format!("epoch {epoch:.1} (step {step}): {what} shows this model")
            } else {
                format!("epoch {epoch:.1} (step {step}), the latest")
            };
            together(ui, "epoch-scrubber-text", |ui| ui.label(egui::RichText::new(text).strong()).on_hover_text(&kept));
            together(ui, "epoch-scrubber-buttons", |ui| {
                latest = ui.add_enabled(on_show.is_some(), egui::Button::new("Latest")).clicked();
                let (label, hover) = if self.replaying() {
                    ("Stop replay", "Stop the replay at the model on show (R)")
                } else {
                    (
                        "Replay",
                        "Show the run's kept models one after another, every view following, up to the latest (R)",
                    )
                };
                toggled = ui.button(label).on_hover_text(hover).clicked();
            });
        });
        let mut toggled_moved = false;
        if toggled {
            toggled_moved = self.toggle_replay(now);
        }
        if let Some(i) = chosen {
            // The last entry is the latest model: dragging there follows the run again.
            self.step = (i + 1 < n).then(|| self.history.entries()[i].step);
            self.replay = None;
        }
        if latest {
            self.step = None;
            self.replay = None;
        }
        chosen.is_some() || latest || moved || toggled_moved
    }
}

#[cfg(test)]
mod tests {
    use super::{EpochScrubber, ModelBytes, ModelHistory};
    use crate::compute::params::{FlowLayerParams, FlowParams};
    use std::sync::Arc;

    fn flow(value: f32) -> Arc<FlowParams> {
        let layer = FlowLayerParams::Affine { shift: vec![value; 2], log_scale: vec![0.0; 2] };
        Arc::new(FlowParams { dim: 2, layers: vec![layer.clone(), layer] })
    }

    /// A 2,000-epoch run with a model each epoch stays within its budget, keeps epoch 0 and the latest, and keeps
    /// the others evenly spread.
    #[test]
    fn a_long_run_stays_within_its_budget_evenly_spread() {
        let one = flow(0.0).bytes();
        assert_eq!(one, 8 * 4);
        let mut history = ModelHistory::with_budget(50 * one);
        for epoch in 0..=2000u64 {
            history.push(epoch * 10, epoch as f64, flow(epoch as f32));
            assert!(history.bytes() <= 50 * one, "epoch {epoch}: {} bytes", history.bytes());
        }
        let epochs: Vec<f64> = history.entries().iter().map(|e| e.epoch).collect();
        assert_eq!(epochs.len(), 50);
        assert_eq!((epochs[0], epochs[49]), (0.0, 2000.0));
        let gaps: Vec<f64> = epochs.windows(2).map(|w| w[1] - w[0]).collect();
        let mean = 2000.0 / 49.0;
        let widest = gaps.iter().copied().fold(0.0, f64::max);
        assert!(widest <= 2.2 * mean, "gaps {gaps:?}");
        // Each entry is the model of its own epoch.
        assert!(history.entries().iter().all(|e| e.params.layers[0] == flow(e.epoch as f32).layers[0]));
    }

    /// A replay starts at the first kept model, moves on only once the model on show has been on for its interval
    /// and the views show it, goes through every model in turn, and ends on the latest (the views follow the run);
    /// pressed again, it stops where it is.
    #[test]
    fn a_replay_shows_each_model_in_turn_once_its_views_are_in() {
        let mut scrubber = EpochScrubber::<FlowParams>::default();
        for epoch in 0..5u32 {
            scrubber.history.push(u64::from(epoch) * 10, f64::from(epoch), flow(epoch as f32));
        }
        let ctx = egui::Context::default();
        let interval = scrubber.replay_interval();
        assert!((interval - 0.6).abs() < 1e-12, "five models: the longest interval, {interval}");
        assert!(scrubber.toggle_replay(100.0), "the views move to the first model");
        assert_eq!((scrubber.step, scrubber.replaying()), (Some(0), true));
        assert!(!scrubber.advance_replay(100.0 + interval / 2.0, true, &ctx), "too early");
        assert!(!scrubber.advance_replay(100.0 + interval, false, &ctx), "its views are not in");
        let mut now = 100.0 + interval;
        let mut seen = vec![0];
        while scrubber.replaying() {
            assert!(scrubber.advance_replay(now, true, &ctx));
            seen.push(scrubber.step.unwrap_or(40));
            now += interval;
        }
        assert_eq!(seen, [0, 10, 20, 30, 40], "each model in turn, the latest last");
        assert_eq!(scrubber.step, None, "on the latest the views follow the run");
        // Stopped half way, it stays on the model on show.
        assert!(scrubber.toggle_replay(200.0));
        assert!(scrubber.advance_replay(200.0 + interval, true, &ctx));
        assert!(!scrubber.toggle_replay(200.0 + interval + 0.1));
        assert_eq!((scrubber.step, scrubber.replaying()), (Some(10), false));
        // From a model scrubbed to, it starts there.
        scrubber.step = Some(20);
        assert!(!scrubber.toggle_replay(300.0), "the model on show stays");
        assert!(scrubber.advance_replay(300.0 + interval, true, &ctx));
        assert_eq!(scrubber.step, Some(30));
    }

    /// The pinned model outlives the thinning that spreads the others evenly; the budget holds.
    #[test]
    fn the_pinned_model_is_never_thinned_away() {
        let one = flow(0.0).bytes();
        let mut history = ModelHistory::with_budget(10 * one);
        for epoch in 0..=300u64 {
            history.push(epoch, epoch as f64, flow(epoch as f32));
            if epoch == 24 {
                history.pin(24, 24.0, flow(-1.0));
            }
            assert!(history.bytes() <= 10 * one, "epoch {epoch}");
        }
        let epochs: Vec<f64> = history.entries().iter().map(|e| e.epoch).collect();
        assert!(epochs.contains(&24.0), "{epochs:?}");
        assert_eq!((epochs.len(), epochs[0], epochs[9]), (10, 0.0, 300.0));
        assert_eq!(history.pinned(), Some(24));
        let pinned = history.entries().iter().find(|e| e.step == 24).expect("kept");
        assert_eq!(*pinned.params, *flow(24.0), "the model kept already stays, pinned");
        // Without it, epoch 24 goes.
        let mut plain = ModelHistory::with_budget(10 * one);
        for epoch in 0..=300u64 {
            plain.push(epoch, epoch as f64, flow(epoch as f32));
        }
        assert!(!plain.entries().iter().any(|e| (e.epoch - 24.0).abs() < 0.5), "the even spread has no epoch 24");
    }

    /// The model of a run's lowest held-out figure comes after newer ones: pinned, it goes in among them in step
    /// order, once; a newer lowest takes its place, and the one the pin put in goes, while one that came as the
    /// others do stays.
    #[test]
    fn a_pinned_model_goes_in_where_it_falls_and_the_next_replaces_it() {
        let one = flow(0.0).bytes();
        let mut history = ModelHistory::with_budget(100 * one);
        for epoch in (0..=70u64).step_by(7) {
            history.push(epoch, epoch as f64, flow(epoch as f32));
        }
        let steps = |h: &ModelHistory<FlowParams>| h.entries().iter().map(|e| e.step).collect::<Vec<u64>>();
        let pushed = steps(&history);
        history.pin(24, 24.0, flow(24.0));
        history.pin(24, 24.0, flow(-1.0));
        let with_24 = steps(&history);
        assert!(with_24.windows(2).all(|w| w[0] < w[1]), "in step order: {with_24:?}");
        assert_eq!(with_24.len(), pushed.len() + 1, "once: {with_24:?}");
        assert_eq!(*history.entries().iter().find(|e| e.step == 24).unwrap().params, *flow(24.0), "the first stays");
        // A newer lowest: 24 goes, 31 comes.
        history.pin(31, 31.0, flow(31.0));
        assert_eq!(steps(&history).len(), pushed.len() + 1);
        assert!(!steps(&history).contains(&24) && steps(&history).contains(&31));
        // A lowest at a model kept anyway: 31 goes, 28 is pinned; after the next, 28 stays.
        history.pin(28, 28.0, flow(-1.0));
        assert_eq!(steps(&history), pushed);
        assert_eq!(history.pinned(), Some(28));
        history.pin(33, 33.0, flow(33.0));
        assert!(steps(&history).contains(&28) && steps(&history).contains(&33));
        // Thinned on to the budget, the pinned one stays; a new run forgets it.
        let mut small = ModelHistory::with_budget(10 * one);
        for epoch in (0..=300u64).step_by(7) {
            small.push(epoch, epoch as f64, flow(epoch as f32));
            if epoch == 70 {
                small.pin(24, 24.0, flow(24.0));
            }
            assert!(small.bytes() <= 10 * one);
        }
        assert_eq!(small.pinned(), Some(24), "kept through the thinning");
        small.clear();
        assert_eq!(small.pinned(), None);
        // Pinned before the snapshot of its step came: it came as the others do too, and stays.
        let mut h = ModelHistory::with_budget(100 * one);
        h.push(0, 0.0, flow(0.0));
        h.pin(10, 1.0, flow(1.0));
        h.push(10, 1.0, flow(1.0));
        h.pin(20, 2.0, flow(2.0));
        assert_eq!(steps(&h), [0, 10, 20]);
        // Pinned before any other model came: the run's start as the views saw it, it stays.
        let mut h = ModelHistory::with_budget(100 * one);
        h.pin(50, 5.0, flow(5.0));
        h.push(55, 5.5, flow(5.5));
        h.pin(60, 6.0, flow(6.0));
        h.pin(70, 7.0, flow(7.0));
        assert_eq!(steps(&h), [50, 55, 70], "60 went, 50 stayed");
        // A pinned model newer than the snapshots' keeps none of them out: each new lowest at an epoch's end comes
        // before the snapshot of a step before it.
        let mut h = ModelHistory::with_budget(100 * one);
        h.push(0, 0.0, flow(0.0));
        h.pin(50, 5.0, flow(5.0));
        h.push(45, 4.5, flow(4.5));
        h.pin(60, 6.0, flow(6.0));
        h.push(55, 5.5, flow(5.5));
        h.push(52, 5.2, flow(5.2));
        h.push(70, 7.0, flow(7.0));
        assert_eq!(steps(&h), [0, 45, 55, 60, 70], "52 is older than 55, which came as the others do");
    }

    #[test]
    fn an_older_or_repeated_step_is_ignored_and_the_nearest_is_found() {
        let mut history = ModelHistory::<FlowParams>::default();
        history.push(10, 1.0, flow(1.0));
        history.push(10, 1.0, flow(2.0));
        history.push(5, 0.5, flow(3.0));
        history.push(30, 3.0, flow(4.0));
        assert_eq!(history.entries().len(), 2);
        assert_eq!(history.nearest(2.2), Some(1));
        assert_eq!(history.nearest(0.0), Some(0));
        history.clear();
        assert_eq!(history.nearest(1.0), None);
    }
}
