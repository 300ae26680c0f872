//! `subinterp run --send NAME=URL --recv NAME=URL`: channels bound to NATS
//! subjects (`subinterp::nats`), handed to the run under NAME, so that runs
//! in different processes or on different machines talk through them.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, Result};
use subinterp::nats::{DEFAULT_CAPACITY, Nats, NatsReceiver, NatsSender, async_nats};
use subinterp::remote::Credentials;
use subinterp::{Host, Run};

/// How long, after the run, the acks of what it released may take to reach
/// the server before the process exits anyway (what is not acknowledged is
/// delivered again to the next receiver).
const FLUSH: Duration = Duration::from_secs(10);

/// A `--send`/`--recv` value: `NAME=nats://HOST:PORT/SUBJECT[?capacity=N]`.
#[derive(Clone, Debug)]
pub(crate) struct Binding {
    pub(crate) name: String,
    pub(crate) url: String,
    pub(crate) subject: String,
    pub(crate) capacity: usize,
}

/// Parses a `--send`/`--recv` value.
pub(crate) fn parse_binding(s: &str) -> Result<Binding, String> {
    let bad = |why: &str| {
        Err(format!(
            "wants NAME=nats://HOST:PORT/SUBJECT[?capacity=N]: {why}, got {s:?}"
        ))
    };
    let Some((name, url)) = s.split_once('=') else {
        return bad("no '='");
    };
    if name.is_empty()
        || name.len() > 64
        || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return bad("NAME is 1 to 64 of A-Z a-z 0-9 _");
    }
    let Some(rest) = url.strip_prefix("nats://") else {
        return bad("the address starts with nats://");
    };
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let Some((server, subject)) = rest.split_once('/') else {
        return bad("no /SUBJECT after the server");
    };
    if server.is_empty() || subject.is_empty() {
        return bad("the server and the subject must not be empty");
    }
    let capacity = match query {
        "" => DEFAULT_CAPACITY,
        q => match q.strip_prefix("capacity=").map(str::parse::<usize>) {
            Some(Ok(n)) if n > 0 => n,
            _ => return bad("the only option is capacity=N, N at least 1"),
        },
    };
    Ok(Binding {
        name: name.to_string(),
        url: format!("nats://{server}"),
        subject: subject.to_string(),
        capacity,
    })
}

/// A name given twice (`--send a=… --recv a=…`): a usage error.
pub(crate) fn check_names(sends: &[Binding], recvs: &[Binding]) -> Result<(), String> {
    let mut names: Vec<&str> = sends.iter().chain(recvs).map(|b| b.name.as_str()).collect();
    names.sort_unstable();
    match names.windows(2).find(|w| w[0] == w[1]) {
        Some(w) => Err(format!(
            "the channel name {} is given to --send/--recv twice",
            w[0]
        )),
        None => Ok(()),
    }
}

/// The channels of one run, bound.
#[derive(Default)]
pub(crate) struct Bound {
    senders: Vec<(String, NatsSender)>,
    receivers: Vec<(String, NatsReceiver)>,
}

impl Bound {
    /// Connects (once for each server, with the operator's credentials:
    /// `creds`, else the environment) and binds every channel.
    pub(crate) fn bind(
        host: &Host,
        sends: &[Binding],
        recvs: &[Binding],
        creds: Option<&std::path::Path>,
    ) -> Result<Bound> {
        let mut servers: HashMap<String, Nats> = HashMap::new();
        let mut bound = Bound::default();
        for (b, send) in sends
            .iter()
            .map(|b| (b, true))
            .chain(recvs.iter().map(|b| (b, false)))
        {
            let nats = match servers.get(&b.url) {
                Some(n) => n.clone(),
                None => {
                    let n = connect(&b.url, creds)?;
                    servers.insert(b.url.clone(), n.clone());
                    n
                }
            };
            let channel = nats.channel(host, &b.subject).capacity(b.capacity);
            let what = || format!("binding {} to {}/{}", b.name, b.url, b.subject);
            if send {
                bound
                    .senders
                    .push((b.name.clone(), channel.sender().with_context(what)?));
            } else {
                bound
                    .receivers
                    .push((b.name.clone(), channel.receiver().with_context(what)?));
            }
        }
        // The run is a stage: what it releases is acknowledged once what it
        // sent before is stored.
        for (_, rx) in &bound.receivers {
            for (_, tx) in &bound.senders {
                rx.acks_after(tx);
            }
        }
        Ok(bound)
    }

    /// Hands every bound end to `run` under its name.
    pub(crate) fn attach(&self, mut run: Run) -> Run {
        for (name, tx) in &self.senders {
            run = run.channel(name.clone(), tx.channel().clone());
        }
        for (name, rx) in &self.receivers {
            run = run.channel(name.clone(), rx.channel().clone());
        }
        run
    }

    /// After the run: every sender's messages stored and its close
    /// published; every release acknowledged. The first failure, if any.
    pub(crate) fn finish(self) -> Result<()> {
        let mut first = Ok(());
        for (name, tx) in self.senders {
            if let Err(e) = tx.finish() {
                first = first.and(Err(e).with_context(|| format!("channel {name}")));
            }
        }
        for (name, rx) in self.receivers {
            if !rx.flush(FLUSH) {
                let e = anyhow::anyhow!(
                    "channel {name}: its acks did not reach the server in {FLUSH:?}; what it released will be delivered again"
                );
                first = first.and(Err(e));
            }
        }
        first
    }
}

/// Connects to `url` with `creds` (a `.creds` file), else the credentials
/// in the environment.
fn connect(url: &str, creds: Option<&std::path::Path>) -> Result<Nats> {
    let credentials = match creds {
        Some(f) => Credentials::File(f.to_path_buf()),
        None => Credentials::from_env(),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .context("starting the async runtime")?;
    let options: async_nats::ConnectOptions = rt.block_on(credentials.connect_options())?;
    Ok(Nats::connect_with(url, options.name("subinterp"))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bindings_are_parsed_and_checked() {
        let b = parse_binding("out=nats://10.0.0.5:4222/orders.eu?capacity=16").unwrap();
        assert_eq!(
            (
                b.name.as_str(),
                b.url.as_str(),
                b.subject.as_str(),
                b.capacity
            ),
            ("out", "nats://10.0.0.5:4222", "orders.eu", 16)
        );
        assert_eq!(
            parse_binding("in=nats://h:1/s").unwrap().capacity,
            DEFAULT_CAPACITY
        );
        for bad in [
            "nats://h:1/s",
            "=nats://h:1/s",
            "a b=nats://h:1/s",
            "in=http://h:1/s",
            "in=nats://h:1",
            "in=nats:///s",
            "in=nats://h:1/",
            "in=nats://h:1/s?capacity=0",
            "in=nats://h:1/s?capacity=x",
            "in=nats://h:1/s?cap=1",
        ] {
            assert!(parse_binding(bad).is_err(), "{bad}");
        }
    }
}
