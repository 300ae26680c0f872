//! Fan-out and fan-in: a word count over N JavaScript worker interpreters.
//! The host generates a text (a deterministic PRNG, nothing downloaded), cuts
//! it into chunks at word boundaries and sends them on one task channel that
//! every worker receives from; each worker counts its chunks and sends a JSON
//! table on one result channel that every worker sends to. The host merges
//! the tables and checks them against a single-threaded count in Rust.
//!
//! Run: `make guest && cargo run --release --example fan_out [WORKERS]`

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use bytes::Bytes;
use subinterp::{Host, Limits, Run};

const WORDS: usize = 2_000_000;
const CHUNK: usize = 64 << 10;
const WAIT: Duration = Duration::from_secs(30);

type Counts = HashMap<String, u64>;

const WORKER: &str = "
  const counts = Object.create(null);
  for (;;) {
    let chunk;
    try { chunk = channels.tasks.recv(); }
    catch (e) { if (e instanceof interpreters.ChannelClosedError) break; throw e; }
    for (const w of chunk.text().split(' ')) if (w) counts[w] = (counts[w] || 0) + 1;
    chunk.release();
  }
  channels.results.send(JSON.stringify(counts));";

/// `n` words of one to three syllables, early syllables likelier, so a few
/// words are common and most are rare; each followed by a space.
fn corpus(n: usize) -> String {
    const SYLLABLES: [&str; 10] = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ze", "fu"];
    let mut state = 0x2545_f491_4f6c_dd1d_u64; // xorshift64: any non-zero seed
    let mut next = |below: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % below
    };
    let mut text = String::with_capacity(n * 6);
    for _ in 0..n {
        for _ in 0..=next(3).min(next(3)) {
            text.push_str(SYLLABLES[next(10).min(next(10)) as usize]);
        }
        text.push(' ');
    }
    text
}

/// Cuts `text` into slices of about `size` bytes, each ending after a space.
/// The slices share `text`'s memory.
fn chunks(text: &Bytes, size: usize) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < text.len() {
        let mut end = (start + size).min(text.len());
        while end < text.len() && text[end - 1] != b' ' {
            end += 1;
        }
        out.push(text.slice(start..end));
        start = end;
    }
    out
}

/// Counts the words of `tasks` in `workers` JS interpreters; returns the
/// merged count and how many chunks each worker received.
fn count_in_js(host: &Host, workers: usize, tasks: &[Bytes]) -> Result<(Counts, Vec<u64>)> {
    let (task_rx, task_tx) = host.create_channel(16); // many receivers
    let (result_rx, result_tx) = host.create_channel(workers); // many senders
    let mut jobs = Vec::new();
    for _ in 0..workers {
        let worker = host.create_js(Limits::new().with_timeout(WAIT))?;
        let run = Run::js(WORKER)
            .channel("tasks", task_rx.clone())
            .channel("results", result_tx.clone());
        jobs.push(worker.start(run));
    }
    for chunk in tasks {
        task_tx.send_timeout(chunk.clone(), WAIT)?; // a clone of `Bytes` copies nothing
    }
    task_tx.close(); // the workers drain the queue, then see "closed"

    let mut per_worker = Vec::new();
    for job in jobs {
        let r = job.join()?.check().context("a worker")?;
        per_worker.push(r.stats.messages_received);
    }
    let mut merged = Counts::new();
    for _ in 0..workers {
        let msg = result_rx.recv_nowait()?; // each worker sent its table before it ended
        let view = msg.into_view().context("expected bytes")?;
        for (word, n) in serde_json::from_slice::<Counts>(&view)? {
            *merged.entry(word).or_default() += n;
        }
    }
    Ok((merged, per_worker))
}

fn main() -> Result<()> {
    let arg = std::env::args().nth(1);
    let workers: usize = arg.map_or(Ok(4), |n| n.parse())?;
    ensure!(workers > 0, "WORKERS: at least 1");
    let text = Bytes::from(corpus(WORDS));
    let tasks = chunks(&text, CHUNK);
    let host = Host::new()?;

    let started = Instant::now();
    let (merged, per_worker) = count_in_js(&host, workers, &tasks)?;
    let in_js = started.elapsed();
    let started = Instant::now();
    let mut single = Counts::new(); // the same count, single-threaded in Rust
    for word in std::str::from_utf8(&text)?.split_whitespace() {
        *single.entry(word.to_string()).or_default() += 1;
    }
    let in_rust = started.elapsed();
    ensure!(merged == single, "the workers' count differs from Rust's");
    ensure!(per_worker.iter().sum::<u64>() == tasks.len() as u64);

    let mut top: Vec<_> = merged.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let (mb, n) = (text.len() as f64 / 1e6, tasks.len());
    println!("fan-out: a word count over {workers} JavaScript workers, checked against Rust's");
    println!("  corpus      : {WORDS} words, {mb:.1} MB, in {n} chunks");
    println!("  chunks each : {per_worker:?}");
    println!("  JS workers  : {in_js:.0?}");
    println!("  Rust alone  : {in_rust:.0?}, one thread");
    print!("  top words   :");
    for (word, n) in &top[..5] {
        print!(" {word} {n},");
    }
    println!(" ... ({} distinct)", top.len());
    Ok(())
}
