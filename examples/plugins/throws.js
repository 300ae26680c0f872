// A misbehaving plugin: fails on every record.
function transform(record) {
  throw new RangeError(`cannot handle "${record.text()}"`);
}
