//! `nats_msg64_per_s`: 64-byte messages one way from one JavaScript
//! interpreter to another through a channel bound to a NATS subject
//! ([`subinterp::nats`], an in-memory JetStream stream), beside its floor,
//! plain NATS core publish/subscribe of the same payload through the same
//! server, and a reference between the two: JetStream itself driven by
//! `async-nats` directly (what the channel is built on, without a guest or a
//! bridge). All in this process, on loopback, against the `nats-server`
//! [`start_server`] starts; without one on PATH the row is skipped with a
//! line saying so.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use subinterp::nats::Nats;
use subinterp::{Host, Limits, Run};

use super::Samples;
use super::nats_run::start_server;

/// The figures: medians of the runs, in messages per second.
pub(crate) struct NatsMsg64 {
    pub(crate) rate: f64,
    /// `None` when the floor could not be measured (said on stderr).
    pub(crate) floor: Option<f64>,
    /// JetStream driven directly; `None` when not measured (said on stderr).
    pub(crate) jetstream: Option<f64>,
    /// Runs, and messages per run: the channel's, then the floor's.
    pub(crate) reps: usize,
    pub(crate) n: (u32, u32),
}

/// The stream's capacity: unreleased messages it holds.
const CAPACITY: usize = 1024;
/// A floor run that receives nothing for this long has lost its end marker.
const STALL: Duration = Duration::from_secs(10);

/// Measures both; `Err` says why not (no `nats-server` on PATH, ...).
pub(crate) fn measure(quick: bool) -> Result<NatsMsg64, String> {
    let server = start_server()?;
    let (n, floor_n, reps) = if quick {
        (1000, 20_000, 3)
    } else {
        (20_000, 100_000, 3)
    };
    let host = Host::builder()
        .pool_size(4)
        .build()
        .map_err(|e| e.to_string())?;
    let nats = Nats::connect(&server.url).map_err(|e| e.to_string())?;
    let mut rates = Samples::new();
    for run in 0..reps {
        rates.record(channel_run(&host, &nats, &format!("bench.msg64.{run}"), n)?);
    }
    let jetstream = match jetstream_rates(&server.url, n, reps) {
        Ok(s) => Some(s.median()),
        Err(why) => {
            eprintln!("  nats_msg64_per_s: JetStream reference not measured: {why}");
            None
        }
    };
    let floor = match plain_rates(&server.url, floor_n, reps) {
        Ok(s) => Some(s.median()),
        Err(why) => {
            eprintln!("  nats_msg64_per_s: floor not measured: {why}");
            None
        }
    };
    Ok(NatsMsg64 {
        rate: rates.median(),
        floor,
        jetstream,
        reps,
        n: (n, floor_n),
    })
}

/// One run on a fresh subject: from the start of both interpreters until
/// the receiver has released its `n`th message, in messages per second.
fn channel_run(host: &Host, nats: &Nats, subject: &str, n: u32) -> Result<u64, String> {
    let end = |e: subinterp::nats::NatsError| format!("{subject}: {e}");
    let bind = || nats.channel(host, subject).capacity(CAPACITY).in_memory();
    let tx = bind().sender().map_err(end)?;
    let rx = bind().receiver().map_err(end)?;
    let send = format!(
        "const b = new Uint8Array(64), o = channels.out; for (let i = 0; i < {n}; i++) o.send(b);"
    );
    let recv =
        format!("const r = channels.inbox; for (let i = 0; i < {n}; i++) r.recv().release();");
    let sender = host.create_js(Limits::new()).map_err(|e| e.to_string())?;
    let receiver = host.create_js(Limits::new()).map_err(|e| e.to_string())?;
    let t = Instant::now();
    let rj = receiver.start(Run::js(recv).channel("inbox", rx.channel().clone()));
    let sj = sender.start(Run::js(send).channel("out", tx.channel().clone()));
    let sent = sj.join().map_err(|e| e.to_string())?;
    let received = rj.join().map_err(|e| e.to_string())?;
    let elapsed = t.elapsed();
    if !sent.completed || !received.completed {
        return Err(format!(
            "{subject}: a guest did not complete (sender {:?}, receiver {:?})",
            sent.error, received.error
        ));
    }
    tx.finish().map_err(end)?;
    drop(rx);
    nats.delete_channel(subject).map_err(end)?;
    Ok((f64::from(n) / elapsed.as_secs_f64()) as u64)
}

/// Plain NATS core publish/subscribe through the same server: `n` 64-byte
/// messages published on one connection and counted on another, then an
/// empty end marker, `reps` times; messages received per second, from the
/// first publish to the marker. Core NATS is at-most-once: a message the
/// server or client drops under load is not counted (and said on stderr).
fn plain_rates(url: &str, n: u32, reps: usize) -> Result<Samples, String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let options = async_nats::ConnectOptions::new().subscription_capacity(n as usize + 1024);
        let sub_conn = options.connect(url).await.map_err(|e| e.to_string())?;
        let publisher = async_nats::connect(url).await.map_err(|e| e.to_string())?;
        let mut rates = Samples::new();
        for run in 0..reps {
            let subject = format!("bench.plain.{run}");
            let sub = sub_conn
                .subscribe(subject.clone())
                .await
                .map_err(|e| e.to_string())?;
            sub_conn.flush().await.map_err(|e| e.to_string())?;
            let t = Instant::now();
            let count = tokio::spawn(count_until_marker(sub));
            publish(&publisher, &subject, n).await?;
            let got = count.await.map_err(|e| e.to_string())??;
            if got < n {
                eprintln!(
                    "  nats_msg64_per_s: floor run {run}: {} of {n} lost",
                    n - got
                );
            }
            rates.record((f64::from(got) / t.elapsed().as_secs_f64()) as u64);
        }
        Ok(rates)
    })
}

/// Publishes `n` 64-byte messages and the empty end marker.
async fn publish(client: &async_nats::Client, subject: &str, n: u32) -> Result<(), String> {
    let payload = bytes::Bytes::from(vec![b'm'; 64]);
    for _ in 0..n {
        client
            .publish(subject.to_string(), payload.clone())
            .await
            .map_err(|e| e.to_string())?;
    }
    client
        .publish(subject.to_string(), bytes::Bytes::new())
        .await
        .map_err(|e| e.to_string())?;
    client.flush().await.map_err(|e| e.to_string())
}

/// The 64-byte messages received before the empty end marker.
async fn count_until_marker(mut sub: async_nats::Subscriber) -> Result<u32, String> {
    let mut got = 0;
    loop {
        match tokio::time::timeout(STALL, sub.next()).await {
            Ok(Some(m)) if m.payload.is_empty() => return Ok(got),
            Ok(Some(_)) => got += 1,
            _ => return Err(format!("no end marker after {got} messages")),
        }
    }
}

/// JetStream through `async-nats` directly, as the channel uses it but with
/// no guest, no bridge and no back-pressure: `n` 64-byte messages published
/// with a `Nats-Msg-Id` each and at most [`IN_FLIGHT`] unanswered, to an
/// in-memory work-queue stream with room for all of them, while a pull
/// consumer on another connection acknowledges each as it arrives; `reps`
/// times. Messages per second, from the first publish to the last ack sent.
fn jetstream_rates(url: &str, n: u32, reps: usize) -> Result<Samples, String> {
    use async_nats::jetstream::{self, consumer, message::PublishMessage, stream};
    const IN_FLIGHT: usize = 128;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let e = |e: &dyn std::fmt::Display| e.to_string();
    rt.block_on(async {
        let publisher = async_nats::connect(url).await.map_err(|x| e(&x))?;
        let receiver = async_nats::connect(url).await.map_err(|x| e(&x))?;
        let js = jetstream::new(publisher);
        let mut rates = Samples::new();
        for run in 0..reps {
            let subject = format!("bench.js.{run}");
            let name = format!("bench-js-{run}");
            let s = js
                .get_or_create_stream(stream::Config {
                    name: name.clone(),
                    subjects: vec![subject.clone()],
                    retention: stream::RetentionPolicy::WorkQueue,
                    storage: stream::StorageType::Memory,
                    max_messages: i64::from(n) + 1,
                    ..Default::default()
                })
                .await
                .map_err(|x| e(&x))?;
            let c: consumer::PullConsumer = s
                .create_consumer(consumer::pull::Config {
                    durable_name: Some("bench".into()),
                    ack_policy: consumer::AckPolicy::Explicit,
                    max_ack_pending: CAPACITY as i64,
                    ..Default::default()
                })
                .await
                .map_err(|x| e(&x))?;
            let mut messages = c
                .stream()
                .max_messages_per_batch(256)
                .messages()
                .await
                .map_err(|x| e(&x))?;
            let t = Instant::now();
            let ack = receiver.clone();
            let count = tokio::spawn(async move {
                for got in 0..n {
                    let m = match tokio::time::timeout(STALL, messages.next()).await {
                        Ok(Some(Ok(m))) => m,
                        _ => return Err(format!("stalled after {got} messages")),
                    };
                    let reply = m.reply.clone().ok_or("a message without a reply")?;
                    ack.publish(reply, bytes::Bytes::from_static(b"+ACK"))
                        .await
                        .map_err(|x| e(&x))?;
                }
                ack.flush().await.map_err(|x| e(&x))
            });
            let payload = bytes::Bytes::from(vec![b'm'; 64]);
            let mut flying = std::collections::VecDeque::new();
            for i in 0..n {
                let m = PublishMessage::build()
                    .payload(payload.clone())
                    .message_id(format!("bench-{run}-{i}"));
                flying.push_back(
                    js.send_publish(subject.clone(), m)
                        .await
                        .map_err(|x| e(&x))?,
                );
                if flying.len() == IN_FLIGHT
                    && let Some(f) = flying.pop_front()
                {
                    f.await.map_err(|x| e(&x))?;
                }
            }
            for f in flying {
                f.await.map_err(|x| e(&x))?;
            }
            count.await.map_err(|x| e(&x))??;
            rates.record((f64::from(n) / t.elapsed().as_secs_f64()) as u64);
            js.delete_stream(&name).await.map_err(|x| e(&x))?;
        }
        Ok(rates)
    })
}
