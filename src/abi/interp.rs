//! Guest ABI v1, part two: what a guest (the JavaScript guest above all)
//! needs to create and drive interpreters of its own, report its errors and
//! stop cleanly. Results that are more than an integer come back as a view
//! of UTF-8 JSON. See `guest/include/subinterp.h` for the guest-side text.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wasmtime::Linker;

use super::{
    CANCELLED, Cx, ERR_BOUNDS, ERR_BUSY, ERR_CLOSED, ERR_DENIED, ERR_EMPTY, ERR_INVALID, ERR_LIMIT,
    ERR_NOT_FOUND, ERR_TIMEOUT, ERR_WRONG_KIND, Ret, bad, memory, range, waiting,
};
use crate::buffer::Buffer;
use crate::channel::{ChannelEnd, Wait};
use crate::error::Error;
use crate::id::InterpreterId;
use crate::job::JobWait;
use crate::language::Language;
use crate::limits::Limits;
use crate::result::RunResult;
use crate::store::{
    ChildDir, ChildJob, ChildRun, Entry, FamilyError, MAX_CHILD_DIRS, StoreData, child_dir,
};

/// The most bytes of error JSON a guest may report for one run.
const MAX_REPORT: usize = 64 << 10;

pub(crate) fn add_to_linker(l: &mut Linker<StoreData>) -> wasmtime::Result<()> {
    let m = super::MODULE;
    l.func_wrap(m, "run_error", run_error)?;
    l.func_wrap(m, "should_stop", |cx: Cx<'_>| {
        i32::from(cx.data().must_stop().is_some())
    })?;
    l.func_wrap(m, "bound_names", bound_names)?;
    l.func_wrap(m, "interp_create", interp_create)?;
    l.func_wrap(m, "interp_run", interp_run)?;
    l.func_wrap(m, "interp_start", interp_start)?;
    l.func_wrap(m, "interp_join", interp_join)?;
    l.func_wrap(m, "interp_close", interp_close)?;
    l.func_wrap(m, "interp_status", interp_status)?;
    l.func_wrap(m, "interp_list", interp_list)?;
    // A guest's "main" is PEP 554's: the host, as `Host::get_main` says.
    l.func_wrap(m, "main_id", |_: Cx<'_>| InterpreterId::MAIN.0 as i64)?;
    Ok(())
}

/// A copy of guest bytes `[ptr, ptr + len)`.
fn read(cx: &mut Cx<'_>, ptr: i32, len: i32) -> Result<Vec<u8>, i32> {
    let mem = memory(cx).ok_or(ERR_BOUNDS)?;
    let data = mem.data(&*cx);
    let r = range(data.len(), ptr, len as u32 as u64).ok_or(ERR_BOUNDS)?;
    Ok(data[r].to_vec())
}

fn read_str(cx: &mut Cx<'_>, ptr: i32, len: i32) -> Result<String, i32> {
    String::from_utf8(read(cx, ptr, len)?).map_err(|_| ERR_INVALID)
}

/// A new view handle holding `text`.
fn give_text(cx: &mut Cx<'_>, text: String) -> i32 {
    let view = Buffer::new(text.into_bytes()).view();
    cx.data_mut()
        .handles
        .insert(Entry::Text(view))
        .unwrap_or_else(bad)
}

/// `run_error(json, len) -> 0`: the guest's report of why its run failed.
fn run_error(mut cx: Cx<'_>, ptr: i32, len: i32) -> i32 {
    let len = (len as u32).min(MAX_REPORT as u32) as i32;
    match read(&mut cx, ptr, len) {
        Ok(b) => {
            cx.data_mut().reported = Some(String::from_utf8_lossy(&b).into_owned());
            0
        }
        Err(e) => e,
    }
}

/// `bound_names() -> view`: JSON array of the names bound for this run.
fn bound_names(mut cx: Cx<'_>) -> i32 {
    let mut names: Vec<&String> = cx.data().names.keys().collect();
    names.sort();
    let text = json!(names).to_string();
    give_text(&mut cx, text)
}

/// What a guest asked for in `interp_create`'s JSON.
struct Asked {
    /// `"lang": "js"` or `"python"` (default: the creator's own).
    language: Option<Language>,
    limits: Limits,
    /// `"dirs": [{"path": "/guest/path", "read_only": bool}]`: parts of the
    /// creator's directory grants (`read_only` absent: as the grant).
    dirs: Vec<(String, Option<bool>)>,
}

/// Parses `interp_create`'s JSON; `None` when it is not what the ABI says.
fn asked(opts: &str) -> Option<Asked> {
    let v: Value = if opts.trim().is_empty() {
        json!({})
    } else {
        serde_json::from_str(opts).ok()?
    };
    let mut a = Asked {
        language: None,
        limits: Limits::new(),
        dirs: Vec::new(),
    };
    for (k, v) in v.as_object()? {
        match k.as_str() {
            "lang" => a.language = Some(Language::from_name(v.as_str()?)?),
            "dirs" => a.dirs = asked_dirs(v)?,
            _ => a.limits = asked_limit(a.limits, k, v)?,
        }
    }
    Some(a)
}

/// `interp_create`'s `"dirs"`: at most [`MAX_CHILD_DIRS`] of them.
fn asked_dirs(v: &Value) -> Option<Vec<(String, Option<bool>)>> {
    let list = v.as_array().filter(|l| l.len() <= MAX_CHILD_DIRS)?;
    list.iter()
        .map(|d| {
            let d = d.as_object()?;
            if d.keys().any(|k| k != "path" && k != "read_only") {
                return None;
            }
            let read_only = match d.get("read_only") {
                None | Some(Value::Null) => None,
                Some(b) => Some(b.as_bool()?),
            };
            Some((d.get("path")?.as_str()?.to_string(), read_only))
        })
        .collect()
}

/// One limit of `interp_create`'s JSON added to `l`.
fn asked_limit(l: Limits, k: &str, v: &Value) -> Option<Limits> {
    let n = v.as_f64().filter(|n| n.is_finite() && *n >= 0.0)?;
    let whole = n as u64;
    Some(match k {
        "timeout_ms" => l.with_timeout(Duration::try_from_secs_f64(n / 1000.0).ok()?),
        "max_memory" => l.with_max_memory(usize::try_from(whole).ok()?),
        "fuel" => l.with_fuel(whole),
        "max_output" => l.with_max_output(usize::try_from(whole).ok()?),
        "max_handles" => l.with_max_handles(usize::try_from(whole).ok()?),
        "max_interpreters" => l.with_max_interpreters(usize::try_from(whole).ok()?),
        "max_depth" => l.with_max_depth(u32::try_from(whole).ok()?),
        "max_open_files" => l.with_max_open_files(usize::try_from(whole).ok()?),
        _ => return None,
    })
}

/// The directories a child is given, from its creator's grants; `None`
/// when one of them is not the creator's to give.
fn child_dirs(state: &StoreData, asked: &[(String, Option<bool>)]) -> Option<Vec<ChildDir>> {
    asked
        .iter()
        .map(|(path, read_only)| child_dir(&state.dirs, path, *read_only).ok())
        .collect()
}

/// Takes fuel out of the caller's store for work done on its behalf
/// elsewhere (a child's creation or run): at most `want`, and at most a
/// `1/share` of what the caller has left. `None` when fuel is off.
fn take_fuel(cx: &mut Cx<'_>, want: Option<u64>, share: u64) -> Option<u64> {
    let left = cx.get_fuel().ok()?;
    let give = want.unwrap_or(u64::MAX).min(left / share);
    cx.set_fuel(left - give).ok()?;
    Some(give)
}

/// Gives the caller back fuel that work on its behalf did not use.
fn return_fuel(cx: &mut Cx<'_>, unused: Option<u64>) {
    if let (Some(n), Ok(left)) = (unused, cx.get_fuel()) {
        let _ = cx.set_fuel(left.saturating_add(n));
    }
}

/// The ABI code for a refused request about interpreters.
fn family_code(e: FamilyError) -> i32 {
    match e {
        FamilyError::NotFound => ERR_NOT_FOUND,
        FamilyError::Busy => ERR_BUSY,
        FamilyError::Limit => ERR_LIMIT,
        FamilyError::Closed => ERR_CLOSED,
        FamilyError::Invalid => ERR_INVALID,
    }
}

/// `interp_create(opts, len) -> id`: a new interpreter owned by this one,
/// running the language `opts` names (default: this one's).
/// Its memory, handles and files come out of this interpreter's tree's
/// budget, and the fuel its creation burns out of this run's.
fn interp_create(mut cx: Cx<'_>, ptr: i32, len: i32) -> i64 {
    let opts = match read_str(&mut cx, ptr, len) {
        Ok(s) => s,
        Err(e) => return e.into(),
    };
    let Some(asked) = asked(&opts) else {
        return ERR_INVALID.into();
    };
    let Some(dirs) = child_dirs(cx.data(), &asked.dirs) else {
        return ERR_DENIED.into();
    };
    let limits = cx.data().limits.clamp(&asked.limits);
    let fuel = take_fuel(&mut cx, limits.fuel(), 1);
    let state = cx.data_mut();
    let created = state.parent(fuel).and_then(|mut parent| {
        parent.dirs = dirs;
        state.family.create(parent, asked.language, limits)
    });
    match created {
        Ok((id, unused)) => {
            return_fuel(&mut cx, unused);
            id as i64
        }
        Err(e) => family_code(e).into(),
    }
}

/// The id a guest passed, if it can name an interpreter at all.
fn id_of(id: i64) -> Result<u64, i32> {
    u64::try_from(id).map_err(|_| ERR_NOT_FOUND)
}

/// The key of `interp_run`'s bindings that names the source as an ES
/// module (JavaScript) instead of binding a channel end.
const MODULE_KEY: &str = "$module";

/// Builds the child's run: the source and the ends bound by name. Returns
/// the child's id, the run, and the child's own fuel budget.
fn child_run(
    cx: &mut Cx<'_>,
    id: i64,
    src: (i32, i32),
    bind: (i32, i32),
) -> Result<(u64, ChildRun, Option<u64>), i32> {
    let source = read_str(cx, src.0, src.1)?;
    let bindings = read_str(cx, bind.0, bind.1)?;
    let state = cx.data();
    let id = id_of(id)?;
    let own_fuel = state.family.idle_child(id).map_err(family_code)?;
    let map: serde_json::Map<String, Value> = if bindings.trim().is_empty() {
        Default::default()
    } else {
        serde_json::from_str(&bindings).map_err(|_| ERR_INVALID)?
    };
    let mut channels = Vec::with_capacity(map.len());
    let mut module = None;
    for (name, h) in map {
        // Not a channel: the name of the ES module the source is.
        if name == MODULE_KEY {
            module = Some(h.as_str().ok_or(ERR_INVALID)?.to_string());
            continue;
        }
        let h = h
            .as_i64()
            .and_then(|h| i32::try_from(h).ok())
            .ok_or(ERR_INVALID)?;
        let end = match state.handles.get(h).map_err(bad)? {
            Entry::Recv(r) => ChannelEnd::Recv(r.clone()),
            Entry::Send(s) => ChannelEnd::Send(s.clone()),
            _ => return Err(ERR_WRONG_KIND),
        };
        channels.push((name, end));
    }
    let run = ChildRun {
        source,
        module,
        channels,
        deadline_cap: state.deadline.map(|(at, _)| at),
        fuel: None,
    };
    Ok((id, run, own_fuel))
}

/// Starts a child's run on its own thread, with fuel taken from the caller's
/// (at most a `1/share` of what is left). A handle for what comes back (the
/// result view or the job) is reserved first, so a finished run's result is
/// never refused for want of a handle.
fn start_child(
    cx: &mut Cx<'_>,
    id: i64,
    src: (i32, i32),
    bind: (i32, i32),
    share: u64,
) -> Result<Arc<ChildJob>, i32> {
    cx.data_mut().handles.reserve(1).map_err(bad)?;
    let started = child_run(cx, id, src, bind).and_then(|(id, mut run, own_fuel)| {
        run.fuel = take_fuel(cx, own_fuel, share);
        let fuel = run.fuel;
        cx.data_mut()
            .family
            .start(id, run)
            .map_err(family_code)
            .inspect_err(|_| return_fuel(cx, fuel))
    });
    if started.is_err() {
        cx.data_mut().handles.unreserve(1);
    }
    started
}

/// Hands the guest a finished run's result (into the handle reserved for
/// it) and the caller the fuel the run did not use.
fn give_result(cx: &mut Cx<'_>, done: Result<ChildDone, i32>) -> i32 {
    match done {
        Ok((result, unused)) => {
            return_fuel(cx, unused);
            give_text(cx, result_json(result))
        }
        Err(e) => e,
    }
}

/// `interp_run(id, src, src_len, bind, bind_len) -> view`: runs and waits.
fn interp_run(mut cx: Cx<'_>, id: i64, sp: i32, sl: i32, bp: i32, bl: i32) -> Ret {
    let job = match start_child(&mut cx, id, (sp, sl), (bp, bl), 1) {
        Ok(j) => j,
        Err(e) => return Ok(e),
    };
    let done = waiting(&cx, -1, |w| wait_child(&job, w))?;
    if done.is_err() {
        cx.data_mut().handles.unreserve(1);
    }
    Ok(give_result(&mut cx, done))
}

/// `interp_start(id, src, src_len, bind, bind_len) -> job`: runs on the
/// child's own thread, with at most half the caller's fuel left.
fn interp_start(mut cx: Cx<'_>, id: i64, sp: i32, sl: i32, bp: i32, bl: i32) -> i32 {
    match start_child(&mut cx, id, (sp, sl), (bp, bl), 2) {
        Ok(job) => cx
            .data_mut()
            .handles
            .insert(Entry::Job(job))
            .unwrap_or_else(bad),
        Err(e) => e,
    }
}

/// `interp_join(job, timeout_us) -> view`: waits for a started run.
fn interp_join(mut cx: Cx<'_>, job: i32, timeout_us: i64) -> Ret {
    let job = match cx.data().handles.get(job) {
        Ok(Entry::Job(j)) => j.clone(),
        Ok(_) => return Ok(ERR_WRONG_KIND),
        Err(e) => return Ok(bad(e)),
    };
    if let Err(e) = cx.data_mut().handles.reserve(1) {
        return Ok(bad(e));
    }
    let done = waiting(&cx, timeout_us, |w| wait_child(&job, w))?;
    if done.is_err() {
        cx.data_mut().handles.unreserve(1);
    }
    Ok(give_result(&mut cx, done))
}

/// `interp_close(id) -> 0`: closes a child of this interpreter.
fn interp_close(mut cx: Cx<'_>, id: i64) -> i32 {
    let state = cx.data_mut();
    match id_of(id) {
        Ok(id) if state.family.close(id) => 0,
        Ok(id) if id == state.id => ERR_INVALID,
        _ => ERR_NOT_FOUND,
    }
}

/// `interp_status(id) -> 0 idle | 1 running`: of this interpreter, the
/// host (main, always running) or one below it; any other id is
/// `ERR_NOT_FOUND`.
fn interp_status(cx: Cx<'_>, id: i64) -> i32 {
    let state = cx.data();
    match id_of(id) {
        Ok(id) if id == state.id || id == InterpreterId::MAIN.0 => 1,
        Ok(id) => state.family.is_running(id).map_or(ERR_NOT_FOUND, i32::from),
        Err(e) => e,
    }
}

/// `interp_list() -> view`: JSON array of the ids of this interpreter and
/// the live interpreters below it (never another tree's).
fn interp_list(mut cx: Cx<'_>) -> i32 {
    let state = cx.data();
    let mut ids = vec![state.id];
    ids.extend(state.family.below());
    give_text(&mut cx, json!(ids).to_string())
}

/// A child's run as it ends: its result and the fuel it did not use.
type ChildDone = (Result<RunResult, Error>, Option<u64>);

/// Waits for a child's result as `w` allows, as an ABI code on failure.
fn wait_child(job: &ChildJob, w: Wait<'_>) -> Result<ChildDone, i32> {
    let (until, cancel) = match w {
        Wait::NoWait => (Some(Instant::now()), None),
        Wait::Until { deadline, cancel } => (deadline, cancel),
    };
    job.wait(until, cancel).map_err(|e| match e {
        JobWait::Timeout if matches!(w, Wait::NoWait) => ERR_EMPTY,
        JobWait::Timeout => ERR_TIMEOUT,
        JobWait::Cancelled => CANCELLED,
        JobWait::Taken | JobWait::Panicked => ERR_CLOSED,
    })
}

/// `{completed, error: null | {type, kind, message, stack}}`.
fn result_json(r: Result<RunResult, Error>) -> String {
    let error = match r {
        Ok(r) if r.completed => Value::Null,
        Ok(r) => match r.error {
            Some(e) => json!({
                "type": e.kind.type_name(),
                "kind": e.kind.name(),
                "message": e.message,
                "stack": e.backtrace.unwrap_or_default(),
            }),
            None => Value::Null,
        },
        Err(e @ Error::InterpreterClosed(_)) => json!({
            "type": "InterpreterClosedError", "kind": "closed",
            "message": e.to_string(), "stack": "",
        }),
        Err(e) => json!({
            "type": "Error", "kind": "host", "message": e.to_string(), "stack": "",
        }),
    };
    json!({ "completed": error.is_null(), "error": error }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asked_limits_are_parsed_strictly() {
        let asked_limits = |s: &str| asked(s).map(|a| a.limits);
        let l = asked_limits(r#"{"timeout_ms": 250, "max_memory": 1048576}"#).unwrap();
        assert_eq!(l.timeout(), Some(Duration::from_millis(250)));
        assert_eq!(l.max_memory(), 1 << 20);
        assert!(asked_limits("").is_some());
        assert!(asked_limits(r#"{"max_memroy": 1}"#).is_none(), "typo");
        assert!(asked_limits(r#"{"max_memory": -1}"#).is_none());
        assert!(asked_limits(r#"{"timeout_ms": "5"}"#).is_none());
        assert!(asked_limits("[1]").is_none());
        assert_eq!(
            asked(r#"{"lang": "python"}"#).unwrap().language,
            Some(Language::Python)
        );
        assert_eq!(
            asked(r#"{"lang": "js"}"#).unwrap().language,
            Some(Language::JavaScript)
        );
        assert_eq!(asked("{}").unwrap().language, None);
        assert!(asked(r#"{"lang": "cobol"}"#).is_none());
        assert!(asked(r#"{"lang": 1}"#).is_none());
        let a = asked(r#"{"dirs": [{"path": "/a"}, {"path": "/b", "read_only": true}]}"#).unwrap();
        assert_eq!(
            a.dirs,
            [("/a".to_string(), None), ("/b".to_string(), Some(true))]
        );
        assert!(asked(r#"{"dirs": [{"path": "/a", "ro": true}]}"#).is_none());
        assert!(asked(r#"{"dirs": ["/a"]}"#).is_none());
    }
}
