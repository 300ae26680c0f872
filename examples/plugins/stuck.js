// A misbehaving plugin: handles the first record, then never returns.
channels.results.send(channels.records.recv().text());
for (;;) {}
