// console.js — `console`, formatting values as Node's util.inspect does
// (the layout rules re-implemented here: Map, Set, class instances, cycles
// as [Circular *1], depth, functions as [Function: name], array grouping,
// line breaking at 80 columns), with table, dir, time, count, assert, trace
// and group. Evaluated once while the guest is set up, as a function of the
// natives `si` (subinterp_js.c) and `web` (web.c); nothing else is left on
// globalThis.
(function (si, web) {
  "use strict";
  const BREAK = 80, MAX_ITEMS = 100, MAX_STRING = 10000;
  const CUSTOM = Symbol.for("nodejs.util.inspect.custom");
  const ident = /^[a-zA-Z_][a-zA-Z_0-9]*$/;
  const proto = Object.getPrototypeOf;
  const toStr = (v) => Object.prototype.toString.call(v);
  const TypedArray = proto(Uint8Array);
  const typedLength = Object.getOwnPropertyDescriptor(TypedArray.prototype, "length").get;
  const typedName = Object.getOwnPropertyDescriptor(TypedArray.prototype, Symbol.toStringTag).get;
  const mapSize = Object.getOwnPropertyDescriptor(Map.prototype, "size").get;
  const setSize = Object.getOwnPropertyDescriptor(Set.prototype, "size").get;
  const isInstance = (v, C) => { try { return v instanceof C; } catch { return false; } };

  // ---- strings, keys and primitives -----------------------------------------
  const ESC = { "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r", "\\": "\\\\" };
  function quote(s) {
    let q = "'";
    if (s.includes("'")) {
      if (!s.includes('"')) q = '"';
      else if (!s.includes("`") && !s.includes("${")) q = "`";
    }
    let out = "";
    for (let i = 0; i < s.length; i++) {
      const ch = s[i], c = s.charCodeAt(i);
      if (ch === q) out += "\\" + q;
      else if (ESC[ch]) out += ESC[ch];
      else if (c < 0x20 || c === 0x7f) out += "\\x" + c.toString(16).toUpperCase().padStart(2, "0");
      else if (c >= 0xd800 && c <= 0xdfff) {
        const next = s.charCodeAt(i + 1);
        if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) { out += ch + s[i + 1]; i++; }
        else out += "\\u" + c.toString(16).toUpperCase();
      } else out += ch;
    }
    return q + out + q;
  }
  function primitive(v, nested) {
    switch (typeof v) {
      case "string": {
        if (!nested) return v;
        const extra = v.length > MAX_STRING ? `... ${v.length - MAX_STRING} more characters` : "";
        return quote(extra ? v.slice(0, MAX_STRING) : v) + extra;
      }
      case "number": return Object.is(v, -0) ? "-0" : String(v);
      case "bigint": return `${v}n`;
      case "symbol": return v.toString();
      default: return String(v);
    }
  }
  const key = (k) => typeof k === "symbol" ? `[${k.toString()}]` : ident.test(k) ? k : quote(k);

  // ---- objects ------------------------------------------------------------------
  // ctx: {depth, seen: [], circular: Map, indent (columns), currentDepth}
  function value(ctx, v, level, nested = true) {
    if (v === null || (typeof v !== "object" && typeof v !== "function")) return primitive(v, nested);
    const px = web.proxyTarget(v);
    if (px) return value(ctx, px[0], level, nested);
    if (typeof v[CUSTOM] === "function" && v[CUSTOM] !== inspect) {
      const r = v[CUSTOM](ctx.depth - level, { depth: ctx.depth - level }, inspect);
      if (r !== v) return typeof r === "string" ? r : value(ctx, r, level);
    }
    if (ctx.seen.includes(v)) {
      if (!ctx.circular.has(v)) ctx.circular.set(v, ctx.circular.size + 1);
      return `[Circular *${ctx.circular.get(v)}]`;
    }
    return object(ctx, v, level);
  }

  function ctorName(v) {
    for (let o = v; o !== null; o = proto(o)) {
      const d = Object.getOwnPropertyDescriptor(o, "constructor");
      if (d && typeof d.value === "function" && d.value.name) return d.value.name;
    }
    return null;
  }

  // The prefix of an object: "Foo", "Foo [tag]", "[Object: null prototype]".
  function prefix(v, name, fallback, size) {
    const tag = v[Symbol.toStringTag];
    const t = typeof tag === "string" && tag !== "" && tag !== (name ?? fallback) ? ` [${tag}]` : "";
    const s = size === undefined ? "" : `(${size})`;
    if (name === null) return `[${fallback}${s}: null prototype]${t}`;
    return `${name}${s}${t}`;
  }

  function fnBase(v, name) {
    const src = Function.prototype.toString.call(v);
    if (src.startsWith("class") && /^class\b/.test(src)) {
      const sup = proto(v);
      const ext = sup && sup !== Function.prototype && sup.name ? ` extends ${sup.name}` : "";
      return `[class ${v.name || "(anonymous)"}${ext}]`;
    }
    const kind = name && name !== "Function" ? name : "Function";
    return v.name ? `[${kind}: ${v.name}]` : `[${kind} (anonymous)]`;
  }

  function errorBase(ctx, e) {
    const name = String(e.name ?? "Error"), msg = String(e.message ?? "");
    const head = msg ? `${name}: ${msg}` : name;
    const stack = typeof e.stack === "string" ? e.stack.trimEnd() : "";
    if (!stack) return `[${head}]`;
    const pad = " ".repeat(ctx.indent);
    const body = stack.startsWith(head) ? stack : `${head}\n${stack}`;
    return ctx.indent ? body.split("\n").join(`\n${pad}`) : body;
  }

  // What an object shows before and around its entries, and its entries.
  function shape(ctx, v, level) {
    const name = ctorName(v);
    const s = { base: "", braces: ["{", "}"], array: false, entries: [], keys: ownKeys(v) };
    if (Array.isArray(v)) {
      s.array = true;
      s.braces = [name === "Array" ? "[" : `${prefix(v, name, "Array", v.length)} [`, "]"];
      s.keys = s.keys.filter((k) => typeof k === "symbol" || !isIndex(k));
      s.entries = arrayEntries(ctx, v, v.length, level);
    } else if (ArrayBuffer.isView(v) && !(v instanceof DataView)) {
      s.array = true;
      const n = typedLength.call(v);
      s.braces = [`${prefix(v, name, typedName.call(v), n)} [`, "]"];
      s.keys = s.keys.filter((k) => typeof k === "symbol" || !isIndex(k));
      s.entries = arrayEntries(ctx, v, n, level);
    } else if (isInstance(v, Map)) {
      s.braces = [`${prefix(v, name, "Map", mapSize.call(v))} {`, "}"];
      let i = 0;
      for (const [k, x] of Map.prototype.entries.call(v)) {
        if (i++ >= MAX_ITEMS) { s.entries.push(`... ${mapSize.call(v) - MAX_ITEMS} more items`); break; }
        s.entries.push(`${nest(ctx, k, level)} => ${nest(ctx, x, level)}`);
      }
    } else if (isInstance(v, Set)) {
      s.braces = [`${prefix(v, name, "Set", setSize.call(v))} {`, "}"];
      let i = 0;
      for (const x of Set.prototype.values.call(v)) {
        if (i++ >= MAX_ITEMS) { s.entries.push(`... ${setSize.call(v) - MAX_ITEMS} more items`); break; }
        s.entries.push(nest(ctx, x, level));
      }
    } else if (typeof v === "function") {
      s.base = fnBase(v, name);
      s.keys = s.keys.filter((k) => k !== "prototype");
    } else if (isInstance(v, Error)) {
      s.base = errorBase(ctx, v);
      s.keys = s.keys.filter((k) => k !== "stack" && k !== "message");
      // As Node: `cause`, and an AggregateError's `errors`, even when not
      // enumerable (then shown as [cause] and [errors]).
      if ("cause" in v && !s.keys.includes("cause")) s.keys.push("cause");
      if (Array.isArray(v.errors) && !s.keys.includes("errors")) s.keys.push("errors");
    } else if (isInstance(v, RegExp)) {
      s.base = RegExp.prototype.toString.call(v);
    } else if (isInstance(v, Date)) {
      const t = Date.prototype.getTime.call(v);
      s.base = Number.isNaN(t) ? "Invalid Date" : Date.prototype.toISOString.call(v);
    } else if (isInstance(v, Promise)) {
      const [state, result] = web.promiseState(v);
      s.braces = [`${prefix(v, name, "Promise")} {`, "}"];
      s.entries.push(state === "pending" ? "<pending>"
        : state === "rejected" ? `<rejected> ${nest(ctx, result, level)}` : nest(ctx, result, level));
    } else if (isInstance(v, WeakMap) || isInstance(v, WeakSet)) {
      s.braces = [`${prefix(v, name, "Object")} {`, "}"];
      s.entries.push("<items unknown>");
    } else if (isInstance(v, ArrayBuffer)) {
      const bytes = new Uint8Array(v);
      const hex = Array.from(bytes.subarray(0, 50), (b) => b.toString(16).padStart(2, "0")).join(" ");
      const more = bytes.length > 50 ? ` ... ${bytes.length - 50} more bytes` : "";
      s.braces = [`${prefix(v, name, "ArrayBuffer")} {`, "}"];
      s.entries.push(`[Uint8Contents]: <${hex}${more}>`, `byteLength: ${nest(ctx, v.byteLength, level)}`);
    } else if (boxed(v)) {
      s.base = boxed(v);
      if (isInstance(v, String)) s.keys = s.keys.filter((k) => typeof k === "symbol" || !isIndex(k));
    } else {
      const p = name === "Object" ? "" : prefix(v, name, "Object");
      s.braces = [p === "" ? "{" : `${p} {`, "}"];
    }
    return s;
  }

  function boxed(v) {
    for (const [C, n] of [[Number, "Number"], [String, "String"], [Boolean, "Boolean"], [BigInt, "BigInt"], [Symbol, "Symbol"]]) {
      if (toStr(v) === `[object ${n}]` && isInstance(v, C)) {
        return `[${n}: ${primitive(C.prototype.valueOf.call(v), true)}]`;
      }
    }
    return "";
  }

  const isIndex = (k) => /^(0|[1-9][0-9]*)$/.test(k) && Number(k) < 4294967295;
  function ownKeys(v) {
    const keys = Object.keys(v);
    for (const s of Object.getOwnPropertySymbols(v)) {
      if (Object.prototype.propertyIsEnumerable.call(v, s)) keys.push(s);
    }
    return keys;
  }

  function nest(ctx, v, level) {
    ctx.indent += 2;
    const s = value(ctx, v, level + 1);
    ctx.indent -= 2;
    return s;
  }

  function arrayEntries(ctx, v, n, level) {
    const out = [];
    let holes = 0;
    const flush = () => {
      if (holes) out.push(`<${holes} empty item${holes > 1 ? "s" : ""}>`);
      holes = 0;
    };
    const limit = Math.min(n, MAX_ITEMS);
    for (let i = 0; i < limit; i++) {
      if (!Object.prototype.hasOwnProperty.call(v, i)) { holes++; continue; }
      flush();
      out.push(nest(ctx, v[i], level));
    }
    flush();
    if (n > limit) out.push(`... ${n - limit} more item${n - limit > 1 ? "s" : ""}`);
    return out;
  }

  function property(ctx, v, k, level) {
    const d = Object.getOwnPropertyDescriptor(v, k);
    let shown;
    if (d && (d.get || d.set)) shown = d.get && d.set ? "[Getter/Setter]" : d.get ? "[Getter]" : "[Setter]";
    else shown = nest(ctx, v[k], level);
    return d && !d.enumerable ? `[${key(k)}]: ${shown}` : `${key(k)}: ${shown}`;
  }

  function object(ctx, v, level) {
    if (level > ctx.depth) {
      // As Node: a value shown by its base alone (an error's stack, a
      // function, RegExp, Date or boxed primitive) is shown whole when it
      // has no keys to show, however deep.
      if (typeof v === "function" || isInstance(v, Error) || isInstance(v, RegExp) || isInstance(v, Date) || boxed(v)) {
        const s = shape(ctx, v, level);
        if (s.keys.length === 0) return s.base;
      }
      const n = ctorName(v);
      if (ownKeys(v).length === 0 && typeof v !== "function") {
        // Empty containers are shown whole, however deep.
        if (Array.isArray(v) && v.length === 0) return n === "Array" ? "[]" : `${prefix(v, n, "Array", 0)} []`;
        if (isInstance(v, Map) && mapSize.call(v) === 0) return `${prefix(v, n, "Map", 0)} {}`;
        if (isInstance(v, Set) && setSize.call(v) === 0) return `${prefix(v, n, "Set", 0)} {}`;
        if (proto(v) === Object.prototype || proto(v) === null) return n === "Object" ? "{}" : `${prefix(v, n, "Object")} {}`;
      }
      return Array.isArray(v) ? "[Array]" : `[${n ?? "Object: null prototype"}]`;
    }
    ctx.seen.push(v);
    ctx.currentDepth = level;
    let s;
    try {
      s = shape(ctx, v, level);
      for (const k of s.keys) s.entries.push(property(ctx, v, k, level));
    } finally {
      ctx.seen.pop();
    }
    let out;
    if (s.base && s.entries.length === 0) out = s.base;
    else if (s.entries.length === 0 && !s.base) out = `${s.braces[0]}${s.braces[1]}`;
    else {
      if (s.base) s.braces = [s.base + " {", "}"];
      out = layout(ctx, s.entries, s.braces, s.array, level, v);
    }
    const ref = ctx.circular.get(v);
    return ref === undefined ? out : `<ref *${ref}> ${out}`;
  }

  // ---- layout: one line when it fits, else one entry (or a row) a line ------
  function layout(ctx, entries, braces, array, level, v) {
    let lines = entries;
    if (array && entries.length > 6) lines = columns(ctx, entries, v);
    if (ctx.currentDepth - level < 3 && lines === entries) {
      const start = entries.length + ctx.indent + braces[0].length + 10;
      if (fits(entries, start) && !braces[0].includes("\n")) { // as Node: not after a stack
        const one = entries.join(", ");
        if (!one.includes("\n")) return `${braces[0]} ${one} ${braces[1]}`;
      }
    }
    const nl = "\n" + " ".repeat(ctx.indent);
    return `${braces[0]}${nl}  ${lines.join(`,${nl}  `)}${nl}${braces[1]}`;
  }

  function fits(entries, start) {
    let total = entries.length + start;
    if (total + entries.length > BREAK) return false;
    for (const e of entries) {
      total += e.length;
      if (total > BREAK) return false;
    }
    return true;
  }

  // Short array entries in aligned columns (numbers right-aligned), about
  // as wide as high, as Node lays them out.
  function columns(ctx, entries, v) {
    const more = entries.length > 0 && entries[entries.length - 1].startsWith("... ") ? 1 : 0;
    const n = entries.length - more;
    const lens = entries.slice(0, n).map((e) => e.length);
    const longest = Math.max(...lens), total = lens.reduce((a, b) => a + b + 2, 0);
    const cell = longest + 2;
    if (!(cell * 3 + ctx.indent < BREAK && (total / cell > 5 || longest <= 6))) return entries;
    const bias = Math.sqrt(cell - total / entries.length);
    const biased = Math.max(cell - 3 - bias, 1);
    const cols = Math.min(Math.round(Math.sqrt(2.5 * biased * n) / biased),
      Math.floor((BREAK - ctx.indent) / cell), 12);
    if (cols <= 1) return entries;
    const widths = [];
    for (let c = 0; c < cols; c++) {
      let w = 0;
      for (let j = c; j < n; j += cols) w = Math.max(w, lens[j]);
      widths.push(w + 2);
    }
    let numeric = v !== undefined;
    if (numeric) {
      for (let i = 0; i < n; i++) {
        if (typeof v[i] !== "number" && typeof v[i] !== "bigint") { numeric = false; break; }
      }
    }
    const rows = [];
    for (let i = 0; i < n; i += cols) {
      const last = Math.min(i + cols, n) - 1;
      let row = "";
      for (let j = i; j < last; j++) {
        const e = `${entries[j]}, `;
        row += numeric ? e.padStart(widths[j - i]) : e.padEnd(widths[j - i]);
      }
      row += numeric ? entries[last].padStart(widths[last - i] - 2) : entries[last];
      rows.push(row);
    }
    if (more) rows.push(entries[n]);
    return rows;
  }

  /** util.inspect: a value as Node shows it (options: depth, default 2). */
  function inspect(v, options) {
    const depth = options && options.depth !== undefined ? (options.depth === null ? Infinity : Number(options.depth)) : 2;
    return value({ depth, seen: [], circular: new Map(), indent: 0, currentDepth: 0 }, v, 0);
  }

  // ---- format strings and console -----------------------------------------------
  function format(args) {
    const first = args[0];
    let rest = 1, out = "";
    if (typeof first === "string" && args.length > 1 && first.includes("%")) {
      out = first.replace(/%[sdifjoOc%]/g, (m) => {
        if (m === "%%") return "%";
        if (rest >= args.length) return m;
        const a = args[rest++];
        switch (m) {
          case "%s": return typeof a === "string" ? a : typeof a === "object" && a !== null ? inspect(a, { depth: 1 }) : primitive(a, false);
          case "%d": case "%i": {
            if (typeof a === "bigint") return `${a}n`;
            if (typeof a === "symbol") return "NaN";
            const x = Number(a);
            return primitive(m === "%i" ? Math.trunc(x) : x, false);
          }
          case "%f": return typeof a === "symbol" ? "NaN" : String(parseFloat(a));
          case "%j": try { return JSON.stringify(a); } catch { return "[Circular]"; }
          case "%o": return inspect(a, { depth: 4 });
          case "%O": return inspect(a);
          default: return ""; // %c: CSS, ignored
        }
      });
    } else {
      rest = 0;
    }
    for (let i = rest; i < args.length; i++) {
      const a = args[i];
      out += (i > 0 || rest > 0 ? " " : "") + (typeof a === "string" ? a : inspect(a));
    }
    return out;
  }

  let groupIndent = "";
  const emit = (fd, text) => {
    const body = groupIndent ? groupIndent + text.split("\n").join("\n" + groupIndent) : text;
    si.write(fd, body + "\n");
  };
  const counts = new Map(), timers = new Map();
  const label = (l) => (l === undefined ? "default" : String(l));
  const elapsed = (l) => {
    const ms = performance.now() - timers.get(l);
    return ms >= 1000 ? `${(ms / 1000).toFixed(3)}s` : `${ms.toFixed(3)}ms`;
  };

  const console = {
    log(...a) { emit(1, format(a)); },
    info(...a) { emit(1, format(a)); },
    debug(...a) { emit(1, format(a)); },
    error(...a) { emit(2, format(a)); },
    warn(...a) { emit(2, format(a)); },
    dir(v, options) { emit(1, inspect(v, options)); },
    dirxml(...a) { emit(1, format(a)); },
    /** Prints `Trace: ...` and the stack on stderr. */
    trace(...a) {
      const stack = (new Error().stack || "").split("\n").slice(1).join("\n").trimEnd();
      emit(2, `Trace${a.length ? ": " + format(a) : ""}${stack ? "\n" + stack : ""}`);
    },
    assert(ok, ...a) {
      if (ok) return;
      if (typeof a[0] === "string") a[0] = `Assertion failed: ${a[0]}`;
      else a.unshift("Assertion failed");
      emit(2, format(a));
    },
    count(l) {
      l = label(l);
      const n = (counts.get(l) || 0) + 1;
      counts.set(l, n);
      emit(1, `${l}: ${n}`);
    },
    countReset(l) { counts.delete(label(l)); },
    time(l) {
      l = label(l);
      if (timers.has(l)) return emit(2, `Warning: Label '${l}' already exists for console.time()`);
      timers.set(l, performance.now());
    },
    timeLog(l, ...a) {
      l = label(l);
      if (!timers.has(l)) return emit(2, `Warning: No such label '${l}' for console.timeLog()`);
      emit(1, [`${l}: ${elapsed(l)}`, ...a.map((x) => (typeof x === "string" ? x : inspect(x)))].join(" "));
    },
    timeEnd(l) {
      l = label(l);
      if (!timers.has(l)) return emit(2, `Warning: No such label '${l}' for console.timeEnd()`);
      emit(1, `${l}: ${elapsed(l)}`);
      timers.delete(l);
    },
    group(...a) {
      if (a.length) emit(1, format(a));
      groupIndent += "  ";
    },
    groupCollapsed(...a) { console.group(...a); },
    groupEnd() { groupIndent = groupIndent.slice(2); },
    table(data, properties) { emit(1, table(data, properties)); },
  };

  // ---- console.table --------------------------------------------------------------
  const cellText = (v) => (v === undefined ? "" : typeof v === "string" ? quote(v)
    : inspect(v, { depth: 0 }).replace(/\n\s*/g, " "));
  function table(data, properties) {
    if (data === null || typeof data !== "object") return format([data]);
    const rows = [], cols = [];
    let values = false;
    const entries = isInstance(data, Map) ? Array.from(Map.prototype.entries.call(data))
      : isInstance(data, Set) ? Array.from(Set.prototype.values.call(data), (x, i) => [i, x])
      : Object.keys(data).map((k) => [k, data[k]]);
    for (const [k, row] of entries) {
      const r = { index: typeof k === "string" ? k : inspect(k), cells: new Map() };
      if (row !== null && typeof row === "object") {
        for (const c of properties ?? Object.keys(row)) {
          if (!cols.includes(c)) cols.push(c);
          if (Object.prototype.hasOwnProperty.call(row, c)) r.cells.set(c, cellText(row[c]));
        }
      } else {
        values = true;
        r.value = cellText(row);
      }
      rows.push(r);
    }
    if (properties) for (const c of properties) if (!cols.includes(c)) cols.push(c);
    const head = ["(index)", ...cols, ...(values ? ["Values"] : [])];
    const body = rows.map((r) => [r.index, ...cols.map((c) => r.cells.get(c) ?? ""), ...(values ? [r.value ?? ""] : [])]);
    const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)) + 2);
    const line = (l, m, r) => l + widths.map((w) => "─".repeat(w)).join(m) + r;
    const row = (cells) => "│" + cells.map((c, i) => ` ${c}`.padEnd(widths[i])).join("│") + "│";
    return [line("┌", "┬", "┐"), row(head), line("├", "┼", "┤"), ...body.map(row), line("└", "┴", "┘")].join("\n");
  }

  Object.defineProperty(globalThis, "console", { value: console, writable: true, configurable: true });
})
