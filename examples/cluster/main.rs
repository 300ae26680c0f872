//! The word count of `make demo`, spread over worker processes through NATS
//! JetStream: the client splits a generated corpus into chunks and sends
//! each, with a small JavaScript counting function, as a remote call
//! ([`RemoteHost::submit`]); whichever worker takes a chunk counts it in a
//! fresh sandboxed interpreter. The client merges the counts as they come
//! back, checks them against its own count, and prints which worker served
//! how many chunks.
//!
//! Run: `make demo-cluster` (it starts a `nats-server` and three
//! `subinterp worker`s on loopback, runs this with their URL, and stops them
//! all), or by hand against workers of your own:
//! `cargo run --release --example cluster -- nats://127.0.0.1:4222`.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use subinterp::remote::{RemoteHost, RemoteOptions, RemoteRun};

#[path = "../demo/corpus.rs"]
mod corpus;

const CHUNKS: usize = 48;
const WORDS_PER_CHUNK: usize = 20_000;
/// What each worker runs: the chunk comes in as a view, the counts go back
/// as JSON.
const COUNT: &str = "function count(v) {
  const counts = {};
  for (const w of v.text().toLowerCase().split(/[^a-z]+/)) {
    if (w) counts[w] = (counts[w] || 0) + 1;
  }
  return JSON.stringify(counts);
}";

fn main() -> Result<()> {
    let Some(url) = std::env::args().nth(1) else {
        bail!("usage: cluster NATS_URL (make demo-cluster starts a server and workers)");
    };
    let chunks = corpus::corpus(CHUNKS, WORDS_PER_CHUNK);
    let expected = corpus::count(&chunks);
    let bytes: usize = chunks.iter().map(String::len).sum();
    let remote = RemoteHost::connect(&url, RemoteOptions::new())
        .with_context(|| format!("connecting to {url}"))?;
    let started = Instant::now();
    let runs = chunks.into_iter().enumerate().map(|(i, c)| {
        RemoteRun::js(COUNT)
            .name(format!("chunk-{i}"))
            .call("count", c)
    });
    let mut merged: HashMap<String, u64> = HashMap::new();
    let mut served: BTreeMap<String, usize> = BTreeMap::new();
    for done in remote.submit(runs)? {
        let r = done
            .result
            .with_context(|| format!("request {}", done.id))?;
        let output = r.output.context("a count without output")?;
        let counts: HashMap<String, u64> = serde_json::from_slice(&output)?;
        for (w, n) in counts {
            *merged.entry(w).or_default() += n;
        }
        let worker = done.json["worker"].as_str().unwrap_or("?").to_string();
        *served.entry(worker).or_default() += 1;
    }
    let wall = started.elapsed();
    ensure!(
        merged == expected,
        "the workers' counts differ from the local count"
    );
    let mut top: Vec<_> = merged.iter().collect();
    top.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    println!(
        "{CHUNKS} chunks ({:.1} MB) counted by {} workers in {:.2} s; the counts match a local count",
        bytes as f64 / 1e6,
        served.len(),
        wall.as_secs_f64()
    );
    for (w, n) in top.iter().take(5) {
        println!("  {w:<12} {n}");
    }
    for (worker, n) in &served {
        println!("  worker {worker} served {n} chunks");
    }
    Ok(())
}
