// A plugin: upper-cases each record. Every plugin has the same interface:
// text records arrive on channels.records; one result per record goes to
// channels.results; the plugin ends when the records channel is closed.
for (;;) {
  let record;
  try { record = channels.records.recv(); }
  catch (e) { if (e instanceof interpreters.ChannelClosedError) break; throw e; }
  channels.results.send(record.text().toUpperCase());
}
