//! The command line's arguments: what `subinterp run` accepts, and the
//! parsers for its values (durations, sizes, grants).

use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "subinterp",
    version,
    about = "Run untrusted WebAssembly in sandboxed interpreters that talk over channels",
    long_about = "subinterp runs each program in its own WebAssembly sandbox: its own memory, \
no files, no network, no environment unless you grant them, and limits on time, memory and \
output. JavaScript runs in QuickJS compiled to wasm, with the `interpreters` API to create \
more interpreters and channels between them; Python runs in CPython compiled to wasm.\n\nExamples:\n  \
subinterp run hello.wasm            run a WASI command, print its output\n  \
subinterp run prog.wasm a b         ARGS reach the program as argv[1..]\n  \
subinterp run script.js             run a JavaScript file as the main interpreter\n  \
subinterp run -e 'console.log(1+1)' run JavaScript given on the command line\n  \
subinterp run script.py             run a Python file\n  \
subinterp run --python -e 'print(1+1)'  run Python given on the command line\n  \
subinterp run --json prog.wasm      print the result as one JSON object\n  \
subinterp run --timeout 2s --max-memory 64MiB prog.wasm\n  \
subinterp compile prog.wasm         compile into the cache now, so that runs start at once\n\n\
Compiled code is cached in $XDG_CACHE_HOME/subinterp (else ~/.cache/subinterp): the first run \
of a module, and of each language guest after an install, compiles it (seconds; tens of \
seconds for Python, said on stderr), later runs load it."
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Run a WASI command module (.wasm or .wat), a JavaScript file (.js, .mjs) or a Python
    /// file (.py) in a fresh interpreter.
    ///
    /// Exit code: the program's own (for a script: 0 when it completed, 1 on an uncaught
    /// exception, n for Python's sys.exit(n)); 134 if it trapped; 125 if a limit stopped it;
    /// 1 if it could not be loaded; 2 for a bad flag.
    ///
    /// If whoever reads stdout goes away early (a broken pipe, as in `| head`), the rest of
    /// the output, the --json result included, is dropped without a message and the exit
    /// code is still the run's. Any other failure to write the --json result (e.g. a full
    /// disk) exits 1 with a message. A closed or failing stderr is ignored.
    Run(Box<RunArgs>),
    /// Compile modules (and the language guests, with --js and --python) into the
    /// compiled-code cache, so that later runs load them instead of compiling; prints
    /// each cache file.
    ///
    /// The cache is $XDG_CACHE_HOME/subinterp, else ~/.cache/subinterp; it must be
    /// writable only by you. Exit code: 0 when everything was cached; 125 if a module is
    /// past a compile limit; 1 if one could not be compiled or cached.
    Compile(CompileArgs),
    /// Serve run requests from a NATS JetStream work queue: each runs in a fresh sandboxed
    /// interpreter with limits clamped to this worker's, and its result (the --json object,
    /// with the request's id) is published before the request is acknowledged, so a worker
    /// that dies mid-run leaves the request to another. Runs until killed.
    Worker(WorkerArgs),
}

#[derive(clap::Args)]
pub(crate) struct CompileArgs {
    /// Compile for runs with --fuel (fuel-counting code is compiled, and cached, apart).
    #[arg(long)]
    pub(crate) fuel: bool,
    /// Compile the JavaScript guest too.
    #[arg(long)]
    pub(crate) js: bool,
    /// Compile the Python guest too.
    #[arg(long)]
    pub(crate) python: bool,
    /// Modules (.wasm, .wat) to compile.
    #[arg(required_unless_present_any = ["js", "python"])]
    pub(crate) files: Vec<std::path::PathBuf>,
}

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("server").args(["nats", "sends", "recvs"]).multiple(true)))]
pub(crate) struct RunArgs {
    /// Print the run's result (completion, exit code, error, captured stdout/stderr, stats) as one
    /// JSON object, versioned by its `schema` field (see the README); a bad flag or a file that
    /// cannot be loaded is reported in the same object.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) limits: LimitArgs,
    #[command(flatten)]
    pub(crate) remote: RemoteArgs,
    /// Grant an environment variable K=V (none is granted by default).
    #[arg(long = "env", value_name = "K=V", value_parser = parse_env)]
    pub(crate) env: Vec<(String, String)>,
    /// Grant a host directory as GUEST (default: the same path), read-only with :ro,
    /// e.g. --dir ./data:/data:ro. No directory is granted by default.
    #[arg(long = "dir", value_name = "HOST[:GUEST][:ro]", value_parser = parse_dir)]
    pub(crate) dirs: Vec<Grant>,
    /// Bind a channel to a NATS subject (JetStream) and give the run its sending end as
    /// NAME (`channels.NAME`); another process's --recv on the same subject receives what it
    /// sends, in order. Repeatable. The run's messages are all stored, and the close
    /// published, before this process exits.
    #[arg(long = "send", value_name = "NAME=nats://HOST:PORT/SUBJECT[?capacity=N]", value_parser = crate::channels::parse_binding, conflicts_with = "nats")]
    pub(crate) sends: Vec<crate::channels::Binding>,
    /// Bind a channel to a NATS subject and give the run its receiving end as NAME. A
    /// message is acknowledged when the run releases it, so what a killed process held is
    /// delivered again to the next receiver. Repeatable.
    #[arg(long = "recv", value_name = "NAME=nats://HOST:PORT/SUBJECT[?capacity=N]", value_parser = crate::channels::parse_binding, conflicts_with = "nats")]
    pub(crate) recvs: Vec<crate::channels::Binding>,
    /// Run this source (JavaScript, or Python with --python) instead of a file.
    /// Arguments after it are the program's (`-e SRC a b`: argv is `-e a b`).
    #[arg(short = 'e', long = "eval", value_name = "SOURCE")]
    pub(crate) eval: Option<String>,
    /// Python: the -e source, or FILE whatever its extension, is Python.
    #[arg(long)]
    pub(crate) python: bool,
    /// JavaScript: the -e source, or FILE whatever its extension, is an ES module (as .mjs
    /// files are). A module file's folder is granted read-only to its imports (not to fs).
    #[arg(long, conflicts_with = "python")]
    pub(crate) module: bool,
    /// The module (.wasm, .wat) or script (.js, .mjs, .py) to run.
    #[arg(required_unless_present_any = ["eval", "batch"])]
    pub(crate) file: Option<std::path::PathBuf>,
    /// Arguments passed to the program (argv[1..]).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub(crate) args: Vec<String>,
}

/// The limits of a run (of every run, for `subinterp worker`).
#[derive(clap::Args, Clone, Debug, Default)]
pub(crate) struct LimitArgs {
    /// Wall-clock limit for the run, e.g. 500ms, 2s, 1.5s, 1m; a bare number is seconds.
    #[arg(long, value_parser = parse_duration, allow_hyphen_values = true)]
    pub(crate) timeout: Option<Duration>,
    /// Memory ceiling, e.g. 64MiB, 1GiB, 65536 (bytes); K, M, G, T are powers of 1024.
    #[arg(long, value_parser = parse_size, allow_hyphen_values = true)]
    pub(crate) max_memory: Option<usize>,
    /// Instruction budget (fuel units).
    #[arg(long, value_parser = parse_fuel, allow_hyphen_values = true)]
    pub(crate) fuel: Option<u64>,
    /// Cap on each of stdout and stderr, e.g. 1MiB.
    #[arg(long, value_parser = parse_size, allow_hyphen_values = true)]
    pub(crate) max_output: Option<usize>,
}

/// Where remote runs go: a NATS server with JetStream, and how to log in.
#[derive(clap::Args, Clone, Debug, Default)]
pub(crate) struct RemoteArgs {
    /// Send the run to the workers behind this NATS server (nats://HOST:PORT) instead of
    /// running it here: a script travels in the request; a wasm module goes to the server's
    /// modules bucket under its SHA-256 (once) and the request names that hash.
    #[arg(long, value_name = "URL")]
    pub(crate) nats: Option<String>,
    /// The subject prefix that names the work queue (and its streams) on the server.
    #[arg(long, value_name = "S", default_value = "subinterp", requires = "nats")]
    pub(crate) subject: String,
    /// NATS credentials file (.creds), for --nats, --send and --recv; else
    /// $SUBINTERP_NATS_CREDS, else $SUBINTERP_NATS_USER and $SUBINTERP_NATS_PASSWORD, else none.
    #[arg(long, value_name = "FILE", requires = "server")]
    pub(crate) creds: Option<std::path::PathBuf>,
    /// A remote run's stdin: the bytes of FILE (`-`: this process's stdin, read to its end).
    #[arg(long, value_name = "FILE", requires = "nats")]
    pub(crate) input: Option<std::path::PathBuf>,
    /// Send every request of FILE (JSON lines; `-`: stdin) and print each result as one
    /// JSON line as it finishes, with progress on stderr when it is a terminal and a summary
    /// at the end. Exit code: 0 when every run exited 0, else 1 (2: a bad line; nothing sent).
    #[arg(long, value_name = "FILE", requires = "nats", conflicts_with_all = ["eval", "file", "input"])]
    pub(crate) batch: Option<std::path::PathBuf>,
}

#[derive(clap::Args)]
pub(crate) struct WorkerArgs {
    /// The NATS server (nats://HOST:PORT) whose work queue this worker serves.
    #[arg(long, value_name = "URL")]
    pub(crate) nats: String,
    /// The subject prefix that names the work queue (and its streams) on the server.
    #[arg(long, value_name = "S", default_value = "subinterp")]
    pub(crate) subject: String,
    /// NATS credentials file (.creds); else $SUBINTERP_NATS_CREDS, else
    /// $SUBINTERP_NATS_USER and $SUBINTERP_NATS_PASSWORD, else none.
    #[arg(long, value_name = "FILE")]
    pub(crate) creds: Option<std::path::PathBuf>,
    /// Runs at once.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub(crate) concurrency: u32,
    /// The largest wasm module a request may name (larger: a compile_limit result).
    #[arg(long, value_name = "SIZE", default_value = "8MiB", value_parser = parse_size)]
    pub(crate) max_module: usize,
    /// How long fetching a request's wasm module may take before it counts as a failure
    /// that may pass (the request is handed back, and answered with a load error after 5).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub(crate) fetch_timeout: Duration,
    /// The ceilings of every run: a request's own limits are clamped to these.
    #[command(flatten)]
    pub(crate) limits: LimitArgs,
}

impl LimitArgs {
    /// The library's limits: these where given, the defaults elsewhere.
    pub(crate) fn to_limits(&self) -> subinterp::Limits {
        let mut l = subinterp::Limits::new();
        if let Some(t) = self.timeout {
            l = l.with_timeout(t);
        }
        if let Some(m) = self.max_memory {
            l = l.with_max_memory(m);
        }
        if let Some(f) = self.fuel {
            l = l.with_fuel(f);
        }
        if let Some(o) = self.max_output {
            l = l.with_max_output(o);
        }
        l
    }
}

impl RunArgs {
    /// With `-e`, what the parser took for FILE is the first argument.
    pub(crate) fn normalized(mut self) -> Self {
        if self.eval.is_some()
            && let Some(f) = self.file.take()
        {
            self.args.insert(0, f.to_string_lossy().into_owned());
        }
        self
    }
}

/// A directory grant from `--dir`.
#[derive(Clone, Debug)]
pub(crate) struct Grant {
    pub(crate) host: std::path::PathBuf,
    pub(crate) guest: String,
    pub(crate) read_only: bool,
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
