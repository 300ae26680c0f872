//! Zero-copy pipeline: the host makes a 64 MiB buffer and sends it through
//! four JavaScript interpreters; each stage forwards the view it received to
//! the next without copying, and the last stage reads it once to check it.
//! The host's copy counters show that the only bytes copied are that final
//! read.
//!
//! Run: `make guest && cargo run --release --example zero_copy_pipeline`

use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use bytes::Bytes;
use subinterp::{Host, Limits, Run};

const SIZE: usize = 64 << 20;
const STAGES: usize = 4;

fn main() -> Result<()> {
    let host = Host::new()?;
    let data: Vec<u8> = (0..SIZE).map(|i| (i % 251) as u8).collect();
    let expected: u64 = data.iter().step_by(4096).map(|&b| u64::from(b)).sum();
    let data = Bytes::from(data);

    // host -> stage 1 -> stage 2 -> stage 3 -> stage 4 (reads) -> host (a small report)
    let (first_rx, first_tx) = host.create_channel(1);
    let (report_rx, report_tx) = host.create_channel(1);
    let mut input = first_rx;
    let mut jobs = Vec::new();
    let limits = Limits::new().timeout(Duration::from_secs(60));
    for stage in 1..=STAGES {
        let interp = host.create_js(limits.max_memory(256 << 20))?;
        let run = if stage < STAGES {
            let (rx, tx) = host.create_channel(1);
            let run = Run::js("channels.out.send(channels.inbox.recv())") // forward the view
                .channel("inbox", input)
                .channel("out", tx);
            input = rx;
            run
        } else {
            // The last stage copies the bytes in once and checks a sample of them.
            Run::js(
                "const b = channels.inbox.recv().bytes();
                 let sum = 0; for (let i = 0; i < b.length; i += 4096) sum += b[i];
                 channels.report.send(JSON.stringify({ length: b.length, sum }));",
            )
            .channel("inbox", input.clone())
            .channel("report", report_tx.clone())
        };
        jobs.push(interp.start(run));
    }

    let before = host.counters();
    let started = Instant::now();
    first_tx.send(data)?; // the host's bytes: no copy into the channel
    let report: serde_json::Value =
        serde_json::from_slice(&report_rx.recv()?.into_view().expect("a view"))?;
    let wall = started.elapsed();
    for job in jobs {
        let r = job.join()?;
        ensure!(r.completed, "a stage failed: {:?}", r.error);
    }
    let after = host.counters();
    let copied_in = after.bytes_copied_in - before.bytes_copied_in;
    let copied_out = after.bytes_copied_out - before.bytes_copied_out;
    let forwarded = after.buffers_forwarded - before.buffers_forwarded;

    println!(
        "zero-copy pipeline: 64 MiB through {STAGES} JavaScript interpreters in {:.1} ms",
        wall.as_secs_f64() * 1e3
    );
    println!(
        "  buffers forwarded : {forwarded} (stages 1-{}), no bytes copied",
        STAGES - 1
    );
    println!("  copied into wasm  : {copied_in} bytes (stage {STAGES} reads it once)");
    println!("  copied out        : {copied_out} bytes (the small report)");
    ensure!(
        report["length"] == SIZE && report["sum"] == expected,
        "bad data: {report}"
    );
    ensure!(forwarded == (STAGES - 1) as u64);
    ensure!(copied_in == SIZE as u64, "only the final read copies");
    ensure!(copied_out < 100, "only the report was copied out");
    Ok(())
}
