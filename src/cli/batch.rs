//! `subinterp run --nats URL --batch FILE`: many runs at once. Each line of
//! FILE is one request (below); every result is printed as one JSON line
//! (the `--json` object with its `id`) as soon as it comes, in the order
//! the workers finish; stderr carries a progress line while stderr is a
//! terminal, and a summary at the end.
//!
//! A line is a JSON object with one of `source` (JavaScript unless `lang`
//! says `js_module` or `python`), `file` (a script or module file, by its
//! extension as `subinterp run FILE`; relative to the current folder) or
//! `module_sha256` (a module in the server's bucket), and optionally `id`,
//! `name`, `args`, `stdin` (text) or `stdin_base64`, and `limits` (as in a
//! request; the command line's limits fill in the ones a line leaves out).
//! Blank lines are skipped; a bad line stops the batch before anything is
//! sent.

use std::collections::HashMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};
use subinterp::remote::wire::RequestLimits;
use subinterp::remote::{RemoteOutcome, RemoteRun};

use crate::args::{LimitArgs, RunArgs};
use crate::remote::{remote_host, with_limits};
use crate::report::{EXIT_USAGE, failure_json, print_json, report};

/// One line of a batch file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    id: Option<String>,
    lang: Option<String>,
    source: Option<String>,
    file: Option<PathBuf>,
    module_sha256: Option<String>,
    name: Option<String>,
    #[serde(default)]
    args: Vec<String>,
    stdin: Option<String>,
    stdin_base64: Option<String>,
    #[serde(default)]
    limits: RequestLimits,
}

/// Module and script files read once each.
type Files = HashMap<PathBuf, Bytes>;

fn read(files: &mut Files, f: &PathBuf) -> Result<Bytes> {
    if let Some(b) = files.get(f) {
        return Ok(b.clone());
    }
    let b = Bytes::from(std::fs::read(f).with_context(|| format!("reading {}", f.display()))?);
    files.insert(f.clone(), b.clone());
    Ok(b)
}

impl Line {
    /// The run this line asks for.
    fn into_run(self, files: &mut Files, cli: &LimitArgs) -> Result<RemoteRun> {
        let lang = self.lang.as_deref();
        let (run, name) = match (&self.source, &self.file, &self.module_sha256) {
            (Some(src), None, None) => {
                (script(lang.unwrap_or("js"), "-", src.clone())?, "-".into())
            }
            (None, Some(f), None) => (from_file(files, f, lang)?, f.to_string_lossy().into_owned()),
            (None, None, Some(h)) => (RemoteRun::wasm_sha256(h.clone()), "module.wasm".into()),
            _ => bail!("give one of source, file or module_sha256"),
        };
        let mut run = run.name(self.name.unwrap_or(name)).args(self.args);
        run = match (self.stdin, self.stdin_base64) {
            (Some(_), Some(_)) => bail!("give stdin or stdin_base64, not both"),
            (Some(t), None) => run.stdin(t.into_bytes()),
            (None, Some(b)) => run.stdin(
                base64::engine::general_purpose::STANDARD
                    .decode(b)
                    .context("stdin_base64 is not base64")?,
            ),
            (None, None) => run,
        };
        if let Some(id) = self.id {
            run = run.id(id);
        }
        Ok(with_limits(run, &merged(&self.limits, cli)))
    }
}

/// A line's limits, the command line's where it has none.
fn merged(l: &RequestLimits, cli: &LimitArgs) -> LimitArgs {
    LimitArgs {
        timeout: l.timeout_ms.map(Duration::from_millis).or(cli.timeout),
        max_memory: l.max_memory.or(cli.max_memory),
        fuel: l.fuel.or(cli.fuel),
        max_output: l.max_output.or(cli.max_output),
    }
}

fn script(lang: &str, name: &str, src: String) -> Result<RemoteRun> {
    Ok(match lang {
        "js" => RemoteRun::js(src),
        "js_module" => RemoteRun::js_module(name, src),
        "python" => RemoteRun::python(src),
        other => bail!("lang {other:?} with source: js, js_module or python"),
    })
}

fn from_file(files: &mut Files, f: &PathBuf, lang: Option<&str>) -> Result<RemoteRun> {
    let ext = f.extension().and_then(|e| e.to_str()).unwrap_or_default();
    let lang = match (lang, ext) {
        (Some(l), _) => l,
        (None, "py") => "python",
        (None, "mjs") => "js_module",
        (None, "js") => "js",
        (None, _) => "wasm",
    };
    let bytes = read(files, f)?;
    if lang == "wasm" {
        return Ok(RemoteRun::wasm(bytes));
    }
    let src =
        String::from_utf8(bytes.to_vec()).map_err(|_| anyhow!("{} is not UTF-8", f.display()))?;
    script(lang, &f.to_string_lossy(), src)
}

/// The batch file's runs; a bad line is reported with its number.
fn runs(a: &RunArgs) -> Result<Vec<RemoteRun>> {
    let path = a.remote.batch.as_ref().context("no --batch FILE")?;
    let reader: Box<dyn BufRead> = if path.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let f = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
        Box::new(std::io::BufReader::new(f))
    };
    let mut files = Files::new();
    let mut out = Vec::new();
    for (n, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let run = serde_json::from_str::<Line>(&line)
            .map_err(anyhow::Error::from)
            .and_then(|l| l.into_run(&mut files, &a.limits))
            .with_context(|| format!("{} line {}", path.display(), n + 1))?;
        out.push(run);
    }
    Ok(out)
}

/// `run --nats URL --batch FILE`.
pub(crate) fn run_batch(a: &RunArgs) -> Result<ExitCode> {
    let runs = match runs(a) {
        Ok(r) => r,
        Err(e) => {
            report(format_args!("subinterp: {e:#}"));
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    };
    let remote = remote_host(&a.remote)?;
    let started = Instant::now();
    let mut progress = Progress::new(runs.len(), started);
    for done in remote.submit(runs)? {
        let v = as_json(done);
        print_json(&v)?;
        progress.count(v["exit_code"] != 0);
    }
    progress.finish();
    Ok(ExitCode::from(u8::from(progress.failed > 0)))
}

/// An outcome as its printed line: the worker's result, or for a result
/// that never came, a `load` failure naming why.
fn as_json(done: RemoteOutcome) -> Value {
    if !done.json.is_null() {
        return done.json;
    }
    let why = match done.result {
        Err(e) => e.to_string(),
        Ok(_) => "no result came".to_string(),
    };
    let mut v = failure_json("RemoteError", "load", &why, Value::Null, 1);
    v["id"] = json!(done.id);
    v
}

/// Progress on stderr: a line redrawn at most ten times a second while
/// stderr is a terminal, and a summary at the end whatever it is.
struct Progress {
    total: usize,
    done: usize,
    failed: usize,
    started: Instant,
    drawn: Option<Instant>,
    terminal: bool,
}

impl Progress {
    fn new(total: usize, started: Instant) -> Progress {
        Progress {
            total,
            done: 0,
            failed: 0,
            started,
            drawn: None,
            terminal: std::io::stderr().is_terminal(),
        }
    }

    fn rate(&self) -> f64 {
        self.done as f64 / self.started.elapsed().as_secs_f64().max(1e-9)
    }

    fn count(&mut self, failed: bool) {
        self.done += 1;
        self.failed += usize::from(failed);
        let due = self
            .drawn
            .is_none_or(|t| t.elapsed() >= Duration::from_millis(100));
        if !self.terminal || !due {
            return;
        }
        self.drawn = Some(Instant::now());
        let left = (self.total - self.done) as f64 / self.rate().max(1e-9);
        let _ = write!(
            std::io::stderr().lock(),
            "\r\x1b[2K{}/{} done, {} failed, {:.0}/s, ~{:.0} s left",
            self.done,
            self.total,
            self.failed,
            self.rate(),
            left
        );
    }

    fn finish(&self) {
        if self.terminal && self.drawn.is_some() {
            let _ = write!(std::io::stderr().lock(), "\r\x1b[2K");
        }
        report(format_args!(
            "subinterp: {} runs in {:.1} s ({:.0}/s): {} exited 0, {} failed",
            self.done,
            self.started.elapsed().as_secs_f64(),
            self.rate(),
            self.done - self.failed,
            self.failed
        ));
    }
}
