// node:path — Node's POSIX path functions (path.posix). The working
// directory of a script is "/", the root of its granted directories.

const cwd = () => "/";

function check(p, what) {
  if (typeof p !== "string") {
    const e = new TypeError(`The "${what}" argument must be of type string. Received ${p === null ? "null" : typeof p}`);
    e.code = "ERR_INVALID_ARG_TYPE";
    throw e;
  }
  return p;
}

// Resolves "." and ".." segments; keeps leading ".." of a relative path.
function normalizeSegments(p, absolute) {
  const out = [];
  for (const seg of p.split("/")) {
    if (seg === "" || seg === ".") continue;
    if (seg === "..") {
      if (out.length > 0 && out[out.length - 1] !== "..") out.pop();
      else if (!absolute) out.push("..");
      continue;
    }
    out.push(seg);
  }
  return out.join("/");
}

export const sep = "/";
export const delimiter = ":";

export function isAbsolute(p) {
  return check(p, "path").startsWith("/");
}

export function normalize(p) {
  check(p, "path");
  if (p === "") return ".";
  const absolute = p.startsWith("/");
  const trailing = p.endsWith("/");
  let out = normalizeSegments(p, absolute);
  if (out === "" && !absolute) out = ".";
  if (out !== "" && trailing) out += "/";
  return absolute ? `/${out}` : out;
}

export function join(...parts) {
  const kept = parts.map((p) => check(p, "path")).filter((p) => p !== "");
  return kept.length === 0 ? "." : normalize(kept.join("/"));
}

export function resolve(...parts) {
  let resolved = "";
  for (let i = parts.length - 1; i >= -1 && !resolved.startsWith("/"); i--) {
    const p = i >= 0 ? check(parts[i], "paths[" + i + "]") : cwd();
    if (p !== "") resolved = resolved === "" ? p : `${p}/${resolved}`;
  }
  return `/${normalizeSegments(resolved, true)}`;
}

export function relative(from, to) {
  const a = resolve(check(from, "from")).split("/").filter(Boolean);
  const b = resolve(check(to, "to")).split("/").filter(Boolean);
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return [...Array(a.length - i).fill(".."), ...b.slice(i)].join("/");
}

export function dirname(p) {
  check(p, "path");
  if (p === "") return ".";
  let end = p.length;
  while (end > 1 && p[end - 1] === "/") end--;
  const i = p.lastIndexOf("/", end - 1);
  if (i < 0) return ".";
  if (i === 0) return "/";
  let j = i;
  while (j > 1 && p[j - 1] === "/") j--;
  return p.slice(0, j);
}

export function basename(p, ext) {
  check(p, "path");
  let end = p.length;
  while (end > 0 && p[end - 1] === "/") end--;
  const base = p.slice(p.lastIndexOf("/", end - 1) + 1, end);
  if (ext !== undefined && check(ext, "ext") !== base && base.endsWith(ext)) {
    return base.slice(0, base.length - ext.length);
  }
  return base;
}

export function extname(p) {
  const base = basename(p);
  const dot = base.lastIndexOf(".");
  return dot <= 0 ? "" : base.slice(dot);
}

export function parse(p) {
  check(p, "path");
  const root = p.startsWith("/") ? "/" : "";
  const base = basename(p);
  const ext = extname(p);
  let dir = dirname(p);
  if (dir === "." && !p.includes("/")) dir = "";
  return { root, dir, base, ext, name: ext ? base.slice(0, -ext.length) : base };
}

export function format(o) {
  const dir = o.dir || o.root || "";
  const base = o.base || `${o.name || ""}${o.ext ? (o.ext.startsWith(".") ? "" : ".") + o.ext : ""}`;
  if (!dir) return base;
  return dir === o.root ? `${dir}${base}` : `${dir}/${base}`;
}

export function toNamespacedPath(p) {
  return p;
}

const path = {
  sep, delimiter, isAbsolute, normalize, join, resolve, relative, dirname, basename, extname,
  parse, format, toNamespacedPath,
};
path.posix = path;
export const posix = path;
export default path;
