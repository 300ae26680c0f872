//! A plugin host: the JavaScript plugins in `examples/plugins` and the C
//! plugin `target/guest/rot13.wasm` each run in their own sandbox, under
//! limits, and are called with each record (`Interpreter::call("transform",
//! record)`). Plugins may use one host function, `city` (a key-value
//! lookup), and no other. A plugin that throws, hangs or hoards memory is
//! reported with its typed error; the others are not disturbed.
//!
//! Run: `make guest && cargo run --release --example plugin_host`

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Result, ensure};
use bytes::Bytes;
use subinterp::{Error, Host, HostFnError, Limits};

const RECORDS: &[&str] = &["Order 1234 from Ada", "Ship 56 crates to Grace"];

/// Each plugin, and what the host must see of it: its results, or the kind
/// of error that stopped it.
const PLUGINS: &[(&str, &str)] = &[
    (
        "examples/plugins/upper.js",
        "ORDER 1234 FROM ADA | SHIP 56 CRATES TO GRACE",
    ),
    (
        "examples/plugins/redact.js",
        "Order #### from Ada of London | Ship ## crates to Grace of Arlington",
    ),
    (
        "target/guest/rot13.wasm",
        "Beqre 1234 sebz Nqn | Fuvc 56 pengrf gb Tenpr",
    ),
    ("examples/plugins/throws.js", "exception"),
    ("examples/plugins/stuck.js", "timeout"),
    ("examples/plugins/greedy.js", "memory_limit"),
];

fn main() -> Result<()> {
    let cities = HashMap::from([("Ada", "London"), ("Grace", "Arlington")]);
    let host = Host::builder()
        .func("city", move |_, who| {
            let city = cities.get(who.text().unwrap_or("?"));
            city.map(|c| Bytes::from_static(c.as_bytes()))
                .ok_or_else(|| HostFnError::new("no such person"))
        })
        .build()?;
    let limits = Limits::new()
        .with_timeout(Duration::from_millis(500))
        .with_max_memory(32 << 20);
    let run = |path: &Path| -> Result<Vec<String>, Error> {
        let plugin = host
            .interpreter_from_file(path)?
            .limits(limits)
            .allow("city")
            .build()?;
        let text = |b: Bytes| String::from_utf8_lossy(&b).into_owned();
        RECORDS
            .iter()
            .map(|r| plugin.call("transform", *r).map(text))
            .collect()
    };
    for (file, expected) in PLUGINS {
        let outcome = match run(&Path::new(env!("CARGO_MANIFEST_DIR")).join(file)) {
            Ok(results) => results.join(" | "),
            Err(Error::Guest(e)) => e.kind.name().to_string(),
            Err(e) => return Err(e.into()),
        };
        println!("  {file:<28} {outcome}");
        ensure!(outcome == *expected, "{file}: expected {expected}");
    }
    println!("plugin host: good plugins unaffected, misbehaving ones contained");
    Ok(())
}
