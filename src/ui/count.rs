//! Counts with their nouns, agreeing in number: "1 epoch", "2 epochs", "1 forward pass", "0 rows", "1,599 rows"; and
//! ordinals ("every 2nd row").

use crate::data::table::grouped;

/// `n` and `noun`, the noun plural unless `n` is one: "1 epoch", "2 epochs", "3 passes". `noun` is the singular;
/// nouns ending in s, x or sh take "es", others "s" ("epochs": the window counts no "batch").
pub(crate) fn count(n: impl std::fmt::Display, noun: &str) -> String {
    let n = grouped(n);
    if n == "1" { format!("1 {noun}") } else { format!("{n} {}", plural(noun)) }
}

/// `n` as an ordinal: "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "95th", "1,002nd".
pub(crate) fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{}{suffix}", grouped(n))
}

/// The plural of `noun` (the nouns the window counts: epochs, rows, columns, passes, bins...).
fn plural(noun: &str) -> String {
    if ["s", "x", "sh"].iter().any(|end| noun.ends_with(end)) { format!("{noun}es") } else { format!("{noun}s") }
}

#[cfg(test)]
mod tests {
    use super::{count, ordinal};

    /// Issue 28: after one epoch a label read "1 epochs". One is singular, every other count (zero too) plural.
    #[test]
    fn ux_counts_agree_in_number() {
        assert_eq!(count(1, "epoch"), "1 epoch");
        assert_eq!(count(2, "epoch"), "2 epochs");
        assert_eq!(count(0, "row"), "0 rows");
        assert_eq!(count(1, "row"), "1 row");
        assert_eq!(count(1, "forward pass"), "1 forward pass");
        assert_eq!(count(100, "forward pass"), "100 forward passes");
        assert_eq!(count(1, "box"), "1 box");
        assert_eq!(count(12, "bin"), "12 bins");
        assert_eq!(count(1599, "test row"), "1,599 test rows");
        assert_eq!(count(1_530_000, "row"), "1,530,000 rows");
        assert_eq!(count(999, "row"), "999 rows");
        assert_eq!(count(1_u64, "step"), "1 step");
    }

    #[test]
    fn ordinals_take_their_english_endings() {
        let cases = [
            (1, "1st"),
            (2, "2nd"),
            (3, "3rd"),
            (4, "4th"),
            (11, "11th"),
            (12, "12th"),
            (13, "13th"),
            (21, "21st"),
            (22, "22nd"),
            (23, "23rd"),
            (95, "95th"),
            (101, "101st"),
            (111, "111th"),
            (112, "112th"),
            (1002, "1,002nd"),
        ];
        for (n, text) in cases {
            assert_eq!(ordinal(n), text);
        }
    }
}
