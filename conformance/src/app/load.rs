//! `load-at-sigterm`: steady load across the signal.
//!
//! Four clients send the slow request (asked for 20 ms when it is timed)
//! back to back: two on keep-alive connections, reconnecting after a
//! `Connection: close`, two on a fresh connection each time, which is how
//! a backlog reset shows. The load runs for a while, then the server gets
//! `SIGTERM`, and each client goes on until it is refused or the process
//! has exited.
//!
//! Every request that does not come back is classified by when it was sent:
//! a request sent at the exit (within [`EXIT_SLACK`] of it) and lost is the
//! race the contract leaves to the client, tolerated up to
//! `load_loss_permille` of the requests; one sent earlier was the server's
//! to answer, and losing it fails the check. A
//! response cut short fails the check wherever it happens: the server had
//! begun it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use super::checks::Context;
use super::observe::{EXIT_SLACK, PATIENCE, Seen, expect_exit, ms_since};
use super::server::Running;
use crate::http::{self, Conn, Outcome};
use crate::process::Signal;

/// Clients on keep-alive connections.
const KEEP_ALIVE_CLIENTS: usize = 2;
/// Clients that connect afresh for each request.
const FRESH_CLIENTS: usize = 2;
/// How long the load runs before the signal.
const BEFORE_SIGNAL: Duration = Duration::from_millis(600);
/// What the timed slow request is asked to take under load.
const LOAD_MS: u64 = 20;

/// One request of the load: when it ended and what it got.
#[derive(Debug)]
struct Sample {
    began: Instant,
    ended: Instant,
    outcome: Outcome,
}

pub(crate) fn load_at_sigterm(ctx: &Context<'_>, running: &mut Running) -> Seen {
    let mut seen = Seen::default();
    let addr = running.addr;
    let stop = Arc::new(AtomicBool::new(false));
    let samples = Arc::new(Mutex::new(Vec::<Sample>::new()));
    let takes = ctx.slow_for(LOAD_MS).takes;
    let timeout = takes + PATIENCE;
    // The requests are built up front on this thread, which owns the
    // context; each client takes from its own queue.
    let mut clients = Vec::new();
    for client in 0..KEEP_ALIVE_CLIENTS + FRESH_CLIENTS {
        let keep_alive = client < KEEP_ALIVE_CLIENTS;
        let requests: Vec<_> = (0..4096).map(|_| ctx.slow_for(LOAD_MS).request).collect();
        let stop = Arc::clone(&stop);
        let samples = Arc::clone(&samples);
        clients.push(thread::spawn(move || {
            let mut conn: Option<Conn> = None;
            for request in requests {
                // Relaxed: the flag only ends the loop; no data rides on it.
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let began = Instant::now();
                let outcome = if keep_alive {
                    let live = match conn.take() {
                        Some(live) => Ok(live),
                        None => http::connect(addr, timeout),
                    };
                    match live {
                        Ok(mut live) => {
                            let outcome = live.exchange(&request, timeout);
                            if outcome
                                .response()
                                .is_some_and(|r| !r.head.connection_close())
                            {
                                conn = Some(live);
                            }
                            outcome
                        }
                        Err(outcome) => outcome,
                    }
                } else {
                    http::request(addr, &request, timeout)
                };
                let refused = outcome == Outcome::Refused;
                samples
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(Sample {
                        began,
                        ended: Instant::now(),
                        outcome,
                    });
                if refused {
                    return;
                }
            }
        }));
    }
    thread::sleep(BEFORE_SIGNAL);
    let signalled = running.process.send(Signal::Term);
    let exit = match signalled {
        Ok(at) => {
            let patience = takes + ctx.options.unready_delay + PATIENCE;
            expect_exit(
                &mut running.process,
                at,
                "SIGTERM under load",
                patience,
                &mut seen,
            )
            .map(|exit| (at, exit))
        }
        Err(_) => {
            seen.fail("the server had exited before SIGTERM");
            None
        }
    };
    // Relaxed: see the clients' load.
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        let _ = client.join();
    }
    let samples = std::mem::take(&mut *samples.lock().unwrap_or_else(PoisonError::into_inner));
    let Some((signalled, exit)) = exit else {
        seen.figure("requests", samples.len());
        return seen;
    };
    let (mut ok, mut other_status, mut refused) = (0usize, 0usize, 0usize);
    let (mut at_exit, mut before_exit, mut truncated) = (0usize, 0usize, 0usize);
    let mut first_losses = Vec::new();
    for sample in &samples {
        match &sample.outcome {
            Outcome::Response(r) if (200..300).contains(&r.status()) => ok += 1,
            Outcome::Response(_) => other_status += 1,
            Outcome::Refused => refused += 1,
            Outcome::Truncated { .. } => {
                truncated += 1;
                first_losses.push(sample);
            }
            // Sent at the exit and lost to it: the race a client retries.
            _ if sample.began + EXIT_SLACK >= exit.at => at_exit += 1,
            _ => {
                before_exit += 1;
                first_losses.push(sample);
            }
        }
    }
    let total = samples.len();
    seen.figure("requests", total);
    seen.figure("ok", ok);
    seen.figure("non-2xx", other_status);
    seen.figure("refused", refused);
    seen.figure("lost-before-exit", before_exit);
    seen.figure("lost-at-exit", at_exit);
    seen.figure("truncated", truncated);
    seen.figure("exit-ms", ms_since(exit.at, signalled));
    for sample in first_losses.iter().take(3) {
        seen.fail(format!(
            "a request sent {} ms after SIGTERM got {} at {} ms (the exit came at {} ms)",
            ms_since(sample.began, signalled),
            sample.outcome,
            ms_since(sample.ended, signalled),
            ms_since(exit.at, signalled),
        ));
    }
    if first_losses.len() > 3 {
        seen.fail(format!("and {} more like it", first_losses.len() - 3));
    }
    let allowed = u64::from(ctx.options.bounds.load_loss_permille);
    if (at_exit as u64) * 1000 > allowed * (total as u64) {
        seen.fail(format!(
            "{at_exit} of {total} requests were lost at the exit, more than {}.{} %",
            allowed / 10,
            allowed % 10
        ));
    }
    if ok == 0 {
        seen.fail("no request of the load came back whole with 2xx");
    }
    seen
}
