// A plugin: replaces every digit with '#', and counts words (JSON result).
for (;;) {
  let record;
  try { record = channels.records.recv(); }
  catch (e) { if (e instanceof interpreters.ChannelClosedError) break; throw e; }
  const text = record.text();
  channels.results.send(JSON.stringify({
    text: text.replace(/[0-9]/g, "#"),
    words: text.split(/\s+/).filter(Boolean).length,
  }));
}
