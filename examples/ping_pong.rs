//! Ping-pong: two JavaScript interpreters, each on its own thread, exchange
//! messages over a pair of channels; every reply is checked, and the
//! round-trip times (measured inside the pinging script) are printed.
//!
//! Run: `make guest && cargo run --release --example ping_pong`

use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use subinterp::{Host, Limits, Run};

const ROUNDS: usize = 20_000;

fn main() -> Result<()> {
    let host = Host::new()?;
    let limits = Limits::new().timeout(Duration::from_secs(60));
    let (ping_rx, ping_tx) = host.create_channel(1);
    let (pong_rx, pong_tx) = host.create_channel(1);

    // The ponger sends every message back reversed, until the pings stop.
    let ponger = host.create_js(limits)?.start(
        Run::js(
            "for (;;) {
               let m;
               try { m = channels.ping.recv(); }
               catch (e) { if (e instanceof interpreters.ChannelClosedError) break; throw e; }
               channels.pong.send(m.text().split('').reverse().join(''));
             }",
        )
        .channel("ping", ping_rx)
        .channel("pong", pong_tx),
    );

    // The pinger times each round trip with performance.now() and checks the reply.
    let (times_rx, times_tx) = host.create_channel(1);
    let started = Instant::now();
    let pinger = host.create_js(limits)?.run(
        Run::js(format!(
            "const times = new Float64Array({ROUNDS});
             for (let i = 0; i < {ROUNDS}; i++) {{
               const msg = 'ping ' + i;
               const t = performance.now();
               channels.ping.send(msg);
               const back = channels.pong.recv().text();
               times[i] = performance.now() - t;
               if (back !== msg.split('').reverse().join('')) throw new Error('corrupt reply ' + back);
             }}
             channels.ping.close();
             channels.times.send(times);"
        ))
        .channel("ping", ping_tx)
        .channel("pong", pong_rx)
        .channel("times", times_tx),
    )?;
    let wall = started.elapsed();
    ensure!(pinger.completed, "pinger: {:?}", pinger.error);
    let r = ponger.join()?;
    ensure!(r.completed, "ponger: {:?}", r.error);

    let view = times_rx.recv()?.into_view().expect("a view");
    let mut times: Vec<f64> = view
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()) * 1e3) // ms -> µs
        .collect();
    ensure!(times.len() == ROUNDS);
    times.sort_by(f64::total_cmp);
    println!("ping-pong: {ROUNDS} round trips between two JS interpreters, all replies intact");
    println!("  round trip p50 : {:.1} µs", times[ROUNDS / 2]);
    println!("  round trip p99 : {:.1} µs", times[ROUNDS * 99 / 100]);
    println!(
        "  wall time      : {:.0} ms ({:.1} µs per round trip)",
        wall.as_secs_f64() * 1e3,
        wall.as_secs_f64() * 1e6 / ROUNDS as f64
    );
    Ok(())
}
