// A misbehaving plugin: keeps everything it ever sees, and then some.
const hoard = [];
function transform(record) {
  for (;;) hoard.push(new Array(1 << 16).fill(hoard.length));
}
