//! A plugin host: every plugin in `examples/plugins` (JavaScript) and the C
//! plugin `target/guest/rot13.wasm` runs in its own sandbox, under limits,
//! and is called with each record (`Interpreter::call("transform", record)`).
//! Plugins may use one host function, `city` (a key-value lookup), and no
//! other. A plugin that throws, hangs or hoards memory is reported with its
//! typed error; the others are not disturbed.
//!
//! Run: `make guest && cargo run --release --example plugin_host`

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Result, ensure};
use bytes::Bytes;
use subinterp::{Error, Host, HostFnError, Limits, Run};

const RECORDS: &[&str] = &["Order 1234 from Ada", "Ship 56 crates to Grace"];

/// The plugins: every file in `examples/plugins`, and the C one.
fn plugins() -> Result<Vec<PathBuf>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut all = std::fs::read_dir(root.join("examples/plugins"))?
        .map(|e| Ok(e?.path()))
        .collect::<Result<Vec<_>>>()?;
    all.sort();
    all.push(root.join("target/guest/rot13.wasm"));
    Ok(all)
}

fn main() -> Result<()> {
    // --- the host -------------------------------------------------------------
    let cities = HashMap::from([("Ada", "London"), ("Grace", "Arlington")]);
    let host = Host::builder()
        .func("city", move |_, who| {
            match cities.get(who.text().unwrap_or("?")) {
                Some(city) => Ok(Bytes::from_static(city.as_bytes())),
                None => Err(HostFnError::new("no such person")),
            }
        })
        .build()?;
    let limits = Limits::new()
        .with_timeout(Duration::from_millis(500))
        .with_max_memory(32 << 20);
    let run = |path: &Path| -> Result<Vec<String>, Error> {
        let js = path.extension().is_some_and(|e| e == "js");
        let guest = if js {
            host.js()?
        } else {
            host.load_file(path)?
        };
        let plugin = host
            .interpreter(&guest)
            .limits(limits)
            .allow("city")
            .build()?;
        if js {
            plugin
                .run(Run::js(std::fs::read_to_string(path)?))?
                .check()?;
        }
        let call = |r: &&'static str| {
            plugin
                .call("transform", *r)
                .map(|b| String::from_utf8_lossy(&b).into())
        };
        RECORDS.iter().map(call).collect()
    };
    let mut report = HashMap::new();
    for path in plugins()? {
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let outcome = run(&path);
        match &outcome {
            Ok(results) => println!("  {name:<12} ok   {results:?}"),
            Err(e) => println!("  {name:<12} FAIL {e}"),
        }
        report.insert(name, outcome);
    }
    // --- what a plugin host must be sure of ----------------------------------
    let ok = |n: &str| report[n].as_ref().ok().cloned().unwrap_or_default();
    let kind = |n: &str| match &report[n] {
        Err(Error::Guest(e)) => e.kind.name().to_string(),
        other => format!("{other:?}"),
    };
    ensure!(ok("upper.js") == ["ORDER 1234 FROM ADA", "SHIP 56 CRATES TO GRACE"]);
    ensure!(
        ok("redact.js")
            == [
                "Order #### from Ada of London",
                "Ship ## crates to Grace of Arlington"
            ]
    );
    ensure!(ok("rot13.wasm") == ["Beqre 1234 sebz Nqn", "Fuvc 56 pengrf gb Tenpr"]);
    ensure!(kind("throws.js") == "exception" && kind("stuck.js") == "timeout");
    ensure!(kind("greedy.js") == "memory_limit", "{}", kind("greedy.js"));
    println!("plugin host: good plugins unaffected, misbehaving ones contained");
    Ok(())
}
