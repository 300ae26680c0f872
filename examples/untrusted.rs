//! Running code you do not trust: each script gets its own interpreter with a
//! deadline, a memory ceiling, an output cap and a budget of interpreters it
//! may create. An infinite loop, a memory bomb and a fork bomb run side by
//! side with a good script; each bad one ends in a typed error naming the
//! limit it hit, and the good one finishes with the right answer.
//!
//! Run: `cargo run --release --example untrusted [SCRIPT.js...]` — with
//! arguments, runs your scripts under the same limits and reports on them.

use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use subinterp::{Host, Limits, Run};

const BUILT_IN: &[(&str, &str)] = &[
    (
        "good",
        "let s = 0; for (let i = 1; i <= 1e6; i++) s += i; console.log(s);",
    ),
    ("infinite loop", "for (;;) {}"),
    (
        "memory bomb",
        "const a = []; for (;;) a.push(new Array(1e5).fill(a.length));",
    ),
    (
        "fork bomb",
        "const kids = []; for (;;) kids.push(interpreters.create());",
    ),
];

fn limits() -> Limits {
    Limits::new()
        .with_timeout(Duration::from_secs(1))
        .with_max_memory(64 << 20)
        .with_max_output(1 << 20)
        .with_max_interpreters(8)
}

fn main() -> Result<()> {
    let scripts: Vec<(String, String)> = match std::env::args().skip(1).collect::<Vec<_>>() {
        args if args.is_empty() => BUILT_IN
            .iter()
            .map(|(n, s)| (n.to_string(), s.to_string()))
            .collect(),
        paths => paths
            .into_iter()
            .map(|p| Ok((p.clone(), std::fs::read_to_string(&p)?)))
            .collect::<Result<_>>()?,
    };
    let host = Host::new()?;
    println!(
        "untrusted: {} scripts side by side, each with 1 s, 64 MiB, 1 MiB of output, 8 interpreters",
        scripts.len()
    );
    let started = Instant::now();
    // Start them all at once: each runs on its own thread, in its own sandbox.
    // (An interpreter lives as long as a handle to it: `kept` holds them, and
    // the children each script made, after the runs.)
    let mut kept = Vec::new();
    let mut jobs = Vec::new();
    for (name, src) in &scripts {
        let interp = host.create_js(limits())?;
        jobs.push((name, interp.start(Run::js(src.as_str()))));
        kept.push(interp);
    }
    let mut outcomes = Vec::new();
    for (name, job) in jobs {
        let r = job.join()?;
        let what = match &r.error {
            None => format!("completed: {}", r.stdout_text().trim()),
            Some(e) => format!("{} [{}]: {}", e.kind.type_name(), e.kind.name(), e.message),
        };
        println!("  {name:<14} {what} ({:.0} ms)", r.wall.as_secs_f64() * 1e3);
        outcomes.push((name.clone(), r));
    }
    println!(
        "untrusted: all done in {:.2} s; the host is fine",
        started.elapsed().as_secs_f64()
    );

    if std::env::args().len() == 1 {
        let kind = |n: &str| {
            let r = &outcomes.iter().find(|(name, _)| name == n).unwrap().1;
            r.error.as_ref().map(|e| e.kind.name().to_string())
        };
        let good = &outcomes[0].1;
        ensure!(good.completed && good.stdout_text().trim() == "500000500000");
        ensure!(kind("infinite loop").as_deref() == Some("timeout"));
        ensure!(kind("memory bomb").as_deref() == Some("memory_limit"));
        // The fork bomb's error is the LimitError its script did not catch.
        let bomb = &outcomes[3].1;
        ensure!(
            bomb.error
                .as_ref()
                .is_some_and(|e| e.kind.type_name() == "LimitError")
        );
        ensure!(
            host.list_all().len() == scripts.len() + 8,
            "the bomb got exactly its 8"
        );
    }
    Ok(())
}
