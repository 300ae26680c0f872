//! Calls with values (issue 13): `Interpreter::call` and `call_json` into
//! JavaScript functions and wasm exports, a JS script's completion value,
//! and the same limits and typed errors as `run`.

use std::time::Duration;

use serde_json::{Value, json};
use subinterp::{Error, ErrorKind, Host, Interpreter, Limits, Run};

use crate::common::host;

fn js(host: &Host) -> Interpreter {
    let js = host
        .create_js(Limits::new().with_timeout(Duration::from_secs(5)))
        .expect("js interpreter");
    js.run(Run::js(
        "function upper(v) { return v.text().toUpperCase(); }\n\
         function len(v) { return v.length; }\n\
         function bytes(v) { const b = v.bytes(); b.reverse(); return b; }\n\
         function nothing() { return null; }\n\
         function add(o) { return { sum: o.a + o.b, tags: o.tags.concat(['seen']) }; }\n\
         async function later(v) { await null; return 'later:' + v.text(); }\n\
         function fails(v) { throw new RangeError('no ' + v.text()); }\n\
         async function rejects() { throw new Error('async no'); }\n\
         function object() { return { a: 1 }; }\n\
         function spin() { for (;;) {} }",
    ))
    .unwrap()
    .check()
    .unwrap();
    js
}

fn guest_kind(e: Error) -> ErrorKind {
    match e {
        Error::Guest(g) => g.kind,
        other => panic!("expected a guest error, got {other:?}"),
    }
}

#[test]
fn javascript_functions_are_called_with_a_view_and_return_bytes() {
    let host = host();
    let js = js(&host);
    assert_eq!(&js.call("upper", "hello").unwrap()[..], b"HELLO");
    assert_eq!(&js.call("len", vec![0u8; 300]).unwrap()[..], b"300");
    assert_eq!(&js.call("bytes", "abc").unwrap()[..], b"cba");
    assert_eq!(&js.call("nothing", "").unwrap()[..], b"");
    assert_eq!(&js.call("later", "x").unwrap()[..], b"later:x");
    // State persists: a later run sees what calls did, and vice versa.
    js.run(Run::js(
        "globalThis.n = 41; function next() { return ++n; }",
    ))
    .unwrap();
    assert_eq!(&js.call("next", "").unwrap()[..], b"42");
    assert_eq!(&js.call("next", "").unwrap()[..], b"43");
    // An export of a module run earlier.
    js.run(Run::js_module(
        "m.js",
        "export function twice(v) { return v.text() + v.text(); }",
    ))
    .unwrap()
    .check()
    .unwrap();
    assert_eq!(&js.call("m.js#twice", "ab").unwrap()[..], b"abab");
}

#[test]
fn call_json_passes_structured_values() {
    let host = host();
    let js = js(&host);
    let out: Value = js
        .call_json("add", &json!({"a": 2, "b": 40, "tags": ["x"]}))
        .unwrap();
    assert_eq!(out, json!({"sum": 42, "tags": ["x", "seen"]}));
    let n: Option<u32> = js.call_json("nothing", &()).unwrap();
    assert_eq!(n, None);
    // Output that is not JSON of the asked type is a typed error.
    assert!(matches!(
        js.call_json::<_, u32>("add", &json!({"a": 1, "b": 2, "tags": []})),
        Err(Error::Json(_))
    ));
}

#[test]
fn failed_calls_are_typed_errors_and_the_interpreter_carries_on() {
    let host = host();
    let js = js(&host);
    let e = js.call("fails", "way").unwrap_err();
    assert!(e.to_string().contains("no way"), "{e}");
    assert_eq!(
        guest_kind(e),
        ErrorKind::Exception {
            name: "RangeError".into()
        }
    );
    assert_eq!(
        guest_kind(js.call("rejects", "").unwrap_err()),
        ErrorKind::Exception {
            name: "Error".into()
        }
    );
    assert_eq!(
        guest_kind(js.call("missing", "").unwrap_err()),
        ErrorKind::Exception {
            name: "TypeError".into()
        }
    );
    assert_eq!(
        guest_kind(js.call("object", "").unwrap_err()),
        ErrorKind::Exception {
            name: "TypeError".into()
        }
    );
    assert!(matches!(
        guest_kind(js.call("spin", "").unwrap_err()),
        ErrorKind::Timeout { .. }
    ));
    assert_eq!(&js.call("upper", "still here").unwrap()[..], b"STILL HERE");
}

#[test]
fn a_javascript_run_returns_its_completion_value() {
    let host = host();
    let js = js(&host);
    let out = |src: &str| js.run(Run::js(src)).unwrap().check().unwrap().output;
    assert_eq!(out("1 + 1").as_deref(), Some(&b"2"[..]));
    assert_eq!(out("'a' + 'b'").as_deref(), Some(&b"ab"[..]));
    assert_eq!(out("true").as_deref(), Some(&b"true"[..]));
    assert_eq!(out("null").as_deref(), Some(&b""[..]));
    assert_eq!(
        out("new Uint8Array([1, 2])").as_deref(),
        Some(&[1u8, 2][..])
    );
    assert_eq!(out("({ a: 1 })"), None);
    assert_eq!(out("let x = 1"), None);
}

/// A plugin in WAT: `echo` gives its input back, `shout` fails with 7, and
/// `spin` never returns.
const PLUGIN: &str = r#"(module
  (import "subinterp_v1" "view_len" (func $len (param i32) (result i32)))
  (import "subinterp_v1" "view_read" (func $read (param i32 i32 i32 i32) (result i32)))
  (import "subinterp_v1" "call_output" (func $out (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "echo") (param $in i32) (result i32)
    (local $n i32)
    (local.set $n (call $read (local.get $in) (i32.const 0) (i32.const 0) (i32.const 4096)))
    (drop (call $out (i32.const 0) (local.get $n)))
    (i32.const 0))
  (func (export "shout") (param i32) (result i32) (i32.const 7))
  (func (export "spin") (param i32) (result i32) (loop $l (br $l)) (i32.const 0))
  (func (export "no_args") (result i32) (i32.const 1)))"#;

#[test]
fn wasm_exports_are_called_with_a_view_handle() {
    let host = host();
    let guest = host.compile("plugin", PLUGIN.as_bytes()).unwrap();
    let p = host
        .interpreter(&guest)
        .limits(Limits::new().with_timeout(Duration::from_millis(200)))
        .build()
        .unwrap();
    assert_eq!(&p.call("echo", "ping").unwrap()[..], b"ping");
    assert_eq!(
        guest_kind(p.call("shout", "").unwrap_err()),
        ErrorKind::Exit(7)
    );
    assert!(matches!(
        guest_kind(p.call("spin", "").unwrap_err()),
        ErrorKind::Timeout { .. }
    ));
    assert!(matches!(p.call("no_args", ""), Err(Error::NoSuchExport(_))));
    assert!(matches!(p.call("nope", ""), Err(Error::NoSuchExport(_))));
    assert_eq!(&p.call("echo", "again").unwrap()[..], b"again");
}

#[test]
fn typed_calls_check_the_signature_once_and_run_under_limits() {
    let host = host();
    let wat = r#"(module
      (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
      (func (export "mix") (param i64 f64) (result f64 i64)
        (f64.add (local.get 1) (f64.convert_i64_s (local.get 0))) (local.get 0))
      (func (export "nop"))
      (func (export "spin") (param i32) (result i32) (loop $l (br $l)) (i32.const 0)))"#;
    let g = host.compile("typed", wat.as_bytes()).unwrap();
    let i = host
        .interpreter(&g)
        .limits(Limits::new().with_timeout(Duration::from_millis(200)))
        .build()
        .unwrap();
    let add = i.typed::<(i32, i32), i32>("add").unwrap();
    assert_eq!(add.call((40, 2)).unwrap(), 42);
    assert_eq!(add.call((i32::MAX, 1)).unwrap(), i32::MIN);
    let mix = i.typed::<(i64, f64), (f64, i64)>("mix").unwrap();
    assert_eq!(mix.call((2, 0.5)).unwrap(), (2.5, 2));
    i.typed::<(), ()>("nop").unwrap().call(()).unwrap();
    match i.typed::<i32, i32>("add") {
        Err(Error::WrongSignature { found, .. }) => assert_eq!(found, "(i32, i32) -> (i32)"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        i.typed::<(), ()>("none"),
        Err(Error::NoSuchExport(_))
    ));
    let spin = i.typed::<i32, i32>("spin").unwrap();
    assert!(matches!(
        guest_kind(spin.call(0).unwrap_err()),
        ErrorKind::Timeout { .. }
    ));
    assert_eq!(add.call((1, 1)).unwrap(), 2);
}

#[test]
fn channel_conveniences_for_the_common_case() {
    let host = host();
    let (rx, tx) = host.create_channel(4);
    tx.send(String::from("owned text")).unwrap();
    assert_eq!(rx.recv_view().unwrap().text().unwrap(), "owned text");
    let (_other_rx, other_tx) = host.create_channel(1);
    tx.send(other_tx).unwrap();
    assert!(matches!(
        rx.recv_view(),
        Err(subinterp::RecvViewError::NotBytes(_))
    ));
    for s in ["a", "b"] {
        tx.send(s).unwrap();
    }
    tx.close();
    let all: Vec<String> = rx
        .iter()
        .map(|m| m.into_view().unwrap().text().unwrap().to_string())
        .collect();
    assert_eq!(all, ["a", "b"]);
    assert!(matches!(
        rx.recv_view(),
        Err(subinterp::RecvViewError::Closed)
    ));
}

#[test]
fn scripts_call_functions_and_prepare_main_in_their_children() {
    let host = host();
    // Loaded here, outside the script's deadline: the first load on a cold
    // cache compiles and snapshots the Python guest (tens of seconds).
    host.python().expect("make guest builds python.wasm");
    let js = host
        .create_js(Limits::new().with_timeout(Duration::from_secs(60)))
        .unwrap();
    let src = r#"
const w = interpreters.create();
w.run("function add(a, b) { return a + b; } async function later(x) { return {x}; }");
console.log(w.call("add", 40, 2), JSON.stringify(w.call("later", [1, "a"])));
const [r, s] = interpreters.createChannel();
w.prepareMain({ n: 41, cfg: { deep: [1, 2] }, out: s });
w.run("out.send(String(n + cfg.deep.length - 1))").check();
console.log(r.recv().text());
try { w.call("nope"); } catch (e) { console.log(e.name); }
const p = interpreters.create({ lang: "python" });
p.run("def mul(a, b):\n    return {'p': a * b}\n");
console.log(JSON.stringify(p.call("mul", 6, 7)));
p.prepareMain({ k: [1, 2, 3], out: s });
p.run("out.send(str(sum(k)))").check();
console.log(r.recv().text());
"#;
    let r = js.run(Run::js(src)).unwrap().check().unwrap();
    assert_eq!(
        r.stdout_text(),
        "42 {\"x\":[1,\"a\"]}\n42\nTypeError\n{\"p\":42}\n6\n"
    );
}

#[test]
fn a_calls_input_view_is_made_in_c_but_behaves_as_any_view() {
    let host = host();
    let js = host
        .create_js(Limits::new().with_timeout(Duration::from_secs(5)))
        .unwrap();
    js.run(Run::js(
        "function probe(v) {\n\
           const out = [v instanceof interpreters.View, v.length, v.bytes().length, String(v)];\n\
           v.release();\n\
           try { v.bytes(); } catch (e) { out.push(e.name); }\n\
           try { interpreters.View.prototype.bytes.call({}); } catch (e) { out.push(e.name); }\n\
           return JSON.stringify(out);\n\
         }\n\
         function keep(v) { globalThis.kept = v; return v.bytes(); }\n\
         function later() { try { kept.bytes(); return 'readable'; } catch (e) { return e.name; } }",
    ))
    .unwrap()
    .check()
    .unwrap();
    assert_eq!(
        &js.call("probe", "abc").unwrap()[..],
        br#"[true,3,3,"[View 3 bytes]","ChannelReleasedError","ChannelReleasedError"]"#
    );
    assert_eq!(&js.call("keep", "").unwrap()[..], b"");
    // The input belongs to its call: a view of it kept past the call is spent.
    assert_eq!(&js.call("later", "").unwrap()[..], b"ChannelReleasedError");
}

#[test]
fn interpreters_from_files_are_chosen_by_extension_and_run_their_source_first() {
    let host = host();
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let limits = Limits::new().with_timeout(Duration::from_secs(60));
    let build = |p: &std::path::Path| host.interpreter_from_file(p)?.limits(limits).build();
    let js = build(&file("p.js", "function f(v) { return 'js:' + v.text(); }")).unwrap();
    assert_eq!(&js.call("f", "a").unwrap()[..], b"js:a");
    let mjs = build(&file(
        "m.mjs",
        "export function f(v) { return 'mjs:' + v.text(); }",
    ))
    .unwrap();
    assert_eq!(&mjs.call("m.mjs#f", "b").unwrap()[..], b"mjs:b");
    let py = build(&file(
        "p.py",
        "def f(v):\n    return 'py:' + bytes(v).decode()\n",
    ))
    .unwrap();
    assert_eq!(&py.call("f", "c").unwrap()[..], b"py:c");
    let wat = "(module (func (export \"f\") (param i32) (result i32) (i32.const 7)))";
    let wasm = build(&file("w.wat", wat)).unwrap();
    let e = wasm.call("f", "").unwrap_err();
    assert!(matches!(guest_kind(e), ErrorKind::Exit(7)));
    // A source that fails is build's error, and leaves no interpreter behind.
    let before = host.list_all().len();
    let e = build(&file("bad.js", "throw new RangeError('no')")).unwrap_err();
    assert_eq!(
        guest_kind(e),
        ErrorKind::Exception {
            name: "RangeError".into()
        }
    );
    assert_eq!(host.list_all().len(), before);
    let e = build(&dir.path().join("missing.js")).unwrap_err();
    assert!(matches!(e, Error::Io(_)), "{e:?}");
    // `init` on any builder.
    let js = host
        .interpreter(&host.js().unwrap())
        .init(Run::js("globalThis.n = 41"))
        .build()
        .unwrap();
    let n: i64 = js.call_json("eval", "n + 1").unwrap();
    assert_eq!(n, 42);
}
