//! Hello, sandboxes: a Rust host runs a line of JavaScript and a C-built wasm
//! module, each in its own interpreter, and prints their output and what their
//! runs returned.
//!
//! Run: `make guest && cargo run --release --example hello`

use std::path::Path;

use anyhow::{Context, Result, ensure};
use subinterp::{Host, Limits, Run, RunResult};

fn show(what: &str, r: &RunResult) {
    println!("{what}:");
    println!("  completed : {}", r.completed);
    println!(
        "  error     : {:?}",
        r.error.as_ref().map(|e| e.to_string())
    );
    println!("  stdout    : {:?}", r.stdout_text());
    println!("  wall time : {:.3} ms", r.wall.as_secs_f64() * 1e3);
    println!("  stats     : {:?}", r.stats);
}

fn main() -> Result<()> {
    let host = Host::new()?;

    // JavaScript: QuickJS compiled to wasm, one interpreter of its own.
    let js = host.create_js(Limits::new())?;
    let r = js.run(Run::js(
        "console.log(`hello from JavaScript, 6 * 7 = ${6 * 7}`)",
    ))?;
    show("a line of JavaScript", &r);
    ensure!(r.completed && r.stdout_text() == "hello from JavaScript, 6 * 7 = 42\n");

    // A WASI command written in C (guest/examples/hello.c, built by `make guest`).
    let wasm = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/guest/hello.wasm");
    let guest = host
        .load_file(&wasm)
        .with_context(|| format!("{} (run `make guest`)", wasm.display()))?;
    let c = host
        .interpreter(&guest)
        .args(["hello", "from", "Rust"])
        .create()?;
    let r = c.run(Run::start())?;
    show("a C-built wasm module", &r);
    ensure!(r.completed && r.exit_code == Some(0));
    ensure!(r.stdout_text().starts_with("hello from wasm, argc=3\n"));

    // The same failure kinds from both: here, JS that throws.
    let r = js.run(Run::js("null.x"))?;
    show("JavaScript that throws", &r);
    ensure!(r.error.is_some_and(|e| e.kind.type_name() == "TypeError"));
    Ok(())
}
