//! Figure 7: gRPC, graceful's tokio target against tonic alone.
//!
//! - **Unary rate**: `grpc.health.v1.Health/Check` calls per second from
//!   [`Config::callers`] callers sharing [`Config::channels`] tonic
//!   channels (HTTP/2 connections), for [`Config::duration`] after a warm-up,
//!   against graceful's tokio target (gRPC served through
//!   `graceful_tokio::tonic`), tonic's own server with the same health
//!   service and no shutdown code (`plain-tonic`, the baseline), and tonic
//!   with `serve_with_incoming_shutdown` (`peer-tonic`); the three in turn,
//!   round after round, in a rotating order. Wall clock: noisy on a shared
//!   machine, so the ratio carries no goal.
//! - **SIGTERM to exit** with [`Config::idle_channels`] idle tonic channels
//!   connected (each made one call, then waits), and the same with one
//!   more client that sent the HTTP/2 preface and then never reads (so it
//!   never answers the server's PING): graceful's target and `peer-tonic`.
//!   A server still running [`EXIT_BOUND`] after the signal is killed and
//!   counted as stuck.
//!
//! The clients are the conformance kit's (`graceful_conformance::grpc`),
//! on a tokio runtime of this module's own.

use crate::server::{self, Running, Spec};
use graceful_conformance::grpc::{self, Client};
use nix::sys::signal::Signal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a server may take to exit before it counts as stuck.
pub(crate) const EXIT_BOUND: Duration = Duration::from_secs(10);

/// What the figure runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Config {
    pub(crate) rounds: usize,
    pub(crate) callers: usize,
    pub(crate) channels: usize,
    pub(crate) warm_up: Duration,
    pub(crate) duration: Duration,
    pub(crate) idle_channels: usize,
    pub(crate) exit_repetitions: usize,
}

impl Config {
    pub(crate) fn new(quick: bool) -> Config {
        Config {
            rounds: if quick { 3 } else { 8 },
            callers: 32,
            channels: 4,
            warm_up: Duration::from_millis(300),
            duration: Duration::from_millis(if quick { 1_500 } else { 3_000 }),
            idle_channels: 50,
            exit_repetitions: if quick { 3 } else { 10 },
        }
    }
}

/// One server's unary rates, a value per round.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RateRow {
    pub(crate) server: String,
    pub(crate) rates: Vec<f64>,
    /// Each round's rate over the baseline's in the same round.
    pub(crate) ratios: Vec<f64>,
    pub(crate) failures: Vec<String>,
}

/// One server's exits with idle clients.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ExitRow {
    pub(crate) server: String,
    /// Whether a PING-less client was connected too.
    pub(crate) ping_less: bool,
    /// SIGTERM to exit, in milliseconds, for the runs that exited in time.
    pub(crate) latencies: Vec<f64>,
    /// Runs still serving [`EXIT_BOUND`] after the signal.
    pub(crate) stuck: usize,
    pub(crate) failures: Vec<String>,
}

/// The figure's results.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Figure {
    pub(crate) rates: Vec<RateRow>,
    pub(crate) exits: Vec<ExitRow>,
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a tokio runtime: {e}"))
}

/// Calls `Check` from `config.callers` callers for the warm-up and then
/// `config.duration`, and returns the calls per second of the second part.
fn rate(rt: &tokio::runtime::Runtime, running: &Running, config: &Config) -> Result<f64, String> {
    rt.block_on(async {
        let mut clients = Vec::new();
        for _ in 0..config.channels {
            clients.push(Client::connect(running.addr(), Duration::from_secs(5)).await?);
        }
        let counting = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let calls = Arc::new(AtomicU64::new(0));
        let errors = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for i in 0..config.callers {
            let client = clients[i % clients.len()].clone();
            let (counting, stop) = (counting.clone(), stop.clone());
            let (calls, errors) = (calls.clone(), errors.clone());
            tasks.push(tokio::spawn(async move {
                // Relaxed: flags and counters read after the tasks are
                // joined, or polled between calls.
                while !stop.load(Ordering::Relaxed) {
                    let ok = client.check("").await.is_ok();
                    if counting.load(Ordering::Relaxed) {
                        let counter = if ok { &calls } else { &errors };
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
        tokio::time::sleep(config.warm_up).await;
        counting.store(true, Ordering::Relaxed);
        let started = Instant::now();
        tokio::time::sleep(config.duration).await;
        let elapsed = started.elapsed();
        counting.store(false, Ordering::Relaxed);
        stop.store(true, Ordering::Relaxed);
        for task in tasks {
            let _ = task.await;
        }
        let errors = errors.load(Ordering::Relaxed);
        if errors > 0 {
            return Err(format!("{errors} calls failed"));
        }
        Ok(calls.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64())
    })
}

/// Figure 7's unary rates: `baseline` and `others`, round after round.
fn rates(baseline: &Spec, others: &[&Spec], config: &Config) -> Result<Vec<RateRow>, String> {
    let rt = runtime()?;
    let servers: Vec<&Spec> = std::iter::once(baseline)
        .chain(others.iter().copied())
        .collect();
    let mut rows: Vec<RateRow> = servers
        .iter()
        .map(|s| RateRow {
            server: s.name.clone(),
            rates: Vec::new(),
            ratios: Vec::new(),
            failures: Vec::new(),
        })
        .collect();
    for round in 0..config.rounds {
        let mut this_round = vec![None; servers.len()];
        for k in 0..servers.len() {
            let i = (round + k) % servers.len();
            eprintln!("  round {}: {}", round + 1, servers[i].name);
            let measured = Running::start(servers[i]).and_then(|mut running| {
                let rate = rate(&rt, &running, config);
                let _ = running.signal(Signal::SIGKILL);
                let _ = running.wait(Duration::from_secs(5));
                rate
            });
            match measured {
                Ok(rate) => this_round[i] = Some(rate),
                Err(error) => rows[i].failures.push(error),
            }
        }
        for (i, rate) in this_round.iter().enumerate() {
            if let Some(rate) = rate {
                rows[i].rates.push(*rate);
                if let Some(base) = this_round[0] {
                    rows[i].ratios.push(rate / base);
                }
            }
        }
    }
    Ok(rows)
}

/// One SIGTERM-to-exit run with idle channels (and a PING-less client):
/// the latency in milliseconds, or `None` when it was still running
/// [`EXIT_BOUND`] after the signal.
fn exit_once(
    rt: &tokio::runtime::Runtime,
    spec: &Spec,
    config: &Config,
    ping_less: bool,
) -> Result<Option<f64>, String> {
    let mut running = Running::start(spec)?;
    let addr = running.addr();
    let clients = rt.block_on(async {
        let mut clients = Vec::new();
        for _ in 0..config.idle_channels {
            let client = Client::connect(addr, Duration::from_secs(5)).await?;
            client
                .check("")
                .await
                .map_err(|e| format!("a first call failed: {e}"))?;
            clients.push(client);
        }
        Ok::<_, String>(clients)
    })?;
    let silent = if ping_less {
        Some(
            grpc::ping_less(addr, Duration::from_secs(5))
                .map_err(|e| format!("the PING-less client: {e}"))?,
        )
    } else {
        None
    };
    // Everything connected and settled before the signal.
    std::thread::sleep(Duration::from_millis(100));
    let signalled = running.signal(Signal::SIGTERM)?;
    let outcome = match running.wait(EXIT_BOUND) {
        Ok(exit) => Ok(Some(server::millis_between(signalled, exit.at))),
        Err(_) => Ok(None),
    };
    drop((clients, silent));
    outcome
}

fn exits(servers: &[&Spec], config: &Config) -> Result<Vec<ExitRow>, String> {
    let rt = runtime()?;
    let mut rows = Vec::new();
    for ping_less in [false, true] {
        for spec in servers {
            eprintln!(
                "  {}, {} idle channels{}",
                spec.name,
                config.idle_channels,
                if ping_less {
                    " and a PING-less client"
                } else {
                    ""
                }
            );
            let mut row = ExitRow {
                server: spec.name.clone(),
                ping_less,
                latencies: Vec::new(),
                stuck: 0,
                failures: Vec::new(),
            };
            for _ in 0..config.exit_repetitions {
                match exit_once(&rt, spec, config, ping_less) {
                    Ok(Some(ms)) => row.latencies.push(ms),
                    Ok(None) => row.stuck += 1,
                    Err(error) => row.failures.push(error),
                }
                // A server that hangs hangs every time: once is the figure.
                if row.stuck > 0 {
                    break;
                }
            }
            rows.push(row);
        }
    }
    Ok(rows)
}

/// Measures figure 7: `ours` (the tokio target), `peer` (tonic's own
/// shutdown) and `baseline` (tonic with no shutdown code).
pub(crate) fn measure(
    ours: &Spec,
    peer: &Spec,
    baseline: &Spec,
    config: &Config,
) -> Result<Figure, String> {
    eprintln!(
        "  unary rate: {} callers on {} channels",
        config.callers, config.channels
    );
    let rates = rates(baseline, &[ours, peer], config)?;
    let exits = exits(&[ours, peer], config)?;
    Ok(Figure { rates, exits })
}
