//! The load generator of figure 2: keep-alive HTTP/1.1 connections on
//! 127.0.0.1, each sending `GET /health/live` again as soon as the last
//! response is in, for a warm-up and then a measured window; the figure is
//! the count of `200`s completed in the window over its length.
//!
//! It runs on one thread (a current-thread tokio runtime), so that on a
//! small machine the server keeps the other cores. It also reads the
//! server's CPU time at both ends of the window, which gives the CPU the
//! server spent per request: a figure that another process competing for
//! the machine disturbs much less than the request rate.

use crate::http;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WARMING: u8 = 0;
const MEASURING: u8 = 1;
const STOPPING: u8 = 2;

/// How long a connection may wait for one response before the run fails.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);

/// What one measurement does.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Config {
    pub(crate) connections: usize,
    pub(crate) warm_up: Duration,
    pub(crate) duration: Duration,
}

/// What one measurement found.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Measured {
    /// `200`s per second in the measured window.
    pub(crate) rps: f64,
    /// The server's CPU time per `200` in the window, in microseconds.
    pub(crate) cpu_us: Option<f64>,
    /// Other statuses in the window.
    pub(crate) other: u64,
    /// Connections that failed (reset, closed, timed out) during the run.
    pub(crate) errors: u64,
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    ok: u64,
    other: u64,
}

/// Loads the server at `addr` as `config` says; `cpu_ns` reads the
/// server's CPU time.
pub(crate) fn run(
    addr: SocketAddr,
    config: &Config,
    cpu_ns: &dyn Fn() -> Option<u64>,
) -> io::Result<Measured> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(measure(addr, config, cpu_ns))
}

async fn measure(
    addr: SocketAddr,
    config: &Config,
    cpu_ns: &dyn Fn() -> Option<u64>,
) -> io::Result<Measured> {
    let phase = Arc::new(AtomicU8::new(WARMING));
    let request: Arc<[u8]> = http::request(addr, "/health/live").into();
    let tasks: Vec<_> = (0..config.connections)
        .map(|_| tokio::spawn(connection(addr, request.clone(), phase.clone())))
        .collect();
    tokio::time::sleep(config.warm_up).await;
    phase.store(MEASURING, Ordering::Relaxed);
    let start = Instant::now();
    let cpu_start = cpu_ns();
    tokio::time::sleep(config.duration).await;
    phase.store(STOPPING, Ordering::Relaxed);
    let window = start.elapsed();
    let cpu = cpu_start.zip(cpu_ns()).map(|(a, b)| b.saturating_sub(a));

    let mut total = Counts::default();
    let mut errors = 0;
    for task in tasks {
        match task.await {
            Ok(Ok(counts)) => {
                total.ok += counts.ok;
                total.other += counts.other;
            }
            Ok(Err((counts, error))) => {
                total.ok += counts.ok;
                total.other += counts.other;
                if errors == 0 {
                    eprintln!("    a connection failed: {error}");
                }
                errors += 1;
            }
            Err(join) => return Err(io::Error::other(join)),
        }
    }
    Ok(Measured {
        rps: total.ok as f64 / window.as_secs_f64(),
        cpu_us: cpu
            .filter(|_| total.ok > 0)
            .map(|ns| ns as f64 / 1e3 / total.ok as f64),
        other: total.other,
        errors,
    })
}

/// One keep-alive connection: request after request until told to stop.
/// Responses completed while measuring are counted.
async fn connection(
    addr: SocketAddr,
    request: Arc<[u8]>,
    phase: Arc<AtomicU8>,
) -> Result<Counts, (Counts, io::Error)> {
    let mut counts = Counts::default();
    let mut stream = match TcpStream::connect(addr).await {
        Ok(stream) => stream,
        Err(error) => return Err((counts, error)),
    };
    if let Err(error) = stream.set_nodelay(true) {
        return Err((counts, error));
    }
    let mut buf = Vec::with_capacity(4096);
    while phase.load(Ordering::Relaxed) != STOPPING {
        let status =
            match tokio::time::timeout(RESPONSE_TIMEOUT, exchange(&mut stream, &request, &mut buf))
                .await
            {
                Ok(Ok(status)) => status,
                Ok(Err(error)) => return Err((counts, error)),
                Err(_) => return Err((counts, io::ErrorKind::TimedOut.into())),
            };
        if phase.load(Ordering::Relaxed) == MEASURING {
            if status == 200 {
                counts.ok += 1;
            } else {
                counts.other += 1;
            }
        }
    }
    Ok(counts)
}

/// Sends `request` and reads its response; returns its status.
async fn exchange(stream: &mut TcpStream, request: &[u8], buf: &mut Vec<u8>) -> io::Result<u16> {
    stream.write_all(request).await?;
    loop {
        if let Some(parsed) = http::parse(buf)? {
            buf.drain(..parsed.len);
            return Ok(parsed.status);
        }
        buf.reserve(4096);
        if stream.read_buf(buf).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            ));
        }
    }
}
