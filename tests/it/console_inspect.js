class Point { constructor(x, y) { this.x = x; this.y = y; } }
const cyc = { name: "root", kids: [] }; cyc.kids.push({ parent: cyc });
console.log(new Map([["a", 1], ["b", [1, 2]]]), new Set(["x", 2]));
console.log(new Point(1, 2), [new Point(0, 0)], { p: { q: { r: { s: 1 } } } });
console.log(cyc);
console.log(function named() {}, () => {}, class Foo {}, Math.max);
console.log([1, "two", [3, [4, [5, [6]]]]], { s: "it's", n: null, u: undefined, b: 10n, z: -0 });
console.log(new Uint8Array([1, 2, 3]), Array.from({ length: 30 }, (_, i) => i * 3));
console.log("%s is %d years and %i%%", "Bob", 42.5, 7.9, "extra");
console.log([, 1, , , 2], Object.create(null), { "a-b": 1, [Symbol("s")]: 2 });
console.log({ long: "x".repeat(60), other: "y".repeat(30) });
console.dir({ a: { b: { c: { d: {} } } } }, { depth: 0 });
console.count(); console.count(); console.count("x"); console.countReset(); console.count();
console.group("outer"); console.log("in\ntwo"); console.group(); console.log("deeper"); console.groupEnd(); console.groupEnd(); console.log("out");
console.table([{ a: 1, b: "x" }, { a: 2, c: true }]);
console.table({ r1: 5, r2: "v" });
console.table([[1, 2], [3, 4]]);
console.log(new Error("top-level").message, [new WeakMap()], Promise.resolve(4), new Promise(() => {}));
console.log(new URL("https://u:p@example.com:8080/a/b?x=1#h"));
