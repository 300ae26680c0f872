// web.js — the web-standard globals of WinterTC's minimum common API that
// prelude.js does not define: Event/EventTarget, CustomEvent,
// AbortController/AbortSignal, Blob, URL/URLSearchParams and
// crypto.subtle.digest. Evaluated once while the guest is set up (so every
// interpreter gets them from the snapshot) as a function of the natives:
// `si` (subinterp_js.c) and `web` (web.c: SHA digests; url.c: ada's URL
// parser). Nothing here is left on globalThis but the standard names.
(function (si, web) {
  "use strict";
  const def = (name, value) =>
    Object.defineProperty(globalThis, name, { value, writable: true, configurable: true });
  const tag = (C, name) =>
    Object.defineProperty(C.prototype, Symbol.toStringTag, { value: name, configurable: true });

  // DOMException (AbortError, NotSupportedError, ...) is QuickJS-ng's own.
  const DOMException = globalThis.DOMException;


  // ---- Event and EventTarget (the DOM standard's dispatch, without a tree) --
  const NONE = 0, AT_TARGET = 2;
  class Event {
    #type; #bubbles; #cancelable; #composed; #canceled = false; #stop = false;
    #target = null; #current = null; #phase = NONE; #time; #passive = false;
    constructor(type, init = {}) {
      if (arguments.length === 0) throw new TypeError("Event: a type is required");
      this.#type = String(type);
      this.#bubbles = Boolean(init.bubbles);
      this.#cancelable = Boolean(init.cancelable);
      this.#composed = Boolean(init.composed);
      this.#time = performance.now();
    }
    get type() { return this.#type; }
    get bubbles() { return this.#bubbles; }
    get cancelable() { return this.#cancelable; }
    get composed() { return this.#composed; }
    get defaultPrevented() { return this.#canceled; }
    get target() { return this.#target; }
    get currentTarget() { return this.#current; }
    get srcElement() { return this.#target; }
    get eventPhase() { return this.#phase; }
    get timeStamp() { return this.#time; }
    get isTrusted() { return false; }
    get returnValue() { return !this.#canceled; }
    composedPath() { return this.#current ? [this.#current] : []; }
    preventDefault() { if (this.#cancelable && !this.#passive) this.#canceled = true; }
    stopPropagation() {}
    stopImmediatePropagation() { this.#stop = true; }
    // Used by EventTarget.dispatchEvent only.
    static _begin(e, target) {
      if (e.#phase !== NONE) throw new DOMException("the event is already being dispatched", "InvalidStateError");
      e.#target = target; e.#current = target; e.#phase = AT_TARGET; e.#stop = false;
    }
    static _end(e) { e.#current = null; e.#phase = NONE; e.#passive = false; }
    static _stopped(e) { return e.#stop; }
    static _passive(e, p) { e.#passive = p; }
  }
  for (const [k, v] of [["NONE", 0], ["CAPTURING_PHASE", 1], ["AT_TARGET", 2], ["BUBBLING_PHASE", 3]]) {
    Object.defineProperty(Event, k, { value: v, enumerable: true });
    Object.defineProperty(Event.prototype, k, { value: v, enumerable: true });
  }
  const { _begin, _end, _stopped, _passive } = Event;
  for (const k of ["_begin", "_end", "_stopped", "_passive"]) delete Event[k];
  tag(Event, "Event");
  def("Event", Event);

  class CustomEvent extends Event {
    #detail;
    constructor(type, init = {}) { super(type, init); this.#detail = init.detail ?? null; }
    get detail() { return this.#detail; }
  }
  tag(CustomEvent, "CustomEvent");
  def("CustomEvent", CustomEvent);

  const flags = (options) => typeof options === "boolean" || options === undefined
    ? { capture: Boolean(options), once: false, passive: false, signal: undefined }
    : { capture: Boolean(options.capture), once: Boolean(options.once),
      passive: Boolean(options.passive), signal: options.signal };

  class EventTarget {
    #listeners = new Map(); // type -> [{callback, capture, once, passive, removed}]
    addEventListener(type, callback, options) {
      if (callback === null || callback === undefined) return;
      const o = flags(options);
      if (o.signal !== undefined && o.signal.aborted) return;
      type = String(type);
      let list = this.#listeners.get(type);
      if (!list) this.#listeners.set(type, (list = []));
      if (list.some((l) => l.callback === callback && l.capture === o.capture)) return;
      const entry = { callback, capture: o.capture, once: o.once, passive: o.passive, removed: false };
      list.push(entry);
      if (o.signal !== undefined) {
        o.signal.addEventListener("abort", () => this.removeEventListener(type, callback, o.capture));
      }
    }
    removeEventListener(type, callback, options) {
      const capture = flags(options).capture;
      const list = this.#listeners.get(String(type));
      if (!list) return;
      const i = list.findIndex((l) => l.callback === callback && l.capture === capture);
      if (i >= 0) { list[i].removed = true; list.splice(i, 1); }
    }
    /** Calls the listeners of `event.type` in order; false if one cancelled it. */
    dispatchEvent(event) {
      if (!(event instanceof Event)) throw new TypeError("dispatchEvent: the argument must be an Event");
      _begin(event, this);
      try {
        const list = this.#listeners.get(event.type);
        for (const l of list ? list.slice() : []) {
          if (l.removed) continue;
          if (l.once) this.removeEventListener(event.type, l.callback, l.capture);
          _passive(event, l.passive);
          try {
            if (typeof l.callback === "function") l.callback.call(this, event);
            else if (l.callback && typeof l.callback.handleEvent === "function") l.callback.handleEvent(event);
          } catch (e) {
            reportError(e);
          }
          _passive(event, false);
          if (_stopped(event)) break;
        }
      } finally {
        _end(event);
      }
      return !event.defaultPrevented;
    }
  }
  tag(EventTarget, "EventTarget");
  def("EventTarget", EventTarget);

  // A listener's exception does not stop the dispatch: it is reported (as a
  // browser does) on stderr.
  function reportError(e) {
    const text = e instanceof Error ? `${e.name}: ${e.message}\n${e.stack || ""}` : String(e);
    si.write(2, `Uncaught ${text.trimEnd()}\n`);
  }
  def("reportError", reportError);

  // ---- AbortController and AbortSignal --------------------------------------
  const SIGNAL = Symbol("create");
  class AbortSignal extends EventTarget {
    #aborted = false; #reason = undefined;
    onabort = null;
    constructor(key) {
      if (key !== SIGNAL) throw new TypeError("AbortSignal: use AbortController or AbortSignal.abort()");
      super();
    }
    get aborted() { return this.#aborted; }
    get reason() { return this.#reason; }
    throwIfAborted() { if (this.#aborted) throw this.#reason; }
    static _abort(s, reason) {
      if (s.#aborted) return;
      s.#aborted = true;
      s.#reason = reason === undefined ? new DOMException("This operation was aborted", "AbortError") : reason;
      const e = new Event("abort");
      if (typeof s.onabort === "function") {
        try { s.onabort.call(s, e); } catch (x) { reportError(x); }
      }
      s.dispatchEvent(e);
    }
    /** A signal that is already aborted. */
    static abort(reason) {
      const s = new AbortSignal(SIGNAL);
      signalAbort(s, reason);
      return s;
    }
    /** A signal aborted (TimeoutError) after `ms` milliseconds (needs setTimeout). */
    static timeout(ms) {
      if (typeof globalThis.setTimeout !== "function") throw new TypeError("AbortSignal.timeout: no setTimeout here");
      const s = new AbortSignal(SIGNAL);
      globalThis.setTimeout(() => signalAbort(s, new DOMException("The operation timed out.", "TimeoutError")), Number(ms));
      return s;
    }
    /** A signal aborted when any of `signals` is, with its reason. */
    static any(signals) {
      const s = new AbortSignal(SIGNAL);
      for (const x of signals) {
        if (x.aborted) { signalAbort(s, x.reason); return s; }
      }
      for (const x of signals) x.addEventListener("abort", () => signalAbort(s, x.reason), { once: true });
      return s;
    }
  }
  const signalAbort = AbortSignal._abort;
  delete AbortSignal._abort;
  tag(AbortSignal, "AbortSignal");
  def("AbortSignal", AbortSignal);

  class AbortController {
    #signal = new AbortSignal(SIGNAL);
    get signal() { return this.#signal; }
    abort(reason) { signalAbort(this.#signal, reason); }
  }
  tag(AbortController, "AbortController");
  def("AbortController", AbortController);

  // ---- Blob -------------------------------------------------------------------
  const bytesOf = (part) => {
    if (part instanceof ArrayBuffer) return new Uint8Array(part.slice(0));
    if (ArrayBuffer.isView(part)) return new Uint8Array(part.buffer.slice(part.byteOffset, part.byteOffset + part.byteLength));
    if (part instanceof Blob) return blobBytes(part);
    return si.encodeUtf8(String(part));
  };
  class Blob {
    #bytes; #type;
    constructor(parts = [], options = {}) {
      if (typeof parts !== "object" || parts === null || typeof parts[Symbol.iterator] !== "function") {
        throw new TypeError("Blob: the parts must be an iterable");
      }
      const chunks = Array.from(parts, bytesOf);
      const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
      let at = 0;
      for (const c of chunks) { out.set(c, at); at += c.length; }
      this.#bytes = out;
      const t = options.type === undefined ? "" : String(options.type);
      this.#type = /^[\x20-\x7e]*$/.test(t) ? t.toLowerCase() : "";
    }
    get size() { return this.#bytes.length; }
    get type() { return this.#type; }
    /** A Blob of bytes [start, end) (negative indexes count from the end). */
    slice(start, end, type) {
      const len = this.#bytes.length;
      const at = (i, d) => {
        if (i === undefined) return d;
        i = Math.trunc(Number(i)) || 0;
        return i < 0 ? Math.max(len + i, 0) : Math.min(i, len);
      };
      const s = at(start, 0), e = Math.max(at(end, len), s);
      return new Blob([this.#bytes.subarray(s, e)], { type: type === undefined ? "" : type });
    }
    text() { return Promise.resolve(si.decodeUtf8(this.#bytes, false)); }
    arrayBuffer() { return Promise.resolve(this.#bytes.slice().buffer); }
    bytes() { return Promise.resolve(this.#bytes.slice()); }
    static _bytes(b) { return b.#bytes; }
  }
  const blobBytes = Blob._bytes;
  delete Blob._bytes;
  tag(Blob, "Blob");
  def("Blob", Blob);

  // ---- URLSearchParams and URL (parsing and serialising by ada) ---------------
  const PART = { href: 0, origin: 1, protocol: 2, username: 3, password: 4, host: 5,
    hostname: 6, port: 7, pathname: 8, search: 9, hash: 10 };
  const usv = (v) => String(v);

  class URLSearchParams {
    #list = []; // [[name, value], ...]
    #owner = null; // the URL these are the query of, if any
    constructor(init = "") {
      if (typeof init === "object" && init !== null) {
        if (typeof init[Symbol.iterator] === "function") {
          for (const pair of init) {
            const p = Array.from(pair);
            if (p.length !== 2) throw new TypeError("URLSearchParams: each pair must have two elements");
            this.#list.push([usv(p[0]), usv(p[1])]);
          }
        } else {
          for (const k of Reflect.ownKeys(init)) {
            const d = Reflect.getOwnPropertyDescriptor(init, k);
            if (typeof k === "string" && d && d.enumerable) this.#list.push([k, usv(init[k])]);
          }
        }
      } else {
        this.#list = web.paramsParse(usv(init)); // ada drops a leading "?"
      }
    }
    get size() { return this.#list.length; }
    append(name, value) { this.#list.push([usv(name), usv(value)]); this.#update(); }
    delete(name, value) {
      name = usv(name);
      const v = value === undefined ? undefined : usv(value);
      this.#list = this.#list.filter(([k, x]) => k !== name || (v !== undefined && x !== v));
      this.#update();
    }
    get(name) { name = usv(name); const p = this.#list.find(([k]) => k === name); return p ? p[1] : null; }
    getAll(name) { name = usv(name); return this.#list.filter(([k]) => k === name).map(([, v]) => v); }
    has(name, value) {
      name = usv(name);
      const v = value === undefined ? undefined : usv(value);
      return this.#list.some(([k, x]) => k === name && (v === undefined || x === v));
    }
    set(name, value) {
      name = usv(name); value = usv(value);
      const i = this.#list.findIndex(([k]) => k === name);
      if (i < 0) this.#list.push([name, value]);
      else {
        this.#list[i][1] = value;
        this.#list = this.#list.filter(([k], j) => k !== name || j === i);
      }
      this.#update();
    }
    /** Sorts by name in UTF-16 code unit order, stably. */
    sort() {
      this.#list = this.#list.map((p, i) => [p, i])
        .sort(([a, i], [b, j]) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : i - j)).map(([p]) => p);
      this.#update();
    }
    forEach(fn, thisArg) { for (const [k, v] of this.#list.slice()) fn.call(thisArg, v, k, this); }
    *entries() { for (let i = 0; i < this.#list.length; i++) yield this.#list[i].slice(); }
    *keys() { for (const [k] of this.entries()) yield k; }
    *values() { for (const [, v] of this.entries()) yield v; }
    [Symbol.iterator]() { return this.entries(); }
    toString() { return web.paramsSerialize(this.#list.flat()); }
    // console.log shows the pairs, as Node does.
    [Symbol.for("nodejs.util.inspect.custom")](depth, options, inspect) {
      const pairs = this.#list.map(([k, v]) => `${inspect(k)} => ${inspect(v)}`);
      return pairs.length ? `URLSearchParams { ${pairs.join(", ")} }` : "URLSearchParams {}";
    }
    #update() {
      if (this.#owner) urlSetQuery(this.#owner, this.toString());
    }
    static _reset(p, query) { p.#list = web.paramsParse(query); }
    static _own(p, url) { p.#owner = url; }
  }
  const paramsReset = URLSearchParams._reset, paramsOwn = URLSearchParams._own;
  delete URLSearchParams._reset;
  delete URLSearchParams._own;
  tag(URLSearchParams, "URLSearchParams");
  def("URLSearchParams", URLSearchParams);

  const parse = (url, base) => web.urlParse(usv(url), base === undefined ? undefined : usv(base));

  class URL {
    #rec; #params = null;
    constructor(url, base) {
      const rec = parse(url, base);
      if (rec === null) throw new TypeError(`Invalid URL: ${usv(url)}`);
      this.#rec = rec;
    }
    static canParse(url, base) { return parse(url, base) !== null; }
    static parse(url, base) {
      try { return new URL(url, base); } catch { return null; }
    }
    get searchParams() {
      if (!this.#params) {
        const p = new URLSearchParams(this.search);
        paramsOwn(p, this);
        this.#params = p;
      }
      return this.#params;
    }
    toString() { return this.href; }
    toJSON() { return this.href; }
    #sync() { if (this.#params) paramsReset(this.#params, this.search); }
    static _get(u, part) { return web.urlGet(u.#rec, part); }
    static _set(u, part, v) {
      if (!web.urlSet(u.#rec, part, v) && part === PART.href) throw new TypeError(`Invalid URL: ${v}`);
      if (part === PART.href || part === PART.search) u.#sync();
    }
    // URLSearchParams' update steps: an empty query becomes no query.
    static _query(u, q) { web.urlSet(u.#rec, PART.search, q); }
  }
  const urlGet = URL._get, urlSet = URL._set, urlSetQuery = URL._query;
  for (const k of ["_get", "_set", "_query"]) delete URL[k];
  for (const [name, part] of Object.entries(PART)) {
    const d = { get() { return urlGet(this, part); }, enumerable: true, configurable: true };
    if (name !== "origin") d.set = function (v) { urlSet(this, part, usv(v)); };
    Object.defineProperty(URL.prototype, name, d);
  }
  // console.log shows a URL's parts, as Node does.
  const Shown = Object.defineProperty(class {}, "name", { value: "URL" });
  Object.defineProperty(URL.prototype, Symbol.for("nodejs.util.inspect.custom"), {
    value() {
      const o = new Shown();
      for (const k of Object.keys(PART)) if (k !== "hash") o[k] = this[k];
      o.searchParams = this.searchParams;
      o.hash = this.hash;
      return o;
    },
  });
  tag(URL, "URL");
  def("URL", URL);

  // ---- crypto.subtle.digest ------------------------------------------------------
  const ALGS = { "SHA-1": 1, "SHA-256": 2, "SHA-384": 3, "SHA-512": 4 };
  const subtle = Object.freeze({
    /** A promise of the digest (an ArrayBuffer) of `data` with `algorithm`
     *  ("SHA-1", "SHA-256", "SHA-384", "SHA-512", or {name}). */
    digest(algorithm, data) {
      try {
        const name = String(typeof algorithm === "object" && algorithm !== null ? algorithm.name : algorithm);
        const alg = ALGS[name.toUpperCase()];
        if (!alg) throw new DOMException(`Unrecognized algorithm name: ${name}`, "NotSupportedError");
        let bytes;
        if (data instanceof ArrayBuffer) bytes = new Uint8Array(data);
        else if (ArrayBuffer.isView(data)) bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
        else throw new TypeError("crypto.subtle.digest: data must be an ArrayBuffer or a view of one");
        return Promise.resolve(web.digest(alg, bytes));
      } catch (e) {
        return Promise.reject(e);
      }
    },
  });
  // The prelude's crypto object is frozen: a new one with its methods and subtle.
  def("crypto", Object.freeze({ ...globalThis.crypto, subtle }));
})
