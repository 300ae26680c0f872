//! Zero-copy pipeline: the host makes a 64 MiB buffer and sends it through
//! four JavaScript interpreters. Each stage forwards the view it received
//! without copying; the last one also reads it once (`v.bytes()`, the only
//! copy) to check it, then sends the view back to the host, which gets its
//! own memory back. The host's copy counters show exactly that: 4 buffers
//! forwarded, 64 MiB copied in, nothing copied out.
//!
//! Run: `make guest && cargo run --release --example zero_copy_pipeline`

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use bytes::Bytes;
use subinterp::{Host, Limits, Run};

const SIZE: usize = 64 << 20;
const STAGES: usize = 4;

/// Stages 1 to 3: pass the view on, untouched.
const FORWARD: &str = "channels.out.send(channels.inbox.recv())";

/// Stage 4: read the bytes once, check a sample of them, pass the view on.
const READ_AND_FORWARD: &str = "
  const v = channels.inbox.recv();
  const b = v.bytes(); // the one copy: host memory -> this interpreter's memory
  for (let i = 0; i < b.length; i += 4093) {
    if (b[i] !== i % 251) throw new Error(`byte ${i} is ${b[i]}, not ${i % 251}`);
  }
  console.log(`read ${b.length} bytes, sample intact`);
  channels.out.send(v);";

fn main() -> Result<()> {
    let host = Host::new()?;
    let data = Bytes::from((0..SIZE).map(|i| (i % 251) as u8).collect::<Vec<u8>>());

    // host -> stage 1 -> stage 2 -> stage 3 -> stage 4 -> host
    let (first_rx, first_tx) = host.create_channel(1);
    let mut input = first_rx;
    let mut jobs = Vec::new();
    for stage in 1..=STAGES {
        let (rx, tx) = host.create_channel(1);
        let source = if stage < STAGES {
            FORWARD
        } else {
            READ_AND_FORWARD
        };
        let interp = host.create_js(Limits::new().with_timeout(Duration::from_secs(10)))?;
        jobs.push(interp.start(Run::js(source).channel("inbox", input).channel("out", tx)));
        input = rx;
    }
    let last_rx = input;

    let started = Instant::now();
    first_tx.send(data.clone())?; // a clone of `Bytes` shares the memory
    let mut reports = Vec::new();
    for (stage, job) in (1..).zip(jobs) {
        let r = job
            .join()?
            .check()
            .with_context(|| format!("stage {stage}"))?;
        reports.push(r);
    }
    let back = last_rx.recv_nowait()?;
    let back = back.into_view().context("expected bytes")?;
    let wall = started.elapsed();
    let c = host.counters(); // since the host was made
    let (forwarded, copied_in, copied_out) =
        (c.buffers_forwarded, c.bytes_copied_in, c.bytes_copied_out);

    println!(
        "zero-copy pipeline: {} MiB through {STAGES} JavaScript interpreters and back in {:.1} ms",
        SIZE >> 20,
        wall.as_secs_f64() * 1e3
    );
    println!("  buffers forwarded : {forwarded} (one per stage, no bytes copied)");
    println!("  copied into wasm  : {copied_in} bytes (stage {STAGES} reads it once)");
    println!("  copied out        : {copied_out} bytes");
    print!(
        "  stage {STAGES} says      : {}",
        reports[STAGES - 1].stdout_text()
    );
    println!(
        "  back at the host  : the same memory ({:p} sent, {:p} received)",
        data.as_ptr(),
        back.as_ptr()
    );
    ensure!(back.as_ptr() == data.as_ptr() && back.len() == SIZE);
    ensure!(forwarded == STAGES as u64);
    ensure!(copied_in == SIZE as u64);
    ensure!(copied_out == 0);
    for (stage, r) in (1..).zip(&reports) {
        let want = if stage == STAGES { SIZE as u64 } else { 0 };
        ensure!(r.stats.buffers_forwarded == 1 && r.stats.bytes_copied_in == want);
    }
    Ok(())
}
