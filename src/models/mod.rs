//! The models, in candle only: no egui, no wgpu. Each exposes a config, a [`crate::train::Trainer`] and
//! plain-data results. Used by `train` and `cli`.

pub mod activation;
pub mod bnn;
pub mod conv;
pub mod conv_cpu;
pub mod coupling_cpu;
pub mod cpu_gemm;
pub mod dense_cpu;
pub mod flow;
pub mod guard;
pub mod mlp;
pub mod norm_act;
pub mod optim;
pub mod params;
pub mod stats;
pub mod vae;
pub mod vae_cpu;

pub use activation::Activation;

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

#[cfg(test)]
mod tests {
    use super::thin_history;

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
}
