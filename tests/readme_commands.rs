//! The README's command lines against the program: every documented form of every option parses as the program
//! defines it (each optional group of a synopsis line on its own, each listed value), the example lines parse as
//! they stand, and every option of `train` and `bench` is documented.

use bayes_explorer::cli::Cli;
use clap::{CommandFactory, Parser};

/// The lines of the README's `sh` blocks that run the program, without the prompt and the trailing comment.
fn documented_lines() -> Vec<String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README.md");
    let mut in_sh = false;
    let mut lines = Vec::new();
    for line in readme.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("```") {
            in_sh = trimmed == "```sh";
            continue;
        }
        if !in_sh {
            continue;
        }
        let command = trimmed.strip_prefix("$ ").unwrap_or(trimmed);
        if !command.starts_with("bayes-explorer") {
            continue;
        }
        let without_comment = command.find(" #").map_or(command, |i| &command[..i]);
        lines.push(without_comment.trim().to_owned());
    }
    lines
}

/// A synopsis line's parts: bare words (the lab alternatives `bnn|vae|flow` among them) and `[...]` groups.
enum Part {
    Word(String),
    Group(String),
}

fn parts(line: &str) -> Vec<Part> {
    let mut out = Vec::new();
    let mut rest = line;
    while !rest.is_empty() {
        rest = rest.trim_start();
        if let Some(inner) = rest.strip_prefix('[') {
            let end = inner.find(']').unwrap_or_else(|| panic!("unclosed [ in {line:?}"));
            out.push(Part::Group(inner[..end].to_owned()));
            rest = &inner[end + 1..];
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            out.push(Part::Word(rest[..end].to_owned()));
            rest = &rest[end..];
        }
    }
    out
}

/// A placeholder's sample value, for the flag it follows.
fn sample(flag: &str, word: &str) -> Option<String> {
    let value = match (flag, word) {
        (_, "...") => return None,
        ("--columns", "A,B") => "x,y",
        ("--columns", "A") => "x",
        ("--columns", "B") => "y",
        ("--activation", "A") => "relu",
        (_, "PATH") => "data.csv",
        (_, "NAME") => "moons",
        (_, "COLUMN") => "quality",
        (_, "F") => "0.3",
        (_, "S") => "1",
        (_, "X") => "0.001",
        (_, "N" | "D" | "K") => "2",
        (_, "B") => "32",
        (_, "DIR") => "out",
        (_, "SECONDS") => "30",
        (_, "NORM") => "20",
        (_, "DECAY") => "0.99",
        (_, other) => other,
    };
    Some(value.to_owned())
}

/// One option group as argument lists: `--flag a|b|c` gives one list per value, `--a|--b` and `--a X | --b Y` one
/// per alternative.
fn group_variants(group: &str) -> Vec<Vec<String>> {
    let mut variants = Vec::new();
    for alternative in group.split(" | ") {
        let words: Vec<&str> = alternative.split_whitespace().collect();
        match words.as_slice() {
            [flags] if flags.starts_with("--") => {
                variants.extend(flags.split('|').map(|f| vec![f.to_owned()]));
            }
            [flag, value] => {
                for v in value.split('|') {
                    if let Some(v) = sample(flag, v) {
                        variants.push(vec![(*flag).to_owned(), v]);
                    }
                }
            }
            [flag, values @ ..] if flag.starts_with("--") && values.len() > 1 => {
                let mut args = vec![(*flag).to_owned()];
                args.extend(values.iter().filter_map(|v| sample(flag, v)));
                variants.push(args);
            }
            other => panic!("cannot read the option group {other:?} in [{group}]"),
        }
    }
    variants
}

/// Every command a documented line stands for: its bare words (each lab where it says `bnn|vae|flow`) with each
/// group's variants added one at a time, and with no group.
fn commands(line: &str) -> Vec<Vec<String>> {
    let parts = parts(line);
    let mut bases: Vec<Vec<String>> = vec![Vec::new()];
    let mut groups = Vec::new();
    let mut last_flag = String::new();
    for part in &parts {
        match part {
            Part::Word(w) if w == "..." => {}
            Part::Word(w) if w.contains('|') && !w.starts_with("--") => {
                bases = bases
                    .iter()
                    .flat_map(|b| w.split('|').map(move |alt| [b.clone(), vec![alt.to_owned()]].concat()))
                    .collect();
            }
            Part::Word(w) => {
                let value = if w.starts_with("--") { w.clone() } else { sample(&last_flag, w).unwrap_or_default() };
                last_flag.clone_from(w);
                for b in &mut bases {
                    b.push(value.clone());
                }
            }
            Part::Group(g) => groups.push(g.clone()),
        }
    }
    let mut out = bases.clone();
    for base in &bases {
        for group in &groups {
            for variant in group_variants(group) {
                out.push([base.clone(), variant].concat());
            }
        }
    }
    out
}

#[test]
fn every_documented_command_line_parses() {
    let lines = documented_lines();
    assert!(lines.len() >= 10, "the README's command-line section was not found ({} lines)", lines.len());
    let mut checked = 0;
    for line in &lines {
        for args in commands(line) {
            assert_eq!(args.first().map(String::as_str), Some("bayes-explorer"), "{line}");
            if let Err(e) = Cli::try_parse_from(&args) {
                panic!("the README documents `{}` (from `{line}`), which the program refuses:\n{e}", args.join(" "));
            }
            checked += 1;
        }
    }
    assert!(checked > 60, "only {checked} command lines were checked");
}

#[test]
fn every_option_of_train_and_bench_is_documented() {
    let documented = documented_lines().join(" ");
    let command = Cli::command();
    for name in ["train", "bench"] {
        let sub = command.find_subcommand(name).expect("subcommand");
        let mut subs: Vec<&clap::Command> = vec![sub];
        subs.extend(sub.get_subcommands());
        for c in subs {
            for arg in c.get_arguments() {
                let Some(long) = arg.get_long() else { continue };
                if ["help", "version"].contains(&long) {
                    continue;
                }
                assert!(
                    documented.contains(&format!("--{long}")),
                    "`{name} {}` has --{long}, which the README's command lines do not mention",
                    c.get_name()
                );
            }
        }
    }
}

/// The reader of synopsis lines itself: a form the program refuses is caught.
#[test]
fn the_reader_expands_groups_and_catches_a_wrong_form() {
    let expanded = commands("bayes-explorer train bnn|flow [--epochs N] [--flow realnvp|maf]");
    assert!(expanded.contains(&vec![
        "bayes-explorer".into(),
        "train".into(),
        "flow".into(),
        "--flow".into(),
        "maf".into()
    ]));
    assert!(expanded.contains(&vec![
        "bayes-explorer".into(),
        "train".into(),
        "bnn".into(),
        "--epochs".into(),
        "2".into()
    ]));
    let wrong = commands("bayes-explorer train flow [--flow realnvp|spline]");
    assert!(wrong.iter().any(|args| Cli::try_parse_from(args).is_err()), "a wrong value went unnoticed");
}
