const e = new TextEncoder(), d = new TextDecoder();
console.log(JSON.stringify(Array.from(e.encode("h\u00e9\ud800!"))), d.decode(e.encode("héllo €")));
console.log(JSON.stringify(new TextDecoder().decode(new Uint8Array([0x61, 0xff, 0xe2, 0x82, 0x62]))));
try { new TextDecoder("utf-8", { fatal: true }).decode(new Uint8Array([0xff])); } catch (x) { console.log(x.name); }
console.log(new TextDecoder("utf-16le").decode(new Uint8Array([0x68, 0, 0x69, 0])), new TextDecoder("latin1").decode(new Uint8Array([0x80, 0xe9])));
console.log(btoa("hello"), atob("aGVsbG8="), atob(btoa("\xff\x00a")).length);
const u = crypto.randomUUID(); console.log(u.length, u[14], crypto.getRandomValues(new Uint8Array(4)).length);
const c = structuredClone({ m: new Map([[1, { d: new Date(0) }]]), s: new Set([1]), b: 10n, t: new Uint16Array([1, 2]) });
console.log(c.m.get(1).d.getTime(), c.s.has(1), c.b, c.t[1]);
try { structuredClone(() => 1); } catch (x) { console.log(x.name); }
const t0 = performance.now(); console.log(typeof t0, t0 >= 0);
queueMicrotask(() => console.log("micro"));
console.log("sync");
