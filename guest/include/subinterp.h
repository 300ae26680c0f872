/*
 * subinterp.h — guest ABI v1 of subinterp.
 *
 * A guest (any wasm32 module) imports these functions from the module
 * "subinterp_v1" to use channels. Every function takes and returns plain
 * integers:
 *
 *   - pointers, lengths and offsets are unsigned 32-bit values in the guest's
 *     own linear memory (its exported "memory");
 *   - a handle is a positive int32 naming a view or a channel end in this
 *     interpreter's handle table; handles carry a generation and are
 *     scrambled with a key of the table's own, so a forged, stale (released)
 *     or foreign handle is refused with SI_ERR_BAD_HANDLE, never aliased; a
 *     released handle is never valid again in the interpreter's lifetime;
 *   - an interpreter and everything it creates share one budget (its
 *     memory limit covers linear memories and what the host holds for the
 *     tree: sent buffers, views held, queued messages, channels; handles
 *     and open files likewise); a call past it gets SI_ERR_LIMIT and nothing
 *     is lost (a refused si_recv leaves the message at the channel's head);
 *   - a negative result is one of the SI_ERR_* codes; no argument can crash
 *     the host;
 *   - timeouts are microseconds: SI_BLOCK (-1) waits (but never past the
 *     run's deadline: then the run ends with a timeout error), SI_NOWAIT (0)
 *     never waits, a positive value waits at most that long.
 *
 * Ownership, per handle argument:
 *   borrowed  the call uses the handle; the guest still owns it afterwards;
 *   consumed  the handle is invalid after the call;
 *   created   the result is a new handle the guest must si_release().
 *
 * Copies: si_send copies the guest's bytes once into an immutable host
 * buffer; si_view_read copies only the range asked for into guest memory;
 * si_send_handle and si_view_slice copy nothing.
 */
#ifndef SUBINTERP_H
#define SUBINTERP_H

#include <stdint.h>

#define SI_IMPORT(name) __attribute__((import_module("subinterp_v1"), import_name(name)))

/* Error codes (results < 0). */
#define SI_OK 0
#define SI_ERR_BAD_HANDLE -1  /* not a live handle of this interpreter */
#define SI_ERR_WRONG_KIND -2  /* e.g. a view where a sending end is needed */
#define SI_ERR_BOUNDS -3      /* pointer/length/offset outside memory or view */
#define SI_ERR_EMPTY -4       /* nothing to receive (SI_NOWAIT) */
#define SI_ERR_FULL -5        /* no room to send (SI_NOWAIT) */
#define SI_ERR_CLOSED -6      /* channel closed, or its other side is gone */
#define SI_ERR_TIMEOUT -7     /* the call's own timeout passed */
#define SI_ERR_NOT_FOUND -8   /* no channel end passed to run under that name */
#define SI_ERR_LIMIT -9       /* a limit of this interpreter or its tree: handles, memory, interpreters */
#define SI_ERR_INVALID -10    /* invalid argument (negative capacity, bad UTF-8) */
#define SI_ERR_TOO_LARGE -11  /* message over the channel's queued-bytes limit */
#define SI_ERR_RELEASED -12   /* the named end was released by this interpreter */
#define SI_ERR_BUSY -13       /* that interpreter is already running */
#define SI_ERR_HOST -14       /* a host function failed (see si_host_call) */
#define SI_ERR_DENIED -15     /* not within this interpreter's own grants (si_interp_create's "dirs") */

/* Timeouts. */
#define SI_BLOCK ((int64_t)-1)
#define SI_NOWAIT ((int64_t)0)

/* si_handle_kind results. */
#define SI_KIND_VIEW 1
#define SI_KIND_RECV 2
#define SI_KIND_SEND 3
#define SI_KIND_JOB 4   /* a started run, from si_interp_start */

/* The channel end the host passed to this run under `name` (UTF-8, `len`
 * bytes). Returns the handle (borrowed: the same one on every call), or
 * SI_ERR_NOT_FOUND, SI_ERR_RELEASED, SI_ERR_INVALID, SI_ERR_BOUNDS. */
SI_IMPORT("lookup") int32_t si_lookup(const char *name, uint32_t len);

/* Copy `len` bytes at `data` into a new buffer and send it on `end` (a
 * sending end, borrowed). The buffer counts against this interpreter's
 * tree's memory for as long as it exists anywhere. Returns 0, or SI_ERR_FULL
 * (nowait), SI_ERR_TIMEOUT, SI_ERR_CLOSED, SI_ERR_TOO_LARGE, SI_ERR_LIMIT
 * (the tree's memory), SI_ERR_BOUNDS, SI_ERR_BAD_HANDLE, SI_ERR_WRONG_KIND. */
SI_IMPORT("send") int32_t si_send(int32_t end, const void *data, uint32_t len, int64_t timeout_us);

/* Send what `handle` names without copying: a view is forwarded (the same
 * buffer), a channel end is shared (the receiver gets its own handle to the
 * same channel). `end` and `handle` are borrowed. Returns 0 or an error as
 * si_send. */
SI_IMPORT("send_handle") int32_t si_send_handle(int32_t end, int32_t handle, int64_t timeout_us);

/* Receive the oldest message on `end` (a receiving end, borrowed). Returns a
 * created handle — a view, or a channel end that was sent — or SI_ERR_EMPTY
 * (nowait), SI_ERR_TIMEOUT, SI_ERR_CLOSED (closed and drained), SI_ERR_LIMIT
 * (no message is taken then), SI_ERR_BAD_HANDLE, SI_ERR_WRONG_KIND. */
SI_IMPORT("recv") int32_t si_recv(int32_t end, int64_t timeout_us);

/* si_recv and the kind of what was received, in one call: on success
 * ((int64_t)kind << 32) | handle, where kind is SI_KIND_VIEW, SI_KIND_RECV or
 * SI_KIND_SEND and handle (the low 32 bits) is created, as si_recv's; on
 * failure the negative SI_ERR_* code si_recv would return (so the result is
 * negative exactly when it failed). See si_recv_split. */
SI_IMPORT("recv_kind") int64_t si_recv_kind(int32_t end, int64_t timeout_us);

/* The handle of a successful si_recv_kind result, and its kind into *kind. */
static inline int32_t si_recv_split(int64_t r, int32_t *kind) {
    *kind = (int32_t)(r >> 32);
    return (int32_t)(r & 0x7fffffff);
}

/* SI_KIND_VIEW, SI_KIND_RECV or SI_KIND_SEND for a live handle (borrowed),
 * else SI_ERR_BAD_HANDLE. */
SI_IMPORT("handle_kind") int32_t si_handle_kind(int32_t handle);

/* Length in bytes of a view (borrowed), or SI_ERR_BAD_HANDLE,
 * SI_ERR_WRONG_KIND, SI_ERR_TOO_LARGE (over 2 GiB - 1). */
SI_IMPORT("view_len") int32_t si_view_len(int32_t view);

/* Copy up to `len` bytes of `view` (borrowed), starting at `offset`, to `dst`.
 * Returns the number copied (fewer near the end of the view), or
 * SI_ERR_BOUNDS (offset past the end, or dst range outside memory),
 * SI_ERR_BAD_HANDLE, SI_ERR_WRONG_KIND. */
SI_IMPORT("view_read") int32_t si_view_read(int32_t view, uint32_t offset, void *dst, uint32_t len);

/* A new view (created) of `len` bytes of `view` (borrowed) from `offset`; no
 * copy. Returns the handle, or SI_ERR_BOUNDS, SI_ERR_LIMIT,
 * SI_ERR_BAD_HANDLE, SI_ERR_WRONG_KIND. */
SI_IMPORT("view_slice") int32_t si_view_slice(int32_t view, uint32_t offset, uint32_t len);

/* Let go of any handle (consumed). The buffer behind a view is freed when no
 * view of it is left anywhere. Returns 0 or SI_ERR_BAD_HANDLE. */
SI_IMPORT("release") int32_t si_release(int32_t handle);

/* Close the channel of the sending end `end` (borrowed) for every sender:
 * queued messages can still be received, then receivers get SI_ERR_CLOSED.
 * Returns 0, SI_ERR_BAD_HANDLE or SI_ERR_WRONG_KIND. */
SI_IMPORT("close") int32_t si_close(int32_t end);

/* Create a channel holding up to `capacity` messages (0: rendezvous). Writes
 * two created handles at `out`: out[0] the receiving end, out[1] the sending
 * end. Returns 0, or SI_ERR_INVALID, SI_ERR_LIMIT, SI_ERR_BOUNDS. */
SI_IMPORT("channel_create") int32_t si_channel_create(int32_t capacity, int32_t out[2]);

/* How many messages the channel of `end` (either kind, borrowed) holds now:
 * a snapshot, which other interpreters may change right after. Returns the
 * count, or SI_ERR_BAD_HANDLE, SI_ERR_WRONG_KIND. */
SI_IMPORT("channel_len") int32_t si_channel_len(int32_t end);

/* The most channel ends one si_wait may name. */
#define SI_WAIT_MAX 1024

/* Wait until one of `count` channel ends is ready, or `timeout_us` passes
 * (SI_BLOCK: until the run's deadline; SI_NOWAIT: only look). `ends` holds
 * `count` pairs of int32: a channel end (borrowed) and, for a sending end,
 * the byte length of the message it would send (ignored for a receiving
 * end). A receiving end is ready when a message is queued or the channel is
 * closed; a sending end when a message of that length would be queued at
 * once, or the send would fail at once (closed, too large). Ready is a hint:
 * another receiver or sender may act first, so try the operation with
 * SI_NOWAIT and wait again if it says empty or full. A receiving end being
 * waited on counts as a waiting receiver of a rendezvous channel (capacity
 * 0), so a blocked sender can hand its message over. With `count` 0 it only
 * sleeps. Returns the index of the first ready end, or SI_ERR_EMPTY
 * (SI_NOWAIT, none ready), SI_ERR_TIMEOUT, SI_ERR_INVALID (`count` over
 * SI_WAIT_MAX), SI_ERR_BOUNDS, SI_ERR_BAD_HANDLE, SI_ERR_WRONG_KIND (a
 * handle that is not a channel end). */
SI_IMPORT("wait") int32_t si_wait(const int32_t *ends, uint32_t count, int64_t timeout_us);

/* Set the current call's output (what Interpreter::call returns to the
 * host): copies `len` bytes at `ptr`, replacing any output set before in
 * this run. Returns 0, or SI_ERR_BOUNDS, SI_ERR_LIMIT (the tree's memory). A
 * plugin export called with Interpreter::call has the type
 * `int32_t name(int32_t input_view)`: the input is a view (borrowed; the
 * host releases it after the call), and a non-zero result fails the call. */
SI_IMPORT("call_output") int32_t si_call_output(const void *ptr, uint32_t len);

/* This interpreter's id (the host is 0). */
SI_IMPORT("interpreter_id") int64_t si_interpreter_id(void);

/* Names of the channel ends bound for this run: a created view holding a
 * JSON array of strings (read it, then si_release it). */
SI_IMPORT("bound_names") int32_t si_bound_names(void);

/* Report why the current run failed, as UTF-8 JSON
 * {"type": ..., "message": ..., "stack": ...}; the host puts it in the run's
 * result when the guest's entry point then returns failure. Returns 0 or
 * SI_ERR_BOUNDS. */
SI_IMPORT("run_error") int32_t si_run_error(const char *json, uint32_t len);

/* 1 when the run must stop now (its deadline passed or the interpreter is
 * closing), else 0. Interpreters poll it to stop cleanly before the host
 * stops them by force. */
SI_IMPORT("should_stop") int32_t si_should_stop(void);

/* ---- interpreters ------------------------------------------------------
 * A guest may create JavaScript interpreters and run source in them. It may
 * run, start and close only the interpreters it created itself, and see
 * only itself and the interpreters below it: any other id, whether it exists
 * or not, is SI_ERR_NOT_FOUND. A child never gets limits above its
 * creator's, shares its tree's budget, and takes the fuel of its creation and
 * of its runs from its creator's run; the number and nesting depth of
 * interpreters a tree may create is capped (SI_ERR_LIMIT). Ids are int64. */

/* Create a JS interpreter. `opts` is UTF-8 JSON with optional limits:
 * {"timeout_ms", "max_memory", "fuel", "max_output", "max_handles",
 * "max_interpreters", "max_depth", "max_open_files"} (non-negative numbers; any other key is
 * SI_ERR_INVALID); each is clamped to this interpreter's own (interpreters
 * and depth to one less). "lang": "js" or "python" picks the guest (default:
 * this one's). "dirs": [{"path": "/guest/dir", "read_only": bool}, ...] (at
 * most 64) gives the child directories of this interpreter's own directory
 * grants, at the same guest paths: each path must be absolute, without "..",
 * at or below one of its grants, a directory that does not leave that grant
 * through a symlink, and not writable ("read_only": false) where that grant
 * is read-only (absent: as the grant) — else SI_ERR_DENIED and nothing is
 * created. None is given by default. Returns the id (> 0), or SI_ERR_LIMIT
 * (count, depth, pool or memory), SI_ERR_INVALID, SI_ERR_DENIED,
 * SI_ERR_BOUNDS. */
SI_IMPORT("interp_create") int64_t si_interp_create(const char *opts, uint32_t len);

/* Run `src` (UTF-8 JavaScript) in child `id`, blocking until it ends (or
 * this run's own deadline). `bindings` is UTF-8 JSON {"name": handle, ...}
 * of this interpreter's channel ends (borrowed) that the child sees as
 * `channels.name`; the key "$module" is not a channel: its string value
 * makes `src` an ES module of that name (a JavaScript child: its imports
 * resolve from that name through the module folder it inherited; a Python
 * child: SI_ERR_INVALID). Returns a created view holding the result JSON
 * {"completed": bool, "error": null | {"type", "kind", "message", "stack"}}, or
 * SI_ERR_NOT_FOUND (not a live child of this interpreter), SI_ERR_INVALID
 * (bad UTF-8 or JSON), SI_ERR_BUSY, SI_ERR_BAD_HANDLE,
 * SI_ERR_WRONG_KIND, SI_ERR_BOUNDS, SI_ERR_LIMIT. */
SI_IMPORT("interp_run") int32_t si_interp_run(int64_t id, const char *src, uint32_t src_len,
                                              const char *bindings, uint32_t bindings_len);

/* As si_interp_run, but on the child's own thread (with at most half the
 * fuel this run has left; the rest comes back at si_interp_join): returns a
 * created job handle for si_interp_join. */
SI_IMPORT("interp_start") int32_t si_interp_start(int64_t id, const char *src, uint32_t src_len,
                                                  const char *bindings, uint32_t bindings_len);

/* Wait for a job (borrowed) to end; returns a created view of the result
 * JSON as si_interp_run. A job can be joined once (then SI_ERR_CLOSED).
 * SI_ERR_TIMEOUT / SI_ERR_EMPTY when `timeout_us` passes first. */
SI_IMPORT("interp_join") int32_t si_interp_join(int32_t job, int64_t timeout_us);

/* Close child `id` (stops it if running; the channels it and its children
 * created are closed and emptied). 0, SI_ERR_NOT_FOUND (not a live child of
 * this interpreter; closing twice is fine), or SI_ERR_INVALID (this
 * interpreter itself). */
SI_IMPORT("interp_close") int32_t si_interp_close(int64_t id);

/* 0 idle, 1 running (this interpreter, or one below it), or
 * SI_ERR_NOT_FOUND (any other id). */
SI_IMPORT("interp_status") int32_t si_interp_status(int64_t id);

/* A created view holding a JSON array of the ids of this interpreter and
 * the live interpreters below it. */
SI_IMPORT("interp_list") int32_t si_interp_list(void);

/* The id of the main interpreter, PEP 554's "main": the host itself, id 0
 * (as `Host::get_main` says). It is always running; it cannot be run or
 * closed from a guest. */
SI_IMPORT("main_id") int64_t si_main_id(void);

/* Convenience: look up a NUL-terminated name. */
static inline int32_t si_lookup_str(const char *name) {
    uint32_t n = 0;
    while (name[n]) n++;
    return si_lookup(name, n);
}

/* ---- host functions: the import module subinterp_host_v1 ----------------
 * Functions the host registered (HostBuilder::func) and granted to this
 * interpreter (InterpreterBuilder::allow); a child has at most its
 * creator's. */

/* Call the host function `name` (UTF-8) with a copy of `len` bytes at `in`.
 * Returns a created view of its result; or SI_ERR_HOST when the function
 * failed, with a created view of its message written at `*err`;
 * SI_ERR_NOT_FOUND for a name this interpreter was not granted (the same
 * whether or not the host has it); SI_ERR_BOUNDS, SI_ERR_INVALID (not UTF-8),
 * SI_ERR_LIMIT (handles or memory). A function that blocks is bounded by
 * the run's deadline: the run ends there (a guest in its grace period, as
 * the JS guest, gets SI_ERR_TIMEOUT, or SI_ERR_CLOSED when it was closed). */
__attribute__((import_module("subinterp_host_v1"), import_name("call")))
int32_t si_host_call(const char *name, uint32_t name_len, const void *in, uint32_t len, int32_t *err);

#endif /* SUBINTERP_H */
