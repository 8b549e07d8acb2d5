//! Instruction counts under `valgrind --tool=callgrind`, beside the wall
//! clock of figures 1 and 2.
//!
//! On a shared machine the wall-clock ratios swing by tens of percent from
//! run to run; the count of instructions a program executes for the same
//! input does not depend on what else the machine is doing. So the goals
//! of figures 1 and 2 are judged on these counts:
//!
//! - **Guards**: `guard-ops VARIANT THREADS N` under callgrind, with `N`
//!   and `2N` iterations; the difference of the two totals over `N`
//!   (times the threads) is the count of one iteration, with start-up,
//!   thread creation and exit cancelled out.
//! - **Serving**: the server under callgrind, pinned to one CPU (so that
//!   it sizes its runtime to one worker: valgrind runs one thread at a time
//!   anyway), serves `n` keep-alive `GET /health/live` from a client
//!   outside valgrind, one request in flight at a time, then gets a
//!   SIGTERM; twice, with `n` and `2n` requests on the same connections.
//!   The difference of the two totals over `n` is the count of one
//!   request, with start-up, the connections' opening and closing, and the
//!   shutdown cancelled out. The same measurement runs over each
//!   [`Protocol`]: HTTP/1.1 keep-alive, and h2c (HTTP/2 with prior
//!   knowledge), one stream in flight at a time over the same number of
//!   connections, so that a request costs the same client-side pattern on
//!   both; and HTTP/1.1 over TLS (rustls on both sides, the servers
//!   started with `--tls CERT KEY`), whose handshakes are per connection
//!   and cancel out like the connections' opening.
//!
//! Every measurement is taken twice, and both are shown: counts that
//! differ between the two show how much of a figure is left to chance
//! (the order in which the kernel hands events to a server can still
//! change a little of the work it does).
//!
//! The profiles of the last serving measurement are kept, for
//! `callgrind_annotate`, in a `callgrind` directory beside the runner's
//! executable (`target/release/callgrind/`).

use crate::server::{Running, Spec};
use crate::serving::{Split, on_cpus};
use crate::{http, tls};
use graceful_bench::guard::Variant;
use nix::sys::signal::Signal;
use std::ffi::OsString;
use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

/// How long a server under valgrind may take to print its `listening`
/// line: valgrind translates the program's code as it first runs.
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// How long a server under valgrind may take to exit after its SIGTERM.
const EXIT_TIMEOUT: Duration = Duration::from_secs(90);

/// How long the client waits for one response.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);

/// What the counts run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Config {
    /// Iterations of the smaller guard run (the larger has twice as many).
    pub(crate) guard_ops: u64,
    /// Requests of the smaller serving run (the larger has twice as many).
    pub(crate) requests: usize,
    /// Keep-alive connections the requests take turns on.
    pub(crate) connections: usize,
    /// How many times each count is measured: twice in a full run, which
    /// shows how far apart two measurements of the same binary are (0.1 %
    /// for the guards, up to about 1 % per request, from the runtimes'
    /// timer and park paths); once in a quick run, to keep it short.
    pub(crate) repeats: usize,
}

/// The instruction count of one enter+leave of one variant.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct GuardCount {
    pub(crate) threads: usize,
    pub(crate) variant: &'static str,
    /// Instructions per iteration, one per repeat.
    pub(crate) per_op: Vec<f64>,
}

impl GuardCount {
    /// The mean over the repeats.
    pub(crate) fn value(&self) -> Option<f64> {
        mean(&self.per_op)
    }
}

/// The count of `variant` at `threads` in `rows`.
pub(crate) fn guard_count(rows: &[GuardCount], threads: usize, variant: &str) -> Option<f64> {
    rows.iter()
        .find(|r| r.threads == threads && r.variant == variant)?
        .value()
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// What the client speaks to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// HTTP/1.1 keep-alive, one request in flight per connection.
    Http1,
    /// HTTP/2 with prior knowledge over cleartext, one stream in flight.
    H2c,
    /// HTTP/1.1 keep-alive over TLS (ALPN `http/1.1`).
    Tls,
}

impl Protocol {
    /// Its name in the tables.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Protocol::Http1 => "HTTP/1.1",
            Protocol::H2c => "h2c",
            Protocol::Tls => "HTTP/1.1 over TLS",
        }
    }

    /// Its part of a profile's file name.
    fn file_tag(self) -> &'static str {
        match self {
            Protocol::Http1 => "",
            Protocol::H2c => "-h2c",
            Protocol::Tls => "-tls",
        }
    }
}

/// The instruction count of one request of one server.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ServingCount {
    pub(crate) server: String,
    pub(crate) protocol: Protocol,
    /// The server without shutdown code it is compared to (itself, for a
    /// baseline).
    pub(crate) baseline: String,
    /// Instructions per request, one per repeat.
    pub(crate) per_request: Vec<f64>,
    /// Its count over the baseline's, one per repeat.
    pub(crate) ratios: Vec<f64>,
    /// Why it has no figure, if it has none.
    pub(crate) failure: Option<String>,
}

impl ServingCount {
    /// The mean over the repeats.
    pub(crate) fn value(&self) -> Option<f64> {
        mean(&self.per_request)
    }

    /// The mean of the repeats' ratios.
    pub(crate) fn ratio(&self) -> Option<f64> {
        mean(&self.ratios)
    }
}

/// The largest relative difference between the repeats of `values`.
pub(crate) fn spread(values: &[f64]) -> Option<f64> {
    let lo = values.iter().copied().reduce(f64::min)?;
    let hi = values.iter().copied().reduce(f64::max)?;
    (lo > 0.0).then(|| (hi - lo) / lo)
}

/// Makes sure `valgrind` is on `PATH`: installs it from Debian's packages
/// (`apt-get install -y valgrind`) when it is not, saying so first.
pub(crate) fn ensure_valgrind() -> Result<(), String> {
    if valgrind_version().is_some() {
        return Ok(());
    }
    eprintln!(
        "graceful-bench: valgrind is not on PATH; the instruction counts need it: \
         installing it from Debian's packages (apt-get install -y valgrind)"
    );
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "valgrind"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::from(io::stderr()))
            .status()
    };
    let installed = match install() {
        Ok(status) if status.success() => true,
        // A fresh image may have no package lists yet.
        Ok(_) => {
            let updated = Command::new("apt-get")
                .arg("update")
                .stdout(Stdio::from(io::stderr()))
                .status()
                .is_ok_and(|s| s.success());
            updated && install().is_ok_and(|s| s.success())
        }
        Err(error) => {
            return Err(format!(
                "valgrind is not on PATH and apt-get cannot run ({error}); \
                 install valgrind (Debian: apt-get install valgrind) to get the instruction counts"
            ));
        }
    };
    match valgrind_version() {
        Some(_) if installed => Ok(()),
        _ => Err(
            "valgrind is not on PATH and `apt-get install -y valgrind` did not install it \
             (it needs root); install valgrind to get the instruction counts"
                .to_owned(),
        ),
    }
}

/// `valgrind --version`, if valgrind runs.
pub(crate) fn valgrind_version() -> Option<String> {
    Command::new("valgrind")
        .arg("--version")
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// `valgrind --tool=callgrind` writing its profile to `out`.
fn callgrind(out: &Path) -> Vec<OsString> {
    let mut file = OsString::from("--callgrind-out-file=");
    file.push(out);
    vec![
        "valgrind".into(),
        "--tool=callgrind".into(),
        // Its banner and summary only: the profile has the figures.
        "--quiet".into(),
        file,
    ]
}

/// The total instruction count of a callgrind profile: its `summary:`
/// line (or `totals:`, which newer versions write as well).
pub(crate) fn total(profile: &str) -> Result<u64, String> {
    profile
        .lines()
        .find_map(|line| {
            let rest = line
                .strip_prefix("summary:")
                .or_else(|| line.strip_prefix("totals:"))?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .ok_or_else(|| "the callgrind profile has no summary line".to_owned())
}

fn read_total(path: &Path) -> Result<u64, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("callgrind wrote no profile at {}: {e}", path.display()))?;
    total(&text)
}

/// Where the profiles go: `callgrind/` beside the runner's executable.
pub(crate) fn profile_dir() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find myself: {e}"))?;
    let dir = exe
        .parent()
        .map_or_else(std::env::temp_dir, Path::to_path_buf)
        .join("callgrind");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(dir)
}

/// The instruction counts of every guard variant, on 1 and 2 threads.
pub(crate) fn guards(program: &Path, config: &Config) -> Result<Vec<GuardCount>, String> {
    let dir = profile_dir()?;
    let mut rows = Vec::new();
    for threads in [1usize, 2] {
        for variant in Variant::ALL {
            // The loop alone is shown once: it is the same on 2 threads.
            if variant == Variant::Loop && threads == 2 {
                continue;
            }
            let mut per_op = Vec::new();
            for _ in 0..config.repeats {
                let mut totals = [0u64; 2];
                for (total, n) in totals
                    .iter_mut()
                    .zip([config.guard_ops, 2 * config.guard_ops])
                {
                    let out = dir.join(format!("guard-{}-{threads}-{n}.out", variant.name()));
                    let status = Command::new("valgrind")
                        .args(callgrind(&out).iter().skip(1))
                        .arg(program)
                        .args([variant.name(), &threads.to_string(), &n.to_string()])
                        .stdin(Stdio::null())
                        .stdout(Stdio::null())
                        .stderr(Stdio::inherit())
                        .status()
                        .map_err(|e| format!("cannot run valgrind: {e}"))?;
                    if !status.success() {
                        return Err(format!(
                            "guard-ops {} {threads} {n} under callgrind failed ({status})",
                            variant.name()
                        ));
                    }
                    *total = read_total(&out)?;
                }
                let ops = (threads as u64 * config.guard_ops) as f64;
                per_op.push(totals[1].saturating_sub(totals[0]) as f64 / ops);
            }
            eprintln!(
                "  {threads} thread{} {:<15} {} instructions per enter+leave",
                if threads == 1 { " " } else { "s" },
                variant.name(),
                per_op
                    .iter()
                    .map(|v| format!("{v:.2}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            rows.push(GuardCount {
                threads,
                variant: variant.name(),
                per_op,
            });
        }
    }
    Ok(rows)
}

/// The instruction counts per request of `baseline` and `others` over
/// `protocol`, each against the baseline, repeat by repeat; `client` is
/// the TLS client's config, for [`Protocol::Tls`] (whose specs are started
/// with their `--tls` arguments).
pub(crate) fn serving(
    baseline: &Spec,
    others: &[&Spec],
    protocol: Protocol,
    config: &Config,
    client: Option<&Arc<rustls::ClientConfig>>,
) -> Vec<ServingCount> {
    let specs: Vec<&Spec> = std::iter::once(baseline)
        .chain(others.iter().copied())
        .collect();
    let mut rows: Vec<ServingCount> = specs
        .iter()
        .map(|spec| ServingCount {
            server: spec.name.clone(),
            protocol,
            baseline: baseline.name.clone(),
            per_request: Vec::new(),
            ratios: Vec::new(),
            failure: None,
        })
        .collect();
    let dir = match profile_dir() {
        Ok(dir) => dir,
        Err(error) => {
            for row in &mut rows {
                row.failure = Some(error.clone());
            }
            return rows;
        }
    };
    // One CPU for the server, so that every runtime sizes itself to one
    // worker thread; the client on another, as in figure 2.
    let split = Split::of_this_machine().with_one_server_cpu();
    let repeats = config.repeats;
    for repeat in 0..repeats {
        let mut base = None;
        for (i, spec) in specs.iter().enumerate() {
            if rows[i].failure.is_some() {
                continue;
            }
            match per_request(spec, protocol, config, client, &split, &dir) {
                Ok(count) => {
                    eprintln!(
                        "  repeat {}/{repeats}  {:<18} {:<8} {count:>9.0} instructions per request",
                        repeat + 1,
                        spec.name,
                        protocol.label()
                    );
                    if i == 0 {
                        base = Some(count);
                    }
                    rows[i].per_request.push(count);
                    if let Some(base) = base.filter(|b| *b > 0.0) {
                        rows[i].ratios.push(count / base);
                    }
                }
                Err(error) => {
                    eprintln!("  {error}");
                    rows[i].failure = Some(error);
                }
            }
        }
    }
    rows
}

/// One serving count of `spec`: two runs, `n` and `2n` requests.
fn per_request(
    spec: &Spec,
    protocol: Protocol,
    config: &Config,
    client: Option<&Arc<rustls::ClientConfig>>,
    split: &Split,
    dir: &Path,
) -> Result<f64, String> {
    let n = config.requests;
    let mut totals = [0u64; 2];
    for (total, requests) in totals.iter_mut().zip([n, 2 * n]) {
        let out = dir.join(format!(
            "{}{}-{requests}.out",
            spec.name,
            protocol.file_tag()
        ));
        let _ = std::fs::remove_file(&out);
        let load = Load {
            protocol,
            requests,
            connections: config.connections,
            client: client.cloned(),
        };
        *total = serve_counted(spec, &callgrind(&out), &load, split)
            .and_then(|()| read_total(&out))
            .map_err(|error| format!("{}: {error}", spec.name))?;
    }
    Ok(totals[1].saturating_sub(totals[0]) as f64 / n as f64)
}

/// What the client of one counted run sends.
struct Load {
    protocol: Protocol,
    requests: usize,
    connections: usize,
    /// The TLS client's config, for [`Protocol::Tls`].
    client: Option<Arc<rustls::ClientConfig>>,
}

/// Starts `spec` under `wrapper` on the server's CPUs, has it serve
/// `load.requests` requests on `load.connections` connections in turn
/// (one in flight at a time), closes them, and stops it with SIGTERM.
fn serve_counted(
    spec: &Spec,
    wrapper: &[OsString],
    load: &Load,
    split: &Split,
) -> Result<(), String> {
    let requests = load.requests;
    let mut server = on_cpus(&split.server, || {
        Running::start_under(spec, wrapper, START_TIMEOUT)
    })?;
    let served = on_cpus(&split.load, || match load.protocol {
        Protocol::Http1 => requests_in_turn(server.addr(), requests, load.connections),
        Protocol::H2c => h2_requests_in_turn(server.addr(), requests, load.connections),
        Protocol::Tls => match &load.client {
            Some(client) => tls_requests_in_turn(server.addr(), requests, load.connections, client),
            None => Err(io::Error::other("no TLS client config")),
        },
    })
    .map_err(|error| server.failure(&format!("client: {error}")))?;
    if served != requests {
        return Err(server.failure(&format!("{served} of {requests} requests answered 200")));
    }
    // A baseline has no handler for it and dies of it; valgrind still
    // writes the profile of a process a signal ends.
    server.signal(Signal::SIGTERM)?;
    server.wait(EXIT_TIMEOUT).map(|_| ())
}

/// Sends `requests` `GET /health/live` on `connections` keep-alive
/// connections, one after the other; returns how many were answered 200.
fn requests_in_turn(addr: SocketAddr, requests: usize, connections: usize) -> io::Result<usize> {
    let mut streams: Vec<TcpStream> = (0..connections.max(1))
        .map(|_| http::connect(addr, RESPONSE_TIMEOUT))
        .collect::<io::Result<_>>()?;
    take_turns(&mut streams, addr, requests)
}

/// Sends `requests` `GET /health/live` on `streams`, one after the other,
/// each on the next stream in turn; returns how many were answered 200.
fn take_turns<S: io::Read + io::Write>(
    streams: &mut [S],
    addr: SocketAddr,
    requests: usize,
) -> io::Result<usize> {
    let count = streams.len();
    let mut ok = 0;
    for i in 0..requests {
        let response = http::get(&mut streams[i % count], addr, "/health/live")?;
        if response.status == 200 {
            ok += 1;
        }
    }
    Ok(ok)
}

/// Sends `requests` `GET /health/live` over TLS on `connections`
/// keep-alive connections, one after the other, as [`requests_in_turn`]
/// does; returns how many were answered 200. Each connection ends with
/// `close_notify`, as a TLS client that is done should.
fn tls_requests_in_turn(
    addr: SocketAddr,
    requests: usize,
    connections: usize,
    client: &Arc<rustls::ClientConfig>,
) -> io::Result<usize> {
    let mut streams = (0..connections.max(1))
        .map(|_| tls::connect(addr, client, RESPONSE_TIMEOUT))
        .collect::<io::Result<Vec<_>>>()?;
    let ok = take_turns(&mut streams, addr, requests)?;
    for mut stream in streams {
        stream.conn.send_close_notify();
        stream.flush()?;
    }
    Ok(ok)
}

/// Sends `requests` `GET /health/live` over h2c (prior knowledge) on
/// `connections` connections, one stream after the other, taking turns as
/// the HTTP/1.1 client does; returns how many were answered 200. The
/// connections are closed (GOAWAY from the client, then the end of the
/// socket) before it returns, so that the server's shutdown has no open
/// stream or connection to drain, as after the HTTP/1.1 client.
fn h2_requests_in_turn(addr: SocketAddr, requests: usize, connections: usize) -> io::Result<usize> {
    // A runtime of the calling thread: the client stays on the load CPUs
    // `on_cpus` pinned this thread to, with no worker thread of its own.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let h2_error = |error: h2::Error| io::Error::other(format!("h2: {error}"));
    runtime.block_on(async {
        let mut senders = Vec::new();
        let mut drivers = Vec::new();
        for _ in 0..connections.max(1) {
            let tcp = tokio::net::TcpStream::connect(addr).await?;
            tcp.set_nodelay(true)?;
            let (sender, connection) =
                tokio::time::timeout(RESPONSE_TIMEOUT, h2::client::handshake(tcp))
                    .await
                    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "h2 handshake timed out"))?
                    .map_err(h2_error)?;
            drivers.push(tokio::spawn(connection));
            senders.push(sender);
        }
        let uri = format!("http://{addr}/health/live");
        let count = senders.len();
        let mut ok = 0;
        for i in 0..requests {
            let request = hyper::Request::get(uri.as_str())
                .body(())
                .map_err(io::Error::other)?;
            let answered = async {
                let mut sender = senders[i % count].clone().ready().await?;
                let (response, _) = sender.send_request(request, true)?;
                let response = response.await?;
                let status = response.status();
                let mut body = response.into_body();
                while let Some(chunk) = body.data().await {
                    let chunk = chunk?;
                    // Hand the window back, as a real client does.
                    let _ = body.flow_control().release_capacity(chunk.len());
                }
                Ok::<_, h2::Error>(status)
            };
            let status = tokio::time::timeout(RESPONSE_TIMEOUT, answered)
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no h2 response in time"))?
                .map_err(h2_error)?;
            if status == 200 {
                ok += 1;
            }
        }
        // Dropping the last handle of a connection ends it once no stream
        // is open: h2 sends GOAWAY and closes the socket.
        drop(senders);
        for driver in drivers {
            match tokio::time::timeout(RESPONSE_TIMEOUT, driver).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(error))) => return Err(h2_error(error)),
                Ok(Err(error)) => return Err(io::Error::other(error)),
                Err(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "an h2 connection did not close",
                    ));
                }
            }
        }
        Ok(ok)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_total_of_a_profile() {
        let profile = "version: 1\ncreator: callgrind-3.19.0\nevents: Ir\nfn=main\n1 5\nsummary: 123456\ntotals: 123456\n";
        assert_eq!(total(profile), Ok(123_456));
        assert_eq!(total("totals: 7\n"), Ok(7));
        assert!(total("events: Ir\n").is_err());
    }

    #[test]
    fn spread_is_relative_to_the_smaller() {
        assert_eq!(spread(&[]), None);
        assert_eq!(spread(&[100.0, 100.0]), Some(0.0));
        assert!((spread(&[100.0, 100.1]).unwrap() - 0.001).abs() < 1e-9);
    }
}
