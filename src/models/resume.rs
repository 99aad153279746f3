//! A run's training state as plain data ([`TrainState`]): everything beyond its settings and data that the next
//! step depends on, so that a run saved at any step boundary and continued takes exactly the steps it would have
//! taken without the pause, to the last bit. The variables' values as they are (not the model's plain-data view,
//! which may transform them), the optimiser's moments, step count and learning rate, the NaN guard's last good
//! copy, the minibatch order, its cursor, the one seeded generator every draw comes from (its seed, stream and
//! position), the epoch's loss sums, and what a model keeps outside its variables (the convolutional VAE's running
//! averages). The history of epochs and the views' histories are the run's snapshot and model copy, saved beside.
//!
//! [`crate::models::trainer::EpochTrainer`] takes and restores it; `train::runfile` writes it into a run file.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::compute::cpu::optim::OptimizerState;

/// A [`ChaCha8Rng`]'s whole state: its seed, its stream and its position in that stream (in 32-bit words).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RngState {
    /// The 32-byte key it was seeded with.
    pub seed: [u8; 32],
    /// The stream.
    pub stream: u64,
    /// Words of the stream consumed so far.
    pub word_pos: u128,
}

impl RngState {
    /// The state of `rng`.
    #[must_use]
    pub fn of(rng: &ChaCha8Rng) -> Self {
        Self { seed: rng.get_seed(), stream: rng.get_stream(), word_pos: rng.get_word_pos() }
    }

    /// A generator in this state: its next draws are the ones the generator it was taken from would have made.
    #[must_use]
    pub fn rng(&self) -> ChaCha8Rng {
        let mut rng = ChaCha8Rng::from_seed(self.seed);
        rng.set_stream(self.stream);
        rng.set_word_pos(self.word_pos);
        rng
    }
}

/// Where the shared training loop stands inside the run (the epoch counter is the history's length, saved with the
/// run's snapshot).
#[derive(Clone, Debug, PartialEq)]
pub struct LoopState {
    /// This epoch's order of the training rows.
    pub order: Vec<u32>,
    /// Rows of `order` taken so far this epoch.
    pub cursor: usize,
    /// The generator of the minibatch order and every step's draws.
    pub rng: RngState,
    /// Steps taken in all.
    pub step: u64,
    /// This epoch's sums of the loss terms so far.
    pub sums: Vec<f64>,
    /// Minibatches those sums add up.
    pub batches: usize,
    /// The latest minibatch's loss.
    pub batch_loss: f64,
}

/// One variable's name, shape and values, as the model holds them.
#[derive(Clone, Debug, PartialEq)]
pub struct VariableState {
    /// Its name ("layer 2 posterior means").
    pub name: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Its values, row-major, in f32 (the precision the models train in).
    pub values: Vec<f32>,
}

/// Everything the next step depends on beyond the run's settings, data and history (see the module's doc).
#[derive(Clone, Debug, PartialEq)]
pub struct TrainState {
    /// The loop's position and generator.
    pub epochs: LoopState,
    /// The variables, in the optimiser's order.
    pub variables: Vec<VariableState>,
    /// The optimiser's moments, step count and learning rate.
    pub optimizer: OptimizerState,
    /// The NaN guard's copy of the values at which the loss was last finite (`None` before the first step).
    pub last_good: Option<Vec<Vec<f32>>>,
    /// What the model keeps outside its variables, named (the convolutional VAE's running averages).
    pub model: Vec<(String, Vec<f32>)>,
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::RngState;

    /// A generator taken at an odd position (a word into a block) and rebuilt draws what the original draws next.
    #[test]
    fn a_generator_rebuilt_from_its_state_draws_the_same_numbers() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let _: u32 = rng.random();
        let _: [u64; 9] = rng.random();
        let mut copy = RngState::of(&rng).rng();
        let (a, b): ([u64; 40], [u64; 40]) = (rng.random(), copy.random());
        assert_eq!(a, b);
        let mut other = ChaCha8Rng::seed_from_u64(8);
        let c: [u64; 40] = other.random();
        assert_ne!(a, c, "a different seed draws differently");
    }
}
