//! How well the latent space separates the classes: the k-nearest-neighbour accuracy of the test inputs' latent
//! means by the training inputs'.

/// k-nearest-neighbour classification accuracy of `test` points by `train` points (rows of `dim` values).
#[must_use]
pub fn knn_accuracy(
    train: &[f32],
    train_labels: &[u32],
    test: &[f32],
    test_labels: &[u32],
    dim: usize,
    k: usize,
) -> f64 {
    if test_labels.is_empty() || train_labels.is_empty() {
        return f64::NAN;
    }
    let mut correct = 0usize;
    let mut best: Vec<(f32, u32)> = Vec::with_capacity(k + 1);
    for (q, &label) in test.chunks_exact(dim).zip(test_labels) {
        best.clear();
        for (p, &l) in train.chunks_exact(dim).zip(train_labels) {
            let d: f32 = q.iter().zip(p).map(|(a, b)| (a - b) * (a - b)).sum();
            if best.len() < k || d < best[best.len() - 1].0 {
                let at = best.partition_point(|(bd, _)| *bd <= d);
                best.insert(at, (d, l));
                best.truncate(k);
            }
        }
        // Majority vote; ties go to the nearer neighbour's label.
        let mut votes: Vec<(u32, usize, usize)> = Vec::new(); // (label, count, first rank)
        for (rank, (_, l)) in best.iter().enumerate() {
            match votes.iter_mut().find(|v| v.0 == *l) {
                Some(v) => v.1 += 1,
                None => votes.push((*l, 1, rank)),
            }
        }
        let winner = votes.iter().max_by(|a, b| a.1.cmp(&b.1).then(b.2.cmp(&a.2))).map(|v| v.0);
        correct += usize::from(winner == Some(label));
    }
    correct as f64 / test_labels.len() as f64
}
