//! The `subinterp` command line: run a WASI module or a JavaScript file in a
//! fresh sandboxed interpreter.

use std::fmt::Display;
use std::io::{self, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use serde_json::json;
use subinterp::{
    CompileLimits, Error, ErrorKind, GuestError, Host, Limits, OutputMode, Run, RunResult,
};

/// Exit code when a limit (deadline, memory, fuel, output) ended the run.
const EXIT_LIMIT: u8 = 125;
/// Exit code when the guest trapped (as `wasmtime run`: 128 + SIGABRT).
const EXIT_TRAP: u8 = 134;

#[derive(Parser)]
#[command(
    name = "subinterp",
    version,
    about = "Run untrusted WebAssembly in sandboxed interpreters that talk over channels",
    long_about = "subinterp runs each program in its own WebAssembly sandbox: its own memory, \
no files, no network, no environment unless you grant them, and limits on time, memory and \
output. JavaScript runs in QuickJS compiled to wasm, with the `interpreters` API to create \
more interpreters and channels between them.\n\nExamples:\n  \
subinterp run hello.wasm            run a WASI command, print its output\n  \
subinterp run prog.wasm a b         ARGS reach the program as argv[1..]\n  \
subinterp run script.js             run a JavaScript file as the main interpreter\n  \
subinterp run -e 'console.log(1+1)' run JavaScript given on the command line\n  \
subinterp run --json prog.wasm      print the result as one JSON object\n  \
subinterp run --timeout 2s --max-memory 64MiB prog.wasm"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a WASI command module (.wasm or .wat) or a JavaScript file (.js) in a fresh interpreter.
    ///
    /// Exit code: the program's own (for JS: 0 when the script completed, 1 on an uncaught
    /// exception); 134 if it trapped; 125 if a limit stopped it; 1 if it could not be loaded;
    /// 2 for a bad flag.
    ///
    /// If whoever reads stdout goes away early (a broken pipe, as in `| head`), the rest of
    /// the output, the --json result included, is dropped without a message and the exit
    /// code is still the run's. Any other failure to write the --json result (e.g. a full
    /// disk) exits 1 with a message. A closed or failing stderr is ignored.
    Run(RunArgs),
}

#[derive(clap::Args)]
struct RunArgs {
    /// Print the run's result (completion, error, captured stdout/stderr, stats) as one JSON object.
    #[arg(long)]
    json: bool,
    /// Wall-clock limit for the run, e.g. 500ms, 2s, 1.5s, 1m; a bare number is seconds.
    #[arg(long, value_parser = parse_duration, allow_hyphen_values = true)]
    timeout: Option<Duration>,
    /// Memory ceiling, e.g. 64MiB, 1GiB, 65536 (bytes); K, M, G, T are powers of 1024.
    #[arg(long, value_parser = parse_size, allow_hyphen_values = true)]
    max_memory: Option<usize>,
    /// Instruction budget (fuel units).
    #[arg(long, value_parser = parse_fuel, allow_hyphen_values = true)]
    fuel: Option<u64>,
    /// Cap on each of stdout and stderr, e.g. 1MiB.
    #[arg(long, value_parser = parse_size, allow_hyphen_values = true)]
    max_output: Option<usize>,
    /// Grant an environment variable K=V (none is granted by default).
    #[arg(long = "env", value_name = "K=V", value_parser = parse_env)]
    env: Vec<(String, String)>,
    /// Grant a host directory as GUEST (default: the same path), read-only with :ro,
    /// e.g. --dir ./data:/data:ro. No directory is granted by default.
    #[arg(long = "dir", value_name = "HOST[:GUEST][:ro]", value_parser = parse_dir)]
    dirs: Vec<Grant>,
    /// Run this JavaScript source instead of a file.
    #[arg(
        short = 'e',
        long = "eval",
        value_name = "SOURCE",
        conflicts_with = "file"
    )]
    eval: Option<String>,
    /// The module (.wasm, .wat) or script (.js) to run.
    #[arg(required_unless_present = "eval")]
    file: Option<std::path::PathBuf>,
    /// Arguments passed to the program (argv[1..]).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

/// A directory grant from `--dir`.
#[derive(Clone, Debug)]
struct Grant {
    host: std::path::PathBuf,
    guest: String,
    read_only: bool,
}

fn parse_dir(s: &str) -> Result<Grant, String> {
    let (rest, read_only) = match s.strip_suffix(":ro") {
        Some(r) => (r, true),
        None => (s.strip_suffix(":rw").unwrap_or(s), false),
    };
    let (host, guest) = match rest.split_once(':') {
        Some((h, g)) => (h, g),
        None => (rest, rest),
    };
    if host.is_empty() || guest.is_empty() {
        return Err(format!("--dir wants HOST[:GUEST][:ro], got {s:?}"));
    }
    let host = std::path::PathBuf::from(host);
    if !host.is_dir() {
        return Err(format!("{} is not a directory", host.display()));
    }
    Ok(Grant {
        host,
        guest: guest.to_string(),
        read_only,
    })
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("--env wants K=V with a non-empty K, got {s:?}")),
    }
}

fn parse_fuel(s: &str) -> Result<u64, String> {
    s.trim().parse().map_err(|_| {
        format!(
            "fuel is a whole number of units from 0 to {}, got {s:?}",
            u64::MAX
        )
    })
}

/// A duration for `--timeout`: one number and a unit as `humantime` reads
/// them (`500ms`, `2s`, `1.5s`, `1m`, `100us`, `1h`, …), or a bare number of
/// seconds (`0.5`).
fn parse_duration(s: &str) -> Result<Duration, String> {
    let parse = |s: &str| -> Result<Duration, String> {
        let s = s.trim();
        // One term only: humantime also adds up several (`1m 30s`), and
        // panics ("overflow in Duration::new") on a sum that carries past
        // u64::MAX seconds, e.g. `18446744073709551615s 500ms 500ms`.
        if s.chars()
            .skip_while(|c| !c.is_alphabetic())
            .any(|c| c.is_ascii_digit())
        {
            return Err("give one number and one unit".into());
        }
        // humantime wants a unit; a bare number is seconds here.
        let r = if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            humantime::parse_duration(&format!("{s}s"))
        } else {
            humantime::parse_duration(s)
        };
        r.map_err(|e| e.to_string())
    };
    parse(s).map_err(|e| {
        if is_negative(s, |abs| parse(abs).is_ok()) {
            format!("a duration cannot be negative: {s:?}")
        } else {
            format!("not a duration: {s:?}: {e} (try 500ms, 2s or 1m)")
        }
    })
}

/// Sizes: a byte count, or a whole number with a unit, where K, M, G, T, P,
/// E (with or without `i` and `B`, in any case) are powers of 1024: `64MiB`,
/// `1GiB`, `512k`, `65536`.
const SIZE: parse_size::Config = parse_size::Config::new().with_binary();

fn parse_size(s: &str) -> Result<usize, String> {
    if is_negative(s, |abs| SIZE.parse_size(abs).is_ok()) {
        return Err(format!("a size cannot be negative: {s:?}"));
    }
    // parse-size would round a fraction (`1.5GiB`, `1e-3`) to the nearest
    // byte; the CLI takes whole numbers only.
    if s.contains(['.', '-']) {
        return Err(format!("not a size: {s:?} (try 64MiB; whole numbers only)"));
    }
    let bytes = SIZE.parse_size(s.trim()).map_err(|e| match e {
        parse_size::Error::PosOverflow => format!("size too large: {s:?}"),
        _ => format!("not a size: {s:?} (try 64MiB, 1GiB or a byte count)"),
    })?;
    usize::try_from(bytes).map_err(|_| format!("size too large: {s:?}"))
}

/// Whether `s` is a minus sign before what `valid` accepts (`-1s`, `-1`): a
/// negative value, not a typo or another flag.
fn is_negative(s: &str, valid: impl Fn(&str) -> bool) -> bool {
    s.trim().strip_prefix('-').is_some_and(valid)
}

fn main() -> ExitCode {
    // clap prints usage errors and --help itself, ignoring a closed stream.
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => match run(args) {
            Ok(code) => code,
            Err(e) => {
                report(format_args!("subinterp: {e:#}"));
                ExitCode::from(1)
            }
        },
    }
}

/// Writes one line to stderr. Unlike `eprintln!` it never panics: if stderr is
/// closed or failing there is nowhere left to say so, so the error is dropped.
fn report(line: impl Display) {
    let _ = writeln!(io::stderr().lock(), "{line}");
}

/// Writes one line to stdout and flushes it, returning the error `println!`
/// would panic on.
fn write_stdout(line: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(line.as_bytes())?;
    out.write_all(b"\n")?;
    out.flush()
}

fn limits(a: &RunArgs) -> Limits {
    let mut l = Limits::new();
    if let Some(t) = a.timeout {
        l = l.with_timeout(t);
    }
    if let Some(m) = a.max_memory {
        l = l.with_max_memory(m);
    }
    if let Some(f) = a.fuel {
        l = l.with_fuel(f);
    }
    if let Some(o) = a.max_output {
        l = l.with_max_output(o);
    }
    l
}

fn run(a: RunArgs) -> Result<ExitCode> {
    let limits = limits(&a);
    let js_source = match (&a.eval, &a.file) {
        (Some(src), _) => Some(src.clone()),
        (None, Some(f)) if f.extension().is_some_and(|e| e == "js" || e == "mjs") => {
            Some(std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?)
        }
        _ => None,
    };
    // One pool slot per interpreter a script may create, plus its own.
    let slots = if js_source.is_some() {
        u32::try_from(limits.max_interpreters().saturating_add(1)).unwrap_or(u32::MAX)
    } else {
        1
    };
    // Compiling the module is bounded by the run's deadline too.
    let mut compile = CompileLimits::new();
    if let Some(t) = a.timeout {
        compile = compile.with_timeout(t);
    }
    let host = Host::builder()
        .pool_size(slots)
        .fuel(a.fuel.is_some())
        .compile_limits(compile)
        .build()?;
    let (guest, name) = match (&js_source, &a.file) {
        (Some(_), _) => (host.js()?, "script".to_string()),
        (None, Some(file)) => match host.load_file(file) {
            Ok(g) => (g, file.to_string_lossy().into_owned()),
            // Too large, too complex or too slow to compile: a limit.
            Err(Error::Limit(l)) => {
                report(format_args!("subinterp: loading {}: {l}", file.display()));
                return Ok(ExitCode::from(EXIT_LIMIT));
            }
            Err(e) => return Err(e).with_context(|| format!("loading {}", file.display())),
        },
        (None, None) => bail!("nothing to run: give a FILE or -e SOURCE"),
    };
    let (out, err) = if a.json {
        (OutputMode::Capture, OutputMode::Capture)
    } else {
        (OutputMode::Stdout, OutputMode::Stderr)
    };
    let mut b = host
        .interpreter(&guest)
        .limits(limits)
        .args(std::iter::once(name).chain(a.args.iter().cloned()))
        .stdout(out)
        .stderr(err)
        .inherit_stdin(true);
    for d in &a.dirs {
        b = b.dir(&d.host, &d.guest, d.read_only);
    }
    for (k, v) in &a.env {
        b = b.env(k, v);
    }
    let interp = match b.build() {
        Ok(i) => i,
        // The guest's start function or set-up failed or hit a limit: the
        // same report and exit code as a run that did.
        Err(Error::Instantiate(e)) => return guest_failed_to_start(&e, a.json),
        Err(e) => return Err(e.into()),
    };
    let result = match js_source {
        Some(src) => interp.run(Run::js(src))?,
        None => interp.run(Run::start())?,
    };
    if a.json {
        match write_stdout(&to_json(&result).to_string()) {
            Ok(()) => {}
            // The reader went away on purpose (`| head`): the run still happened.
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
            Err(e) => return Err(e).context("writing the result to stdout"),
        }
    } else if let Some(e) = result.error.as_ref().filter(|_| !result.completed)
        && !matches!(e.kind, ErrorKind::Exit(_))
    {
        match &e.kind {
            ErrorKind::Exception { name } => report(format_args!("{name}: {}", e.message)),
            k => report(format_args!("subinterp: {}: {}", k.name(), e.message)),
        }
        if let Some(bt) = &e.backtrace {
            report(bt.trim_end());
        }
    }
    Ok(ExitCode::from(exit_code(&result)))
}

/// Reports a guest whose instantiation failed (its start function trapped
/// or hit a limit) as a failed run is reported.
fn guest_failed_to_start(e: &GuestError, json: bool) -> Result<ExitCode> {
    if json {
        let v = json!({"completed": false, "error": error_json(e), "exit_code": null});
        match write_stdout(&v.to_string()) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
            Err(e) => return Err(e).context("writing the result to stdout"),
        }
    } else {
        report(format_args!(
            "subinterp: the module failed to start: {}: {}",
            e.kind.name(),
            e.message
        ));
    }
    Ok(ExitCode::from(kind_exit_code(&e.kind)))
}

fn exit_code(r: &RunResult) -> u8 {
    match r.error.as_ref().map(|e| &e.kind) {
        None => r.exit_code.unwrap_or(0) as u8,
        Some(k) => kind_exit_code(k),
    }
}

fn kind_exit_code(k: &ErrorKind) -> u8 {
    match k {
        ErrorKind::Exit(c) => *c as u8,
        k if k.is_limit() => EXIT_LIMIT,
        ErrorKind::Exception { .. } => 1,
        _ => EXIT_TRAP,
    }
}

fn error_json(e: &GuestError) -> serde_json::Value {
    let limit = match &e.kind {
        ErrorKind::Timeout { limit } => json!({"timeout_ms": limit.as_secs_f64() * 1e3}),
        ErrorKind::OutOfFuel { limit } => json!({"fuel": limit}),
        ErrorKind::MemoryLimit { limit } => json!({"max_memory": limit}),
        ErrorKind::OutputLimit { limit } => json!({"max_output": limit}),
        _ => serde_json::Value::Null,
    };
    json!({
        "type": e.kind.type_name(),
        "kind": e.kind.name(),
        "message": e.message,
        "stack": e.backtrace,
        "limit": limit,
    })
}

fn to_json(r: &RunResult) -> serde_json::Value {
    let error = r.error.as_ref().map(error_json);
    json!({
        "completed": r.completed,
        "error": error,
        "exit_code": r.exit_code,
        "stdout": String::from_utf8_lossy(&r.stdout),
        "stderr": String::from_utf8_lossy(&r.stderr),
        "wall_ms": r.wall.as_secs_f64() * 1e3,
        "stats": {
            "bytes_copied_out": r.stats.bytes_copied_out,
            "bytes_copied_in": r.stats.bytes_copied_in,
            "buffers_forwarded": r.stats.buffers_forwarded,
            "messages_sent": r.stats.messages_sent,
            "messages_received": r.stats.messages_received,
            "fuel_used": r.stats.fuel_used,
        },
    })
}
