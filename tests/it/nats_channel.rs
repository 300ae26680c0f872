//! Channels carried by NATS JetStream (issue 15, `subinterp::nats`),
//! against a real `nats-server` each test starts (see `nats.rs`); without
//! it on PATH the tests say so and pass.

use std::time::{Duration, Instant};

use subinterp::nats::{Nats, NatsError};
use subinterp::{Limits, Message, RecvTimeoutError, Run, SendError, SendTimeoutError};

use crate::common::{completed, host, subinterp};
use crate::nats::{rt, server};

const LONG: Duration = Duration::from_secs(60);

fn text(m: Message) -> String {
    m.into_view().unwrap().text().unwrap().to_string()
}

/// The number of messages the channel's stream holds now.
fn stored(url: &str, subject: &str) -> u64 {
    rt().block_on(async {
        let js = async_nats::jetstream::new(async_nats::connect(url).await.unwrap());
        let name = js.stream_by_subject(subject).await.unwrap();
        js.get_stream(name)
            .await
            .unwrap()
            .info()
            .await
            .unwrap()
            .state
            .messages
    })
}

/// Waits (a minute at most) until the stream holds `n` messages: acks reach
/// the server's consumer a moment after the client sent them.
fn wait_stored(url: &str, subject: &str, n: u64) {
    let start = Instant::now();
    while stored(url, subject) != n {
        assert!(start.elapsed() < LONG, "the stream never held {n}");
        std::thread::yield_now();
    }
}

#[test]
fn messages_cross_in_order_then_the_close() {
    let Some(server) = server("messages_cross_in_order_then_the_close") else {
        return;
    };
    let host = host();
    let nats = Nats::connect(&server.url).unwrap();
    let tx = nats
        .channel(&host, "t.order")
        .capacity(64)
        .sender()
        .unwrap();
    let rx = nats
        .channel(&host, "t.order")
        .capacity(64)
        .receiver()
        .unwrap();
    let sender = std::thread::spawn(move || {
        for i in 0..500 {
            tx.send(format!("m{i}")).unwrap();
        }
        tx.close();
        tx.finish()
    });
    for i in 0..500 {
        assert_eq!(text(rx.recv_timeout(LONG).unwrap()), format!("m{i}"));
    }
    assert_eq!(rx.recv_timeout(LONG).unwrap_err(), RecvTimeoutError::Closed);
    sender.join().unwrap().unwrap();
    assert!(rx.error().is_none());
    // The close stays: a later receiver finds the channel closed.
    let again = nats
        .channel(&host, "t.order")
        .capacity(64)
        .receiver()
        .unwrap();
    assert_eq!(
        again.recv_timeout(LONG).unwrap_err(),
        RecvTimeoutError::Closed
    );
    // And deleting the channel makes the subject new.
    nats.delete_channel("t.order").unwrap();
    let fresh = nats
        .channel(&host, "t.order")
        .capacity(64)
        .receiver()
        .unwrap();
    assert!(matches!(
        fresh.recv_timeout(Duration::from_millis(50)),
        Err(RecvTimeoutError::Timeout)
    ));
}

#[test]
fn guests_talk_through_it_as_through_a_local_channel() {
    let Some(server) = server("guests_talk_through_it") else {
        return;
    };
    let host = host();
    let nats = Nats::connect(&server.url).unwrap();
    let tx = nats
        .channel(&host, "t.guests")
        .capacity(8)
        .sender()
        .unwrap();
    let rx = nats
        .channel(&host, "t.guests")
        .capacity(8)
        .receiver()
        .unwrap();
    let js = host.create_js(Limits::new()).unwrap();
    let producer = js.start(
        Run::js(
            "for (let i = 0; i < 200; i++) channels.out.send('n' + i);\n\
             channels.out.close();",
        )
        .channel("out", tx.channel().clone()),
    );
    let reader = host.create_js(Limits::new()).unwrap();
    let r = reader
        .run(
            Run::js(
                "let n = 0, bad = 0;\n\
                 for (;;) {\n\
                   let v;\n\
                   try { v = channels.inbox.recv(); } catch (e) {\n\
                     if (e.name === 'ChannelClosedError') break; throw e; }\n\
                   if (v.text() !== 'n' + n) bad++;\n\
                   n++; v.release();\n\
                 }\n\
                 console.log(n, bad);",
            )
            .channel("inbox", rx.channel().clone()),
        )
        .unwrap();
    assert_eq!(completed(r).stdout_text(), "200 0\n");
    completed(producer.join().unwrap());
    tx.finish().unwrap();
    // Every view was released: the stream keeps only the close.
    assert!(rx.flush(LONG));
    wait_stored(&server.url, "t.guests", 1);
}

#[test]
fn a_full_stream_holds_the_sender_back() {
    let Some(server) = server("a_full_stream_holds_the_sender_back") else {
        return;
    };
    let host = host();
    let nats = Nats::connect(&server.url).unwrap();
    let tx = nats.channel(&host, "t.full").capacity(4).sender().unwrap();
    // Four stored, four taken by the bridge (its window is the capacity) and
    // four queued in front of it: the thirteenth finds no room.
    for i in 0..12 {
        tx.send(format!("m{i}")).unwrap();
    }
    assert!(matches!(
        tx.send_timeout("m12", Duration::from_millis(200)),
        Err(SendTimeoutError::Timeout(_))
    ));
    wait_stored(&server.url, "t.full", 4);
    // A guest blocked on it ends at its deadline, not later.
    let js = host
        .create_js(Limits::new().with_timeout(Duration::from_millis(300)))
        .unwrap();
    let r = js
        .run(Run::js("channels.out.send('x');").channel("out", tx.channel().clone()))
        .unwrap();
    assert!(
        matches!(
            r.error.as_ref().unwrap().kind,
            subinterp::ErrorKind::Timeout { .. }
        ),
        "{:?}",
        r.error
    );
    // A receiver that releases one makes room for one more.
    let rx = nats
        .channel(&host, "t.full")
        .capacity(4)
        .receiver()
        .unwrap();
    assert_eq!(text(rx.recv_timeout(LONG).unwrap()), "m0");
    tx.send_timeout("m12", LONG).unwrap();
    for i in 1..13 {
        assert_eq!(text(rx.recv_timeout(LONG).unwrap()), format!("m{i}"));
    }
    tx.finish().unwrap();
    assert_eq!(rx.recv_timeout(LONG).unwrap_err(), RecvTimeoutError::Closed);
}

/// Two senders (two connections, as two processes would have) on one
/// subject, through a small stream: their messages interleave, each one's
/// stay in its own order, and none is stored twice or lost, though their
/// pipelined publishes keep refusing each other (another sender's message
/// between two of one's) and the full stream refuses both.
#[test]
fn two_senders_on_one_subject_each_keep_their_order() {
    let Some(server) = server("two_senders_on_one_subject") else {
        return;
    };
    const EACH: usize = 3000;
    let host = host();
    let bind = |nats: &Nats| nats.channel(&host, "t.two").capacity(64).in_memory();
    let rx = bind(&Nats::connect(&server.url).unwrap())
        .receiver()
        .unwrap();
    let senders: Vec<_> = ["a", "b"]
        .iter()
        .map(|name| {
            let tx = bind(&Nats::connect(&server.url).unwrap()).sender().unwrap();
            let end = tx.channel().clone();
            let t = std::thread::spawn(move || {
                for i in 0..EACH {
                    end.send(format!("{name}{i}")).unwrap();
                }
            });
            (tx, t)
        })
        .collect();
    let mut next = [0usize; 2];
    for _ in 0..2 * EACH {
        let m = text(rx.recv_timeout(LONG).unwrap());
        let (who, i) = m.split_at(1);
        let k = usize::from(who == "b");
        assert_eq!(i.parse::<usize>().unwrap(), next[k], "{m} out of order");
        next[k] += 1;
    }
    assert_eq!(next, [EACH, EACH]);
    let mut senders = senders.into_iter();
    // One leaves (no close marker), the other sends once more and finishes:
    // its last message still arrives, then the close.
    let (a, ta) = senders.next().unwrap();
    ta.join().unwrap();
    a.leave().unwrap();
    let (b, tb) = senders.next().unwrap();
    tb.join().unwrap();
    b.send("last").unwrap();
    b.finish().unwrap();
    assert_eq!(text(rx.recv_timeout(LONG).unwrap()), "last");
    assert_eq!(rx.recv_timeout(LONG).unwrap_err(), RecvTimeoutError::Closed);
}

/// A stage's receiver bound to its sender (`acks_after`): a release is
/// acknowledged only once what the sender had accepted is stored; an
/// unbound receiver's is not held.
#[test]
fn a_stage_acknowledges_only_what_it_passed_on() {
    let Some(server) = server("a_stage_acknowledges_only_what_it_passed_on") else {
        return;
    };
    let host = host();
    let nats = Nats::connect(&server.url).unwrap();
    let feed = nats.channel(&host, "t.stage.in").sender().unwrap();
    feed.send("m0").unwrap();
    feed.send("m1").unwrap();
    // The stage's output: a stream of one, full once "a" is stored, so "b"
    // waits in the bridge.
    let out = nats.channel(&host, "t.stage.out").capacity(1);
    let tx = out.sender().unwrap();
    tx.send("a").unwrap();
    tx.send("b").unwrap();
    wait_stored(&server.url, "t.stage.out", 1);
    let rx = nats.channel(&host, "t.stage.in").receiver().unwrap();
    rx.acks_after(&tx);
    drop(rx.recv_timeout(LONG).unwrap());
    assert!(
        !rx.flush(Duration::from_millis(300)),
        "m0's ack waits for b"
    );
    assert_eq!(stored(&server.url, "t.stage.in"), 2, "m0 and m1");
    // Room for "b": m0's ack goes.
    let collect = nats
        .channel(&host, "t.stage.out")
        .capacity(1)
        .receiver()
        .unwrap();
    assert_eq!(text(collect.recv_timeout(LONG).unwrap()), "a");
    assert_eq!(text(collect.recv_timeout(LONG).unwrap()), "b");
    assert!(rx.flush(LONG));
    wait_stored(&server.url, "t.stage.in", 1);
    // A receiver not bound to a sender acknowledges at once.
    let other = nats.channel(&host, "t.stage.in").receiver().unwrap();
    assert_eq!(text(other.recv_timeout(LONG).unwrap()), "m1");
    assert!(other.flush(LONG));
    wait_stored(&server.url, "t.stage.in", 0);
    drop(feed);
}

/// What a sender can make the host hold beyond its stream is bounded in
/// bytes too: with a full stream of 32 messages of 512 KiB, the bridge takes
/// 4 MiB (8 of them) and its local queue one more; the 42nd send waits.
#[test]
fn the_send_bridge_holds_at_most_4_mib_unstored() {
    let Some(server) = server("the_send_bridge_holds_at_most_4_mib") else {
        return;
    };
    let host = host();
    let nats = Nats::connect(&server.url).unwrap();
    let tx = nats
        .channel(&host, "t.bytes")
        .capacity(32)
        .in_memory()
        .sender()
        .unwrap();
    let big = bytes::Bytes::from(vec![7u8; 512 << 10]);
    for _ in 0..41 {
        tx.send_timeout(big.clone(), LONG).unwrap();
    }
    assert!(matches!(
        tx.send_timeout(big.clone(), Duration::from_millis(300)),
        Err(SendTimeoutError::Timeout(_))
    ));
    wait_stored(&server.url, "t.bytes", 32);
    let rx = nats
        .channel(&host, "t.bytes")
        .capacity(32)
        .in_memory()
        .receiver()
        .unwrap();
    for _ in 0..41 {
        assert_eq!(
            rx.recv_timeout(LONG).unwrap().into_view().unwrap().len(),
            512 << 10
        );
    }
    tx.finish().unwrap();
    assert_eq!(rx.recv_timeout(LONG).unwrap_err(), RecvTimeoutError::Closed);
}

/// A receiver pulls at most 4 MiB ahead of what its receivers take: with
/// 250 messages of 512 KiB waiting and one received and held, the server
/// has handed the client a few of them, not a batch of 256 (128 MiB, which
/// this process's RSS showed before the bound: +150 MiB, against +7.4 MiB).
#[test]
fn a_receiver_pulls_at_most_4_mib_ahead() {
    let Some(server) = server("a_receiver_pulls_at_most_4_mib_ahead") else {
        return;
    };
    let host = host();
    let nats = Nats::connect(&server.url).unwrap();
    let bind = || nats.channel(&host, "t.pull").capacity(256).in_memory();
    let tx = bind().sender().unwrap();
    let big = bytes::Bytes::from(vec![7u8; 512 << 10]);
    for _ in 0..250 {
        tx.send(big.clone()).unwrap();
    }
    tx.finish().unwrap();
    let rx = bind().receiver().unwrap();
    let held = rx.recv_timeout(LONG).unwrap();
    // What the server has delivered and not had acknowledged: the pull's
    // first answer, once more than the one message held is out.
    let delivered = || {
        rt().block_on(async {
            let js = async_nats::jetstream::new(async_nats::connect(&server.url).await.unwrap());
            let name = js.stream_by_subject("t.pull").await.unwrap();
            let stream = js.get_stream(name).await.unwrap();
            let mut c: async_nats::jetstream::consumer::PullConsumer =
                stream.get_consumer("subinterp-recv").await.unwrap();
            c.info().await.unwrap().num_ack_pending
        })
    };
    let start = Instant::now();
    let mut n = delivered();
    while n < 2 {
        assert!(start.elapsed() < LONG, "nothing more was pulled");
        std::thread::yield_now();
        n = delivered();
    }
    assert!(n <= 16, "{n} messages of 512 KiB pulled ahead");
    drop(held);
}

#[test]
fn only_released_messages_are_acknowledged() {
    let Some(server) = server("only_released_messages_are_acknowledged") else {
        return;
    };
    let host = host();
    let nats = Nats::connect(&server.url).unwrap();
    let tx = nats.channel(&host, "t.ack").sender().unwrap();
    for i in 0..4 {
        tx.send(format!("m{i}")).unwrap();
    }
    let first = nats
        .channel(&host, "t.ack")
        .outage(Duration::from_secs(1))
        .receiver()
        .unwrap();
    let m0 = first.recv_timeout(LONG).unwrap();
    let m1 = first.recv_timeout(LONG).unwrap();
    let slice = m1.as_view().unwrap().slice(0..1).unwrap();
    drop(m1);
    assert!(first.flush(LONG));
    assert_eq!(stored(&server.url, "t.ack"), 4, "a slice still holds m1");
    drop(slice);
    assert!(first.flush(LONG));
    wait_stored(&server.url, "t.ack", 3);
    // A second receiver takes over: m0 (held, never released) comes again
    // first, then what was never received; m1 does not.
    let second = nats.channel(&host, "t.ack").receiver().unwrap();
    let got: Vec<String> = (0..3)
        .map(|_| text(second.recv_timeout(LONG).unwrap()))
        .collect();
    assert_eq!(got, ["m0", "m2", "m3"]);
    // The first receiver stops: it may still hand out what it had queued
    // before the take-over (m2, m3: the one case of a message seen twice
    // without a process dying), then "closed", and says why.
    let mut left = Vec::new();
    while let Ok(m) = first.recv_timeout(LONG) {
        left.push(text(m));
    }
    assert!(
        left.len() <= 2 && left.iter().zip(["m2", "m3"]).all(|(a, b)| a == b),
        "{left:?}"
    );
    assert!(first.error().is_some());
    drop(m0);
}

#[test]
fn foreign_and_oversized_messages_do_not_break_it() {
    let Some(server) = server("foreign_and_oversized_messages") else {
        return;
    };
    let host = host();
    let nats = Nats::connect(&server.url).unwrap();
    let tx = nats
        .channel(&host, "t.foreign")
        .max_message_bytes(100)
        .sender()
        .unwrap();
    // Too large for the channel: refused here, as on a local channel.
    let big = vec![7u8; 101];
    assert!(matches!(
        tx.send(big),
        Err(SendError::TooLarge { limit: 100, .. })
    ));
    tx.send("ours").unwrap();
    let rx = nats
        .channel(&host, "t.foreign")
        .max_message_bytes(100)
        .receiver()
        .unwrap();
    assert_eq!(text(rx.recv_timeout(LONG).unwrap()), "ours");
    // Another client publishes on the subject: a plain message is data; one
    // the stream takes but the channel cannot (over 100 bytes) is skipped
    // and never delivered again.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let js = async_nats::jetstream::new(async_nats::connect(&server.url).await.unwrap());
        for p in [&b"plain"[..], &[1u8; 300][..], b"after"] {
            js.publish("t.foreign", bytes::Bytes::copy_from_slice(p))
                .await
                .unwrap()
                .await
                .unwrap();
        }
        // Past the stream's own limit: the server refuses it.
        let refused = js
            .publish("t.foreign", vec![0u8; 4096].into())
            .await
            .unwrap()
            .await;
        assert!(refused.is_err());
    });
    assert_eq!(text(rx.recv_timeout(LONG).unwrap()), "plain");
    assert_eq!(text(rx.recv_timeout(LONG).unwrap()), "after");
    assert_eq!(rx.skipped(), 1);
    // A channel end cannot cross: dropped, and said so.
    let (local_rx, _local_tx) = host.create_channel(1);
    tx.send(local_rx).unwrap();
    tx.send("last").unwrap();
    assert_eq!(text(rx.recv_timeout(LONG).unwrap()), "last");
    assert!(matches!(tx.error(), Some(NatsError::NotBytes)));
}

#[test]
fn limits_and_addresses_are_checked() {
    let host = host();
    // Nothing listens on port 1.
    assert!(matches!(
        Nats::connect("nats://127.0.0.1:1"),
        Err(NatsError::Unreachable { .. })
    ));
    let Some(server) = server("limits_and_addresses_are_checked") else {
        return;
    };
    let nats = Nats::connect(&server.url).unwrap();
    for bad in ["", "a.*", "a.>", "a..b", "$JS.API.x", "with space"] {
        assert!(
            matches!(
                nats.channel(&host, bad).sender(),
                Err(NatsError::InvalidSubject { .. })
            ),
            "{bad:?}"
        );
    }
    assert!(matches!(
        nats.channel(&host, "t.lim").capacity(0).receiver(),
        Err(NatsError::InvalidLimit(_))
    ));
    assert!(matches!(
        nats.channel(&host, "t.lim")
            .max_message_bytes(2 << 20)
            .sender(),
        Err(NatsError::InvalidLimit(_))
    ));
    nats.channel(&host, "t.lim").capacity(8).sender().unwrap();
    assert!(matches!(
        nats.channel(&host, "t.lim").capacity(9).receiver(),
        Err(NatsError::StreamMismatch { capacity: 8, .. })
    ));
}

#[test]
fn an_outage_closes_both_ends_with_an_error() {
    let Some(server) = server("an_outage_closes_both_ends_with_an_error") else {
        return;
    };
    let host = host();
    let nats = Nats::connect(&server.url).unwrap();
    let short = Duration::from_millis(500);
    let tx = nats
        .channel(&host, "t.out")
        .outage(short)
        .in_memory()
        .sender()
        .unwrap();
    let rx = nats
        .channel(&host, "t.out")
        .outage(short)
        .in_memory()
        .receiver()
        .unwrap();
    tx.send("before").unwrap();
    assert_eq!(text(rx.recv_timeout(LONG).unwrap()), "before");
    drop(server);
    // The sender's next messages: one waits in the bridge, then the bridge
    // gives up and the channel is closed.
    let start = Instant::now();
    let closed = loop {
        match tx.send_timeout("during", LONG) {
            Ok(()) => assert!(start.elapsed() < LONG),
            Err(e) => break e,
        }
    };
    assert!(matches!(closed, SendTimeoutError::Closed(_)), "{closed:?}");
    assert!(
        matches!(tx.error(), Some(NatsError::Lost { .. })),
        "{:?}",
        tx.error()
    );
    assert_eq!(rx.recv_timeout(LONG).unwrap_err(), RecvTimeoutError::Closed);
    assert!(
        matches!(rx.error(), Some(NatsError::Lost { .. })),
        "{:?}",
        rx.error()
    );
}

/// The middle stage of `a_killed_receiving_process_loses_nothing`, in a
/// child process (this test binary run again with `SUBINTERP_NATS_STAGE`
/// set to the server's address); without the variable it does nothing.
/// A JS guest receives from `k.in`, sends `TEXT!` to `k.out`, then
/// releases what it received.
#[test]
fn stage_process() {
    let Ok(url) = std::env::var("SUBINTERP_NATS_STAGE") else {
        return;
    };
    let host = host();
    let nats = Nats::connect(&url).unwrap();
    let rx = nats.channel(&host, "k.in").receiver().unwrap();
    let tx = nats.channel(&host, "k.out").sender().unwrap();
    rx.acks_after(&tx);
    let js = host
        .create_js(Limits::new().with_timeout(Duration::from_secs(600)))
        .unwrap();
    let src = "for (;;) {\n\
                 let v;\n\
                 try { v = channels.inbox.recv(); } catch (e) {\n\
                   if (e.name === 'ChannelClosedError') break; throw e; }\n\
                 channels.out.send(v.text() + '!');\n\
                 v.release();\n\
               }";
    let run = Run::js(src)
        .channel("inbox", rx.channel().clone())
        .channel("out", tx.channel().clone());
    completed(js.run(run).unwrap());
    tx.finish().unwrap();
    assert!(rx.flush(LONG));
}

/// The stage process, started.
fn stage(url: &str) -> std::process::Child {
    std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "nats_channel::stage_process", "--test-threads=1"])
        .env("SUBINTERP_NATS_STAGE", url)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// A pipeline over two OS processes: a JS guest here sends numbered buffers
/// through `k.in` to a JS guest in a child process, which sends each on
/// through `k.out` back here. The child is killed (SIGKILL) once mid-stream
/// and started again. Every number arrives, in order; the only repeats are
/// a replay of what the killed stage had received but not released (or had
/// sent on but not yet seen acknowledged), right after the restart.
/// `SUBINTERP_NATS_MESSAGES` sets the count (default 30,000, ~2 s here;
/// `make soak-nats`: 100,000).
#[test]
fn a_killed_receiving_process_loses_nothing() {
    let Some(server) = server("a_killed_receiving_process_loses_nothing") else {
        return;
    };
    let n: u64 = std::env::var("SUBINTERP_NATS_MESSAGES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30_000);
    let host = host();
    let nats = Nats::connect(&server.url).unwrap();
    let tx = nats.channel(&host, "k.in").sender().unwrap();
    let out = nats.channel(&host, "k.out").receiver().unwrap();
    let producer = host
        .create_js(Limits::new().with_timeout(Duration::from_secs(600)))
        .unwrap()
        .start(
            Run::js(format!(
                "for (let i = 0; i < {n}; i++) channels.out.send(String(i));"
            ))
            .channel("out", tx.channel().clone()),
        );
    let start = Instant::now();
    let mut child = stage(&server.url);
    let (mut next, mut repeats, mut killed) = (0u64, 0u64, false);
    loop {
        let m = match out.recv_timeout(Duration::from_secs(120)) {
            Ok(m) => m,
            Err(e) => {
                assert_eq!(e, RecvTimeoutError::Closed, "after {next}");
                break;
            }
        };
        let t = text(m);
        let i: u64 = t.strip_suffix('!').unwrap().parse().unwrap();
        assert!(i <= next, "{i} came before {next}: a message was lost");
        if i < next {
            assert!(killed, "{i} repeated with no process killed");
            repeats += 1;
        } else {
            next += 1;
        }
        if next == n / 3 && !killed {
            child.kill().unwrap();
            child.wait().unwrap();
            child = stage(&server.url);
            killed = true;
        }
        if next == n {
            // Everything is here: let the producer's end go, so the
            // stage sees "closed" and closes `k.out` behind the last.
            completed(producer.join().unwrap());
            tx.finish().unwrap();
            let rest = out.recv_timeout(Duration::from_secs(120));
            assert!(matches!(rest, Err(RecvTimeoutError::Closed)), "{rest:?}");
            break;
        }
    }
    assert!(child.wait().unwrap().success());
    assert_eq!(next, n);
    eprintln!(
        "{n} buffers through two processes, the receiving one killed once: all in order, \
         {repeats} repeated after the restart, {:.1} s",
        start.elapsed().as_secs_f64()
    );
}

/// `subinterp run --send/--recv`: a JS run in each of two processes, through
/// a small stream (the sender is held back until the receiver releases), and
/// the command line's own errors.
#[test]
fn the_command_line_binds_channels_to_subjects() {
    let Some(server) = server("the_command_line_binds_channels") else {
        return;
    };
    let at = |name: &str, subject: &str| format!("{name}={}/{subject}?capacity=16", server.url);
    let send = "for (let i = 0; i < 2000; i++) channels.out.send(String(i)); console.log('sent');";
    let recv = "let n = 0, sum = 0;
        for (;;) {
            let m;
            try { m = channels.in.recv(); } catch (e) { break; }
            sum += Number(m.text()); n++; m.release();
        }
        console.log(n, sum);";
    let receiver = subinterp()
        .args(["run", "--recv", &at("in", "t.cli"), "-e", recv])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let sender = subinterp()
        .args(["run", "--send", &at("out", "t.cli"), "-e", send])
        .output()
        .unwrap();
    assert!(sender.status.success(), "{sender:?}");
    assert_eq!(String::from_utf8_lossy(&sender.stdout), "sent\n");
    let received = receiver.wait_with_output().unwrap();
    assert!(received.status.success(), "{received:?}");
    assert_eq!(String::from_utf8_lossy(&received.stdout), "2000 1999000\n");

    let fails = |args: &[&str], code: i32, says: &str| {
        let out = subinterp()
            .arg("run")
            .args(args)
            .args(["-e", "1"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    };
    fails(&["--recv", "in=nats://127.0.0.1:1/x"], 1, "cannot reach");
    fails(
        &["--send", &at("out", "a..b")],
        1,
        "invalid channel subject",
    );
    fails(&["--send", "out=http://h/x"], 2, "nats://");
    fails(
        &["--send", &at("x", "t.a"), "--recv", &at("x", "t.b")],
        2,
        "twice",
    );
    fails(
        &["--send", &at("out", "t.cli2"), "--nats", &server.url],
        2,
        "cannot be used with",
    );
}
