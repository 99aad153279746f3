//! The flow lab's models over its run, for the epoch scrubber and for "Record animation…" over the epochs: every
//! model copy the views receive, thinned as the run goes on to stay within a memory budget (the first model and
//! the latest always kept, the others spread as evenly over the epochs as the budget allows).

use std::sync::Arc;

use crate::compute::params::{FlowLayerParams, FlowParams, MlpParams};

/// Memory the history may hold (the parameters' floats). A RealNVP of the Keras example's size is about 9.5 MB a
/// model, so about 21 models.
pub const HISTORY_BUDGET_BYTES: usize = 200 * 1024 * 1024;

/// One model of the run.
#[derive(Clone, Debug)]
pub struct HistoryEntry {
    /// The optimisation step it is from.
    pub step: u64,
    /// Where that is in epochs (step / steps per epoch).
    pub epoch: f64,
    /// Its parameters (shared with the snapshot it came in: no copy).
    pub params: Arc<FlowParams>,
}

/// The run's models, oldest first, within [`HISTORY_BUDGET_BYTES`] (or the budget given).
#[derive(Clone, Debug)]
pub struct FlowHistory {
    entries: Vec<HistoryEntry>,
    budget_bytes: usize,
}

impl Default for FlowHistory {
    fn default() -> Self {
        Self::with_budget(HISTORY_BUDGET_BYTES)
    }
}

fn mlp_floats(mlp: &MlpParams) -> usize {
    mlp.layers.iter().map(|l| l.weights.len() + l.biases.len()).sum()
}

/// Bytes of a flow's parameters.
#[must_use]
pub fn param_bytes(params: &FlowParams) -> usize {
    let floats: usize = params
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

impl FlowHistory {
    /// An empty history holding at most `budget_bytes` of parameters (at least the first and the latest model).
    #[must_use]
    pub fn with_budget(budget_bytes: usize) -> Self {
        Self { entries: Vec::new(), budget_bytes }
    }

    /// The models kept, oldest first.
    #[must_use]
    pub fn entries(&self) -> &[HistoryEntry] {
        &self.entries
    }

    /// Bytes held.
    #[must_use]
    pub fn bytes(&self) -> usize {
        self.entries.iter().map(|e| param_bytes(&e.params)).sum()
    }

    /// Forgets every model (a new run).
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// Adds the model of `step` (ignored when it is not newer than the latest), then thins the history to the
    /// budget: while over it, drops the model between the two closest neighbours (never the first or the latest).
    pub fn push(&mut self, step: u64, epoch: f64, params: Arc<FlowParams>) {
        if self.entries.last().is_some_and(|e| e.step >= step) {
            return;
        }
        self.entries.push(HistoryEntry { step, epoch, params });
        while self.entries.len() > 2 && self.bytes() > self.budget_bytes {
            // The inner model whose neighbours are closest: dropping it leaves the most even spacing.
            let drop = (1..self.entries.len() - 1)
                .min_by(|&a, &b| {
                    let gap = |i: usize| self.entries[i + 1].epoch - self.entries[i - 1].epoch;
                    gap(a).total_cmp(&gap(b))
                })
                .unwrap_or(1);
            self.entries.remove(drop);
        }
    }

    /// The model kept nearest to `epoch`.
    #[must_use]
    pub fn nearest(&self, epoch: f64) -> Option<usize> {
        (0..self.entries.len())
            .min_by(|&a, &b| (self.entries[a].epoch - epoch).abs().total_cmp(&(self.entries[b].epoch - epoch).abs()))
    }
}

#[cfg(test)]
mod tests {
    use super::{FlowHistory, param_bytes};
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
        let one = param_bytes(&flow(0.0));
        assert_eq!(one, 8 * 4);
        let mut history = FlowHistory::with_budget(50 * one);
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
        let mut history = FlowHistory::default();
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
