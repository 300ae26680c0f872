//! The JS guest's `TextDecoder` and `TextEncoder` (guest/js/encoding.js,
//! encoding.c, and the UTF-8 coder in subinterp_js.c) checked against work
//! written elsewhere: `encoding_rs`, Firefox's implementation of the WHATWG
//! Encoding Standard. No crate packages the web-platform-tests encoding
//! suite, so the check is differential: the label list of encoding_rs's own
//! generated test (`src/test_labels_names.rs`, every label of the
//! standard's `encodings.json`), and random and adversarial byte strings
//! (truncated sequences, overlongs, surrogates in UTF-8, code points past
//! U+10FFFF, lone and paired UTF-16 surrogates, odd lengths, BOMs) decoded
//! whole and in `stream: true` chunks with every `fatal` / `ignoreBOM`
//! setting, compared code unit for code unit.

use std::path::PathBuf;
use std::time::Duration;

use encoding_rs::{CoderResult, DecoderResult, Encoding, UTF_8, UTF_16BE, UTF_16LE, WINDOWS_1252};
use subinterp::{Host, Limits, Run};

use crate::common::{completed, host, subinterp};

/// The encodings the guest decodes, by the names `TextDecoder` reports.
const ENCODINGS: [(&str, &Encoding); 4] = [
    ("utf-8", UTF_8),
    ("utf-16le", UTF_16LE),
    ("utf-16be", UTF_16BE),
    ("windows-1252", WINDOWS_1252),
];

/// Runs `src` in a fresh JS interpreter; its stdout, after insisting it
/// completed.
fn stdout_of(host: &Host, src: &str) -> String {
    let i = host
        .create_js(Limits::new().with_timeout(Duration::from_secs(300)))
        .expect("JS interpreter");
    completed(i.run(Run::js(src)).expect("run")).stdout_text()
}

/// splitmix64, seeded from the clock (the seed is in every failure).
struct Rng(u64);

impl Rng {
    fn new() -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        Rng(seed)
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())]
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A string's UTF-16 code units as hex, the form the guest prints them in.
fn units(s: &str) -> String {
    s.encode_utf16().map(|u| format!("{u:04x}")).collect()
}

/// Bytes at the edges of the encodings' ranges.
const EDGE: &[u8] = &[
    0x00, 0x41, 0x7f, 0x80, 0x81, 0x8d, 0x8f, 0x90, 0x9d, 0x9f, 0xa0, 0xbb, 0xbf, 0xc0, 0xc1, 0xc2,
    0xd8, 0xdb, 0xdc, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xf8, 0xfd, 0xfe, 0xff,
];

/// One piece of (mostly broken) UTF-8.
fn utf8_piece(r: &mut Rng) -> Vec<u8> {
    let cont = |r: &mut Rng| 0x80 + r.below(64) as u8;
    match r.below(9) {
        0 | 1 => {
            let cps = [
                0x41, 0x7f, 0x80, 0x7ff, 0x800, 0xfeff, 0xfffd, 0xffff, 0x10000, 0x10ffff,
            ];
            let c = if r.below(2) == 0 {
                r.pick(&cps)
            } else {
                r.below(0x11_0000) as u32
            };
            char::from_u32(c)
                .unwrap_or('\u{e000}')
                .to_string()
                .into_bytes()
        }
        2 => vec![0xed, 0xa0 + r.below(32) as u8, cont(r)], // a surrogate
        3 => vec![0xc0 + r.below(2) as u8, cont(r)],        // overlong
        4 => vec![0xe0, 0x80 + r.below(32) as u8, cont(r)], // overlong
        5 => vec![0xf0, 0x80 + r.below(16) as u8, cont(r), cont(r)], // overlong
        6 => {
            // past U+10FFFF
            let lead = r.pick(&[0xf4, 0xf5, 0xf7]);
            let second = if lead == 0xf4 {
                0x90 + r.below(48) as u8
            } else {
                cont(r)
            };
            vec![lead, second, cont(r), cont(r)]
        }
        7 => {
            // a valid character of 2 to 4 bytes, cut short
            let c = char::from_u32(0x80 + r.below(0x10_ff80) as u32).unwrap_or('\u{10000}');
            let b = c.to_string().into_bytes();
            let keep = 1 + r.below(b.len() - 1);
            b[..keep].to_vec()
        }
        _ => vec![r.pick(EDGE)],
    }
}

/// One piece of (mostly broken) UTF-16.
fn utf16_piece(r: &mut Rng, be: bool) -> Vec<u8> {
    let unit = |u: u16| if be { u.to_be_bytes() } else { u.to_le_bytes() };
    let us: Vec<u16> = match r.below(8) {
        0 => vec![
            0xd800 + r.below(0x400) as u16,
            0xdc00 + r.below(0x400) as u16,
        ],
        1 => vec![r.pick(&[0xd800, 0xdbff, 0xdc00, 0xdfff])],
        2 => vec![r.pick(&[0xfeff, 0xfffe, 0xfffd, 0xffff, 0x0000])],
        3 => return vec![r.pick(EDGE)], // an odd byte
        _ => vec![r.next() as u16],
    };
    us.into_iter().flat_map(unit).collect()
}

/// A random input of one of several kinds, maybe after a BOM.
fn random_input(r: &mut Rng) -> Vec<u8> {
    let mut b = match r.below(4) {
        0 => vec![],
        1 => vec![0xef, 0xbb, 0xbf],
        2 => vec![0xff, 0xfe],
        _ => vec![0xfe, 0xff],
    };
    if r.below(3) != 0 {
        b.clear();
    }
    let n = r.below(12);
    for _ in 0..n {
        match r.below(5) {
            0 => b.push(r.next() as u8),
            1 => b.push(r.pick(EDGE)),
            2 => b.extend(utf8_piece(r)),
            3 => b.extend(utf16_piece(r, false)),
            _ => b.extend(utf16_piece(r, true)),
        }
    }
    b
}

/// One decoding to compare: options, input and where `stream: true`
/// chunks end (the last chunk, after them, is decoded without `stream`).
struct Case {
    fatal: bool,
    ignore_bom: bool,
    bytes: Vec<u8>,
    cuts: Vec<usize>,
}

/// Every single byte, every pair of edge bytes, and `random` random
/// inputs, each with every option setting and random chunk ends.
fn cases(r: &mut Rng, random: usize) -> Vec<Case> {
    let mut inputs: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b]).collect();
    for &a in EDGE {
        inputs.extend(EDGE.iter().map(|&b| vec![a, b]));
    }
    inputs.extend((0..random).map(|_| random_input(r)));
    let mut out = Vec::new();
    for bytes in inputs {
        for (fatal, ignore_bom) in [(false, false), (false, true), (true, false), (true, true)] {
            let mut cuts: Vec<usize> = (0..r.below(4)).map(|_| r.below(bytes.len() + 1)).collect();
            cuts.sort_unstable();
            out.push(Case {
                fatal,
                ignore_bom,
                bytes: bytes.clone(),
                cuts,
            });
        }
    }
    out
}

/// encoding_rs's decoding of `bytes` in chunks that end at `cuts` (the
/// last one flushes): each chunk's code units, joined by `,`, and whether a
/// fatal decoder failed (on the last chunk given, then `!`).
fn decode_chunks(enc: &'static Encoding, case: &Case, cuts: &[usize]) -> (String, bool) {
    let mut dec = if case.ignore_bom {
        enc.new_decoder_without_bom_handling()
    } else {
        enc.new_decoder_with_bom_removal()
    };
    let mut parts = Vec::new();
    let mut prev = 0;
    for (i, end) in cuts.iter().copied().chain([case.bytes.len()]).enumerate() {
        let last = i == cuts.len();
        let chunk = &case.bytes[prev..end];
        prev = end;
        let mut s = String::with_capacity(dec.max_utf8_buffer_length(chunk.len()).unwrap());
        if case.fatal {
            match dec
                .decode_to_string_without_replacement(chunk, &mut s, last)
                .0
            {
                DecoderResult::InputEmpty => {}
                DecoderResult::Malformed(..) => {
                    parts.push("!".to_string());
                    return (parts.join(","), true);
                }
                DecoderResult::OutputFull => unreachable!("sized by max_utf8_buffer_length"),
            }
        } else {
            let r = dec.decode_to_string(chunk, &mut s, last).0;
            assert_eq!(r, CoderResult::InputEmpty);
        }
        parts.push(units(&s));
    }
    (parts.join(","), false)
}

/// encoding_rs's output for `case`: its chunks (see [`decode_chunks`]);
/// then, without a failure, `|` and the whole input's decoding again.
fn reference(enc: &'static Encoding, case: &Case) -> String {
    let (chunks, failed) = decode_chunks(enc, case, &case.cuts);
    if failed {
        return chunks;
    }
    format!("{chunks}|{}", decode_chunks(enc, case, &[]).0)
}

/// The guest's side of [`reference`], for the cases in `CASES`.
const DECODE_RUNNER: &str = r#"
const unhex = (h) => Uint8Array.from(h.match(/../g) ?? [], (x) => parseInt(x, 16));
const units = (s) => { let o = ""; for (let i = 0; i < s.length; i++) o += s.charCodeAt(i).toString(16).padStart(4, "0"); return o; };
const lines = [];
for (const [fatal, ignoreBOM, h, cuts] of CASES) {
  const b = unhex(h), d = new TextDecoder(ENCODING, { fatal, ignoreBOM }), parts = [];
  let prev = 0, failed = false;
  try {
    for (const cut of cuts) { parts.push(units(d.decode(b.subarray(prev, cut), { stream: true }))); prev = cut; }
    parts.push(units(d.decode(b.subarray(prev))));
  } catch (e) { parts.push(e instanceof TypeError ? "!" : `? ${e}`); failed = true; }
  let line = parts.join(",");
  if (!failed) { try { line += "|" + units(d.decode(b)); } catch (e) { line += e instanceof TypeError ? "|!" : `|? ${e}`; } }
  lines.push(line);
}
console.log(lines.join("\n"));
"#;

/// Decodes `cases` in the guest as `name` and returns the mismatches.
fn mismatches(host: &Host, name: &str, enc: &'static Encoding, cases: &[Case]) -> Vec<String> {
    let list: Vec<String> = cases
        .iter()
        .map(|c| {
            format!(
                "[{},{},\"{}\",{:?}]",
                c.fatal,
                c.ignore_bom,
                hex(&c.bytes),
                c.cuts
            )
        })
        .collect();
    let src = format!(
        "const ENCODING = {name:?};\nconst CASES = [{}];\n{DECODE_RUNNER}",
        list.join(",\n")
    );
    let out = stdout_of(host, &src);
    let got: Vec<&str> = out.lines().collect();
    assert_eq!(got.len(), cases.len(), "{name}: one line per case");
    let mut bad = Vec::new();
    for (case, got) in cases.iter().zip(got) {
        let want = reference(enc, case);
        if got != want {
            bad.push(format!(
                "{name} fatal={} ignoreBOM={} bytes={} cuts={:?}: got {got}, want {want}",
                case.fatal,
                case.ignore_bom,
                hex(&case.bytes),
                case.cuts
            ));
        }
    }
    bad
}

/// The number of random inputs per encoding (beside the 256 single bytes
/// and 900 pairs of edge bytes); each is decoded with 4 option settings.
const RANDOM_INPUTS: usize = 2000;

/// `TextDecoder` for UTF-8, UTF-16LE, UTF-16BE and windows-1252 decodes
/// exactly as encoding_rs does: whole, in `stream: true` chunks, with and
/// without `fatal` and `ignoreBOM`, and again after a stream.
#[test]
fn text_decoder_matches_encoding_rs_on_random_and_adversarial_bytes() {
    let host = host();
    let mut r = Rng::new();
    let seed = r.0;
    let mut total = 0;
    for (name, enc) in ENCODINGS {
        let cases = cases(&mut r, RANDOM_INPUTS);
        total += cases.len();
        let bad = mismatches(&host, name, enc, &cases);
        assert!(
            bad.is_empty(),
            "seed {seed}: {} of {} {name} cases differ from encoding_rs, first: {:#?}",
            bad.len(),
            cases.len(),
            &bad[..bad.len().min(8)]
        );
    }
    assert_eq!(
        total,
        4 * 4 * (256 + EDGE.len() * EDGE.len() + RANDOM_INPUTS)
    );
}

/// The labels of encoding_rs's generated label test, which lists every
/// label of the standard's encodings.json (`make guest` records where
/// cargo put the crate, as it does for ada-url).
fn encoding_rs_labels() -> Vec<String> {
    let out = std::process::Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--offline"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata");
    assert!(out.status.success(), "cargo metadata: {out:?}");
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let manifest = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "encoding_rs")
        .expect("encoding_rs in the dependency graph")["manifest_path"]
        .as_str()
        .unwrap()
        .to_string();
    let file = PathBuf::from(manifest).with_file_name("src/test_labels_names.rs");
    let text = std::fs::read_to_string(&file).expect("encoding_rs's label test");
    text.split("for_label(b\"")
        .skip(1)
        .map(|rest| rest[..rest.find('"').unwrap()].to_string())
        .collect()
}

/// `new TextDecoder(label).encoding` agrees with `Encoding::for_label` for
/// every label of the standard and variants of each (case, ASCII
/// whitespace around it, which is ignored, and other white space and
/// look-alike letters, which are not); a label of an encoding this guest
/// does not decode is a `RangeError`.
#[test]
fn text_decoder_labels_match_encoding_rs() {
    let labels = encoding_rs_labels();
    assert!(labels.len() >= 228, "{} labels", labels.len());
    let mut r = Rng::new();
    let ws = ["\t", "\n", "\x0c", "\r", " "];
    let mut all = Vec::new();
    for l in &labels {
        all.push(l.clone());
        all.push(l.to_uppercase());
        let mixed: String = l
            .chars()
            .map(|c| {
                if r.below(2) == 0 {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect();
        all.push(format!("{}{mixed}{}", r.pick(&ws), r.pick(&ws).repeat(2)));
        all.push(format!("\u{b}{l}")); // a vertical tab is not ASCII whitespace here
        all.push(format!("{l}\u{a0}"));
        all.push(format!("\u{feff}{l}"));
        let lookalike = l.replace('i', "\u{130}").replace('k', "\u{212a}");
        if lookalike != *l {
            all.push(lookalike);
        }
        all.push(format!("{l}x"));
    }
    all.extend(["", "utf-8 x", "utf 8", "utf-7", "replacement", "utf-32"].map(String::from));
    let src = format!(
        "const out = [];\nfor (const l of {}) {{\n  try {{ out.push(new TextDecoder(l).encoding); }}\n  \
         catch (e) {{ out.push(e instanceof RangeError ? '-' : `? ${{e}}`); }}\n}}\n\
         console.log(out.join('\\n'));",
        serde_json::to_string(&all).unwrap()
    );
    let out = stdout_of(&host(), &src);
    let got: Vec<&str> = out.lines().collect();
    assert_eq!(all.len(), 1778, "the README's count");
    assert_eq!(got.len(), all.len());
    let ours = labels
        .iter()
        .filter(|l| {
            ENCODINGS
                .iter()
                .any(|(_, e)| Encoding::for_label(l.as_bytes()) == Some(e))
        })
        .count();
    // The standard gives the four encodings 32 labels.
    assert_eq!(ours, 32, "labels of the four encodings");
    for (label, got) in all.iter().zip(got) {
        let want = match Encoding::for_label(label.as_bytes()) {
            Some(e) => ENCODINGS
                .iter()
                .find(|(_, x)| *x == e)
                .map_or("-", |(n, _)| n),
            None => "-",
        };
        assert_eq!(got, want, "label {label:?}");
    }
}

/// The UTF-16 code units of random strings (lone surrogates included) as
/// a JS string literal.
fn js_string(us: &[u16]) -> String {
    let body: String = us.iter().map(|u| format!("\\u{u:04x}")).collect();
    format!("\"{body}\"")
}

/// `TextEncoder.encode` and `encodeInto` (with every destination size)
/// agree with encoding_rs's UTF-16 to UTF-8 conversions on random strings
/// with lone and paired surrogates.
#[test]
fn text_encoder_matches_encoding_rs() {
    let mut r = Rng::new();
    let seed = r.0;
    let strings: Vec<Vec<u16>> = (0..400)
        .map(|_| {
            (0..r.below(10))
                .map(|_| match r.below(4) {
                    0 => r.pick(&[0xd800, 0xdbff, 0xdc00, 0xdfff, 0x41, 0x7ff, 0xfeff]),
                    1 => 0xd800 + r.below(0x800) as u16,
                    _ => r.next() as u16,
                })
                .collect()
        })
        .collect();
    let list: Vec<String> = strings.iter().map(|s| js_string(s)).collect();
    let src = format!(
        "const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');\n\
         const e = new TextEncoder(), lines = [];\n\
         for (const s of [{}]) {{\n  const parts = [hex(e.encode(s))];\n  \
           for (let n = 0; n <= 3 * s.length + 1; n++) {{ const d = new Uint8Array(n + 1).fill(0xaa);\n    \
             const {{ read, written }} = e.encodeInto(s, d.subarray(0, n)); parts.push(`${{read}}/${{written}}/${{hex(d)}}`); }}\n  \
           lines.push(parts.join(' '));\n}}\nconsole.log(lines.join('\\n'));",
        list.join(",")
    );
    let out = stdout_of(&host(), &src);
    let got: Vec<&str> = out.lines().collect();
    assert_eq!(got.len(), strings.len());
    for (s, got) in strings.iter().zip(got) {
        let mut whole = vec![0u8; 3 * s.len()];
        let n = encoding_rs::mem::convert_utf16_to_utf8(s, &mut whole);
        let mut parts = vec![hex(&whole[..n])];
        for size in 0..=3 * s.len() + 1 {
            let mut d = vec![0xaau8; size + 1];
            let (read, written) =
                encoding_rs::mem::convert_utf16_to_utf8_partial(s, &mut d[..size]);
            parts.push(format!("{read}/{written}/{}", hex(&d)));
        }
        assert_eq!(got, parts.join(" "), "seed {seed}, units {s:04x?}");
    }
}

/// What the differential tests do not reach: the options' types, the
/// streaming state across calls and after a failure, and the classes'
/// names.
#[test]
fn text_decoder_streams_and_checks_its_arguments() {
    let out = stdout_of(
        &host(),
        r#"
const d = new TextDecoder();
const euro = [0xe2, 0x82, 0xac];
console.log(JSON.stringify([d.decode(new Uint8Array([0xef, 0xbb]), { stream: true }),
  d.decode(new Uint8Array([0xbf, 0x41, euro[0]]), { stream: true }), d.decode(new Uint8Array(euro.slice(1)))]));
const le = new TextDecoder("UTF-16", { fatal: true });
console.log(le.encoding, le.fatal, le.ignoreBOM, JSON.stringify(le.decode(new Uint8Array([0x3d, 0xd8]), { stream: true })));
try { le.decode(); } catch (e) { console.log(e.name, e.message); }
console.log(JSON.stringify(le.decode(new Uint8Array([0x41, 0]))));
for (const bad of [() => new TextDecoder("utf-8", 1), () => d.decode(new Uint8Array(1), "x"), () => d.decode("abc"),
                   () => new TextEncoder().encodeInto("a", [0])]) {
  try { bad(); } catch (e) { console.log(e.name); }
}
try { new TextDecoder("shift_jis"); } catch (e) { console.log(e.name, e.message); }
console.log(Object.prototype.toString.call(d), Object.prototype.toString.call(new TextEncoder()), new TextDecoder(undefined, null).encoding);
"#,
    );
    assert_eq!(
        out,
        "[\"\",\"A\",\"€\"]\n\
         utf-16le true false \"\"\n\
         TypeError TextDecoder: the data is not valid utf-16le\n\
         \"A\"\n\
         TypeError\nTypeError\nTypeError\nTypeError\n\
         RangeError TextDecoder: the encoding \"shift_jis\" is not supported\n\
         [object TextDecoder] [object TextEncoder] utf-8\n"
    );
}

/// Through the CLI: a UTF-16 file's bytes decoded by label, BOM removed.
#[test]
fn text_decoder_through_the_cli() {
    let out = subinterp()
        .args([
            "run",
            "-e",
            "const b = new Uint8Array([0xfe, 0xff, 0, 0x68, 0xd8, 0x3d, 0xde, 0x00]);\
             console.log(new TextDecoder(' UnicodeFFFE\\n').decode(b), new TextDecoder('l1').decode(new Uint8Array([0x80, 0xe9])));",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "h\u{1f600} €é\n");
}

/// stdin is read in chunks of 64 KiB: a character cut by a chunk's end is
/// decoded whole (`readLine` and `text`), and one cut by the end of stdin
/// is one U+FFFD.
#[test]
fn stdin_text_keeps_characters_cut_between_chunks() {
    let host = host();
    let mut input = "a".repeat(65535).into_bytes();
    input.extend("é\nü€\n😀".as_bytes());
    let run = |input: &[u8], src: &str| {
        let i = host
            .interpreter(&host.js().unwrap())
            .limits(Limits::new().with_timeout(Duration::from_secs(60)))
            .stdin_bytes(input.to_vec())
            .build()
            .unwrap();
        completed(i.run(Run::js(src)).unwrap()).stdout_text()
    };
    let lines = "const l = []; for (let s; (s = process.stdin.readLine()) !== null;) l.push(s);\n\
                 console.log(l.map((s) => s.length > 9 ? `${s.length}:${s.slice(-2)}` : s).join(' '));";
    assert_eq!(run(&input, lines), "65536:aé ü€ 😀\n");
    let text = "const first = process.stdin.readLine(); console.log(first.length, JSON.stringify(process.stdin.text()));";
    assert_eq!(run(&input, text), "65536 \"ü€\\n😀\"\n");
    let mut cut = input.clone();
    cut.truncate(input.len() - 2);
    assert_eq!(run(&cut, lines), "65536:aé ü€ \u{fffd}\n");
    assert_eq!(
        run(
            &cut[65530..],
            "console.log(JSON.stringify(process.stdin.text()))"
        ),
        "\"aaaaaé\\nü€\\n\u{fffd}\"\n"
    );
}
