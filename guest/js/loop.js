// loop.js — the JavaScript guest's event loop and structured messages.
//
// Evaluated once, after prelude.js, when the guest is set up (so it is in
// the snapshot and costs a new interpreter nothing). It is a function of
// `natives` (loop.c's functions) and the prelude's `internals`, and gives
// loop.c back `{step, reset}`:
//
// - timers (setTimeout/setInterval/clear*) in a binary heap by due time;
// - channel operations waiting on the host (recvAsync, sendAsync and their
//   value forms), oldest first;
// - step(): fires one due timer, or settles the waiting operations that can
//   go ahead, or else sleeps on the host (`wait` import) until the next timer
//   is due or one of the waiting channel ends is ready. loop.c calls it,
//   then runs the promise jobs it caused, while anything is pending;
// - sendValue/recvValue: any structured-clonable value as one message, with
//   QuickJS's own serialisation (loop.c's writeValue/readValue).
(function (natives, internals) {
  "use strict";
  const { RecvChannel, SendChannel, View, TimeoutError } = globalThis.interpreters;
  const handleOf = internals.handleOf;
  const EMPTY = -4, TIMEOUT = -7;
  // The most ends one host wait may name (SI_WAIT_MAX).
  const WAIT_MAX = 1024;
  const now = () => performance.now();

  // ---- timers ----------------------------------------------------------
  const timers = new Map(); // id -> timer {id, due, seq, fn, args, every}
  let heap = []; // live timers by (due, seq), and cleared ones not yet dropped
  let nextId = 1, nextSeq = 0;
  const waiters = []; // channel operations waiting on the host, oldest first

  // Tells loop.c whether anything is pending (so a script that schedules
  // nothing never calls into this file once it ends).
  const sync = () => natives.loopCount(timers.size + waiters.length);

  const before = (a, b) => a.due < b.due || (a.due === b.due && a.seq < b.seq);
  function swap(i, j) { const t = heap[i]; heap[i] = heap[j]; heap[j] = t; }
  function push(t) {
    heap.push(t);
    for (let i = heap.length - 1; i > 0;) {
      const p = (i - 1) >> 1;
      if (!before(heap[i], heap[p])) break;
      swap(i, p);
      i = p;
    }
  }
  function pop() {
    const last = heap.pop();
    if (heap.length === 0) return;
    heap[0] = last;
    for (let i = 0; ;) {
      const l = 2 * i + 1, r = l + 1;
      let m = i;
      if (l < heap.length && before(heap[l], heap[m])) m = l;
      if (r < heap.length && before(heap[r], heap[m])) m = r;
      if (m === i) break;
      swap(i, m);
      i = m;
    }
  }
  const live = (t) => timers.get(t.id) === t;
  // The earliest live timer; cleared ones at the top are dropped on the way.
  function peek() {
    while (heap.length && !live(heap[0])) pop();
    return heap[0];
  }
  // Cleared timers deeper in the heap are dropped when they are most of it.
  function compact() {
    if (heap.length < 1024 || heap.length < 2 * timers.size) return;
    heap = heap.filter(live).sort((a, b) => (before(a, b) ? -1 : 1));
  }

  function schedule(fn, delay, args, repeat, what) {
    if (typeof fn !== "function") throw new TypeError(`${what}: the callback must be a function`);
    let ms = Number(delay);
    // As Node: at least 1 ms, and 1 ms for anything not in range.
    if (!(ms >= 1 && ms <= 2147483647)) ms = 1;
    const t = { id: nextId++, due: now() + ms, seq: nextSeq++, fn, args, every: repeat ? ms : 0 };
    timers.set(t.id, t);
    push(t);
    compact();
    sync();
    return t.id;
  }
  function clear(id) {
    if (timers.delete(id)) sync();
  }
  function fire(t) {
    pop();
    if (t.every) {
      t.due = now() + t.every;
      t.seq = nextSeq++;
      push(t);
    } else {
      timers.delete(t.id);
      sync();
    }
    Reflect.apply(t.fn, globalThis, t.args);
  }

  const def = (name, value) =>
    Object.defineProperty(globalThis, name, { value, writable: true, configurable: true });
  def("setTimeout", function setTimeout(fn, delay, ...args) {
    return schedule(fn, delay, args, false, "setTimeout");
  });
  def("setInterval", function setInterval(fn, delay, ...args) {
    return schedule(fn, delay, args, true, "setInterval");
  });
  def("clearTimeout", function clearTimeout(id) { clear(id); });
  def("clearInterval", function clearInterval(id) { clear(id); });

  // ---- channel operations that wait on the host ------------------------
  // A waiter: {end (the native handle), len (a send's byte length), attempt()}
  // where attempt() tries the operation once without waiting and returns
  // true once the waiter is settled.
  function pollWaiters() {
    let settled = false;
    for (let i = 0; i < waiters.length;) {
      if (waiters[i].attempt()) {
        waiters.splice(i, 1);
        settled = true;
      } else {
        i++;
      }
    }
    if (settled) sync();
    return settled;
  }

  function wait(timeoutUs) {
    const ends = [], seen = new Set();
    for (const w of waiters) {
      if (seen.has(w.end)) continue;
      if (seen.size === WAIT_MAX) {
        // More ends than one wait takes: poll the rest now and then.
        timeoutUs = timeoutUs < 0 ? 10000 : Math.min(timeoutUs, 10000);
        break;
      }
      seen.add(w.end);
      ends.push(w.end, w.len);
    }
    const r = natives.wait(ends, timeoutUs);
    if (r >= 0) pollWaiters();
    else if (r !== TIMEOUT && r !== EMPTY) throw new Error(`event loop: waiting failed (error ${r})`);
  }

  // One turn of the loop (see the top of this file).
  function step() {
    const t = peek();
    const at = now();
    if (t && t.due <= at) return fire(t);
    if (waiters.length && pollWaiters()) return;
    wait(t ? Math.max(1, Math.ceil((t.due - at) * 1000)) : -1);
  }

  // After a run that failed: nothing of it is left to run in the next one.
  function reset() {
    timers.clear();
    heap = [];
    waiters.length = 0;
    sync();
  }

  // A promise for an operation that `attempt` (which settles it and returns
  // true, or returns false to be tried again) may not finish at once;
  // {timeout: ms} rejects it with TimeoutError.
  // Running out of memory is thrown, never turned into a rejection: a
  // script flooding async operations must end at its memory limit, not run
  // on to its deadline with every failure unobserved.
  const outOfMemory = (e) => e instanceof InternalError && e.message === "out of memory";

  // The work is done outside the Promise's executor, so that running out of
  // memory while queueing the waiter is thrown to the caller (and ends a
  // script that floods waiters) instead of becoming a rejection nobody sees.
  function waitFor(end, len, opts, what, attempt) {
    let resolve, reject;
    const p = new Promise((res, rej) => { resolve = res; reject = rej; });
    let timer = 0;
    const w = {
      end, len,
      attempt() {
        try {
          if (!attempt(resolve)) return false;
        } catch (e) {
          reject(e);
        }
        if (timer) clear(timer);
        return true;
      },
    };
    if (w.attempt()) return p;
    if (opts !== undefined && opts !== null && opts.timeout !== undefined) {
      const ms = Number(opts.timeout);
      if (!(ms >= 0)) {
        reject(new TypeError("timeout must be a number of milliseconds >= 0"));
        return p;
      }
      timer = schedule(() => {
        const i = waiters.indexOf(w);
        if (i >= 0) waiters.splice(i, 1);
        sync();
        reject(new TimeoutError(`${what}: timed out`));
      }, ms, [], false, what);
    }
    waiters.push(w);
    sync();
    return p;
  }

  const NOTHING = Symbol("nothing");
  const method = (C, name, fn) =>
    Object.defineProperty(C.prototype, name, { value: fn, writable: true, configurable: true });

  /** A promise of the next message; other work goes on while it waits. */
  method(RecvChannel, "recvAsync", function recvAsync(opts) {
    let end;
    try {
      end = handleOf(this, "recvAsync");
    } catch (e) {
      if (outOfMemory(e)) throw e;
      return Promise.reject(e);
    }
    return waitFor(end, 0, opts, "recvAsync", (resolve) => {
      const m = this.recvNowait(NOTHING);
      if (m === NOTHING) return false;
      resolve(m);
      return true;
    });
  });

  // What a send that must wait keeps: its own copy of the bytes (the
  // caller may change its array meanwhile), and their length.
  function held(data) {
    if (typeof data === "string") return new TextEncoder().encode(data);
    if (data instanceof ArrayBuffer) return new Uint8Array(data.slice(0));
    if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
    return data; // a View (forwarded as it is) or a channel end
  }

  /** A promise that settles once `data` is queued; other work goes on
   *  while the channel is full. */
  method(SendChannel, "sendAsync", function sendAsync(data, opts) {
    let end, copy;
    try {
      end = handleOf(this, "sendAsync");
      if (this.sendNowait(data)) return Promise.resolve();
      copy = held(data);
    } catch (e) {
      if (outOfMemory(e)) throw e;
      return Promise.reject(e);
    }
    const len = copy instanceof Uint8Array || copy instanceof View ? copy.length : 0;
    return waitFor(end, len, opts, "sendAsync", (resolve) => {
      if (!this.sendNowait(copy)) return false;
      resolve();
      return true;
    });
  });

  // ---- structured messages ---------------------------------------------
  // QuickJS's serialisation takes everything structured clone does except
  // errors: a value holding errors goes as {[ERRORS]: copy}, the copy with
  // each error as {[ERROR]: {name, message, stack, cause}}.
  const ERRORS = "\u0000subinterp:errors", ERROR = "\u0000subinterp:error";

  function cloneError(message) {
    const e = new Error(message);
    e.name = "DataCloneError";
    return e;
  }

  // What structured clone takes as it is (QuickJS writes them itself).
  const LEAVES = new Set(["Date", "RegExp", "ArrayBuffer", "Number", "String", "Boolean", "BigInt",
    "Uint8Array", "Int8Array", "Uint8ClampedArray", "Uint16Array", "Int16Array", "Uint32Array",
    "Int32Array", "Float16Array", "Float32Array", "Float64Array", "BigInt64Array", "BigUint64Array"]);
  const tagOf = (x) => Object.prototype.toString.call(x).slice(8, -1);

  // A copy of `x` with its errors encoded (shared and cyclic parts stay
  // so); throws DataCloneError at anything that cannot be cloned.
  function encode(x, memo, what) {
    if (typeof x === "function") {
      throw cloneError(`${what}: ${x.name ? `function ${x.name}` : "a function"} could not be cloned`);
    }
    if (typeof x === "symbol") throw cloneError(`${what}: a symbol could not be cloned`);
    if (x === null || typeof x !== "object") return x;
    if (memo.has(x)) return memo.get(x);
    if (x instanceof SharedArrayBuffer || (ArrayBuffer.isView(x) && x.buffer instanceof SharedArrayBuffer)) {
      throw cloneError(`${what}: a SharedArrayBuffer could not be cloned`);
    }
    const tag = tagOf(x);
    if (LEAVES.has(tag)) return x;
    let out;
    if (x instanceof Error || tag === "Error") {
      out = {};
      memo.set(x, out);
      const e = { name: String(x.name), message: String(x.message), stack: String(x.stack ?? "") };
      if (Object.hasOwn(x, "cause")) e.cause = encode(x.cause, memo, what);
      out[ERROR] = e;
      memo.hasErrors = true;
    } else if (Array.isArray(x)) {
      out = [];
      memo.set(x, out);
      for (let i = 0; i < x.length; i++) out[i] = encode(x[i], memo, what);
    } else if (tag === "Map") {
      out = new Map();
      memo.set(x, out);
      for (const [k, v] of x) out.set(encode(k, memo, what), encode(v, memo, what));
    } else if (tag === "Set") {
      out = new Set();
      memo.set(x, out);
      for (const v of x) out.add(encode(v, memo, what));
    } else if (tag === "Object") {
      out = {};
      memo.set(x, out);
      for (const k of Object.keys(x)) out[k] = encode(x[k], memo, what);
    } else {
      throw cloneError(`${what}: ${tag} could not be cloned`);
    }
    return out;
  }

  const STANDARD = ["Error", "EvalError", "RangeError", "ReferenceError", "SyntaxError", "TypeError", "URIError", "AggregateError"];
  function makeError(d) {
    if (d === null || typeof d !== "object") throw new TypeError("an error record is not an object");
    const C = STANDARD.includes(d.name) ? globalThis[d.name] : Error;
    const e = C === AggregateError ? new AggregateError([], d.message) : new C(d.message);
    if (e.name !== d.name) e.name = d.name;
    Object.defineProperty(e, "stack", { value: d.stack, writable: true, configurable: true });
    return e;
  }

  // The received copy with its encoded errors made errors again.
  function revive(x, memo) {
    if (x === null || typeof x !== "object") return x;
    if (memo.has(x)) return memo.get(x);
    if (Object.getPrototypeOf(x) === Object.prototype && Object.hasOwn(x, ERROR)) {
      const d = x[ERROR];
      const e = makeError(d);
      memo.set(x, e);
      if (Object.hasOwn(d, "cause")) {
        Object.defineProperty(e, "cause", { value: revive(d.cause, memo), writable: true, configurable: true });
      }
      return e;
    }
    memo.set(x, x);
    if (Array.isArray(x)) {
      for (let i = 0; i < x.length; i++) x[i] = revive(x[i], memo);
    } else if (x instanceof Map) {
      const entries = [...x];
      x.clear();
      for (const [k, v] of entries) x.set(revive(k, memo), revive(v, memo));
    } else if (x instanceof Set) {
      const items = [...x];
      x.clear();
      for (const v of items) x.add(revive(v, memo));
    } else if (!ArrayBuffer.isView(x) && !(x instanceof ArrayBuffer) && !(x instanceof Date) && !(x instanceof RegExp)) {
      for (const k of Object.keys(x)) x[k] = revive(x[k], memo);
    }
    return x;
  }

  // Running out of memory (or, writing, of stack) is not a cloning error.
  const oom = (e) => e instanceof InternalError && e.message === "out of memory";
  const fatal = (e) => oom(e) || (e instanceof RangeError && e.message === "Maximum call stack size exceeded");

  /** `v` as the bytes of one structured message (a Uint8Array). */
  function writeValue(v, what) {
    try {
      return natives.writeValue(v);
    } catch (e) {
      if (fatal(e)) throw e;
      const memo = new Map();
      const copy = encode(v, memo, what);
      try {
        return natives.writeValue(memo.hasErrors ? { [ERRORS]: copy } : copy);
      } catch (e2) {
        if (fatal(e2)) throw e2;
        throw cloneError(`${what}: ${e2.message}`);
      }
    }
  }

  /** The value a received message holds (the view is released). */
  function readValue(m, what) {
    if (!(m instanceof View)) throw new TypeError(`${what}: a channel end arrived, not a value`);
    let v;
    try {
      v = natives.readValue(handleOf(m, what));
    } catch (e) {
      if (oom(e)) throw e;
      throw cloneError(`${what}: the message is not a structured value (${e.message})`);
    } finally {
      m.release();
    }
    if (v === null || typeof v !== "object" || Object.getPrototypeOf(v) !== Object.prototype ||
        !Object.hasOwn(v, ERRORS)) {
      return v;
    }
    try {
      return revive(v[ERRORS], new Map());
    } catch (e) {
      if (oom(e)) throw e;
      throw cloneError(`${what}: the message is not a structured value (${e.message})`);
    }
  }

  /** Sends any structured-clonable value as one message (blocks while full). */
  method(SendChannel, "sendValue", function sendValue(v, opts) {
    this.send(writeValue(v, "sendValue"), opts);
  });
  /** sendValue's awaitable form (see sendAsync). */
  method(SendChannel, "sendValueAsync", function sendValueAsync(v, opts) {
    return this.sendAsync(writeValue(v, "sendValueAsync"), opts);
  });
  /** The next message as the value sendValue sent (blocks while empty). */
  method(RecvChannel, "recvValue", function recvValue(opts) {
    return readValue(this.recv(opts), "recvValue");
  });
  /** recvValue's awaitable form (see recvAsync). */
  method(RecvChannel, "recvValueAsync", function recvValueAsync(opts) {
    return this.recvAsync(opts).then((m) => readValue(m, "recvValueAsync"));
  });

  return { step, reset };
})
