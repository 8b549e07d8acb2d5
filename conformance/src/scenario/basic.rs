//! Start-up, the command line, health, a plain exit, the listener, stdout.

use std::thread;
use std::time::{Duration, Instant};

use super::{
    BOUND_MS, Ctx, Expect, PATIENCE, REQUEST_TIMEOUT, expect_response, finish, ms_between,
};
use crate::contract::CleanupResult;
use crate::http::{self, Outcome, Request};
use crate::process::Signal;
use crate::tmp::TempDir;

pub(super) fn health_live(ctx: &mut Ctx<'_>) -> Result<(), String> {
    let mut run = ctx.start(&[])?;
    let sent = Instant::now();
    let live = run.get("/health/live");
    if let Some(r) = live.response() {
        ctx.ms("live-latency-ms", ms_between(sent, r.done_at));
    }
    expect_response(ctx, "GET /health/live", &live, 200, Some("live"));
    let ready = run.get("/health/ready");
    expect_response(
        ctx,
        "GET /health/ready before the signal",
        &ready,
        200,
        Some("ready"),
    );
    let slept = run.get("/sleep?ms=20");
    expect_response(ctx, "GET /sleep?ms=20", &slept, 200, Some("slept 20"));
    let missing = run.get("/no/such/path");
    expect_response(ctx, "GET /no/such/path", &missing, 404, None);
    run.signal(Signal::Term)?;
    finish(ctx, &mut run, PATIENCE, &Expect::clean());
    Ok(())
}

pub(super) fn bad_command_line(ctx: &mut Ctx<'_>) -> Result<(), String> {
    let local = ["--addr", "127.0.0.1:0"];
    let cases: [(&str, Vec<&str>); 6] = [
        ("--no-such-option", vec!["--no-such-option"]),
        ("--drain-timeout-ms", vec!["--drain-timeout-ms", "abc"]),
        ("--unready-delay-ms", vec!["--unready-delay-ms", "-1"]),
        ("--cleanup-ms", vec!["--cleanup-ms", "1.5"]),
        ("--drain-timeout-ms", vec!["--drain-timeout-ms"]),
        ("--addr", vec!["--addr", "no-such-address"]),
    ];
    let mut good = 0;
    for (option, tail) in &cases {
        let mut args: Vec<String> = Vec::new();
        if *option != "--addr" {
            args.extend(local.iter().map(|s| (*s).to_owned()));
        }
        args.extend(tail.iter().map(|s| (*s).to_owned()));
        let shown = args.join(" ");
        let failures_before = ctx.failures.len();
        let mut process = ctx.spawn(&shown, &args)?;
        // Wait for the exit; a line on stdout means it started serving.
        let deadline = Instant::now() + Duration::from_secs(5);
        let exit = loop {
            if let Some(exit) = process.try_exit() {
                break Some(exit);
            }
            if Instant::now() >= deadline {
                break None;
            }
            if let Some(line) = process.lines().first() {
                ctx.fail(format!(
                    "`{shown}`: accepted, it printed {:?} and kept running",
                    line.text
                ));
                break None;
            }
            thread::sleep(Duration::from_millis(2));
        };
        let Some(exit) = exit else {
            if ctx.failures.len() == failures_before {
                ctx.fail(format!(
                    "`{shown}`: still running 5 s later (the bad command line was accepted)"
                ));
            }
            continue;
        };
        process.wait_stdout_end(Duration::from_secs(2));
        ctx.check(exit.code() == Some(2), || {
            format!("`{shown}`: exit {}, expected code 2", exit.describe())
        });
        let stdout = process.lines();
        ctx.check(stdout.is_empty(), || {
            format!(
                "`{shown}`: printed {:?} on stdout (nothing may be served)",
                stdout.first().map(|l| l.text.clone()).unwrap_or_default()
            )
        });
        // Standard error is read by its own thread: give it a moment.
        let deadline = Instant::now() + Duration::from_secs(1);
        while !process.stderr().contains(option) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        let stderr = process.stderr();
        ctx.check(stderr.contains(option), || {
            format!(
                "`{shown}`: stderr does not name {option}: {:?}",
                stderr.lines().next().unwrap_or("")
            )
        });
        if ctx.failures.len() == failures_before {
            good += 1;
        }
    }
    ctx.figure("rejected", format!("{good}/{}", cases.len()));
    Ok(())
}

pub(super) fn idle_exit_fast(ctx: &mut Ctx<'_>) -> Result<(), String> {
    let mut run = ctx.start(&[])?;
    let signalled = run.signal(Signal::Term)?;
    if let Some(done) = finish(ctx, &mut run, PATIENCE, &Expect::clean()) {
        ctx.bounded(
            "exit-after-signal-ms",
            "the exit after SIGTERM with nothing in progress",
            ms_between(signalled, done.exit.at),
        );
    }
    Ok(())
}

pub(super) fn stops_accepting_after_closed(ctx: &mut Ctx<'_>) -> Result<(), String> {
    let mut run = ctx.start(&["--drain-timeout-ms", "10000"])?;
    let mut busy = http::connect(run.addr, REQUEST_TIMEOUT)
        .map_err(|o| format!("connect before the signal: {o}"))?;
    busy.send(&Request::get("/sleep?ms=1500"))
        .map_err(|e| format!("send: {e}"))?;
    thread::sleep(Duration::from_millis(150));
    let signalled = run.signal(Signal::Term)?;
    let closed = run.wait_event("closed", Duration::from_secs(2))?;
    ctx.ms("closed-after-signal-ms", ms_between(signalled, closed));
    let attempts = 5;
    let mut refused = 0;
    for i in 0..attempts {
        let at = Instant::now();
        match http::connect(run.addr, Duration::from_secs(1)) {
            Err(Outcome::Refused) => refused += 1,
            Err(other) => ctx.fail(format!("connect {i} after `closed`: {other}")),
            Ok(_) => ctx.fail(format!(
                "a connect {:.1} ms after `closed` was accepted",
                ms_between(closed, at)
            )),
        }
        thread::sleep(Duration::from_millis(40));
    }
    ctx.figure("refused", format!("{refused}/{attempts}"));
    let answer = busy.read_response(REQUEST_TIMEOUT);
    expect_response(
        ctx,
        "the request in progress at the signal",
        &answer,
        200,
        Some("slept 1500"),
    );
    finish(ctx, &mut run, PATIENCE, &Expect::clean());
    Ok(())
}

pub(super) fn stdout_events_only_and_ordered(ctx: &mut Ctx<'_>) -> Result<(), String> {
    let dir = TempDir::new("stdout").map_err(|e| format!("temporary directory: {e}"))?;
    let db = dir.file("orders.sqlite");
    let mut run = ctx.start(&[
        "--store",
        &db,
        "--cleanup",
        "alpha,beta",
        "--cleanup-ms",
        "20",
    ])?;
    expect_response(ctx, "GET /health/live", &run.get("/health/live"), 200, None);
    let order = http::request(
        run.addr,
        &Request::post("/orders?ms=20", "stdout-order-1"),
        REQUEST_TIMEOUT,
    );
    expect_response(
        ctx,
        "POST /orders?ms=20",
        &order,
        201,
        Some("stored stdout-order-1"),
    );
    let mut busy = http::connect(run.addr, REQUEST_TIMEOUT)
        .map_err(|o| format!("connect before the signal: {o}"))?;
    busy.send(&Request::get("/sleep?ms=1200"))
        .map_err(|e| format!("send: {e}"))?;
    thread::sleep(Duration::from_millis(100));
    let signalled = run.signal(Signal::Term)?;
    let expect = Expect::clean().cleanup(&[
        ("beta", CleanupResult::Ok),
        ("alpha", CleanupResult::Ok),
        ("store", CleanupResult::Ok),
    ]);
    let answer = busy.read_response(REQUEST_TIMEOUT);
    expect_response(
        ctx,
        "the request in progress",
        &answer,
        200,
        Some("slept 1200"),
    );
    if let Some(done) = finish(ctx, &mut run, PATIENCE, &expect) {
        ctx.figure("lines", run.process.lines().len());
        if let Some(draining) = done.at(|e| matches!(e, crate::contract::Event::Draining(_))) {
            let ms = ms_between(signalled, draining);
            ctx.ms("draining-seen-after-signal-ms", ms);
            ctx.check(ms <= BOUND_MS, || {
                format!(
                    "`draining` reached stdout {ms:.1} ms after the signal: not flushed at once"
                )
            });
            if let Some(r) = answer.response() {
                ctx.check(draining < r.done_at, || {
                    "`draining` reached stdout only after the drain was over: not flushed at once"
                        .to_owned()
                });
            }
        }
    }
    Ok(())
}
