//! Reading CSV files: delimiter sniffing, header detection, BOM, CRLF, gzip, columns of text read as categories,
//! and errors that say exactly where a file went wrong (file, line, column and the text found there).
//!
//! A column is text when it holds text ("setosa"), and fewer than [`STRAY_TEXT_RATIO`] numbers for each text: each
//! distinct text, trimmed, is a category, numbered in sorted order, and its missing cells are one more,
//! [`MISSING_CATEGORY`]. A number among text is a category too ("low", "2", a ticket's "113803" beside
//! "A/5 21171"). One text among twenty numbers or more is a typo in a column of numbers ("x1" among 7.4, 7.8, ...):
//! refused where it stands. A number no `f32` holds ("inf", "1e999") is refused anywhere.
//!
//! The reader never panics on input: every problem is a [`CsvError`] naming the file and, where it
//! applies, the 1-based line and column and what was expected.

use std::fmt;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};

use crate::data::source::DataSource;
use crate::data::table::{Column, CsvFacts, MissingCells, Table, column_stats};

/// Files larger than this (after decompression) are refused: datasets are trained in memory.
pub const MAX_BYTES: u64 = 256 * 1024 * 1024;

/// The category of a missing cell (empty, `NA`, `?`, ...) in a column of text: Titanic's cabin, mostly unknown, or
/// the sex of a penguin not sexed, keep their rows.
pub const MISSING_CATEGORY: &str = "(missing)";

/// A column with text in it that holds at least this many numbers for each text is a column of numbers with a typo
/// in it (one text among twenty numbers or more), not a column of text: a ticket's "A/5 21171" beside three numbers
/// in four is text.
pub const STRAY_TEXT_RATIO: usize = 20;

/// Number of raw rows kept for the preview: the lines of the file it shows as written, with the header's.
pub const PREVIEW_ROWS: usize = 8;

/// Whether the first record is a header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum HeaderMode {
    /// Decide from the text: a first record of names above numeric rows is a header.
    #[default]
    Auto,
    /// The first record is a header.
    Present,
    /// Every record is data.
    Absent,
}

/// What to do with a row whose cell is missing (empty, `NA`, `?`, `nan`) or not a number.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum MissingPolicy {
    /// Stop at the first such cell with an error that names it.
    #[default]
    Refuse,
    /// Keep such cells as missing (NaN in the table, counted per column in [`CsvFacts::missing`]): the rows that
    /// miss a value in a column the data's roles use are left out when the roles are known
    /// ([`crate::data::prepare::complete_rows`]), so that a column left ignored costs no rows.
    DropRows,
}

/// How to read a CSV file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CsvOptions {
    /// Field separator; `None` sniffs among `,`, `;` and tab.
    pub delimiter: Option<u8>,
    /// Header detection.
    pub header: HeaderMode,
    /// Column names to use when the file has no header (must match the column count).
    pub column_names: Option<Vec<String>>,
    /// Missing and non-numeric cells.
    pub missing: MissingPolicy,
}

/// Everything that can go wrong reading a CSV file. Every variant names the file.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum CsvError {
    /// The file could not be read.
    #[error("{file}: cannot read the file: {message}")]
    Io { file: String, message: String },
    /// The file (or its decompressed content) is larger than [`MAX_BYTES`].
    #[error(
        "{file}: the file is {size} and the limit is {limit}; datasets are held in memory, so use a smaller sample of it"
    )]
    TooLarge { file: String, size: HumanBytes, limit: HumanBytes },
    /// Gzip data that does not decompress.
    #[error("{file}: the file looks gzip-compressed but does not decompress: {message}")]
    Gzip { file: String, message: String },
    /// Zero bytes, or only white space.
    #[error("{file}: the file is empty; expected a header line and rows of numbers")]
    Empty { file: String },
    /// A NUL byte or invalid UTF-8: not a text file.
    #[error("{file}: line {line}, column {column}: {what}; expected a text CSV file")]
    Binary { file: String, line: u64, column: u64, what: &'static str },
    /// A header and no data rows.
    #[error("{file}: the file has a header (line {header_line}) but no data rows")]
    HeaderOnly { file: String, header_line: u64 },
    /// Only one column was found.
    #[error("{file}: found a single column; expected at least two columns separated by commas, semicolons or tabs")]
    SingleColumn { file: String },
    /// A row with a different number of fields than the header (or the first row); the column named is the first
    /// one missing, or the first one too many.
    #[error(
        "{file}: line {line}, column {}: {}; expected {expected} fields as on line {reference_line}",
        ragged_column(*.found, *.expected),
        ragged_what(*.found, *.expected)
    )]
    Ragged { file: String, line: u64, found: usize, expected: usize, reference_line: u64 },
    /// A missing value (empty, `NA`, `?`, `nan`, ...).
    #[error(
        "{file}: line {line}, column {column} (\"{column_name}\"): missing value {text:?}; expected a number (or leave out the rows that miss a value)"
    )]
    Missing { file: String, line: u64, column: usize, column_name: String, text: String },
    /// Text in a column of numbers, or a number no `f32` holds (in any column).
    #[error(
        "{file}: line {line}, column {column} (\"{column_name}\"): found {text:?}; expected a number (or leave out such rows)"
    )]
    NotNumeric { file: String, line: u64, column: usize, column_name: String, text: String },
    /// Quoting the CSV grammar cannot read.
    #[error("{file}: line {line}: {message}")]
    Malformed { file: String, line: u64, message: String },
    /// Column names given by the caller do not match the file.
    #[error("{file}: {given} column names were given but the file has {found} columns")]
    NamesMismatch { file: String, given: usize, found: usize },
    /// The user cancelled the load.
    #[error("{file}: loading was cancelled")]
    Cancelled { file: String },
}

/// The 1-based column where a row of `found` fields parts from rows of `expected`: the first field missing, or the
/// first one too many.
fn ragged_column(found: usize, expected: usize) -> usize {
    found.min(expected) + 1
}

/// What is wrong with a row of `found` fields among rows of `expected`.
fn ragged_what(found: usize, expected: usize) -> String {
    let fields = |n: usize| if n == 1 { "1 field".to_owned() } else { format!("{n} fields") };
    if found < expected {
        format!("the row ends after {}", fields(found))
    } else {
        format!("a field too many (the row has {})", fields(found))
    }
}

impl CsvError {
    /// The 1-based (line, column) the error points at, when it points at a cell.
    #[must_use]
    pub fn location(&self) -> Option<(u64, Option<usize>)> {
        match self {
            Self::Missing { line, column, .. } | Self::NotNumeric { line, column, .. } => Some((*line, Some(*column))),
            Self::Binary { line, column, .. } => Some((*line, Some(*column as usize))),
            Self::Ragged { line, found, expected, .. } => Some((*line, Some(ragged_column(*found, *expected)))),
            Self::Malformed { line, .. } => Some((*line, None)),
            _ => None,
        }
    }

    /// True for errors that dropping rows would get past.
    #[must_use]
    pub fn is_bad_cell(&self) -> bool {
        matches!(self, Self::Missing { .. } | Self::NotNumeric { .. })
    }
}

/// A byte count printed as KiB / MiB / GiB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HumanBytes(pub u64);

impl fmt::Display for HumanBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0 as f64;
        if b >= 1024.0 * 1024.0 * 1024.0 {
            write!(f, "{:.1} GiB", b / (1024.0 * 1024.0 * 1024.0))
        } else if b >= 1024.0 * 1024.0 {
            write!(f, "{:.1} MiB", b / (1024.0 * 1024.0))
        } else if b >= 1024.0 {
            write!(f, "{:.1} KiB", b / 1024.0)
        } else {
            write!(f, "{} bytes", self.0)
        }
    }
}

/// Progress and cancellation shared with a caller on another thread.
pub trait Progress {
    /// Fraction done, 0 to 1.
    fn set(&self, fraction: f32);
    /// True when the caller wants the work stopped.
    fn cancelled(&self) -> bool;
}

/// A [`Progress`] that reports nowhere and never cancels.
pub struct NoProgress;

impl Progress for NoProgress {
    fn set(&self, _fraction: f32) {}
    fn cancelled(&self) -> bool {
        false
    }
}

/// Progress held in atomics, readable from the UI thread.
#[derive(Debug, Default)]
pub struct SharedProgress {
    /// Fraction done as `f32` bits.
    fraction_bits: std::sync::atomic::AtomicU32,
    /// Set by the UI to stop the work.
    pub cancel: AtomicBool,
}

impl SharedProgress {
    /// Fraction done, 0 to 1.
    #[must_use]
    pub fn fraction(&self) -> f32 {
        f32::from_bits(self.fraction_bits.load(Ordering::Relaxed))
    }
}

impl Progress for SharedProgress {
    fn set(&self, fraction: f32) {
        self.fraction_bits.store(fraction.to_bits(), Ordering::Relaxed);
    }
    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }
}

/// Reads a CSV file from disk (plain or `.gz`) into a [`Table`].
pub fn read_path(path: &Path, options: &CsvOptions, progress: &dyn Progress) -> Result<Table, CsvError> {
    let file = display_name(path);
    let io = |e: std::io::Error| CsvError::Io { file: file.clone(), message: e.to_string() };
    let meta = std::fs::metadata(path).map_err(io)?;
    if meta.is_dir() {
        return Err(CsvError::Io { file, message: "it is a folder, not a file".into() });
    }
    if meta.len() > MAX_BYTES {
        return Err(CsvError::TooLarge { file, size: HumanBytes(meta.len()), limit: HumanBytes(MAX_BYTES) });
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    let mut reader = std::fs::File::open(path).map_err(io)?;
    let mut chunk = vec![0u8; 1 << 20];
    loop {
        if progress.cancelled() {
            return Err(CsvError::Cancelled { file });
        }
        let n = reader.read(&mut chunk).map_err(io)?;
        if n == 0 {
            break;
        }
        bytes.extend_from_slice(&chunk[..n]);
        // Reading is the first fifth of the work; parsing is the rest.
        progress.set(0.2 * bytes.len() as f32 / meta.len().max(1) as f32);
    }
    let mut table = read_bytes(&bytes, &file, options, progress)?;
    table.source = DataSource::File(path.to_path_buf());
    Ok(table)
}

/// The name used in messages: the file name, or the whole path when it has none.
#[must_use]
pub fn display_name(path: &Path) -> String {
    path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}

/// Reads CSV content (plain or gzip) into a [`Table`]; `file` names it in messages.
pub fn read_bytes(raw: &[u8], file: &str, options: &CsvOptions, progress: &dyn Progress) -> Result<Table, CsvError> {
    let file = file.to_owned();
    let gzipped = raw.starts_with(&[0x1f, 0x8b]);
    let decompressed;
    let mut bytes = if gzipped {
        decompressed = gunzip(raw, &file)?;
        decompressed.as_slice()
    } else {
        raw
    };
    let had_bom = bytes.starts_with(b"\xEF\xBB\xBF");
    if had_bom {
        bytes = &bytes[3..];
    }
    check_text(bytes, &file)?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(CsvError::Empty { file });
    }
    let crlf = bytes.windows(2).take(1 << 16).any(|w| w == b"\r\n");
    let delimiter = match options.delimiter {
        Some(d) => d,
        None => sniff_delimiter(bytes).ok_or(CsvError::SingleColumn { file: file.clone() })?,
    };
    let parser = Parser::new(bytes, file, delimiter, options, progress);
    let mut table = parser.run()?;
    if let Some(facts) = table.csv.as_mut() {
        facts.had_bom = had_bom;
        facts.gzipped = gzipped;
        facts.crlf = crlf;
    }
    Ok(table)
}

fn gunzip(raw: &[u8], file: &str) -> Result<Vec<u8>, CsvError> {
    let mut out = Vec::new();
    let mut decoder = flate2::read::MultiGzDecoder::new(raw).take(MAX_BYTES + 1);
    decoder.read_to_end(&mut out).map_err(|e| CsvError::Gzip { file: file.to_owned(), message: e.to_string() })?;
    if out.len() as u64 > MAX_BYTES {
        return Err(CsvError::TooLarge {
            file: file.to_owned(),
            size: HumanBytes(out.len() as u64),
            limit: HumanBytes(MAX_BYTES),
        });
    }
    Ok(out)
}

/// Refuses NUL bytes and invalid UTF-8, pointing at the first offending byte.
fn check_text(bytes: &[u8], file: &str) -> Result<(), CsvError> {
    let nul = memchr_nul(bytes);
    let bad_utf8 = std::str::from_utf8(bytes).err().map(|e| e.valid_up_to());
    let (offset, what) = match (nul, bad_utf8) {
        (Some(n), Some(u)) if u < n => (u, "invalid UTF-8 byte"),
        (Some(n), _) => (n, "NUL byte (this looks like a binary file)"),
        (None, Some(u)) => (u, "invalid UTF-8 byte"),
        (None, None) => return Ok(()),
    };
    let (line, column) = line_column(bytes, offset);
    Err(CsvError::Binary { file: file.to_owned(), line, column, what })
}

fn memchr_nul(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == 0)
}

/// 1-based line and column (in bytes) of a byte offset. A line ends at LF, CR LF or a lone CR: the line ends
/// the CSV grammar splits records at (and editors show).
fn line_column(bytes: &[u8], offset: usize) -> (u64, u64) {
    let before = &bytes[..offset.min(bytes.len())];
    let mut line = 1;
    let mut line_start = 0;
    for (i, &b) in before.iter().enumerate() {
        if b == b'\n' || (b == b'\r' && bytes.get(i + 1) != Some(&b'\n')) {
            line += 1;
            line_start = i + 1;
        }
    }
    (line, (offset - line_start) as u64 + 1)
}

/// Picks `,`, `;` or tab: the one found the same non-zero number of times (outside quotes) on the most of the
/// first lines, ties broken by the larger count. `None` when no candidate appears at all.
#[must_use]
pub fn sniff_delimiter(bytes: &[u8]) -> Option<u8> {
    const CANDIDATES: [u8; 3] = [b',', b';', b'\t'];
    let lines: Vec<&[u8]> =
        bytes.split(|&b| b == b'\n').filter(|l| !l.iter().all(u8::is_ascii_whitespace)).take(30).collect();
    let mut best: Option<(usize, usize, u8)> = None;
    for &d in &CANDIDATES {
        let counts: Vec<usize> = lines.iter().map(|l| count_outside_quotes(l, d)).collect();
        let Some(&first) = counts.first() else {
            continue;
        };
        if first == 0 {
            continue;
        }
        let consistent = counts.iter().filter(|&&c| c == first).count();
        let score = (consistent, first, d);
        if best.is_none_or(|b| (score.0, score.1) > (b.0, b.1)) {
            best = Some(score);
        }
    }
    best.map(|b| b.2)
}

fn count_outside_quotes(line: &[u8], delimiter: u8) -> usize {
    let mut quoted = false;
    let mut count = 0;
    for &b in line {
        if b == b'"' {
            quoted = !quoted;
        } else if b == delimiter && !quoted {
            count += 1;
        }
    }
    count
}

/// Missing-value markers, compared case-insensitively after trimming.
const MISSING: [&str; 9] = ["", "na", "n/a", "nan", "?", "null", "none", "-", "missing"];

/// What one cell holds.
enum Cell {
    Number(f32),
    /// A number written with a decimal comma.
    CommaNumber(f32),
    Missing,
    /// A number no `f32` holds: infinite, or beyond `f32::MAX` ("inf", "1e999"). Refused in any column.
    NotFinite,
    /// Text that is no number: a category in a text column, refused in a column of numbers.
    Text,
}

impl Cell {
    fn is_number(&self) -> bool {
        matches!(self, Self::Number(_) | Self::CommaNumber(_))
    }
}

/// A cell's value. `decimal_comma`: the file's fields are not separated by commas, so a comma in a number is a
/// decimal one, as a spreadsheet in much of Europe writes it ("0,27" with semicolons between fields): a cell with
/// one comma and no point reads with the comma as the point.
fn parse_cell(text: &str, decimal_comma: bool) -> Cell {
    let t = text.trim();
    if MISSING.iter().any(|m| t.eq_ignore_ascii_case(m)) {
        return Cell::Missing;
    }
    let finite = |v: f64| (v.is_finite() && v.abs() <= f64::from(f32::MAX)).then_some(v as f32);
    if let Ok(v) = t.parse::<f64>() {
        return finite(v).map_or(Cell::NotFinite, Cell::Number);
    }
    // Only text that is no number with a point is looked at for a comma: most files pay nothing for the rule.
    if decimal_comma
        && has_decimal_comma(t)
        && let Ok(v) = t.replacen(',', ".", 1).parse::<f64>()
    {
        return finite(v).map_or(Cell::NotFinite, Cell::CommaNumber);
    }
    Cell::Text
}

/// One comma and no point: "0,27".
fn has_decimal_comma(text: &str) -> bool {
    text.bytes().filter(|&b| b == b',').count() == 1 && !text.contains('.')
}

/// A blank line, which the csv crate gives as one empty (or blank) field.
fn is_blank(record: &csv::StringRecord) -> bool {
    record.len() == 1 && record.get(0).is_some_and(|f| f.trim().is_empty())
}

struct Parser<'a> {
    bytes: &'a [u8],
    file: String,
    delimiter: u8,
    options: &'a CsvOptions,
    progress: &'a dyn Progress,
    /// Once a read has found them: whether the file has a header, its number of columns, and what the read took
    /// each column to hold.
    layout: std::cell::RefCell<Option<Layout>>,
}

/// Whether a file has a header, its number of columns, and what each column holds.
type Layout = (bool, usize, Vec<Holds>);

impl<'a> Parser<'a> {
    fn new(bytes: &'a [u8], file: String, delimiter: u8, options: &'a CsvOptions, progress: &'a dyn Progress) -> Self {
        Self { bytes, file, delimiter, options, progress, layout: std::cell::RefCell::new(None) }
    }

    fn malformed(&self, e: &csv::Error) -> CsvError {
        CsvError::Malformed { file: self.file.clone(), line: self.line_at(e.position()), message: e.to_string() }
    }

    /// The 1-based line a record starts on. The csv crate's own line count ignores lone CRs, and its position
    /// lies before the blank lines (and the LF of a CR LF) that precede a record, so the line is counted here
    /// from the first byte of the record itself. Costs a pass over the text up to there: called for errors and
    /// the few lines a table keeps, never per row.
    fn line_at(&self, position: Option<&csv::Position>) -> u64 {
        let Some(position) = position else {
            return 0;
        };
        let mut start = usize::try_from(position.byte()).map_or(self.bytes.len(), |b| b.min(self.bytes.len()));
        while self.bytes.get(start).is_some_and(|b| matches!(b, b'\r' | b'\n')) {
            start += 1;
        }
        line_column(self.bytes, start).0
    }

    /// Reads the file. A column of text is read as categories
    /// ([`ColumnKind::Text`](crate::data::table::ColumnKind::Text)): one that holds fewer than [`STRAY_TEXT_RATIO`]
    /// numbers for each text (see [`Counts::holds`]). Which columns those are is guessed from each column's first
    /// cell that is not missing, and the file read; where its counts (or, after an error, a count of its own) say
    /// otherwise, the file is read again with the columns as they are. Most files are read once.
    fn run(&self) -> Result<Table, CsvError> {
        let first = self.read(None);
        let Some((has_header, n_cols, guess)) = self.layout.borrow().clone() else {
            return first.map(|(table, _)| table);
        };
        let decided = match &first {
            Err(CsvError::Cancelled { .. }) => return first.map(|(table, _)| table),
            Ok((_, decided)) => decided.clone(),
            Err(_) => self.count_kinds(has_header, n_cols),
        };
        if decided == guess { first.map(|(table, _)| table) } else { self.read(Some(&decided)).map(|(table, _)| table) }
    }

    /// A reader of the file's records as written: the header taken as a record, rows of any length, cells untrimmed.
    fn reader(&self) -> csv::Reader<&'a [u8]> {
        csv::ReaderBuilder::new()
            .delimiter(self.delimiter)
            .has_headers(false)
            .flexible(true)
            .trim(csv::Trim::None)
            .from_reader(self.bytes)
    }

    /// Whether a comma in a number is a decimal one: the fields are not separated by commas (see [`parse_cell`]).
    fn decimal_comma(&self) -> bool {
        self.delimiter != b','
    }

    /// The data records of `n_cols` cells (the others are refused as the file is read), after the header if it has
    /// one, as far as the file reads.
    fn data_records(&self, has_header: bool, n_cols: usize) -> impl Iterator<Item = csv::StringRecord> + '_ {
        self.reader()
            .into_records()
            .map_while(Result::ok)
            .filter(|rec| !is_blank(rec))
            .skip(usize::from(has_header))
            .filter(move |rec| rec.len() == n_cols)
    }

    /// What each of the `n_cols` columns holds as guessed from its first cell that is not missing: text or numbers
    /// (numbers for a column with no such cell). Reads only as far as the last column's first such cell.
    fn first_cell_kinds(&self, has_header: bool, n_cols: usize) -> Vec<Holds> {
        let decimal_comma = self.decimal_comma();
        let mut kinds: Vec<Option<Holds>> = vec![None; n_cols];
        for rec in self.data_records(has_header, n_cols) {
            if kinds.iter().all(Option::is_some) {
                break;
            }
            for (kind, text) in kinds.iter_mut().zip(rec.iter()).filter(|(kind, _)| kind.is_none()) {
                match parse_cell(text, decimal_comma) {
                    Cell::Missing => {}
                    Cell::Text => *kind = Some(Holds::Text),
                    Cell::Number(_) | Cell::CommaNumber(_) | Cell::NotFinite => *kind = Some(Holds::Numbers),
                }
            }
        }
        kinds.into_iter().map(|k| k.unwrap_or(Holds::Numbers)).collect()
    }

    /// What each of the `n_cols` columns holds, counted over every data record (see [`Counts::holds`]).
    fn count_kinds(&self, has_header: bool, n_cols: usize) -> Vec<Holds> {
        let decimal_comma = self.decimal_comma();
        let mut counts = vec![Counts::default(); n_cols];
        for rec in self.data_records(has_header, n_cols) {
            for (count, text) in counts.iter_mut().zip(rec.iter()) {
                count.add(&parse_cell(text, decimal_comma));
            }
        }
        counts.iter().map(Counts::holds).collect()
    }

    /// One pass over the file, its columns holding what `kinds` says, or as guessed from their first cells
    /// (`None`). Returns the table and what its columns hold as counted (see [`Counts::holds`]); sets the parser's
    /// layout.
    fn read(&self, kinds: Option<&[Holds]>) -> Result<(Table, Vec<Holds>), CsvError> {
        let file = self.file.clone();
        let decimal_comma = self.decimal_comma();
        let mut reader = self.reader();
        let mut records = reader.records();
        let mut record = || -> Option<Result<csv::StringRecord, CsvError>> {
            for r in records.by_ref() {
                match r {
                    // Blank lines come through as one empty field: skip them.
                    Ok(rec) if is_blank(&rec) => {}
                    Ok(rec) => return Some(Ok(rec)),
                    Err(e) => return Some(Err(self.malformed(&e))),
                }
            }
            None
        };
        let first = match record() {
            Some(r) => r?,
            None => return Err(CsvError::Empty { file }),
        };
        let first_line = self.line_at(first.position());
        let second = record().transpose()?;
        let has_header = match self.options.header {
            HeaderMode::Present => true,
            HeaderMode::Absent => false,
            HeaderMode::Auto => {
                // A first record of no numbers, or one with a name above a number (a text column's name above its
                // first class has no number under it, a year's "2020" no name above it).
                let is_number = |text: &str| parse_cell(text, decimal_comma).is_number();
                let all_text = first.iter().all(|f| !is_number(f));
                let name_above_number = second
                    .as_ref()
                    .is_some_and(|s| first.iter().zip(s.iter()).any(|(f, s)| !is_number(f) && is_number(s)));
                all_text || name_above_number
            }
        };
        let n_cols = first.len();
        if n_cols < 2 {
            return Err(CsvError::SingleColumn { file });
        }
        let names: Vec<String> = if has_header {
            first
                .iter()
                .enumerate()
                .map(|(j, f)| {
                    let name = f.trim();
                    if name.is_empty() { format!("column {}", j + 1) } else { name.to_owned() }
                })
                .collect()
        } else if let Some(given) = &self.options.column_names {
            if given.len() != n_cols {
                return Err(CsvError::NamesMismatch { file, given: given.len(), found: n_cols });
            }
            given.clone()
        } else {
            (1..=n_cols).map(|j| format!("column {j}")).collect()
        };

        let mut values: Vec<f32> = Vec::new();
        let mut row_buf: Vec<f32> = Vec::with_capacity(n_cols);
        let mut cells: Vec<Cell> = Vec::with_capacity(n_cols);
        let guess;
        let kinds = if let Some(kinds) = kinds {
            kinds
        } else {
            guess = self.first_cell_kinds(has_header, n_cols);
            &guess
        };
        self.layout.replace(Some((has_header, n_cols, kinds.to_vec())));
        let mut counts = vec![Counts::default(); n_cols];
        let mut categories: Vec<Categories> = (0..n_cols).map(|_| Categories::default()).collect();
        let mut first_rows = Vec::new();
        let mut missing: Vec<Option<MissingCells>> = vec![None; n_cols];
        let mut missing_text: Vec<Option<MissingCells>> = vec![None; n_cols];
        let mut comma_read = false;
        let mut n_rows = 0usize;
        let total = self.bytes.len().max(1) as f32;

        let pending: Vec<csv::StringRecord> =
            if has_header { second.into_iter().collect() } else { std::iter::once(first).chain(second).collect() };
        let mut pending = pending.into_iter();
        let mut counter = 0usize;
        // Where the last record starts, and whether its last field holds a line break.
        let mut last_record: Option<(csv::Position, bool)> = None;
        loop {
            let rec = match pending.next() {
                Some(r) => r,
                None => match record() {
                    Some(r) => r?,
                    None => break,
                },
            };
            counter += 1;
            if counter.is_multiple_of(4096) {
                if self.progress.cancelled() {
                    return Err(CsvError::Cancelled { file });
                }
                let at = rec.position().map_or(0, csv::Position::byte) as f32;
                self.progress.set(0.2 + 0.8 * at / total);
            }
            if rec.len() != n_cols {
                return Err(CsvError::Ragged {
                    file,
                    line: self.line_at(rec.position()),
                    found: rec.len(),
                    expected: n_cols,
                    reference_line: first_line,
                });
            }
            if first_rows.len() < PREVIEW_ROWS {
                first_rows.push(rec.iter().map(str::to_owned).collect());
            }
            if let Some(position) = rec.position() {
                let breaks = rec.get(n_cols - 1).is_some_and(|f| f.contains(['\n', '\r']));
                last_record = Some((position.clone(), breaks));
            }
            cells.clear();
            cells.extend(rec.iter().map(|text| parse_cell(text, decimal_comma)));
            for (count, cell) in counts.iter_mut().zip(&cells) {
                count.add(cell);
            }
            // A cell that cannot be read: a number no f32 holds, or missing or no number where numbers are (in a column
            // of text, missing is a category of its own).
            let bad = |(cell, kind): (&Cell, &Holds)| match cell {
                Cell::NotFinite => true,
                Cell::Missing | Cell::Text => *kind == Holds::Numbers,
                Cell::Number(_) | Cell::CommaNumber(_) => false,
            };
            if self.options.missing == MissingPolicy::Refuse
                && let Some(j) = cells.iter().zip(kinds).position(bad)
            {
                let (file, line, column) = (file.clone(), self.line_at(rec.position()), j + 1);
                let (column_name, text) = (names.get(j).cloned().unwrap_or_default(), rec.get(j).unwrap_or_default());
                let text = text.to_owned();
                return Err(if matches!(cells[j], Cell::Missing) {
                    CsvError::Missing { file, line, column, column_name, text }
                } else {
                    CsvError::NotNumeric { file, line, column, column_name, text }
                });
            }
            row_buf.clear();
            for (j, (((cell, kind), column), text)) in
                cells.iter().zip(kinds).zip(&mut categories).zip(rec.iter()).enumerate()
            {
                row_buf.push(match (cell, kind) {
                    (Cell::Missing, Holds::Text) => {
                        let cells = missing_text[j].get_or_insert_with(|| MissingCells {
                            column: j,
                            count: 0,
                            first: (n_rows, self.line_at(rec.position()), text.to_owned()),
                        });
                        cells.count += 1;
                        column.code(MISSING_CATEGORY)
                    }
                    (Cell::Number(_) | Cell::CommaNumber(_) | Cell::Text, Holds::Text) => column.code(text.trim()),
                    (Cell::Number(v), _) => *v,
                    (Cell::CommaNumber(v), _) => {
                        comma_read = true;
                        *v
                    }
                    // Kept as missing (refused above unless asked).
                    (Cell::NotFinite, _) | (Cell::Missing | Cell::Text, Holds::Numbers) => {
                        let cells = missing[j].get_or_insert_with(|| MissingCells {
                            column: j,
                            count: 0,
                            first: (n_rows, self.line_at(rec.position()), text.to_owned()),
                        });
                        cells.count += 1;
                        f32::NAN
                    }
                });
            }
            values.extend_from_slice(&row_buf);
            n_rows += 1;
        }
        // A quote that opens the last field and never closes takes the rest of the file into it: the file then ends
        // in no closing quote. (Opened in another field, it leaves the record short, which is refused above.)
        if let Some((position, true)) = &last_record
            && !self.bytes.trim_ascii_end().ends_with(b"\"")
        {
            let message = "a quote opens the last field and is never closed, so the field runs to the end of the file";
            return Err(CsvError::Malformed { file, line: self.line_at(Some(position)), message: message.into() });
        }
        if n_rows == 0 {
            if has_header {
                return Err(CsvError::HeaderOnly { file, header_line: first_line });
            }
            return Err(CsvError::Empty { file });
        }
        self.progress.set(1.0);
        let columns = names
            .into_iter()
            .zip(categories)
            .enumerate()
            .map(|(j, (name, column))| {
                if kinds[j] == Holds::Text {
                    column.into_column(name, &mut values[j..], n_cols)
                } else {
                    column_stats(name, values.iter().skip(j).step_by(n_cols).copied())
                }
            })
            .collect();
        let table = Table {
            name: file.clone(),
            source: DataSource::File(file.into()),
            columns,
            values,
            csv: Some(CsvFacts {
                delimiter: self.delimiter,
                has_header,
                had_bom: false,
                gzipped: false,
                crlf: false,
                decimal_comma: comma_read,
                dropped_rows: 0,
                first_dropped: None,
                missing: missing.into_iter().flatten().collect(),
                missing_text: missing_text.into_iter().flatten().collect(),
                first_rows,
            }),
        };
        Ok((table, counts.iter().map(Counts::holds).collect()))
    }
}

/// What a column holds: numbers, or text read as categories.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Holds {
    Numbers,
    Text,
}

/// How many of a column's cells are numbers and how many text (missing cells and numbers no `f32` holds aside).
#[derive(Clone, Copy, Default)]
struct Counts {
    numbers: usize,
    texts: usize,
}

impl Counts {
    fn add(&mut self, cell: &Cell) {
        match cell {
            Cell::Number(_) | Cell::CommaNumber(_) => self.numbers += 1,
            Cell::Text => self.texts += 1,
            Cell::Missing | Cell::NotFinite => {}
        }
    }

    /// What the column holds: text when it has text and fewer than [`STRAY_TEXT_RATIO`] numbers for each text;
    /// numbers otherwise, its text (if any) stray among them.
    fn holds(&self) -> Holds {
        if self.texts > 0 && self.numbers < STRAY_TEXT_RATIO * self.texts { Holds::Text } else { Holds::Numbers }
    }
}

/// A text column's categories while the file is read: each distinct (trimmed) text numbered as first met.
#[derive(Default)]
struct Categories {
    codes: std::collections::HashMap<String, u32>,
    names: Vec<String>,
}

impl Categories {
    /// The code of `text` in the order first met, numbering it when new.
    fn code(&mut self, text: &str) -> f32 {
        if let Some(&code) = self.codes.get(text) {
            return code as f32;
        }
        let code = self.names.len() as u32;
        self.codes.insert(text.to_owned(), code);
        self.names.push(text.to_owned());
        code as f32
    }

    /// The column, its categories sorted and its cells (every `stride`th value of `values`, from the first)
    /// renumbered to match.
    fn into_column(self, name: String, values: &mut [f32], stride: usize) -> Column {
        let mut order: Vec<usize> = (0..self.names.len()).collect();
        order.sort_by(|&a, &b| self.names[a].cmp(&self.names[b]));
        let mut new_code = vec![0f32; order.len()];
        for (new, &old) in order.iter().enumerate() {
            new_code[old] = new as f32;
        }
        // A missing cell (NaN: a number no f32 holds) stays missing.
        for v in values.iter_mut().step_by(stride).filter(|v| !v.is_nan()) {
            *v = new_code[*v as usize];
        }
        let mut names = self.names;
        let sorted: Vec<String> = order.iter().map(|&old| std::mem::take(&mut names[old])).collect();
        Column::text(name, sorted)
    }
}
