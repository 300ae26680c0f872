//! A plugin host: loads every plugin in a folder — JavaScript files and
//! C-built `.wasm` modules alike — and runs each in its own sandbox, under
//! limits, through one small interface over channels: text records arrive on
//! `records`, one result per record goes out on `results`, and the plugin
//! ends when `records` is closed. A plugin that misbehaves (here one hangs and
//! one hoards memory) is reported with its typed error; the others are not
//! disturbed.
//!
//! Run: `make guest && cargo run --release --example plugin_host [FOLDER...]`
//! (default folders: `examples/plugins` and `target/guest`, where `make guest`
//! puts the C plugin `rot13.wasm`; a `.wasm` without a `transform` export is
//! not a plugin and is skipped).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Result, ensure};
use bytes::Bytes;
use subinterp::{Host, Limits, Run, RunResult};

const RECORDS: &[&str] = &[
    "Order 1234 from Ada",
    "Ship 56 crates to Grace",
    "Invoice 789 paid",
];

/// What each plugin's limits are: plugins are written by others.
fn limits() -> Limits {
    Limits::new()
        .with_timeout(Duration::from_millis(500))
        .with_max_memory(32 << 20)
        .with_max_output(64 << 10)
}

struct Report {
    name: String,
    results: Vec<String>,
    run: RunResult,
}

/// Runs one plugin over the records.
fn run_plugin(host: &Host, path: &Path) -> Result<Option<Report>> {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let (interp, run) = match path.extension().and_then(|e| e.to_str()) {
        Some("js") => (
            host.create_js(limits())?,
            Run::js(std::fs::read_to_string(path)?),
        ),
        // The language runtimes themselves.
        Some("wasm") if name == "js.wasm" || name == "python.wasm" => return Ok(None),
        Some("wasm") => {
            let guest = match host.load_file(path) {
                Ok(g) => g,
                // Past the host's compile limits: refused, the others go on.
                Err(subinterp::Error::Limit(l)) => {
                    println!("  {name:<12} refused: {l}");
                    return Ok(None);
                }
                Err(e) => return Err(e.into()),
            };
            if !guest.exports().iter().any(|e| e == "transform") {
                println!("  {name:<12} skipped: not a plugin (no `transform` export)");
                return Ok(None);
            }
            let interp = host.interpreter(&guest).limits(limits()).build()?;
            (interp, Run::export("transform"))
        }
        _ => return Ok(None),
    };
    let (records_rx, records_tx) = host.create_channel(RECORDS.len());
    let (results_rx, results_tx) = host.create_channel(RECORDS.len());
    for r in RECORDS {
        records_tx.send(Bytes::from_static(r.as_bytes()))?;
    }
    records_tx.close();
    let run = interp.run(
        run.channel("records", records_rx)
            .channel("results", results_tx),
    )?;
    interp.close(); // lets go of its channel ends
    let mut results = Vec::new();
    while let Ok(m) = results_rx.recv_nowait() {
        let view = m.into_view().expect("plugins send bytes");
        results.push(String::from_utf8_lossy(&view).into_owned());
    }
    Ok(Some(Report { name, results, run }))
}

fn rot13(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'a'..='z' => (((c as u8 - b'a' + 13) % 26) + b'a') as char,
            'A'..='Z' => (((c as u8 - b'A' + 13) % 26) + b'A') as char,
            _ => c,
        })
        .collect()
}

fn main() -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut folders: Vec<PathBuf> = std::env::args().skip(1).map(PathBuf::from).collect();
    if folders.is_empty() {
        folders = vec![root.join("examples/plugins"), root.join("target/guest")];
    }
    let host = Host::new()?;
    let mut reports = Vec::new();
    println!(
        "plugin host: {} records through every plugin in {folders:?}",
        RECORDS.len()
    );
    for folder in &folders {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(folder)?
            .filter_map(|e| Some(e.ok()?.path()))
            .collect();
        paths.sort();
        for path in paths {
            if let Some(r) = run_plugin(&host, &path)? {
                reports.push(r);
            }
        }
    }
    for r in &reports {
        match &r.run.error {
            None => println!("  {:<12} ok   {:?}", r.name, r.results),
            Some(e) => println!(
                "  {:<12} FAIL {} ({}); {} of {} records done",
                r.name,
                e.kind.type_name(),
                e.message,
                r.results.len(),
                RECORDS.len()
            ),
        }
    }

    // What a plugin host must be sure of: the good plugins did their work, the
    // bad ones were stopped with the right error, and nothing else noticed.
    let find = |n: &str| reports.iter().find(|r| r.name == n);
    let upper = find("upper.js").expect("upper.js ran");
    ensure!(upper.results == RECORDS.iter().map(|r| r.to_uppercase()).collect::<Vec<_>>());
    let redact = find("redact.js").expect("redact.js ran");
    ensure!(redact.run.completed && redact.results[0].contains("Order #### from Ada"));
    if let Some(c) = find("rot13.wasm") {
        ensure!(c.results == RECORDS.iter().map(|r| rot13(r)).collect::<Vec<_>>());
    }
    let stuck = find("stuck.js").expect("stuck.js ran");
    ensure!(
        stuck
            .run
            .error
            .as_ref()
            .is_some_and(|e| e.kind.name() == "timeout")
    );
    ensure!(stuck.results.len() == 1, "its first result still arrived");
    let greedy = find("greedy.js").expect("greedy.js ran");
    ensure!(
        greedy
            .run
            .error
            .as_ref()
            .is_some_and(|e| e.kind.name() == "memory_limit")
    );
    println!("plugin host: good plugins unaffected, misbehaving ones contained");
    Ok(())
}
