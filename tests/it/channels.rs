//! Host-side channel semantics: capacity, rendezvous, nowait/timeout paths,
//! close-then-drain, release, zero-copy buffers.

use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use subinterp::{
    Message, RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError,
};

use crate::common::host;

fn text(m: Message) -> String {
    String::from_utf8(m.into_view().expect("a view").to_vec()).unwrap()
}

#[test]
fn capacity_gives_backpressure() {
    let host = host();
    let (rx, tx) = host.create_channel(2);
    tx.send_nowait("a").unwrap();
    tx.send_nowait("b").unwrap();
    let err = tx.send_nowait("c").unwrap_err();
    assert!(err.is_full());
    assert_eq!(
        text(err.into_inner()),
        "c",
        "a failed send gives the message back"
    );
    // A send with a timeout on a full channel waits, then gives the message
    // back: it cannot complete while no receiver makes room.
    let err = tx.send_timeout("c", Duration::from_millis(20)).unwrap_err();
    assert!(matches!(err, SendTimeoutError::Timeout(_)), "{err:?}");
    // A blocking send completes once a receiver makes room, and not before.
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = sent.clone();
    let sender = thread::spawn(move || {
        tx.send("c").unwrap();
        flag.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    assert!(
        !sent.load(std::sync::atomic::Ordering::SeqCst),
        "sent into a full channel"
    );
    assert_eq!(text(rx.recv().unwrap()), "a");
    sender.join().unwrap();
    assert_eq!(text(rx.recv().unwrap()), "b");
    assert_eq!(text(rx.recv().unwrap()), "c");
}

#[test]
fn a_blocked_sender_finds_room_a_receiver_left_above_half_full() {
    // Receivers wake blocked senders only once the queue is down to half
    // its capacity; a sender still finds a slot freed above that mark, even
    // when nothing is received after it (a blocking send with no deadline).
    let host = host();
    let (rx, tx) = host.create_channel(8);
    for i in 0..8 {
        tx.send_nowait(format!("m{i}")).unwrap();
    }
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let sender = thread::spawn(move || {
        tx.send("late").unwrap();
        done_tx.send(()).unwrap();
    });
    assert_eq!(text(rx.recv().unwrap()), "m0");
    assert!(
        done_rx.recv_timeout(Duration::from_secs(60)).is_ok(),
        "the blocked send never took the free slot"
    );
    sender.join().unwrap();
    let rest: Vec<String> = (0..8).map(|_| text(rx.recv().unwrap())).collect();
    assert_eq!(rest, ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "late"]);
}

#[test]
fn rendezvous_send_waits_for_a_receiver() {
    let host = host();
    let (rx, tx) = host.create_channel(0);
    // No receiver waiting: nowait cannot hand it over.
    assert!(matches!(tx.send_nowait("x"), Err(TrySendError::Full(_))));
    // Timeout: the message comes back and is not left queued.
    match tx.send_timeout("y", Duration::from_millis(30)) {
        Err(SendTimeoutError::Timeout(m)) => assert_eq!(text(m), "y"),
        other => panic!("expected timeout, got {other:?}"),
    }
    assert_eq!(rx.recv_nowait().unwrap_err(), TryRecvError::Empty);
    // A blocking send returns only once the receiver took the message.
    let rx2 = rx.clone();
    let receiver = thread::spawn(move || {
        thread::sleep(Duration::from_millis(100));
        text(rx2.recv().unwrap())
    });
    let t = Instant::now();
    tx.send("z").unwrap();
    assert!(t.elapsed() >= Duration::from_millis(80));
    assert_eq!(receiver.join().unwrap(), "z");
    // A receiver already waiting lets send_nowait succeed.
    let rx3 = rx.clone();
    let waiting = thread::spawn(move || text(rx3.recv().unwrap()));
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match tx.send_nowait("w") {
            Ok(()) => break,
            Err(TrySendError::Full(_)) if Instant::now() < deadline => thread::yield_now(),
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(waiting.join().unwrap(), "w");
}

#[test]
fn nowait_and_timeout_paths() {
    let host = host();
    let (rx, tx) = host.create_channel(1);
    assert_eq!(rx.recv_nowait().unwrap_err(), TryRecvError::Empty);
    let t = Instant::now();
    assert_eq!(
        rx.recv_timeout(Duration::from_millis(50)).unwrap_err(),
        RecvTimeoutError::Timeout
    );
    assert!(t.elapsed() >= Duration::from_millis(45));
    tx.send_timeout("1", Duration::from_millis(10)).unwrap();
    match tx.send_timeout("2", Duration::from_millis(30)) {
        Err(SendTimeoutError::Timeout(m)) => assert_eq!(text(m), "2"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        text(rx.recv_timeout(Duration::from_millis(10)).unwrap()),
        "1"
    );
}

#[test]
fn close_then_drain() {
    let host = host();
    let (rx, tx) = host.create_channel(8);
    for s in ["a", "b", "c"] {
        tx.send(s).unwrap();
    }
    tx.close();
    assert!(tx.is_closed());
    assert!(matches!(tx.send("d"), Err(SendError::Closed(_))));
    assert!(matches!(tx.send_nowait("d"), Err(TrySendError::Closed(_))));
    let got: Vec<String> = (0..3).map(|_| text(rx.recv().unwrap())).collect();
    assert_eq!(got, ["a", "b", "c"]);
    assert_eq!(rx.recv().unwrap_err(), RecvError::Closed);
    assert_eq!(rx.recv_nowait().unwrap_err(), TryRecvError::Closed);
    assert_eq!(
        rx.recv_timeout(Duration::from_millis(5)).unwrap_err(),
        RecvTimeoutError::Closed
    );
}

#[test]
fn close_wakes_blocked_receivers() {
    let host = host();
    let (rx, tx) = host.create_channel(1);
    let waiter = thread::spawn(move || rx.recv());
    thread::sleep(Duration::from_millis(50));
    tx.close();
    assert_eq!(waiter.join().unwrap().unwrap_err(), RecvError::Closed);
}

#[test]
fn release_of_every_end_on_one_side() {
    let host = host();
    let (rx, tx) = host.create_channel(4);
    let tx2 = tx.clone();
    tx.send("kept").unwrap();
    tx.release();
    tx2.send("also").unwrap();
    tx2.release();
    // Senders gone: what was queued is still received, then "closed".
    assert_eq!(text(rx.recv().unwrap()), "kept");
    assert_eq!(text(rx.recv().unwrap()), "also");
    assert_eq!(rx.recv().unwrap_err(), RecvError::Closed);

    let (rx, tx) = host.create_channel(4);
    rx.release();
    assert!(matches!(tx.send("lost?"), Err(SendError::Closed(_))));
}

#[test]
fn host_to_host_is_the_same_memory() {
    let host = host();
    let (rx, tx) = host.create_channel(1);
    let data = Bytes::from(vec![1u8; 1 << 20]);
    tx.send(data.clone()).unwrap();
    let view = rx.recv().unwrap().into_view().unwrap();
    assert_eq!(view.as_ptr(), data.as_ptr());
    assert_eq!(host.counters(), subinterp::CopyCounters::default());
}

#[test]
fn queued_bytes_limit() {
    let host = host();
    let (rx, tx) = host.create_channel_with(10, 8);
    match tx.send(vec![0u8; 9]) {
        Err(SendError::TooLarge { message, limit }) => {
            assert_eq!(limit, 8);
            assert_eq!(message.byte_len(), 9);
        }
        other => panic!("{other:?}"),
    }
    tx.send(vec![0u8; 5]).unwrap();
    // 5 + 5 > 8: full by bytes even though the count allows more.
    assert!(tx.send_nowait(vec![0u8; 5]).unwrap_err().is_full());
    rx.recv().unwrap();
    tx.send_nowait(vec![0u8; 5]).unwrap();
}

#[test]
fn ends_travel_over_channels_and_channels_are_listed() {
    let host = host();
    let (rx, tx) = host.create_channel(1);
    let (inner_rx, inner_tx) = host.create_channel(1);
    let inner_id = inner_rx.id();
    assert!(host.list_channels().contains(&inner_id));
    tx.send(inner_tx).unwrap();
    let Message::Send(got_tx) = rx.recv().unwrap() else {
        panic!("expected a sending end")
    };
    got_tx.send("through").unwrap();
    assert_eq!(text(inner_rx.recv().unwrap()), "through");
    drop(got_tx);
    drop(inner_rx);
    assert!(!host.list_channels().contains(&inner_id));
}

#[test]
fn many_senders_many_receivers_lose_nothing() {
    let host = host();
    let (rx, tx) = host.create_channel(16);
    let producers: Vec<_> = (0..4u32)
        .map(|p| {
            let tx = tx.clone();
            thread::spawn(move || {
                for i in 0..2000u32 {
                    tx.send((p * 100_000 + i).to_le_bytes().to_vec()).unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    let consumers: Vec<_> = (0..3)
        .map(|_| {
            let rx = rx.clone();
            thread::spawn(move || {
                let mut got = Vec::new();
                while let Ok(m) = rx.recv() {
                    let v = m.into_view().unwrap();
                    got.push(u32::from_le_bytes(v[..4].try_into().unwrap()));
                }
                got
            })
        })
        .collect();
    drop(rx);
    for p in producers {
        p.join().unwrap();
    }
    let mut all: Vec<u32> = consumers
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    all.sort_unstable();
    let mut want: Vec<u32> = (0..4u32)
        .flat_map(|p| (0..2000u32).map(move |i| p * 100_000 + i))
        .collect();
    want.sort_unstable();
    assert_eq!(all, want, "every message exactly once");
}
