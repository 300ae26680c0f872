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
    /// Wall-clock limit for the run, e.g. 500ms, 2s, 1m.
    #[arg(long, value_parser = parse_duration, allow_hyphen_values = true)]
    timeout: Option<Duration>,
    /// Memory ceiling, e.g. 64MiB, 1GiB, 65536.
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

/// A duration such as `500ms`. The number is digits and at most one `.`, so it is
/// never negative, NaN or written with an exponent; a huge one is "too large".
fn parse_duration(s: &str) -> Result<Duration, String> {
    if is_negative(s) {
        return Err(format!("a duration cannot be negative: {s:?}"));
    }
    let (num, unit) = split_unit(s);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("not a duration: {s:?} (try 500ms or 2s)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" | "" => n,
        "m" => n * 60.0,
        "us" => n / 1e6,
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {s:?}: use us, ms, s or m"
            ));
        }
    };
    // Fails on infinity (a long enough run of digits) and past u64::MAX seconds.
    Duration::try_from_secs_f64(secs).map_err(|_| format!("duration too large: {s:?}"))
}

fn parse_size(s: &str) -> Result<usize, String> {
    if is_negative(s) {
        return Err(format!("a size cannot be negative: {s:?}"));
    }
    let (num, unit) = split_unit(s);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("not a size: {s:?} (try 64MiB; whole numbers only)"))?;
    let mult: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {s:?}: use KiB, MiB or GiB"
            ));
        }
    };
    n.checked_mul(mult)
        .and_then(|v| usize::try_from(v).ok())
        .ok_or_else(|| format!("size too large: {s:?}"))
}

/// Whether `s` looks like a negative number (`-1s`, `-.5`), not another flag.
fn is_negative(s: &str) -> bool {
    s.trim_start()
        .strip_prefix('-')
        .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit() || c == '.'))
}

fn split_unit(s: &str) -> (&str, &str) {
    let s = s.trim();
    let i = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    (&s[..i], s[i..].trim())
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
