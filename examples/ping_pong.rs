//! Ping-pong: two JavaScript interpreters, each on its own thread, exchange
//! messages over a pair of channels. The pinger checks every reply and times
//! each round trip with `performance.now()`; the host prints the median and
//! the 99th percentile.
//!
//! Run: `make guest && cargo run --release --example ping_pong`

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use subinterp::{Host, Limits, Run};

const ROUNDS: usize = 20_000;

/// Sends every message back reversed, until the pinger closes the channel.
const PONGER: &str = "
  for (;;) {
    let m;
    try { m = channels.ping.recv(); }
    catch (e) { if (e instanceof interpreters.ChannelClosedError) break; throw e; }
    channels.pong.send(m.text().split('').reverse().join(''));
  }";

/// Sends ROUNDS messages, checks each reply, and sends the host its timings
/// (milliseconds, as little-endian f64s).
fn pinger() -> String {
    format!(
        "const times = new Float64Array({ROUNDS});
         for (let i = 0; i < {ROUNDS}; i++) {{
           const msg = 'ping ' + i;
           const t = performance.now();
           channels.ping.send(msg);
           const back = channels.pong.recv().text();
           times[i] = performance.now() - t;
           if (back !== msg.split('').reverse().join('')) throw new Error('bad reply: ' + back);
         }}
         channels.ping.close();
         channels.times.send(times);"
    )
}

fn main() -> Result<()> {
    let host = Host::new()?;
    let limits = Limits::new().with_timeout(Duration::from_secs(20));
    let (ping_rx, ping_tx) = host.create_channel(1);
    let (pong_rx, pong_tx) = host.create_channel(1);
    let (times_rx, times_tx) = host.create_channel(1);

    // The ponger runs on a thread of its own; the pinger runs on this one.
    let ponger = host.create_js(limits)?.start(
        Run::js(PONGER)
            .channel("ping", ping_rx)
            .channel("pong", pong_tx),
    );
    let ping = host.create_js(limits)?.run(
        Run::js(pinger())
            .channel("ping", ping_tx)
            .channel("pong", pong_rx)
            .channel("times", times_tx),
    )?;
    let ping = ping.check().context("the pinger")?;
    let pong = ponger.join()?.check().context("the ponger")?;
    ensure!(pong.stats.messages_received == ROUNDS as u64);
    ensure!(pong.stats.messages_sent == ROUNDS as u64);

    let view = times_rx.recv()?.into_view().context("expected bytes")?;
    let mut micros: Vec<f64> = view
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()) * 1e3)
        .collect();
    ensure!(micros.len() == ROUNDS);
    micros.sort_by(f64::total_cmp);

    println!("ping-pong: {ROUNDS} round trips between two JS interpreters, all replies intact");
    println!("  round trip p50 : {:.1} µs", micros[ROUNDS / 2]);
    println!("  round trip p99 : {:.1} µs", micros[ROUNDS * 99 / 100]);
    println!(
        "  pinger's run   : {:.0} ms ({:.1} µs per round trip, checks included)",
        ping.wall.as_secs_f64() * 1e3,
        ping.wall.as_secs_f64() * 1e6 / ROUNDS as f64
    );
    Ok(())
}
