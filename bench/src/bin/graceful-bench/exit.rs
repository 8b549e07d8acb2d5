//! Figures 3 and 4: how long a server takes to exit after its last
//! response, and after a SIGTERM with nothing in flight.
//!
//! - **After the last response**: a few `GET /sleep?ms=N` requests, each
//!   on its own connection, are sent at once; a SIGTERM follows shortly
//!   after; the time is from the instant the client has read the last
//!   whole response to the instant the process has exited (the instant
//!   `wait` returns, in a thread that blocks on it).
//! - **Idle**: nothing in flight; the time from the SIGTERM to the exit.
//!   Measured twice: with no connection open (one `GET /health/live` was
//!   served and its connection closed), and with one keep-alive connection
//!   left open and idle after its `GET /health/live`, as a load balancer's
//!   pooled connection would be.
//!
//! Each repetition starts a fresh process.

use crate::http;
use crate::server::{self, Running, Spec};
use nix::sys::signal::Signal;
use std::collections::BTreeSet;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

/// How long the harness waits for an exit before it kills the process
/// and counts a failure (every server here drains within 30 s).
const EXIT_TIMEOUT: Duration = Duration::from_secs(40);

/// What one figure runs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Config {
    pub(crate) repetitions: usize,
    /// Requests in flight at the signal (figure 3).
    pub(crate) in_flight: usize,
    /// How long each of them takes.
    pub(crate) sleep: Duration,
    /// When the signal follows the requests (figure 3), or the idle
    /// connection's request (figure 4).
    pub(crate) signal_after: Duration,
}

/// One server's repetitions.
#[derive(Debug, Clone, Default)]
pub(crate) struct Row {
    pub(crate) server: String,
    /// Milliseconds, one per successful repetition.
    pub(crate) latencies: Vec<f64>,
    /// Repetitions that went wrong, and how.
    pub(crate) failures: Vec<String>,
    /// How the processes ended (`exit 0`, ...).
    pub(crate) endings: BTreeSet<String>,
}

/// Figure 3 for `spec`.
pub(crate) fn after_last_response(spec: &Spec, config: &Config) -> Row {
    repeat(spec, config, busy_once)
}

/// Figure 4 for `spec`, with no connection open at the signal, or with
/// one idle keep-alive connection.
pub(crate) fn idle(spec: &Spec, config: &Config, keep_alive: bool) -> Row {
    repeat(spec, config, |spec, config| {
        idle_once(spec, config, keep_alive)
    })
}

/// How long figure 8 waits for an exit with a stream open before it kills
/// the server and counts it as held.
pub(crate) const SSE_BOUND: Duration = Duration::from_secs(10);

/// Figure 8 for `spec`: the time from a SIGTERM to the exit with one
/// server-sent events stream (`GET /events?ms=100`) open, its first event
/// read. A server still running [`SSE_BOUND`] after the signal is killed,
/// and the row stops there (a server that holds once holds every time).
pub(crate) fn with_sse(spec: &Spec, config: &Config) -> Row {
    let mut row = Row {
        server: spec.name.clone(),
        ..Row::default()
    };
    for _ in 0..config.repetitions {
        match sse_once(spec, config) {
            Ok((latency, ending)) => {
                row.latencies.push(latency);
                row.endings.insert(ending);
            }
            Err(error) => {
                eprintln!("  {error}");
                let held = error.contains("still running");
                row.failures.push(error);
                if held {
                    break;
                }
            }
        }
    }
    row
}

fn sse_once(spec: &Spec, config: &Config) -> Result<(f64, String), String> {
    use std::io::{Read, Write};
    let mut server = Running::start(spec)?;
    let addr = server.addr();
    let mut stream =
        http::connect(addr, SSE_BOUND).map_err(|e| server.failure(&format!("connect: {e}")))?;
    let request = format!("GET /events?ms=100 HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| server.failure(&format!("/events: {e}")))?;
    // The head and the first event.
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("tick 0") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return Err(server.failure("/events: no first event")),
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    if !seen.starts_with(b"HTTP/1.1 200") {
        return Err(server.failure("/events: not a 200"));
    }
    thread::sleep(config.signal_after);
    // What the stream says after the signal, read on until it ends.
    let reader = thread::spawn(move || {
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest);
        String::from_utf8_lossy(&rest).contains("retry:")
    });
    let signalled = server.signal(Signal::SIGTERM)?;
    let exit = server.wait(SSE_BOUND)?;
    let retry = reader.join().unwrap_or(false);
    Ok((
        server::millis_between(signalled, exit.at),
        format!(
            "{}{}",
            server::describe(exit.status),
            if retry {
                ", the stream ended with `retry:`"
            } else {
                ""
            }
        ),
    ))
}

fn repeat(
    spec: &Spec,
    config: &Config,
    once: impl Fn(&Spec, &Config) -> Result<(f64, String), String>,
) -> Row {
    let mut row = Row {
        server: spec.name.clone(),
        ..Row::default()
    };
    for _ in 0..config.repetitions {
        match once(spec, config) {
            Ok((latency, ending)) => {
                row.latencies.push(latency);
                row.endings.insert(ending);
            }
            Err(error) => {
                eprintln!("  {error}");
                row.failures.push(error);
            }
        }
    }
    row
}

/// The outcome of one request: when its response was read, and its status.
type Outcome = Result<(Instant, u16), String>;

fn busy_once(spec: &Spec, config: &Config) -> Result<(f64, String), String> {
    let mut server = Running::start(spec)?;
    let addr = server.addr();
    let timeout = config.sleep + EXIT_TIMEOUT;
    // One request first, so the process is warm.
    let warm = http::connect(addr, timeout)
        .and_then(|mut stream| http::get(&mut stream, addr, "/health/live"))
        .map_err(|e| server.failure(&format!("warm-up request: {e}")))?;
    if warm.status != 200 {
        return Err(server.failure(&format!("warm-up request: status {}", warm.status)));
    }

    let path = format!("/sleep?ms={}", config.sleep.as_millis());
    let start = Arc::new(Barrier::new(config.in_flight + 1));
    let clients: Vec<_> = (0..config.in_flight)
        .map(|_| {
            let start = start.clone();
            let path = path.clone();
            thread::spawn(move || -> Outcome {
                let connected = http::connect(addr, timeout);
                start.wait();
                let mut stream = connected.map_err(|e| format!("connect: {e}"))?;
                let response =
                    http::get(&mut stream, addr, &path).map_err(|e| format!("{path}: {e}"))?;
                Ok((Instant::now(), response.status))
            })
        })
        .collect();
    start.wait();
    thread::sleep(config.signal_after);
    server.signal(Signal::SIGTERM)?;

    let mut last = None::<Instant>;
    let mut problems = Vec::new();
    for client in clients {
        match client.join() {
            Ok(Ok((at, 200))) => last = Some(last.map_or(at, |l| l.max(at))),
            Ok(Ok((_, status))) => problems.push(format!("status {status}")),
            Ok(Err(error)) => problems.push(error),
            Err(_) => problems.push("a client thread panicked".to_owned()),
        }
    }
    let exit = server.wait(EXIT_TIMEOUT)?;
    if !problems.is_empty() {
        return Err(format!(
            "{}: {} of {} requests in flight failed: {}",
            spec.name,
            problems.len(),
            config.in_flight,
            problems.join("; ")
        ));
    }
    let last = last.ok_or("no response")?;
    Ok((
        server::millis_between(last, exit.at),
        server::describe(exit.status),
    ))
}

fn idle_once(spec: &Spec, config: &Config, keep_alive: bool) -> Result<(f64, String), String> {
    let mut server = Running::start(spec)?;
    let addr = server.addr();
    let mut connection =
        http::connect(addr, EXIT_TIMEOUT).map_err(|e| server.failure(&format!("connect: {e}")))?;
    let response = http::get(&mut connection, addr, "/health/live")
        .map_err(|e| server.failure(&format!("/health/live: {e}")))?;
    if response.status != 200 {
        return Err(server.failure(&format!("/health/live: status {}", response.status)));
    }
    let connection = keep_alive.then_some(connection);
    thread::sleep(config.signal_after);
    let signalled = server.signal(Signal::SIGTERM)?;
    let exit = server.wait(EXIT_TIMEOUT)?;
    drop(connection);
    Ok((
        server::millis_between(signalled, exit.at),
        server::describe(exit.status),
    ))
}
