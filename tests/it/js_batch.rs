//! The batch forms of the JS message path: `recv.recvMany(max)` and
//! `send.sendMany(array)`, through the Rust API and the CLI.

use std::time::Duration;

use bytes::Bytes;
use subinterp::{Limits, Run};

use crate::common::host;

fn limits() -> Limits {
    Limits::new().with_timeout(Duration::from_secs(60))
}

/// recvMany waits for the first message only, then takes what is queued
/// behind it up to `max`; sendMany sends every element in order, views
/// forwarded and channel ends shared as send() does.
#[test]
fn recv_many_takes_what_is_queued_and_send_many_sends_in_order() {
    let host = host();
    let (inbox, from_host) = host.create_channel(16);
    let (back, to_host) = host.create_channel(16);
    for m in ["a", "bb", "ccc", "dddd", "eeeee"] {
        from_host.send(Bytes::from(m)).unwrap();
    }
    let js = host.create_js(limits()).unwrap();
    let job = js.start(
        Run::js(
            "const { inbox, outbox } = channels;\n\
             const first = inbox.recvMany(3), rest = inbox.recvMany(10);\n\
             const [r, s] = interpreters.createChannel(1);\n\
             outbox.sendMany([first.map((v) => v.text()).join(), String(rest.length), rest[0], s]);\n\
             outbox.send(String(inbox.recvMany(4).length));\n\
             r.recv();",
        )
        .channel("inbox", inbox)
        .channel("outbox", to_host),
    );
    let text = |m: subinterp::Message| String::from_utf8(m.into_view().unwrap().to_vec()).unwrap();
    assert_eq!(text(back.recv().unwrap()), "a,bb,ccc");
    assert_eq!(text(back.recv().unwrap()), "2");
    assert_eq!(text(back.recv().unwrap()), "dddd", "a view is forwarded");
    let Ok(subinterp::Message::Send(shared)) = back.recv() else {
        panic!("a sending end")
    };
    // The script now waits in recvMany(4) on an empty channel: one message
    // ends the wait, and it returns that one alone.
    from_host.send(Bytes::from("late")).unwrap();
    assert_eq!(text(back.recv().unwrap()), "1");
    shared.send(Bytes::from("done")).unwrap();
    job.join().unwrap().check().unwrap();
}

/// A batch never takes more than the interpreter may hold: at the handle
/// limit it stops with what it has, the rest stays queued, nothing is lost;
/// and one call returns at most 1024 messages whatever it asks for.
#[test]
fn a_batch_stops_at_the_handle_limit_and_loses_nothing() {
    let host = host();
    let (inbox, from_host) = host.create_channel(64);
    for i in 0..40 {
        from_host.send(Bytes::from(i.to_string())).unwrap();
    }
    let js = host.create_js(limits().with_max_handles(16)).unwrap();
    let r = js
        .run(
            Run::js(
                "const got = [], sizes = [];\n\
                 while (got.length < 40) {\n\
                   const vs = channels.inbox.recvMany(40);\n\
                   sizes.push(vs.length);\n\
                   for (const v of vs) { got.push(v.text()); v.release(); }\n\
                 }\n\
                 if (got.join() !== Array.from({ length: 40 }, (_, i) => i).join()) throw new Error(got.join());\n\
                 if (!(sizes.length > 2 && sizes.every((n) => n >= 1 && n < 16))) throw new Error(sizes.join());\n\
                 const [r, s] = interpreters.createChannel(1100);\n\
                 s.sendMany(Array.from({ length: 1100 }, () => 'x'));\n\
                 console.log(sizes.length > 2, r.recvMany(1e9).length);",
            )
            .channel("inbox", inbox),
        )
        .unwrap();
    assert!(r.completed, "{:?}", r.error);
    // The script's 16 handles cannot hold 1024 views: it stops at the limit.
    let (printed, batch) = r
        .stdout_text()
        .trim()
        .split_once(' ')
        .map(|(a, b)| (a.to_string(), b.parse::<usize>().unwrap()))
        .unwrap();
    assert_eq!(printed, "true");
    assert!((1..16).contains(&batch), "{batch}");

    let big = host.create_js(limits()).unwrap();
    let r = big
        .run(Run::js(
            "const [r, s] = interpreters.createChannel(1100);\n\
             s.sendMany(Array.from({ length: 1100 }, (_, i) => String(i)));\n\
             const a = r.recvMany(1e9), b = r.recvMany(1e9);\n\
             console.log(a.length, b.length, a[1023].text(), b[0].text());",
        ))
        .unwrap();
    assert!(r.completed, "{:?}", r.error);
    assert_eq!(r.stdout_text(), "1024 76 1023 1024\n");
}

/// Errors, from the CLI: the first message's failure throws as recv()'s,
/// bad arguments are RangeError/TypeError, a failed sendMany has sent the
/// messages before the one that failed.
#[test]
fn batch_errors_from_the_command_line() {
    let script = "const out = [];\n\
        const [r, s] = interpreters.createChannel(2);\n\
        const name = (f) => { try { f(); return 'ok'; } catch (e) { return e.name; } };\n\
        out.push(name(() => r.recvMany(4, { timeout: 0 })), name(() => r.recvMany(4, { timeout: 5 })));\n\
        out.push(name(() => r.recvMany(0)), name(() => r.recvMany(1.5)), name(() => r.recvMany()));\n\
        out.push(name(() => r.recvMany(2, { timeout: -1 })), name(() => s.sendMany('ab')));\n\
        out.push(name(() => s.sendMany(['a', 'b', 'c'], { timeout: 5 })), r.recvMany(9).map((v) => v.text()).join(''));\n\
        out.push(name(() => s.sendMany(['a', 7])), r.recvMany(9).length);\n\
        out.push(name(() => interpreters.RecvChannel.prototype.recvMany.call(s, 1)));\n\
        out.push(name(() => interpreters.RecvChannel.prototype.recvMany.call({}, 1)));\n\
        s.send('z'); s.close();\n\
        out.push(r.recvMany(3).length, name(() => r.recvMany(3)));\n\
        r.release();\n\
        out.push(name(() => r.recvMany(1)), name(() => s.sendMany(['q'])));\n\
        console.log(out.join(' '));";
    let out = crate::common::subinterp()
        .args(["run", "-e", script])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "ChannelEmptyError TimeoutError RangeError RangeError RangeError TypeError TypeError \
         TimeoutError ab TypeError 1 TypeError ChannelReleasedError 1 ChannelClosedError \
         ChannelReleasedError ChannelClosedError\n"
    );
}
