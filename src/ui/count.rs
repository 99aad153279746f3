//! Counts with their nouns, agreeing in number: "1 epoch", "2 epochs", "1 forward pass", "0 rows".

/// `n` and `noun`, the noun plural unless `n` is one: "1 epoch", "2 epochs", "3 passes". `noun` is the singular;
/// nouns ending in s, x or sh take "es", others "s" ("epochs": the window counts no "batch").
pub(crate) fn count(n: impl std::fmt::Display, noun: &str) -> String {
    let n = n.to_string();
    if n == "1" { format!("1 {noun}") } else { format!("{n} {}", plural(noun)) }
}

/// The plural of `noun` (the nouns the window counts: epochs, rows, columns, passes, bins...).
fn plural(noun: &str) -> String {
    if ["s", "x", "sh"].iter().any(|end| noun.ends_with(end)) { format!("{noun}es") } else { format!("{noun}s") }
}

#[cfg(test)]
mod tests {
    use super::count;

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
        assert_eq!(count(1599, "test row"), "1599 test rows");
        assert_eq!(count(1_u64, "step"), "1 step");
    }
}
