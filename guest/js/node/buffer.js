// node:buffer — a small Buffer: a Uint8Array with Node's toString
// encodings (utf8, hex, base64, latin1), from, alloc, concat and
// byteLength. What node:fs returns when no encoding is given.

const enc = (e) => {
  const s = String(e ?? "utf8").toLowerCase();
  switch (s) {
    case "utf8": case "utf-8": return "utf8";
    case "hex": return "hex";
    case "base64": return "base64";
    case "latin1": case "binary": return "latin1";
    case "ascii": return "ascii";
    default: {
      const err = new TypeError(`Unknown encoding: ${e}`);
      err.code = "ERR_UNKNOWN_ENCODING";
      throw err;
    }
  }
};

const latin1 = (b) => {
  let s = "";
  for (let i = 0; i < b.length; i += 0x8000) s += String.fromCharCode.apply(null, b.subarray(i, i + 0x8000));
  return s;
};

export class Buffer extends Uint8Array {
  /** A Buffer of a string (in `encoding`, default utf8), an array, or an
   *  ArrayBuffer (shared, as Node does). */
  static from(value, encodingOrOffset, length) {
    if (typeof value === "string") {
      const e = enc(encodingOrOffset);
      if (e === "utf8") {
        const b = new TextEncoder().encode(value);
        return new Buffer(b.buffer, b.byteOffset, b.byteLength);
      }
      if (e === "hex") {
        const n = value.length >>> 1, out = new Buffer(n);
        for (let i = 0; i < n; i++) {
          const v = parseInt(value.substr(i * 2, 2), 16);
          if (Number.isNaN(v)) return out.subarray(0, i);
          out[i] = v;
        }
        return out;
      }
      if (e === "base64") return Buffer.from(atob(value.replace(/-/g, "+").replace(/_/g, "/").replace(/[^A-Za-z0-9+/]/g, "")), "latin1");
      const out = new Buffer(value.length);
      for (let i = 0; i < value.length; i++) out[i] = value.charCodeAt(i) & (e === "ascii" ? 0x7f : 0xff);
      return out;
    }
    if (value instanceof ArrayBuffer) return new Buffer(value, encodingOrOffset ?? 0, length ?? value.byteLength - (encodingOrOffset ?? 0));
    if (ArrayBuffer.isView(value)) return new Buffer(new Uint8Array(value.buffer, value.byteOffset, value.byteLength));
    if (Array.isArray(value) || (value && typeof value.length === "number")) return new Buffer(Array.from(value));
    throw new TypeError("Buffer.from: expected a string, an array, an ArrayBuffer or a typed array");
  }
  static alloc(size, fill) {
    const b = new Buffer(size);
    if (fill !== undefined) b.fill(typeof fill === "string" ? fill.charCodeAt(0) : fill);
    return b;
  }
  static isBuffer(v) { return v instanceof Buffer; }
  static byteLength(s, encoding) {
    return typeof s === "string" ? Buffer.from(s, encoding).length : s.byteLength;
  }
  static concat(list, total) {
    const n = total ?? list.reduce((a, b) => a + b.length, 0);
    const out = new Buffer(n);
    let at = 0;
    for (const b of list) {
      if (at >= n) break;
      out.set(b.subarray(0, n - at), at);
      at += Math.min(b.length, n - at);
    }
    return out;
  }
  /** The bytes as text in `encoding` (default utf8), from `start` to `end`. */
  toString(encoding, start, end) {
    const b = this.subarray(start ?? 0, end ?? this.length);
    switch (enc(encoding)) {
      case "utf8": return new TextDecoder().decode(b);
      case "hex": return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
      case "base64": return btoa(latin1(b));
      case "ascii": return latin1(b.map((x) => x & 0x7f));
      default: return latin1(b);
    }
  }
  equals(other) {
    if (this.length !== other.length) return false;
    for (let i = 0; i < this.length; i++) if (this[i] !== other[i]) return false;
    return true;
  }
  toJSON() { return { type: "Buffer", data: Array.from(this) }; }
}

// Node has Buffer as a global too.
if (!("Buffer" in globalThis)) {
  Object.defineProperty(globalThis, "Buffer", { value: Buffer, writable: true, configurable: true });
}

export default { Buffer };
