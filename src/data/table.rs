//! A loaded dataset: named numeric columns in a row-major matrix, with per-column statistics.

use serde::{Deserialize, Serialize};

use crate::data::source::DataSource;

/// What a column's values are: whole numbers, other numbers, or text read as categories.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ColumnKind {
    /// Every value is a whole number (e.g. a label or a pixel intensity).
    Integer,
    /// At least one value has a fractional part.
    Real,
    /// Text ("setosa", "male"): each distinct text is a category, numbered 0, 1, ... in sorted order, and the
    /// column's values are those numbers ([`Column::categories`] names them).
    Text,
}

impl ColumnKind {
    /// Short lower-case name for tables and the CLI.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Integer => "integer",
            Self::Real => "real",
            Self::Text => "text",
        }
    }
}

/// Distinct values are counted exactly up to this many; above it a column is "many-valued".
pub const DISTINCT_CAP: usize = 64;

/// A column's name and what its values look like.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Column {
    /// Header text, or a generated name (`column 3`) when the file has no header.
    pub name: String,
    /// Integer or real.
    pub kind: ColumnKind,
    /// Smallest value.
    pub min: f32,
    /// Largest value.
    pub max: f32,
    /// Number of distinct values, counted up to [`DISTINCT_CAP`] (`DISTINCT_CAP + 1` means "more").
    pub n_distinct: usize,
    /// A text column's categories, in the order of their numbers (sorted); empty for a column of numbers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
}

impl Column {
    /// A text column whose values number `categories` (sorted, each used at least once) from 0.
    #[must_use]
    pub fn text(name: String, categories: Vec<String>) -> Self {
        Self {
            name,
            kind: ColumnKind::Text,
            min: 0.0,
            max: categories.len().saturating_sub(1) as f32,
            n_distinct: categories.len().min(DISTINCT_CAP + 1),
            categories,
        }
    }

    /// True when the column looks like a class label: whole numbers or text, with 2 to `max_classes` values.
    #[must_use]
    pub fn looks_like_label(&self, max_classes: usize) -> bool {
        matches!(self.kind, ColumnKind::Integer | ColumnKind::Text)
            && self.n_distinct >= 2
            && self.n_distinct <= max_classes
    }

    /// True for a column of text of more than two kinds: neither a 0/1 indicator nor an order to read as numbers
    /// (the penguins' three islands).
    #[must_use]
    pub fn has_many_texts(&self) -> bool {
        self.kind == ColumnKind::Text && self.categories.len() > 2
    }

    /// How a value of this column is written: a text column's category, else the number ("missing" for a missing
    /// cell, kept as NaN).
    #[must_use]
    pub fn value_text(&self, value: f32) -> String {
        if value.is_nan() {
            return "missing".into();
        }
        let category = (value >= 0.0 && value.fract() == 0.0).then(|| self.categories.get(value as usize)).flatten();
        category.cloned().unwrap_or_else(|| format!("{value}"))
    }
}

/// A numeric table, `n_rows` x `columns.len()`, stored row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    /// Name shown to the user: a file name or a generated set's description.
    pub name: String,
    /// Where it came from.
    pub source: DataSource,
    /// Column names and statistics.
    pub columns: Vec<Column>,
    /// Row-major values, `n_rows * columns.len()`.
    pub values: Vec<f32>,
    /// How the file was read (for CSV sources).
    pub csv: Option<CsvFacts>,
}

/// What the CSV reader detected, shown in the preview and by `data inspect`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[allow(clippy::struct_excessive_bools, reason = "independent facts about a file, shown as such")]
pub struct CsvFacts {
    /// The field separator.
    pub delimiter: u8,
    /// Whether the first record was read as a header.
    pub has_header: bool,
    /// The file started with a UTF-8 byte order mark.
    pub had_bom: bool,
    /// The file was gzip-compressed.
    pub gzipped: bool,
    /// Lines end in CR LF.
    pub crlf: bool,
    /// Numbers were written with a decimal comma ("0,27", between semicolons or tabs).
    #[serde(default)]
    pub decimal_comma: bool,
    /// Rows left out because they miss a value in a column the data's roles use ([`crate::data::prepare::
    /// complete_rows`]); 0 in a table as read.
    pub dropped_rows: usize,
    /// The first row left out, to show the user an example: (line, column name, text).
    pub first_dropped: Option<(u64, String, String)>,
    /// Each column's missing cells (empty, `NA`, `?`, `nan`, text among numbers, a number no `f32` holds), kept as
    /// NaN where the user asked to keep such rows ([`crate::data::MissingPolicy::DropRows`]); in column order, only
    /// columns with one. Empty in a table without its incomplete rows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<MissingCells>,
    /// Each text column's missing cells, a category of their own (`"(missing)"`): a value as a feature, but no
    /// class of an output, whose rows [`crate::data::prepare::complete_rows`] leaves out. In column order, only
    /// columns with one; empty in a table without its incomplete rows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_text: Vec<MissingCells>,
    /// The raw text of the first rows (header excluded), for the preview.
    pub first_rows: Vec<Vec<String>>,
}

/// One column's missing cells in a table as read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissingCells {
    /// The column's index.
    pub column: usize,
    /// How many of its cells are missing.
    pub count: usize,
    /// The first: its row's index in the table, its line in the file and its text.
    pub first: (usize, u64, String),
}

/// A count as the window and the command line write it: a whole number with thousands separators ("1,530,000";
/// "1599" is "1,599"), anything else as `n` writes itself. Line numbers and seeds, which name rather than count,
/// are written plain.
#[must_use]
pub fn grouped(n: impl std::fmt::Display) -> String {
    let text = n.to_string();
    let (sign, digits) = text.strip_prefix('-').map_or(("", text.as_str()), |d| ("-", d));
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return text;
    }
    let mut out = String::with_capacity(text.len() + digits.len() / 3);
    out.push_str(sign);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Human name of a delimiter byte.
#[must_use]
pub fn delimiter_name(delimiter: u8) -> &'static str {
    match delimiter {
        b',' => "comma (,)",
        b';' => "semicolon (;)",
        b'\t' => "tab",
        b' ' => "space",
        _ => "other",
    }
}

impl Table {
    /// Builds a table from columns' names and row-major values, computing each column's statistics.
    ///
    /// # Panics
    /// Panics if `values.len()` is not a multiple of `names.len()` (a programming error, never user input).
    #[must_use]
    pub fn from_values(name: String, source: DataSource, names: Vec<String>, values: Vec<f32>) -> Self {
        let n_cols = names.len();
        assert!(n_cols > 0 && values.len().is_multiple_of(n_cols), "values must fill whole rows");
        let columns = names
            .into_iter()
            .enumerate()
            .map(|(j, name)| column_stats(name, values.iter().skip(j).step_by(n_cols).copied()))
            .collect();
        Self { name, source, columns, values, csv: None }
    }

    /// Number of rows.
    #[must_use]
    pub fn n_rows(&self) -> usize {
        if self.columns.is_empty() { 0 } else { self.values.len() / self.columns.len() }
    }

    /// Number of columns.
    #[must_use]
    pub fn n_cols(&self) -> usize {
        self.columns.len()
    }

    /// One row as a slice.
    #[must_use]
    pub fn row(&self, i: usize) -> Option<&[f32]> {
        let n = self.n_cols();
        self.values.get(i * n..(i + 1) * n)
    }

    /// Value at row `i`, column `j`.
    #[must_use]
    pub fn get(&self, i: usize, j: usize) -> Option<f32> {
        if j >= self.n_cols() {
            return None;
        }
        self.values.get(i * self.n_cols() + j).copied()
    }

    /// Index of the column with this name (exact match, then case-insensitive).
    #[must_use]
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns
            .iter()
            .position(|c| c.name == name)
            .or_else(|| self.columns.iter().position(|c| c.name.eq_ignore_ascii_case(name)))
    }
}

/// Statistics of one column's values, its missing cells (NaN) left aside.
pub(crate) fn column_stats(name: String, values: impl Iterator<Item = f32>) -> Column {
    let mut min = f32::INFINITY;
    let mut max = f32::NEG_INFINITY;
    let mut integer = true;
    let mut distinct: Vec<f32> = Vec::new();
    // A missing cell (NaN) is no value: it moves neither the range nor the kind.
    for v in values.filter(|v| !v.is_nan()) {
        min = min.min(v);
        max = max.max(v);
        integer &= v.fract() == 0.0;
        if distinct.len() <= DISTINCT_CAP && !distinct.contains(&v) {
            distinct.push(v);
        }
    }
    if min > max {
        // No rows: report an empty range rather than infinities.
        min = 0.0;
        max = 0.0;
    }
    Column {
        name,
        kind: if integer { ColumnKind::Integer } else { ColumnKind::Real },
        min,
        max,
        n_distinct: distinct.len(),
        categories: Vec::new(),
    }
}
