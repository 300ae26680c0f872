// The demo's main script: runs in one JavaScript interpreter, the way a
// PEP 554 program runs in the main interpreter.
//
// It creates worker interpreters, streams the corpus the host sends it
// (channels.corpus) to them as forwarded views — no bytes are copied on the
// way — gathers their word counts, and starts one hostile worker that spins
// forever until its deadline stops it. The merged counts and what happened go
// back to the host over channels.report.

const WORKERS = 4;
const { corpus, report } = channels;

const [taskR, taskS] = interpreters.createChannel(8);
const [countR, countS] = interpreters.createChannel(WORKERS);

const WORKER = `
  const counts = new Map();
  let chunks = 0;
  for (;;) {
    let view;
    try { view = channels.tasks.recv(); }
    catch (e) { if (e instanceof interpreters.ChannelClosedError) break; throw e; }
    for (const w of view.text().toLowerCase().split(/[^a-z]+/)) {
      if (w) counts.set(w, (counts.get(w) || 0) + 1);
    }
    view.release();
    chunks++;
  }
  channels.counts.send(JSON.stringify({ chunks, counts: [...counts] }));
`;

const workers = [];
for (let i = 0; i < WORKERS; i++) {
  const w = interpreters.create({ timeout: 60000 });
  workers.push(w.start(WORKER, { channels: { tasks: taskR, counts: countS } }));
}

// A hostile worker: an infinite loop with a 300 ms deadline of its own.
const rogue = interpreters.create({ timeout: 300 });
const rogueJob = rogue.start("for (;;) {}");

// Stream the corpus: each chunk the host sent is forwarded as it is.
let chunks = 0;
for (;;) {
  let view;
  try { view = corpus.recv(); }
  catch (e) { if (e instanceof interpreters.ChannelClosedError) break; throw e; }
  taskS.send(view);
  view.release();
  chunks++;
}
taskS.close();

// Gather and merge.
const total = new Map();
let counted = 0;
for (let i = 0; i < WORKERS; i++) {
  const part = JSON.parse(countR.recv().text());
  counted += part.chunks;
  for (const [w, n] of part.counts) total.set(w, (total.get(w) || 0) + n);
}
for (const job of workers) job.join().check();
const rogueResult = rogueJob.join();

report.send(JSON.stringify({
  workers: WORKERS,
  chunks,
  counted,
  counts: [...total],
  rogue: rogueResult.error,
}));
