//! The broker's modules import in one direction: each top-level module of `broker/src` has a
//! place in [`LAYERS`], and a module's code may name (`crate::<module>`, `super::` from a
//! top-level file's children aside) only modules below it. A module that needs one above it is
//! a circle in the making: move the shared part down, or the caller up.
//!
//! Test code (a `#[cfg(test)]` module, a `tests.rs` or `*_tests.rs` file) may reach anywhere.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Top to bottom. Each line may import only the lines after it.
const LAYERS: &[&str] = &[
    "server",
    "http",
    "apis",
    "add_partitions_to_txn_manager",
    "transaction_coordinator",
    "group_coordinator",
    "coordinator_common",
    "network",
    "config",
    "alter_partition_manager",
    "replica_fetcher",
    "replica_manager",
    "producer_id_manager",
    "partition",
    "lifecycle",
    "log_read",
    "log_tasks",
    "controller_channel",
    "purgatory",
    "metrics",
    "inter_node_client",
    "lost_leaders",
    "errors",
    // lib.rs: `now_ms` and the module list.
    "lib",
];

fn source_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read broker/src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            source_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file of `src` belongs to (`replica_manager/delayed_fetch.rs` and
/// `replica_manager.rs` both to `replica_manager`).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("under src");
    let first = rel.components().next().expect("a component");
    let name = first.as_os_str().to_string_lossy();
    name.trim_end_matches(".rs").to_string()
}

fn is_test_file(file: &Path) -> bool {
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
    name.is_some_and(|n| n == "tests.rs" || n.ends_with("_tests.rs"))
}

/// The file's code outside comments and outside its `#[cfg(test)]` modules (which, by this
/// crate's style, come last).
fn code(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let t = line.trim_start();
        if t.starts_with("#[cfg(test)]") {
            let next = lines.peek().map(|l| l.trim_start()).unwrap_or_default();
            if next.starts_with("mod ") || next.starts_with("pub mod ") || next.starts_with("#[") {
                break;
            }
            continue;
        }
        if t.starts_with("//") {
            continue;
        }
        let line = match line.find("//") {
            Some(i) if !line[..i].contains('"') => &line[..i],
            _ => line,
        };
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The module-like name `s` starts with (empty if none).
fn leading_name(s: &str) -> String {
    s.chars()
        .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
        .collect()
}

/// Every `crate::<name>` the code names.
fn named_modules(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        let name = leading_name(rest);
        if !name.is_empty() {
            out.push(name);
        }
    }
    // `use crate::{a, b::c}` names several.
    let mut rest = code;
    while let Some(i) = rest.find("crate::{") {
        rest = &rest[i + "crate::{".len()..];
        let group = &rest[..rest.find('}').unwrap_or(rest.len())];
        for item in group.split(',') {
            let name = leading_name(item.trim());
            if !name.is_empty() {
                out.push(name);
            }
        }
    }
    out
}

#[test]
fn every_module_imports_only_modules_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let rank: BTreeMap<&str, usize> = LAYERS.iter().enumerate().map(|(i, m)| (*m, i)).collect();
    let lib_items = ["now_ms"];
    let mut files = Vec::new();
    source_files(&src, &mut files);
    files.sort();
    assert!(files.len() > 50, "found the sources: {}", files.len());
    let mut wrong = Vec::new();
    for file in &files {
        if is_test_file(file) {
            continue;
        }
        let module = module_of(&src, file);
        let Some(&own) = rank.get(module.as_str()) else {
            wrong.push(format!(
                "{}: module {module} has no place in LAYERS",
                file.display()
            ));
            continue;
        };
        let text = std::fs::read_to_string(file).expect("read a source file");
        for named in named_modules(&code(&text)) {
            let target = if lib_items.contains(&named.as_str()) {
                "lib"
            } else {
                named.as_str()
            };
            if target == module {
                continue;
            }
            match rank.get(target) {
                Some(&r) if r > own => {}
                Some(_) => wrong.push(format!(
                    "{}: {module} imports crate::{named}, which is not below it",
                    file.display()
                )),
                None => wrong.push(format!(
                    "{}: crate::{named} is neither a module in LAYERS nor a lib.rs item",
                    file.display()
                )),
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_check_sees_an_import_from_above_and_skips_comments_and_tests() {
    let text = "use crate::partition::Partition;\n// crate::server in a comment\nfn f() { crate::apis::x() } // crate::http\n#[cfg(test)]\nmod tests {\n    use crate::server;\n}\n";
    let named = named_modules(&code(text));
    assert_eq!(named, vec!["partition".to_string(), "apis".to_string()]);
    let grouped = named_modules("use crate::{metrics::NodeMetrics, now_ms};\n");
    assert_eq!(grouped, vec!["metrics".to_string(), "now_ms".to_string()]);
}
