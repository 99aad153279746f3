//! From a [`Table`] to what a model trains on: column roles, the seeded train/test split,
//! standardisation, and which labs can use the data.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::Lab;
use crate::data::csv::MISSING_CATEGORY;
use crate::data::table::{Column, ColumnKind, DISTINCT_CAP, Table, column_stats, grouped};

/// What a column is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    /// An input.
    Feature,
    /// A numeric target (regression).
    Target,
    /// A class label (classification; colours the views).
    Label,
    /// Not used.
    Ignored,
}

impl Role {
    /// All roles, in menu order.
    pub const ALL: [Self; 4] = [Self::Feature, Self::Target, Self::Label, Self::Ignored];

    /// Name shown to the user.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Feature => "feature",
            Self::Target => "target",
            Self::Label => "label",
            Self::Ignored => "ignored",
        }
    }
}

/// Column names (compared without case) that make a column the output wherever it stands: what datasets call the
/// thing to predict. Not "y": beside "x" it is a flow's second coordinate.
pub const OUTPUT_NAMES: [&str; 8] =
    ["label", "labels", "target", "class", "species", "outcome", "survived", "diagnosis"];

/// Whether a column numbers the rows rather than measuring them: whole numbers, many of them, under a name that says
/// so: "id", "index", Titanic's "PassengerId", a "customer_id", or the "Unnamed: 0" that pandas writes for its index.
#[must_use]
pub fn is_row_number(column: &Column) -> bool {
    let name = column.name.trim();
    let lower = name.to_ascii_lowercase();
    let named = matches!(lower.as_str(), "id" | "index" | "")
        || lower.starts_with("unnamed")
        || lower.ends_with("_id")
        || name.ends_with("Id")
        || name.ends_with("ID");
    named && column.kind == ColumnKind::Integer && column.n_distinct > DISTINCT_CAP
}

/// Integer columns with at most this many values, numbered from 0 or 1, default to labels; text columns with at most
/// this many texts default to features (one input per text, [`TextFeatures::OneHot`]).
pub const MAX_DEFAULT_CLASSES: usize = 20;

/// How a feature column of text with more than two kinds goes into a model. (Two kinds are always one input, 0 and
/// 1: a plain indicator.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TextFeatures {
    /// One input per text, 1 where the row has it and 0 elsewhere (one-hot): texts have no order to read as
    /// numbers. The BNN's and the VAE's.
    OneHot,
    /// One input, the number of the text in their sorted order (Biscoe = 0, Dream = 1, Torgersen = 2): an order the
    /// texts do not have, which [`ordered_text_note`] says. A flow's (it models two columns as they are), and what
    /// a run saved before one-hot encoding trained on.
    Codes,
}

impl TextFeatures {
    /// What a run file saved before the choice existed trained on.
    #[must_use]
    pub fn saved_before_one_hot() -> Self {
        Self::Codes
    }
}

/// How a table is turned into training data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DataSpec {
    /// One role per column.
    pub roles: Vec<Role>,
    /// Standardise features to mean 0 and sd 1 (statistics of the training rows).
    pub standardize: bool,
    /// Fraction of rows held out for testing.
    pub test_fraction: f64,
    /// Seed of the shuffle that makes the split.
    pub seed: u64,
    /// How a feature of text with more than two kinds goes into the model.
    #[serde(default = "TextFeatures::saved_before_one_hot")]
    pub text_features: TextFeatures,
}

impl DataSpec {
    /// Sensible defaults: the output is the column named as one (see [`OUTPUT_NAMES`]: Kaggle's MNIST has its
    /// "label" first, Titanic its "Survived" second), else the last column; it is a label when it holds a few
    /// integer codes starting at 0 or 1 (a digit, a class) or a few texts (a species), else a target. Every other
    /// column is a feature, but a text column is one only with 2 to [`MAX_DEFAULT_CLASSES`] texts (one input per
    /// text, [`TextFeatures::OneHot`]), and ignored otherwise: many texts are names or codes (a passenger's name, a
    /// ticket), one says nothing; a row number is ignored too (see [`is_row_number`]), and so is an output of text
    /// with more categories than a label takes, or with a single one. A column missing more than half its cells is
    /// ignored too: as a feature it would leave out most rows ([`complete_rows`]). 15 % test, seed 42.
    #[must_use]
    pub fn default_for(table: &Table) -> Self {
        let mostly_missing =
            |j: usize| table.csv.iter().flat_map(|c| &c.missing).any(|m| m.column == j && 2 * m.count > table.n_rows());
        let mut roles: Vec<Role> = table
            .columns
            .iter()
            .enumerate()
            .map(|(j, c)| {
                let unmeasured = c.kind == ColumnKind::Text && !(2..=MAX_DEFAULT_CLASSES).contains(&c.categories.len());
                if unmeasured || is_row_number(c) || mostly_missing(j) { Role::Ignored } else { Role::Feature }
            })
            .collect();
        let named = table.columns.iter().position(|c| {
            OUTPUT_NAMES.iter().any(|n| c.name.trim().eq_ignore_ascii_case(n))
                && (c.kind != ColumnKind::Text || c.looks_like_label(MAX_DEFAULT_CLASSES))
        });
        if let Some(j) = named.or(table.n_cols().checked_sub(1)) {
            let output = &table.columns[j];
            let is_code = output.looks_like_label(MAX_DEFAULT_CLASSES)
                && (output.kind == ColumnKind::Text || matches!(output.min as i64, 0 | 1));
            roles[j] = match (is_code, output.kind) {
                (true, _) => Role::Label,
                (false, ColumnKind::Text) => Role::Ignored,
                (false, _) => Role::Target,
            };
        }
        Self { roles, standardize: true, test_fraction: 0.15, seed: 42, text_features: TextFeatures::OneHot }
    }

    /// Indices of the feature columns.
    #[must_use]
    pub fn feature_columns(&self) -> Vec<usize> {
        self.columns_with(Role::Feature)
    }

    /// Index of the (single) target or label column, if there is exactly one.
    #[must_use]
    pub fn output_column(&self) -> Option<(usize, Role)> {
        let outputs: Vec<(usize, Role)> = self
            .roles
            .iter()
            .enumerate()
            .filter(|(_, r)| matches!(r, Role::Target | Role::Label))
            .map(|(i, r)| (i, *r))
            .collect();
        if outputs.len() == 1 { outputs.first().copied() } else { None }
    }

    /// Indices of the columns the spec uses: its features and its output (every column not ignored).
    #[must_use]
    pub fn used_columns(&self) -> Vec<usize> {
        self.roles.iter().enumerate().filter(|(_, r)| **r != Role::Ignored).map(|(i, _)| i).collect()
    }

    fn columns_with(&self, role: Role) -> Vec<usize> {
        self.roles.iter().enumerate().filter(|(_, r)| **r == role).map(|(i, _)| i).collect()
    }

    /// Sets column `index` to the target role, demoting any other target or label to a feature.
    pub fn set_output(&mut self, index: usize, role: Role) {
        for r in &mut self.roles {
            if matches!(r, Role::Target | Role::Label) {
                *r = Role::Feature;
            }
        }
        if let Some(r) = self.roles.get_mut(index) {
            *r = role;
        }
    }
}

/// Rows in the training and test parts for `n_rows` rows: the test part is `round(n * fraction)`,
/// kept between 1 and `n - 1` when there are at least two rows.
#[must_use]
pub fn split_counts(n_rows: usize, test_fraction: f64) -> (usize, usize) {
    if n_rows < 2 {
        return (n_rows, 0);
    }
    let n_test = ((n_rows as f64) * test_fraction.clamp(0.0, 1.0)).round() as usize;
    let n_test = n_test.clamp(usize::from(test_fraction > 0.0), n_rows - 1);
    (n_rows - n_test, n_test)
}

/// The seeded split: a shuffle of `0..n_rows`, training indices first.
#[must_use]
pub fn split_indices(n_rows: usize, test_fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut order: Vec<usize> = (0..n_rows).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let (n_train, _) = split_counts(n_rows, test_fraction);
    let test = order.split_off(n_train);
    (order, test)
}

/// What the output column holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum OutputKind {
    /// A real value to regress.
    Regression,
    /// Class labels; `classes[k]` is the value of class `k` in the table (a text column's category number), and
    /// `names[k]` how it is written (the number, or the category's text).
    Classes {
        classes: Vec<f32>,
        #[serde(default)]
        names: Vec<String>,
    },
}

impl OutputKind {
    /// How class `k` is written: its name (a number, or a text column's category), else its index.
    #[must_use]
    pub fn class_name(&self, k: usize) -> String {
        match self {
            Self::Classes { classes, names } => names
                .get(k)
                .cloned()
                .or_else(|| classes.get(k).map(|v| format!("{v}")))
                .unwrap_or_else(|| k.to_string()),
            Self::Regression => k.to_string(),
        }
    }

    /// The number of classes; 0 for a regression.
    #[must_use]
    pub fn n_classes(&self) -> usize {
        match self {
            Self::Classes { classes, .. } => classes.len(),
            Self::Regression => 0,
        }
    }

    /// Every class as it is written, by index; empty for a regression.
    #[must_use]
    pub fn class_names(&self) -> Vec<String> {
        (0..self.n_classes()).map(|k| self.class_name(k)).collect()
    }
}

/// How an input made of a text ("island = Dream") writes its values 0 and 1.
pub const INDICATOR_VALUES: [&str; 2] = ["no", "yes"];

/// A column of text that went into a model as one input per text ([`TextFeatures::OneHot`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OneHotGroup {
    /// The column's name.
    pub column: String,
    /// Its texts, in the order of their inputs.
    pub categories: Vec<String>,
    /// Its first input's place among the features.
    pub first: usize,
}

impl OneHotGroup {
    /// The places of its inputs among the features.
    #[must_use]
    pub fn inputs(&self) -> std::ops::Range<usize> {
        self.first..self.first + self.categories.len()
    }
}

/// One input of a model: a feature column's value, or whether a column of text holds its text `k` (one-hot).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Input {
    Value(usize),
    Indicator(usize, usize),
}

/// Whether column `j` of `table` is a feature that goes into a model one input per text under `spec`.
#[must_use]
pub fn goes_in_one_hot(table: &Table, spec: &DataSpec, j: usize) -> bool {
    spec.text_features == TextFeatures::OneHot
        && spec.roles.get(j) == Some(&Role::Feature)
        && table.columns.get(j).is_some_and(Column::has_many_texts)
}

/// The inputs of the model `spec` makes of `table`, in order: each feature column's value, or one per text of a
/// column that goes in one-hot.
fn inputs(table: &Table, spec: &DataSpec) -> Vec<Input> {
    spec.feature_columns()
        .into_iter()
        .flat_map(|j| {
            let texts = if goes_in_one_hot(table, spec, j) { table.columns[j].categories.len() } else { 0 };
            let indicators = (0..texts).map(move |k| Input::Indicator(j, k));
            (texts == 0).then_some(Input::Value(j)).into_iter().chain(indicators)
        })
        .collect()
}

/// How many inputs a model takes of `table` under `spec`: one per feature column, and one per text of a column that
/// goes in one-hot.
#[must_use]
pub fn input_count(table: &Table, spec: &DataSpec) -> usize {
    inputs(table, spec).len()
}

/// Training data ready for a model: standardised features and outputs, split.
#[derive(Clone, Debug, PartialEq)]
pub struct Prepared {
    /// Names of the model's inputs, in order: a feature column's name, or "column = text" for an input of a column
    /// that went in one-hot.
    pub feature_names: Vec<String>,
    /// Each feature column's categories where it is a column of text (its values are their numbers, 0 and 1: a text
    /// feature has two), and [`INDICATOR_VALUES`] for an input of a column that went in one-hot; empty for a column
    /// of numbers.
    pub feature_categories: Vec<Vec<String>>,
    /// The columns of text that went in one input per text (their inputs named "column = text").
    pub one_hot: Vec<OneHotGroup>,
    /// Name and kind of the output column, if any.
    pub output: Option<(String, OutputKind)>,
    /// Training features, row-major `[n_train, n_features]`.
    pub x_train: Vec<f32>,
    /// Training outputs (class indices for labels), `[n_train]`; empty without an output column.
    pub y_train: Vec<f32>,
    /// Test features `[n_test, n_features]`.
    pub x_test: Vec<f32>,
    /// Test outputs `[n_test]`.
    pub y_test: Vec<f32>,
    /// Per-feature mean subtracted (0 when not standardised).
    pub feature_mean: Vec<f32>,
    /// Per-feature scale divided by (1 when not standardised).
    pub feature_scale: Vec<f32>,
}

impl Prepared {
    /// Number of features (the model's inputs: a column that went in one-hot counts one per text).
    #[must_use]
    pub fn n_features(&self) -> usize {
        self.feature_names.len()
    }
    /// The one-hot column input `j` belongs to, if any.
    #[must_use]
    pub fn one_hot_group(&self, j: usize) -> Option<&OneHotGroup> {
        self.one_hot.iter().find(|g| g.inputs().contains(&j))
    }
    /// Number of training rows.
    #[must_use]
    pub fn n_train(&self) -> usize {
        self.x_train.len() / self.n_features().max(1)
    }
    /// Number of test rows.
    #[must_use]
    pub fn n_test(&self) -> usize {
        self.x_test.len() / self.n_features().max(1)
    }
}

/// Why a table and spec cannot be prepared.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum SpecError {
    /// The roles vector does not match the table.
    #[error("the dataset has {columns} columns but {roles} roles were given")]
    RoleCount { columns: usize, roles: usize },
    /// No feature column.
    #[error("no column is a feature; choose at least one")]
    NoFeatures,
    /// Too few rows with a value in every column used (`left_out` miss one).
    #[error("{}", too_few_rows(*rows, *left_out))]
    TooFewRows { rows: usize, left_out: usize },
    /// A named column is missing.
    #[error("no column is named {name:?}; the columns are: {available}")]
    NoSuchColumn { name: String, available: String },
}

fn too_few_rows(rows: usize, left_out: usize) -> String {
    if left_out == 0 {
        format!("the dataset has {rows} rows; at least 2 are needed to split it")
    } else {
        format!(
            "{} of the dataset's {} rows miss a value in a column used, leaving {rows}; at least 2 are needed to \
             split them (ignore the columns with missing cells)",
            grouped(left_out),
            grouped(rows + left_out)
        )
    }
}

/// The rows a spec cannot use: those that miss a value in a column it uses (a missing cell kept as NaN, see
/// [`crate::data::MissingPolicy::DropRows`], or an output of text's `"(missing)"` category, which is no class).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeftOut {
    /// How many rows.
    pub rows: usize,
    /// The first, where the file's facts tell: (line, column name, the cell's text).
    pub first: Option<(u64, String, String)>,
}

impl std::fmt::Display for LeftOut {
    /// "12 rows that miss a value in a column used (the first on line 7, column "Age": "")".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.rows {
            1 => write!(f, "1 row that misses")?,
            n => write!(f, "{} rows that miss", grouped(n))?,
        }
        write!(f, " a value in a column used")?;
        if let Some((line, column, text)) = &self.first {
            write!(f, " (the first on line {line}, column \"{column}\": {text:?})")?;
        }
        Ok(())
    }
}

impl LeftOut {
    /// What a table's CSV facts say [`complete_rows`] left out of it.
    #[must_use]
    pub fn of(table: &Table) -> Self {
        table.csv.as_ref().map_or_else(Self::default, |c| Self { rows: c.dropped_rows, first: c.first_dropped.clone() })
    }
}

/// The columns a spec uses, and what stands for a missing value in them: NaN (a missing number kept, or a number no
/// `f32` holds), and in an output of text its `"(missing)"` category, which is no class to predict.
struct Used {
    columns: Vec<usize>,
    /// The output column of text with a `"(missing)"` category, and that category's number.
    missing_class: Option<(usize, f32)>,
}

impl Used {
    fn of(table: &Table, spec: &DataSpec) -> Self {
        let missing_class = spec.output_column().and_then(|(j, _)| {
            let column = table.columns.get(j).filter(|c| c.kind == ColumnKind::Text)?;
            let k = column.categories.iter().position(|c| c == MISSING_CATEGORY)?;
            #[allow(clippy::cast_precision_loss)] // a category's number, far below 2^24
            Some((j, k as f32))
        });
        Self { columns: spec.used_columns(), missing_class }
    }
}

/// Whether row `i` misses a value in a column `used` uses.
fn misses_a_value(table: &Table, i: usize, used: &Used) -> bool {
    table.row(i).is_some_and(|row| {
        used.columns.iter().any(|&j| row.get(j).is_some_and(|v| v.is_nan()))
            || used.missing_class.is_some_and(|(j, code)| row.get(j).is_some_and(|v| v.total_cmp(&code).is_eq()))
    })
}

/// The rows of `table` that `spec` cannot use, counted (every value of the used columns is looked at: call it when
/// the roles change, not every frame).
#[must_use]
pub fn left_out(table: &Table, spec: &DataSpec) -> LeftOut {
    let used = Used::of(table, spec);
    let rows = (0..table.n_rows()).filter(|&i| misses_a_value(table, i, &used)).count();
    LeftOut { rows, first: first_left_out(table, &used).filter(|_| rows > 0) }
}

/// Each column's rows that miss a value, found in one pass over the table, so that the rows a choice of roles leaves
/// out ([`left_out`]) are counted from them alone: the preview counts them again at each change of a role, on the UI
/// thread, where a look at every value of a file of two million rows took 13 ms.
#[derive(Clone, Debug, Default)]
pub struct MissingRows {
    /// The table's rows.
    n_rows: usize,
    /// (column, its rows missing a value, ascending): the rows of NaN in a column of numbers, the rows of the
    /// `"(missing)"` category in a column of text (missing only as a label's class).
    by_column: Vec<(usize, Vec<u32>)>,
}

impl MissingRows {
    /// The rows of each of `table`'s columns that miss a value.
    #[must_use]
    pub fn of(table: &Table) -> Self {
        let n_cols = table.n_cols();
        let missing_code: Vec<Option<f32>> = table
            .columns
            .iter()
            .map(|c| {
                let k = c
                    .categories
                    .iter()
                    .position(|name| name == MISSING_CATEGORY)
                    .filter(|_| c.kind == ColumnKind::Text);
                #[allow(clippy::cast_precision_loss)] // a category's number, far below 2^24
                k.map(|k| k as f32)
            })
            .collect();
        let mut rows: Vec<Vec<u32>> = vec![Vec::new(); n_cols];
        for (i, row) in table.values.chunks_exact(n_cols.max(1)).enumerate() {
            for (j, &v) in row.iter().enumerate() {
                let missing = match missing_code[j] {
                    Some(code) => v.total_cmp(&code).is_eq(),
                    None => v.is_nan(),
                };
                if missing {
                    #[allow(clippy::cast_possible_truncation)] // row numbers of a table in memory, below 2^32
                    rows[j].push(i as u32);
                }
            }
        }
        let by_column = rows.into_iter().enumerate().filter(|(_, r)| !r.is_empty()).collect();
        Self { n_rows: table.n_rows(), by_column }
    }

    /// [`left_out`] of `spec` on `table`, the table these rows were found in: the same count, from the rows found.
    #[must_use]
    pub fn left_out(&self, table: &Table, spec: &DataSpec) -> LeftOut {
        let used = Used::of(table, spec);
        let lists: Vec<&[u32]> = self
            .by_column
            .iter()
            .filter(|(j, _)| match table.columns.get(*j).map(|c| c.kind) {
                Some(ColumnKind::Text) => used.missing_class.is_some_and(|(k, _)| k == *j),
                _ => used.columns.contains(j),
            })
            .map(|(_, rows)| rows.as_slice())
            .collect();
        let rows = match lists.as_slice() {
            [] => 0,
            [one] => one.len(),
            _ => {
                // The union, as a set of bits of the rows.
                let mut bits = vec![0_u64; self.n_rows.div_ceil(64)];
                for &r in lists.iter().flat_map(|l| l.iter()) {
                    bits[r as usize / 64] |= 1 << (r % 64);
                }
                bits.iter().map(|b| b.count_ones() as usize).sum()
            }
        };
        LeftOut { rows, first: first_left_out(table, &used).filter(|_| rows > 0) }
    }
}

/// Where the file's facts tell, the first row left out: the earliest first missing cell among the used columns (the
/// output's missing class among them), as (line, column name, the cell's text).
fn first_left_out(table: &Table, used: &Used) -> Option<(u64, String, String)> {
    table
        .csv
        .iter()
        .flat_map(|facts| {
            let numbers = facts.missing.iter().filter(|m| used.columns.contains(&m.column));
            let class = facts.missing_text.iter().filter(|m| used.missing_class.is_some_and(|(j, _)| j == m.column));
            numbers.chain(class)
        })
        .min_by_key(|m| m.first.0)
        .map(|m| (m.first.1, table.columns[m.column].name.clone(), m.first.2.clone()))
}

/// `table` without the rows `spec` cannot use ([`left_out`]): what a lab trains on, shows and records. Its CSV facts
/// say how many rows were left out and the first (`dropped_rows`, `first_dropped`); each column's statistics are those
/// of the rows kept, and a text column's categories those met in them (renumbered as the reader numbers them, so that
/// with every column used it is the table the reader made when it dropped such rows itself). A column `spec` ignores
/// may still hold missing cells (NaN). Unchanged when every row is complete.
#[must_use]
pub fn complete_rows(mut table: Table, spec: &DataSpec) -> Table {
    let used = Used::of(&table, spec);
    let Some(first) = (0..table.n_rows()).find(|&i| misses_a_value(&table, i, &used)) else {
        return table;
    };
    let kept: Vec<usize> =
        (0..first).chain((first..table.n_rows()).filter(|&i| !misses_a_value(&table, i, &used))).collect();
    let left = LeftOut { rows: table.n_rows() - kept.len(), first: first_left_out(&table, &used) };
    let n_cols = table.n_cols();
    table.values = kept.iter().flat_map(|&i| table.row(i).unwrap_or_default().iter().copied()).collect();
    for (j, column) in table.columns.iter_mut().enumerate() {
        let name = std::mem::take(&mut column.name);
        if column.kind == ColumnKind::Text {
            // Each category is used at least once: one met only in the rows left out goes, the others renumbered
            // in their sorted order.
            let mut met = vec![false; column.categories.len()];
            for v in table.values.iter().skip(j).step_by(n_cols).filter(|v| !v.is_nan()) {
                if let Some(m) = met.get_mut(*v as usize) {
                    *m = true;
                }
            }
            let mut code = Vec::with_capacity(met.len());
            let mut next = 0.0f32;
            for &m in &met {
                code.push(next);
                next += f32::from(u8::from(m));
            }
            for v in table.values.iter_mut().skip(j).step_by(n_cols).filter(|v| !v.is_nan()) {
                *v = code.get(*v as usize).copied().unwrap_or(*v);
            }
            let categories = std::mem::take(&mut column.categories).into_iter().zip(&met);
            *column = Column::text(name, categories.filter(|(_, m)| **m).map(|(c, _)| c).collect());
        } else {
            *column = column_stats(name, table.values.iter().skip(j).step_by(n_cols).copied());
        }
    }
    if let Some(facts) = &mut table.csv {
        facts.dropped_rows = left.rows;
        facts.first_dropped = left.first;
        // They name rows by their place in the table as read.
        facts.missing.clear();
        facts.missing_text.clear();
    }
    table
}

/// Splits and standardises the table as the spec says; rows that miss a value in a used column are left out
/// ([`complete_rows`] leaves them out of the table a lab holds).
pub fn prepare(table: &Table, spec: &DataSpec) -> Result<Prepared, SpecError> {
    if spec.roles.len() != table.n_cols() {
        return Err(SpecError::RoleCount { columns: table.n_cols(), roles: spec.roles.len() });
    }
    let features = spec.feature_columns();
    if features.is_empty() {
        return Err(SpecError::NoFeatures);
    }
    let used = Used::of(table, spec);
    let rows: Vec<usize> = (0..table.n_rows()).filter(|&i| !misses_a_value(table, i, &used)).collect();
    if rows.len() < 2 {
        return Err(SpecError::TooFewRows { rows: rows.len(), left_out: table.n_rows() - rows.len() });
    }
    let output = spec.output_column();
    let classes: Option<Vec<f32>> = output.filter(|(_, r)| *r == Role::Label).map(|(j, _)| {
        let mut values: Vec<f32> = rows.iter().filter_map(|&i| table.get(i, j)).collect();
        values.sort_by(f32::total_cmp);
        values.dedup();
        values
    });
    let (train, test) = split_indices(rows.len(), spec.test_fraction, spec.seed);
    let (train, test): (Vec<usize>, Vec<usize>) =
        (train.into_iter().map(|i| rows[i]).collect(), test.into_iter().map(|i| rows[i]).collect());
    let inputs = inputs(table, spec);
    let gather_x = |rows: &[usize]| -> Vec<f32> {
        rows.iter()
            .flat_map(|&i| {
                inputs.iter().map(move |input| match *input {
                    Input::Value(j) => table.get(i, j).unwrap_or(0.0),
                    Input::Indicator(j, k) => {
                        #[allow(clippy::cast_precision_loss)] // a text's number, far below 2^24
                        let code = k as f32;
                        f32::from(u8::from(table.get(i, j).is_some_and(|v| v.total_cmp(&code).is_eq())))
                    }
                })
            })
            .collect()
    };
    let gather_y = |rows: &[usize]| -> Vec<f32> {
        let Some((j, _)) = output else {
            return Vec::new();
        };
        rows.iter()
            .map(|&i| {
                let v = table.get(i, j).unwrap_or(0.0);
                match &classes {
                    Some(c) => c.binary_search_by(|p| p.total_cmp(&v)).unwrap_or(0) as f32,
                    None => v,
                }
            })
            .collect()
    };
    let mut x_train = gather_x(&train);
    let mut x_test = gather_x(&test);
    let d = inputs.len();
    let (mean, scale) = if spec.standardize { mean_and_scale(&x_train, d) } else { (vec![0.0; d], vec![1.0; d]) };
    for row in x_train.chunks_exact_mut(d).chain(x_test.chunks_exact_mut(d)) {
        for ((v, m), s) in row.iter_mut().zip(&mean).zip(&scale) {
            *v = (*v - m) / s;
        }
    }
    let mut one_hot: Vec<OneHotGroup> = Vec::new();
    for (at, input) in inputs.iter().enumerate() {
        if let Input::Indicator(j, 0) = *input {
            let column = &table.columns[j];
            one_hot.push(OneHotGroup { column: column.name.clone(), categories: column.categories.clone(), first: at });
        }
    }
    Ok(Prepared {
        feature_names: inputs
            .iter()
            .map(|input| match *input {
                Input::Value(j) => table.columns[j].name.clone(),
                Input::Indicator(j, k) => format!("{} = {}", table.columns[j].name, table.columns[j].categories[k]),
            })
            .collect(),
        feature_categories: inputs
            .iter()
            .map(|input| match *input {
                Input::Value(j) => table.columns[j].categories.clone(),
                Input::Indicator(..) => INDICATOR_VALUES.map(String::from).to_vec(),
            })
            .collect(),
        one_hot,
        output: output.map(|(j, _)| {
            let kind = classes.clone().map_or(OutputKind::Regression, |classes| {
                let names = classes.iter().map(|&v| table.columns[j].value_text(v)).collect();
                OutputKind::Classes { classes, names }
            });
            (table.columns[j].name.clone(), kind)
        }),
        y_train: gather_y(&train),
        y_test: gather_y(&test),
        x_train,
        x_test,
        feature_mean: mean,
        feature_scale: scale,
    })
}

/// Per-column mean and standard deviation (population); a constant column gets scale 1.
fn mean_and_scale(x: &[f32], d: usize) -> (Vec<f32>, Vec<f32>) {
    let n = (x.len() / d).max(1) as f64;
    let mut mean = vec![0f64; d];
    for row in x.chunks_exact(d) {
        for (m, v) in mean.iter_mut().zip(row) {
            *m += f64::from(*v);
        }
    }
    for m in &mut mean {
        *m /= n;
    }
    let mut var = vec![0f64; d];
    for row in x.chunks_exact(d) {
        for ((s, v), m) in var.iter_mut().zip(row).zip(&mean) {
            *s += (f64::from(*v) - m).powi(2);
        }
    }
    let scale = var.iter().map(|s| (s / n).sqrt()).map(|s| if s > 1e-12 { s as f32 } else { 1.0 }).collect();
    (mean.into_iter().map(|m| m as f32).collect(), scale)
}

/// The smallest side of what is taken as an image: four or sixteen columns are more likely a table's measurements
/// (Iris's four, a letter's sixteen features) than 2 x 2 or 4 x 4 pixels. The course's digits are 8 x 8.
pub const MIN_IMAGE_SIDE: usize = 5;

/// Side of the square image a feature vector forms, if its length is a perfect square of a side of at least
/// [`MIN_IMAGE_SIDE`].
#[must_use]
pub fn image_side(n_features: usize) -> Option<usize> {
    let side = (n_features as f64).sqrt().round() as usize;
    (side >= MIN_IMAGE_SIDE && side * side == n_features).then_some(side)
}

/// Whether the features `spec` picks of `table` form images: a square number (see [`image_side`]) of columns, none
/// with a negative value. What the VAE takes as images (`models::vae::inputs_are_images` asks the same of prepared
/// data); other tables it takes as standardised rows.
#[must_use]
pub fn features_form_images(table: &Table, spec: &DataSpec) -> bool {
    let features = spec.feature_columns();
    image_side(features.len()).is_some() && features.iter().all(|&j| table.columns.get(j).is_some_and(|c| c.min >= 0.0))
}

/// Share of the rows a flow holds out (the Keras Real NVP example's validation split).
pub const FLOW_TEST_FRACTION: f64 = 0.2;

/// Roles for a lab's data: the loader's defaults (wine quality, 3..8, is a target to regress, as in the
/// course), with a flow keeping only the first two features (a target among them where there are fewer) and holding
/// out 20 %.
#[must_use]
pub fn default_spec_for_lab(lab: Lab, table: &Table) -> DataSpec {
    let mut spec = DataSpec::default_for(table);
    if lab == Lab::Flow {
        spec.test_fraction = FLOW_TEST_FRACTION;
        // A flow models two columns as they are: a column of texts is no measurement to have a density over.
        spec.text_features = TextFeatures::Codes;
        for (r, c) in spec.roles.iter_mut().zip(&table.columns) {
            if *r == Role::Feature && c.has_many_texts() {
                *r = Role::Ignored;
            }
        }
        // A flow has no target: with fewer than two features, a target is one more (the "y" of a file of x and y).
        if spec.feature_columns().len() < 2
            && let Some((j, Role::Target)) = spec.output_column()
        {
            spec.roles[j] = Role::Feature;
        }
        // A flow models two columns: keep the first two features, ignore the rest.
        let mut features = 0;
        for r in &mut spec.roles {
            if *r == Role::Feature {
                features += 1;
                if features > 2 {
                    *r = Role::Ignored;
                }
            }
        }
    }
    spec
}

/// The feature columns of `spec` that hold texts of more than two kinds and go in as numbers
/// ([`TextFeatures::Codes`]: a flow's, a run saved before one-hot encoding): a model reads their texts as the numbers
/// 0, 1, 2, … of their sorted order, an order the texts do not have (Biscoe, Dream, Torgersen: Dream halfway between
/// the others). Two kinds read as 0 and 1 are a plain indicator, and are left out.
#[must_use]
pub fn ordered_text_features(table: &Table, spec: &DataSpec) -> Vec<usize> {
    if spec.text_features != TextFeatures::Codes {
        return Vec::new();
    }
    spec.feature_columns().into_iter().filter(|&j| table.columns.get(j).is_some_and(Column::has_many_texts)).collect()
}

/// What one-hot encoding makes of `spec`'s feature columns of text of more than two kinds, as a sentence ("\"island\"
/// goes in as 3 inputs, one per text …"); `None` where no column does.
#[must_use]
pub fn one_hot_note(table: &Table, spec: &DataSpec) -> Option<String> {
    let columns: Vec<&Column> = spec
        .feature_columns()
        .into_iter()
        .filter(|&j| goes_in_one_hot(table, spec, j))
        .map(|j| &table.columns[j])
        .collect();
    let names: Vec<String> = columns.iter().map(|c| format!("\"{}\"", c.name)).collect();
    let counts: Vec<String> = columns.iter().map(|c| c.categories.len().to_string()).collect();
    let verb = match columns.len() {
        0 => return None,
        1 => "goes",
        _ => "go",
    };
    Some(format!(
        "{} {verb} in as {} inputs, one per text (1 where a row has it, else 0: one-hot), since texts have no order \
         to read as numbers.",
        and_list(&names),
        and_list(&counts)
    ))
}

/// "a", "a and b", "a, b and c".
fn and_list(items: &[String]) -> String {
    match items.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => items.concat(),
    }
}

/// What [`ordered_text_features`] finds, as a sentence naming the columns and what to do; `None` where none is.
#[must_use]
pub fn ordered_text_note(table: &Table, spec: &DataSpec) -> Option<String> {
    let columns = ordered_text_features(table, spec);
    let first = table.columns.get(*columns.first()?)?;
    let listed: Vec<String> = columns
        .iter()
        .map(|&j| format!("\"{}\" ({} texts)", table.columns[j].name, table.columns[j].categories.len()))
        .collect();
    let (listed, them) = (and_list(&listed), if listed.len() > 1 { "them" } else { "it" });
    let codes = first.categories.iter().take(3).enumerate().map(|(i, c)| format!("{c} = {i}")).collect::<Vec<_>>();
    let more = if first.categories.len() > 3 { ", …" } else { "" };
    Some(format!(
        "{listed}: a feature's texts are read as the numbers of their sorted order ({}{more}), an order they do not \
         have. Make {them} ignored, or the label if it is what to predict.",
        codes.join(", ")
    ))
}

/// At most this many distinct values make a column discrete to a normalizing flow ([`few_valued_features`]).
pub const FLOW_FEW_VALUES: usize = 10;

/// The feature columns of `spec` that take at most [`FLOW_FEW_VALUES`] values (a year, a count of rooms, a
/// category): a flow's density over such a column piles up on its few values' lines, and the NLL keeps falling as
/// the flow narrows them, far below any density of measurements (the Palmer penguins' year beside bill depth:
/// training NLL -0.48 after 300 epochs, against 2.33 for bill length beside bill depth). A normalizing flow models
/// continuous data.
#[must_use]
pub fn few_valued_features(table: &Table, spec: &DataSpec) -> Vec<usize> {
    spec.feature_columns()
        .into_iter()
        .filter(|&j| table.columns.get(j).is_some_and(|c| c.n_distinct <= FLOW_FEW_VALUES))
        .collect()
}

/// What [`few_valued_features`] finds, for the flow lab: a sentence naming the columns and what it means; `None`
/// where none is.
#[must_use]
pub fn flow_few_values_note(table: &Table, spec: &DataSpec) -> Option<String> {
    let columns = few_valued_features(table, spec);
    let first = *columns.first()?;
    let listed: Vec<String> = columns
        .iter()
        .map(|&j| format!("\"{}\" takes only {} values", table.columns[j].name, table.columns[j].n_distinct))
        .collect();
    let (it, lines) = match columns.len() {
        1 => ("it", format!("{} lines", table.columns[first].n_distinct)),
        _ => ("them", "a grid of points".to_owned()),
    };
    Some(format!(
        "{}: a density over {it} piles up on {lines}, and the flow's NLL keeps falling as it narrows them, far below \
         any density of measurements. A normalizing flow is for continuous columns.",
        listed.join(" and ")
    ))
}

/// Whether a lab can train on a table with these roles, and why not.
pub fn check_lab(lab: Lab, table: &Table, spec: &DataSpec) -> Result<(), String> {
    if spec.roles.len() != table.n_cols() {
        return Err(SpecError::RoleCount { columns: table.n_cols(), roles: spec.roles.len() }.to_string());
    }
    let n_features = spec.feature_columns().len();
    let outputs = spec.roles.iter().filter(|r| matches!(r, Role::Target | Role::Label)).count();
    match lab {
        Lab::Bnn => {
            if n_features == 0 {
                Err("needs at least one feature column".into())
            } else if outputs != 1 {
                Err(format!("needs exactly one target or label column (found {outputs})"))
            } else if let Some((j, Role::Target)) = spec.output_column()
                && let Some(c) = table.columns.get(j).filter(|c| c.kind == ColumnKind::Text)
            {
                Err(format!("cannot regress on \"{}\": it holds text; make it the label", c.name))
            } else {
                Ok(())
            }
        }
        Lab::Vae => {
            if n_features == 0 {
                Err("needs at least one feature column".into())
            } else {
                Ok(())
            }
        }
        Lab::Flow => {
            if n_features == 2 && input_count(table, spec) != 2 {
                Err("models two columns of numbers; a column of texts goes in as one input per text here".into())
            } else if n_features == 2 {
                Ok(())
            } else {
                Err(format!("needs exactly two feature columns (found {n_features}); mark the rest ignored"))
            }
        }
    }
}
