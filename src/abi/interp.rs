//! Guest ABI v1, part two: what a guest (the JavaScript guest above all)
//! needs to create and drive interpreters of its own, report its errors and
//! stop cleanly. Results that are more than an integer come back as a view
//! of UTF-8 JSON. See `guest/include/subinterp.h` for the guest-side text.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wasmtime::Linker;

use super::{
    CANCELLED, Cx, ERR_BOUNDS, ERR_BUSY, ERR_CLOSED, ERR_EMPTY, ERR_INVALID, ERR_LIMIT,
    ERR_NOT_FOUND, ERR_TIMEOUT, ERR_WRONG_KIND, Ret, bad, memory, range, waiting,
};
use crate::buffer::Buffer;
use crate::channel::Wait;
use crate::error::Error;
use crate::handle::{ChildJob, Entry};
use crate::interpreter::{
    ChannelEnd, ChildOf, HostState, Interpreter, InterpreterBuilder, Lineage, Run, RunResult, Tree,
};
use crate::job::{Job, JobWait};
use crate::limits::Limits;

/// The most bytes of error JSON a guest may report for one run.
const MAX_REPORT: usize = 64 << 10;

pub(crate) fn add_to_linker(l: &mut Linker<HostState>) -> wasmtime::Result<()> {
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
    // A guest's "main" is its tree's root: it sees nothing above it.
    l.func_wrap(m, "main_id", |cx: Cx<'_>| {
        let state = cx.data();
        state.lineage.ancestors.first().copied().unwrap_or(state.id) as i64
    })?;
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

/// The limits a guest asked for in `interp_create`'s JSON.
fn asked_limits(opts: &str) -> Option<Limits> {
    let v: Value = if opts.trim().is_empty() {
        json!({})
    } else {
        serde_json::from_str(opts).ok()?
    };
    let mut l = Limits::new();
    for (k, v) in v.as_object()? {
        let n = v.as_f64().filter(|n| n.is_finite() && *n >= 0.0)?;
        let whole = n as u64;
        l = match k.as_str() {
            "timeout_ms" => l.timeout(Duration::try_from_secs_f64(n / 1000.0).ok()?),
            "max_memory" => l.max_memory(usize::try_from(whole).ok()?),
            "fuel" => l.fuel(whole),
            "max_output" => l.max_output(usize::try_from(whole).ok()?),
            "max_handles" => l.max_handles(usize::try_from(whole).ok()?),
            "max_interpreters" => l.max_interpreters(usize::try_from(whole).ok()?),
            "max_depth" => l.max_depth(u32::try_from(whole).ok()?),
            "max_open_files" => l.max_open_files(usize::try_from(whole).ok()?),
            _ => return None,
        };
    }
    Some(l)
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

/// `interp_create(opts, len) -> id`: a new JS interpreter owned by this one.
/// Its memory, handles and files come out of this interpreter's tree's
/// budget, and the fuel its creation burns out of this run's.
fn interp_create(mut cx: Cx<'_>, ptr: i32, len: i32) -> i64 {
    let opts = match read_str(&mut cx, ptr, len) {
        Ok(s) => s,
        Err(e) => return e.into(),
    };
    let Some(asked) = asked_limits(&opts) else {
        return ERR_INVALID.into();
    };
    let limits = cx.data().limits.clamp(&asked);
    let fuel = take_fuel(&mut cx, limits.get_fuel(), 1);
    match create_child(cx.data_mut(), limits, fuel) {
        Ok(child) => {
            return_fuel(&mut cx, child.fuel_left());
            child.id().0 as i64
        }
        Err(e) => e.into(),
    }
}

fn create_child(
    state: &mut HostState,
    limits: Limits,
    fuel: Option<u64>,
) -> Result<Interpreter, i32> {
    let host = state.host.upgrade().ok_or(ERR_CLOSED)?;
    let guest = host.js().map_err(|_| ERR_NOT_FOUND)?;
    if state.limits.get_max_depth() == 0 {
        return Err(ERR_LIMIT);
    }
    let slots = Tree::acquire_all(&state.lineage.budgets).ok_or(ERR_LIMIT)?;
    let mut ancestors = state.lineage.ancestors.clone();
    ancestors.push(state.id);
    let child = InterpreterBuilder::new(&host, &guest)
        .limits(limits)
        .child_of(ChildOf {
            lineage: Lineage {
                budgets: state.lineage.budgets.clone(),
                creator: state.id,
                ancestors,
                tenant: state.lineage.tenant.clone(),
            },
            slots,
            stdout: state.stdout.clone(),
            stderr: state.stderr.clone(),
            deadline_cap: state.deadline.map(|(at, _)| at),
            fuel,
        })
        .create();
    match child {
        Ok(c) => {
            if state.children.len() >= 32 {
                state.children.retain(|c| !c.is_closed());
            }
            state.children.push(c.clone());
            Ok(c)
        }
        Err(Error::Limit(_)) => Err(ERR_LIMIT),
        Err(Error::Instantiate(e)) if e.kind.is_limit() => Err(ERR_LIMIT),
        Err(_) => Err(ERR_INVALID),
    }
}

/// This interpreter's live child `id`. Any other id, whether it exists or
/// not, is `ERR_NOT_FOUND`: a guest learns nothing of interpreters outside
/// its own tree.
fn child(state: &HostState, id: i64) -> Result<Interpreter, i32> {
    let id = u64::try_from(id).map_err(|_| ERR_NOT_FOUND)?;
    state
        .children
        .iter()
        .find(|c| c.id().0 == id && !c.is_closed())
        .cloned()
        .ok_or(ERR_NOT_FOUND)
}

/// The live interpreter `id` if it is in the caller's tree below it.
fn descendant(state: &HostState, id: u64) -> Option<Interpreter> {
    let host = state.host.upgrade()?;
    host.get(id).filter(|i| i.ancestors().contains(&state.id))
}

/// Builds the child's run: the source and the ends bound by name.
fn child_run(
    cx: &mut Cx<'_>,
    id: i64,
    src: (i32, i32),
    bind: (i32, i32),
) -> Result<(Interpreter, Run), i32> {
    let source = read_str(cx, src.0, src.1)?;
    let bindings = read_str(cx, bind.0, bind.1)?;
    let state = cx.data();
    let target = child(state, id)?;
    if target.is_running() {
        return Err(ERR_BUSY);
    }
    let map: serde_json::Map<String, Value> = if bindings.trim().is_empty() {
        Default::default()
    } else {
        serde_json::from_str(&bindings).map_err(|_| ERR_INVALID)?
    };
    let mut run = Run::js(source).deadline_cap(state.deadline.map(|(at, _)| at));
    for (name, h) in map {
        let h = h
            .as_i64()
            .and_then(|h| i32::try_from(h).ok())
            .ok_or(ERR_INVALID)?;
        let end = match state.handles.get(h).map_err(bad)? {
            Entry::Recv(r) => ChannelEnd::Recv(r.clone()),
            Entry::Send(s) => ChannelEnd::Send(s.clone()),
            _ => return Err(ERR_WRONG_KIND),
        };
        run = run.channel(name, end);
    }
    Ok((target, run))
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
    let started = child_run(cx, id, src, bind).and_then(|(child, run)| {
        let fuel = take_fuel(cx, child.limits().get_fuel(), share);
        spawn_child(child, run.fuel(fuel), fuel).inspect_err(|_| return_fuel(cx, fuel))
    });
    if started.is_err() {
        cx.data_mut().handles.unreserve(1);
    }
    started
}

/// Hands the guest a finished run's result (into the handle reserved for
/// it) and the caller the fuel the run did not use.
fn give_result(cx: &mut Cx<'_>, done: Result<(String, Option<u64>), i32>) -> i32 {
    match done {
        Ok((text, unused)) => {
            return_fuel(cx, unused);
            give_text(cx, text)
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
    if let Some(pos) = state.children.iter().position(|c| c.id().0 as i64 == id) {
        state.children.swap_remove(pos).close();
        return 0;
    }
    if id == state.id as i64 {
        return ERR_INVALID;
    }
    ERR_NOT_FOUND
}

/// `interp_status(id) -> 0 idle | 1 running`: of this interpreter or one
/// below it; any other id is `ERR_NOT_FOUND`.
fn interp_status(cx: Cx<'_>, id: i64) -> i32 {
    let Ok(id) = u64::try_from(id) else {
        return ERR_NOT_FOUND;
    };
    if id == cx.data().id {
        return 1;
    }
    match descendant(cx.data(), id) {
        Some(i) => i32::from(i.is_running()),
        None => ERR_NOT_FOUND,
    }
}

/// `interp_list() -> view`: JSON array of the ids of this interpreter and
/// the live interpreters below it (never another tree's).
fn interp_list(mut cx: Cx<'_>) -> i32 {
    let state = cx.data();
    let me = state.id;
    let mut ids = vec![me];
    if let Some(host) = state.host.upgrade() {
        ids.extend(
            host.live()
                .into_iter()
                .filter(|i| i.ancestors().contains(&me))
                .map(|i| i.id().0),
        );
    }
    give_text(&mut cx, json!(ids).to_string())
}

fn spawn_child(target: Interpreter, run: Run, fuel: Option<u64>) -> Result<Arc<ChildJob>, i32> {
    let name = format!("subinterp-run-{}", target.id().0);
    Job::spawn(name, move || {
        let result = target.run(run);
        let used = result.as_ref().ok().and_then(|r| r.stats.fuel_used);
        let unused = fuel.map(|f| f.saturating_sub(used.unwrap_or(f)));
        (result_json(result), unused)
    })
    .map_err(|_| ERR_LIMIT)
}

/// Waits for a child's result as `w` allows, as an ABI code on failure.
fn wait_child(job: &ChildJob, w: Wait<'_>) -> Result<(String, Option<u64>), i32> {
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
        let l = asked_limits(r#"{"timeout_ms": 250, "max_memory": 1048576}"#).unwrap();
        assert_eq!(l.get_timeout(), Some(Duration::from_millis(250)));
        assert_eq!(l.get_max_memory(), 1 << 20);
        assert!(asked_limits("").is_some());
        assert!(asked_limits(r#"{"max_memroy": 1}"#).is_none(), "typo");
        assert!(asked_limits(r#"{"max_memory": -1}"#).is_none());
        assert!(asked_limits(r#"{"timeout_ms": "5"}"#).is_none());
        assert!(asked_limits("[1]").is_none());
    }
}
