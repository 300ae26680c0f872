// prelude.js — the JavaScript side of subinterp's JS guest.
//
// Evaluated once when a JS interpreter is created. It turns the natives in
// `__si` (subinterp_js.c, one per ABI call) into the script-facing API:
// `interpreters`, the per-run `channels` and the error classes (`console`
// and the web globals are in console.js and web.js, see web.c).
// Names are fixed so scripts are portable between hosts.
(function () {
  "use strict";
  const si = globalThis.__si;
  delete globalThis.__si;
  // What the C layer calls (binding channels, describing errors, calls and
  // their output): returned to it, not visible on globalThis.
  const internals = {};

  // ABI error codes (guest/include/subinterp.h).
  const BAD_HANDLE = -1, WRONG_KIND = -2, BOUNDS = -3, EMPTY = -4, FULL = -5,
    CLOSED = -6, TIMEOUT = -7, NOT_FOUND = -8, LIMIT = -9, INVALID = -10,
    TOO_LARGE = -11, RELEASED = -12, BUSY = -13, HOST = -14, DENIED = -15;
  const KIND_VIEW = 1, KIND_RECV = 2, KIND_SEND = 3;

  function errorClass(name) {
    const C = class extends Error {
      constructor(message, options) {
        super(message, options);
        this.name = name;
      }
    };
    Object.defineProperty(C, "name", { value: name });
    return C;
  }
  const ChannelClosedError = errorClass("ChannelClosedError");
  const ChannelEmptyError = errorClass("ChannelEmptyError");
  const ChannelReleasedError = errorClass("ChannelReleasedError");
  const ChannelFullError = errorClass("ChannelFullError");
  const TimeoutError = errorClass("TimeoutError");
  const InterpreterClosedError = errorClass("InterpreterClosedError");
  const LimitError = errorClass("LimitError");
  const HostError = errorClass("HostError");
  const errors = {
    ChannelClosedError, ChannelEmptyError, ChannelReleasedError, ChannelFullError,
    TimeoutError, InterpreterClosedError, LimitError, HostError,
  };

  // Throws the error an ABI code stands for. `timed` says the caller gave a
  // timeout, so "empty"/"full" after waiting read as a timeout.
  function fail(code, what, timed) {
    switch (code) {
      case EMPTY: if (timed) throw new TimeoutError(`${what}: timed out`);
        throw new ChannelEmptyError(`${what}: channel is empty`);
      case FULL: if (timed) throw new TimeoutError(`${what}: timed out`);
        throw new ChannelFullError(`${what}: channel is full`);
      case TIMEOUT: throw new TimeoutError(`${what}: timed out`);
      case CLOSED: throw new ChannelClosedError(`${what}: channel is closed`);
      case RELEASED: case BAD_HANDLE:
        throw new ChannelReleasedError(`${what}: already released`);
      case LIMIT: throw new LimitError(`${what}: handle limit reached`);
      case TOO_LARGE: throw new LimitError(`${what}: message larger than the channel allows`);
      case NOT_FOUND: throw new InterpreterClosedError(`${what}: interpreter is closed or unknown`);
      case WRONG_KIND: throw new TypeError(`${what}: wrong kind of handle`);
      case BOUNDS: throw new RangeError(`${what}: out of bounds`);
      case INVALID: throw new TypeError(`${what}: invalid argument`);
      default: throw new Error(`${what}: error ${code}`);
    }
  }

  // {timeout: ms} -> microseconds for the ABI (-1 blocks).
  function micros(opts) {
    if (opts === undefined || opts === null || opts.timeout === undefined) return -1;
    const ms = Number(opts.timeout);
    if (!(ms >= 0)) throw new TypeError("timeout must be a number of milliseconds >= 0");
    return Math.floor(ms * 1000);
  }

  // Each wrapper keeps its native Handle under a symbol only this prelude
  // holds (faster than a WeakMap on the message path).
  const H = Symbol("handle");

  function live(obj, what) {
    const h = obj[H];
    if (h === undefined) throw new ChannelReleasedError(`${what}: already released`);
    return h;
  }

  // For loop.js: the native handle of a view or channel end.
  Object.defineProperty(internals, "handleOf", { value: live });

  function release(obj) {
    const h = obj[H];
    if (h === undefined) return;
    obj[H] = undefined;
    si.release(h);
  }

  class View {
    constructor(h) { this[H] = h; }
    get length() {
      const n = si.viewLen(live(this, "view.length"));
      if (n < 0) fail(n, "view.length");
      return n;
    }
    get byteLength() { return this.length; }
    /** A Uint8Array copy of the whole view. */
    bytes() {
      const out = si.viewBytes(live(this, "view.bytes"));
      if (typeof out === "number") fail(out, "view.bytes");
      return out;
    }
    /** The view decoded as UTF-8 (TypeError when it is not valid UTF-8). */
    text() {
      const s = si.viewText(live(this, "view.text"));
      if (typeof s === "number") fail(s, "view.text");
      return s;
    }
    /** A narrower view of the same bytes (no copy); indexes as TypedArray.slice. */
    slice(start, end) {
      const len = this.length;
      const norm = (i, d) => {
        if (i === undefined) return d;
        i = Math.trunc(Number(i)) || 0;
        return i < 0 ? Math.max(len + i, 0) : Math.min(i, len);
      };
      const s = norm(start, 0), e = Math.max(norm(end, len), s);
      const r = si.viewSlice(live(this, "view.slice"), s, e - s);
      if (typeof r === "number") fail(r, "view.slice");
      return new View(r);
    }
    release() { release(this); }
    toString() { return `[View ${this.length} bytes]`; }
  }

  function wrap(h) {
    switch (si.kind(h)) {
      case KIND_VIEW: return new View(h);
      case KIND_RECV: return new RecvChannel(h);
      case KIND_SEND: return new SendChannel(h);
      default: throw new Error("received an unknown handle");
    }
  }

  class RecvChannel {
    constructor(h) { this[H] = h; }
    /** Blocks until a message arrives; {timeout: ms} bounds the wait. */
    recv(opts) {
      const h = live(this, "recv");
      const r = si.recv(h, opts === undefined ? -1 : micros(opts));
      if (typeof r === "number") fail(r, "recv", micros(opts) > 0);
      return wrap(r);
    }
    /** The next message if one is queued; else `dflt`, or ChannelEmptyError without one. */
    recvNowait(dflt) {
      const r = si.recv(live(this, "recvNowait"), 0);
      if (typeof r !== "number") return wrap(r);
      if (r === EMPTY && arguments.length > 0) return dflt;
      fail(r, "recvNowait", false);
    }
    release() { release(this); }
    toString() { return "[RecvChannel]"; }
  }

  function payload(data) {
    if (typeof data === "string") return { bytes: data };
    if (data instanceof View || data instanceof RecvChannel || data instanceof SendChannel) {
      return { handle: live(data, "send") };
    }
    if (data instanceof ArrayBuffer) return { bytes: new Uint8Array(data) };
    if (ArrayBuffer.isView(data)) {
      return { bytes: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
    }
    throw new TypeError("send: data must be a string, ArrayBuffer, TypedArray, DataView, View or channel end");
  }

  class SendChannel {
    constructor(h) { this[H] = h; }
    _send(data, t) {
      const h = live(this, "send");
      const p = payload(data);
      return p.handle !== undefined ? si.sendHandle(h, p.handle, t) : si.send(h, p.bytes, t);
    }
    /** Blocks while the channel is full; {timeout: ms} bounds the wait. */
    send(data, opts) {
      const t = opts === undefined ? -1 : micros(opts);
      // Strings and Uint8Arrays go straight to the native call.
      const r = typeof data === "string" || data instanceof Uint8Array
        ? si.send(live(this, "send"), data, t)
        : this._send(data, t);
      if (r < 0) fail(r, "send", t > 0);
    }
    /** true if queued, false if the channel was full. */
    sendNowait(data) {
      const r = this._send(data, 0);
      if (r === FULL) return false;
      if (r < 0) fail(r, "sendNowait", false);
      return true;
    }
    /** Closes the channel: queued messages can still be received. */
    close() {
      const r = si.close(live(this, "close"));
      if (r < 0) fail(r, "close");
    }
    release() { release(this); }
    toString() { return "[SendChannel]"; }
  }
  // For the C layer, which puts C functions in place of the message path's
  // methods and falls back on these for anything but the common case.
  Object.defineProperty(internals, "ends", {
    value: { recv: RecvChannel.prototype, send: SendChannel.prototype, wrap, fail },
  });

  // Errors of calls on another interpreter.
  function interpFail(code, what, id) {
    switch (code) {
      case INVALID: throw new Error(`${what}: interpreter ${id} cannot do that to itself`);
      case BUSY: throw new Error(`${what}: interpreter ${id} is already running`);
      case NOT_FOUND: throw new InterpreterClosedError(`${what}: interpreter ${id} is closed or not one this interpreter created`);
      default: fail(code, what);
    }
  }

  function makeResult(json) {
    const r = JSON.parse(json);
    Object.defineProperty(r, "check", {
      enumerable: false,
      value() {
        if (this.completed) return this;
        const e = this.error || { type: "Error", message: "run failed", stack: "" };
        const C = errors[e.type] || globalThis[e.type];
        const err = typeof C === "function" && C.prototype instanceof Error
          ? new C(e.message) : new Error(e.message);
        if (err.name !== e.type) err.name = e.type;
        err.stack = e.stack;
        throw err;
      },
    });
    return r;
  }

  // `module`: the run is that ES module (its name; not a channel).
  function bindings(opts, module) {
    const out = {};
    const chans = opts && opts.channels;
    if (module !== undefined) out.$module = module;
    if (chans) {
      for (const name of Object.keys(chans)) {
        if (name === "$module") throw new TypeError("channels.$module: the name is reserved");
        const end = chans[name];
        if (!(end instanceof RecvChannel || end instanceof SendChannel)) {
          throw new TypeError(`channels.${name} must be a channel end`);
        }
        out[name] = si.handleId(live(end, `channels.${name}`));
      }
    }
    return JSON.stringify(out);
  }

  class Job {
    constructor(h) { this[H] = h; }
    /** Waits for the run to end; returns {completed, error} (with check()). */
    join(opts) {
      const t = micros(opts);
      const r = si.interpJoin(live(this, "join"), t);
      if (typeof r === "number") {
        if (r === CLOSED) throw new Error("join: this job was already joined");
        fail(r, "join", t > 0);
      }
      release(this);
      return makeResult(r);
    }
  }

  // JSON text as a literal in source of either language.
  const lit = (v) => JSON.stringify(JSON.stringify(v));
  const isEnd = (v) => v instanceof RecvChannel || v instanceof SendChannel;

  class Interpreter {
    constructor(id, lang) {
      Object.defineProperty(this, "id", { value: id, enumerable: true });
      Object.defineProperty(this, "lang", { value: lang || "js", enumerable: true });
    }
    /** PEP 734's call: `fnName(...args)` in this interpreter (a global
     *  function, or a module-level one in Python), with JSON values in and
     *  out; a promise is awaited. Throws what the call threw. */
    call(fnName, ...args) {
      const [r, s] = interpreters.createChannel(1);
      const name = JSON.stringify(String(fnName));
      const src = this.lang === "python"
        ? `import json as __j\n__si_call_out.send(__j.dumps(globals()[${name}](*__j.loads(${lit(args)}))))\ndel __j\n`
        : `Promise.resolve(globalThis[${name}](...JSON.parse(${lit(args)})))` +
          `.then((v) => channels.__si_call_out.send(JSON.stringify(v) ?? "null"))`;
      try {
        this.run(src, { channels: { __si_call_out: s } }).check();
        return JSON.parse(r.recv().text());
      } finally {
        r.release();
        s.release();
      }
    }
    /** PEP 734's prepare_main: binds names in this interpreter's globals
     *  (Python: __main__): JSON values are copied, channel ends shared. */
    prepareMain(values) {
      const data = {}, ends = {};
      for (const [k, v] of Object.entries(values || {})) {
        if (isEnd(v)) ends[k] = v; else data[k] = v;
      }
      const names = JSON.stringify(Object.keys(ends));
      const src = this.lang === "python"
        ? `import json as __j\nglobals().update(__j.loads(${lit(data)}))\ndel __j\n`
        : `Object.assign(globalThis, JSON.parse(${lit(data)}));\n` +
          `for (const n of ${names}) globalThis[n] = channels[n];`;
      this.run(src, { channels: ends }).check();
    }
    isRunning() { return si.interpStatus(this.id) === 1; }
    /** Closes it (only an interpreter this one created); closing twice is fine. */
    close() {
      const r = si.interpClose(this.id);
      if (r < 0 && r !== NOT_FOUND) interpFail(r, "close", this.id);
    }
    /** Runs source in this interpreter, blocking; returns {completed, error}. */
    run(source, opts) {
      const r = si.interpRun(this.id, String(source), bindings(opts), false);
      if (typeof r === "number") interpFail(r, "run", this.id);
      return makeResult(r);
    }
    /** Runs source on the interpreter's own thread; join() the job. */
    start(source, opts) {
      const r = si.interpRun(this.id, String(source), bindings(opts), true);
      if (typeof r === "number") interpFail(r, "start", this.id);
      return new Job(r);
    }
    /** Runs the ES module file `path` (in the module folder; a relative
     *  path is from the main module's folder) in this JS interpreter, which
     *  resolves its imports from there; returns {completed, error}. */
    runModule(path, opts) {
      if (this.lang !== "js") throw new TypeError("runModule: ES modules run in JavaScript interpreters");
      const [name, src] = si.readModule(String(path));
      const r = si.interpRun(this.id, src, bindings(opts, name), false);
      if (typeof r === "number") interpFail(r, "runModule", this.id);
      return makeResult(r);
    }
    /** As runModule, on the interpreter's own thread; join() the job. */
    startModule(path, opts) {
      if (this.lang !== "js") throw new TypeError("startModule: ES modules run in JavaScript interpreters");
      const [name, src] = si.readModule(String(path));
      const r = si.interpRun(this.id, src, bindings(opts, name), true);
      if (typeof r === "number") interpFail(r, "startModule", this.id);
      return new Job(r);
    }
    toString() { return `[Interpreter ${this.id}]`; }
  }

  const interpreters = {
    /** A new interpreter; limits never above this one's. `lang: "python"`
     *  makes a Python interpreter (default: JavaScript, as this one). */
    create(limits) {
      const opts = {};
      if (limits) {
        if (limits.lang !== undefined) opts.lang = String(limits.lang);
        if (limits.timeout !== undefined) opts.timeout_ms = Number(limits.timeout);
        for (const k of ["maxMemory", "fuel", "maxOutput", "maxHandles", "maxInterpreters", "maxDepth"]) {
          if (limits[k] !== undefined) opts[k.replace(/[A-Z]/g, (c) => "_" + c.toLowerCase())] = Number(limits[k]);
        }
        // Parts of this interpreter's --dir grants: "/path" (as granted) or {path, readOnly}.
        if (limits.dirs !== undefined) {
          if (!Array.isArray(limits.dirs)) throw new TypeError("interpreters.create: dirs must be an array");
          opts.dirs = limits.dirs.map((d) => typeof d === "string" ? { path: d }
            : { path: String(d.path), read_only: d.readOnly === undefined ? null : Boolean(d.readOnly) });
        }
      }
      const id = si.interpCreate(JSON.stringify(opts));
      if (id === DENIED) {
        const e = new Error(`interpreters.create: cannot give ${JSON.stringify(opts.dirs.map((d) => d.path))}: a child's ` +
          "directory must be one of this interpreter's directory grants or below one (an absolute path, no '..', " +
          "no symlink out of it), and read-only where that grant is");
        e.code = "EACCES";
        throw e;
      }
      if (id === LIMIT) throw new LimitError("interpreters.create: interpreter limit reached (count, depth or memory)");
      if (id === INVALID) throw new TypeError("interpreters.create: unknown or invalid limit or language");
      if (id === NOT_FOUND) throw new Error("interpreters.create: no guest for that language (see make guest)");
      if (id < 0) fail(Number(id), "interpreters.create");
      return new Interpreter(id, opts.lang === "python" || opts.lang === "py" ? "python" : "js");
    },
    list() { return JSON.parse(si.interpList()).map((id) => new Interpreter(id)); },
    current() { return new Interpreter(si.id()); },
    main() { return new Interpreter(si.mainId()); },
    /** [recv, send]; capacity defaults to 64 messages, 0 makes a rendezvous. */
    createChannel(capacity) {
      const cap = capacity === undefined ? 64 : capacity;
      if (!Number.isInteger(cap) || cap < 0) throw new TypeError("capacity must be an integer >= 0");
      const r = si.channelCreate(cap);
      if (typeof r === "number") fail(r, "createChannel");
      return [new RecvChannel(r[0]), new SendChannel(r[1])];
    },
    View, RecvChannel, SendChannel, Interpreter,
    ...errors,
  };
  Object.freeze(interpreters);
  Object.defineProperty(globalThis, "interpreters", { value: interpreters, enumerable: false });

  // Per run: the ends the caller passed by name, on the global `channels`
  // (the C layer calls this only when some are bound).
  globalThis.channels = Object.freeze({});
  Object.defineProperty(internals, "bindChannels", {
    value() {
      const chans = {};
      for (const name of JSON.parse(si.boundNames())) {
        const h = si.lookup(name);
        if (typeof h !== "number") chans[name] = wrap(h);
      }
      globalThis.channels = Object.freeze(chans);
    },
  });

  // Node's `process` and QuickJS's `scriptArgs`, with only what the host
  // granted: the arguments, the environment (the `--env` grants), stdin and
  // the exit code. Read when first used, so a new interpreter pays nothing.
  let argv, env, exitCode, stdinRest = "";
  // stdin's chunks as UTF-8: a character cut at a chunk's end (stdinHeld)
  // waits for the next chunk; `last` decodes what is held too.
  let stdinHeld = new Uint8Array(0);
  const stdinDecoder = (bytes, last) => {
    let b = bytes;
    if (stdinHeld.length) { b = new Uint8Array(stdinHeld.length + bytes.length); b.set(stdinHeld); b.set(bytes, stdinHeld.length); }
    const keep = last ? 0 : si.utf8Tail(b); // encoding.c's
    stdinHeld = b.slice(b.length - keep);
    return si.decodeUtf8(b.subarray(0, b.length - keep), false);
  };
  const readAll = () => {
    const chunks = [stdinHeld];
    let n = stdinHeld.length;
    stdinHeld = new Uint8Array(0);
    for (;;) {
      const b = si.readStdin(65536);
      if (b.length === 0) break;
      chunks.push(b);
      n += b.length;
    }
    const out = new Uint8Array(n);
    let at = 0;
    for (const c of chunks) { out.set(c, at); at += c.length; }
    return out;
  };
  const process = {
    get argv() { return (argv ??= ["subinterp", ...si.wasiStrings(false)]); },
    get env() {
      if (!env) {
        env = {};
        for (const kv of si.wasiStrings(true)) {
          const eq = kv.indexOf("=");
          if (eq > 0) env[kv.slice(0, eq)] = kv.slice(eq + 1);
        }
      }
      return env;
    },
    get exitCode() { return exitCode; },
    set exitCode(v) { si.setExitCode(v); exitCode = v; },
    /** Ends the run now with `code` (default: process.exitCode, else 0). */
    exit(code) { si.exit(code === undefined ? (process.exitCode ?? 0) : Number(code)); },
    platform: "wasi",
    stdout: { write(s) { si.write(1, String(s)); return true; } },
    stderr: { write(s) { si.write(2, String(s)); return true; } },
    stdin: {
      /** All of stdin (what is left of it) as bytes. */
      bytes() { const b = readAll(); stdinRest = ""; return b; },
      /** All of stdin (what is left of it) as UTF-8 text. */
      text() { const t = stdinRest + stdinDecoder(readAll(), true); stdinRest = ""; return t; },
      /** The next line without its newline, or null at the end of stdin. */
      readLine() {
        for (;;) {
          const nl = stdinRest.indexOf("\n");
          if (nl >= 0) {
            const line = stdinRest.slice(0, nl);
            stdinRest = stdinRest.slice(nl + 1);
            return line.endsWith("\r") ? line.slice(0, -1) : line;
          }
          const b = si.readStdin(65536);
          if (b.length === 0) {
            stdinRest += stdinDecoder(b, true);
            if (stdinRest === "") return null;
            const last = stdinRest;
            stdinRest = "";
            return last;
          }
          stdinRest += stdinDecoder(b, false);
        }
      },
    },
  };
  Object.defineProperty(globalThis, "process", { value: process, writable: true, configurable: true });
  Object.defineProperty(globalThis, "scriptArgs", {
    get() { return si.wasiStrings(false); },
    configurable: true,
  });

  // ---- web-standard globals (WinterTC's minimum common API, in part) ----
  const def = (name, value) =>
    Object.defineProperty(globalThis, name, { value, writable: true, configurable: true });
  // TextEncoder and TextDecoder are encoding.js's.

  const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  def("crypto", Object.freeze({
    /** Fills an integer typed array with random values (at most 65536 bytes). */
    getRandomValues(a) {
      if (!ArrayBuffer.isView(a) || a instanceof DataView || a instanceof Float32Array || a instanceof Float64Array) {
        throw new TypeError("crypto.getRandomValues: an integer typed array is required");
      }
      if (a.byteLength > 65536) {
        const e = new Error("crypto.getRandomValues: at most 65536 bytes");
        e.name = "QuotaExceededError";
        throw e;
      }
      return si.randomFill(a);
    },
    /** A random (version 4) UUID. */
    randomUUID() {
      const b = si.randomFill(new Uint8Array(16));
      b[6] = (b[6] & 0x0f) | 0x40;
      b[8] = (b[8] & 0x3f) | 0x80;
      const h = hex(b);
      return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
    },
  }));

  def("structuredClone", function structuredClone(value) {
    try {
      return si.clone(value);
    } catch (e) {
      const err = new Error(`structuredClone: ${e && e.message}`);
      err.name = "DataCloneError";
      throw err;
    }
  });

  // atob/btoa, performance.now and queueMicrotask are QuickJS-ng's own.

  // Interpreter::call from the host: the function `name` (a global, or
  // "module.js#export" of a module run earlier) called with the input View
  // (or, `json`, the value its JSON text parses to).
  // For calls made in C: a View is an object of this prototype with its
  // Handle under H (what `new View(h)` makes, without running JS).
  Object.defineProperty(internals, "view", { value: { proto: View.prototype, key: H } });
  Object.defineProperty(internals, "call", {
    value(name, h, json) {
      const input = new View(h);
      const arg = json ? JSON.parse(input.text()) : input;
      const hash = name.lastIndexOf("#");
      if (hash > 0) {
        const mod = name.slice(0, hash), fn = name.slice(hash + 1);
        return import(mod).then((ns) => {
          if (typeof ns[fn] !== "function") throw new TypeError(`call: ${mod} exports no function ${fn}`);
          return ns[fn](arg);
        });
      }
      const f = globalThis[name];
      if (typeof f !== "function") throw new TypeError(`call: no global function ${name}`);
      return f(arg);
    },
  });

  // A call's result as the run's output: strings as UTF-8, bytes as they are, numbers, booleans and
  // bigints as text, null and undefined as nothing; JSON text with `json`.
  Object.defineProperty(internals, "output", {
    value(v, json) {
      if (json) {
        const s = JSON.stringify(v === undefined ? null : v);
        return si.output(s);
      }
      if (v === undefined || v === null) return si.output("");
      if (typeof v === "string") return si.output(v);
      if (v instanceof View) return si.output(v.bytes());
      if (v instanceof ArrayBuffer) return si.output(new Uint8Array(v));
      if (ArrayBuffer.isView(v)) return si.output(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
      if (typeof v === "number" || typeof v === "boolean" || typeof v === "bigint") return si.output(String(v));
      throw new TypeError("call: the result must be a string, bytes, a number, a boolean or null (call_json for other values)");
    },
  });

  // The host's functions this interpreter was granted: host.call(name, data)
  // returns a View of the result (data: a string or bytes); a failure of
  // the function, or a name not granted, throws a HostError.
  function hostCall(name, data) {
    let bytes = data === undefined ? "" : data;
    if (typeof bytes !== "string") bytes = payload(bytes).bytes;
    if (bytes === undefined) throw new TypeError("host.call: data must be a string or bytes");
    const r = si.hostCall(String(name), bytes);
    if (typeof r !== "number" && !Array.isArray(r)) return new View(r);
    if (Array.isArray(r)) {
      const msg = new View(r[1]);
      const text = msg.text();
      msg.release();
      throw new HostError(`host.call(${JSON.stringify(String(name))}): ${text}`);
    }
    if (r === NOT_FOUND) throw new HostError(`host.call: no host function ${JSON.stringify(String(name))} is granted`);
    if (r === LIMIT) throw new LimitError("host.call: limit reached (handles or memory)");
    fail(r, "host.call");
  }
  const host = Object.freeze({
    call: hostCall,
    /** As call(), as a promise (settled when the call returns). */
    callAsync(name, data) {
      try { return Promise.resolve(hostCall(name, data)); } catch (e) { return Promise.reject(e); }
    },
  });
  Object.defineProperty(globalThis, "host", { value: host, enumerable: false });

  // {type, message, stack} JSON for an uncaught value (the C layer reports it).
  Object.defineProperty(internals, "describeError", {
    value(e, fallbackType) {
      let type = fallbackType, message, stack = "";
      if (e instanceof Error || (e !== null && typeof e === "object" && "message" in e)) {
        type = String(e.name || fallbackType);
        message = String(e.message);
        stack = String(e.stack || "");
      } else if (typeof e === "string") {
        type = fallbackType === "UnhandledRejection" ? "UnhandledRejection" : "ThrownValue";
        message = e;
      } else {
        type = fallbackType === "UnhandledRejection" ? "UnhandledRejection" : "ThrownValue";
        try { message = String(e); } catch { message = typeof e; }
      }
      if (fallbackType === "UnhandledRejection" && !message.startsWith("unhandled")) {
        message = `unhandled promise rejection: ${message}`;
      }
      return JSON.stringify({ type, message, stack });
    },
  });

  // console is defined by console.js, after this prelude (web.c).
  return internals;
})();
