//! The embedded datasets: checksums against `datasets/README.md`, shapes and contents; the generated 2-D
//! sets: size, seeding and the shape statistics their formulas imply; the generated 1-D regressions: their gap, their
//! noise, and which lab offers them; the split and standardisation.

#![allow(clippy::float_cmp, reason = "values read from files and set by hand are compared exactly on purpose")]

use bayes_explorer::Lab;
use bayes_explorer::data::prepare::{DataSpec, OutputKind, Role, check_lab, image_side, prepare, split_counts};
use bayes_explorer::data::{BuiltinFile, SynthKind, SynthSpec};
use sha2::{Digest, Sha256};

fn mean(v: impl Iterator<Item = f64>) -> f64 {
    let (s, n) = v.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    s / n as f64
}

#[test]
fn checksums_match_the_readme() {
    let root = env!("CARGO_MANIFEST_DIR");
    let readme = std::fs::read_to_string(format!("{root}/datasets/README.md")).expect("datasets/README.md");
    for b in BuiltinFile::ALL {
        let digest = hex(&Sha256::digest(b.bytes()));
        let line = readme
            .lines()
            .find(|l| l.contains(b.file_name()) && l.contains("sha256"))
            .unwrap_or_else(|| panic!("datasets/README.md has no sha256 line for {}", b.file_name()));
        assert!(line.contains(&digest), "{}: sha256 is {digest}, the README says: {line}", b.file_name());
        // The embedded bytes are the file in datasets/.
        let on_disk = std::fs::read(format!("{root}/datasets/{}", b.file_name())).unwrap();
        assert_eq!(on_disk, b.bytes());
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[test]
fn red_wine_checksum_is_the_uci_file() {
    // models.md: the UCI file byte for byte has sha256 4a402cf0...f05e.
    let digest = hex(&Sha256::digest(BuiltinFile::WineRed.bytes()));
    assert!(digest.starts_with("4a402cf0") && digest.ends_with("f05e"), "{digest}");
}

#[test]
fn mnist_has_5000_images_of_784_pixels_and_500_per_digit() {
    let table = BuiltinFile::Mnist5k.load().unwrap();
    assert_eq!((table.n_rows(), table.n_cols()), (5000, 785));
    assert_eq!(table.columns[784].name, "label");
    let mut counts = [0usize; 10];
    for i in 0..table.n_rows() {
        counts[table.get(i, 784).unwrap() as usize] += 1;
    }
    assert_eq!(counts, [500; 10]);
    let pixels = &table.columns[..784];
    assert!(pixels.iter().all(|c| c.min >= 0.0 && c.max <= 255.0));
    assert_eq!(pixels.iter().map(|c| c.max).fold(0.0, f32::max), 255.0);
    let spec = DataSpec::default_for(&table);
    assert_eq!(spec.roles[784], Role::Label);
    assert_eq!(image_side(spec.feature_columns().len()), Some(28));
}

#[test]
fn digits_have_1797_images_of_8x8() {
    let table = BuiltinFile::Digits8x8.load().unwrap();
    assert_eq!((table.n_rows(), table.n_cols()), (1797, 65));
    assert!(table.columns[..64].iter().all(|c| c.max <= 16.0));
    let spec = DataSpec::default_for(&table);
    assert_eq!(image_side(spec.feature_columns().len()), Some(8));
}

#[test]
fn generated_sets_have_their_size_and_are_seeded() {
    for kind in SynthKind::ALL {
        let spec = SynthSpec { kind, n_points: 1234, noise: kind.default_noise(), seed: 7 };
        let a = spec.generate();
        let columns = if kind.is_regression() { 2 } else { 3 };
        assert_eq!((a.n_rows(), a.n_cols()), (1234, columns), "{kind:?}");
        assert_eq!(a.values, spec.generate().values, "{kind:?}: same seed, same points");
        let other = SynthSpec { seed: 8, ..spec }.generate();
        assert_ne!(a.values, other.values, "{kind:?}: another seed, other points");
        assert!(a.values.iter().all(|v| v.is_finite()));
        if !kind.is_regression() {
            let components = a.columns[2].max as usize + 1;
            assert!(components <= kind.n_components(), "{kind:?}");
        }
    }
}

#[test]
fn regressions_are_one_feature_and_a_target_offered_in_the_bnn_lab_only() {
    for kind in SynthKind::REGRESSIONS {
        let table = SynthSpec::default_for(kind).generate();
        let names: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["x", "y"], "{kind:?}");
        assert_eq!(table.n_rows(), 200, "{kind:?}: the default size");
        // Loaded in the BNN lab, `x` is the feature and `y` the target without the user picking.
        let spec = bayes_explorer::data::prepare::default_spec_for_lab(Lab::Bnn, &table);
        assert_eq!(spec.roles, vec![Role::Feature, Role::Target], "{kind:?}");
        assert!(check_lab(Lab::Bnn, &table, &spec).is_ok());
        let prepared = prepare(&table, &spec).unwrap();
        assert_eq!(prepared.output, Some(("y".to_owned(), OutputKind::Regression)));
        assert_eq!(prepared.n_features(), 1);
        assert!(check_lab(Lab::Flow, &table, &spec).is_err(), "a flow needs two features");
    }
    assert_eq!(SynthKind::offered_in(Lab::Bnn), SynthKind::REGRESSIONS);
    for lab in [Lab::Flow, Lab::Vae] {
        assert_eq!(SynthKind::offered_in(lab), SynthKind::DENSITIES);
        assert!(SynthKind::offered_in(lab).iter().all(|k| !k.is_regression()), "{lab:?} offers no 1-D set");
    }
    assert_eq!(SynthKind::from_cli("cubic-gap"), Some(SynthKind::CubicGap));
}

/// Sample standard deviation.
fn sd(v: &[f64]) -> f64 {
    let m = mean(v.iter().copied());
    (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt()
}

#[test]
fn the_gaps_are_empty_and_the_clusters_even() {
    for (kind, gap) in [(SynthKind::CubicGap, 0.3), (SynthKind::SineGap, 1.0)] {
        let t = SynthSpec { kind, n_points: 5001, noise: 0.1, seed: 11 }.generate();
        let x = column(&t, 0);
        let clusters = kind.input_clusters();
        assert_eq!(clusters.len(), 2);
        let inside = |c: (f64, f64), v: f64| (c.0 - 1e-6..=c.1 + 1e-6).contains(&v);
        assert!(x.iter().all(|&v| inside(clusters[0], v) || inside(clusters[1], v)), "{kind:?}: every x in a cluster");
        assert!(x.iter().all(|&v| v.abs() >= gap - 1e-6), "{kind:?}: nothing in the gap (-{gap}, {gap})");
        let left = x.iter().filter(|&&v| v < 0.0).count();
        assert_eq!(left, 2501, "{kind:?}: half the points (rounded up) in the left cluster");
        // Uniform within a cluster: its mean is the cluster's middle.
        let right: Vec<f64> = x.iter().copied().filter(|&v| v > 0.0).collect();
        let middle = 0.5 * (clusters[1].0 + clusters[1].1);
        assert!((mean(right.iter().copied()) - middle).abs() < 0.02 * (clusters[1].1 - clusters[1].0));
    }
}

#[test]
fn the_noise_has_the_stated_standard_deviation() {
    // Residuals from the stated mean: sd within 3 % of the noise (n = 20,000: the sd's own error is 0.5 %).
    let n = 20_000;
    for (kind, f) in
        [(SynthKind::CubicGap, (|x: f64| x.powi(3)) as fn(f64) -> f64), (SynthKind::SineGap, |x| (2.0 * x).sin())]
    {
        let t = SynthSpec { kind, n_points: n, noise: 0.1, seed: 12 }.generate();
        let residuals: Vec<f64> = column(&t, 0).iter().zip(column(&t, 1)).map(|(&x, y)| y - f(x)).collect();
        assert!(mean(residuals.iter().copied()).abs() < 0.005, "{kind:?}: the noise has mean 0");
        let s = sd(&residuals);
        assert!((s - 0.1).abs() < 0.003, "{kind:?}: noise sd {s}, stated 0.1");
    }
    // Heteroscedastic: sd(x) = noise |x|, so the residual divided by |x| has sd `noise`, and the far rows are
    // noisier than the near ones.
    let t = SynthSpec { kind: SynthKind::Heteroscedastic, n_points: n, noise: 0.2, seed: 13 }.generate();
    let (x, y) = (column(&t, 0), column(&t, 1));
    assert!(x.iter().all(|v| (-3.0..=3.0).contains(v)));
    let residual = |i: usize| y[i] - x[i].sin();
    let scaled: Vec<f64> = (0..n).filter(|&i| x[i].abs() > 0.05).map(|i| residual(i) / x[i].abs()).collect();
    let s = sd(&scaled);
    assert!((s - 0.2).abs() < 0.006, "noise per unit |x|: {s}, stated 0.2");
    let band =
        |lo: f64, hi: f64| -> Vec<f64> { (0..n).filter(|&i| (lo..hi).contains(&x[i].abs())).map(residual).collect() };
    // sd over |x| uniform on [a, b] is noise sqrt(E[x²]) = noise sqrt((a² + ab + b²) / 3).
    let near = sd(&band(0.0, 1.0));
    let far = sd(&band(2.0, 3.0));
    let expected = |a: f64, b: f64| 0.2 * ((a * a + a * b + b * b) / 3.0).sqrt();
    assert!((near - expected(0.0, 1.0)).abs() < 0.05 * expected(0.0, 1.0), "near: {near}");
    assert!((far - expected(2.0, 3.0)).abs() < 0.05 * expected(2.0, 3.0), "far: {far}");
    assert!(far > 3.0 * near, "the noise grows with |x|");
}

fn column(table: &bayes_explorer::data::Table, j: usize) -> Vec<f64> {
    (0..table.n_rows()).map(|i| f64::from(table.get(i, j).unwrap())).collect()
}

#[test]
fn moons_match_their_formula() {
    // Outer moon (cos t, sin t), inner (1 - cos t, 1 - sin t - 0.5), t ~ U[0, pi]:
    // E[x] = 0.5 over both, E[y] = 2/pi on the outer and 0.5 - 2/pi on the inner, so 0.25 overall.
    let t = SynthSpec { kind: SynthKind::Moons, n_points: 20_000, noise: 0.05, seed: 1 }.generate();
    let (x, y) = (column(&t, 0), column(&t, 1));
    assert!((mean(x.iter().copied()) - 0.5).abs() < 0.02);
    assert!((mean(y.iter().copied()) - 0.25).abs() < 0.02);
    let outer_y = mean((0..t.n_rows()).filter(|&i| t.get(i, 2) == Some(0.0)).map(|i| y[i]));
    assert!((outer_y - 2.0 / std::f64::consts::PI).abs() < 0.02, "{outer_y}");
    // Without noise, every outer point lies on the unit circle.
    let clean = SynthSpec { kind: SynthKind::Moons, n_points: 500, noise: 0.0, seed: 2 }.generate();
    for i in 0..250 {
        let r = f64::from(clean.get(i, 0).unwrap()).hypot(f64::from(clean.get(i, 1).unwrap()));
        assert!((r - 1.0).abs() < 1e-5);
    }
}

#[test]
fn circles_eight_gaussians_checkerboard_spirals_pinwheel_shapes() {
    let radius = |t: &bayes_explorer::data::Table, i: usize| {
        f64::from(t.get(i, 0).unwrap()).hypot(f64::from(t.get(i, 1).unwrap()))
    };
    let c = SynthSpec { kind: SynthKind::Circles, n_points: 2000, noise: 0.0, seed: 3 }.generate();
    for i in 0..2000 {
        let expected = if c.get(i, 2) == Some(0.0) { 1.0 } else { 0.5 };
        assert!((radius(&c, i) - expected).abs() < 1e-5);
    }
    let g = SynthSpec { kind: SynthKind::EightGaussians, n_points: 8000, noise: 0.1, seed: 4 }.generate();
    assert!((mean((0..8000).map(|i| radius(&g, i))) - 2.0).abs() < 0.02);
    for k in 0..8 {
        let share = (0..8000).filter(|&i| g.get(i, 2) == Some(k as f32)).count() as f64 / 8000.0;
        assert!((share - 0.125).abs() < 0.02, "component {k}: {share}");
    }
    let b = SynthSpec { kind: SynthKind::Checkerboard, n_points: 4000, noise: 0.0, seed: 5 }.generate();
    for i in 0..4000 {
        let (x, y) = (b.get(i, 0).unwrap(), b.get(i, 1).unwrap());
        assert!((-2.0..2.0).contains(&x) && (-2.0..2.0).contains(&y));
        let (col, row) = ((x + 2.0).floor() as i32, (y + 2.0).floor() as i32);
        assert_eq!((col + row) % 2, 0, "({x}, {y}) is on a light square");
    }
    let s = SynthSpec { kind: SynthKind::Spirals, n_points: 3000, noise: 0.0, seed: 6 }.generate();
    assert!((0..3000).all(|i| radius(&s, i) <= 2.0 + 1e-5));
    assert_eq!((0..3000).filter(|&i| s.get(i, 2) == Some(1.0)).count(), 1500);
    let p = SynthSpec { kind: SynthKind::Pinwheel, n_points: 5000, noise: 0.3, seed: 7 }.generate();
    // Radial N(1, 0.3) scaled by 1.5, tangential noise small: mean radius near 1.5.
    assert!((mean((0..5000).map(|i| radius(&p, i))) - 1.5).abs() < 0.1);
}

#[test]
fn split_is_seeded_and_standardised_on_training_rows() {
    let table = BuiltinFile::WineRed.load().unwrap();
    let mut spec = DataSpec::default_for(&table);
    assert_eq!(spec.roles[11], Role::Target, "quality 3..8 is a number to regress, not a class code");
    assert_eq!(split_counts(1599, 0.15), (1359, 240));
    let a = prepare(&table, &spec).unwrap();
    assert_eq!((a.n_train(), a.n_test(), a.n_features()), (1359, 240, 11));
    assert_eq!(a.output, Some(("quality".to_owned(), OutputKind::Regression)));
    assert_eq!(a, prepare(&table, &spec).unwrap(), "same seed, same split");
    for j in 0..11 {
        let col: Vec<f64> = a.x_train.chunks(11).map(|r| f64::from(r[j])).collect();
        let m = mean(col.iter().copied());
        let sd = mean(col.iter().map(|v| (v - m).powi(2))).sqrt();
        assert!(m.abs() < 1e-4 && (sd - 1.0).abs() < 1e-3, "feature {j}: mean {m}, sd {sd}");
    }
    spec.seed = 43;
    assert_ne!(a.y_test, prepare(&table, &spec).unwrap().y_test, "another seed, another split");
}

#[test]
fn labs_check_their_data_up_front() {
    let wine = BuiltinFile::WineRed.load().unwrap();
    let spec = DataSpec::default_for(&wine);
    assert!(check_lab(Lab::Bnn, &wine, &spec).is_ok());
    assert!(check_lab(Lab::Flow, &wine, &spec).unwrap_err().contains("exactly two feature columns (found 11)"));
    let moons = SynthSpec::default_for(SynthKind::Moons).generate();
    let spec = DataSpec::default_for(&moons);
    assert_eq!(spec.roles, vec![Role::Feature, Role::Feature, Role::Label]);
    assert!(check_lab(Lab::Flow, &moons, &spec).is_ok());
    let mut no_output = spec.clone();
    no_output.roles[2] = Role::Ignored;
    assert!(check_lab(Lab::Bnn, &moons, &no_output).is_err());
    assert!(check_lab(Lab::Vae, &moons, &no_output).is_ok());
    assert_eq!(image_side(784), Some(28));
    assert_eq!(image_side(11), None);
}
