//! The direction of dependencies (ARCHITECTURE.md, "Code map"), checked on
//! the source: sources produce desired pods, the engine decides, the runtime
//! acts, reporters read snapshots, the CLI reads what the agent published.
//! A `use crate::x` that goes the wrong way fails here, naming the file.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// What a module may import of the crate.
enum Rule {
    /// Only these modules (its own always).
    Only(&'static [&'static str]),
    /// Anything but these.
    Never(&'static [&'static str]),
}

const RULES: &[(&str, Rule)] = &[
    ("published.rs", Rule::Only(&[])),
    ("pod", Rule::Only(&["json", "yaml"])),
    ("engine", Rule::Only(&["pod", "time"])),
    (
        "apiserver",
        Rule::Never(&["agent", "cli", "engine", "node", "runtime", "source"]),
    ),
    (
        "source",
        Rule::Never(&["agent", "cli", "engine", "node", "runtime"]),
    ),
    ("node", Rule::Never(&["agent", "cli", "runtime"])),
    (
        "registry",
        Rule::Never(&[
            "agent", "cli", "engine", "image", "node", "runtime", "source",
        ]),
    ),
    (
        "image",
        Rule::Never(&["agent", "cli", "engine", "node", "runtime", "source"]),
    ),
    ("cli", Rule::Never(&["agent", "engine", "node", "source"])),
];

/// Every `.rs` file at `path` (a file, or a directory walked whole).
fn rust_files(path: &Path) -> Vec<PathBuf> {
    if path.is_file() {
        return vec![path.to_path_buf()];
    }
    let mut files = Vec::new();
    for entry in fs::read_dir(path).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// The crate modules a file names as `crate::<module>`, comments aside.
fn crate_modules(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        for (i, _) in code.match_indices("crate::") {
            let name: String = code[i + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            found.insert(name);
        }
    }
    found
}

fn module_name(entry: &str) -> &str {
    entry.trim_end_matches(".rs")
}

#[test]
fn imports_go_one_way() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut wrong = Vec::new();
    for (entry, rule) in RULES {
        let own = module_name(entry);
        let files = rust_files(&src.join(entry));
        assert!(!files.is_empty(), "src/{entry}: no files");
        for file in files {
            let text = fs::read_to_string(&file).unwrap();
            for module in crate_modules(&text) {
                let allowed = module == own
                    || match rule {
                        Rule::Only(only) => only.contains(&module.as_str()),
                        Rule::Never(never) => !never.contains(&module.as_str()),
                    };
                if !allowed {
                    wrong.push(format!("{}: crate::{module}", file.display()));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the layering:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_check_sees_imports_and_skips_comments() {
    let found = crate_modules("use crate::engine::Snapshot;\n// crate::agent in a comment\nlet x = crate::time::Time::now();");
    assert_eq!(
        found,
        BTreeSet::from(["engine".to_string(), "time".to_string()])
    );
}
