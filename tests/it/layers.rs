//! The layering rule of the crate, checked from the source: a module may use
//! only the modules below it (ARCHITECTURE.md draws the layers).

use std::collections::BTreeSet;
use std::path::Path;

/// The modules of the library, bottom first: each may use only those before it.
const LAYERS: &[&str] = &[
    // leaves: nothing of the crate, or only leaves before them
    "id",
    "language",
    "buffer",
    "limits",
    "budget",
    "job",
    "exec",
    "output",
    "channel",
    "handle",
    "hostfn",
    // errors and run outcomes
    "outcome",
    "error",
    "result",
    // compiling guests, and the compiled-code cache
    "compile",
    "cache",
    // what a wasmtime Store carries
    "store",
    // the guest ABI (channels, files, and interpreters through the store's Family)
    "abi",
    // compiled guests and the language snapshots
    "guest",
    "snapshot",
    // interpreters and their registry
    "interpreter",
    // the facade
    "host",
    // channels carried by NATS between processes (feature `nats`)
    "nats",
    // runs on workers behind a NATS server (feature `nats`)
    "remote",
];

/// The top-level module a source file belongs to.
fn module_of(path: &Path, src: &Path) -> String {
    let rel = path.strip_prefix(src).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

/// The crate modules a file refers to (`crate::name`), comments left out.
fn uses(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
        let mut rest = line;
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if name.is_empty() {
                // `crate::{a, b}` would hide its modules from this check.
                out.insert("{".to_string());
            } else {
                out.insert(name);
            }
        }
    }
    out
}

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn layered_modules_use_only_the_modules_below_them() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let mut seen = BTreeSet::new();
    let mut wrong = Vec::new();
    for path in &all {
        let module = module_of(path, &src);
        seen.insert(module.clone());
        let Some(rank) = LAYERS.iter().position(|m| *m == module) else {
            continue;
        };
        for used in uses(&std::fs::read_to_string(path).unwrap()) {
            let ok = LAYERS[..rank].contains(&used.as_str()) || used == module;
            if !ok {
                wrong.push(format!("{} uses crate::{used}", path.display()));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "upward or sideways uses:\n{}",
        wrong.join("\n")
    );
    // Every module has its place.
    for m in &seen {
        // `lib` is the crate root; `main` and `cli` are the command line.
        let known = LAYERS.contains(&m.as_str()) || ["lib", "main", "cli"].contains(&m.as_str());
        assert!(known, "src/{m} is not in LAYERS");
    }
}
