// node:fs — a small subset of Node's fs on the directories the host
// granted (`--dir`, InterpreterBuilder::dir): readFileSync, writeFileSync,
// appendFileSync, readdirSync, statSync, lstatSync, existsSync, mkdirSync,
// rmSync, unlinkSync, rmdirSync, renameSync, and the same as promises
// (fs.promises, node:fs/promises). Errors carry Node's code, errno,
// syscall and path. A path outside every grant is refused (EACCES), and
// the host refuses a path that climbs or links out of its grant.

import { Buffer } from "node:buffer";

const n = globalThis.__si_fs;

// Node's errno numbers (libuv's, negative) for the codes we give.
const ERRNO = {
  ENOENT: -2, EACCES: -13, EPERM: -1, EEXIST: -17, ENOTDIR: -20, EISDIR: -21, ENOTEMPTY: -39,
  EINVAL: -22, EMFILE: -24, ENAMETOOLONG: -36, ELOOP: -40, EROFS: -30, ENOSPC: -28, EBUSY: -16,
  EXDEV: -18, EBADF: -9, ENOMEM: -12, EFBIG: -27, EIO: -5,
};

function nodeError(code, desc, syscall, path, dest) {
  const where = dest === undefined ? `'${path}'` : `'${path}' -> '${dest}'`;
  const e = new Error(`${code}: ${desc}, ${syscall} ${where}`);
  e.errno = ERRNO[code] ?? -5;
  e.code = code;
  e.syscall = syscall;
  e.path = path;
  if (dest !== undefined) e.dest = dest;
  return e;
}

function fsError(code, syscall, path, dest) {
  const [name, desc] = n.errorName(code);
  if (!name.startsWith("ERR_")) return nodeError(name, desc, syscall, path, dest);
  const e = new RangeError(`${desc}: '${path}'`);
  e.code = name;
  return e;
}

function pathArg(p, what = "path") {
  if (typeof p === "string") return p;
  if (p instanceof URL && p.protocol === "file:") return decodeURIComponent(p.pathname);
  if (p instanceof Uint8Array) return new TextDecoder().decode(p);
  const e = new TypeError(`The "${what}" argument must be of type string or an instance of Buffer or URL. Received ${p === null ? "null" : typeof p}`);
  e.code = "ERR_INVALID_ARG_TYPE";
  throw e;
}

const encodingOf = (options) => (typeof options === "string" ? options : options?.encoding ?? null);
const isUtf8 = (e) => e === "utf8" || e === "utf-8";

// Returns `r` unless it is an error code, which is thrown as Node's error.
function ok(r, syscall, path, dest) {
  if (typeof r === "number" && r !== 0) throw fsError(r, syscall, path, dest);
  return r;
}

export function readFileSync(path, options) {
  const p = pathArg(path);
  const encoding = encodingOf(options);
  if (isUtf8(encoding)) return ok(n.readFile(p, true), "open", p);
  const bytes = ok(n.readFile(p, false), "open", p);
  const buf = new Buffer(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return encoding === null ? buf : buf.toString(encoding);
}

function dataOf(data, options) {
  if (typeof data === "string") {
    const e = encodingOf(options);
    return e === null || isUtf8(e) ? data : Buffer.from(data, e);
  }
  if (data instanceof Uint8Array) return data;
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const e = new TypeError(`The "data" argument must be of type string or an instance of Buffer, TypedArray, or DataView. Received ${data === null ? "null" : typeof data}`);
  e.code = "ERR_INVALID_ARG_TYPE";
  throw e;
}

const FLAGS = { w: 0, a: 1, wx: 2, xw: 2, ax: 3, xa: 3 };

function write(path, data, options, dflt) {
  const p = pathArg(path);
  const flag = FLAGS[(typeof options === "object" && options?.flag) || dflt];
  if (flag === undefined) throw new TypeError(`unsupported flag ${options.flag} (w, a, wx or ax)`);
  ok(n.writeFile(p, dataOf(data, options), flag), "open", p);
}

export function writeFileSync(path, data, options) { write(path, data, options, "w"); }
export function appendFileSync(path, data, options) { write(path, data, options, "a"); }

class Dirent {
  #type;
  constructor(name, parentPath, type) {
    this.name = name;
    this.parentPath = parentPath;
    this.path = parentPath;
    this.#type = type;
  }
  isFile() { return this.#type === 1; }
  isDirectory() { return this.#type === 2; }
  isSymbolicLink() { return this.#type === 3; }
  isFIFO() { return false; }
  isSocket() { return false; }
  isBlockDevice() { return false; }
  isCharacterDevice() { return false; }
}

export function readdirSync(path, options) {
  const p = pathArg(path);
  const flat = ok(n.readdir(p), "scandir", p);
  const entries = [];
  for (let i = 0; i < flat.length; i += 2) entries.push([flat[i], flat[i + 1]]);
  entries.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  if (options?.withFileTypes) return entries.map(([name, t]) => new Dirent(name, p, t));
  return entries.map(([name]) => name);
}

class Stats {
  #type;
  constructor(a) {
    this.#type = a[0];
    this.dev = a[7];
    this.ino = a[5];
    this.mode = a[0] === 2 ? 0o40755 : a[0] === 3 ? 0o120777 : 0o100644;
    this.nlink = a[6];
    this.uid = 0;
    this.gid = 0;
    this.rdev = 0;
    this.size = a[1];
    this.blksize = 4096;
    this.blocks = Math.ceil(a[1] / 512);
    this.atimeMs = a[2];
    this.mtimeMs = a[3];
    this.ctimeMs = a[4];
    this.birthtimeMs = a[4];
    this.atime = new Date(a[2]);
    this.mtime = new Date(a[3]);
    this.ctime = new Date(a[4]);
    this.birthtime = new Date(a[4]);
  }
  isFile() { return this.#type === 1; }
  isDirectory() { return this.#type === 2; }
  isSymbolicLink() { return this.#type === 3; }
  isFIFO() { return false; }
  isSocket() { return false; }
  isBlockDevice() { return false; }
  isCharacterDevice() { return false; }
}

function stat(path, options, follow) {
  const p = pathArg(path);
  const r = n.stat(p, follow);
  if (typeof r === "number" && options?.throwIfNoEntry === false && r !== 0) {
    const [code] = n.errorName(r);
    if (code === "ENOENT" || code === "ENOTDIR") return undefined;
  }
  return new Stats(ok(r, follow ? "stat" : "lstat", p));
}

export function statSync(path, options) { return stat(path, options, true); }
export function lstatSync(path, options) { return stat(path, options, false); }

export function existsSync(path) {
  try {
    return typeof n.stat(pathArg(path), true) !== "number";
  } catch {
    return false;
  }
}

const parentOf = (p) => {
  const i = p.replace(/\/+$/, "").lastIndexOf("/");
  return i <= 0 ? (p.startsWith("/") ? "/" : ".") : p.slice(0, i);
};

export function mkdirSync(path, options) {
  const p = pathArg(path);
  const recursive = typeof options === "object" && options !== null && Boolean(options.recursive);
  if (!recursive) {
    ok(n.mkdir(p), "mkdir", p);
    return undefined;
  }
  // Make each missing folder from the first that exists down.
  const missing = [];
  for (let at = p; ; at = parentOf(at)) {
    const s = n.stat(at, true);
    if (typeof s !== "number") {
      if (s[0] !== 2) throw nodeError(at === p ? "EEXIST" : "ENOTDIR", at === p ? "file already exists" : "not a directory", "mkdir", p);
      break;
    }
    const [code] = n.errorName(s);
    if (code !== "ENOENT") throw fsError(s, "mkdir", p);
    missing.push(at);
    if (at === "/" || at === "." || parentOf(at) === at) break;
  }
  for (let i = missing.length - 1; i >= 0; i--) {
    const r = n.mkdir(missing[i]);
    if (r !== 0 && n.errorName(r)[0] !== "EEXIST") throw fsError(r, "mkdir", p);
  }
  return missing.length ? missing[missing.length - 1] : undefined;
}

// Removes `p` (a folder with all it holds) without recursion in JS: a
// guest decides how deep a tree goes.
function removeTree(p) {
  const stack = [[p, false]];
  while (stack.length) {
    const [at, emptied] = stack.pop();
    const s = ok(n.stat(at, false), "lstat", at);
    if (s[0] !== 2) {
      ok(n.remove(at, false), "unlink", at);
    } else if (emptied) {
      ok(n.remove(at, true), "rmdir", at);
    } else {
      stack.push([at, true]);
      const flat = ok(n.readdir(at), "scandir", at);
      for (let i = 0; i < flat.length; i += 2) stack.push([`${at}/${flat[i]}`, false]);
    }
  }
}

export function rmSync(path, options) {
  const p = pathArg(path);
  const s = n.stat(p, false);
  if (typeof s === "number") {
    if (options?.force && n.errorName(s)[0] === "ENOENT") return;
    throw fsError(s, "rm", p);
  }
  if (s[0] === 2) {
    if (!options?.recursive) {
      const e = new Error(`Path is a directory: rm returned EISDIR (is a directory) ${p}`);
      e.code = "ERR_FS_EISDIR";
      throw e;
    }
    removeTree(p);
    return;
  }
  ok(n.remove(p, false), "rm", p);
}

export function unlinkSync(path) {
  const p = pathArg(path);
  ok(n.remove(p, false), "unlink", p);
}

export function rmdirSync(path, options) {
  const p = pathArg(path);
  if (options?.recursive) return removeTree(p);
  ok(n.remove(p, true), "rmdir", p);
}

export function renameSync(from, to) {
  const a = pathArg(from, "oldPath"), b = pathArg(to, "newPath");
  ok(n.rename(a, b), "rename", a, b);
}

export const constants = Object.freeze({ F_OK: 0, R_OK: 4, W_OK: 2, X_OK: 1 });

export function accessSync(path) {
  const p = pathArg(path);
  ok(n.stat(p, true), "access", p);
}

// The promise forms run the same calls (the host answers file calls at
// once) and settle with their result.
const later = (f) => (...args) => {
  try {
    return Promise.resolve(f(...args));
  } catch (e) {
    return Promise.reject(e);
  }
};

export const promises = Object.freeze({
  readFile: later(readFileSync),
  writeFile: later(writeFileSync),
  appendFile: later(appendFileSync),
  readdir: later(readdirSync),
  stat: later(statSync),
  lstat: later(lstatSync),
  mkdir: later(mkdirSync),
  rm: later(rmSync),
  unlink: later(unlinkSync),
  rmdir: later(rmdirSync),
  rename: later(renameSync),
  access: later(accessSync),
  constants,
});

export { Dirent, Stats };

export default {
  readFileSync, writeFileSync, appendFileSync, readdirSync, statSync, lstatSync, existsSync,
  mkdirSync, rmSync, unlinkSync, rmdirSync, renameSync, accessSync, constants, promises, Dirent,
  Stats,
};
