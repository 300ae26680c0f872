#!/usr/bin/env node
// Peer benchmark: Node.js worker_threads (each worker = one V8 isolate on its
// own thread, talking to the main thread with postMessage).
//
// Run as `node bench/peers/node.js [--quick]`. Prints exactly one JSON object on
// stdout; progress and diagnostics go to stderr. Only Node's standard library.
'use strict';

const { Worker } = require('node:worker_threads');
const fs = require('node:fs');

const QUICK = process.argv.includes('--quick');
// Repetitions and sizes; rtBudgetS caps the seconds of one round-trip repetition.
const CFG = QUICK
  ? { createReps: 15, onewayN: 20_000, onewayReps: 3, rtN: 2_000, rtReps: 3, rtBudgetS: 1,
      idle: 50 }
  : { createReps: 50, onewayN: 200_000, onewayReps: 5, rtN: 20_000, rtReps: 7, rtBudgetS: 4,
      idle: 100 };
// A round-trip repetition records at least this many samples, even past its budget.
const MIN_SAMPLES = 200;

const log = (...args) => console.error(...args);
const nowNs = () => process.hrtime.bigint();
const usSince = (t0) => Number(nowNs() - t0) / 1e3;

function median(values) {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

// Nearest-rank percentile of an already sorted array.
function percentile(sorted, p) {
  return sorted[Math.max(1, Math.ceil((p / 100) * sorted.length)) - 1];
}

// Proportional set size of this process in KiB, from /proc/self/smaps_rollup.
function pssKib() {
  const m = /^Pss:\s+(\d+) kB/m.exec(fs.readFileSync('/proc/self/smaps_rollup', 'utf8'));
  if (!m) throw new Error('no Pss line in smaps_rollup');
  return Number(m[1]);
}

// Resolve with the next message of `worker`, reject if it fails first.
function nextMessage(worker) {
  return new Promise((resolve, reject) => {
    const onMessage = (msg) => { worker.off('error', onError); resolve(msg); };
    const onError = (err) => { worker.off('message', onMessage); reject(err); };
    worker.once('message', onMessage);
    worker.once('error', onError);
  });
}

const evalWorker = (source) => new Worker(source, { eval: true });

// --- create_run_js_us -------------------------------------------------------
// new Worker evaluating `1+1` and posting the result back; timed until the
// message arrives. The worker is then terminated (awaited, timed separately).
const CREATE_SRC = "require('node:worker_threads').parentPort.postMessage(1+1)";

async function benchCreateRun(reps) {
  const toMessage = [];
  const withTerminate = [];
  for (let i = 0; i < reps + 2; i++) {
    const t0 = nowNs();
    const w = evalWorker(CREATE_SRC);
    const result = await nextMessage(w);
    const tMsg = usSince(t0);
    await w.terminate();
    const tAll = usSince(t0);
    if (result !== 2) throw new Error(`worker replied ${result}`);
    if (i >= 2) { // the first two are warm-up
      toMessage.push(tMsg);
      withTerminate.push(tAll);
    }
  }
  return { toMessage: median(toMessage), withTerminate: median(withTerminate) };
}

// --- msg64_oneway_js_per_s ----------------------------------------------------
// The main thread posts n 64-byte Uint8Arrays (structured clone = a copy each)
// to a worker that counts them and reports once it has all n.
const COUNT_SRC = `
const { parentPort, workerData } = require('node:worker_threads');
let seen = 0;
parentPort.on('message', () => {
  if (++seen === workerData) { parentPort.postMessage('done'); parentPort.close(); }
});
parentPort.postMessage('ready');
`;

async function benchOneway(n, reps) {
  const rates = [];
  const msg = new Uint8Array(64).fill(0xab);
  for (let r = 0; r < reps; r++) {
    const w = new Worker(COUNT_SRC, { eval: true, workerData: n });
    await nextMessage(w); // 'ready'
    const done = nextMessage(w);
    const t0 = nowNs();
    for (let i = 0; i < n; i++) w.postMessage(msg);
    await done;
    rates.push(n / (usSince(t0) / 1e6));
    await w.terminate();
  }
  return median(rates);
}

// --- roundtrip_p50_us / roundtrip_p99_us -----------------------------------------
// Ping-pong of a 64-byte Uint8Array between the main thread and an echoing
// worker; one sample per round trip. A repetition stops after n round trips or,
// once it has MIN_SAMPLES, after budgetS seconds. Returns medians over reps of
// each rep's p50 and p99, and the fewest samples a rep took.
const ECHO_SRC = `
const { parentPort } = require('node:worker_threads');
parentPort.on('message', (m) => parentPort.postMessage(m));
`;

function pingPong(w, n, msg, budgetS = Infinity) {
  return new Promise((resolve, reject) => {
    const lat = new Float64Array(n);
    const deadline = Number.isFinite(budgetS) ? nowNs() + BigInt(budgetS * 1e9) : null;
    let i = 0;
    let t0 = nowNs();
    const onMessage = () => {
      const t1 = nowNs();
      lat[i++] = Number(t1 - t0) / 1e3;
      if (i === n || (deadline !== null && i >= MIN_SAMPLES && t1 > deadline)) {
        w.off('message', onMessage);
        w.off('error', reject);
        resolve(lat.subarray(0, i));
        return;
      }
      t0 = nowNs();
      w.postMessage(msg);
    };
    w.on('message', onMessage);
    w.once('error', reject);
    w.postMessage(msg);
  });
}

async function benchRoundtrip(n, reps, budgetS) {
  const p50s = [];
  const p99s = [];
  let fewest = n;
  const msg = new Uint8Array(64).fill(0xab);
  const w = evalWorker(ECHO_SRC);
  try {
    await pingPong(w, 200, msg); // warm-up (JIT, thread start)
    for (let r = 0; r < reps; r++) {
      const lat = (await pingPong(w, n, msg, budgetS)).sort(); // numeric sort
      p50s.push(percentile(lat, 50));
      p99s.push(percentile(lat, 99));
      fewest = Math.min(fewest, lat.length);
    }
  } finally {
    await w.terminate();
  }
  return { p50: median(p50s), p99: median(p99s), fewest };
}

// --- rss_idle_js_kib --------------------------------------------------------------
// Pss added per idle worker with `count` of them alive at once. Each worker
// says 'ready' and then just waits on its (ref'd) port.
const IDLE_SRC = `
const { parentPort } = require('node:worker_threads');
parentPort.on('message', () => {});
parentPort.postMessage('ready');
`;

async function benchRssIdle(count) {
  // Warm-up: the first worker pays one-time costs shared by all of them.
  const first = evalWorker(IDLE_SRC);
  await nextMessage(first);
  await first.terminate();
  await new Promise((r) => setTimeout(r, 100));
  const before = pssKib();
  const workers = [];
  for (let i = 0; i < count; i++) workers.push(evalWorker(IDLE_SRC));
  await Promise.all(workers.map(nextMessage));
  await new Promise((r) => setTimeout(r, 200)); // let start-up garbage settle
  const after = pssKib();
  await Promise.all(workers.map((w) => w.terminate()));
  return (after - before) / count;
}

// ---------------------------------------------------------------------------------

async function main() {
  const out = {
    runtime: `node ${process.version} (V8 ${process.versions.v8})`,
    create_run_js_us: null,
    create_run_raw_us: null, // no raw (non-JS) guests here
    msg64_oneway_js_per_s: null,
    roundtrip_p50_us: null,
    roundtrip_p99_us: null,
    rss_idle_js_kib: null,
    live_js_max: null, // not measured: would need spawning workers until failure
  };
  const failed = [];
  let createTerminate = null;

  // Run one benchmark, logging its time; a failure leaves its metrics null.
  async function measure(name, fn) {
    const t0 = nowNs();
    try {
      const value = await fn();
      log(`  ${name}: ${JSON.stringify(value)} (${(usSince(t0) / 1e6).toFixed(1)} s)`);
      return value;
    } catch (err) {
      log(`  ${name} FAILED: ${err && err.stack ? err.stack : err}`);
      failed.push(name);
      return null;
    }
  }

  log(`node peer: ${out.runtime}${QUICK ? ' (quick)' : ''}`);
  // Memory first, so that memory freed by the other benchmarks is not reused.
  const kib = await measure('rss_idle_kib', () => benchRssIdle(CFG.idle));
  if (kib !== null) out.rss_idle_js_kib = Math.round(kib * 10) / 10;
  const cr = await measure('create_run_us', () => benchCreateRun(CFG.createReps));
  if (cr !== null) {
    out.create_run_js_us = Math.round(cr.toMessage * 10) / 10;
    createTerminate = Math.round(cr.withTerminate);
  }
  const rate = await measure('oneway_per_s', () => benchOneway(CFG.onewayN, CFG.onewayReps));
  if (rate !== null) out.msg64_oneway_js_per_s = Math.round(rate);
  const rt = await measure('roundtrip_us',
    () => benchRoundtrip(CFG.rtN, CFG.rtReps, CFG.rtBudgetS));
  if (rt !== null) {
    out.roundtrip_p50_us = Math.round(rt.p50 * 100) / 100;
    out.roundtrip_p99_us = Math.round(rt.p99 * 100) / 100;
  }

  out.notes = [
    `create_run: new Worker(eval '1+1') until its message arrives, median of ${CFG.createReps}` +
      ` (${createTerminate} us incl. await terminate())`,
    `oneway: main thread -> worker postMessage of 64-byte Uint8Array, ${CFG.onewayN} msgs,` +
      ` median of ${CFG.onewayReps}`,
    `roundtrip: main <-> echo worker, median of ${CFG.rtReps} per-rep percentiles, each rep` +
      ` ${CFG.rtN} pings or ${CFG.rtBudgetS} s (fewest: ${rt ? rt.fewest : '?'})`,
    `rss: Pss delta / ${CFG.idle} idle workers alive`,
  ].join('; ') + (failed.length ? `; FAILED: ${failed.join(', ')}` : '');

  process.stdout.write(JSON.stringify(out) + '\n', () => process.exit(failed.length ? 1 : 0));
}

main().catch((err) => {
  log(err && err.stack ? err.stack : err);
  process.exit(2);
});
