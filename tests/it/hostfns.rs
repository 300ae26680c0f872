//! Host functions by grant (issue 13): registered on the host, granted per
//! interpreter, called from JavaScript (`host.call`) and through the ABI,
//! bounded by the caller's deadline, and invisible to those not granted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use bytes::Bytes;
use subinterp::{Error, ErrorKind, Host, HostFnError, InterpreterId, Limits, Run};

/// A host with a key-value lookup, a failing function, one that panics, one
/// that blocks until told, a blocking one that answers, and a record of who
/// called `whoami`.
fn host(
    release: mpsc::Receiver<()>,
    seen: Arc<Mutex<Vec<(InterpreterId, InterpreterId)>>>,
) -> Host {
    let kv: HashMap<&str, &str> = [("ada", "lovelace"), ("grace", "hopper")].into();
    let release = Mutex::new(release);
    Host::builder()
        .pool_size(16)
        .func("kv", move |_, key| {
            let key = std::str::from_utf8(&key).map_err(|_| HostFnError::new("keys are text"))?;
            kv.get(key)
                .map(|v| Bytes::from_static(v.as_bytes()))
                .ok_or_else(|| HostFnError::new(format!("no key {key}")))
        })
        .func("panics", |_, _| panic!("a bug in the host function"))
        .func("whoami", move |caller, _| {
            seen.lock()
                .unwrap()
                .push((caller.interpreter(), caller.root()));
            Ok(Bytes::from(caller.interpreter().0.to_string()))
        })
        .blocking_func("upper", |_, v| Ok(Bytes::from(v.to_ascii_uppercase())))
        .blocking_func("blocks", move |_, _| {
            let _ = release.lock().unwrap().recv();
            Ok(Bytes::from_static(b"late"))
        })
        .build()
        .expect("host")
}

fn limits() -> Limits {
    Limits::new().with_timeout(Duration::from_secs(5))
}

#[test]
fn granted_functions_are_called_from_javascript() {
    let (_tx, rx) = mpsc::channel();
    let host = host(rx, Arc::default());
    let js = host
        .interpreter(&host.js().unwrap())
        .limits(limits())
        .allow("kv")
        .build()
        .unwrap();
    let r = js
        .run(Run::js(
            "const out = [host.call('kv', 'ada').text()];\n\
             try { host.call('kv', 'nobody'); } catch (e) { out.push(e.name + ': ' + e.message); }\n\
             host.callAsync('kv', new Uint8Array([103, 114, 97, 99, 101])).then((v) => out.push(v.text()));\n\
             Promise.resolve().then(() => console.log(JSON.stringify(out)));",
        ))
        .unwrap()
        .check()
        .unwrap();
    assert_eq!(
        r.stdout_text().trim(),
        r#"["lovelace","HostError: host.call(\"kv\"): no key nobody","hopper"]"#
    );
}

#[test]
fn functions_not_granted_look_like_functions_that_do_not_exist() {
    let (_tx, rx) = mpsc::channel();
    let host = host(rx, Arc::default());
    let js = host.create_js(limits()).unwrap();
    let r = js
        .run(Run::js(
            "for (const n of ['kv', 'no_such_function']) {\n\
               try { host.call(n, ''); } catch (e) { console.log(e.name, e.message.replace(n, 'NAME')); }\n\
             }",
        ))
        .unwrap()
        .check()
        .unwrap();
    let out = r.stdout_text();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0], lines[1], "the same answer either way");
    assert!(lines[0].starts_with("HostError"), "{lines:?}");
    // Granting a name nobody registered is refused when building.
    let err = host
        .interpreter(&host.js().unwrap())
        .allow("kvv")
        .build()
        .unwrap_err();
    assert!(
        matches!(err, Error::NoSuchHostFn(ref n) if n == "kvv"),
        "{err:?}"
    );
}

#[test]
fn a_panicking_host_function_is_the_callers_error_not_the_hosts() {
    let (_tx, rx) = mpsc::channel();
    let host = host(rx, Arc::default());
    let js = host
        .interpreter(&host.js().unwrap())
        .limits(limits())
        .allow("panics")
        .allow("kv")
        .build()
        .unwrap();
    let r = js.run(Run::js("host.call('panics', 'x')")).unwrap();
    let e = r.error.expect("failed");
    assert_eq!(
        e.kind,
        ErrorKind::Exception {
            name: "HostError".into()
        }
    );
    assert!(e.message.contains("panicked"), "{}", e.message);
    let text: String = js
        .call_json("eval", "host.call('kv', 'ada').text()")
        .unwrap();
    assert_eq!(text, "lovelace", "the interpreter carries on");
}

#[test]
fn a_blocking_host_function_is_bounded_by_the_callers_deadline() {
    let (tx, rx) = mpsc::channel();
    let host = host(rx, Arc::default());
    let js = host
        .interpreter(&host.js().unwrap())
        .limits(Limits::new().with_timeout(Duration::from_millis(300)))
        .allow("blocks")
        .build()
        .unwrap();
    let r = js.run(Run::js("host.call('blocks', '')")).unwrap();
    assert!(
        matches!(
            r.error.as_ref().map(|e| &e.kind),
            Some(ErrorKind::Timeout { .. })
        ),
        "{:?}",
        r.error
    );
    tx.send(()).unwrap(); // lets the abandoned call end on the pool
}

#[test]
fn children_get_at_most_their_creators_grants_and_callers_are_named() {
    let (_tx, rx) = mpsc::channel();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let host = host(rx, seen.clone());
    let parent = host
        .interpreter(&host.js().unwrap())
        .limits(limits())
        .allow("whoami")
        .build()
        .unwrap();
    let r = parent
        .run(Run::js(
            "const me = host.call('whoami', '').text();\n\
             const kid = interpreters.create();\n\
             const res = kid.run(`\n\
               const out = [host.call('whoami', '').text()];\n\
               try { host.call('kv', 'ada'); } catch (e) { out.push(e.name); }\n\
               console.log(out.join(' '));`);\n\
             res.check();\n\
             console.log(me);",
        ))
        .unwrap()
        .check()
        .unwrap();
    let out = r.stdout_text();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    let (p, kid) = (seen[0], seen[1]);
    assert_eq!(p, (parent.id(), parent.id()));
    assert_eq!(kid.1, parent.id(), "the child's root is its creator's tree");
    assert_ne!(kid.0, parent.id());
    assert!(out.contains(&format!("{} HostError", kid.0.0)), "{out}");
}

/// A C-style guest calling `subinterp_host_v1.call` directly.
const ABI_GUEST: &str = r#"(module
  (import "subinterp_host_v1" "call" (func $call (param i32 i32 i32 i32 i32) (result i32)))
  (import "subinterp_v1" "view_read" (func $read (param i32 i32 i32 i32) (result i32)))
  (import "subinterp_v1" "call_output" (func $out (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "kv") (data (i32.const 8) "ada") (data (i32.const 16) "nobody")
  ;; kv("ada") -> its bytes as the call's output
  (func (export "lookup") (param i32) (result i32)
    (local $h i32) (local $n i32)
    (local.set $h (call $call (i32.const 0) (i32.const 2) (i32.const 8) (i32.const 3) (i32.const 64)))
    (if (i32.lt_s (local.get $h) (i32.const 0)) (then (return (i32.sub (i32.const 0) (local.get $h)))))
    (local.set $n (call $read (local.get $h) (i32.const 0) (i32.const 128) (i32.const 64)))
    (drop (call $out (i32.const 128) (local.get $n)))
    (i32.const 0))
  ;; kv("nobody") fails: its message (a view written at 64) as the output
  (func (export "missing") (param i32) (result i32)
    (local $r i32) (local $n i32)
    (local.set $r (call $call (i32.const 0) (i32.const 2) (i32.const 16) (i32.const 6) (i32.const 64)))
    (if (i32.ne (local.get $r) (i32.const -14)) (then (return (i32.const 1))))
    (local.set $n (call $read (i32.load (i32.const 64)) (i32.const 0) (i32.const 128) (i32.const 64)))
    (drop (call $out (i32.const 128) (local.get $n)))
    (i32.const 0))
  ;; an out-of-bounds name is a code, not a trap
  (func (export "oob") (param i32) (result i32)
    (call $call (i32.const 65530) (i32.const 100) (i32.const 0) (i32.const 0) (i32.const 64))))"#;

#[test]
fn wasm_guests_call_host_functions_through_the_abi() {
    let (_tx, rx) = mpsc::channel();
    let host = host(rx, Arc::default());
    let g = host.compile("abi", ABI_GUEST.as_bytes()).unwrap();
    let granted = host
        .interpreter(&g)
        .limits(limits())
        .allow("kv")
        .build()
        .unwrap();
    assert_eq!(&granted.call("lookup", "").unwrap()[..], b"lovelace");
    assert_eq!(&granted.call("missing", "").unwrap()[..], b"no key nobody");
    let r = granted.run(Run::call("oob", "")).unwrap();
    assert_eq!(
        r.error.unwrap().kind,
        ErrorKind::Exit(subinterp::abi::ERR_BOUNDS)
    );
    let not = host.interpreter(&g).limits(limits()).build().unwrap();
    let e = not.call("lookup", "").unwrap_err();
    assert!(
        matches!(e, Error::Guest(ref g) if g.kind == ErrorKind::Exit(-subinterp::abi::ERR_NOT_FOUND)),
        "{e:?}"
    );
}

#[test]
fn python_calls_granted_host_functions() {
    let (_tx, rx) = mpsc::channel();
    let host = host(rx, Arc::default());
    let py = host
        .interpreter(&host.python().unwrap())
        .limits(Limits::new().with_timeout(Duration::from_secs(60)))
        .allow("kv")
        .build()
        .unwrap();
    let r = py
        .run(Run::python(
            "import interpreters as I\n\
             print(I.host_call('kv', 'ada').decode(), I.host_call('kv', b'grace').tobytes())\n\
             for name, key in (('kv', 'nobody'), ('whoami', ''), ('no_such', '')):\n\
             \x20   try:\n\
             \x20       I.host_call(name, key)\n\
             \x20   except I.HostError as e:\n\
             \x20       print(str(e).replace(repr(name), 'NAME'))\n",
        ))
        .unwrap()
        .check()
        .unwrap();
    assert_eq!(
        r.stdout_text(),
        "lovelace b'hopper'\nhost_call(NAME): no key nobody\n\
         host_call: no host function NAME is granted\nhost_call: no host function NAME is granted\n"
    );
}

/// A guest calling the blocking functions `upper` (its input as the call's
/// output) and `blocks` through the ABI.
const BLOCKING_GUEST: &str = r#"(module
  (import "subinterp_host_v1" "call" (func $call (param i32 i32 i32 i32 i32) (result i32)))
  (import "subinterp_v1" "view_read" (func $read (param i32 i32 i32 i32) (result i32)))
  (import "subinterp_v1" "call_output" (func $out (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "upper") (data (i32.const 8) "blocks") (data (i32.const 16) "ada")
  (func (export "upper") (param i32) (result i32)
    (local $h i32) (local $n i32)
    (local.set $h (call $call (i32.const 0) (i32.const 5) (i32.const 16) (i32.const 3) (i32.const 64)))
    (if (i32.lt_s (local.get $h) (i32.const 0)) (then (return (i32.sub (i32.const 0) (local.get $h)))))
    (local.set $n (call $read (local.get $h) (i32.const 0) (i32.const 128) (i32.const 64)))
    (drop (call $out (i32.const 128) (local.get $n)))
    (i32.const 0))
  (func (export "block") (param i32) (result i32)
    (call $call (i32.const 8) (i32.const 6) (i32.const 0) (i32.const 0) (i32.const 64))))"#;

#[test]
fn blocking_functions_answer_and_their_waits_end_at_the_deadline_or_close() {
    let (tx, rx) = mpsc::channel();
    let host = host(rx, Arc::default());
    let g = host.compile("blocking", BLOCKING_GUEST.as_bytes()).unwrap();
    let quick = Limits::new().with_timeout(Duration::from_millis(300));
    let i = host
        .interpreter(&g)
        .limits(quick)
        .allow("upper")
        .allow("blocks")
        .build()
        .unwrap();
    assert_eq!(&i.call("upper", "").unwrap()[..], b"ADA");
    // Past the deadline: the run ends with a timeout, not a code.
    let e = i.call("block", "").unwrap_err();
    assert!(
        matches!(e, Error::Guest(ref g) if matches!(g.kind, ErrorKind::Timeout { .. })),
        "{e:?}"
    );
    tx.send(()).unwrap(); // lets the abandoned call end on the pool
    // With no deadline, closing the interpreter ends the wait.
    let i = host
        .interpreter(&g)
        .limits(Limits::new().with_timeout(Duration::from_secs(3600)))
        .allow("blocks")
        .build()
        .unwrap();
    let waiting = std::thread::scope(|s| {
        let call = s.spawn(|| i.call("block", ""));
        while !i.is_running() {
            std::thread::yield_now();
        }
        i.close();
        call.join().unwrap()
    });
    let e = waiting.unwrap_err();
    assert!(
        matches!(e, Error::Guest(ref g) if g.kind == ErrorKind::Closed)
            || matches!(e, Error::InterpreterClosed(_)),
        "{e:?}"
    );
    tx.send(()).unwrap();
}
