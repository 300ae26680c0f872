//! Fan-out and fan-in: a word count over N worker interpreters. The host cuts
//! a generated corpus into chunks and sends them on one task channel that all
//! workers receive from; each worker counts its chunks and sends a JSON table
//! on one result channel that all of them send to. The merged count is checked
//! against a single-threaded count done in Rust.
//!
//! Run: `make guest && cargo run --release --example fan_out [WORKERS]`

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use bytes::Bytes;
use subinterp::{Host, Limits, Run};

const WORKER: &str = "
  const counts = {};
  for (;;) {
    let chunk;
    try { chunk = channels.tasks.recv(); }
    catch (e) { if (e instanceof interpreters.ChannelClosedError) break; throw e; }
    for (const w of chunk.text().split(' ')) if (w) counts[w] = (counts[w] || 0) + 1;
    chunk.release();
  }
  channels.results.send(JSON.stringify(counts));
";

/// A deterministic corpus of `n` words from a small vocabulary.
fn corpus(n: usize) -> Vec<String> {
    let words = [
        "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta",
    ];
    let mut x = 88_172_645_463_325_252u64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            words[(x % 8).min(x >> 3 & 7) as usize].to_string()
        })
        .collect()
}

fn main() -> Result<()> {
    let workers: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(4);
    let words = corpus(2_000_000);
    let host = Host::new()?;
    let (task_rx, task_tx) = host.create_channel(16);
    let (result_rx, result_tx) = host.create_channel(workers);

    let started = Instant::now();
    let jobs: Vec<_> = (0..workers)
        .map(|_| {
            let w = host.create_js(Limits::new().timeout(Duration::from_secs(60)))?;
            Ok(w.start(
                Run::js(WORKER)
                    .channel("tasks", task_rx.clone())
                    .channel("results", result_tx.clone()),
            ))
        })
        .collect::<Result<_>>()?;
    for chunk in words.chunks(10_000) {
        task_tx.send(Bytes::from(chunk.join(" ")))?;
    }
    task_tx.close(); // workers drain the queue, then see "closed"

    let mut merged: HashMap<String, u64> = HashMap::new();
    for _ in 0..workers {
        let table: HashMap<String, u64> =
            serde_json::from_slice(&result_rx.recv()?.into_view().expect("a view"))?;
        for (w, n) in table {
            *merged.entry(w).or_default() += n;
        }
    }
    for job in jobs {
        let r = job.join()?;
        ensure!(r.completed, "a worker failed: {:?}", r.error);
    }
    let parallel = started.elapsed();

    let started = Instant::now();
    let mut single: HashMap<String, u64> = HashMap::new();
    for w in &words {
        *single.entry(w.clone()).or_default() += 1;
    }
    let rust = started.elapsed();
    ensure!(
        merged == single,
        "the workers' count differs from the single-threaded one"
    );

    let mut top: Vec<_> = merged.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    println!(
        "fan-out: {} words counted by {workers} JS workers in {:.0} ms (Rust alone: {:.0} ms); counts match",
        words.len(),
        parallel.as_secs_f64() * 1e3,
        rust.as_secs_f64() * 1e3
    );
    for (w, n) in top.iter().take(3) {
        println!("  {w:<8} {n}");
    }
    Ok(())
}
