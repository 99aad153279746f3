//! A lab's models over its run, for the epoch scrubber and for "Record animation…" over the epochs: every model copy
//! the views receive, thinned as the run goes on to stay within a memory budget (the first model and the latest
//! always kept, the others spread as evenly over the epochs as the budget allows), and the scrubber above the
//! lab's views that puts one of them on show.

use std::sync::Arc;

use crate::compute::params::{FlowLayerParams, FlowParams, MlpParams};
use crate::models::bnn::BnnParams;
use crate::models::vae::{VaeNetworks, VaeParams};

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
}

impl<P> Clone for ModelHistory<P> {
    fn clone(&self) -> Self {
        Self { entries: self.entries.clone(), budget_bytes: self.budget_bytes }
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
        Self { entries: Vec::new(), budget_bytes }
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
    }

    /// Adds the model of `step` (ignored when it is not newer than the latest), then thins the history to the
    /// budget: while over it, drops the model between the two closest neighbours (never the first or the latest).
    pub fn push(&mut self, step: u64, epoch: f64, params: Arc<P>) {
        if self.entries.last().is_some_and(|e| e.step >= step) {
            return;
        }
        self.entries.push(HistoryEntry { step, epoch, params });
        let mut bytes = self.bytes();
        while self.entries.len() > 2 && bytes > self.budget_bytes {
            // The inner model whose neighbours are closest: dropping it leaves the most even spacing.
            let drop = (1..self.entries.len() - 1)
                .min_by(|&a, &b| {
                    let gap = |i: usize| self.entries[i + 1].epoch - self.entries[i - 1].epoch;
                    gap(a).total_cmp(&gap(b))
                })
                .unwrap_or(1);
            bytes -= self.entries.remove(drop).params.bytes();
        }
    }

    /// The model kept nearest to `epoch`.
    #[must_use]
    pub fn nearest(&self, epoch: f64) -> Option<usize> {
        (0..self.entries.len())
            .min_by(|&a, &b| (self.entries[a].epoch - epoch).abs().total_cmp(&(self.entries[b].epoch - epoch).abs()))
    }
}

/// A lab's history and the epoch scrubber over it: which kept model every view of the lab shows, or the run's
/// latest.
#[derive(Debug)]
pub struct EpochScrubber<P> {
    /// The run's models so far.
    pub history: ModelHistory<P>,
    /// The step of the model put on show; `None` follows the run (Latest).
    pub step: Option<u64>,
}

impl<P: ModelBytes> Default for EpochScrubber<P> {
    fn default() -> Self {
        Self { history: ModelHistory::default(), step: None }
    }
}

impl<P: ModelBytes> EpochScrubber<P> {
    /// Forgets the run (a new one starts) and follows the latest again.
    pub fn clear(&mut self) {
        self.history.clear();
        self.step = None;
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

    /// The slider over the models kept, the epoch on show, and Latest, which follows the run again; `what`: the
    /// views it moves ("every view"). True when the user moved it (to a model or back to the latest).
    pub fn ui(&mut self, what: &str, ui: &mut egui::Ui) -> bool {
        let entries = self.history.entries();
        let n = entries.len();
        if n < 2 {
            return false;
        }
        let on_show = self.scrubbed().map(|e| e.step);
        let mut index = on_show.and_then(|step| entries.iter().position(|e| e.step == step)).unwrap_or(n - 1);
        let (epoch, step) = (entries[index].epoch, entries[index].step);
        let kept = format!(
            "{n} models of this run are kept, {:.0} MiB (at most {} MiB: the first, the latest and evenly spread epochs between)",
            self.history.bytes() as f64 / MIB,
            self.history.budget_bytes() as f64 / MIB
        );
        let mut chosen = None;
        let mut latest = false;
        ui.horizontal(|ui| {
            let id = ui.label("Epoch").id;
            // Wide enough to reach each kept model (egui's default is 100 points).
            ui.spacing_mut().slider_width = (ui.available_width() * 0.35).clamp(160.0, 420.0);
            let slider = egui::Slider::new(&mut index, 0..=n - 1).show_value(false);
            if ui.add(slider).labelled_by(id).on_hover_text(&kept).changed() {
                chosen = Some(index);
            }
            let text = if on_show.is_some() {
                format!("epoch {epoch:.1} (step {step}): {what} shows this model")
            } else {
                format!("epoch {epoch:.1} (step {step}), the latest")
            };
            ui.label(egui::RichText::new(text).strong()).on_hover_text(&kept);
            latest = ui.add_enabled(on_show.is_some(), egui::Button::new("Latest")).clicked();
        });
        if let Some(i) = chosen {
            // The last entry is the latest model: dragging there follows the run again.
            self.step = (i + 1 < n).then(|| self.history.entries()[i].step);
        }
        if latest {
            self.step = None;
        }
        chosen.is_some() || latest
    }
}

#[cfg(test)]
mod tests {
    use super::{ModelBytes, ModelHistory};
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
