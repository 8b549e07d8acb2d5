//! gRPC during the shutdown (rules 28 and 29, and rule 15 for gRPC
//! clients), for targets that serve the contract's gRPC section (feature
//! `grpc`).
//!
//! What they hold a target to, in the kit's words:
//!
//! - `Health/Check` answers `SERVING` for `""` and
//!   `graceful.contract.v1.Contract` until the first signal, `NOT_SERVING`
//!   after it, on connections old and new (the unready delay still serves).
//! - A `Watch` open at the signal receives `NOT_SERVING` within 500 ms of
//!   it, nothing else, and then ends with status `OK` within 500 ms of
//!   `closed`, not before it.
//! - `Sleep` calls in progress at the signal get their whole answer, on a
//!   connection they share and on one of their own; `drained` follows the
//!   last within 500 ms.
//! - A `Ticks` stream keeps ticking during the unready delay and ends with
//!   `UNAVAILABLE` within 500 ms of `closed`, not before it; `drained`
//!   follows within 500 ms.
//! - Connections that sent the HTTP/2 preface and never answer (neither
//!   the SETTINGS nor the PING), or never sent a byte, beside an idle gRPC
//!   client, leave the exit within 500 ms of the signal, with code 0.
//!
//! These scenarios are not in [`Scenario::all`](super::Scenario::all): the
//! gRPC section is for the tokio target only. They are listed by
//! [`GrpcScenario::all`] and run by [`run_grpc_scenario`].

use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;

use super::{
    BOUND_MS, Ctx, Expect, PATIENCE, REQUEST_TIMEOUT, Running, SLACK_MS, drained_after, finish,
    ms_between,
};
use crate::grpc::{self, CONTRACT, Client};
use crate::process::Signal;

/// Every `Health/Check` name the contract lists.
const NAMES: [&str; 2] = ["", CONTRACT];

/// The tokio runtime the client runs on: its tasks run on its own threads,
/// while the scenario's thread sends signals and reads lines.
fn runtime() -> Result<Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("kit error: cannot start the client's runtime: {e}"))
}

/// `future` within `limit`, or a failure naming `what`.
fn within<F: Future>(
    rt: &Runtime,
    limit: Duration,
    what: &str,
    future: F,
) -> Result<F::Output, String> {
    // The timer is made inside the runtime, which it needs.
    rt.block_on(async { tokio::time::timeout(limit, future).await })
        .map_err(|_| format!("{what}: no answer within {} ms", limit.as_millis()))
}

fn connect(rt: &Runtime, addr: SocketAddr) -> Result<Client, String> {
    rt.block_on(Client::connect(addr, REQUEST_TIMEOUT))
}

/// Checks every name's health is `want`.
fn check_all(ctx: &mut Ctx<'_>, rt: &Runtime, client: &Client, want: ServingStatus, when: &str) {
    for name in NAMES {
        let what = format!("Health/Check {name:?} {when}");
        match within(rt, REQUEST_TIMEOUT, &what, client.check(name)) {
            Ok(Ok(got)) => {
                ctx.check(got == want, || {
                    format!(
                        "{what}: {}, expected {}",
                        got.as_str_name(),
                        want.as_str_name()
                    )
                });
            }
            Ok(Err(status)) => ctx.fail(format!("{what}: status {status}")),
            Err(why) => ctx.fail(why),
        }
    }
}

/// Rule 28's first half: `SERVING` until the signal, `NOT_SERVING` from
/// then on, in `Check` (during the unready delay, on a new connection) and
/// in a `Watch` that was open at the signal.
pub(super) fn health_flips(ctx: &mut Ctx<'_>) -> Result<(), String> {
    let mut run = ctx.start(&["--unready-delay-ms", "1500"])?;
    let rt = runtime()?;
    let client = connect(&rt, run.addr)?;
    check_all(
        ctx,
        &rt,
        &client,
        ServingStatus::Serving,
        "before the signal",
    );
    let mut watch = within(&rt, REQUEST_TIMEOUT, "Health/Watch", client.watch(""))?
        .map_err(|s| format!("Health/Watch: status {s}"))?;
    let first = within(&rt, REQUEST_TIMEOUT, "the first Watch status", watch.next())?;
    ctx.check(matches!(first, Ok(Some(ServingStatus::Serving))), || {
        format!("the first Watch status: {first:?}, expected SERVING")
    });
    let next = rt.spawn(async move {
        let status = tokio::time::timeout(Duration::from_secs(3), watch.next()).await;
        (status, Instant::now())
    });
    let signalled = run.signal(Signal::Term)?;
    match rt.block_on(next) {
        Ok((Ok(Ok(Some(ServingStatus::NotServing))), at)) => ctx.bounded(
            "watch-not-serving-after-signal-ms",
            "Watch's NOT_SERVING after the signal",
            ms_between(signalled, at),
        ),
        Ok((Ok(other), _)) => ctx.fail(format!(
            "the Watch status after the signal: {other:?}, expected NOT_SERVING"
        )),
        Ok((Err(_), _)) => {
            ctx.fail("Watch sent nothing within 3 s of the signal (expected NOT_SERVING)")
        }
        Err(e) => ctx.fail(format!("kit error: {e}")),
    }
    ctx.promote("watch-not-serving-after-signal-ms");
    // During the unready delay new connections are still served.
    match connect(&rt, run.addr) {
        Ok(fresh) => check_all(
            ctx,
            &rt,
            &fresh,
            ServingStatus::NotServing,
            "after the signal",
        ),
        Err(why) => ctx.fail(format!("during the unready delay: {why}")),
    }
    drop((client, rt));
    finish(
        ctx,
        &mut run,
        Duration::from_millis(1500) + PATIENCE,
        &Expect::clean(),
    );
    Ok(())
}

/// Rule 28's second half: `Watch` streams end with status `OK` at
/// `closed`, not before (the unready delay still serves them), and then
/// `drained` follows.
pub(super) fn watch_ends_at_closed(ctx: &mut Ctx<'_>) -> Result<(), String> {
    let mut run = ctx.start(&["--unready-delay-ms", "600", "--drain-timeout-ms", "10000"])?;
    let rt = runtime()?;
    let client = connect(&rt, run.addr)?;
    let mut watches = Vec::new();
    for name in NAMES {
        let mut watch = within(&rt, REQUEST_TIMEOUT, "Health/Watch", client.watch(name))?
            .map_err(|s| format!("Health/Watch {name:?}: status {s}"))?;
        let first = within(&rt, REQUEST_TIMEOUT, "the first Watch status", watch.next())?;
        ctx.check(matches!(first, Ok(Some(ServingStatus::Serving))), || {
            format!("the first Watch {name:?} status: {first:?}, expected SERVING")
        });
        watches.push(rt.spawn(async move {
            let mut statuses = Vec::new();
            let end = tokio::time::timeout(Duration::from_secs(5), async {
                loop {
                    match watch.next().await {
                        Ok(Some(status)) => statuses.push(status),
                        Ok(None) => return Ok(()),
                        Err(status) => return Err(status),
                    }
                }
            })
            .await;
            (name, statuses, end, Instant::now())
        }));
    }
    let _ = run.signal(Signal::Term)?;
    let closed = run.wait_event("closed", Duration::from_secs(3));
    let mut last = None;
    for watch in watches {
        let Ok((name, statuses, end, at)) = rt.block_on(watch) else {
            ctx.fail("kit error: a Watch task failed");
            continue;
        };
        ctx.check(statuses == [ServingStatus::NotServing], || {
            format!("Watch {name:?} sent {statuses:?} after the signal, expected [NotServing]")
        });
        match end {
            Ok(Ok(())) => {}
            Ok(Err(status)) => {
                ctx.fail(format!(
                    "Watch {name:?} ended with status {status}, expected OK"
                ));
                continue;
            }
            Err(_) => {
                ctx.fail(format!(
                    "Watch {name:?} did not end within 5 s of the signal"
                ));
                continue;
            }
        }
        last = last.max(Some(at));
        if let Ok(closed) = closed {
            let ms = ms_between(closed, at);
            ctx.ms("watch-end-after-closed-ms", ms);
            ctx.check(ms >= -SLACK_MS, || {
                format!("Watch {name:?} ended {:.1} ms before `closed`", -ms)
            });
            ctx.check(ms <= BOUND_MS, || {
                format!("Watch {name:?} ended {ms:.1} ms after `closed` (the contract allows {BOUND_MS:.0} ms)")
            });
        }
    }
    ctx.promote("watch-end-after-closed-ms");
    drop((client, rt));
    if let Some(done) = finish(
        ctx,
        &mut run,
        Duration::from_secs(3) + PATIENCE,
        &Expect::clean(),
    ) && let Some(last) = last
    {
        drained_after(
            ctx,
            done.at(|e| matches!(e, crate::contract::Event::Drained)),
            last,
        );
    }
    Ok(())
}

/// Rule 29: `Sleep` calls in progress at the signal complete, on a shared
/// connection and on one of their own.
pub(super) fn sleep_completes(ctx: &mut Ctx<'_>) -> Result<(), String> {
    let mut run = ctx.start(&["--drain-timeout-ms", "10000"])?;
    let rt = runtime()?;
    let shared = connect(&rt, run.addr)?;
    let own = connect(&rt, run.addr)?;
    let calls: Vec<_> = [&shared, &shared, &shared, &own]
        .into_iter()
        .map(|client| {
            let client = client.clone();
            rt.spawn(async move {
                let reply = tokio::time::timeout(Duration::from_secs(5), client.sleep(800)).await;
                (reply, Instant::now())
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(200));
    let _ = run.signal(Signal::Term)?;
    let mut last = None;
    let mut answered = 0;
    for (i, call) in calls.into_iter().enumerate() {
        let what = format!("Sleep call {i}");
        match rt.block_on(call) {
            Ok((Ok(Ok(message)), at)) if message == "slept 800" => {
                answered += 1;
                last = last.max(Some(at));
            }
            Ok((Ok(Ok(message)), _)) => {
                ctx.fail(format!("{what}: {message:?}, expected \"slept 800\""))
            }
            Ok((Ok(Err(status)), _)) => ctx.fail(format!("{what}: status {status}")),
            Ok((Err(_), _)) => ctx.fail(format!("{what}: no answer within 5 s")),
            Err(e) => ctx.fail(format!("kit error: {e}")),
        }
    }
    ctx.figure("answered", format!("{answered}/4"));
    drop((shared, own, rt));
    if let Some(done) = finish(
        ctx,
        &mut run,
        Duration::from_secs(2) + PATIENCE,
        &Expect::clean(),
    ) && let Some(last) = last
    {
        drained_after(
            ctx,
            done.at(|e| matches!(e, crate::contract::Event::Drained)),
            last,
        );
    }
    Ok(())
}

/// Rule 29: a `Ticks` stream keeps ticking through the unready delay and
/// ends at `closed` with status `UNAVAILABLE`.
pub(super) fn ticks_unavailable(ctx: &mut Ctx<'_>) -> Result<(), String> {
    let mut run = ctx.start(&["--unready-delay-ms", "500", "--drain-timeout-ms", "10000"])?;
    let rt = runtime()?;
    let client = connect(&rt, run.addr)?;
    let mut ticks = within(&rt, REQUEST_TIMEOUT, "Ticks", client.ticks(100))?
        .map_err(|s| format!("Ticks: status {s}"))?;
    let first = within(&rt, REQUEST_TIMEOUT, "the first tick", ticks.message())?;
    ctx.check(matches!(first, Ok(Some(ref t)) if t.index == 0), || {
        format!("the first tick: {first:?}, expected index 0")
    });
    let reader = rt.spawn(async move {
        let mut count = 0_u64;
        let end = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match ticks.message().await {
                    Ok(Some(_)) => count += 1,
                    Ok(None) => return Ok(()),
                    Err(status) => return Err(status),
                }
            }
        })
        .await;
        (count, end, Instant::now())
    });
    thread::sleep(Duration::from_millis(150));
    let signalled = run.signal(Signal::Term)?;
    let closed = run.wait_event("closed", Duration::from_secs(3));
    let mut last = None;
    match rt.block_on(reader) {
        Ok((count, end, at)) => {
            ctx.figure("ticks-after-the-first", count);
            match end {
                Ok(Err(status)) if status.code() == Code::Unavailable => last = Some(at),
                Ok(Err(status)) => ctx.fail(format!(
                    "Ticks ended with status {status}, expected UNAVAILABLE"
                )),
                Ok(Ok(())) => ctx.fail("Ticks ended with status OK, expected UNAVAILABLE"),
                Err(_) => ctx.fail("Ticks did not end within 5 s of the signal"),
            }
            if let (Some(at), Ok(closed)) = (last, closed) {
                let ms = ms_between(closed, at);
                ctx.ms("ticks-end-after-closed-ms", ms);
                ctx.promote("ticks-end-after-closed-ms");
                ctx.check(ms >= -SLACK_MS, || {
                    format!("Ticks ended {:.1} ms before `closed`", -ms)
                });
                ctx.check(ms <= BOUND_MS, || {
                    format!("Ticks ended {ms:.1} ms after `closed` (the contract allows {BOUND_MS:.0} ms)")
                });
                // Ticks every 100 ms from before the signal to `closed`.
                let expected = (ms_between(signalled, closed) / 100.0) as u64;
                ctx.check(count + 1 >= expected / 2, || {
                    format!(
                        "{count} ticks during a {:.0} ms unready delay: the stream stalled",
                        ms_between(signalled, closed)
                    )
                });
            }
        }
        Err(e) => ctx.fail(format!("kit error: {e}")),
    }
    drop((client, rt));
    if let Some(done) = finish(
        ctx,
        &mut run,
        Duration::from_secs(3) + PATIENCE,
        &Expect::clean(),
    ) && let Some(last) = last
    {
        drained_after(
            ctx,
            done.at(|e| matches!(e, crate::contract::Event::Drained)),
            last,
        );
    }
    Ok(())
}

/// Rule 15 for gRPC: clients that sent their preface and never answer
/// (SETTINGS, the shutdown PING), beside an idle gRPC client, do not delay
/// the exit.
pub(super) fn ping_less(ctx: &mut Ctx<'_>) -> Result<(), String> {
    silent_clients(ctx, grpc::ping_less, "PING-less")
}

/// Rule 15 for gRPC: connections that never sent their preface, beside an
/// idle gRPC client, do not delay the exit.
pub(super) fn preface_less(ctx: &mut Ctx<'_>) -> Result<(), String> {
    silent_clients(ctx, grpc::preface_less, "preface-less")
}

/// Two connections `open` makes, and a gRPC client that made a call and is
/// idle, open at the signal: the exit follows within the bound.
fn silent_clients(
    ctx: &mut Ctx<'_>,
    open: fn(SocketAddr, Duration) -> io::Result<TcpStream>,
    what: &str,
) -> Result<(), String> {
    let mut run: Running = ctx.start(&[])?;
    let rt = runtime()?;
    let idle = connect(&rt, run.addr)?;
    within(&rt, REQUEST_TIMEOUT, "Health/Check", idle.check(""))?
        .map_err(|s| format!("Health/Check: status {s}"))?;
    let mut silent = Vec::new();
    for _ in 0..2 {
        silent.push(open(run.addr, REQUEST_TIMEOUT).map_err(|e| format!("connect: {e}"))?);
    }
    thread::sleep(Duration::from_millis(200));
    let signalled = run.signal(Signal::Term)?;
    if let Some(done) = finish(ctx, &mut run, PATIENCE, &Expect::clean()) {
        ctx.bounded(
            "exit-after-signal-ms",
            &format!("the exit after SIGTERM with {what} and idle gRPC clients"),
            ms_between(signalled, done.exit.at),
        );
    }
    drop((silent, idle, rt));
    Ok(())
}
