// A plugin: upper-cases a record. Every plugin defines `transform(record)`:
// the record comes in as a read-only View, the result goes back as a string
// (or bytes).
function transform(record) {
  return record.text().toUpperCase();
}
