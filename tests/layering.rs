//! The layering of `src/`, checked: every `crate::` path in every source file (in `use` items, `pub use`
//! re-exports and paths written inline) must point to the same top-level module or to a lower layer, as the
//! table in ARCHITECTURE.md's "Layers" block says; the CPU and GPU kernels never use each other; no folder's
//! files import one another in a circle; and ARCHITECTURE.md names every source file. So the picture in
//! ARCHITECTURE.md cannot drift from the code.
//!
//! Comments, strings and character literals are blanked before paths are read, so a doc link or a message
//! never counts as an edge; `super::` paths count like the `crate::` paths they stand for.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module's path from the crate root: `["compute", "cpu", "dense"]` for `src/compute/cpu/dense.rs`, `[]` for
/// `src/lib.rs`.
type ModPath = Vec<String>;

/// One `crate::` path found in a file: the line it starts on and the module it names.
#[derive(Debug)]
struct Edge {
    line: usize,
    target: ModPath,
    written: String,
}

/// `src/**/*.rs` of the library (not `main.rs`, whose `crate` is the binary), with each file's module path.
fn source_files(src: &Path) -> Vec<(PathBuf, ModPath)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<PathBuf> =
            std::fs::read_dir(dir).expect("src/ is readable").map(|e| e.expect("a folder entry").path()).collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(src, &mut files);
    files
        .into_iter()
        .filter(|p| p.strip_prefix(src).is_ok_and(|r| r != Path::new("main.rs")))
        .map(|p| {
            let rel = p.strip_prefix(src).expect("under src").with_extension("");
            let mut parts: ModPath = rel.iter().map(|c| c.to_string_lossy().into_owned()).collect();
            if parts.last().is_some_and(|l| l == "mod" || l == "lib") {
                parts.pop();
            }
            (p, parts)
        })
        .collect()
}

/// The text with comments, string literals (plain, byte and raw) and character literals replaced by spaces,
/// line breaks kept, so line numbers still hold.
fn blank_comments_and_strings(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
        } else if c == 'r'
            && matches!(next, Some('#' | '"'))
            && !chars.get(i.wrapping_sub(1)).is_some_and(|p| p.is_alphanumeric() || *p == '_')
        {
            // A raw string: r"…", r#"…"#, with as many hashes closing as opening.
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            let closing: String = std::iter::once('"').chain(std::iter::repeat_n('#', hashes)).collect();
            let body_start = j + 1;
            let rest: String = chars[body_start..].iter().collect();
            let body_len = rest.find(&closing).map_or(rest.chars().count(), |b| rest[..b].chars().count());
            let end = (body_start + body_len + closing.chars().count()).min(chars.len());
            for &k in &chars[i..end] {
                out.push(blank(k));
            }
            i = end;
        } else if c == '"' {
            out.push(' ');
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                let skip = if chars[i] == '\\' { 2 } else { 1 };
                for &k in &chars[i..(i + skip).min(chars.len())] {
                    out.push(blank(k));
                }
                i += skip;
            }
            out.push(' ');
            i += 1;
        } else if c == '\'' {
            // A character literal ('x', '\n', '\u{1F600}'), not a lifetime ('a).
            let close = if next == Some('\\') {
                chars[i + 1..].iter().position(|&k| k == '\'').map(|p| i + 1 + p)
            } else if chars.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            if let Some(end) = close {
                for &k in &chars[i..=end] {
                    out.push(blank(k));
                }
                i = end + 1;
            } else {
                out.push(c);
                i += 1;
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// Expands a use tree (`a::{b, c::{d, e as f}}`, `self`, globs) into its paths, each relative to the tree's root.
fn expand_use_tree(tree: &str) -> Vec<Vec<String>> {
    let tree = tree.trim();
    if let Some(open) = tree.find('{') {
        let prefix: Vec<String> =
            tree[..open].split("::").map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
        let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
        let mut items = Vec::new();
        let (mut depth, mut start) = (0, 0);
        for (k, ch) in inner.char_indices() {
            match ch {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    items.push(&inner[start..k]);
                    start = k + 1;
                }
                _ => {}
            }
        }
        items.push(&inner[start..]);
        items
            .into_iter()
            .filter(|i| !i.trim().is_empty())
            .flat_map(expand_use_tree)
            .map(|rest| prefix.iter().cloned().chain(rest).collect())
            .collect()
    } else {
        let path = tree.split(" as ").next().unwrap_or(tree);
        vec![
            path.split("::")
                .map(str::trim)
                .filter(|s| !s.is_empty() && *s != "self" && *s != "*")
                .map(str::to_owned)
                .collect(),
        ]
    }
}

/// The longest prefix of `path` that is a module of `modules`.
fn module_of(path: &[String], modules: &BTreeSet<ModPath>) -> ModPath {
    (0..=path.len()).rev().map(|n| path[..n].to_vec()).find(|p| modules.contains(p)).unwrap_or_default()
}

/// Every `crate::` (and `super::`) path in a file's text, resolved to the module it names.
fn edges_of(text: &str, own: &ModPath, modules: &BTreeSet<ModPath>) -> Vec<Edge> {
    let code = blank_comments_and_strings(text);
    let line_of = |offset: usize| code[..offset].matches('\n').count() + 1;
    // `super` of `a/b.rs` is `a`, and of a folder's `a/mod.rs` it is `a`'s parent: the module path less its last
    // part either way. (Inside an inline `mod tests`, `super` is the file's own module; those paths then resolve
    // one level up, which no rule here can mistake for another folder's file.)
    let parent: ModPath = own[..own.len().saturating_sub(1)].to_vec();
    let mut edges = Vec::new();
    let mut push = |offset: usize, absolute: Vec<String>, written: String| {
        let target = module_of(&absolute, modules);
        edges.push(Edge { line: line_of(offset), target, written });
    };
    // `use` items, grouped trees included.
    let mut rest = 0;
    while let Some(found) = code[rest..].find("use ") {
        let at = rest + found;
        rest = at + 4;
        if at > 0 && code[..at].chars().next_back().is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let Some(end) = code[at..].find(';') else { break };
        let tree = code[at + 4..at + end].trim();
        let (root, tail): (ModPath, &str) = if let Some(t) = tree.strip_prefix("crate::") {
            (Vec::new(), t)
        } else if let Some(t) = tree.strip_prefix("super::") {
            (parent.clone(), t)
        } else {
            continue;
        };
        for path in expand_use_tree(tail) {
            push(
                at,
                root.iter().cloned().chain(path).collect(),
                format!("use {}", tree.split_whitespace().collect::<Vec<_>>().join(" ")),
            );
        }
    }
    // Paths written inline: `crate::a::b::c` and `super::x::y` outside `use` items.
    for (prefix, root) in [("crate::", Vec::new()), ("super::", parent.clone())] {
        let mut from = 0;
        while let Some(found) = code[from..].find(prefix) {
            let at = from + found;
            from = at + prefix.len();
            if at > 0 && code[..at].chars().next_back().is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let path: Vec<String> = code[at + prefix.len()..]
                .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .next()
                .unwrap_or("")
                .split("::")
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            if path.is_empty() {
                continue; // `crate::{…}` is a use tree, read above
            }
            let written = format!("{prefix}{}", path.join("::"));
            push(at, root.iter().cloned().chain(path).collect(), written);
        }
    }
    edges
}

/// ARCHITECTURE.md's layers: the lines of its fenced `layers` block, `N  module module …`, lowest first.
fn documented_layers(architecture: &str) -> BTreeMap<String, usize> {
    let block = architecture
        .split("```layers")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("ARCHITECTURE.md has a ```layers block");
    let mut layers = BTreeMap::new();
    for line in block.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let mut words = line.split_whitespace();
        let level: usize = words.next().and_then(|w| w.parse().ok()).expect("each layers line starts with its number");
        for module in words {
            layers.insert(module.trim_end_matches(".rs").to_owned(), level);
        }
    }
    layers
}

/// What breaks the layering: `file:line: message` for each `crate::` edge that points to a higher layer or
/// sideways to another module of the same layer, or between `compute::cpu` and `compute::gpu`.
fn layering_violations(
    files: &[(String, ModPath, String)],
    layers: &BTreeMap<String, usize>,
    modules: &BTreeSet<ModPath>,
) -> Vec<String> {
    let mut problems = Vec::new();
    for (name, own, text) in files {
        let Some(top) = own.first() else { continue }; // lib.rs declares the modules
        let Some(&level) = layers.get(top) else {
            problems.push(format!("{name}: module `{top}` is in no layer of ARCHITECTURE.md"));
            continue;
        };
        for edge in edges_of(text, own, modules) {
            let Some(target_top) = edge.target.first() else { continue }; // the crate root (`Lab`) is everyone's
            if target_top == top {
                let side = |m: &ModPath| m.get(1).filter(|_| m.first().is_some_and(|t| t == "compute")).cloned();
                if let (Some(a), Some(b)) = (side(own), side(&edge.target))
                    && a != b
                    && ["cpu", "gpu"].contains(&a.as_str())
                    && ["cpu", "gpu"].contains(&b.as_str())
                {
                    problems.push(format!(
                        "{name}:{}: `{}` — compute::{a} must not use compute::{b}",
                        edge.line, edge.written
                    ));
                }
                continue;
            }
            match layers.get(target_top) {
                Some(&target_level) if target_level < level => {}
                Some(&target_level) => problems.push(format!(
                    "{name}:{}: `{}` — {top} (layer {level}) may not use {target_top} (layer {target_level}); \
                     ARCHITECTURE.md's layers let a module use only lower layers",
                    edge.line, edge.written
                )),
                None => problems.push(format!(
                    "{name}:{}: `{}` names `{target_top}`, which is in no layer",
                    edge.line, edge.written
                )),
            }
        }
    }
    problems
}

/// The circles among the files of each folder (the folder's own `mod.rs` aside: a folder's root may name
/// its parts): each as the list of its modules.
fn folder_cycles(files: &[(String, ModPath, String)], modules: &BTreeSet<ModPath>) -> Vec<Vec<String>> {
    let mut graph: BTreeMap<ModPath, BTreeSet<ModPath>> = BTreeMap::new();
    for (name, own, text) in files {
        if own.is_empty() || name.ends_with("mod.rs") {
            continue;
        }
        let folder = &own[..own.len() - 1];
        let targets = graph.entry(own.clone()).or_default();
        for edge in edges_of(text, own, modules) {
            let t = &edge.target;
            if t != own && t.len() == own.len() && t[..t.len() - 1] == *folder {
                targets.insert(t.clone());
            }
        }
    }
    let mut state = State {
        graph: &graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !state.index.contains_key(v) {
            visit(&mut state, v);
        }
    }
    state.found
}

/// Tarjan's strongly connected components, over the files of a folder.
struct State<'g> {
    graph: &'g BTreeMap<ModPath, BTreeSet<ModPath>>,
    index: BTreeMap<ModPath, usize>,
    low: BTreeMap<ModPath, usize>,
    stack: Vec<ModPath>,
    on_stack: BTreeSet<ModPath>,
    next: usize,
    found: Vec<Vec<String>>,
}
/// Visits `v` and what it imports, collecting the circles it closes.
fn visit(s: &mut State<'_>, v: &ModPath) {
    s.index.insert(v.clone(), s.next);
    s.low.insert(v.clone(), s.next);
    s.next += 1;
    s.stack.push(v.clone());
    s.on_stack.insert(v.clone());
    for w in s.graph.get(v).into_iter().flatten() {
        if !s.index.contains_key(w) {
            visit(s, w);
            let low = s.low[v].min(s.low[w]);
            s.low.insert(v.clone(), low);
        } else if s.on_stack.contains(w) {
            let low = s.low[v].min(s.index[w]);
            s.low.insert(v.clone(), low);
        }
    }
    if s.low[v] == s.index[v] {
        let mut component = Vec::new();
        while let Some(w) = s.stack.pop() {
            s.on_stack.remove(&w);
            let done = w == *v;
            component.push(w.join("/"));
            if done {
                break;
            }
        }
        if component.len() > 1 {
            component.sort();
            s.found.push(component);
        }
    }
}

fn read_crate() -> (Vec<(String, ModPath, String)>, BTreeSet<ModPath>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let src = root.join("src");
    let files: Vec<(String, ModPath, String)> = source_files(&src)
        .into_iter()
        .map(|(path, module)| {
            let name = path.strip_prefix(root).expect("under the crate").to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).expect("a readable source file");
            (name, module, text)
        })
        .collect();
    let modules = files.iter().map(|(_, m, _)| m.clone()).collect();
    (files, modules)
}

fn architecture_md() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("ARCHITECTURE.md")).expect("ARCHITECTURE.md")
}

#[test]
fn layering_every_crate_path_points_to_its_own_module_or_a_lower_layer() {
    let (files, modules) = read_crate();
    let layers = documented_layers(&architecture_md());
    let tops: BTreeSet<&String> = files.iter().filter_map(|(_, m, _)| m.first()).collect();
    for top in &tops {
        assert!(layers.contains_key(*top), "src/{top} is in no layer of ARCHITECTURE.md's ```layers block");
    }
    let edges: usize = files.iter().map(|(_, m, t)| edges_of(t, m, &modules).len()).sum();
    assert!(edges > 200, "only {edges} crate:: paths read: the reader is broken");
    let problems = layering_violations(&files, &layers, &modules);
    assert!(problems.is_empty(), "{} edges break the layering:\n{}", problems.len(), problems.join("\n"));
}

#[test]
fn layering_no_folder_has_files_that_import_each_other_in_a_circle() {
    let (files, modules) = read_crate();
    let cycles = folder_cycles(&files, &modules);
    assert!(cycles.is_empty(), "files that import each other in a circle: {cycles:?}");
}

#[test]
fn layering_architecture_md_names_every_source_file() {
    let (files, _) = read_crate();
    let architecture = architecture_md();
    let missing: Vec<&str> = files
        .iter()
        .map(|(name, _, _)| name.strip_prefix("src/").unwrap_or(name))
        .filter(|rel| !architecture.contains(&format!("`{rel}`")) && !architecture.contains(&format!("`src/{rel}`")))
        .collect();
    assert!(missing.is_empty(), "ARCHITECTURE.md has no row for: {missing:?}");
}

/// The checker itself: on a made-up crate it finds an edge up the layers (in a grouped `use`, a `super::` path
/// and an inline path), ignores the same words in comments and strings, and finds a circle between two files.
#[test]
fn layering_checker_finds_upward_edges_and_circles_and_ignores_comments_and_strings() {
    let module = |p: &str| -> ModPath { p.split('/').filter(|s| !s.is_empty()).map(str::to_owned).collect() };
    let modules: BTreeSet<ModPath> =
        ["", "data", "data/table", "data/csv", "models", "models/bnn", "train"].into_iter().map(module).collect();
    let layers: BTreeMap<String, usize> =
        [("data".to_owned(), 0), ("models".to_owned(), 1), ("train".to_owned(), 2)].into();
    let file = |name: &str, m: &str, text: &str| (name.to_owned(), module(m), text.to_owned());
    let files = vec![
        file(
            "src/data/table.rs",
            "data/table",
            "use crate::{Lab, data::csv::Reader};\n// use crate::train::X;\nfn f() { let _ = \"crate::models::bnn\"; }\n",
        ),
        file(
            "src/data/csv.rs",
            "data/csv",
            "use super::table::Table;\nfn g() -> crate::models::bnn::Bnn { todo!() }\n",
        ),
        file("src/models/bnn.rs", "models/bnn", "use crate::data::{table::Table, csv::{Reader, Options as O}};\n"),
    ];
    let problems = layering_violations(&files, &layers, &modules);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with("src/data/csv.rs:2:") && problems[0].contains("layer 0) may not use models"),
        "{problems:?}"
    );
    assert_eq!(folder_cycles(&files, &modules), vec![vec!["data/csv".to_owned(), "data/table".to_owned()]]);
    let expanded = expand_use_tree("data::{table::Table, csv::{Reader, Options as O}, self}");
    assert_eq!(
        expanded,
        vec![module("data/table/Table"), module("data/csv/Reader"), module("data/csv/Options"), module("data")]
    );
}
