//! The data a run was trained on: its record ([`DatasetRecord::of`]), identified by the sha256 of its values, and
//! found and loaded again.

use std::path::Path;

use sha2::{Digest, Sha256};

use super::files::hex;
use super::format::{DatasetRecord, RunFileError};
use crate::data::csv::{MISSING_CATEGORY, NoProgress};
use crate::data::prepare::{complete_rows, left_out};
use crate::data::{DataSpec, LoadRequest, Role, Table};

impl DatasetRecord {
    /// The record of `table`, loaded by `request` (hashes every value: call it off the UI thread).
    #[must_use]
    pub fn of(table: &Table, request: &LoadRequest) -> Self {
        Self { name: table.name.clone(), source: request.clone(), sha256: table_sha256(table), rows: table.n_rows() }
    }
}

/// The sha256 of a table as loaded: a tag, the column and row counts (u64 little-endian), each column's name
/// (its length, then UTF-8), then every value row-major as f32 little-endian. It identifies the data a model
/// saw whatever its source (a CSV file, a built-in file, a generated set) and whatever the file's formatting.
#[must_use]
pub fn table_sha256(table: &Table) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"bayes-explorer table v1\0");
    hasher.update((table.n_cols() as u64).to_le_bytes());
    hasher.update((table.n_rows() as u64).to_le_bytes());
    for c in &table.columns {
        hasher.update((c.name.len() as u64).to_le_bytes());
        hasher.update(c.name.as_bytes());
    }
    let mut buffer = Vec::with_capacity(4 * 4096);
    for chunk in table.values.chunks(4096) {
        buffer.clear();
        buffer.extend(chunk.iter().flat_map(|v| v.to_le_bytes()));
        hasher.update(&buffer);
    }
    hex(&hasher.finalize())
}

/// The rows of `table` whose hash is `sha256`: those `spec` can use ([`complete_rows`]); or, for a run saved before
/// rows were left out by the columns used, every row or every row without a missing number (the reader dropped the
/// others as it read). `Err` for such a run whose label of text had blank cells: `"(missing)"` was one of its classes
/// then and is none now, so its data can no longer be prepared as it was trained.
fn same_rows(table: Table, spec: &DataSpec, sha256: &str) -> Result<Option<Table>, String> {
    if left_out(&table, spec).rows > 0 {
        let used = complete_rows(table.clone(), spec);
        if table_sha256(&used) == sha256 {
            return Ok(Some(used));
        }
    }
    let legacy = if table_sha256(&table) == sha256 {
        table
    } else if table.values.iter().any(|v| v.is_nan()) {
        let every_column = DataSpec { roles: vec![Role::Feature; table.n_cols()], ..spec.clone() };
        let complete = complete_rows(table, &every_column);
        if table_sha256(&complete) != sha256 {
            return Ok(None);
        }
        complete
    } else {
        return Ok(None);
    };
    // The run's rows, as saved; preparing them leaves out none unless its label's "(missing)" was a class.
    if left_out(&legacy, spec).rows > 0 {
        return Err(format!(
            "the run was trained with \"{MISSING_CATEGORY}\" as a class of its label, which the app no longer takes \
             for a class (such rows are left out); train it again"
        ));
    }
    Ok(Some(legacy))
}

/// Loads the dataset a run was trained on and checks it is the same data (by [`table_sha256`]). A CSV file is
/// looked for at its recorded path, then (for a shared run) next to the run file. The table is the one the run
/// trained on: without the rows that miss a value in a column `spec` uses ([`complete_rows`]), or, for a run saved
/// before rows were left out by the columns used, as it was then (`same_rows`). Returns the table and the request
/// that loaded it.
pub fn load_dataset(
    run_path: &Path,
    dataset: &DatasetRecord,
    spec: &DataSpec,
) -> Result<(Table, LoadRequest), RunFileError> {
    let file = run_path.display().to_string();
    let error = |message: String| RunFileError::Dataset { file: file.clone(), message };
    let mut requests = vec![dataset.source.clone()];
    if let LoadRequest::File { path, options } = &dataset.source {
        let folder = run_path.parent().unwrap_or(Path::new(""));
        let mut alternatives = Vec::new();
        if path.is_relative() {
            alternatives.push(folder.join(path));
        }
        if let Some(name) = path.file_name() {
            alternatives.push(folder.join(name));
        }
        for p in alternatives {
            if &p != path && p.is_file() {
                requests.push(LoadRequest::File { path: p, options: options.clone() });
            }
        }
    }
    let mut first_error = None;
    let mut mismatch = None;
    for request in requests {
        match request.run(&NoProgress) {
            Ok(table) => match same_rows(table, spec, &dataset.sha256) {
                Ok(Some(table)) => return Ok((table, request)),
                Ok(None) => {
                    mismatch.get_or_insert(request.describe());
                }
                Err(why) => return Err(error(why)),
            },
            Err(e) => {
                first_error.get_or_insert(e.to_string());
            }
        }
    }
    Err(match (mismatch, first_error) {
        (Some(name), _) => error(format!(
            "the dataset {name} is not the data the run was trained on (its sha256 differs); the run needs the same data"
        )),
        (None, Some(e)) => error(format!("the run's dataset cannot be loaded: {e}")),
        (None, None) => error("the run's dataset cannot be loaded".into()),
    })
}
