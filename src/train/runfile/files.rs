//! The run's files on disk: the weights file's name, atomic writes, and the sha256 that ties the two files together.
//!
//! Writes are atomic: each file is written to a temporary file in the same folder, flushed to disk, then
//! renamed over the old one. The weights go first, to `NAME.safetensors.new`; the run file's rename is the
//! moment the new run replaces the old; the weights then take their place. A crash at any point leaves either
//! the old run or the new one loadable (the loader also looks at `NAME.safetensors.new`, and only accepts
//! weights whose sha256 the run file names).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

/// The extension of the weights file.
pub const WEIGHTS_EXTENSION: &str = "safetensors";
/// Suffix of the weights while a save is being committed.
const PENDING_SUFFIX: &str = ".new";

/// The weights file that goes with the run file `path`: the same name with the extension `.safetensors`.
pub fn weights_path_for(path: &Path) -> Result<PathBuf, String> {
    if path.extension().is_some_and(|e| e.eq_ignore_ascii_case(WEIGHTS_EXTENSION)) {
        return Err(format!(
            "the run file is the .json next to the .{WEIGHTS_EXTENSION} weights; give a name ending in .json"
        ));
    }
    if path.file_name().is_none() {
        return Err("the path names no file".into());
    }
    Ok(path.with_extension(WEIGHTS_EXTENSION))
}

pub(super) fn pending_path(weights: &Path) -> PathBuf {
    let mut name = weights.as_os_str().to_owned();
    name.push(PENDING_SUFFIX);
    PathBuf::from(name)
}

/// Writes a file atomically: `write` fills a new temporary file in the same folder, which is flushed to disk and
/// renamed over `path`. If anything fails, `path` is as it was and the temporary file is removed.
pub fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> std::io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let Some(name) = path.file_name() else {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "the path names no file"));
    };
    let folder = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let temp = folder.join(format!(
        ".{}.{}-{}.tmp",
        name.to_string_lossy(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).open(&temp)?;
    let written = write(&mut file).and_then(|()| file.sync_all());
    drop(file);
    if let Err(e) = written.and_then(|()| std::fs::rename(&temp, path)) {
        let _ = std::fs::remove_file(&temp);
        return Err(e);
    }
    sync_folder(path);
    Ok(())
}

/// Flushes a folder's entries (the renames) to disk, where the platform allows it.
pub(super) fn sync_folder(path: &Path) {
    let folder = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if let Ok(dir) = std::fs::File::open(folder) {
        let _ = dir.sync_all();
    }
}

/// Lower-case hex sha256 of `bytes`.
#[must_use]
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

pub(super) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}
