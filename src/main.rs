//! The `subinterp` command line: run a WASI module or a JavaScript or
//! Python file in a fresh sandboxed interpreter (`subinterp run`), or
//! compile modules into the compiled-code cache ahead of time
//! (`subinterp compile`).

#[path = "cli/args.rs"]
mod args;
#[path = "cli/batch.rs"]
mod batch;
#[path = "cli/channels.rs"]
mod channels;
#[path = "cli/fetch.rs"]
mod fetch;
#[path = "cli/remote.rs"]
mod remote;
#[path = "cli/report.rs"]
mod report;
#[path = "cli/worker.rs"]
mod worker;

use std::io;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Parser;
use serde_json::Value;
use subinterp::{
    CompileLimits, Error, ErrorKind, Guest, Host, Interpreter, Language, Limits, OutputMode, Run,
    RunResult,
};

use self::args::{Cli, Command, CompileArgs, RunArgs};
use self::report::{
    EXIT_LIMIT, EXIT_USAGE, compile_limit_json, exit_code, failure_json, guest_failed_to_start,
    print_json, report, to_json, write_stdout,
};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let json = matches!(&cli.command, Command::Run(a) if a.json);
    match cli.command {
        Command::Run(args) => run(*args),
        Command::Compile(args) => compile(args),
        Command::Worker(args) => worker::worker(args),
    }
    .unwrap_or_else(|e| {
        if json {
            let v = failure_json("LoadError", "load", &format!("{e:#}"), Value::Null, 1);
            if print_json(&v).is_ok() {
                return ExitCode::from(1);
            }
        }
        report(format_args!("subinterp: {e:#}"));
        ExitCode::from(1)
    })
}

/// A bad flag or argument: clap's message on stderr (it prints --help and
/// --version itself, ignoring a closed stream), or, when `--json` was asked
/// for, the `--json` failure object on stdout. Exit code 2.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind as K;
    let wants_json = std::env::args_os()
        .skip(1)
        .take_while(|a| a != "--")
        .any(|a| a == "--json");
    if !wants_json || matches!(e.kind(), K::DisplayHelp | K::DisplayVersion) {
        e.exit();
    }
    let text = e.render().to_string();
    let message = text.lines().next().unwrap_or_default();
    let message = message.strip_prefix("error: ").unwrap_or(message);
    let v = failure_json("UsageError", "usage", message, Value::Null, EXIT_USAGE);
    if print_json(&v).is_err() {
        e.exit();
    }
    ExitCode::from(EXIT_USAGE)
}

/// The script `subinterp run` was given, if it was one: its language and
/// source (from `-e`, or a `.js`/`.mjs`/`.py` file; `--python` makes either
/// Python). `None`: a module file.
fn script(a: &RunArgs) -> Result<Option<(Language, String)>> {
    let ext = a
        .file
        .as_ref()
        .and_then(|f| f.extension())
        .and_then(|e| e.to_str());
    let language = match (a.python, &a.eval, ext) {
        (true, _, _) | (false, None, Some("py")) => Language::Python,
        _ if a.module => Language::JavaScript,
        (false, Some(_), _) | (false, None, Some("js" | "mjs")) => Language::JavaScript,
        _ => return Ok(None),
    };
    let source = match (&a.eval, &a.file) {
        (Some(src), _) => src.clone(),
        (None, Some(f)) => {
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?
        }
        (None, None) => bail!("nothing to run: give a FILE or -e SOURCE"),
    };
    Ok(Some((language, source)))
}

/// A host for one run: one pool slot per interpreter a script may create,
/// plus its own; compiling bounded by the run's deadline too.
fn host_for(a: &RunArgs, limits: &Limits, script: bool) -> Result<Host> {
    let slots = if script {
        u32::try_from(limits.max_interpreters().saturating_add(1)).unwrap_or(u32::MAX)
    } else {
        1
    };
    let mut compile = CompileLimits::new();
    if let Some(t) = a.limits.timeout {
        compile = compile.with_timeout(t);
    }
    Ok(Host::builder()
        .pool_size(slots)
        .fuel(a.limits.fuel.is_some())
        .compile_limits(compile)
        .compile_notices(true)
        .build()?)
}

/// The guest to run and its argv[0]; `Err(code)` when loading the module
/// hit a compile limit (reported already).
fn load(
    host: &Host,
    a: &RunArgs,
    language: Option<Language>,
) -> Result<Result<(Guest, String), ExitCode>> {
    if let Some(language) = language {
        let name = match &a.file {
            Some(f) => f.to_string_lossy().into_owned(),
            None => "-e".to_string(),
        };
        return Ok(Ok((host.language_guest(language)?, name)));
    }
    match &a.file {
        Some(file) => match host.load_file_cached(file) {
            Ok(g) => Ok(Ok((g, file.to_string_lossy().into_owned()))),
            // Too large, too complex or too slow to compile: a limit.
            Err(Error::Limit(l)) => {
                let message = format!("loading {}: {l}", file.display());
                if a.json {
                    let limit = compile_limit_json(&l);
                    print_json(&failure_json(
                        "LimitError",
                        "compile_limit",
                        &message,
                        limit,
                        EXIT_LIMIT,
                    ))?;
                } else {
                    report(format_args!("subinterp: {message}"));
                }
                Ok(Err(ExitCode::from(EXIT_LIMIT)))
            }
            Err(e) => Err(e).with_context(|| format!("loading {}", file.display())),
        },
        None => bail!("nothing to run: give a FILE or -e SOURCE"),
    }
}

/// The interpreter, with the run's limits, argv, streams and grants.
fn interpreter(
    host: &Host,
    guest: &Guest,
    name: String,
    a: &RunArgs,
    limits: Limits,
) -> Result<Interpreter, Error> {
    let (out, err) = if a.json {
        (OutputMode::Capture, OutputMode::Capture)
    } else {
        (OutputMode::Stdout, OutputMode::Stderr)
    };
    let mut b = host
        .interpreter(guest)
        .limits(limits)
        .args(std::iter::once(name).chain(a.args.iter().cloned()))
        .stdout(out)
        .stderr(err)
        .inherit_stdin(true);
    for d in &a.dirs {
        b = b.dir(&d.host, &d.guest, d.read_only);
    }
    // A module file's imports come from its folder, read-only.
    if let Some(folder) = module_folder(a) {
        b = b.modules(folder);
    }
    for (k, v) in &a.env {
        b = b.env(k, v);
    }
    b.build()
}

fn run(a: RunArgs) -> Result<ExitCode> {
    let a = a.normalized();
    let limits = a.limits.to_limits();
    if a.remote.batch.is_some() {
        return batch::run_batch(&a);
    }
    if let Err(why) = channels::check_names(&a.sends, &a.recvs) {
        if a.json {
            print_json(&failure_json(
                "UsageError",
                "usage",
                &why,
                Value::Null,
                EXIT_USAGE,
            ))?;
        } else {
            report(format_args!("subinterp: {why}"));
        }
        return Ok(ExitCode::from(EXIT_USAGE));
    }
    let script = script(&a)?;
    if a.remote.nats.is_some() {
        return remote::run_remote(&a, script);
    }
    let host = host_for(&a, &limits, script.is_some())?;
    let (guest, name) = match load(&host, &a, script.as_ref().map(|s| s.0))? {
        Ok(g) => g,
        Err(code) => return Ok(code),
    };
    let interp = match interpreter(&host, &guest, name, &a, limits) {
        Ok(i) => i,
        // The guest's start function or set-up failed or hit a limit: the
        // same report and exit code as a run that did.
        Err(Error::Instantiate(e)) => return guest_failed_to_start(&e, a.json),
        Err(e) => return Err(e.into()),
    };
    let bound = channels::Bound::bind(&host, &a.sends, &a.recvs, a.remote.creds.as_deref())?;
    let run = match script {
        Some((Language::Python, src)) => Run::python(src),
        // An ES module file (.mjs, or --module): imports from its folder,
        // top-level await; it is named by its canonical path.
        Some((_, src)) if is_module(&a) => {
            let name = match (&a.eval, &a.file) {
                (None, Some(f)) => std::fs::canonicalize(f)
                    .with_context(|| format!("reading {}", f.display()))?
                    .to_string_lossy()
                    .into_owned(),
                _ => "-e".to_string(),
            };
            Run::js_module(name, src)
        }
        Some((_, src)) => Run::js(src),
        None => Run::start(),
    };
    let result = interp.run(bound.attach(run))?;
    print_result(&result, a.json, interp.language())?;
    let code = exit_code(&result);
    // The result is out (one JSON object at most): a channel that could not
    // finish is said on stderr, and fails a run that did not fail already.
    if let Err(e) = bound.finish() {
        report(format_args!("subinterp: {e:#}"));
        return Ok(ExitCode::from(if code == 0 { 1 } else { code }));
    }
    Ok(ExitCode::from(code))
}

/// Whether the JavaScript runs as an ES module: `--module`, or a `.mjs` file.
pub(crate) fn is_module(a: &RunArgs) -> bool {
    a.module
        || (a.eval.is_none()
            && a.file
                .as_ref()
                .and_then(|f| f.extension())
                .is_some_and(|e| e == "mjs"))
}

/// The folder of the ES module file being run, granted to its imports.
fn module_folder(a: &RunArgs) -> Option<std::path::PathBuf> {
    if a.eval.is_some() || a.python || !is_module(a) {
        return None;
    }
    // The folder of the file itself, when FILE is a symlink.
    let file = std::fs::canonicalize(a.file.as_ref()?).ok()?;
    file.parent().map(|p| p.to_path_buf())
}

/// Prints a run's result: as JSON, or (its output having gone to the
/// host's streams) the error, if the run failed. A Python exception is not
/// printed again: the guest wrote its traceback to stderr, as `python` does.
fn print_result(result: &RunResult, json: bool, language: Option<Language>) -> Result<()> {
    if json {
        print_json(&to_json(result))?;
    } else if let Some(e) = result.error.as_ref().filter(|_| !result.completed)
        && !matches!(e.kind, ErrorKind::Exit(_))
        && !(language == Some(Language::Python) && matches!(e.kind, ErrorKind::Exception { .. }))
    {
        match &e.kind {
            ErrorKind::Exception { name } => report(format_args!("{name}: {}", e.message)),
            k => report(format_args!("subinterp: {}: {}", k.name(), e.message)),
        }
        if let Some(bt) = &e.backtrace {
            report(bt.trim_end());
        }
    }
    Ok(())
}

/// `subinterp compile`: each module, then each language guest asked for,
/// compiled into the cache; the cache file printed for each.
fn compile(a: CompileArgs) -> Result<ExitCode> {
    let host = Host::builder()
        .pool_size(1)
        .fuel(a.fuel)
        .compile_notices(true)
        .build()?;
    let Some(dir) = host.cache_dir() else {
        bail!("no cache folder: set XDG_CACHE_HOME or HOME");
    };
    let mut code = ExitCode::SUCCESS;
    for file in &a.files {
        let guest = match host.load_file_cached(file) {
            Ok(g) => g,
            Err(Error::Limit(l)) => {
                report(format_args!("subinterp: compiling {}: {l}", file.display()));
                code = ExitCode::from(EXIT_LIMIT);
                continue;
            }
            Err(e) => return Err(e).with_context(|| format!("compiling {}", file.display())),
        };
        cached(&file.display(), &guest, dir)?;
    }
    let languages = [(a.js, Language::JavaScript), (a.python, Language::Python)];
    for (_, language) in languages.into_iter().filter(|(asked, _)| *asked) {
        let guest = host.language_guest(language)?;
        cached(&format_args!("the {language} guest"), &guest, dir)?;
    }
    Ok(code)
}

/// Prints where `guest`'s compiled code is, or fails if it was not cached.
fn cached(what: &dyn std::fmt::Display, guest: &Guest, dir: &std::path::Path) -> Result<()> {
    let Some(file) = guest.cache_file() else {
        bail!(
            "{what}: compiled, but not cached: {} cannot be written, or group or others can write to it",
            dir.display()
        );
    };
    match write_stdout(&format!("{what}: {}", file.display())) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(e).context("writing to stdout"),
        _ => Ok(()),
    }
}
