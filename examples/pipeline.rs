//! A pipeline of C-built wasm interpreters, each in its own sandbox, passing
//! messages over channels: the first stage copies each message in, upper-cases
//! it and sends a new buffer; the next stages forward views without copying.
//! A fourth interpreter spins forever and is stopped by its deadline while the
//! pipeline carries on. Prints what happened and checks it.
//!
//! Run: `make demo` (or `make guest && cargo run --release --example pipeline`).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use subinterp::{ErrorKind, Host, Limits, Run};

const MESSAGES: usize = 20_000;

fn main() -> Result<()> {
    let started = Instant::now();
    let host = Host::new()?;
    let wasm = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/guest/relay.wasm");
    let guest = host
        .load_file(&wasm)
        .with_context(|| format!("{} (run `make guest`)", wasm.display()))?;

    // host -> upper -> relay -> relay -> host
    let (first_rx, first_tx) = host.create_channel(64);
    let mut input = first_rx;
    let mut jobs = Vec::new();
    for f in ["upper", "relay", "relay"] {
        let (rx, tx) = host.create_channel(64);
        let interp = host.create(&guest)?;
        jobs.push((
            f,
            interp.start(Run::export(f).channel("in", input).channel("out", tx)),
        ));
        input = rx;
    }
    let output = input;

    // A hostile neighbour: an infinite loop under a 200 ms deadline.
    let spin = host.compile(
        "spin",
        br#"(module (func (export "spin") (loop $l (br $l))))"#,
    )?;
    let hostile = host
        .interpreter(&spin)
        .limits(Limits::new().with_timeout(Duration::from_millis(200)))
        .build()?;
    let hostile_job = hostile.start(Run::export("spin"));

    let producer = std::thread::spawn(move || -> Result<usize> {
        let mut bytes = 0;
        for i in 0..MESSAGES {
            let msg = format!("message {i} from the host");
            bytes += msg.len();
            first_tx.send(msg.into_bytes())?;
        }
        first_tx.close();
        Ok(bytes)
    });
    let mut received = 0;
    let mut last_progress = Instant::now();
    while let Ok(m) = output.recv() {
        let view = m.into_view().context("expected bytes")?;
        let want = format!("MESSAGE {received} FROM THE HOST");
        ensure!(
            &*view == want.as_bytes(),
            "message {received} arrived damaged"
        );
        received += 1;
        if last_progress.elapsed() > Duration::from_secs(1) {
            eprintln!("  ... {received}/{MESSAGES} messages through the pipeline");
            last_progress = Instant::now();
        }
    }
    let sent_bytes = producer.join().expect("producer thread")?;
    for (f, job) in jobs {
        let r = job.join()?.check()?;
        ensure!(
            r.value == Some(MESSAGES as i32),
            "stage {f} passed {:?}",
            r.value
        );
    }
    let hostile_result = hostile_job.join()?;
    let contained = hostile_result
        .error
        .context("the spinning guest should have been stopped")?;
    ensure!(
        matches!(contained.kind, ErrorKind::Timeout { .. }),
        "{contained}"
    );

    let c = host.counters();
    println!("subinterp demo: a pipeline of 3 wasm interpreters (C guests) + 1 hostile one");
    println!("  interpreters     : {} live", host.list_all().len());
    println!("  messages         : {received} of {MESSAGES} arrived intact, in order");
    println!("  bytes sent       : {sent_bytes} by the host (no copy: buffers are shared)");
    println!(
        "  copied into wasm : {} bytes (stage 1 reads each message)",
        c.bytes_copied_in
    );
    println!(
        "  copied out       : {} bytes (stage 1 sends its upper-cased copy)",
        c.bytes_copied_out
    );
    println!(
        "  forwarded        : {} buffers, zero bytes copied (stages 2 and 3)",
        c.buffers_forwarded
    );
    println!(
        "  contained        : {} after {:?}",
        contained, hostile_result.wall
    );
    println!("  wall time        : {:?}", started.elapsed());
    ensure!(received == MESSAGES);
    ensure!(c.bytes_copied_in as usize == sent_bytes && c.bytes_copied_out as usize == sent_bytes);
    ensure!(c.buffers_forwarded as usize == 2 * MESSAGES);
    Ok(())
}
