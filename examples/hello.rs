//! Hello, sandboxes: a Rust host runs a line of JavaScript and a C-built wasm
//! module, each in an interpreter of its own, and prints their output and the
//! `RunResult` of each run. A failing run of each shows that a guest failure
//! is a typed value in the result, not a crash of the host.
//!
//! Run: `make guest && cargo run --release --example hello`

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use subinterp::{ErrorKind, Host, Limits, Run, RunResult};

fn show(what: &str, r: &RunResult) {
    println!("{what}:");
    println!("  completed : {}", r.completed);
    match &r.error {
        Some(e) => println!("  error     : {e} (kind: {})", e.kind.name()),
        None => println!("  error     : none"),
    }
    println!("  exit code : {:?}", r.exit_code);
    println!("  stdout    : {:?}", r.stdout_text());
    println!("  stderr    : {:?}", r.stderr_text());
    println!("  wall time : {:.3} ms", r.wall.as_secs_f64() * 1e3);
    let s = &r.stats;
    println!(
        "  stats     : {} sent, {} received, {} B copied out, {} B copied in, {} forwarded",
        s.messages_sent,
        s.messages_received,
        s.bytes_copied_out,
        s.bytes_copied_in,
        s.buffers_forwarded
    );
}

fn main() -> Result<()> {
    let host = Host::new()?;
    let limits = Limits::new().with_timeout(Duration::from_secs(5));

    // JavaScript (QuickJS compiled to wasm): print a line and send it to the host.
    let js = host.create_js(limits)?;
    let (rx, tx) = host.create_channel(1);
    let r = js.run(
        Run::js("const s = `hello from JavaScript, 6 * 7 = ${6 * 7}`; console.log(s); channels.host.send(s)")
            .channel("host", tx),
    )?;
    show("a line of JavaScript", &r);
    let greeting = "hello from JavaScript, 6 * 7 = 42";
    ensure!(r.completed && r.stdout_text() == format!("{greeting}\n"));
    ensure!(&*rx.recv()?.into_view().context("expected bytes")? == greeting.as_bytes());
    ensure!(r.stats.messages_sent == 1 && r.stats.bytes_copied_out == greeting.len() as u64);

    // A WASI command written in C (guest/examples/hello.c, built by `make guest`).
    let wasm = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/guest/hello.wasm");
    let guest = host
        .load_file(&wasm)
        .with_context(|| format!("{} (run `make guest`)", wasm.display()))?;
    let c = host
        .interpreter(&guest)
        .limits(limits)
        .args(["hello", "from", "Rust"])
        .build()?;
    let r = c.run(Run::start())?;
    show("a C-built wasm module", &r);
    ensure!(r.completed && r.exit_code == Some(0));
    ensure!(r.stdout_text() == "hello from wasm, argc=3\narg 1: from\narg 2: Rust\n");

    // Failures come back typed: an uncaught JS exception, a non-zero exit.
    let r = js.run(Run::js("null.x"))?;
    show("JavaScript that throws", &r);
    let e = r.error.context("expected an error")?;
    ensure!(matches!(&e.kind, ErrorKind::Exception { name } if name == "TypeError"));

    let c = host
        .interpreter(&guest)
        .limits(limits)
        .args(["hello", "exit", "3"])
        .build()?;
    let r = c.run(Run::start())?;
    show("a C module that exits with 3", &r);
    ensure!(!r.completed && r.exit_code == Some(3) && r.stderr_text() == "exiting with 3\n");
    ensure!(r.error.is_some_and(|e| e.kind == ErrorKind::Exit(3)));
    Ok(())
}
