//! The variational autoencoder's statistics: the closed-form KL against Monte Carlo, the reparametrised gradient
//! against finite differences, and a trained model's reconstructions against an untrained one's.

use std::sync::Arc;

use bayes_explorer::Lab;
use bayes_explorer::data::BuiltinFile;
use bayes_explorer::data::prepare::{default_spec_for_lab, prepare};
use bayes_explorer::models::vae::{Likelihood, VaeConfig, VaeNet, VaeTrainer, gaussian_kl, knn_accuracy};
use bayes_explorer::train::Trainer;
use candle_core::{DType, Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// KL(N(mu, sigma²) || N(0, 1)) per row against the mean of log q(z) - log p(z) over draws z ~ q.
#[test]
fn closed_form_kl_matches_its_monte_carlo_estimate() {
    let mu = [0.3f64, -1.2, 2.0];
    let logvar = [-0.5f64, 0.7, -2.0];
    let t = |v: &[f64]| Tensor::from_vec(v.to_vec(), (1, v.len()), &Device::Cpu).unwrap();
    let exact = gaussian_kl(&t(&mu), &t(&logvar)).unwrap().to_vec1::<f64>().unwrap()[0];
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let n = 200_000u32;
    let draws: Vec<f64> = (0..n)
        .map(|_| {
            mu.iter()
                .zip(&logvar)
                .map(|(&m, &lv)| {
                    let sd = (0.5 * lv).exp();
                    let e: f64 = StandardNormal.sample(&mut rng);
                    let z = m + sd * e;
                    // log N(z; m, sd²) - log N(z; 0, 1)
                    (-0.5 * e * e - sd.ln()) - (-0.5 * z * z)
                })
                .sum::<f64>()
        })
        .collect();
    let mean = draws.iter().sum::<f64>() / f64::from(n);
    let sd = (draws.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / f64::from(n - 1)).sqrt();
    let se = sd / f64::from(n).sqrt();
    assert!((mean - exact).abs() < 4.0 * se, "closed form {exact:.5}, Monte Carlo {mean:.5} ± {se:.5}");
}

#[test]
fn reparametrised_gradient_matches_central_finite_differences() {
    for likelihood in [Likelihood::Bernoulli, Likelihood::Gaussian] {
        let config = VaeConfig { hidden: vec![3], latent: 2, likelihood, seed: 4, ..VaeConfig::default() };
        let net = VaeNet::new(&config, 4, DType::F64).unwrap();
        let x =
            Tensor::from_vec(vec![0.0f64, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.2, 0.9, 0.4, 0.0], (3, 4), &Device::Cpu)
                .unwrap();
        let eps = net.draw_noise(3, &mut ChaCha8Rng::seed_from_u64(5)).unwrap();
        let loss = |net: &VaeNet| net.loss(&x, &eps, 0.7).unwrap().total.to_scalar::<f64>().unwrap();
        let grads = net.loss(&x, &eps, 0.7).unwrap().total.backward().unwrap();
        let (vars, names) = net.vars();
        let h = 1e-6;
        for (var, name) in vars.iter().zip(&names) {
            let grad = grads.get(var.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
            let values = var.as_tensor().flatten_all().unwrap().to_vec1::<f64>().unwrap();
            let shape = var.as_tensor().shape().clone();
            for (i, g) in grad.iter().enumerate() {
                let at = |delta: f64| {
                    let mut shifted = values.clone();
                    shifted[i] += delta;
                    var.set(&Tensor::from_vec(shifted, shape.clone(), &Device::Cpu).unwrap()).unwrap();
                    loss(&net)
                };
                let fd = (at(h) - at(-h)) / (2.0 * h);
                var.set(&Tensor::from_vec(values.clone(), shape.clone(), &Device::Cpu).unwrap()).unwrap();
                assert!(
                    (fd - g).abs() <= 1e-5 * (1.0 + g.abs()),
                    "{likelihood:?} {name}[{i}]: autodiff {g}, finite difference {fd}"
                );
            }
        }
    }
}

fn digits() -> Arc<bayes_explorer::data::Prepared> {
    let table = BuiltinFile::Digits8x8.load().unwrap();
    Arc::new(prepare(&table, &default_spec_for_lab(Lab::Vae, &table)).unwrap())
}

#[test]
fn training_improves_the_round_trip_and_the_elbo_on_8x8_digits() {
    let data = digits();
    let config = VaeConfig { hidden: vec![64], epochs: 40, batch_size: 64, ..VaeConfig::default() };
    let mut trainer = VaeTrainer::new(config, &data).unwrap();
    let (mse_before, elbo_before) = (trainer.roundtrip_mse().unwrap(), trainer.test_elbo().unwrap().neg_elbo);
    while !trainer.finished() {
        trainer.step().unwrap();
    }
    let (mse_after, elbo_after) = (trainer.roundtrip_mse().unwrap(), trainer.test_elbo().unwrap().neg_elbo);
    assert!(mse_after < 0.6 * mse_before, "round-trip MSE {mse_before:.4} -> {mse_after:.4}");
    assert!(elbo_after < elbo_before - 5.0, "negative ELBO {elbo_before:.2} -> {elbo_after:.2}");
    // The latent means of a trained model group the digits: far better than the 10 % of chance.
    let knn = trainer.knn5_accuracy().unwrap().unwrap();
    assert!(knn > 0.5, "5-NN accuracy in the latent space {knn:.3}");
}

#[test]
fn knn_votes_by_the_nearest_points() {
    // Two clusters on a line; a query near each takes its label, and a tie goes to the nearest neighbour.
    let train = [0.0f32, 0.1, 0.2, 5.0, 5.1, 5.2];
    let labels = [0u32, 0, 0, 1, 1, 1];
    assert!((knn_accuracy(&train, &labels, &[0.05, 5.05], &[0, 1], 1, 3) - 1.0).abs() < 1e-12);
    assert!((knn_accuracy(&train, &labels, &[0.05, 5.05], &[1, 0], 1, 3)).abs() < 1e-12);
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let noise: Vec<f32> = (0..6).map(|_| rng.random_range(-0.01..0.01)).collect();
    let moved: Vec<f32> = train.iter().zip(&noise).map(|(a, b)| a + b).collect();
    assert!((knn_accuracy(&moved, &labels, &[0.0], &[0], 1, 2) - 1.0).abs() < 1e-12);
}
