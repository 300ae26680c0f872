// A misbehaving plugin: never returns.
function transform(record) {
  for (;;) {}
}
