// encoding.js — TextEncoder and TextDecoder, after the WHATWG Encoding
// Standard: UTF-8, UTF-16LE, UTF-16BE and windows-1252 (what `latin1`,
// `ascii` and `iso-8859-1` name), with every label the standard gives them,
// `fatal`, `ignoreBOM` and `stream: true`. The decoders are C: UTF-8 in
// subinterp_js.c (`si.decodeUtf8`), the others and the streaming split in
// encoding.c (also on `si`). Evaluated once while the guest is set up, as a
// function of the natives (`si`, `web`); only the two classes reach
// globalThis.
(function (si, web) {
  "use strict";
  const def = (name, value) =>
    Object.defineProperty(globalThis, name, { value, writable: true, configurable: true });
  const tag = (C, name) =>
    Object.defineProperty(C.prototype, Symbol.toStringTag, { value: name, configurable: true });
  const bytesOf = (input, what) => {
    if (input === undefined) return new Uint8Array(0);
    if (input instanceof ArrayBuffer) return new Uint8Array(input);
    if (ArrayBuffer.isView(input)) return new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
    throw new TypeError(`${what}: expected an ArrayBuffer or a view of one`);
  };
  // A WebIDL dictionary argument: undefined or null is empty, else an object.
  const dict = (v, what) => {
    if (v === undefined || v === null) return {};
    if (typeof v !== "object" && typeof v !== "function") throw new TypeError(`${what}: options must be an object`);
    return v;
  };

  class TextEncoder {
    get encoding() { return "utf-8"; }
    /** The UTF-8 bytes of `input` (a lone surrogate becomes U+FFFD). */
    encode(input = "") { return si.encodeUtf8(String(input)); }
    /** Writes as many whole characters of `input` as fit into `dest`. */
    encodeInto(input, dest) {
      if (!(dest instanceof Uint8Array)) throw new TypeError("TextEncoder.encodeInto: dest must be a Uint8Array");
      const bytes = si.encodeUtf8(String(input));
      let n = Math.min(bytes.length, dest.length);
      while (n > 0 && n < bytes.length && (bytes[n] & 0xc0) === 0x80) n--; // whole characters only
      dest.set(bytes.subarray(0, n));
      const read = si.decodeUtf8(bytes.subarray(0, n), false).length;
      return { read, written: n };
    }
  }
  tag(TextEncoder, "TextEncoder");

  // The standard's labels of the encodings decoded here.
  const LABELS = new Map();
  for (const [name, labels] of [
    ["utf-8", "unicode-1-1-utf-8 unicode11utf8 unicode20utf8 utf-8 utf8 x-unicode20utf8"],
    ["utf-16be", "unicodefffe utf-16be"],
    ["utf-16le", "csunicode iso-10646-ucs-2 ucs-2 unicode unicodefeff utf-16 utf-16le"],
    ["windows-1252", "ansi_x3.4-1968 ascii cp1252 cp819 csisolatin1 ibm819 iso-8859-1 iso-ir-100 " +
      "iso8859-1 iso88591 iso_8859-1 iso_8859-1:1987 l1 latin1 us-ascii windows-1252 x-cp1252"],
  ]) for (const l of labels.split(" ")) LABELS.set(l, name);
  // "get an encoding": strip ASCII whitespace, then ASCII-lowercase.
  const encodingOf = (label) =>
    LABELS.get(label.replace(/^[\t\n\f\r ]+|[\t\n\f\r ]+$/g, "").replace(/[A-Z]/g, (ch) => ch.toLowerCase()));

  const EMPTY = new Uint8Array(0);
  const join = (a, b) => {
    if (a.length === 0) return b;
    const j = new Uint8Array(a.length + b.length);
    j.set(a);
    j.set(b, a.length);
    return j;
  };
  // How many bytes at the end of a chunk a streaming decoder holds back:
  // an unfinished UTF-8 sequence; for UTF-16 an odd byte and a high
  // surrogate that the next unit may pair with.
  const held = (enc, b) => {
    if (enc === "utf-8") return si.utf8Tail(b);
    if (enc === "windows-1252") return 0;
    const odd = b.length % 2, m = b.length - odd;
    if (m < 2) return odd;
    const u = enc === "utf-16be" ? (b[m - 2] << 8) | b[m - 1] : b[m - 2] | (b[m - 1] << 8);
    return u >= 0xd800 && u <= 0xdbff ? odd + 2 : odd;
  };

  class TextDecoder {
    #enc; #fatal; #ignoreBOM; #pending = EMPTY; #bomSeen = false; #streaming = false;
    constructor(label = "utf-8", options = undefined) {
      const enc = encodingOf(String(label));
      if (!enc) throw new RangeError(`TextDecoder: the encoding "${label}" is not supported`);
      options = dict(options, "TextDecoder");
      this.#enc = enc;
      this.#fatal = Boolean(options.fatal);
      this.#ignoreBOM = Boolean(options.ignoreBOM);
    }
    get encoding() { return this.#enc; }
    get fatal() { return this.#fatal; }
    get ignoreBOM() { return this.#ignoreBOM; }
    /** The text of `input`; with `{stream: true}` an unfinished character
     * at its end waits for the next call's bytes. */
    decode(input = undefined, options = undefined) {
      let b = bytesOf(input, "TextDecoder.decode");
      const stream = Boolean(dict(options, "TextDecoder.decode").stream);
      if (!this.#streaming) { this.#pending = EMPTY; this.#bomSeen = false; }
      this.#streaming = stream;
      b = join(this.#pending, b);
      const keep = stream ? held(this.#enc, b) : 0;
      this.#pending = keep ? b.slice(b.length - keep) : EMPTY;
      if (keep) b = b.subarray(0, b.length - keep);
      let s = this.#decode(b);
      if (s === null) {
        this.#pending = EMPTY;
        this.#streaming = false;
        throw new TypeError(`TextDecoder: the data is not valid ${this.#enc}`);
      }
      if (!this.#bomSeen && s.length > 0) {
        this.#bomSeen = true;
        if (!this.#ignoreBOM && s.charCodeAt(0) === 0xfeff) s = s.slice(1);
      }
      return s;
    }
    #decode(b) {
      switch (this.#enc) {
        case "utf-8": return si.decodeUtf8(b, this.#fatal);
        case "utf-16le": return si.utf16Decode(b, false, this.#fatal);
        case "utf-16be": return si.utf16Decode(b, true, this.#fatal);
        default: return si.windows1252Decode(b);
      }
    }
  }
  tag(TextDecoder, "TextDecoder");

  def("TextEncoder", TextEncoder);
  def("TextDecoder", TextDecoder);
});
