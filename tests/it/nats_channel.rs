//! Channels carried by NATS JetStream (issue 15, `subinterp::nats`),
//! against a real `nats-server` each test starts (see `nats.rs`); without
//! it on PATH the tests say so and pass.

use std::time::{Duration, Instant};

use subinterp::nats::{Nats, NatsError};
use subinterp::{Limits, Message, RecvTimeoutError, Run, SendError, SendTimeoutError};

use crate::common::{completed, host};
use crate::nats::server;

const LONG: Duration = Duration::from_secs(60);

fn text(m: Message) -> String {
    m.into_view().unwrap().text().unwrap().to_string()
}

/// The number of messages the channel's stream holds now.
fn stored(url: &str, subject: &str) -> u64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
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
    // Four stored, the fifth waits in the bridge: the sixth finds no room.
    for i in 0..5 {
        tx.send(format!("m{i}")).unwrap();
    }
    assert!(matches!(
        tx.send_timeout("m5", Duration::from_millis(200)),
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
    tx.send_timeout("m5", LONG).unwrap();
    for i in 1..6 {
        assert_eq!(text(rx.recv_timeout(LONG).unwrap()), format!("m{i}"));
    }
    tx.finish().unwrap();
    assert_eq!(rx.recv_timeout(LONG).unwrap_err(), RecvTimeoutError::Closed);
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
