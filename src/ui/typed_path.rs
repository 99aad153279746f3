//! A path as a user types or pastes it into the path field: file managers copy paths in quotes or as `file://`
//! addresses, and shells write the home folder as `~`. And the whole path a message shows for it.

use std::path::{Path, PathBuf};

/// The file a typed or pasted `text` names, or `None` for blank text.
///
/// Surrounding white space goes; one pair of matching surrounding quotes (`"…"` or `'…'`, as file managers and
/// shells copy a path) goes; a `file://` address becomes its path, with `%20` and the like decoded; a leading
/// `~` (alone or before a `/`) becomes `home`. Everything else is kept as typed, so a name that really holds quotes
/// or a `~` further in still loads.
#[must_use]
pub fn path_from_typed(text: &str, home: Option<&Path>) -> Option<PathBuf> {
    let mut text = text.trim();
    for quote in ['"', '\''] {
        if text.len() >= 2 && text.starts_with(quote) && text.ends_with(quote) {
            text = text[1..text.len() - 1].trim();
            break;
        }
    }
    if text.is_empty() {
        return None;
    }
    if let Some(address) = text.strip_prefix("file://") {
        // file:///home/a/x.csv (no host) or file://localhost/home/a/x.csv.
        let path = address.strip_prefix("localhost").unwrap_or(address);
        return Some(PathBuf::from(percent_decoded(path)));
    }
    if let Some(home) = home {
        if text == "~" {
            return Some(home.to_path_buf());
        }
        if let Some(rest) = text.strip_prefix("~/") {
            return Some(home.join(rest));
        }
    }
    Some(PathBuf::from(text))
}

/// `text` with each `%XX` escape replaced by its byte; an escape that is not two hex digits stays as written.
/// `path` whole, as a message shows it: from the root, without the `.` and `..` it was typed with
/// (`/work/main/../shared/a.csv` is `/work/shared/a.csv`). Symbolic links are followed where the file exists; a path
/// that does not exist is made absolute as typed.
#[must_use]
pub fn whole_path(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).or_else(|_| std::path::absolute(path)).unwrap_or_else(|_| path.to_owned())
}

fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(hi), Some(lo)) =
                (bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex))
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_path_is_kept_and_blank_text_names_nothing() {
        assert_eq!(path_from_typed("  /data/wine.csv \n", None), Some(PathBuf::from("/data/wine.csv")));
        assert_eq!(path_from_typed("   ", None), None);
        assert_eq!(path_from_typed("\"\"", None), None);
    }

    #[test]
    fn percent_escapes_decode_and_broken_ones_stay() {
        assert_eq!(percent_decoded("a%20b%C3%A9"), "a bé");
        assert_eq!(percent_decoded("100%"), "100%");
        assert_eq!(percent_decoded("%zz%4"), "%zz%4");
    }

    #[test]
    fn a_whole_path_has_no_dots_where_the_file_exists_and_is_absolute_where_it_does_not() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        std::fs::create_dir(dir.path().join("data")).expect("a folder");
        std::fs::write(dir.path().join("data").join("a.csv"), "x\n1\n").expect("a file");
        let typed = dir.path().join("data").join("..").join("data").join(".").join("a.csv");
        let whole = super::whole_path(&typed);
        assert_eq!(whole, std::fs::canonicalize(dir.path()).unwrap().join("data").join("a.csv"));
        assert!(
            !whole.components().any(|c| matches!(c, std::path::Component::ParentDir | std::path::Component::CurDir))
        );
        // A file that is not there: from the root, as typed.
        let missing = super::whole_path(std::path::Path::new("no-such-folder/b.csv"));
        assert!(missing.is_absolute() && missing.ends_with("no-such-folder/b.csv"), "{}", missing.display());
    }
}
