//! The runtime crate's layout (ARCHITECTURE.md): no two of its modules
//! import each other, whether two files or two top-level folders
//! (`engine`, `guards`, `policy`, `http`, `stream`, ...). A module is a file
//! (`engine/state.rs` is `engine::state`, `guards/limiter/mod.rs` is
//! `guards::limiter`); it imports another when it names a path into it
//! through `crate::`, outside comments. A module and the modules inside it
//! do not count.
#![deny(warnings, clippy::all)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("the runtime crate's src") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `engine/state.rs` → `engine::state`; `guards/limiter/mod.rs` →
/// `guards::limiter`; `lib.rs` → the empty path.
fn module_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts.join("::")
}

/// The text without `//` comments (doc comments included).
fn code(text: &str) -> String {
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `crate::a::b::c` path in `code`, as its segments.
fn crate_paths(code: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        // Not the end of a longer identifier (`__crate::`, `my_crate::`).
        let before = rest[..at].chars().last();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let mut segments = Vec::new();
        let mut tail = rest;
        loop {
            let len = tail
                .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
                .unwrap_or(tail.len());
            if len == 0 {
                break;
            }
            segments.push(tail[..len].to_owned());
            tail = &tail[len..];
            match tail.strip_prefix("::") {
                Some(next) => tail = next,
                None => break,
            }
        }
        paths.push(segments);
    }
    paths
}

fn nested(a: &str, b: &str) -> bool {
    a.is_empty()
        || b.is_empty()
        || a == b
        || a.starts_with(&format!("{b}::"))
        || b.starts_with(&format!("{a}::"))
}

fn top(module: &str) -> &str {
    module.split("::").next().unwrap_or(module)
}

#[test]
fn no_two_modules_import_each_other() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../llm-resilience/src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(&src, f)).collect();
    assert!(
        modules.contains("engine::state") && modules.contains("policy::classify"),
        "the layout this test knows: {modules:?}"
    );
    let mut imports: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let from = module_of(&src, file);
        let text = fs::read_to_string(file).unwrap();
        for path in crate_paths(&code(&text)) {
            // The longest prefix of the path that is a module.
            let target = (1..=path.len())
                .rev()
                .map(|n| path[..n].join("::"))
                .find(|m| modules.contains(m));
            if let Some(to) = target {
                if !nested(&from, &to) {
                    imports.entry(from.clone()).or_default().insert(to);
                }
            }
        }
    }
    let mut folders: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (from, tos) in &imports {
        for to in tos {
            if top(from) != top(to) {
                folders.entry(top(from)).or_default().insert(top(to));
            }
        }
    }
    let mut mutual = Vec::new();
    for (from, tos) in &imports {
        for to in tos {
            if from < to && imports.get(to).is_some_and(|back| back.contains(from)) {
                mutual.push(format!("{from} <-> {to}"));
            }
        }
    }
    for (from, tos) in &folders {
        for to in tos {
            if from < to && folders.get(to).is_some_and(|back| back.contains(from)) {
                mutual.push(format!("{from}/ <-> {to}/"));
            }
        }
    }
    assert!(
        mutual.is_empty(),
        "modules that import each other (move what one needs of the other \
         into it, or both into a third): {mutual:?}"
    );
    // The check sees imports at all.
    assert!(imports["engine::driver"].contains("engine::state"));
}
