//! The JS guest's web-standard globals (guest/js/web.js, url.c, sha.c) and
//! its console (guest/js/console.js): behaviour tests, and conformance
//! checks against suites written elsewhere — the web-platform-tests URL data
//! that the pinned `ada-url` crate carries, and digests from the `sha2` and
//! `sha1` crates.

use std::path::PathBuf;
use std::time::Duration;

use sha2::Digest;
use subinterp::{Host, Interpreter, Limits, Run, RunResult};

use crate::common::{host, subinterp};

fn js(host: &Host) -> Interpreter {
    host.create_js(Limits::new().with_timeout(Duration::from_secs(120)))
        .expect("JS interpreter")
}

/// Runs `src` in a fresh JS interpreter and insists it completed.
fn ok(host: &Host, src: &str) -> RunResult {
    crate::common::completed(js(host).run(Run::js(src)).expect("run"))
}

/// The web-platform-tests folder of the pinned ada-url crate (`make guest`
/// records where cargo put it).
fn wpt_dir() -> PathBuf {
    let rec = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/guest/js/ada-dir");
    let dir = std::fs::read_to_string(&rec).expect("target/guest/js/ada-dir: run `make guest`");
    PathBuf::from(dir.trim()).join("tests/wpt")
}

/// The JS that runs urltestdata.json's cases (in `DATA`) and prints
/// `{passed, failed: [...]}`, as WPT's url-constructor.any.js and
/// url-origin.any.js check them.
const URL_RUNNER: &str = r#"
const parts = ["href", "protocol", "username", "password", "host", "hostname", "port", "pathname", "search", "hash"];
let passed = 0; const failed = [];
for (const t of DATA) {
  if (typeof t === "string") continue;
  const name = `${JSON.stringify(t.input)} against ${JSON.stringify(t.base)}`;
  let u = null, err = null;
  try { u = t.base === null ? new URL(t.input) : new URL(t.input, t.base); } catch (e) { err = e; }
  const why = [];
  if (t.failure) {
    if (!(err instanceof TypeError)) why.push("parsed, should fail");
    if (URL.canParse(t.input, t.base ?? undefined)) why.push("canParse is true");
  } else if (err) {
    why.push(`threw ${err}`);
  } else {
    for (const p of parts) if (u[p] !== t[p]) why.push(`${p}: ${JSON.stringify(u[p])} != ${JSON.stringify(t[p])}`);
    if ("origin" in t && u.origin !== t.origin) why.push(`origin: ${u.origin} != ${t.origin}`);
    if (u.searchParams.toString() !== (t.searchParams ?? new URLSearchParams(t.search).toString())) why.push("searchParams");
  }
  if (why.length) failed.push(`${name}: ${why.join("; ")}`); else passed++;
}
console.log(JSON.stringify({ passed, failed }));
"#;

fn run_json_suite(runner: &str, data: &str) -> (u64, Vec<String>) {
    let host = host();
    let src = format!("const DATA = {data};\n{runner}");
    let r = ok(&host, &src);
    let v: serde_json::Value = serde_json::from_str(r.stdout_text().trim()).expect("runner output");
    let failed = v["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect();
    (v["passed"].as_u64().unwrap(), failed)
}

/// WHATWG URL parsing: every case of web-platform-tests' urltestdata.json.
#[test]
fn url_passes_the_wpt_urltestdata_suite() {
    let data = std::fs::read_to_string(wpt_dir().join("urltestdata.json")).unwrap();
    let cases = serde_json::from_str::<Vec<serde_json::Value>>(&data)
        .unwrap()
        .iter()
        .filter(|c| c.is_object())
        .count() as u64;
    let (passed, failed) = run_json_suite(URL_RUNNER, &data);
    eprintln!("urltestdata.json: {passed} of {cases} passed");
    assert!(
        failed.is_empty(),
        "{} failed:\n  {}",
        failed.len(),
        failed.join("\n  ")
    );
    assert_eq!(passed, cases);
}

/// The JS that runs setters_tests.json ({setter: [cases]}) as WPT's
/// url-setters.any.js does, for URL.
const SETTERS_RUNNER: &str = r#"
let passed = 0; const failed = [];
for (const [setter, cases] of Object.entries(DATA)) {
  if (setter === "comment") continue;
  for (const t of cases) {
    const u = new URL(t.href);
    u[setter] = t.new_value;
    const why = [];
    for (const [k, want] of Object.entries(t.expected)) if (u[k] !== want) why.push(`${k}: ${JSON.stringify(u[k])} != ${JSON.stringify(want)}`);
    if (why.length) failed.push(`${t.href} .${setter} = ${JSON.stringify(t.new_value)}: ${why.join("; ")}`); else passed++;
  }
}
console.log(JSON.stringify({ passed, failed }));
"#;

/// WHATWG URL setters: every case of web-platform-tests' setters_tests.json.
#[test]
fn url_setters_pass_the_wpt_setters_suite() {
    let data = std::fs::read_to_string(wpt_dir().join("setters_tests.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&data).unwrap();
    let cases: u64 = v
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| *k != "comment")
        .map(|(_, c)| c.as_array().unwrap().len() as u64)
        .sum();
    let (passed, failed) = run_json_suite(SETTERS_RUNNER, &data);
    eprintln!("setters_tests.json: {passed} of {cases} passed");
    assert!(
        failed.is_empty(),
        "{} failed:\n  {}",
        failed.len(),
        failed.join("\n  ")
    );
    assert_eq!(passed, cases);
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// crypto.subtle.digest against the `sha1` and `sha2` crates, on random
/// inputs of every length around the block sizes (and a few long ones).
#[test]
fn subtle_digest_matches_the_sha_crates_on_random_inputs() {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let mut state = seed;
    let mut next = || {
        // splitmix64
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) as u8
    };
    let mut lens: Vec<usize> = (0..=260).collect();
    lens.extend([1000, 4096, 65_537, 200_003]);
    let inputs: Vec<Vec<u8>> = lens
        .iter()
        .map(|&n| (0..n).map(|_| next()).collect())
        .collect();
    let list = inputs
        .iter()
        .map(|i| format!("\"{}\"", hex(i)))
        .collect::<Vec<_>>();
    let src = format!(
        "const inputs = [{}];\n\
         const unhex = (h) => Uint8Array.from(h.match(/../g) ?? [], (x) => parseInt(x, 16));\n\
         const hex = (b) => Array.from(new Uint8Array(b), (x) => x.toString(16).padStart(2, '0')).join('');\n\
         (async () => {{ for (const h of inputs) {{ const d = unhex(h); const out = [];\n\
           for (const a of ['SHA-1', 'SHA-256', 'SHA-384', 'SHA-512']) out.push(hex(await crypto.subtle.digest(a, d)));\n\
           console.log(out.join(' ')); }} }})();",
        list.join(",")
    );
    let r = ok(&host(), &src);
    let lines: Vec<String> = r.stdout_text().lines().map(String::from).collect();
    assert_eq!(lines.len(), inputs.len());
    for (input, line) in inputs.iter().zip(&lines) {
        let want = [
            hex(&sha1::Sha1::digest(input)),
            hex(&sha2::Sha256::digest(input)),
            hex(&sha2::Sha384::digest(input)),
            hex(&sha2::Sha512::digest(input)),
        ]
        .join(" ");
        assert_eq!(line, &want, "seed {seed}, input of {} bytes", input.len());
    }
}

#[test]
fn subtle_digest_accepts_views_and_names_and_rejects_others() {
    let r = ok(
        &host(),
        r#"
const hex = (b) => Array.from(new Uint8Array(b), (x) => x.toString(16).padStart(2, '0')).join('');
(async () => {
  const p = crypto.subtle.digest("sha-256", new TextEncoder().encode("abc"));
  console.log(p instanceof Promise, (await p) instanceof ArrayBuffer);
  const big = new Uint8Array([0, 97, 98, 99, 0]);
  console.log(hex(await crypto.subtle.digest({ name: "SHA-1" }, new DataView(big.buffer, 1, 3))));
  for (const [alg, data] of [["MD5", new Uint8Array(1)], ["SHA-256", "abc"]]) {
    try { await crypto.subtle.digest(alg, data); console.log("resolved"); } catch (e) { console.log(e.name); }
  }
  console.log(Object.isFrozen(crypto), typeof crypto.getRandomValues, typeof crypto.randomUUID);
})();
"#,
    );
    assert_eq!(
        r.stdout_text(),
        "true true\na9993e364706816aba3e25717850c26c9cd0d89d\nNotSupportedError\nTypeError\ntrue function function\n"
    );
}

#[test]
fn url_and_search_params_stay_in_step() {
    let r = ok(
        &host(),
        r#"
const u = new URL("../b/./c?x=1&y=%20z#frag", "https://user:pw@EXAMPLE.com:443/a/d");
console.log(u.href, u.origin, u.host, u.port === "", u.pathname);
console.log(u.searchParams.get("y"), [...u.searchParams.keys()].join(","));
u.searchParams.append("k", "a b&c");
console.log(u.search);
u.search = "?q=1";
console.log(u.searchParams.get("q"), u.searchParams.has("x"));
u.searchParams.delete("q");
console.log(u.href);
u.hostname = "example.org"; u.port = "8080"; u.hash = "";
console.log(String(u), JSON.stringify({ u }));
try { new URL("no scheme"); } catch (e) { console.log(e.name); }
console.log(URL.canParse("http://x"), URL.canParse("nope"), URL.parse("nope"));
const p = new URLSearchParams({ b: "2", a: "1" }); p.sort();
console.log(p.toString(), p.size, new URLSearchParams([["x", "1"], ["x", "2"]]).getAll("x").join());
console.log(new URL("http://münchen.de/ä").href, new URL("http://[::1]:80/").host);
"#,
    );
    assert_eq!(
        r.stdout_text(),
        "https://user:pw@example.com/b/c?x=1&y=%20z#frag https://example.com example.com true /b/c\n\
         \u{20}z x,y\n\
         ?x=1&y=+z&k=a+b%26c\n\
         1 false\n\
         https://user:pw@example.com/b/c#frag\n\
         https://user:pw@example.org:8080/b/c {\"u\":\"https://user:pw@example.org:8080/b/c\"}\n\
         TypeError\n\
         true false null\n\
         a=1&b=2 2 1,2\n\
         http://xn--mnchen-3ya.de/%C3%A4 [::1]\n"
    );
}

#[test]
fn abort_controller_event_target_and_events() {
    let r = ok(
        &host(),
        r#"
const t = new EventTarget(); const seen = [];
const h = (e) => seen.push(`${e.type}:${e.target === t}:${e.eventPhase}`);
t.addEventListener("ping", h);
t.addEventListener("ping", h); // the same listener once
t.addEventListener("ping", { handleEvent(e) { seen.push("obj"); } }, { once: true });
t.dispatchEvent(new Event("ping")); t.dispatchEvent(new Event("ping"));
t.removeEventListener("ping", h);
t.dispatchEvent(new Event("ping"));
console.log(seen.join(" "));
const c = new Event("c", { cancelable: true });
t.addEventListener("c", (e) => e.preventDefault());
console.log(t.dispatchEvent(c), c.defaultPrevented, new CustomEvent("x", { detail: 7 }).detail);
const ac = new AbortController(); const order = [];
ac.signal.onabort = () => order.push("onabort");
ac.signal.addEventListener("abort", (e) => order.push(`listener:${e.type}`));
const gone = new AbortController();
t.addEventListener("late", () => order.push("never"), { signal: gone.signal });
gone.abort(); t.dispatchEvent(new Event("late"));
console.log(ac.signal.aborted); ac.abort(); ac.abort();
console.log(ac.signal.aborted, ac.signal.reason.name, ac.signal.reason instanceof DOMException, order.join(","));
try { ac.signal.throwIfAborted(); } catch (e) { console.log("threw", e.name, e.code); }
console.log(AbortSignal.abort("why").reason, AbortSignal.any([new AbortController().signal, AbortSignal.abort(1)]).reason);
try { new AbortSignal(); } catch (e) { console.log(e.name); }
console.log(ac.signal instanceof EventTarget, Object.prototype.toString.call(ac.signal));
"#,
    );
    assert_eq!(
        r.stdout_text(),
        "ping:true:2 obj ping:true:2\n\
         false true 7\n\
         false\n\
         true AbortError true onabort,listener:abort\n\
         threw AbortError 20\n\
         why 1\n\
         TypeError\n\
         true [object AbortSignal]\n"
    );
}

#[test]
fn blob_holds_bytes_slices_and_reads_them() {
    let r = ok(
        &host(),
        r#"
(async () => {
  const b = new Blob(["héllo ", new Uint8Array([119, 111]), new Blob(["rld"])], { type: "Text/Plain" });
  console.log(b.size, b.type, await b.text());
  const s = b.slice(-5, -1, "x/y");
  console.log(s.size, s.type, await s.text(), new Uint8Array(await s.arrayBuffer()).join(","));
  console.log(b.slice(3).size, b.slice(100).size, (await b.bytes()).length, new Blob().size);
  try { new Blob("not a list"); } catch (e) { console.log(e.name); }
})();
"#,
    );
    assert_eq!(
        r.stdout_text(),
        "12 text/plain héllo world\n4 x/y worl 119,111,114,108\n9 0 12 0\nTypeError\n"
    );
}

/// console.log and friends lay values out as Node's util.inspect does: the
/// expected text is what Node 20 printed for the same script.
#[test]
fn console_formats_values_as_node_does() {
    let r = ok(&host(), include_str!("console_inspect.js"));
    assert_eq!(r.stdout_text(), NODE_OUTPUT);
}

/// What `node tests/it/console_inspect.js` printed (Node v20.20.2).
const NODE_OUTPUT: &str = r#"Map(2) { 'a' => 1, 'b' => [ 1, 2 ] } Set(2) { 'x', 2 }
Point { x: 1, y: 2 } [ Point { x: 0, y: 0 } ] { p: { q: { r: [Object] } } }
<ref *1> { name: 'root', kids: [ { parent: [Circular *1] } ] }
[Function: named] [Function (anonymous)] [class Foo] [Function: max]
[ 1, 'two', [ 3, [ 4, [Array] ] ] ] { s: "it's", n: null, u: undefined, b: 10n, z: -0 }
Uint8Array(3) [ 1, 2, 3 ] [
   0,  3,  6,  9, 12, 15, 18, 21, 24,
  27, 30, 33, 36, 39, 42, 45, 48, 51,
  54, 57, 60, 63, 66, 69, 72, 75, 78,
  81, 84, 87
]
Bob is 42.5 years and 7% extra
[ <1 empty item>, 1, <2 empty items>, 2 ] [Object: null prototype] {} { 'a-b': 1, [Symbol(s)]: 2 }
{
  long: 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',
  other: 'yyyyyyyyyyyyyyyyyyyyyyyyyyyyyy'
}
{ a: [Object] }
default: 1
default: 2
x: 1
default: 1
outer
  in
  two
    deeper
out
┌─────────┬───┬─────┬──────┐
│ (index) │ a │ b   │ c    │
├─────────┼───┼─────┼──────┤
│ 0       │ 1 │ 'x' │      │
│ 1       │ 2 │     │ true │
└─────────┴───┴─────┴──────┘
┌─────────┬────────┐
│ (index) │ Values │
├─────────┼────────┤
│ r1      │ 5      │
│ r2      │ 'v'    │
└─────────┴────────┘
┌─────────┬───┬───┐
│ (index) │ 0 │ 1 │
├─────────┼───┼───┤
│ 0       │ 1 │ 2 │
│ 1       │ 3 │ 4 │
└─────────┴───┴───┘
top-level [ WeakMap { <items unknown> } ] Promise { 4 } Promise { <pending> }
URL {
  href: 'https://u:p@example.com:8080/a/b?x=1#h',
  origin: 'https://example.com:8080',
  protocol: 'https:',
  username: 'u',
  password: 'p',
  host: 'example.com:8080',
  hostname: 'example.com',
  port: '8080',
  pathname: '/a/b',
  search: '?x=1',
  searchParams: URLSearchParams { 'x' => '1' },
  hash: '#h'
}
"#;

#[test]
fn console_assert_trace_time_and_dir_options() {
    let r = ok(
        &host(),
        r#"
function inner() { console.trace("here %d", 1); }
inner();
console.assert(1 === 1, "not shown");
console.assert(false, "shown", { a: 1 });
console.assert(0);
console.time("t"); console.timeLog("t", "mid"); console.timeEnd("t"); console.timeEnd("t");
console.dir({ a: { b: { c: { d: 1 } } } }, { depth: null });
console.error(new Map([[1, 2]]));
"#,
    );
    let err = r.stderr_text();
    let mut lines = err.lines();
    assert_eq!(lines.next(), Some("Trace: here 1"));
    assert!(lines.next().unwrap().contains("at inner"), "{err}");
    assert!(
        err.contains("\nAssertion failed: shown { a: 1 }\nAssertion failed\n"),
        "{err}"
    );
    assert!(!err.contains("not shown"), "{err}");
    assert!(
        err.contains("Warning: No such label 't' for console.timeEnd()\n"),
        "{err}"
    );
    assert!(err.ends_with("Map(1) { 1 => 2 }\n"), "{err}");
    let out = r.stdout_text();
    let mut lines = out.lines();
    let mid = lines.next().unwrap();
    assert!(mid.starts_with("t: ") && mid.ends_with("ms mid"), "{out}");
    let end = lines.next().unwrap();
    assert!(end.starts_with("t: ") && end.ends_with("ms"), "{out}");
    // Four levels deep is too deep for one line (as in Node).
    assert_eq!(
        lines.collect::<Vec<_>>(),
        ["{", "  a: { b: { c: { d: 1 } } }", "}"]
    );
}

#[test]
fn console_shows_errors_with_their_stack_and_nested_errors_indented() {
    let r = ok(
        &host(),
        "function f() { return new TypeError('bad'); }\n\
         const e = f(); console.log(e); console.log({ e });\n\
         const plain = new RangeError('r'); plain.stack = ''; plain.code = 'E1'; console.log(plain);",
    );
    let out = r.stdout_text();
    assert!(out.starts_with("TypeError: bad\n    at f ("), "{out}");
    assert!(
        out.contains("{\n  e: TypeError: bad\n      at f ("),
        "{out}"
    );
    assert!(out.ends_with("[RangeError: r] { code: 'E1' }\n"), "{out}");
}

/// The globals this guest defines beyond a bare QuickJS-ng context are
/// the documented ones: no helper leaks onto globalThis.
#[test]
fn only_documented_names_are_added_to_the_global_object() {
    let r = ok(
        &host(),
        "console.log(Object.getOwnPropertyNames(globalThis).sort().join(' '))",
    );
    let names: Vec<String> = r
        .stdout_text()
        .split_whitespace()
        .map(String::from)
        .collect();
    for n in [
        "URL",
        "URLSearchParams",
        "Blob",
        "Event",
        "EventTarget",
        "CustomEvent",
        "AbortController",
        "AbortSignal",
        "DOMException",
        "reportError",
        "console",
        "crypto",
    ] {
        assert!(names.iter().any(|x| x == n), "{n} missing from {names:?}");
    }
    for bad in [
        "web", "si", "inspect", "format", "table", "def", "tag", "PART", "ALGS", "subtle",
    ] {
        assert!(
            !names.iter().any(|x| x == bad),
            "{bad} leaked onto globalThis"
        );
    }
}

#[test]
fn web_globals_through_the_cli() {
    let out = subinterp()
        .args([
            "run",
            "-e",
            "const u = new URL('https://a.example/p?q=1'); u.searchParams.set('q', 'x y');\
             console.log(u.href, new Map([[u.host, [1]]]));\
             crypto.subtle.digest('SHA-256', new Uint8Array()).then((d) => console.log(new Uint8Array(d)[0]));",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "https://a.example/p?q=x+y Map(1) { 'a.example' => [ 1 ] }\n227\n"
    );
}

/// An error's `cause` and an AggregateError's `errors`, which are not
/// enumerable, are shown as Node shows them (`[cause]`, `[errors]`; this
/// is what Node v20.20.2 printed for the same script).
#[test]
fn console_shows_cause_and_aggregate_errors_as_node_does() {
    let r = ok(
        &host(),
        r#"
const e = new AggregateError([new Error("a"), 1, "s"], "many");
e.stack = "AggregateError: many\n    at x (f.js:1:1)";
e.errors[0].stack = "Error: a\n    at y (f.js:2:2)";
console.log(e);
console.log({ k: e });
const f = new AggregateError([], "none"); f.stack = "AggregateError: none\n    at z";
console.log(f);
const g = new Error("c", { cause: 1 }); g.stack = "Error: c\n    at q"; console.log(g);
"#,
    );
    assert_eq!(
        r.stdout_text(),
        "AggregateError: many\n    at x (f.js:1:1) {\n  [errors]: [\n    Error: a\n        at y (f.js:2:2),\n    1,\n    's'\n  ]\n}\n\
         {\n  k: AggregateError: many\n      at x (f.js:1:1) {\n    [errors]: [\n      Error: a\n          at y (f.js:2:2),\n      1,\n      's'\n    ]\n  }\n}\n\
         AggregateError: none\n    at z {\n  [errors]: []\n}\n\
         Error: c\n    at q {\n  [cause]: 1\n}\n"
    );
}

/// Past the depth limit, Node still shows a value whose base says it all
/// (an error's stack, a function, RegExp, Date, boxed primitive) when it
/// has no keys to show (Node v20.20.2's output).
#[test]
fn console_shows_bare_values_past_the_depth_limit_as_node_does() {
    let r = ok(
        &host(),
        r#"
const e = new Error("x"); e.stack = "Error: x\n    at q";
console.log({ a: { b: { c: e, f: function f() {}, r: /x/g, d: new Date(0), n: new Number(3), m: new Map(), s: "s" } } });
const c = new Error("y", { cause: e }); c.stack = "Error: y\n    at w";
console.log({ a: { b: { c } } });
"#,
    );
    assert_eq!(
        r.stdout_text(),
        "{\n  a: {\n    b: {\n      c: Error: x\n          at q,\n      f: [Function: f],\n      r: /x/g,\n      \
         d: 1970-01-01T00:00:00.000Z,\n      n: [Number: 3],\n      m: Map(0) {},\n      s: 's'\n    }\n  }\n}\n\
         { a: { b: { c: [Error] } } }\n"
    );
}
