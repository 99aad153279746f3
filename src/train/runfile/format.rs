//! The run file's format: what a saved run holds, and reading it back with every check.
//!
//! A run saved as `NAME.json` is two files side by side:
//! - `NAME.json`, the run file ([`RunFile`], pretty-printed JSON): the format and its version, the lab, the
//!   model's name and architecture, every hyperparameter (the lab's config struct as it serialises), the seed,
//!   the dataset (its name, how to load it again, and the sha256 of its values), the column roles, the split,
//!   the progress and every epoch's metrics, and the name, length and sha256 of the weights file;
//! - `NAME.safetensors`: the parameters as little-endian f32 tensors, named by the lab's
//!   [`SavedModel`](super::SavedModel), (version 2) the training state's large parts (`state.*`) and (version 3)
//!   the kept models' parameters (`kept.K.*`).
//!
//! Version 2 adds the `resume` record: everything a run needs to continue exactly (see `state`). Version 1 files
//! still open; they can be shown and re-run but not continued. Version 3 adds the `kept` list: the models the epoch
//! scrubber kept on the run's way (see `kept`); earlier files open without them.
//!
//! Loading checks everything before anything is used: a truncated, damaged, foreign or newer-version file gives a
//! [`RunFileError`] that names the file and what is wrong. The loader also looks at `NAME.safetensors.new` (where
//! an interrupted save leaves the weights), and only accepts weights whose sha256 the run file names.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::files::{pending_path, sha256_hex, weights_path_for};
use crate::Lab;
use crate::data::LoadRequest;
use crate::data::prepare::{Role, TextFeatures};
use crate::train::EpochRecord;

/// The `format` field of every run file.
pub const FORMAT_NAME: &str = "bayes-explorer run";
/// The newest run-file format this version reads and the one it writes.
pub const FORMAT_VERSION: u32 = 3;
/// The first format version whose runs can be continued (version 1 held no training state).
pub const FIRST_CONTINUABLE_VERSION: u32 = 2;

/// A run file larger than this is not one of ours (a long run's history is a few MB).
const MAX_RUN_FILE_BYTES: u64 = 256 << 20;

/// Why a run could not be saved or opened. Every variant names the file.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum RunFileError {
    /// The file cannot be read (missing, permissions, a folder).
    #[error("{file}: cannot read it: {message}")]
    Read {
        /// The file.
        file: String,
        /// What the system said.
        message: String,
    },
    /// The file is not a bayes-explorer run file at all.
    #[error("{file}: not a bayes-explorer run file ({why})")]
    Foreign {
        /// The file.
        file: String,
        /// What it is instead.
        why: String,
    },
    /// The file ends early.
    #[error("{file}: the run is truncated: {why}")]
    Truncated {
        /// The file.
        file: String,
        /// Where it ends.
        why: String,
    },
    /// The file is ours but its content is wrong.
    #[error("{file}: the run is damaged: {why}")]
    Corrupt {
        /// The file.
        file: String,
        /// What is wrong.
        why: String,
    },
    /// Written by a newer version of the app, in a format this one does not know.
    #[error(
        "{file}: the run file has format version {found}, newer than this bayes-explorer reads (up to {supported}); open it with a newer version"
    )]
    Newer {
        /// The file.
        file: String,
        /// Its format version.
        found: u64,
        /// The newest this version reads.
        supported: u32,
    },
    /// A run of another lab.
    #[error("{file}: it holds a {found} run, not a {expected} run")]
    WrongLab {
        /// The file.
        file: String,
        /// The lab it holds.
        found: &'static str,
        /// The lab asked for.
        expected: &'static str,
    },
    /// This lab's runs cannot be saved or opened yet.
    #[error("{file}: runs of the {lab} lab cannot be saved or opened yet")]
    Unsupported {
        /// The file.
        file: String,
        /// The lab.
        lab: &'static str,
    },
    /// A BNN posterior sampled by NUTS, opened as a trained run (it opens as a
    /// [`NutsRun`](super::NutsRun)).
    #[error(
        "{file}: it holds a BNN posterior sampled by NUTS, not a trained run; open it with `bayes-explorer train bnn --load`"
    )]
    Sampled {
        /// The file.
        file: String,
    },
    /// The run's dataset cannot be found, loaded or is not the one it was trained on.
    #[error("{file}: {message}")]
    Dataset {
        /// The run file.
        file: String,
        /// What went wrong with the data.
        message: String,
    },
    /// Saving failed; the files that were there are unchanged.
    #[error("{file}: cannot save the run: {message}")]
    Write {
        /// The file.
        file: String,
        /// Why.
        message: String,
    },
}

/// An f64 that survives JSON: finite values as numbers, NaN and the infinities as the strings "NaN", "inf" and
/// "-inf" (JSON has no number for them; serde_json would write `null` and refuse to read it back). Equality
/// compares the bits, so a NaN equals itself.
#[derive(Clone, Copy, Debug)]
pub struct JsonF64(pub f64);

impl PartialEq for JsonF64 {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}

impl Serialize for JsonF64 {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let v = self.0;
        if v.is_finite() {
            serializer.serialize_f64(v)
        } else if v.is_nan() {
            serializer.serialize_str("NaN")
        } else if v > 0.0 {
            serializer.serialize_str("inf")
        } else {
            serializer.serialize_str("-inf")
        }
    }
}

impl<'de> Deserialize<'de> for JsonF64 {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = JsonF64;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a number, \"NaN\", \"inf\" or \"-inf\"")
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<JsonF64, E> {
                Ok(JsonF64(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<JsonF64, E> {
                Ok(JsonF64(v as f64))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<JsonF64, E> {
                Ok(JsonF64(v as f64))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<JsonF64, E> {
                match v {
                    "NaN" => Ok(JsonF64(f64::NAN)),
                    "inf" => Ok(JsonF64(f64::INFINITY)),
                    "-inf" => Ok(JsonF64(f64::NEG_INFINITY)),
                    _ => Err(E::invalid_value(serde::de::Unexpected::Str(v), &self)),
                }
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// The dataset a run was trained on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DatasetRecord {
    /// Name shown to the user (a file name, a built-in set's label, a generated set's description).
    pub name: String,
    /// How to load it again: a built-in file, a generated set's spec, or a CSV file's path and options.
    pub source: LoadRequest,
    /// [`table_sha256`](super::table_sha256) of the values as loaded.
    pub sha256: String,
    /// Rows of the table.
    pub rows: usize,
}

/// One column and what it was used for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ColumnRecord {
    /// The column's name.
    pub name: String,
    /// Its role in the run.
    pub role: Role,
}

/// How the rows were split and scaled.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SplitRecord {
    /// Fraction of rows held out for testing.
    pub test_fraction: f64,
    /// Seed of the shuffle that makes the split.
    pub seed: u64,
    /// Features standardised with the training rows' mean and sd.
    pub standardize: bool,
    /// How features of text with more than two kinds went in (a file saved before the choice existed: as numbers).
    #[serde(default = "TextFeatures::saved_before_one_hot")]
    pub text_features: TextFeatures,
    /// Training rows.
    pub n_train: usize,
    /// Test rows.
    pub n_test: usize,
}

/// Where the run had got to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProgressRecord {
    /// Epochs completed.
    pub epochs_done: usize,
    /// Epochs the run was set to last.
    pub total_epochs: usize,
    /// Optimisation steps taken.
    pub step: u64,
    /// Steps in one epoch.
    pub steps_per_epoch: usize,
    /// The learning rate in use at the end (differs from the config's if it was changed during the run, in
    /// which case a re-run with the config does not retrace it).
    pub learning_rate: JsonF64,
    /// Loss of the last minibatch.
    pub batch_loss: JsonF64,
}

/// Named metrics in the trainer's order, written as a JSON object (read back in the file's order).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetricList(pub Vec<(String, JsonF64)>);

impl Serialize for MetricList {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in &self.0 {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for MetricList {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = MetricList;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of named metrics")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<MetricList, A::Error> {
                let mut list = Vec::new();
                while let Some((name, value)) = map.next_entry::<String, JsonF64>()? {
                    list.push((name, value));
                }
                Ok(MetricList(list))
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

/// One epoch's metrics.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SavedEpoch {
    /// 1-based epoch.
    pub epoch: usize,
    /// Named metrics, in the trainer's order.
    pub metrics: MetricList,
}

impl From<&EpochRecord> for SavedEpoch {
    fn from(r: &EpochRecord) -> Self {
        Self { epoch: r.epoch, metrics: MetricList(r.metrics.iter().map(|(k, v)| (k.clone(), JsonF64(*v))).collect()) }
    }
}

impl From<&SavedEpoch> for EpochRecord {
    fn from(r: &SavedEpoch) -> Self {
        Self { epoch: r.epoch, metrics: r.metrics.0.iter().map(|(k, v)| (k.clone(), v.0)).collect() }
    }
}

/// The weights file a run file belongs with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WeightsRecord {
    /// File name, in the run file's folder.
    pub file: String,
    /// Its length in bytes.
    pub bytes: u64,
    /// Its sha256, lower-case hex.
    pub sha256: String,
}

/// A kept model in the run file (version 3): where it is in the run and its layout (its tensors are `kept.K.*`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeptRecord {
    /// The optimisation step.
    pub step: u64,
    /// Where that is in epochs.
    pub epoch: JsonF64,
    /// The model's layout, as the run's own `architecture`.
    pub architecture: serde_json::Value,
}

/// The JSON run file, field for field.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunFile {
    /// Always [`FORMAT_NAME`].
    pub format: String,
    /// The format's version, [`FORMAT_VERSION`] when written by this version.
    pub format_version: u32,
    /// The version of bayes-explorer that wrote it.
    pub app_version: String,
    /// The lab.
    pub lab: Lab,
    /// Short name of the model ("bnn-full-mse", "vae-conv-gaussian", "realnvp").
    pub model: String,
    /// The run's seed (also in `config`): initial weights, minibatch order, weight samples.
    pub seed: u64,
    /// The lab's settings, every hyperparameter (`BnnConfig`, `VaeConfig`, `FlowConfig`).
    pub config: serde_json::Value,
    /// The parameters' layout: layer kinds, sizes, activations (the values are in the weights file).
    pub architecture: serde_json::Value,
    /// The data.
    pub dataset: DatasetRecord,
    /// Every column of the data with its role.
    pub columns: Vec<ColumnRecord>,
    /// The train/test split.
    pub split: SplitRecord,
    /// Steps and epochs done.
    pub progress: ProgressRecord,
    /// The last epoch's metrics: what the run reached (also the last entry of `history`).
    pub metrics: Option<SavedEpoch>,
    /// Every epoch's metrics, oldest first.
    pub history: Vec<SavedEpoch>,
    /// The weights file.
    pub weights: WeightsRecord,
    /// Version 2: the training state a run continues from, exactly (`state::ResumeRecord`; its large parts are
    /// tensors in the weights file); absent in version 1 files and in runs saved without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume: Option<serde_json::Value>,
    /// Version 3: the models kept on the way (the epoch scrubber's), oldest first (their
    /// tensors are `kept.K.*` in the weights file); absent in earlier files and in runs saved without them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kept: Vec<KeptRecord>,
}

/// Checks a run file's bytes: JSON, ours, a version we read, every field present.
pub(super) fn parse_run_file(bytes: &[u8], file: &str) -> Result<RunFile, RunFileError> {
    let foreign = |why: &str| RunFileError::Foreign { file: file.to_owned(), why: why.to_owned() };
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    match first {
        None => return Err(RunFileError::Truncated { file: file.to_owned(), why: "the file is empty".into() }),
        Some(b'{') => {}
        Some(_) if looks_like_safetensors(bytes) => {
            return Err(foreign("it is a weights file; open the .json run file next to it"));
        }
        Some(_) => return Err(foreign("it is not a JSON object")),
    }
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| match e.classify() {
        serde_json::error::Category::Eof => {
            RunFileError::Truncated { file: file.to_owned(), why: format!("the JSON ends early ({e})") }
        }
        _ => RunFileError::Corrupt { file: file.to_owned(), why: format!("not valid JSON: {e}") },
    })?;
    match value.get("format").and_then(serde_json::Value::as_str) {
        Some(FORMAT_NAME) => {}
        Some(other) => return Err(foreign(&format!("its format is {other:?}"))),
        None => return Err(foreign(&format!("no \"format\": \"{FORMAT_NAME}\" field"))),
    }
    let Some(version) = value.get("format_version").and_then(serde_json::Value::as_u64) else {
        return Err(RunFileError::Corrupt { file: file.to_owned(), why: "no format_version".into() });
    };
    if version > u64::from(FORMAT_VERSION) {
        return Err(RunFileError::Newer { file: file.to_owned(), found: version, supported: FORMAT_VERSION });
    }
    // From the bytes again, not the value: the metrics keep the file's order.
    serde_json::from_slice(bytes).map_err(|e| RunFileError::Corrupt { file: file.to_owned(), why: e.to_string() })
}

/// The first 8 bytes give a header length that a JSON header follows: a safetensors file.
fn looks_like_safetensors(bytes: &[u8]) -> bool {
    let Some(Ok(n)) = bytes.get(..8).map(<[u8; 8]>::try_from) else { return false };
    let n = u64::from_le_bytes(n);
    n > 1 && n < bytes.len() as u64 && bytes.get(8) == Some(&b'{')
}

/// Reads and checks a run file and finds its weights (by name, among the pending ones a save left, or next to it
/// under its own name), accepting only weights whose length and sha256 the run file names.
pub fn read_run_file(path: &Path) -> Result<(RunFile, Vec<u8>), RunFileError> {
    let file = path.display().to_string();
    let read_error = |e: std::io::Error| RunFileError::Read { file: file.clone(), message: e.to_string() };
    let meta = std::fs::metadata(path).map_err(read_error)?;
    if meta.is_dir() {
        return Err(RunFileError::Read { file, message: "it is a folder, not a file".into() });
    }
    if meta.len() > MAX_RUN_FILE_BYTES {
        return Err(RunFileError::Foreign { file, why: format!("{} bytes is too large for a run file", meta.len()) });
    }
    let bytes = std::fs::read(path).map_err(read_error)?;
    let record = parse_run_file(&bytes, &file)?;
    let folder = path.parent().unwrap_or(Path::new(""));
    let named = folder.join(&record.weights.file);
    if Path::new(&record.weights.file).components().count() != 1 {
        return Err(RunFileError::Corrupt {
            file,
            why: format!("the weights file {:?} is not a plain file name", record.weights.file),
        });
    }
    let mut candidates = vec![named.clone(), pending_path(&named)];
    if let Ok(own) = weights_path_for(path)
        && !candidates.contains(&own)
    {
        candidates.push(own);
    }
    let mut short = None;
    let mut different = None;
    for candidate in &candidates {
        let Ok(meta) = std::fs::metadata(candidate) else { continue };
        if meta.len() < record.weights.bytes {
            short.get_or_insert((candidate.clone(), meta.len()));
            continue;
        }
        if meta.len() != record.weights.bytes {
            different.get_or_insert(candidate.clone());
            continue;
        }
        let Ok(weights) = std::fs::read(candidate) else { continue };
        if sha256_hex(&weights) == record.weights.sha256 {
            return Ok((record, weights));
        }
        different.get_or_insert(candidate.clone());
    }
    let weights_name = record.weights.file.clone();
    Err(if let Some((candidate, len)) = short {
        RunFileError::Truncated {
            file: candidate.display().to_string(),
            why: format!("the weights file has {len} bytes of the {} the run file names", record.weights.bytes),
        }
    } else if let Some(candidate) = different {
        RunFileError::Corrupt {
            file: candidate.display().to_string(),
            why: format!("the weights do not match the run file {file} (their sha256 differs)"),
        }
    } else {
        RunFileError::Read {
            file,
            message: format!("its weights file {weights_name} is missing; keep it in the same folder as the run file"),
        }
    })
}
