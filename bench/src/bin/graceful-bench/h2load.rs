//! Figure 9: HTTP/2 serving under `h2load`, graceful's targets against the
//! same server without graceful.
//!
//! `h2load` (nghttp2's load generator, Debian's `nghttp2-client`, installed
//! when missing) opens [`Config::clients`] h2c connections with prior
//! knowledge, each with up to [`Config::streams`] concurrent streams of
//! `GET /health/live`, for [`Config::duration`] after a warm-up. The servers
//! of one runtime (the baseline `plain-tokio` or `plain-smol`, which serve
//! h2c on their one port as the targets do, and graceful's target of that
//! runtime) are measured in interleaved rounds, each server started afresh
//! in each round and in a rotated order, and each ratio is taken against
//! the baseline's rate of the same round, as in figure 2. Wall clock: noisy
//! on a shared machine.
//!
//! A server that answers no request of a one-request probe over h2c
//! (h2load: 0 succeeded) does not serve HTTP/2: it is reported as such and
//! not measured. That is graceful-actix's case until its target serves h2c;
//! it needs no change here once it does.
//!
//! Figure 11 runs the same rounds over TLS ([`Scheme`]): `https://` with
//! ALPN `h2`, and with `--h1` (HTTP/1.1 over TLS, one request in flight per
//! connection), the servers started with `--tls CERT KEY`; h2load does not
//! verify the certificate, so the run's self-signed one does.

use crate::server::{Running, Spec};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The program, and the Debian package it comes in.
const H2LOAD: &str = "h2load";
const PACKAGE: &str = "nghttp2-client";

/// The route every request asks for.
const PATH: &str = "/health/live";

/// What h2load speaks to the servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    /// HTTP/2 with prior knowledge over cleartext (figure 9).
    H2c,
    /// HTTP/2 over TLS, by ALPN.
    H2Tls,
    /// HTTP/1.1 over TLS (`--h1`).
    H1Tls,
}

impl Scheme {
    /// Its name in the tables.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Scheme::H2c => "h2c",
            Scheme::H2Tls => "HTTP/2 over TLS",
            Scheme::H1Tls => "HTTP/1.1 over TLS",
        }
    }

    /// h2load's arguments for it, before the URL's.
    fn flags(self) -> &'static [&'static str] {
        match self {
            Scheme::H2c | Scheme::H2Tls => &[],
            Scheme::H1Tls => &["--h1"],
        }
    }

    /// The URL of the route on `addr`.
    fn url(self, addr: std::net::SocketAddr) -> String {
        match self {
            Scheme::H2c => format!("http://{addr}{PATH}"),
            Scheme::H2Tls | Scheme::H1Tls => format!("https://{addr}{PATH}"),
        }
    }
}

/// What the figure runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Config {
    pub(crate) scheme: Scheme,
    pub(crate) rounds: usize,
    /// `h2load -c`: connections.
    pub(crate) clients: usize,
    /// `h2load -m`: concurrent streams per connection.
    pub(crate) streams: usize,
    /// `h2load --warm-up-time`.
    pub(crate) warm_up: Duration,
    /// `h2load -D`: the measured part.
    pub(crate) duration: Duration,
}

impl Config {
    pub(crate) fn new(quick: bool) -> Config {
        Config {
            scheme: Scheme::H2c,
            rounds: if quick { 3 } else { 8 },
            clients: 16,
            streams: 10,
            warm_up: Duration::from_millis(300),
            duration: Duration::from_secs(if quick { 2 } else { 4 }),
        }
    }

    /// Figure 11's runs over `scheme`: fewer and shorter rounds than
    /// figure 9's in quick mode (two protocols, two pairs: about 30 s), and
    /// one request in flight per connection over HTTP/1.1 (h2load's `-m`
    /// would pipeline them).
    pub(crate) fn tls(quick: bool, scheme: Scheme) -> Config {
        Config {
            scheme,
            rounds: if quick { 2 } else { 6 },
            clients: 16,
            streams: if scheme == Scheme::H1Tls { 1 } else { 10 },
            warm_up: Duration::from_millis(300),
            duration: Duration::from_secs(if quick { 1 } else { 3 }),
        }
    }

    /// `h2load`'s arguments against `addr`.
    pub(crate) fn args(&self, addr: std::net::SocketAddr) -> Vec<String> {
        let mut args: Vec<String> = self
            .scheme
            .flags()
            .iter()
            .map(|f| (*f).to_owned())
            .collect();
        args.extend([
            "-c".to_owned(),
            self.clients.to_string(),
            "-m".to_owned(),
            self.streams.to_string(),
            "-D".to_owned(),
            format!("{}", self.duration.as_secs_f64()),
            format!("--warm-up-time={}ms", self.warm_up.as_millis()),
            self.scheme.url(addr),
        ]);
        args
    }
}

/// What one `h2load` run printed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Run {
    /// `finished in ..., N req/s`.
    pub(crate) rps: f64,
    /// `requests: N total, ..., S succeeded, F failed, E errored, T timeout`.
    pub(crate) total: u64,
    pub(crate) succeeded: u64,
    pub(crate) failed: u64,
    pub(crate) errored: u64,
    pub(crate) timeout: u64,
    /// `status codes: N 2xx, ...`: answers other than 2xx.
    pub(crate) not_2xx: u64,
}

/// Reads `h2load`'s summary from its standard output.
pub(crate) fn parse(text: &str) -> Result<Run, String> {
    let line = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .ok_or_else(|| format!("h2load printed no `{prefix}` line"))
    };
    // `N word` pairs separated by commas: the number before `word`.
    let field = |rest: &str, word: &str| -> Result<f64, String> {
        rest.split(',')
            .find_map(|part| {
                let mut words = part.split_whitespace();
                let value = words.next()?;
                (words.next()? == word).then_some(value)
            })
            .and_then(|value| value.parse::<f64>().ok())
            .ok_or_else(|| format!("h2load's summary has no number of {word:?}"))
    };
    let finished = line("finished in ")?;
    let requests = line("requests: ")?;
    let codes = line("status codes: ")?;
    let count = |rest: &str, word: &str| field(rest, word).map(|v| v as u64);
    Ok(Run {
        rps: field(finished, "req/s")?,
        total: count(requests, "total")?,
        succeeded: count(requests, "succeeded")?,
        failed: count(requests, "failed")?,
        errored: count(requests, "errored")?,
        timeout: count(requests, "timeout")?,
        not_2xx: count(codes, "3xx")? + count(codes, "4xx")? + count(codes, "5xx")?,
    })
}

/// `h2load --version`'s first line, if it runs.
fn version() -> Option<String> {
    let out = Command::new(H2LOAD)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().next().map(|l| l.trim().to_owned())
}

/// Makes sure `h2load` runs, installing Debian's `nghttp2-client` if it
/// does not (as the rollout installs HAProxy); returns its version.
pub(crate) fn ensure_installed() -> Result<String, String> {
    if let Some(version) = version() {
        return Ok(version);
    }
    eprintln!(
        "graceful-bench: h2load is not on PATH: installing it from Debian's packages \
         (apt-get install -y -q --no-install-recommends {PACKAGE})"
    );
    let apt = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .map_err(|e| format!("h2load is not on PATH and apt-get cannot run: {e}"))
    };
    let install = ["install", "-y", "-q", "--no-install-recommends", PACKAGE];
    // A fresh image may have no package lists yet.
    if !apt(&install)?.success() {
        apt(&["update", "-q"])?;
        apt(&install)?;
    }
    version().ok_or_else(|| {
        format!(
            "h2load is not on PATH and `apt-get install {PACKAGE}` did not install it \
             (it needs root); install {PACKAGE} to measure figure 9"
        )
    })
}

/// Runs `h2load` with `args` and reads its summary; a run that takes far
/// longer than it was asked to is killed.
fn h2load(args: &[String], bound: Duration) -> Result<Run, String> {
    let child = Command::new(H2LOAD)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run h2load: {e}"))?;
    let pid = child.id();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    // The watchdog kills h2load once `bound` has passed without the run
    // ending; the ending drops `done_tx`, which wakes it.
    let watchdog = std::thread::spawn(move || {
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = done_rx.recv_timeout(bound)
            && let Ok(raw) = i32::try_from(pid)
        {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(raw),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    });
    let out = child.wait_with_output();
    drop(done_tx);
    let _ = watchdog.join();
    let out = out.map_err(|e| format!("h2load: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    match parse(&text) {
        Ok(run) if out.status.success() => Ok(run),
        result => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let why = match result {
                Ok(_) => format!("h2load ended with {}", out.status),
                Err(error) => format!("{error} (it ended with {})", out.status),
            };
            Err(match stderr.lines().find(|l| !l.trim().is_empty()) {
                Some(line) => format!("{why}: {}", line.trim()),
                None => why,
            })
        }
    }
}

/// One server's rounds.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    pub(crate) server: String,
    /// The baseline it is compared to (itself, for a baseline).
    pub(crate) baseline: String,
    /// Requests per second, one per round.
    pub(crate) rates: Vec<f64>,
    /// Its rate over the baseline's in the same round.
    pub(crate) ratios: Vec<f64>,
    /// h2load's counts over every round.
    pub(crate) requests: u64,
    pub(crate) failed: u64,
    pub(crate) errored: u64,
    /// Answers other than 2xx over every round.
    pub(crate) not_2xx: u64,
    /// Whether the probe got no answer over h2c: not measured.
    pub(crate) no_h2: bool,
    /// Why rounds have no figure.
    pub(crate) failures: Vec<String>,
}

/// The figure's results.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Figure {
    /// `h2load --version`.
    pub(crate) version: String,
    pub(crate) rows: Vec<Row>,
}

/// Whether `spec` answers a request over `scheme` at all: a one-request
/// probe.
fn serves_h2c(spec: &Spec, scheme: Scheme) -> Result<bool, String> {
    let server = Running::start(spec)?;
    let mut args: Vec<String> = scheme.flags().iter().map(|f| (*f).to_owned()).collect();
    args.extend([
        "-c".to_owned(),
        "1".to_owned(),
        "-n".to_owned(),
        "1".to_owned(),
        scheme.url(server.addr()),
    ]);
    let run = h2load(&args, Duration::from_secs(20))?;
    Ok(run.succeeded > 0)
}

/// Measures one runtime's `baseline` and `others` (graceful's target of
/// that runtime) in interleaved rounds.
pub(crate) fn measure(baseline: &Spec, others: &[&Spec], config: &Config) -> Vec<Row> {
    let specs: Vec<&Spec> = std::iter::once(baseline)
        .chain(others.iter().copied())
        .collect();
    let mut rows: Vec<Row> = specs
        .iter()
        .map(|spec| Row {
            server: spec.name.clone(),
            baseline: baseline.name.clone(),
            rates: Vec::new(),
            ratios: Vec::new(),
            requests: 0,
            failed: 0,
            errored: 0,
            not_2xx: 0,
            no_h2: false,
            failures: Vec::new(),
        })
        .collect();
    for (row, spec) in rows.iter_mut().zip(&specs) {
        match serves_h2c(spec, config.scheme) {
            Ok(served) => row.no_h2 = !served,
            Err(error) => row.failures.push(error),
        }
        if row.no_h2 {
            eprintln!(
                "  {}: no answer over {}, not measured",
                row.server,
                config.scheme.label()
            );
        }
    }
    // A run's own time, the warm-up, and a generous margin for a busy box.
    let bound = config.warm_up + config.duration + Duration::from_secs(30);
    for round in 0..config.rounds {
        let mut rates: Vec<Option<f64>> = vec![None; specs.len()];
        for k in 0..specs.len() {
            let i = (k + round) % specs.len();
            if rows[i].no_h2 || !rows[i].failures.is_empty() {
                continue;
            }
            let outcome = Running::start(specs[i]).and_then(|mut server| {
                // Killed when dropped, once the run is over.
                h2load(&config.args(server.addr()), bound)
                    .map_err(|error| server.failure(&format!("h2load: {error}")))
            });
            match outcome {
                Ok(run) => {
                    eprintln!(
                        "  round {}/{}  {:<18} {:<17} {:>8.0} req/s, {} failed, {} errored",
                        round + 1,
                        config.rounds,
                        rows[i].server,
                        config.scheme.label(),
                        run.rps,
                        run.failed,
                        run.errored
                    );
                    let row = &mut rows[i];
                    row.requests += run.total;
                    row.failed += run.failed;
                    row.errored += run.errored;
                    row.not_2xx += run.not_2xx;
                    rates[i] = Some(run.rps);
                }
                Err(error) => {
                    eprintln!("  {error}");
                    rows[i].failures.push(error);
                }
            }
        }
        let base = rates[0].filter(|b| *b > 0.0);
        for (row, rate) in rows.iter_mut().zip(&rates) {
            let Some(rate) = rate else { continue };
            row.rates.push(*rate);
            if let Some(base) = base {
                row.ratios.push(rate / base);
            }
        }
    }
    rows
}

/// The whole figure: `h2load` made sure of, then each runtime's group.
pub(crate) fn figure(groups: &[(&Spec, Vec<&Spec>)], config: &Config) -> Result<Figure, String> {
    let version = ensure_installed()?;
    let mut rows = Vec::new();
    for (baseline, others) in groups {
        rows.extend(measure(baseline, others, config));
    }
    Ok(Figure { version, rows })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUMMARY: &str = "\
starting benchmark...
spawning thread #0: 16 total client(s). Timing-based test with 0.3s of warm-up time and 2s of main duration for measurements.

finished in 2.30s, 41234.50 req/s, 1.54MB/s
requests: 82469 total, 82629 started, 82469 done, 82400 succeeded, 69 failed, 60 errored, 9 timeout
status codes: 82400 2xx, 0 3xx, 3 4xx, 66 5xx
traffic: 3.07MB (3221346) total, 403.14KB (412815) headers (space savings 93.06%), 322.14KB (329876) data
";

    #[test]
    fn reads_h2loads_summary() {
        let run = parse(SUMMARY).unwrap();
        assert_eq!(run.rps, 41234.5);
        assert_eq!(
            (
                run.total,
                run.succeeded,
                run.failed,
                run.errored,
                run.timeout
            ),
            (82469, 82400, 69, 60, 9)
        );
        assert_eq!(run.not_2xx, 69);
    }

    #[test]
    fn a_summary_without_its_lines_is_an_error() {
        assert!(parse("").is_err());
        let no_codes: String = SUMMARY
            .lines()
            .filter(|l| !l.starts_with("status codes"))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(parse(&no_codes).unwrap_err().contains("status codes"));
        assert!(parse(&SUMMARY.replace("69 failed", "x failed")).is_err());
    }

    #[test]
    fn runs_h2c_against_the_live_route() {
        let args = Config::new(true)
            .args("127.0.0.1:8080".parse().unwrap())
            .join(" ");
        assert_eq!(
            args,
            "-c 16 -m 10 -D 2 --warm-up-time=300ms http://127.0.0.1:8080/health/live"
        );
    }
}
