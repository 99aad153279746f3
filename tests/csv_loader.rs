//! The CSV reader on real files and on every kind of broken input: each error must name the file and,
//! where it points at a cell, the right line and column.

#![allow(clippy::float_cmp, reason = "values read from files and set by hand are compared exactly on purpose")]

use std::fmt::Write as _;
use std::io::Write;

use bayes_explorer::Lab;
use bayes_explorer::data::csv::{CsvError, MISSING_CATEGORY, NoProgress, read_bytes, read_path, sniff_delimiter};
use bayes_explorer::data::prepare::{
    DataSpec, MissingRows, OneHotGroup, OutputKind, Role, TextFeatures, check_lab, complete_rows, default_spec_for_lab,
    few_valued_features, flow_few_values_note, input_count, left_out, one_hot_note, ordered_text_features,
    ordered_text_note, prepare,
};
use bayes_explorer::data::table::ColumnKind;
use bayes_explorer::data::{CsvOptions, HeaderMode, MissingPolicy, Table};

fn read(text: &str) -> Result<Table, CsvError> {
    read_bytes(text.as_bytes(), "test.csv", &CsvOptions::default(), &NoProgress)
}

fn read_dropping(text: &str) -> Result<Table, CsvError> {
    let options = CsvOptions { missing: MissingPolicy::DropRows, ..CsvOptions::default() };
    read_bytes(text.as_bytes(), "test.csv", &options, &NoProgress)
}

#[test]
fn red_wine_is_read_as_uci_publishes_it() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/datasets/winequality-red.csv");
    let table = read_path(path.as_ref(), &CsvOptions::default(), &NoProgress).expect("red wine loads");
    assert_eq!(table.n_rows(), 1599);
    assert_eq!(table.n_cols(), 12);
    let csv = table.csv.as_ref().expect("csv facts");
    assert_eq!(csv.delimiter, b';');
    assert!(csv.has_header);
    assert_eq!(table.columns[0].name, "fixed acidity");
    assert_eq!(table.columns[11].name, "quality");
    assert_eq!(table.columns[11].kind, ColumnKind::Integer);
    assert_eq!((table.columns[11].min, table.columns[11].max), (3.0, 8.0));
    // First data row of the UCI file: 7.4;0.7;0;1.9;0.076;11;34;0.9978;3.51;0.56;9.4;5
    assert_eq!(table.row(0).unwrap(), &[7.4, 0.7, 0.0, 1.9, 0.076, 11.0, 34.0, 0.9978, 3.51, 0.56, 9.4, 5.0]);
}

#[test]
fn white_wine_from_shared_when_present() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/datasets/winequality-white.csv");
    if !std::path::Path::new(path).exists() {
        eprintln!("skipped: {path} is not on this machine");
        return;
    }
    let table = read_path(path.as_ref(), &CsvOptions::default(), &NoProgress).expect("white wine loads");
    assert_eq!((table.n_rows(), table.n_cols()), (4898, 12));
    assert_eq!((table.columns[11].min, table.columns[11].max), (3.0, 9.0));
}

#[test]
fn sniffs_comma_semicolon_and_tab() {
    assert_eq!(sniff_delimiter(b"a,b,c\n1,2,3\n"), Some(b','));
    assert_eq!(sniff_delimiter(b"a;b;c\n1,5;2,5;3\n"), Some(b';'));
    assert_eq!(sniff_delimiter(b"a\tb\n1\t2\n"), Some(b'\t'));
    // Commas inside quotes do not count.
    assert_eq!(sniff_delimiter(b"\"x, y\";\"z\"\n1;2\n"), Some(b';'));
    assert_eq!(sniff_delimiter(b"abc\n1\n"), None);
}

#[test]
fn quoted_header_bom_and_crlf() {
    let text = "\u{feff}\"first, col\";\"second\"\r\n1.5;2\r\n3;4e-1\r\n";
    let table = read(text).expect("loads");
    let csv = table.csv.as_ref().unwrap();
    assert!(csv.had_bom && csv.crlf && csv.has_header);
    assert_eq!(table.columns[0].name, "first, col");
    assert_eq!(table.values, vec![1.5, 2.0, 3.0, 0.4]);
}

#[test]
fn header_detection_and_override() {
    let no_header = read("1,2\n3,4\n").unwrap();
    assert!(!no_header.csv.as_ref().unwrap().has_header);
    assert_eq!(no_header.columns[0].name, "column 1");
    assert_eq!(no_header.n_rows(), 2);
    let forced = read_bytes(
        b"1,2\n3,4\n",
        "t.csv",
        &CsvOptions { header: HeaderMode::Present, ..CsvOptions::default() },
        &NoProgress,
    )
    .unwrap();
    assert_eq!(forced.columns[0].name, "1");
    assert_eq!(forced.n_rows(), 1);
}

#[test]
fn gzip_is_decompressed() {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b"x\ty\n1\t2\n").unwrap();
    let bytes = gz.finish().unwrap();
    let table = read_bytes(&bytes, "t.csv.gz", &CsvOptions::default(), &NoProgress).unwrap();
    assert!(table.csv.as_ref().unwrap().gzipped);
    assert_eq!(table.values, vec![1.0, 2.0]);
}

#[test]
fn missing_values_name_line_column_and_text() {
    for marker in ["", "NA", "?", "nan", "NaN"] {
        let text = format!("a,b,c\n1,2,3\n4,5,6\n7,{marker},9\n");
        let err = read(&text).unwrap_err();
        assert_eq!(err.location(), Some((4, Some(2))), "{marker:?}: {err}");
        let message = err.to_string();
        assert!(message.starts_with("test.csv: line 4, column 2 (\"b\")"), "{message}");
        assert!(message.contains("expected a number"), "{message}");
        assert!(err.is_bad_cell());
    }
}

#[test]
fn non_numeric_cell_is_named() {
    let err = read(&format!("a;b\n1;2\n3;three\n{}", "4;5\n".repeat(20))).unwrap_err();
    assert!(matches!(&err, CsvError::NotNumeric { line: 3, column: 2, text, .. } if text == "three"), "{err}");
    assert!(err.to_string().contains("found \"three\""));
    // Infinity is not a usable number either.
    let err = read("a;b\n1;inf\n").unwrap_err();
    assert_eq!(err.location(), Some((2, Some(2))));
}

/// A spreadsheet in much of Europe writes "0,27" with semicolons (or tabs) between fields: the comma reads as the
/// decimal point there, and the file's facts say so. Between commas it cannot be one, and a number with both marks
/// ("1.234,5", a thousands point) is refused with its place, as any text that is not a number.
#[test]
fn a_decimal_comma_reads_between_semicolons_and_tabs() {
    let point = read("a;b;c\n7.4;0.7;11\n-0.25;1e-3;3\n").expect("points");
    for text in ["a;b;c\n7,4;0,7;11\n-0,25;1e-3;3\n", "a\tb\tc\n7,4\t0,7\t11\n-0,25\t1e-3\t3\n"] {
        let comma = read(text).expect("decimal commas");
        assert_eq!(comma.values, point.values, "{text:?}");
        assert!(comma.csv.as_ref().expect("facts").decimal_comma, "{text:?}");
    }
    assert!(!point.csv.as_ref().expect("facts").decimal_comma);
    // A header of names with commas in them is still a header.
    let named = read("\"x, in m\";\"y, in s\"\n1,5;2\n").expect("a header");
    assert_eq!((named.columns[0].name.as_str(), named.values.as_slice()), ("x, in m", &[1.5, 2.0][..]));
    let twenty = "1;2\n".repeat(20);
    match read(&format!("a;b\n1;2\n1.234,5;3\n{twenty}")) {
        Err(CsvError::NotNumeric { line: 3, column: 1, text, .. }) => assert_eq!(text, "1.234,5"),
        other => panic!("expected the thousands point to be named, got {other:?}"),
    }
    match read(&format!("a,b\n1,2\n\"0,5\",3\n{}", twenty.replace(';', ","))) {
        Err(CsvError::NotNumeric { line: 3, column: 1, text, .. }) => assert_eq!(text, "0,5"),
        other => panic!("expected a comma between commas to be refused, got {other:?}"),
    }
}

/// Asked to, the reader keeps a missing or non-numeric cell as missing (NaN) and counts each column's; a row is left
/// out only where the roles use a column it misses, so that a column left ignored (Titanic's "Age") costs no rows.
#[test]
fn missing_cells_are_kept_and_only_the_columns_used_leave_rows_out() {
    let table = read_dropping("a,b,c\n1,2,x\nNA,3,y\n4,?,x\n5,6,y\n7,8,\n").unwrap();
    let csv = table.csv.as_ref().unwrap();
    assert_eq!(table.n_rows(), 5, "nothing dropped as read");
    assert!(table.get(1, 0).is_some_and(f32::is_nan) && table.get(2, 1).is_some_and(f32::is_nan));
    assert_eq!((csv.dropped_rows, csv.first_dropped.clone()), (0, None));
    let counted: Vec<_> = csv.missing.iter().map(|m| (m.column, m.count, m.first.clone())).collect();
    // A text column's empty cell is a category of its own, not missing.
    assert_eq!(counted, [(0, 1, (1, 3, "NA".to_owned())), (1, 1, (2, 4, "?".to_owned()))]);
    // The ranges leave the missing cells aside.
    assert_eq!((table.columns[0].min, table.columns[0].max), (1.0, 7.0));
    let spec = |roles: [Role; 3]| DataSpec { roles: roles.to_vec(), ..DataSpec::default_for(&table) };
    // The text column a feature: its "(missing)" is a value (as an output it is no class: see below).
    let every = spec([Role::Feature, Role::Feature, Role::Feature]);
    let complete = complete_rows(table.clone(), &every);
    assert_eq!(complete.n_rows(), 3);
    assert_eq!(complete.values.iter().step_by(3).copied().collect::<Vec<_>>(), [1.0, 5.0, 7.0]);
    let facts = complete.csv.as_ref().unwrap();
    assert_eq!((facts.dropped_rows, facts.first_dropped.clone()), (2, Some((3, "a".to_owned(), "NA".to_owned()))));
    assert_eq!(
        left_out(&table, &every).to_string(),
        "2 rows that miss a value in a column used (the first on line 3, \
         column \"a\": \"NA\")"
    );
    // "a" ignored: only the row missing "b" goes, and the first left out is on line 4.
    let without_a = spec([Role::Ignored, Role::Feature, Role::Feature]);
    let kept = complete_rows(table.clone(), &without_a);
    assert_eq!(
        (kept.n_rows(), kept.csv.as_ref().unwrap().first_dropped.clone()),
        (4, Some((4, "b".into(), "?".into())))
    );
    assert!(kept.get(1, 0).is_some_and(f32::is_nan), "an ignored column keeps its missing cell");
    let prepared = prepare(&table, &without_a).expect("prepares");
    assert_eq!(prepared.n_train() + prepared.n_test(), 4, "preparing leaves out the same rows");
    // Both ignored: every row is kept, the table unchanged.
    let unchanged = complete_rows(table.clone(), &spec([Role::Ignored, Role::Ignored, Role::Feature]));
    assert_eq!(format!("{unchanged:?}"), format!("{table:?}"), "NaN is no NaN's equal: compared as written");
    // Nothing complete: preparing says why.
    let none = read_dropping("a,b\nNA,1\n2,?\n").unwrap();
    let err = prepare(&none, &DataSpec { roles: vec![Role::Feature, Role::Target], ..DataSpec::default_for(&none) });
    assert_eq!(
        err.unwrap_err().to_string(),
        "2 of the dataset's 2 rows miss a value in a column used, leaving 0; at \
         least 2 are needed to split them (ignore the columns with missing cells)"
    );
}

/// The preview counts the rows left out at each change of a role from each column's missing rows, found once
/// (`MissingRows`): for every choice of roles, the count and the first row named are those of looking at every value.
#[test]
fn the_rows_left_out_counted_from_each_columns_missing_rows_are_those_of_every_value() {
    let text = "a,b,c,sex\n1,2,3,m\nNA,3,4,\n4,?,5,f\n5,6,,m\nNA,?,7,\n8,9,10,f\n11,NA,12,m\n";
    let table = read_dropping(text).expect("reads");
    let missing = MissingRows::of(&table);
    let mut choices = 0;
    for mask in 0..16_u32 {
        for output in [None, Some(0), Some(1), Some(3)] {
            let roles: Vec<Role> = (0..4)
                .map(|j| match output {
                    Some(o) if o == j && j == 3 => Role::Label,
                    Some(o) if o == j => Role::Target,
                    _ if mask & (1 << j) != 0 => Role::Feature,
                    _ => Role::Ignored,
                })
                .collect();
            let spec = DataSpec { roles, ..DataSpec::default_for(&table) };
            let (fast, every) = (missing.left_out(&table, &spec), left_out(&table, &spec));
            assert_eq!((fast.rows, &fast.first), (every.rows, &every.first), "roles {:?}", spec.roles);
            choices += 1;
        }
    }
    assert_eq!(choices, 64);
    // Every column used, "sex" the label: rows 2, 3, 4, 5, 7 of the file's 7 miss a value (its blank sex too).
    let spec = DataSpec {
        roles: vec![Role::Feature, Role::Feature, Role::Feature, Role::Label],
        ..DataSpec::default_for(&table)
    };
    assert_eq!(missing.left_out(&table, &spec).rows, 5);
}

/// A label of text with empty cells (a penguin's sex left blank): "(missing)" is a category a feature may use, but
/// no class to predict, so the label's missing rows are left out, and named; as a feature the column keeps them.
#[test]
fn a_missing_label_is_no_class_and_its_rows_are_left_out() {
    let text = "bill,species\n1,Adelie\n2,\n3,Gentoo\n4,Adelie\n5,Gentoo\n";
    let table = read(text).expect("a missing text is no error");
    assert_eq!(table.columns[1].categories, [MISSING_CATEGORY, "Adelie", "Gentoo"]);
    let facts = table.csv.as_ref().expect("facts");
    assert_eq!((facts.missing.len(), facts.missing_text.len()), (0, 1));
    assert_eq!((facts.missing_text[0].count, facts.missing_text[0].first.clone()), (1, (1, 3, String::new())));
    let spec = DataSpec::default_for(&table);
    assert_eq!(spec.roles, [Role::Feature, Role::Label]);
    let left = left_out(&table, &spec);
    assert_eq!(
        left.to_string(),
        "1 row that misses a value in a column used (the first on line 3, column \"species\": \"\")"
    );
    let prepared = prepare(&table, &spec).expect("prepares");
    assert_eq!(prepared.n_train() + prepared.n_test(), 4);
    match prepared.output {
        Some((_, OutputKind::Classes { names, .. })) => assert_eq!(names, ["Adelie", "Gentoo"]),
        other => panic!("two classes, not {other:?}"),
    }
    let complete = complete_rows(table.clone(), &spec);
    assert_eq!(
        (complete.n_rows(), complete.columns[1].categories.clone()),
        (4, vec!["Adelie".into(), "Gentoo".into()])
    );
    // As a feature, the category is a value like any other: every row stays.
    let feature = DataSpec { roles: vec![Role::Target, Role::Feature], ..spec };
    assert_eq!(left_out(&table, &feature).rows, 0);
}

/// A column that misses more than half its cells starts ignored: as a feature it would leave out most rows.
#[test]
fn a_column_missing_most_cells_starts_ignored() {
    let table = read_dropping("a,b,y\n1,NA,0\n2,NA,1\n3,5,0\n4,6,1\n5,NA,0\n").unwrap();
    assert_eq!(DataSpec::default_for(&table).roles, [Role::Feature, Role::Ignored, Role::Label]);
    let table = read_dropping("a,b,y\n1,NA,0\n2,4,1\n3,5,0\n4,6,1\n5,NA,0\n").unwrap();
    assert_eq!(DataSpec::default_for(&table).roles, [Role::Feature, Role::Feature, Role::Label]);
}

#[test]
fn ragged_rows_name_the_line() {
    let err = read("a,b,c\n1,2,3\n4,5\n").unwrap_err();
    assert!(matches!(err, CsvError::Ragged { line: 3, found: 2, expected: 3, reference_line: 1, .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "test.csv: line 3, column 3: the row ends after 2 fields; expected 3 fields as on line 1"
    );
    assert_eq!(err.location(), Some((3, Some(3))), "the first field missing");
    let err = read("a,b,c\n1,2,3\n4,5,6,7\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "test.csv: line 3, column 4: a field too many (the row has 4 fields); expected 3 fields as on line 1"
    );
    assert_eq!(err.location(), Some((3, Some(4))), "the first field too many");
}

#[test]
fn empty_header_only_and_single_column() {
    assert!(matches!(read("").unwrap_err(), CsvError::Empty { .. }));
    assert!(matches!(read("  \n\n").unwrap_err(), CsvError::Empty { .. }));
    assert!(matches!(read("a,b,c\n").unwrap_err(), CsvError::HeaderOnly { header_line: 1, .. }));
    let err = read("value\n1\n2\n").unwrap_err();
    assert!(matches!(err, CsvError::SingleColumn { .. }), "{err}");
    assert!(err.to_string().contains("expected at least two columns"));
}

#[test]
fn binary_files_are_refused_with_a_position() {
    let err = read_bytes(b"a,b\n1,\x002\n", "img.png", &CsvOptions::default(), &NoProgress).unwrap_err();
    assert!(matches!(err, CsvError::Binary { line: 2, column: 3, .. }), "{err}");
    let err = read_bytes(b"a,b\n1,2\n3,\xff\n", "latin.csv", &CsvOptions::default(), &NoProgress).unwrap_err();
    assert!(matches!(err, CsvError::Binary { line: 3, column: 3, .. }), "{err}");
    assert!(err.to_string().starts_with("latin.csv: line 3, column 3: invalid UTF-8"));
    // A real PNG header.
    let png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR";
    assert!(matches!(read_bytes(png, "x.png", &CsvOptions::default(), &NoProgress), Err(CsvError::Binary { .. })));
}

#[test]
fn unterminated_quote_or_bad_gzip_gives_a_message() {
    let err = read_bytes(b"\x1f\x8b\x08\x00garbage", "broken.csv.gz", &CsvOptions::default(), &NoProgress).unwrap_err();
    assert!(matches!(err, CsvError::Gzip { .. }), "{err}");
    // An unterminated quote swallows the rest of the file into one field: in a middle field the row count no longer
    // matches; in the last one (a column of text could take it as a category) the file ends in no closing quote.
    let err = read("a,b,c\n1,\"2,3\n4,5,6\n").unwrap_err();
    assert!(matches!(err, CsvError::Ragged { line: 2, .. }), "{err}");
    for text in ["a,b\n1,\"2\n3,4\n", "a,b\n1,cat\n2,\"dog\n3,4\n", "a,b\r\n1,cat\r\n3,\"x\r\n"] {
        let err = read(text).unwrap_err();
        assert!(matches!(err, CsvError::Malformed { line: 2 | 3, .. }), "{text:?}: {err}");
        assert!(err.to_string().contains("never closed"), "{err}");
    }
    // Closed, a line break in the last field is a category like any other.
    let table = read("a,b\n1,cat\n2,\"two\nlines\"\n").expect("a quoted line break");
    assert_eq!(table.columns[1].categories, ["cat", "two\nlines"]);
}

#[test]
fn a_one_gigabyte_file_is_refused_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.csv");
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(1 << 30).unwrap(); // sparse: costs no disk
    let started = std::time::Instant::now();
    let err = read_path(&path, &CsvOptions::default(), &NoProgress).unwrap_err();
    assert!(matches!(err, CsvError::TooLarge { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "huge.csv: the file is 1.0 GiB and the limit is 256.0 MiB; datasets are held in memory, so use a smaller sample of it"
    );
    assert!(started.elapsed().as_secs() < 5, "refusing must not read the file");
}

#[test]
fn missing_file_and_folder_are_named() {
    let err = read_path("no/such/file.csv".as_ref(), &CsvOptions::default(), &NoProgress).unwrap_err();
    assert!(err.to_string().starts_with("file.csv: cannot read the file"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let err = read_path(dir.path(), &CsvOptions::default(), &NoProgress).unwrap_err();
    assert!(err.to_string().contains("folder"), "{err}");
}

#[test]
fn column_statistics() {
    let table = read("id,x,label\n1,0.5,0\n2,-1.5,1\n3,2,1\n").unwrap();
    assert_eq!(table.columns[0].kind, ColumnKind::Integer);
    assert_eq!(table.columns[1].kind, ColumnKind::Real);
    assert_eq!((table.columns[1].min, table.columns[1].max), (-1.5, 2.0));
    assert_eq!(table.columns[2].n_distinct, 2);
}

#[test]
fn cancelling_stops_the_read() {
    struct Cancelled;
    impl bayes_explorer::data::csv::Progress for Cancelled {
        fn set(&self, _fraction: f32) {}
        fn cancelled(&self) -> bool {
            true
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.csv");
    std::fs::write(&path, "a,b\n1,2\n").unwrap();
    assert!(matches!(read_path(&path, &CsvOptions::default(), &Cancelled), Err(CsvError::Cancelled { .. })));
}

#[test]
fn line_numbers_count_crlf_lone_cr_and_blank_lines() {
    // The csv crate's own count put a CR LF row on the line before it, every row of a CR file on line 1, and a
    // row after blank lines on the first blank one (found by tests/csv_properties.rs).
    let at = |text: &str| read(text).unwrap_err().location();
    assert_eq!(at("a,b\r\n1,2\r\n3,NA\r\n"), Some((3, Some(2))));
    assert_eq!(at("a,b\r1,2\r3,NA\r"), Some((3, Some(2))));
    assert_eq!(at("a,b\n\n\n1,NA\n"), Some((4, Some(2))));
    assert_eq!(at("\r\n\r\na,b\r\n1,2\r\n3\r\n"), Some((5, Some(2))));
    let err = read("\n1,2\r\n3\r\n").unwrap_err();
    assert!(matches!(err, CsvError::Ragged { line: 3, reference_line: 2, .. }), "{err}");
    let err = read_bytes(b"a,b\r1,2\r3,\xff\r", "cr.csv", &CsvOptions::default(), &NoProgress).unwrap_err();
    assert!(matches!(err, CsvError::Binary { line: 3, column: 3, .. }), "{err}");
    let table = read_dropping("a,b\r\n1,2\r\n\r\nNA,3\r\n").unwrap();
    assert_eq!(table.csv.unwrap().missing[0].first, (1, 4, "NA".to_owned()));
}

/// A column of text (a species, a sex, an island) reads as categories: each distinct text, trimmed, numbered in
/// sorted order, which the column keeps to write its values back. A last column of a few texts is the label, and
/// the prepared data's classes carry their names.
#[test]
fn a_text_column_reads_as_categories_in_sorted_order() {
    let text = "length,sex,island,species\n5.1,male,Biscoe,setosa\n7.0, female ,Dream,versicolor\n\
                6.3,female,Torgersen,virginica\n4.9,male,Dream,setosa\n";
    let table = read(text).expect("text columns load");
    assert!(table.csv.as_ref().expect("facts").has_header);
    let species = &table.columns[3];
    assert_eq!(species.kind, ColumnKind::Text);
    assert_eq!(species.categories, ["setosa", "versicolor", "virginica"]);
    assert_eq!((species.min, species.max, species.n_distinct), (0.0, 2.0, 3));
    assert_eq!(table.columns[1].categories, ["female", "male"], "trimmed");
    assert_eq!(table.columns[2].categories, ["Biscoe", "Dream", "Torgersen"]);
    assert_eq!(table.values, [5.1, 1.0, 0.0, 0.0, 7.0, 0.0, 1.0, 1.0, 6.3, 0.0, 2.0, 2.0, 4.9, 1.0, 1.0, 0.0]);
    assert_eq!(species.value_text(2.0), "virginica");
    assert_eq!(table.columns[0].value_text(5.1), "5.1");

    // Two categories make a 0/1 feature, more a feature of one input per text; the last is the label.
    let spec = DataSpec::default_for(&table);
    assert_eq!(spec.roles, [Role::Feature, Role::Feature, Role::Feature, Role::Label]);
    let prepared = prepare(&table, &spec).expect("prepares");
    let Some((name, kind @ OutputKind::Classes { classes, names })) = &prepared.output else {
        panic!("species is a label: {:?}", prepared.output);
    };
    assert_eq!(
        (name.as_str(), classes.as_slice(), names.as_slice()),
        ("species", &[0.0, 1.0, 2.0][..], &table.columns[3].categories[..])
    );
    assert_eq!(kind.class_name(1), "versicolor");
    assert_eq!(check_lab(Lab::Bnn, &table, &spec), Ok(()));

    // Text is no number to regress on.
    let mut regress = spec.clone();
    regress.set_output(3, Role::Target);
    let why = check_lab(Lab::Bnn, &table, &regress).expect_err("a text target is refused");
    assert!(why.contains("\"species\"") && why.contains("label"), "{why}");
}

/// Where a text feature of more than two kinds goes in as the numbers of its sorted texts (a flow's data, a run saved
/// before one-hot encoding), an order they do not have: the note names each such feature with its count and the
/// first one's codes; a two-kind text (a 0/1 indicator), a label and an ignored column are not named, nor any
/// column that goes in one-hot.
#[test]
fn text_features_of_more_than_two_kinds_are_named_as_read_in_order() {
    let text = "length,sex,island,port,species\n5.1,male,Biscoe,S,setosa\n7.0,female,Dream,C,versicolor\n\
                6.3,female,Torgersen,Q,virginica\n4.9,male,Dream,X,setosa\n";
    let table = read(text).expect("text columns load");
    let one_hot = DataSpec::default_for(&table);
    assert_eq!(one_hot.roles[2..4], [Role::Feature, Role::Feature], "features, one input per text");
    assert_eq!(ordered_text_features(&table, &one_hot), Vec::<usize>::new(), "none read as numbers");
    assert_eq!(ordered_text_note(&table, &one_hot), None);
    let spec = DataSpec { text_features: TextFeatures::Codes, ..one_hot };
    let mut island = spec.clone();
    island.roles[3] = Role::Ignored;
    assert_eq!(ordered_text_features(&table, &island), [2]);
    assert_eq!(
        ordered_text_note(&table, &island).as_deref(),
        Some(
            "\"island\" (3 texts): a feature's texts are read as the numbers of their sorted order (Biscoe = 0, \
             Dream = 1, Torgersen = 2), an order they do not have. Make it ignored, or the label if it is what to \
             predict."
        )
    );
    let mut both = island.clone();
    both.roles[3] = Role::Feature;
    let note = ordered_text_note(&table, &both).expect("two named");
    assert!(
        note.starts_with("\"island\" (3 texts) and \"port\" (4 texts): ") && note.contains("Make them ignored"),
        "{note}"
    );
    // A label of three kinds is what the classes are; it is not named (the old label, made a feature by the change,
    // is set ignored).
    let mut label = both.clone();
    label.set_output(2, Role::Label);
    label.roles[4] = Role::Ignored;
    assert_eq!(ordered_text_features(&table, &label), [3]);
    assert!(ordered_text_note(&table, &label).is_some_and(|n| n.contains("(C = 0, Q = 1, S = 2, …)")));
}

/// A text feature of more than two kinds goes in as one input per text (one-hot), named "column = text": 1 in the
/// input of the row's text, 0 in the others, standardised as any input; a note says so. A two-kind text stays one
/// 0/1 input. A flow keeps such columns out of its two, and refuses a spec that would send one in one-hot.
#[test]
fn a_text_feature_of_more_than_two_kinds_goes_in_one_input_per_text() {
    let text = "length,island,port,sex,species\n5.1,Biscoe,S,male,A\n7.0,Dream,C,female,B\n\
                6.3,Torgersen,Q,female,C\n4.9,Dream,S,male,A\n5.5,Biscoe,C,female,B\n";
    let table = read(text).expect("loads");
    let spec = DataSpec {
        roles: vec![Role::Feature, Role::Feature, Role::Ignored, Role::Feature, Role::Label],
        ..DataSpec::default_for(&table)
    };
    assert_eq!(spec.text_features, TextFeatures::OneHot);
    assert_eq!(input_count(&table, &spec), 5);
    let raw = prepare(&table, &DataSpec { standardize: false, test_fraction: 0.0, ..spec.clone() }).expect("prepares");
    assert_eq!(raw.feature_names, ["length", "island = Biscoe", "island = Dream", "island = Torgersen", "sex"]);
    assert_eq!(
        raw.one_hot,
        [OneHotGroup {
            column: "island".into(),
            categories: vec!["Biscoe".into(), "Dream".into(), "Torgersen".into()],
            first: 1
        }]
    );
    assert_eq!(
        (raw.one_hot_group(0), raw.one_hot_group(3).map(|g| g.first), raw.one_hot_group(4)),
        (None, Some(1), None)
    );
    assert_eq!(raw.feature_categories[2], ["no", "yes"]);
    assert_eq!(raw.feature_categories[4], ["female", "male"]);
    // Every row: its length, the island's three inputs with a 1 at the island it names, its sex as 0 or 1.
    assert_eq!(raw.n_train(), 5);
    for row in raw.x_train.chunks_exact(5) {
        let i = (0..5).find(|&i| table.get(i, 0).is_some_and(|v| v.to_bits() == row[0].to_bits())).expect("a row");
        let island = table.columns[1].value_text(table.get(i, 1).unwrap());
        let expected: Vec<f32> =
            ["Biscoe", "Dream", "Torgersen"].iter().map(|t| f32::from(u8::from(*t == island))).collect();
        assert_eq!(row[1..4], expected[..], "row {i}: {island}");
        assert_eq!(row[4], table.get(i, 3).unwrap());
    }
    // Standardised: Dream's input is 1 in two rows of five (mean 0.4, sd 0.49).
    let standardised = prepare(&table, &DataSpec { test_fraction: 0.0, ..spec.clone() }).expect("prepares");
    assert!(
        (standardised.feature_mean[2] - 0.4).abs() < 1e-6
            && (standardised.feature_scale[2] - 0.24f32.sqrt()).abs() < 1e-6
    );
    assert_eq!(
        one_hot_note(&table, &spec).as_deref(),
        Some(
            "\"island\" goes in as 3 inputs, one per text (1 where a row has it, else 0: one-hot), since texts have no \
             order to read as numbers."
        )
    );
    let mut both = spec.clone();
    both.roles[2] = Role::Feature;
    assert!(
        one_hot_note(&table, &both).is_some_and(|n| n.starts_with("\"island\" and \"port\" go in as 3 and 3 inputs"))
    );
    assert_eq!(input_count(&table, &both), 8);
    let mut plain = spec.clone();
    plain.roles[1] = Role::Ignored;
    assert_eq!((one_hot_note(&table, &plain), input_count(&table, &plain)), (None, 2), "a two-kind text is one input");

    // The flow: the columns of texts ignored, the length and the sex its two; island one-hot beside the length is
    // refused (a flow models two columns of numbers).
    let flow = default_spec_for_lab(Lab::Flow, &table);
    assert_eq!(flow.feature_columns(), [0, 3]);
    assert_eq!(check_lab(Lab::Flow, &table, &flow), Ok(()));
    let mut island = spec.clone();
    island.roles[3] = Role::Ignored;
    let why = check_lab(Lab::Flow, &table, &island).expect_err("three inputs of island");
    assert!(why.contains("one input per text"), "{why}");
}

/// A feature of at most ten values (a year, a two-kind text) is named for the flow lab, with its count; columns of
/// more values, and outputs, are not.
#[test]
fn features_of_few_values_are_named_for_the_flow() {
    let mut text = "depth,year,sex,rooms,length\n".to_owned();
    for i in 0..40u32 {
        let sex = if i % 2 == 0 { "male" } else { "female" };
        let _ = writeln!(
            text,
            "{:.2},{},{sex},{},{:.1}",
            13.0 + f64::from(i) * 0.2,
            2007 + i % 3,
            i % 11,
            35.0 + f64::from(i)
        );
    }
    let table = read(&text).expect("loads");
    let mut spec = DataSpec::default_for(&table);
    spec.roles = vec![Role::Feature, Role::Feature, Role::Ignored, Role::Ignored, Role::Target];
    assert_eq!(few_valued_features(&table, &spec), [1]);
    assert_eq!(
        flow_few_values_note(&table, &spec).as_deref(),
        Some(
            "\"year\" takes only 3 values: a density over it piles up on 3 lines, and the flow's NLL keeps falling as \
             it narrows them, far below any density of measurements. A normalizing flow is for continuous columns."
        )
    );
    // Eleven room counts are more than a few; a two-kind text is few.
    spec.roles = vec![Role::Feature, Role::Ignored, Role::Feature, Role::Feature, Role::Target];
    assert_eq!(few_valued_features(&table, &spec), [2]);
    spec.roles = vec![Role::Feature, Role::Ignored, Role::Ignored, Role::Feature, Role::Target];
    assert_eq!((few_valued_features(&table, &spec), flow_few_values_note(&table, &spec)), (vec![], None));
    spec.roles = vec![Role::Ignored, Role::Feature, Role::Feature, Role::Ignored, Role::Target];
    let both = flow_few_values_note(&table, &spec).expect("two named");
    assert!(
        both.contains("\"year\" takes only 3 values and \"sex\" takes only 2 values") && both.contains("grid"),
        "{both}"
    );
}

/// The rules for what is a text column, each at its edge: a column with text in it, fewer than twenty numbers for
/// each text, wherever in the column the text is.
#[test]
fn a_column_is_text_unless_its_text_is_stray_among_numbers() {
    // Without a header: the text column does not make the first row a header.
    let table = read("5.1,setosa\n4.9,setosa\n6.0,virginica\n").expect("loads");
    assert!(!table.csv.as_ref().expect("facts").has_header);
    assert_eq!((table.n_rows(), table.columns[1].categories.len()), (3, 2));
    // A header whose name is a number ("2020") is still a header when another name stands above a number.
    let table = read("x,2020,species\n1,2,setosa\n3,4,virginica\n").expect("loads");
    assert!(table.csv.as_ref().expect("facts").has_header);
    assert_eq!(table.columns[1].name, "2020");
    // Numbers in a text column are categories by their text.
    let table = read("grade,score\nlow,1\n2,3\n").expect("a tie of one text and one number stays text");
    assert_eq!(table.columns[0].categories, ["2", "low"]);
    // Missing cells in a text column are a category of their own, even above its first text (Titanic's cabins): the
    // rows stay. In a column of numbers they are refused, or kept as missing and their rows left out where used.
    let titanic = "Survived,Sex,Age,Cabin,Embarked\n0,male,22,,S\n1,female,38,C85,C\n1,female,,,S\n0,male,35,,?\n";
    let err = read(titanic).expect_err("an age missing");
    assert!(matches!(err, CsvError::Missing { line: 4, column: 3, .. }), "{err}");
    let table = read_dropping(titanic).expect("loads");
    assert_eq!(table.n_rows(), 4);
    let table = complete_rows(table.clone(), &DataSpec::default_for(&table));
    assert_eq!(table.n_rows(), 3);
    assert_eq!(table.columns[3].categories, [MISSING_CATEGORY, "C85"]);
    assert_eq!(table.columns[4].categories, [MISSING_CATEGORY, "C", "S"]);
    assert_eq!(table.columns[3].value_text(table.get(0, 3).expect("a cell")), MISSING_CATEGORY);
    // A column of nothing but missing cells is no text column.
    let err = read("a,b\n1,NA\n2,\n").expect_err("nothing to read in b");
    assert!(matches!(err, CsvError::Missing { line: 2, column: 2, .. }), "{err}");
    // A number no f32 holds is refused in any column.
    let err = read("a,b\n1,cat\n2,inf\n").expect_err("inf is no category");
    assert!(matches!(&err, CsvError::NotNumeric { line: 3, column: 2, text, .. } if text == "inf"), "{err}");
    // A column of numbers whose first cell is stray text, twenty numbers or more for each text: read as numbers, the
    // text refused where it stands, or kept as missing and its row left out.
    let numbers = (1..=20).fold(String::new(), |mut text, i| {
        let _ = writeln!(text, "{i},0");
        text
    });
    let err = read(&format!("a,b\nx1,2\n{numbers}")).expect_err("stray text in a column of numbers");
    assert!(matches!(&err, CsvError::NotNumeric { line: 2, column: 1, text, .. } if text == "x1"), "{err}");
    let table = read_dropping(&format!("a,b\nx1,2\n{numbers}")).expect("the cell is kept as missing");
    let spec = DataSpec { roles: vec![Role::Feature; 2], ..DataSpec::default_for(&table) };
    let table = complete_rows(table, &spec);
    assert_eq!((table.columns[0].kind, table.n_rows(), table.get(0, 0)), (ColumnKind::Integer, 20, Some(1.0)));
    assert_eq!(table.csv.expect("facts").first_dropped, Some((2, "a".to_owned(), "x1".to_owned())));
    // Nineteen numbers to a text, or a ticket's codes beside its numbers, are a column of text.
    let table = read(&format!("a,b\nx1,2\n{}", &numbers[numbers.find("2,0").expect("a row")..])).expect("text");
    assert_eq!((table.columns[0].kind, table.columns[0].categories.len()), (ColumnKind::Text, 20));
    let table = read("ticket,fare\nA/5 21171,7.25\n113803,53.1\nPC 17599,71.28\n373450,8.05\n").expect("loads");
    assert_eq!(table.columns[0].categories, ["113803", "373450", "A/5 21171", "PC 17599"]);
    // The same when the first ticket is a number: the column's first cell does not decide it, its count does.
    let table = read("ticket,fare\n113803,53.1\nA/5 21171,7.25\n373450,8.05\nPC 17599,71.28\n").expect("loads");
    assert_eq!(table.columns[0].categories, ["113803", "373450", "A/5 21171", "PC 17599"]);
    // A category met only in a row left out is none of the column's, and the others are renumbered.
    let table = read_dropping("a,b\ncat,1\nant,NA\ncat,3\ndog,4\n").expect("loads");
    assert_eq!(table.columns[0].categories, ["ant", "cat", "dog"], "as read, every row is there");
    let table =
        complete_rows(table.clone(), &DataSpec { roles: vec![Role::Feature; 2], ..DataSpec::default_for(&table) });
    assert_eq!(table.columns[0].categories, ["cat", "dog"]);
    assert_eq!(table.values, [0.0, 1.0, 0.0, 3.0, 1.0, 4.0]);
    assert_eq!((table.columns[0].n_distinct, table.columns[0].max), (2, 1.0));
}

/// The output is the column named as one wherever it stands (Titanic's "Survived", Kaggle's MNIST "label" first),
/// else the last; a column numbering the rows ("PassengerId", pandas' "Unnamed: 0") is no feature.
#[test]
fn the_output_is_the_column_named_so_and_a_row_number_is_ignored() {
    use Role::{Feature, Ignored, Label};
    let titanic = "PassengerId,Survived,Pclass,Name,Sex,Age,Ticket,Cabin,Embarked\n";
    let mut rows = String::new();
    for i in 1..=70 {
        let (sex, cabin, port) =
            (["male", "female"][i % 2], if i % 5 == 0 { "C85" } else { "" }, ["S", "C", "Q"][i % 3]);
        let _ =
            writeln!(rows, "{i},{},{},\"Name, Mr. {i}\",{sex},{},T{i},{cabin},{port}", i % 2, 1 + i % 3, 20 + i % 40);
    }
    let table = read(&format!("{titanic}{rows}")).expect("loads");
    let spec = DataSpec::default_for(&table);
    // The cabin, known or not, is a 0/1 feature, the port's three values one input each; the names and tickets (one
    // per passenger) are no features.
    assert_eq!(spec.roles, [Ignored, Label, Feature, Ignored, Feature, Feature, Ignored, Feature, Feature]);
    // Kaggle's MNIST: the label first, then the pixels, all features.
    let table = read("label,pixel0,pixel1,pixel2,pixel3\n5,0,0,3,0\n0,0,1,0,0\n4,0,0,0,2\n").expect("loads");
    assert_eq!(DataSpec::default_for(&table).roles, [Label, Feature, Feature, Feature, Feature]);
    // pandas' index, and a flow's two coordinates (no "y" is taken for an output).
    let mut index = String::new();
    for i in 0..70 {
        let _ = writeln!(index, "{i},{}.5,{}.25", i % 7, i % 3);
    }
    let table = read(&format!("Unnamed: 0,x,y\n{index}")).expect("loads");
    assert_eq!(DataSpec::default_for(&table).roles, [Ignored, Feature, Role::Target]);
    let table = read("x,y\n0.5,1.5\n-0.25,2\n").expect("loads");
    assert_eq!(DataSpec::default_for(&table).roles, [Feature, Role::Target]);
    // A flow has no target: a file of two columns of numbers is its two coordinates.
    assert_eq!(default_spec_for_lab(Lab::Flow, &table).roles, [Feature, Feature]);
    assert_eq!(check_lab(Lab::Flow, &table, &default_spec_for_lab(Lab::Flow, &table)), Ok(()));
}

/// The command line: a missing cell is refused with its place and the flag that keeps it; with `--drop-missing`,
/// `data inspect` counts each column's missing cells and the rows the default roles leave out (text and JSON), and
/// `train` says what it left out and trains on the rest.
#[test]
fn the_command_line_keeps_missing_cells_when_asked_and_says_what_it_left_out() {
    use std::process::Command;
    const BIN: &str = env!("CARGO_BIN_EXE_bayes-explorer");
    let dir = tempfile::tempdir().expect("a folder");
    let path = dir.path().join("passengers.csv");
    let mut text = "Survived,Pclass,Sex,Age,Fare\n".to_owned();
    for i in 0..40u32 {
        let age = if i % 4 == 1 { String::new() } else { (20 + i).to_string() };
        let sex = if i % 3 == 0 { "female" } else { "male" };
        let _ = writeln!(text, "{},{},{sex},{age},{}.5", i % 2, 1 + i % 3, 7 + i);
    }
    std::fs::write(&path, text).expect("written");
    let file = path.to_str().expect("a path");
    let run = |args: &[&str]| Command::new(BIN).args(args).output().expect("the binary runs");
    let refused = run(&["data", "inspect", file]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("line 3, column 4 (\"Age\")") && stderr.contains("--drop-missing keeps"), "{stderr}");
    let inspected = run(&["data", "inspect", file, "--drop-missing"]);
    let stdout = String::from_utf8_lossy(&inspected.stdout);
    assert!(stdout.contains("passengers.csv: 40 rows x 5 columns"), "{stdout}");
    assert!(stdout.contains("missing cells in \"Age\": 10 (the first on line 3: \"\")"), "{stdout}");
    assert!(stdout.contains("left out: 10 rows that miss a value in a column used (the first on line 3"), "{stdout}");
    assert!(stdout.contains("split (seed 42): 25 train, 5 test"), "30 rows split: {stdout}");
    let json = run(&["data", "inspect", file, "--drop-missing", "--json"]);
    let line: serde_json::Value = serde_json::from_slice(&json.stdout).expect("one JSON line");
    assert_eq!((line["missing"]["Age"].as_u64(), line["dropped_rows"].as_u64()), (Some(10), Some(10)));
    let trained = run(&["train", "bnn", "--data", file, "--drop-missing", "--epochs", "2", "--json"]);
    let stderr = String::from_utf8_lossy(&trained.stderr);
    assert!(trained.status.success(), "{stderr}");
    assert!(stderr.contains("passengers.csv: left out 10 rows that miss a value in a column used"), "{stderr}");
}
