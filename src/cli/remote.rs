//! `subinterp run --nats URL`: a run sent to the workers behind a NATS
//! server, built on the library's [`RemoteHost`] (`src/remote/` describes
//! the streams and the request), and reported as a local run is.

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use serde_json::Value;
use subinterp::remote::{Credentials, RemoteHost, RemoteOptions, RemoteRun};
use subinterp::{Language, RunResult};

use crate::args::{LimitArgs, RemoteArgs, RunArgs};
use crate::report::{print_json, report};

/// A multi-threaded runtime for a worker (its runs go to blocking threads).
pub(crate) fn runtime(threads: usize) -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// The prefix and the operator's credentials: `--creds FILE`, else
/// `$SUBINTERP_NATS_CREDS`, else `$SUBINTERP_NATS_USER` and
/// `$SUBINTERP_NATS_PASSWORD`, else none. Never from a request.
pub(crate) fn options(prefix: &str, creds: Option<&Path>) -> Result<RemoteOptions> {
    let credentials = match creds {
        Some(f) => Credentials::File(f.to_path_buf()),
        None => Credentials::from_env(),
    };
    let o = RemoteOptions::new().prefix(prefix).credentials(credentials);
    o.subjects().map_err(|_| {
        anyhow::anyhow!("--subject wants 1 to 64 of A-Z a-z 0-9 _ -, got {prefix:?}")
    })?;
    Ok(o)
}

/// Connects the client side of `run --nats`.
pub(crate) fn remote_host(r: &RemoteArgs) -> Result<RemoteHost> {
    let Some(url) = r.nats.as_deref() else {
        bail!("no --nats URL");
    };
    Ok(RemoteHost::connect(
        url,
        options(&r.subject, r.creds.as_deref())?,
    )?)
}

/// Applies the command line's limits to a run.
pub(crate) fn with_limits(mut run: RemoteRun, l: &LimitArgs) -> RemoteRun {
    if let Some(t) = l.timeout {
        run = run.timeout(t);
    }
    if let Some(m) = l.max_memory {
        run = run.max_memory(m);
    }
    if let Some(f) = l.fuel {
        run = run.fuel(f);
    }
    if let Some(o) = l.max_output {
        run = run.max_output(o);
    }
    run
}

/// The run `subinterp run --nats` sends: the script, or the module file.
fn remote_run(a: &RunArgs, script: Option<(Language, String)>) -> Result<RemoteRun> {
    let name = match &a.file {
        Some(f) => f.to_string_lossy().into_owned(),
        None => "-e".to_string(),
    };
    let run = match (script, &a.file) {
        (Some((Language::Python, src)), _) => RemoteRun::python(src),
        (Some((_, src)), _) if a.eval.is_none() && super::is_module(a) => {
            RemoteRun::js_module(name.clone(), src)
        }
        (Some((_, src)), _) => RemoteRun::js(src),
        (None, Some(f)) => {
            RemoteRun::wasm(std::fs::read(f).with_context(|| format!("reading {}", f.display()))?)
        }
        (None, None) => bail!("nothing to run: give a FILE or -e SOURCE"),
    };
    let mut run = with_limits(run.name(name).args(a.args.clone()), &a.limits);
    if let Some(input) = read_input(&a.remote.input)? {
        run = run.stdin(input);
    }
    Ok(run)
}

/// `--input FILE` (`-`: stdin, which must not be a terminal).
fn read_input(input: &Option<PathBuf>) -> Result<Option<Vec<u8>>> {
    match input.as_deref() {
        None => Ok(None),
        Some(p) if p == Path::new("-") => {
            if std::io::stdin().is_terminal() {
                bail!("--input -: stdin is a terminal; pipe the input in, or give a file");
            }
            let mut b = Vec::new();
            std::io::stdin()
                .read_to_end(&mut b)
                .context("reading stdin")?;
            Ok(Some(b))
        }
        Some(p) => Ok(Some(
            std::fs::read(p).with_context(|| format!("reading {}", p.display()))?,
        )),
    }
}

/// `subinterp run --nats URL`: sends the script (or the module, `None`)
/// to the workers and reports its result as a local run would (the same
/// output, report and exit code).
pub(crate) fn run_remote(a: &RunArgs, script: Option<(Language, String)>) -> Result<ExitCode> {
    let language = script.as_ref().map(|s| s.0);
    let run = remote_run(a, script)?;
    let remote = remote_host(&a.remote)?;
    let Some(done) = remote.submit([run])?.next() else {
        bail!("no result came");
    };
    if done.json.is_null() {
        return Err(done
            .result
            .err()
            .map_or_else(|| anyhow::anyhow!("no result came"), anyhow::Error::from));
    }
    print_remote(&done.json, done.result.as_ref().ok(), a.json, language)?;
    let code = done.json["exit_code"].as_u64().unwrap_or(1);
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}

/// A remote result (`v`, decoded as `run` when it is a run's), printed as a
/// local run's: the output's exact bytes to the streams, then the error (or
/// the whole JSON object with `--json`).
fn print_remote(
    v: &Value,
    run: Option<&RunResult>,
    json: bool,
    language: Option<Language>,
) -> Result<()> {
    if json {
        return print_json(v);
    }
    use std::io::Write;
    let text = |k: &str| v[k].as_str().unwrap_or_default().as_bytes();
    let (stdout, stderr) = run.map_or((text("stdout"), text("stderr")), |r| {
        (&r.stdout[..], &r.stderr[..])
    });
    let _ = std::io::stdout().write_all(stdout);
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().write_all(stderr);
    let e = &v["error"];
    let kind = e["kind"].as_str().unwrap_or_default();
    let python_exception = language == Some(Language::Python) && kind == "exception";
    if e.is_null() || kind == "exit" || python_exception {
        return Ok(());
    }
    let message = e["message"].as_str().unwrap_or_default();
    match kind {
        "exception" => report(format_args!(
            "{}: {message}",
            e["type"].as_str().unwrap_or("Error")
        )),
        k => report(format_args!("subinterp: {k}: {message}")),
    }
    if let Some(stack) = e["stack"].as_str() {
        report(stack.trim_end());
    }
    Ok(())
}
