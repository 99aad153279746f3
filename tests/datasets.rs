//! The embedded datasets: checksums against `datasets/README.md`, shapes and contents; the generated 2-D
//! sets: size, seeding and the shape statistics their formulas imply; the split and standardisation.

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
        assert_eq!((a.n_rows(), a.n_cols()), (1234, 3), "{kind:?}");
        assert_eq!(a.values, spec.generate().values, "{kind:?}: same seed, same points");
        let other = SynthSpec { seed: 8, ..spec }.generate();
        assert_ne!(a.values, other.values, "{kind:?}: another seed, other points");
        assert!(a.values.iter().all(|v| v.is_finite()));
        let components = a.columns[2].max as usize + 1;
        assert!(components <= kind.n_components(), "{kind:?}");
    }
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
