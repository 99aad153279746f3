//! Every GPU kernel against the candle reference on seeded random inputs, including awkward shapes.
//! Tolerance: |gpu - cpu| <= 1e-4 * sqrt(k) * max(1, |cpu|) for products with inner dimension k (float32
//! sums in a different order), 1e-4 relative for elementwise work.
//!
//! Without an adapter the tests print why and return, unless `BAYES_EXPLORER_REQUIRE_GPU=1` (CI), where they
//! fail.

use bayes_explorer::compute::Activation;
use bayes_explorer::compute::params::{DenseParams, FlowLayerParams, FlowParams, MlpParams};
use bayes_explorer::compute::{
    CandleBackend, ComputeBackend, GpuBackend, MatmulShape, MeanFieldLayer, MeanFieldParams, Noise, Rows, WeightsKey,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn gpu() -> Option<GpuBackend> {
    match GpuBackend::new() {
        Ok(g) => Some(g),
        Err(e) => {
            assert!(
                std::env::var("BAYES_EXPLORER_REQUIRE_GPU").as_deref() != Ok("1"),
                "BAYES_EXPLORER_REQUIRE_GPU=1 but the GPU back end failed: {e}"
            );
            eprintln!("skipping GPU kernel test: {e}");
            None
        }
    }
}

fn random(rng: &mut ChaCha8Rng, len: usize) -> Vec<f32> {
    (0..len).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

fn assert_close(what: &str, gpu: &[f32], cpu: &[f32], tol: f32) {
    assert_eq!(gpu.len(), cpu.len(), "{what}: lengths differ");
    for (i, (g, c)) in gpu.iter().zip(cpu).enumerate() {
        let bound = tol * c.abs().max(1.0);
        assert!((g - c).abs() <= bound, "{what}: element {i}: gpu {g} vs candle {c} (tolerance {bound})");
    }
}

fn product_tol(k: usize) -> f32 {
    1e-4 * (k.max(1) as f32).sqrt()
}

#[test]
fn matmul_matches_candle_on_awkward_shapes_and_every_transpose() {
    let Some(mut gpu) = gpu() else { return };
    let mut cpu = CandleBackend::new();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let shapes = [
        (0, 5, 7),
        (5, 0, 7),
        (1, 33, 70),
        (70, 33, 1),
        (1, 1, 1),
        (64, 64, 64),
        (65, 17, 63),
        (130, 129, 67),
        (3, 300, 5),
        (256, 11, 8),
    ];
    for (m, k, n) in shapes {
        for (trans_a, trans_b) in [(false, false), (true, false), (false, true), (true, true)] {
            let shape = MatmulShape { m, k, n, trans_a, trans_b };
            let a = random(&mut rng, m * k);
            let b = random(&mut rng, k * n);
            let want = cpu.matmul(&a, &b, shape).unwrap();
            let got = gpu.matmul(&a, &b, shape).unwrap();
            assert_close(&format!("{shape:?}"), &got, &want, product_tol(k));
        }
    }
}

#[test]
fn matmul_matches_candle_at_1000() {
    let Some(mut gpu) = gpu() else { return };
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let shape = MatmulShape::new(1000, 1000, 1000);
    let a = random(&mut rng, 1_000_000);
    let b = random(&mut rng, 1_000_000);
    let want = CandleBackend::new().matmul(&a, &b, shape).unwrap();
    let got = gpu.matmul(&a, &b, shape).unwrap();
    assert_close("1000^3", &got, &want, product_tol(1000));
}

#[test]
fn matmul_over_the_binding_limit_runs_in_row_blocks() {
    let Some(gpu) = gpu() else { return };
    // The flow's grid layer (262144 x 2 · 2 x 256) has a 256 MiB output, over lavapipe's 128 MiB binding
    // limit. The same path at a small scale: a 64 KiB cap and a 1 MB output, so 17 row blocks.
    let mut gpu = gpu.with_storage_cap(64 * 1024);
    let mut rng = ChaCha8Rng::seed_from_u64(15);
    let shape = MatmulShape::new(1000, 2, 256);
    let a = random(&mut rng, 1000 * 2);
    let b = random(&mut rng, 2 * 256);
    let want = CandleBackend::new().matmul(&a, &b, shape).unwrap();
    let got = gpu.matmul(&a, &b, shape).unwrap();
    assert_close("1000x2·2x256 in blocks", &got, &want, product_tol(2));
}

/// Devices created from many threads at once, as the view threads and these tests do. Before set-up was serialised
/// (`compute::gpu::adapters::setup_lock`), NVIDIA's Vulkan driver hung for good here; lavapipe never did. A hang
/// fails the test after two minutes rather than stalling the suite.
#[test]
fn devices_can_be_created_from_many_threads_at_once() {
    if gpu().is_none() {
        return;
    }
    let (done, finished) = std::sync::mpsc::channel();
    for t in 0..8u64 {
        let done = done.clone();
        std::thread::spawn(move || {
            let result = GpuBackend::new().map_err(|e| e.to_string()).and_then(|mut gpu| {
                let mut rng = ChaCha8Rng::seed_from_u64(100 + t);
                let shape = MatmulShape::new(64, 32, 16);
                let a = random(&mut rng, 64 * 32);
                let b = random(&mut rng, 32 * 16);
                let want = CandleBackend::new().matmul(&a, &b, shape).map_err(|e| e.to_string())?;
                let got = gpu.matmul(&a, &b, shape).map_err(|e| e.to_string())?;
                assert_close("a thread's product", &got, &want, product_tol(32));
                Ok(())
            });
            let _ = done.send(result);
        });
    }
    drop(done);
    for _ in 0..8 {
        let result = finished.recv_timeout(std::time::Duration::from_mins(2));
        assert!(matches!(result, Ok(Ok(()))), "a thread's device: {result:?}");
    }
}

#[test]
fn matmul_rejects_wrong_lengths() {
    let Some(mut gpu) = gpu() else { return };
    assert!(gpu.matmul(&[1.0; 5], &[1.0; 6], MatmulShape::new(2, 3, 2)).is_err());
}

fn dense(rng: &mut ChaCha8Rng, n_in: usize, n_out: usize, activation: Activation) -> DenseParams {
    DenseParams { n_in, n_out, weights: random(rng, n_in * n_out), biases: random(rng, n_out), activation }
}

#[test]
fn fused_dense_layers_match_candle_for_every_activation() {
    let Some(mut gpu) = gpu() else { return };
    let mut cpu = CandleBackend::new();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut version = 0;
    for activation in Activation::ALL {
        for (n_rows, n_in, n_out) in [(0, 3, 4), (1, 11, 8), (257, 11, 8), (100, 70, 65)] {
            // Scale the inputs so that sigmoid, tanh and softplus see large arguments too.
            let x: Vec<f32> = random(&mut rng, n_rows * n_in).iter().map(|v| v * 4.0).collect();
            let params = MlpParams {
                layers: vec![dense(&mut rng, n_in, n_out, activation), dense(&mut rng, n_out, 5, Activation::Identity)],
            };
            // New weights each time, so a new version of the cached network.
            version += 1;
            let key = WeightsKey::new(7, version);
            let want = cpu.mlp_forward(Rows::new(&params, key, &x, n_rows)).unwrap();
            let got = gpu.mlp_forward(Rows::new(&params, key, &x, n_rows)).unwrap();
            assert_close(
                &format!("{} {n_rows}x{n_in}->{n_out}", activation.name()),
                &got,
                &want,
                product_tol(n_in) * 4.0,
            );
            // Same key and version: the cached upload gives the same answer.
            let again = gpu.mlp_forward(Rows::new(&params, key, &x, n_rows)).unwrap();
            assert_eq!(again, got);
        }
    }
}

#[test]
fn weights_cache_follows_the_version() {
    let Some(mut gpu) = gpu() else { return };
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let x = random(&mut rng, 10 * 3);
    let mut params = MlpParams { layers: vec![dense(&mut rng, 3, 2, Activation::Identity)] };
    let first = gpu.mlp_forward(Rows::new(&params, WeightsKey::new(1, 1), &x, 10)).unwrap();
    params.layers[0].biases = vec![100.0, 100.0];
    let stale = gpu.mlp_forward(Rows::new(&params, WeightsKey::new(1, 1), &x, 10)).unwrap();
    assert_eq!(stale, first, "same version: the cached weights are used");
    let fresh = gpu.mlp_forward(Rows::new(&params, WeightsKey::new(1, 2), &x, 10)).unwrap();
    assert!(fresh.iter().all(|v| *v > 90.0), "new version: the new weights are uploaded");
}

fn coupling(rng: &mut ChaCha8Rng, dim: usize, mask: Vec<f32>) -> FlowLayerParams {
    let net = |rng: &mut ChaCha8Rng, last| MlpParams {
        layers: vec![dense(rng, dim, 16, Activation::Relu), dense(rng, 16, dim, last)],
    };
    FlowLayerParams::Coupling { mask, scale_net: net(rng, Activation::Tanh), shift_net: net(rng, Activation::Identity) }
}

fn test_flow(rng: &mut ChaCha8Rng) -> FlowParams {
    let layers = vec![
        FlowLayerParams::Affine { shift: vec![0.5, -0.25], log_scale: vec![0.3, -0.2] },
        coupling(rng, 2, vec![1.0, 0.0]),
        coupling(rng, 2, vec![0.0, 1.0]),
        coupling(rng, 2, vec![1.0, 0.0]),
    ];
    FlowParams { dim: 2, layers }
}

#[test]
fn flow_forward_and_inverse_match_candle_and_round_trip() {
    let Some(mut gpu) = gpu() else { return };
    let mut cpu = CandleBackend::new();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let flow = test_flow(&mut rng);
    let key = WeightsKey::new(9, 0);
    for n_rows in [0, 1, 300] {
        let z = random(&mut rng, n_rows * 2);
        for stage in 0..=flow.layers.len() {
            let (x_cpu, ld_cpu) = cpu.flow_forward(Rows::new(&flow, key, &z, n_rows), stage).unwrap();
            let (x_gpu, ld_gpu) = gpu.flow_forward(Rows::new(&flow, key, &z, n_rows), stage).unwrap();
            assert_close("flow forward x", &x_gpu, &x_cpu, 1e-4);
            assert_close("flow forward log_det", &ld_gpu, &ld_cpu, 1e-4);
            let (z_cpu, ild_cpu) = cpu.flow_inverse(Rows::new(&flow, key, &x_cpu, n_rows), stage).unwrap();
            let (z_gpu, ild_gpu) = gpu.flow_inverse(Rows::new(&flow, key, &x_cpu, n_rows), stage).unwrap();
            assert_close("flow inverse z", &z_gpu, &z_cpu, 1e-4);
            assert_close("flow inverse log_det", &ild_gpu, &ild_cpu, 1e-4);
            // inverse(forward(z)) = z, and both directions report the same forward log-det.
            assert_close("round trip", &z_gpu, &z, 1e-4);
            assert_close("log_det both ways", &ild_gpu, &ld_gpu, 1e-4);
        }
    }
    assert!(
        gpu.flow_forward(Rows::new(&flow, key, &[0.0; 2], 1), 9).is_err(),
        "a stage past the last layer is refused"
    );
}

#[test]
fn flow_log_density_matches_candle() {
    let Some(mut gpu) = gpu() else { return };
    let mut cpu = CandleBackend::new();
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let flow = test_flow(&mut rng);
    let x = random(&mut rng, 2 * 1000);
    let want = cpu.flow_log_density(Rows::new(&flow, WeightsKey::TRANSIENT, &x, 1000)).unwrap();
    let got = gpu.flow_log_density(Rows::new(&flow, WeightsKey::TRANSIENT, &x, 1000)).unwrap();
    assert_close("log density", &got, &want, 1e-4);
    for dim in [1, 3] {
        let z = random(&mut rng, 17 * dim);
        assert_close(
            "std normal",
            &gpu.std_normal_log_density(&z, 17, dim).unwrap(),
            &cpu.std_normal_log_density(&z, 17, dim).unwrap(),
            1e-5,
        );
    }
}

#[test]
fn maf_flows_fall_back_to_the_cpu_reference() {
    let Some(mut gpu) = gpu() else { return };
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let made = MlpParams { layers: vec![dense(&mut rng, 2, 4, Activation::Identity)] };
    let flow = FlowParams { dim: 2, layers: vec![FlowLayerParams::Maf { made }] };
    let z = random(&mut rng, 20);
    let (x, _) = gpu.flow_forward(Rows::new(&flow, WeightsKey::TRANSIENT, &z, 10), 1).unwrap();
    let want = CandleBackend::new().flow_forward(Rows::new(&flow, WeightsKey::TRANSIENT, &z, 10), 1).unwrap();
    assert_close("MAF via CPU", &x, &want.0, 1e-6);
}

fn mean_field(rng: &mut ChaCha8Rng, sizes: &[usize], sd: f32) -> MeanFieldParams {
    let layers = sizes
        .windows(2)
        .enumerate()
        .map(|(i, w)| MeanFieldLayer {
            n_in: w[0],
            n_out: w[1],
            weight_mean: random(rng, w[0] * w[1]),
            weight_sd: vec![sd; w[0] * w[1]],
            bias_mean: random(rng, w[1]),
            bias_sd: vec![sd; w[1]],
            activation: if i + 2 == sizes.len() { Activation::Identity } else { Activation::Sigmoid },
        })
        .collect();
    MeanFieldParams { layers }
}

#[test]
fn gpu_weight_noise_is_standard_normal() {
    let Some(mut gpu) = gpu() else { return };
    // One layer 1 -> 1 with mean 0, sd 1, input 1 and bias sd 0: each output is one weight draw.
    let params = MeanFieldParams {
        layers: vec![MeanFieldLayer {
            n_in: 1,
            n_out: 1,
            weight_mean: vec![0.0],
            weight_sd: vec![1.0],
            bias_mean: vec![0.0],
            bias_sd: vec![0.0],
            activation: Activation::Identity,
        }],
    };
    let n = 60_000;
    let draws = gpu.bnn_predictive(Rows::new(&params, WeightsKey::TRANSIENT, &[1.0], 1), n, Noise::Seeded(11)).unwrap();
    let mean = draws.iter().map(|&v| f64::from(v)).sum::<f64>() / n as f64;
    let var = draws.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let within_one = draws.iter().filter(|v| v.abs() < 1.0).count() as f64 / n as f64;
    // Standard errors: mean 1/sqrt(n) = 0.004, variance sqrt(2/n) = 0.006; 5 sigma bounds.
    assert!(mean.abs() < 0.021, "mean {mean}");
    assert!((var - 1.0).abs() < 0.03, "variance {var}");
    assert!((within_one - 0.6827).abs() < 0.01, "P(|eps| < 1) = {within_one}");
    let other =
        gpu.bnn_predictive(Rows::new(&params, WeightsKey::TRANSIENT, &[1.0], 1), 100, Noise::Seeded(12)).unwrap();
    assert_ne!(&other[..], &draws[..100], "another seed gives other draws");
}

#[test]
fn bnn_predictive_matches_candle() {
    let Some(mut gpu) = gpu() else { return };
    let mut cpu = CandleBackend::new();
    let mut rng = ChaCha8Rng::seed_from_u64(13);
    let params = mean_field(&mut rng, &[11, 8, 8, 1], 0.2);
    let key = WeightsKey::new(3, 0);
    let (n_rows, n_samples) = (77, 20);
    let x = random(&mut rng, n_rows * 11);
    // Uploaded noise: the very same weights on both sides.
    let eps: Vec<f32> = random(&mut rng, n_samples * params.noise_per_sample()).iter().map(|v| v * 2.0).collect();
    let want = cpu.bnn_predictive(Rows::new(&params, key, &x, n_rows), n_samples, Noise::Uploaded(&eps)).unwrap();
    let got = gpu.bnn_predictive(Rows::new(&params, key, &x, n_rows), n_samples, Noise::Uploaded(&eps)).unwrap();
    assert_eq!(got.len(), n_samples * n_rows);
    assert_close("bnn uploaded noise", &got, &want, product_tol(11) * 2.0);
    // Seeded noise: the shared counter-based generator draws the same numbers on both sides.
    let want = cpu.bnn_predictive(Rows::new(&params, key, &x, n_rows), n_samples, Noise::Seeded(5)).unwrap();
    let got = gpu.bnn_predictive(Rows::new(&params, key, &x, n_rows), n_samples, Noise::Seeded(5)).unwrap();
    assert_close("bnn seeded noise", &got, &want, 1e-3);
    // The predictive mean over samples agrees too.
    let mean = |v: &[f32]| {
        (0..n_rows)
            .map(|r| (0..n_samples).map(|s| v[s * n_rows + r]).sum::<f32>() / n_samples as f32)
            .collect::<Vec<_>>()
    };
    assert_close("bnn predictive mean", &mean(&got), &mean(&want), 1e-3);
    // Zero rows and zero samples give empty results.
    assert!(gpu.bnn_predictive(Rows::new(&params, key, &[], 0), n_samples, Noise::Seeded(5)).unwrap().is_empty());
    assert!(gpu.bnn_predictive(Rows::new(&params, key, &x, n_rows), 0, Noise::Seeded(5)).unwrap().is_empty());
}

#[test]
fn submitted_requests_can_be_polled_without_blocking() {
    let Some(mut gpu) = gpu() else { return };
    let mut rng = ChaCha8Rng::seed_from_u64(14);
    let shape = MatmulShape::new(200, 100, 50);
    let a = random(&mut rng, 200 * 100);
    let b = random(&mut rng, 100 * 50);
    let mut pending = gpu.submit_matmul(&a, &b, shape).unwrap();
    let start = std::time::Instant::now();
    let result = loop {
        if let Some(result) = pending.try_take() {
            break result.unwrap();
        }
        assert!(start.elapsed().as_secs() < 30, "the request never finished");
        std::thread::sleep(std::time::Duration::from_millis(1));
    };
    let want = CandleBackend::new().matmul(&a, &b, shape).unwrap();
    assert_close("polled", &result, &want, product_tol(100));
    assert!(pending.try_take().is_none(), "a result is taken once");
}

#[test]
fn the_chooser_keeps_small_work_on_the_cpu() {
    use bayes_explorer::compute::{AdapterSummary, BackendChoice, choose_backend};
    let adapter = |device_type: &str| AdapterSummary {
        name: "test".to_owned(),
        backend: "Vulkan".to_owned(),
        device_type: device_type.to_owned(),
        driver: String::new(),
        max_storage_buffer_binding_size: 1 << 30,
        max_compute_workgroup_size_x: 256,
    };
    let small = MatmulShape::new(256, 11, 8).flops();
    let big = MatmulShape::new(262_144, 256, 256).flops();
    assert_eq!(choose_backend(None, big, None), BackendChoice::Cpu);
    assert_eq!(choose_backend(Some(&adapter("DiscreteGpu")), small, None), BackendChoice::Cpu);
    assert_eq!(choose_backend(Some(&adapter("DiscreteGpu")), big, None), BackendChoice::Gpu);
    assert_eq!(choose_backend(Some(&adapter("Cpu")), big, None), BackendChoice::Cpu);
}
