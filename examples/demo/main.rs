//! The demo `make demo` runs: a JavaScript pipeline in sandboxed interpreters.
//!
//! The host generates a text corpus and streams it, chunk by chunk, to a main
//! JS interpreter (`examples/demo/main.js`). That script creates worker
//! interpreters, forwards each chunk to them as a view (no copy), gathers
//! their word counts and merges them; one more worker is hostile (an infinite
//! loop) and is stopped by its deadline while the others carry on. The host
//! checks the counts against its own and prints a summary: interpreters,
//! messages, bytes forwarded versus copied, the contained failure, wall time.
//!
//! Run: `make demo` (or `make guest && cargo run --release --example demo`).

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use anyhow::{Result, bail, ensure};
use bytes::Bytes;
use subinterp::{Host, Limits, Run};

mod corpus;

const CHUNKS: usize = 400;
const WORDS_PER_CHUNK: usize = 5_000;
fn main() -> Result<()> {
    let started = Instant::now();
    let host = Host::new()?;
    let chunks = corpus::corpus(CHUNKS, WORDS_PER_CHUNK);
    let expected = corpus::count(&chunks);
    let corpus_bytes: usize = chunks.iter().map(String::len).sum();

    let (corpus_rx, corpus_tx) = host.create_channel(16);
    let (report_rx, report_tx) = host.create_channel(1);
    let main = host.create_js(Limits::new().with_timeout(Duration::from_secs(120)))?;
    let job = main.start(
        Run::js(include_str!("main.js"))
            .channel("corpus", corpus_rx)
            .channel("report", report_tx),
    );

    // Feed the corpus from the host (no copy: the script gets views of these
    // very bytes) while printing progress.
    let feeder = std::thread::spawn(move || -> Result<()> {
        for chunk in chunks {
            corpus_tx.send(Bytes::from(chunk))?;
        }
        corpus_tx.close();
        Ok(())
    });
    // A progress line each second while it runs (rewritten in place on a terminal).
    let tty = std::io::stderr().is_terminal();
    let mut last = Instant::now();
    let mut shown = false;
    while !job.is_finished() {
        std::thread::sleep(Duration::from_millis(50));
        if last.elapsed() >= Duration::from_secs(1) {
            let c = host.counters();
            let line = format!(
                "  running: {} interpreters, {} chunks forwarded, {:.1} MB read by workers",
                host.list_all().len(),
                c.buffers_forwarded,
                c.bytes_copied_in as f64 / 1e6
            );
            if tty {
                eprint!("\r\x1b[2K{line}");
                let _ = std::io::stderr().flush();
            } else {
                eprintln!("{line}");
            }
            shown = true;
            last = Instant::now();
        }
    }
    if tty && shown {
        eprint!("\r\x1b[2K");
    }
    feeder.join().expect("feeder thread")?;
    let result = job.join()?;
    if let Some(e) = &result.error {
        bail!(
            "the main script failed: {e}\n{}",
            e.backtrace.clone().unwrap_or_default()
        );
    }

    let report: serde_json::Value =
        serde_json::from_slice(&report_rx.recv()?.into_view().expect("a view"))?;
    let got: HashMap<String, u64> = report["counts"]
        .as_array()
        .expect("counts")
        .iter()
        .map(|p| (p[0].as_str().unwrap().to_string(), p[1].as_u64().unwrap()))
        .collect();
    ensure!(
        got == expected,
        "word counts differ from the host's own count"
    );
    let rogue = &report["rogue"];
    ensure!(
        rogue["kind"] == "timeout",
        "the hostile worker was not stopped: {rogue}"
    );

    let c = host.counters();
    let mut top: Vec<_> = got.iter().collect();
    top.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    println!("subinterp demo: a JavaScript word count in sandboxed interpreters");
    println!(
        "  interpreters     : 1 main + {} workers + 1 hostile, all created by the main script",
        report["workers"]
    );
    println!(
        "  messages         : {} corpus chunks ({:.1} MB) from the host, forwarded to workers; \
         counts checked against the host's own",
        report["chunks"],
        corpus_bytes as f64 / 1e6
    );
    println!(
        "  forwarded        : {} buffers as views, zero bytes copied",
        c.buffers_forwarded
    );
    println!(
        "  copied into wasm : {:.1} MB (each worker reads its chunks once)",
        c.bytes_copied_in as f64 / 1e6
    );
    println!(
        "  copied out       : {:.1} kB (the workers' count tables)",
        c.bytes_copied_out as f64 / 1e3
    );
    println!(
        "  contained        : {}: {}",
        rogue["type"].as_str().unwrap_or("?"),
        rogue["message"].as_str().unwrap_or("?")
    );
    println!(
        "  top words        : {}",
        top.iter()
            .take(5)
            .map(|(w, n)| format!("{w} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "  wall time        : {:.2} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
