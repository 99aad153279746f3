//! The models a run kept on its way (the epoch scrubber's history), saved with the run so that an opened run can
//! be scrubbed back through its training too.
//!
//! Each kept model is the lab's [`SavedModel`] made from the parameters alone (the views' own histories left
//! empty): its tensors go into the weights file under `kept.K.` and its layout into the run file's `kept` list, with
//! its step and epoch. A file keeps at most [`MAX_KEPT_IN_FILE`] of them and at most [`KEPT_FILE_BUDGET_BYTES`] of
//! their parameters, the first and the latest always, the others evenly spread: a RealNVP of the default size keeps
//! 7, the default MLP VAE 16, a BNN of the wine data 60.

use super::format::{JsonF64, KeptRecord};
use super::tensors::{SavedModel, TensorReader, TensorWriter};
use crate::train::ModelView;

/// Most kept models a run file holds.
pub const MAX_KEPT_IN_FILE: usize = 60;
/// Most bytes of kept parameters a run file holds.
pub const KEPT_FILE_BUDGET_BYTES: usize = 64 * 1024 * 1024;

/// A model kept of the run: its step, its epoch (step / steps per epoch) and the copy the worker published.
#[derive(Clone, Debug)]
pub struct KeptModel {
    /// The optimisation step.
    pub step: u64,
    /// Where that is in epochs.
    pub epoch: f64,
    /// The model.
    pub model: ModelView,
    /// The model the run pinned, at its lowest held-out figure (the overfitting note's "Show epoch"): a file that
    /// thins its kept models keeps this one.
    pub pinned: bool,
}

/// Which of `n` models (oldest first) a file keeps when it has room for `room`: the first, the latest and the others
/// evenly spread, in order.
#[must_use]
pub fn spread(n: usize, room: usize) -> Vec<usize> {
    match (n, room) {
        (0, _) | (_, 0) => Vec::new(),
        (n, room) if room >= n => (0..n).collect(),
        (n, 1) => vec![n - 1],
        (n, room) => {
            let mut picked: Vec<usize> = (0..room).map(|i| (i * (n - 1) + (room - 1) / 2) / (room - 1)).collect();
            picked.dedup();
            picked
        }
    }
}

/// [`spread`], keeping model `pinned` too (when there is one) in place of the evenly spread pick nearest it, never
/// the first or the latest; with room for those two alone, it is not kept.
#[must_use]
pub fn spread_keeping(n: usize, room: usize, pinned: Option<usize>) -> Vec<usize> {
    let mut picked = spread(n, room);
    let Some(p) = pinned.filter(|&p| p < n && !picked.contains(&p)) else { return picked };
    let interior = 1..picked.len().saturating_sub(1);
    if let Some(k) = interior.min_by_key(|&k| picked[k].abs_diff(p)) {
        picked[k] = p;
        picked.sort_unstable();
    }
    picked
}

/// Writes the kept models (thinned to the file's limits) into `tensors`; returns their records, in order.
pub(super) fn write_kept<M: SavedModel>(
    kept: &[KeptModel],
    tensors: &mut TensorWriter,
) -> Result<Vec<KeptRecord>, String> {
    let Some(last) = kept.last() else { return Ok(Vec::new()) };
    // One model's bytes, to know how many fit.
    let mut probe = TensorWriter::default();
    model_of::<M>(last)?.write(&mut probe)?;
    let room = (KEPT_FILE_BUDGET_BYTES / probe.bytes().max(1)).clamp(1, MAX_KEPT_IN_FILE);
    let mut records = Vec::new();
    let pinned = kept.iter().position(|k| k.pinned);
    for (k, i) in spread_keeping(kept.len(), room, pinned).into_iter().enumerate() {
        let entry = &kept[i];
        let mut own = TensorWriter::default();
        let architecture = model_of::<M>(entry)?.write(&mut own)?;
        tensors.absorb(&format!("kept.{k}."), own)?;
        records.push(KeptRecord {
            step: entry.step,
            epoch: JsonF64(entry.epoch),
            architecture: serde_json::to_value(&architecture).map_err(|e| e.to_string())?,
        });
    }
    Ok(records)
}

fn model_of<M: SavedModel>(entry: &KeptModel) -> Result<M, String> {
    M::from_model_view(&entry.model).ok_or_else(|| format!("the model kept at step {} is another lab's", entry.step))
}

/// Reads the kept models `records` describe from `tensors`.
pub(super) fn read_kept<M: SavedModel>(
    records: &[KeptRecord],
    tensors: &mut TensorReader<'_>,
) -> Result<Vec<KeptModel>, String> {
    let mut kept: Vec<KeptModel> = Vec::with_capacity(records.len());
    for (k, record) in records.iter().enumerate() {
        if kept.last().is_some_and(|before| before.step >= record.step) {
            return Err(format!("kept model {k} (step {}) is not after the one before it", record.step));
        }
        let architecture: M::Architecture = serde_json::from_value(record.architecture.clone())
            .map_err(|e| format!("kept model {k}'s architecture: {e}"))?;
        tensors.prefix = format!("kept.{k}.");
        let model = M::read(&architecture, tensors);
        tensors.prefix.clear();
        let model = model.map_err(|e| format!("kept model {k}: {e}"))?;
        let model = model.model_view(record.step);
        kept.push(KeptModel { step: record.step, epoch: record.epoch.0, model, pinned: false });
    }
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::{spread, spread_keeping};

    #[test]
    fn a_file_thinning_its_models_keeps_the_pinned_one_in_place_of_the_nearest_pick() {
        // 101 into 5: 0, 25, 50, 75, 100; the pinned 31 takes 25's place.
        assert_eq!(spread_keeping(101, 5, Some(31)), [0, 31, 50, 75, 100]);
        assert_eq!(spread_keeping(101, 5, Some(60)), [0, 25, 60, 75, 100]);
        // Already picked, none pinned, or room for all: as spread.
        assert_eq!(spread_keeping(101, 5, Some(50)), spread(101, 5));
        assert_eq!(spread_keeping(101, 5, None), spread(101, 5));
        assert_eq!(spread_keeping(5, 10, Some(2)), [0, 1, 2, 3, 4]);
        // The first and the latest stay; with room for them alone, the pinned one is not kept.
        assert_eq!(spread_keeping(101, 3, Some(1)), [0, 1, 100]);
        assert_eq!(spread_keeping(101, 2, Some(40)), [0, 100]);
        for (n, room, p) in [(3000, 60, 1234), (49, 16, 47), (21, 7, 1)] {
            let picked = spread_keeping(n, room, Some(p));
            assert!(picked.contains(&p) && picked.len() == room, "{n} into {room} keeping {p}: {picked:?}");
            assert!(picked.windows(2).all(|w| w[0] < w[1]) && picked[0] == 0 && picked[room - 1] == n - 1);
        }
    }

    #[test]
    fn a_file_keeps_the_first_the_latest_and_evenly_spread_models_between() {
        assert_eq!(spread(5, 10), [0, 1, 2, 3, 4]);
        assert_eq!(spread(101, 5), [0, 25, 50, 75, 100]);
        assert_eq!(spread(10, 4), [0, 3, 6, 9]);
        assert_eq!(spread(7, 2), [0, 6]);
        assert_eq!(spread(7, 1), [6]);
        assert!(spread(0, 3).is_empty());
        for (n, room) in [(21, 7), (49, 16), (3000, 60), (8, 7)] {
            let picked = spread(n, room);
            assert_eq!(picked.len(), room, "{n} into {room}");
            assert_eq!((picked[0], picked[room - 1]), (0, n - 1));
            let gaps: Vec<usize> = picked.windows(2).map(|w| w[1] - w[0]).collect();
            let (lo, hi) = (gaps.iter().min().unwrap(), gaps.iter().max().unwrap());
            assert!(hi - lo <= 1, "{n} into {room}: gaps {gaps:?}");
        }
    }
}
