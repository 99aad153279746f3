//! Property tests of the CSV reader (`data::csv`): whatever bytes it is given, it never panics, and it either
//! loads a table or returns a [`CsvError`] that names the file and, where the error points at a place, the line
//! and column (and these point at what the message says is there).
//!
//! Three kinds of input: arbitrary bytes; "CSV soup" (bytes drawn from the characters CSV files are made of);
//! and generated grids written as CSV with every delimiter, quoting, missing cells, `NA` and its kin, words,
//! numbers in every notation, very long fields, ragged rows, blank lines, LF, CR LF and lone CR line ends, a
//! BOM and gzip, and columns of text (class names, with numbers and missing cells among them). A grid's expected
//! table or error follows from the reader's documented rules (blank lines skipped, header detection, the first bad
//! row, missing markers, which columns are text and their categories), so the grids are checked exactly, line
//! numbers, values and categories included.
//!
//! Each property runs `PROPTEST_CASES` cases (proptest's variable; 256 when unset, well under a second in all
//! in a release build). Long run, 2026-11-21: `PROPTEST_CASES=500000 nice cargo test --release --test
//! csv_properties -- --test-threads=1`: 500,000 cases of each of the four properties (2,000,000 in all), no
//! failure, in 8 min 24 s of wall time (261 s of CPU: the process was niced and shared the machine with
//! builds) on a 2-core AMD EPYC virtual machine with 23 GiB of memory, Linux 6.18. In
//! `csv_properties.proptest-regressions`, the first three cases are what these properties found before the
//! line fix in `data/csv.rs` (CR LF, lone CR and blank lines gave wrong line numbers; see
//! `line_numbers_count_crlf_lone_cr_and_blank_lines` in `tests/csv_loader.rs`); the fourth, from an earlier
//! long run, was this test comparing a column's minimum 0 with -0 bit for bit. The fifth and sixth are what these
//! properties found in readers broken on purpose to check that they see text columns (categories numbered in
//! reverse order; a text column of as many numbers as texts read as numbers), the seventh in one that never read
//! stray text among numbers as such, and the eighth in one that read exactly twenty numbers to a text as text; all
//! four pass on the reader.

#![allow(clippy::float_cmp, reason = "a column's minimum and maximum are values of the column, compared exactly")]

use std::fmt::Write as _;
use std::io::{Read, Write};

use bayes_explorer::data::csv::{CsvError, NoProgress, STRAY_TEXT_RATIO, read_bytes};
use bayes_explorer::data::table::ColumnKind;
use bayes_explorer::data::{CsvOptions, HeaderMode, MissingPolicy, Table};
use proptest::prelude::*;
use proptest::sample::select;

/// The name every input is read under; every message must start with it.
const FILE: &str = "test.csv";

/// Cells the reader counts as missing (compared case-insensitively after trimming).
const MISSING_MARKERS: [&str; 9] = ["", "na", "n/a", "nan", "?", "null", "none", "-", "missing"];

// ---------------------------------------------------------------------------------------------------------
// What the reader promises, checked on any input.
// ---------------------------------------------------------------------------------------------------------

/// The bytes the reader parses: gunzipped when gzip, without a BOM. `None` when the gzip data is broken.
fn content_of(raw: &[u8]) -> Option<Vec<u8>> {
    let mut bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(raw).read_to_end(&mut out).ok()?;
        out
    } else {
        raw.to_vec()
    };
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        bytes.drain(..3);
    }
    Some(bytes)
}

/// Byte offsets at which each line starts; a line ends at LF, CR LF or a lone CR (as editors show them).
fn line_starts(bytes: &[u8]) -> Vec<usize> {
    let mut starts = vec![0];
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\r' if bytes.get(i + 1) == Some(&b'\n') => {
                starts.push(i + 2);
                i += 1;
            }
            b'\n' | b'\r' => starts.push(i + 1),
            _ => {}
        }
        i += 1;
    }
    starts
}

/// 1-based line of a byte offset.
fn line_of(starts: &[usize], offset: usize) -> u64 {
    starts.partition_point(|&s| s <= offset) as u64
}

enum Class {
    Number(f32),
    Missing,
    /// A number no `f32` holds ("inf", "1e400"): refused in every column.
    NotFinite,
    /// No number: a category in a text column, refused among numbers.
    Text,
}

/// The reader's rule for one cell: trimmed, a missing marker, else a number (finite, fitting an `f32`, or not), else
/// text; where the fields are not separated by commas (`decimal_comma`), one comma and no point is a decimal comma
/// ("1,5").
fn classify(text: &str, decimal_comma: bool) -> Class {
    let t = text.trim();
    if MISSING_MARKERS.iter().any(|m| t.eq_ignore_ascii_case(m)) {
        return Class::Missing;
    }
    let t = if decimal_comma && t.matches(',').count() == 1 && !t.contains('.') {
        t.replace(',', ".")
    } else {
        t.to_owned()
    };
    match t.parse::<f64>() {
        Ok(v) if v.is_finite() && v.abs() <= f64::from(f32::MAX) => Class::Number(v as f32),
        Ok(_) => Class::NotFinite,
        Err(_) => Class::Text,
    }
}

/// Checks what any read must satisfy; `Err` carries the broken promise.
fn check_any(raw: &[u8], options: &CsvOptions, result: &Result<Table, CsvError>) -> Result<(), String> {
    match result {
        Ok(table) => check_table(table, options),
        Err(error) => check_error(raw, error),
    }
}

fn check_table(table: &Table, options: &CsvOptions) -> Result<(), String> {
    let n_cols = table.n_cols();
    let csv = table.csv.as_ref().ok_or("a CSV table without its CSV facts")?;
    if n_cols < 2 {
        return Err(format!("loaded a table of {n_cols} columns"));
    }
    if table.values.len() != table.n_rows() * n_cols || table.n_rows() == 0 {
        return Err(format!("{} values for {} rows of {n_cols}", table.values.len(), table.n_rows()));
    }
    // A missing cell is NaN, and only where asked for and counted; no other value is not finite.
    if let Some(v) = table.values.iter().find(|v| v.is_infinite()) {
        return Err(format!("a non-finite value {v} was loaded"));
    }
    let nan = table.values.iter().filter(|v| v.is_nan()).count();
    if nan != csv.missing.iter().map(|m| m.count).sum::<usize>() {
        return Err(format!("{nan} missing cells, {:?} counted", csv.missing));
    }
    if options.missing == MissingPolicy::Refuse && nan > 0 {
        return Err(format!("{nan} missing cells kept though keeping them was not asked"));
    }
    for m in &csv.missing {
        let first = table.get(m.first.0, m.column).filter(|v| v.is_nan());
        let earlier = (0..m.first.0).any(|i| table.get(i, m.column).is_some_and(f32::is_nan));
        if m.count == 0 || first.is_none() || earlier {
            return Err(format!("{m:?} is no column's first missing cell"));
        }
    }
    for (j, column) in table.columns.iter().enumerate() {
        let values: Vec<f32> = table.values.iter().skip(j).step_by(n_cols).copied().filter(|v| !v.is_nan()).collect();
        let (min, max) = match (
            values.iter().copied().fold(f32::INFINITY, f32::min),
            values.iter().copied().fold(f32::NEG_INFINITY, f32::max),
        ) {
            // A column of nothing but missing cells: an empty range, not infinities.
            (min, max) if min > max => (0.0, 0.0),
            range => range,
        };
        // Compared as numbers: which of 0 and -0 `f32::min` returns is unspecified.
        if column.min != min || column.max != max || column.name.trim().is_empty() {
            return Err(format!("column {j} {column:?}: values run from {min} to {max}"));
        }
        // A text column's values number its categories, sorted and distinct, each one used.
        let text = column.kind == ColumnKind::Text;
        let used = |k: usize| values.contains(&(k as f32));
        if text == column.categories.is_empty()
            || !column.categories.windows(2).all(|w| w[0] < w[1])
            || (text && (max != (column.categories.len() - 1) as f32 || !(0..column.categories.len()).all(used)))
        {
            return Err(format!("column {j} {column:?}: values {values:?}"));
        }
    }
    let header_ok = match options.header {
        HeaderMode::Present => csv.has_header,
        HeaderMode::Absent => !csv.has_header,
        HeaderMode::Auto => true,
    };
    if !header_ok {
        return Err(format!("header {:?} asked, has_header {}", options.header, csv.has_header));
    }
    if csv.dropped_rows != 0 || csv.first_dropped.is_some() {
        return Err(format!("{} rows left out as read, first {:?}", csv.dropped_rows, csv.first_dropped));
    }
    if let Some(given) = options.column_names.as_ref().filter(|_| !csv.has_header) {
        let names: Vec<&String> = table.columns.iter().map(|c| &c.name).collect();
        if names != given.iter().collect::<Vec<_>>() {
            return Err(format!("names {names:?}, given {given:?}"));
        }
    }
    Ok(())
}

fn check_error(raw: &[u8], error: &CsvError) -> Result<(), String> {
    let message = error.to_string();
    if !message.starts_with(&format!("{FILE}: ")) {
        return Err(format!("the message does not name the file: {message}"));
    }
    let points_at_a_place = matches!(
        error,
        CsvError::Binary { .. }
            | CsvError::Missing { .. }
            | CsvError::NotNumeric { .. }
            | CsvError::Ragged { .. }
            | CsvError::Malformed { .. }
    );
    if points_at_a_place != error.location().is_some() {
        return Err(format!("location {:?} for {error:?}", error.location()));
    }
    if let CsvError::Gzip { .. } | CsvError::TooLarge { .. } = error {
        return if raw.starts_with(&[0x1f, 0x8b]) { Ok(()) } else { Err(format!("{error:?} for plain text")) };
    }
    let bytes = content_of(raw).ok_or_else(|| format!("broken gzip gave {error:?}"))?;
    let starts = line_starts(&bytes);
    let n_lines = starts.len() as u64;
    if let Some((line, column)) = error.location() {
        if line == 0 || line > n_lines {
            return Err(format!("line {line} of a text of {n_lines} lines: {message}"));
        }
        if !message.contains(&format!("line {line}")) {
            return Err(format!("the message does not name line {line}: {message}"));
        }
        if let Some(column) = column
            && (column == 0 || !message.contains(&format!("column {column}")))
        {
            return Err(format!("the message does not name column {column}: {message}"));
        }
    }
    match error {
        CsvError::Binary { line, column, what, .. } => {
            let offset = starts[*line as usize - 1] + *column as usize - 1;
            let nul = bytes.iter().position(|&b| b == 0);
            let bad_utf8 = std::str::from_utf8(&bytes).err().map(|e| e.valid_up_to());
            let first_bad = nul.into_iter().chain(bad_utf8).min();
            if first_bad != Some(offset) {
                return Err(format!(
                    "line {line}, column {column} ({what}) is byte {offset}; the first bad byte is {first_bad:?}"
                ));
            }
        }
        CsvError::Missing { text, .. } if !matches!(classify(text, false), Class::Missing) => {
            return Err(format!("{text:?} called missing: {message}"));
        }
        // Text refused is no number with a decimal point, or one no f32 holds (whether a comma was a decimal point
        // depends on the delimiter).
        CsvError::NotNumeric { text, .. } if !matches!(classify(text, false), Class::Text | Class::NotFinite) => {
            return Err(format!("{text:?} called not numeric: {message}"));
        }
        CsvError::Ragged { line, found, expected, reference_line, .. }
            if found == expected || reference_line >= line =>
        {
            return Err(format!("ragged: {message}"));
        }
        CsvError::HeaderOnly { header_line, .. } if *header_line == 0 || *header_line > n_lines => {
            return Err(format!("header line {header_line} of {n_lines}: {message}"));
        }
        _ => {}
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------
// Generated grids and the outcome the reader's rules give them.
// ---------------------------------------------------------------------------------------------------------

/// One written row: its cells' contents, which cells are quoted even when they need not be, the line end,
/// and blank text written after it (a blank line, spaces, or nothing).
#[derive(Clone, Debug)]
struct Row {
    cells: Vec<String>,
    force_quotes: Vec<bool>,
    ending: &'static str,
    blank_after: &'static str,
}

#[derive(Clone, Debug)]
struct Grid {
    rows: Vec<Row>,
    delimiter: u8,
    bom: bool,
    final_ending: bool,
    gzip: bool,
}

fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i32>().prop_map(|v| v.to_string()),
        (-1e6f64..1e6).prop_map(|v| format!("{v}")),
        any::<f32>().prop_map(|v| format!("{v:e}")),
        (-100.0f64..100.0, 0usize..8).prop_map(|(v, p)| format!("{v:.p$}")),
        select(&["0", "-0", "+1", ".5", "5.", "1e5", "1E-5", "1e38", "3.4e38", "1e-50", "0000012", "7 "][..])
            .prop_map(String::from),
    ]
}

fn missing() -> impl Strategy<Value = String> {
    select(&["", "NA", "na", "N/A", "NaN", "nan", "?", "null", "NULL", "None", "-", "missing", "  ", " NA "][..])
        .prop_map(String::from)
}

/// Cells that are not numbers (or not finite ones, or too large for an `f32`), some holding delimiters, quotes
/// or non-ASCII text.
const WORDS: [&str; 30] = [
    "abc",
    "x1",
    "1.2.3",
    "inf",
    "-inf",
    "Infinity",
    "1e400",
    "-1e39",
    "3.5e38",
    "--1",
    "1,5",
    "1;5",
    "a\tb",
    "é",
    "∞",
    "0x10",
    "1_000",
    "two words",
    "\"q\"",
    "'1'",
    "1 2",
    "TRUE",
    "١٢",
    "\u{a0}1",
    "#",
    "1e",
    "e5",
    "+-1",
    ".",
    "NaNa",
];

fn word() -> impl Strategy<Value = String> {
    prop_oneof![select(&WORDS[..]).prop_map(String::from), "[ -~]{0,12}", "[a-z0-9 ,;\t\"\r\n.]{0,10}"]
}

/// Fields of thousands of characters: digits (a number too large past 39 of them), a tiny decimal, letters.
fn long_field() -> impl Strategy<Value = String> {
    prop_oneof![
        (1usize..20_000).prop_map(|n| "9".repeat(n)),
        (1usize..20_000).prop_map(|n| format!("0.{}1", "0".repeat(n))),
        (1usize..20_000).prop_map(|n| "x".repeat(n)),
    ]
}

fn cell() -> impl Strategy<Value = String> {
    let padded =
        (0usize..3, 0usize..3, number()).prop_map(|(l, r, n)| format!("{}{n}{}", " ".repeat(l), " ".repeat(r)));
    prop_oneof![
        16 => number(),
        3 => padded,
        3 => missing(),
        2 => word(),
        1 => long_field(),
    ]
}

/// A text column's cells: class names (some written with spaces around them or in quotes), now and then a number
/// or a missing cell.
fn category() -> impl Strategy<Value = String> {
    let name =
        select(&["setosa", "versicolor", "virginica", "male", "female", "Biscoe", "b", "B", "Ω", "two words"][..]);
    prop_oneof![
        12 => name.clone().prop_map(String::from),
        2 => (name, 1usize..3).prop_map(|(n, pad)| format!("{}{n}{}", " ".repeat(pad), " ".repeat(pad - 1))),
        2 => number(),
        2 => missing(),
        1 => word(),
    ]
}

/// What a generated column's cells are drawn from.
#[derive(Clone, Copy, Debug)]
enum Drawn {
    /// Any cell: numbers mostly, missing cells, words, long fields.
    Any,
    /// A text column's: class names mostly.
    Classes,
    /// Numbers with stray text now and then, and "x1" in the first row (a typo above a column of numbers).
    Stray,
}

/// A row of cells drawn as `columns` says; now and then a row of any length.
fn row(columns: &[Drawn]) -> impl Strategy<Value = Row> + use<> {
    let whole: Vec<BoxedStrategy<String>> = columns
        .iter()
        .map(|drawn| match drawn {
            Drawn::Any => cell().boxed(),
            Drawn::Classes => category().boxed(),
            Drawn::Stray => prop_oneof![60 => number(), 1 => word(), 1 => missing()].boxed(),
        })
        .collect();
    let cells = prop_oneof![12 => whole, 1 => prop::collection::vec(cell(), 0..8)];
    let endings = select(&["\n", "\n", "\r\n", "\r\n", "\r"][..]);
    let blanks = select(&["", "", "", "", "", "", "\n", "\r\n", "   \n", "\r"][..]);
    (cells, prop::collection::vec(prop::bool::weighted(0.1), 8), endings, blanks)
        .prop_map(|(cells, force_quotes, ending, blank_after)| Row { cells, force_quotes, ending, blank_after })
}

/// Grids of up to 6 columns and 13 rows, or 30 to 59 rows (enough for stray text among numbers to be read as such).
fn grid() -> impl Strategy<Value = Grid> {
    let drawn = select(&[Drawn::Any, Drawn::Any, Drawn::Any, Drawn::Classes, Drawn::Stray][..]);
    (1usize..7)
        .prop_flat_map(move |n_cols| prop::collection::vec(drawn.clone(), n_cols))
        .prop_flat_map(|columns| {
            let short = prop::collection::vec(row(&columns), 0..14);
            let rows = prop_oneof![2 => short, 1 => prop::collection::vec(row(&columns), 30..60)];
            (Just(columns), rows)
        })
        .prop_map(|(columns, mut rows)| {
            // A typo in the first row of a column of numbers, where the first row is whole.
            if let Some(first) = rows.first_mut().filter(|r| r.cells.len() == columns.len()) {
                for (cell, drawn) in first.cells.iter_mut().zip(&columns) {
                    if matches!(drawn, Drawn::Stray) {
                        "x1".clone_into(cell);
                    }
                }
            }
            rows
        })
        .prop_flat_map(|rows| {
            (Just(rows), select(&[b',', b';', b'\t'][..]), any::<bool>(), any::<bool>(), prop::bool::weighted(0.1))
        })
        .prop_map(|(rows, delimiter, bom, final_ending, gzip)| Grid { rows, delimiter, bom, final_ending, gzip })
}

fn options() -> impl Strategy<Value = CsvOptions> {
    let header = select(&[HeaderMode::Auto, HeaderMode::Present, HeaderMode::Absent][..]);
    let missing = select(&[MissingPolicy::Refuse, MissingPolicy::DropRows][..]);
    let names = prop::option::weighted(0.1, prop::collection::vec("[a-z]{1,5}", 1..6));
    (header, missing, names).prop_map(|(header, missing, column_names)| CsvOptions {
        delimiter: None,
        header,
        column_names,
        missing,
    })
}

fn needs_quotes(content: &str, delimiter: u8) -> bool {
    content.bytes().any(|b| b == delimiter || b == b'"' || b == b'\r' || b == b'\n')
}

/// The file's bytes (BOM and gzip included), the text after the BOM, and where each row starts in it.
fn write_grid(grid: &Grid) -> (Vec<u8>, String, Vec<usize>) {
    let mut text = String::new();
    let mut starts = Vec::new();
    for (i, row) in grid.rows.iter().enumerate() {
        starts.push(text.len());
        for (j, content) in row.cells.iter().enumerate() {
            if j > 0 {
                text.push(char::from(grid.delimiter));
            }
            if needs_quotes(content, grid.delimiter) || row.force_quotes.get(j).copied().unwrap_or(false) {
                let _ = write!(text, "\"{}\"", content.replace('"', "\"\""));
            } else {
                text.push_str(content);
            }
        }
        if i + 1 < grid.rows.len() || grid.final_ending {
            text.push_str(row.ending);
            text.push_str(row.blank_after);
        }
    }
    let mut bytes = if grid.bom { b"\xEF\xBB\xBF".to_vec() } else { Vec::new() };
    bytes.extend_from_slice(text.as_bytes());
    if grid.gzip {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&bytes).expect("gzip into memory");
        bytes = gz.finish().expect("gzip into memory");
    }
    (bytes, text, starts)
}

/// What the reader must give for `grid` read with `options` (whose delimiter is the grid's).
fn expected(grid: &Grid, text: &str, row_starts: &[usize], options: &CsvOptions) -> Result<Expected, CsvError> {
    let file = FILE.to_owned();
    let line_starts = line_starts(text.as_bytes());
    // Blank lines (no cells, or one blank cell) are skipped.
    let records: Vec<(u64, &Vec<String>)> = grid
        .rows
        .iter()
        .zip(row_starts)
        .filter(|(r, _)| !(r.cells.is_empty() || (r.cells.len() == 1 && r.cells[0].trim().is_empty())))
        .map(|(r, &start)| (line_of(&line_starts, start), &r.cells))
        .collect();
    let Some(&(first_line, first)) = records.first() else {
        return Err(CsvError::Empty { file });
    };
    let decimal_comma = options.delimiter.unwrap_or(grid.delimiter) != b',';
    let is_number = |t: &String| matches!(classify(t, decimal_comma), Class::Number(_));
    let has_header = match options.header {
        HeaderMode::Present => true,
        HeaderMode::Absent => false,
        HeaderMode::Auto => {
            // No numbers, or a name above a number.
            let name_above_number = records
                .get(1)
                .is_some_and(|(_, s)| first.iter().zip(s.iter()).any(|(f, s)| !is_number(f) && is_number(s)));
            first.iter().all(|f| !is_number(f)) || name_above_number
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
            .map(|(j, f)| if f.trim().is_empty() { format!("column {}", j + 1) } else { f.trim().to_owned() })
            .collect()
    } else if let Some(given) = &options.column_names {
        if given.len() != n_cols {
            return Err(CsvError::NamesMismatch { file, given: given.len(), found: n_cols });
        }
        given.clone()
    } else {
        (1..=n_cols).map(|j| format!("column {j}")).collect()
    };
    let rows: Vec<(u64, &Vec<String>)> = records.iter().skip(usize::from(has_header)).copied().collect();
    // A column is text when it has text and fewer than twenty numbers for each text, counted over the rows of as
    // many cells as the first (the others are refused where they stand); else its text is stray among numbers.
    let text: Vec<bool> = (0..first.len())
        .map(|j| {
            let classes =
                || rows.iter().filter(|(_, c)| c.len() == first.len()).map(|(_, c)| classify(&c[j], decimal_comma));
            let numbers = classes().filter(|class| matches!(class, Class::Number(_))).count();
            let texts = classes().filter(|class| matches!(class, Class::Text)).count();
            texts > 0 && numbers < STRAY_TEXT_RATIO * texts
        })
        .collect();
    Pass { names: &names, has_header, first_line, decimal_comma, options }.rows(&rows, &text)
}

/// One pass of the reader's rules over a file's data rows.
struct Pass<'a> {
    names: &'a [String],
    has_header: bool,
    first_line: u64,
    decimal_comma: bool,
    options: &'a CsvOptions,
}

impl Pass<'_> {
    /// The table the rows give, the columns `text` holding text: their cells, numbers among them, are categories by
    /// their trimmed text, and their missing cells one more, "(missing)", numbered in sorted order.
    fn rows(&self, rows: &[(u64, &Vec<String>)], text: &[bool]) -> Result<Expected, CsvError> {
        let file = FILE.to_owned();
        let n_cols = self.names.len();
        // A cell no column can hold: a number no f32 holds, or missing or text among numbers.
        let is_missing = |j: usize, cell: &String| match classify(cell, self.decimal_comma) {
            Class::NotFinite => true,
            Class::Missing | Class::Text => !text[j],
            Class::Number(_) => false,
        };
        let mut out = Expected {
            names: self.names.to_vec(),
            values: Vec::new(),
            categories: vec![Vec::new(); n_cols],
            has_header: self.has_header,
            missing: Vec::new(),
            missing_text: Vec::new(),
            first_rows: vec![],
        };
        let mut kept: Vec<(u64, &Vec<String>)> = Vec::new();
        for &(line, cells) in rows {
            if cells.len() != n_cols {
                return Err(CsvError::Ragged {
                    file,
                    line,
                    found: cells.len(),
                    expected: n_cols,
                    reference_line: self.first_line,
                });
            }
            if out.first_rows.len() < 8 {
                out.first_rows.push(cells.clone());
            }
            let bad = cells.iter().enumerate().position(|(j, cell)| is_missing(j, cell));
            if let Some(j) = bad
                && self.options.missing == MissingPolicy::Refuse
            {
                let (column_name, text) = (out.names[j].clone(), cells[j].clone());
                let (file, column) = (file, j + 1);
                return Err(if matches!(classify(&cells[j], self.decimal_comma), Class::Missing) {
                    CsvError::Missing { file, line, column, column_name, text }
                } else {
                    CsvError::NotNumeric { file, line, column, column_name, text }
                });
            }
            kept.push((line, cells));
        }
        if kept.is_empty() {
            if self.has_header {
                return Err(CsvError::HeaderOnly { file, header_line: self.first_line });
            }
            return Err(CsvError::Empty { file });
        }
        // A text column's category of a cell: its trimmed text, or one category for every missing cell.
        let category = |cell: &String| match classify(cell, self.decimal_comma) {
            Class::Missing => "(missing)".to_owned(),
            _ => cell.trim().to_owned(),
        };
        for (j, categories) in out.categories.iter_mut().enumerate().filter(|(j, _)| text[*j]) {
            *categories = kept.iter().map(|(_, row)| &row[j]).filter(|c| !is_missing(j, c)).map(category).collect();
            categories.sort();
            categories.dedup();
        }
        let mut missing: Vec<Option<MissingColumn>> = vec![None; n_cols];
        let mut missing_text: Vec<Option<MissingColumn>> = vec![None; n_cols];
        for (i, (line, row)) in kept.iter().enumerate() {
            for (j, cell) in row.iter().enumerate() {
                out.values.push(match classify(cell, self.decimal_comma) {
                    // Kept as missing: counted, the first remembered.
                    _ if is_missing(j, cell) => {
                        missing[j].get_or_insert((j, 0, (i, *line, cell.clone()))).1 += 1;
                        f32::NAN
                    }
                    // In a column of text, a category of its own, counted too.
                    Class::Missing if text[j] => {
                        missing_text[j].get_or_insert((j, 0, (i, *line, cell.clone()))).1 += 1;
                        out.categories[j].iter().position(|c| *c == category(cell)).expect("a kept category") as f32
                    }
                    _ if text[j] => {
                        out.categories[j].iter().position(|c| *c == category(cell)).expect("a kept category") as f32
                    }
                    Class::Number(v) => v,
                    _ => unreachable!("a cell of numbers is a number or missing"),
                });
            }
        }
        out.missing = missing.into_iter().flatten().collect();
        out.missing_text = missing_text.into_iter().flatten().collect();
        Ok(out)
    }
}

/// A column's missing cells: (column, count, (the first's row, line, text)).
type MissingColumn = (usize, usize, (usize, u64, String));

/// The table a grid must load as.
#[derive(Clone, Debug, PartialEq)]
struct Expected {
    names: Vec<String>,
    /// Each text column's categories, sorted; empty for a column of numbers.
    categories: Vec<Vec<String>>,
    /// Compared as bits too, so that 0 and -0 differ.
    values: Vec<f32>,
    has_header: bool,
    /// Each column's missing cells, in column order.
    missing: Vec<MissingColumn>,
    /// Each text column's missing cells (a category of their own), in column order.
    missing_text: Vec<MissingColumn>,
    first_rows: Vec<Vec<String>>,
}

fn check_grid(grid: &Grid, options: &CsvOptions) -> Result<(), TestCaseError> {
    let (bytes, text, row_starts) = write_grid(grid);
    let options = CsvOptions { delimiter: Some(grid.delimiter), ..options.clone() };
    let result = read_bytes(&bytes, FILE, &options, &NoProgress);
    check_any(&bytes, &options, &result).map_err(TestCaseError::fail)?;
    let want = expected(grid, &text, &row_starts, &options);
    match (&result, &want) {
        (Ok(table), Ok(want)) => {
            let csv = table.csv.as_ref().expect("checked by check_any");
            let got = Expected {
                names: table.columns.iter().map(|c| c.name.clone()).collect(),
                categories: table.columns.iter().map(|c| c.categories.clone()).collect(),
                values: table.values.clone(),
                has_header: csv.has_header,
                missing: csv.missing.iter().map(|m| (m.column, m.count, m.first.clone())).collect(),
                missing_text: csv.missing_text.iter().map(|m| (m.column, m.count, m.first.clone())).collect(),
                first_rows: csv.first_rows.clone(),
            };
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            prop_assert_eq!(bits(&got.values), bits(&want.values), "values of {:?}", text);
            // The values compared as bits above (a missing cell is NaN, no NaN's equal); the rest as they are.
            let rest = |e: &Expected| Expected { values: Vec::new(), ..e.clone() };
            prop_assert_eq!(rest(&got), rest(want), "table of {:?}", text);
            prop_assert_eq!((csv.delimiter, csv.had_bom, csv.gzipped), (grid.delimiter, grid.bom, grid.gzip));
        }
        (Err(got), Err(want)) => prop_assert_eq!(got, want, "error for {:?}", text),
        _ => prop_assert!(false, "read {:?} as {:?}; expected {:?}", text, result.as_ref().map(|t| &t.values), want),
    }
    // Sniffing finds the delimiter of a rectangular grid whose cells hold no candidate delimiter, quote or
    // line break, and reads it the same way.
    let plain = |c: &String| !c.bytes().any(|b| matches!(b, b',' | b';' | b'\t' | b'"' | b'\r' | b'\n'));
    let n_cols = grid.rows.first().map_or(0, |r| r.cells.len());
    let rectangular = grid.rows.iter().all(|r| r.cells.len() == n_cols && r.cells.iter().all(plain));
    if rectangular && n_cols >= 2 && grid.rows.iter().flat_map(|r| &r.force_quotes).all(|q| !q) {
        let sniffed = CsvOptions { delimiter: None, ..options };
        // Compared as written: a missing cell is NaN, no NaN's equal.
        let sniffed = format!("{:?}", read_bytes(&bytes, FILE, &sniffed, &NoProgress));
        prop_assert_eq!(sniffed, format!("{result:?}"), "sniffing {:?}", text);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------
// Raw bytes.
// ---------------------------------------------------------------------------------------------------------

/// What a soup may start with: nothing, a BOM, gzip's magic number, a gzip header.
const PREFIXES: [&[u8]; 4] = [b"", b"\xEF\xBB\xBF", b"\x1f\x8b", b"\x1f\x8b\x08\x00"];

/// Bytes drawn from what CSV files are made of, with a few others.
fn csv_soup() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        8 => select(&b"0123456789.,;\t\"\r\n -+eENAan?"[..]),
        1 => any::<u8>(),
    ];
    prop::collection::vec(byte, 0..2000)
}

/// A generated grid with a few bytes overwritten or inserted (NUL, invalid UTF-8, quotes, line ends).
fn damaged_grid() -> impl Strategy<Value = Vec<u8>> {
    let damage = prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), any::<bool>()), 1..4);
    (grid(), damage).prop_map(|(mut grid, damage)| {
        grid.gzip = false;
        let (mut bytes, _, _) = write_grid(&grid);
        for (at, byte, insert) in damage {
            if bytes.is_empty() || insert {
                let i = at.index(bytes.len() + 1);
                bytes.insert(i, byte);
            } else {
                let i = at.index(bytes.len());
                bytes[i] = byte;
            }
        }
        bytes
    })
}

fn gzipped(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).expect("gzip into memory");
    gz.finish().expect("gzip into memory")
}

fn any_options() -> impl Strategy<Value = CsvOptions> {
    let delimiter = prop::option::weighted(0.3, select(&[b',', b';', b'\t', b'"', b'\n', b' ', b'x', 0u8][..]));
    (options(), delimiter).prop_map(|(options, delimiter)| CsvOptions { delimiter, ..options })
}

fn check_bytes(raw: &[u8], options: &CsvOptions) -> Result<(), TestCaseError> {
    let result = read_bytes(raw, FILE, options, &NoProgress);
    check_any(raw, options, &result).map_err(|e| TestCaseError::fail(format!("{e}\ninput: {raw:?}")))
}

/// Cases per property: proptest's `PROPTEST_CASES` when set, else its default (256).
fn config() -> ProptestConfig {
    ProptestConfig { max_shrink_iters: 10_000, ..ProptestConfig::default() }
}

proptest! {
    #![proptest_config(config())]

    /// Any bytes at all, plain or gzipped.
    #[test]
    fn arbitrary_bytes_load_or_name_the_place(
        raw in prop::collection::vec(any::<u8>(), 0..600),
        gzip in prop::bool::weighted(0.1),
        options in any_options(),
    ) {
        let raw = if gzip { gzipped(&raw) } else { raw };
        check_bytes(&raw, &options)?;
    }

    /// Bytes that look like CSV, and gzip headers followed by anything.
    #[test]
    fn csv_soup_loads_or_names_the_place(
        soup in csv_soup(),
        prefix in select(&PREFIXES[..]),
        options in any_options(),
    ) {
        let raw = [prefix, soup.as_slice()].concat();
        check_bytes(&raw, &options)?;
    }

    /// Generated CSV with a few bytes damaged.
    #[test]
    fn damaged_csv_loads_or_names_the_place(raw in damaged_grid(), options in any_options()) {
        check_bytes(&raw, &options)?;
    }

    /// Generated CSV reads exactly as the reader's rules say: the table, or the error at its line and column.
    #[test]
    fn generated_csv_reads_as_its_rules_say(grid in grid(), options in options()) {
        check_grid(&grid, &options)?;
    }
}
