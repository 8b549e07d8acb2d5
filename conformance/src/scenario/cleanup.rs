//! Cleanup: order, timing, failures.

use std::thread;
use std::time::Duration;

use super::{
    BOUND_MS, Ctx, Ending, Expect, PATIENCE, REQUEST_TIMEOUT, SLACK_MS, drained_after,
    expect_response, finish, ms_between,
};
use crate::contract::{CleanupResult, Event};
use crate::http::{self, Request};
use crate::process::{Exit, Signal};

/// The exit must follow the last cleanup line within the bound.
fn exit_after_cleanup(
    ctx: &mut Ctx<'_>,
    lines: &[(String, CleanupResult, std::time::Instant)],
    exit: &Exit,
) {
    if let Some((_, _, last)) = lines.last() {
        ctx.bounded(
            "exit-after-last-cleanup-ms",
            "the exit after the last cleanup line",
            ms_between(*last, exit.at),
        );
    }
}

pub(super) fn reverse_order_after_last_response(ctx: &mut Ctx<'_>) -> Result<(), String> {
    const STEP_MS: f64 = 100.0;
    let mut run = ctx.start(&["--cleanup", "alpha,beta,gamma", "--cleanup-ms", "100"])?;
    let mut conn = http::connect(run.addr, REQUEST_TIMEOUT).map_err(|o| format!("connect: {o}"))?;
    conn.send(&Request::get("/sleep?ms=600"))
        .map_err(|e| format!("send: {e}"))?;
    thread::sleep(Duration::from_millis(100));
    run.signal(Signal::Term)?;
    let out = conn.read_response(REQUEST_TIMEOUT);
    expect_response(ctx, "the request in progress", &out, 200, Some("slept 600"));
    let expect = Expect::clean().cleanup(&[
        ("gamma", CleanupResult::Ok),
        ("beta", CleanupResult::Ok),
        ("alpha", CleanupResult::Ok),
    ]);
    let Some(done) = finish(
        ctx,
        &mut run,
        Duration::from_millis(600) + PATIENCE,
        &expect,
    ) else {
        return Ok(());
    };
    let drained = done.at(|e| *e == Event::Drained);
    if let Some(r) = out.response() {
        drained_after(ctx, drained, r.done_at);
    }
    let lines = done.cleanup_lines();
    if let Some(drained) = drained {
        // Steps take 100 ms each and run one at a time: each line comes at
        // least about 100 ms after the one before (or after `drained`).
        let mut previous = drained;
        let mut gaps = Vec::new();
        for (name, _, at) in &lines {
            let gap = ms_between(previous, *at);
            gaps.push(format!("{gap:.0}"));
            ctx.check(gap >= STEP_MS - SLACK_MS, || {
                format!("`cleanup {name}` came {gap:.1} ms after the line before: steps of {STEP_MS:.0} ms did not run one at a time")
            });
            previous = *at;
        }
        ctx.figure("cleanup-gaps-ms", gaps.join(","));
    }
    exit_after_cleanup(ctx, &lines, &done.exit);
    Ok(())
}

fn failing_step(
    ctx: &mut Ctx<'_>,
    extra: &[&str],
    result: CleanupResult,
    wait: Duration,
) -> Result<Option<super::Finished>, String> {
    let mut args = vec!["--cleanup", "alpha,beta,gamma"];
    args.extend_from_slice(extra);
    let mut run = ctx.start(&args)?;
    run.signal(Signal::Term)?;
    let expect = Expect {
        signal: Signal::Term,
        ending: Ending::Drained,
        cleanup: vec![
            ("gamma".to_owned(), CleanupResult::Ok),
            ("beta".to_owned(), result),
            ("alpha".to_owned(), CleanupResult::Ok),
        ],
        code: 1,
    };
    let done = finish(ctx, &mut run, wait, &expect);
    if let Some(done) = &done {
        let lines = done.cleanup_lines();
        ctx.figure("cleanup-lines", lines.len());
        exit_after_cleanup(ctx, &lines, &done.exit);
        ctx.promote("exit-after-last-cleanup-ms");
    }
    Ok(done)
}

pub(super) fn cleanup_error(ctx: &mut Ctx<'_>) -> Result<(), String> {
    failing_step(
        ctx,
        &["--cleanup-fail", "beta"],
        CleanupResult::Error,
        PATIENCE,
    )?;
    Ok(())
}

pub(super) fn cleanup_panic(ctx: &mut Ctx<'_>) -> Result<(), String> {
    failing_step(
        ctx,
        &["--cleanup-panic", "beta"],
        CleanupResult::Panic,
        PATIENCE,
    )?;
    Ok(())
}

pub(super) fn cleanup_timeout(ctx: &mut Ctx<'_>) -> Result<(), String> {
    const TIMEOUT_MS: f64 = 400.0;
    let done = failing_step(
        ctx,
        &["--cleanup-hang", "beta", "--cleanup-timeout-ms", "400"],
        CleanupResult::Timeout,
        Duration::from_millis(400) + PATIENCE,
    )?;
    let Some(done) = done else { return Ok(()) };
    let lines = done.cleanup_lines();
    let gamma = lines.iter().find(|(n, _, _)| n == "gamma").map(|l| l.2);
    let beta = lines.iter().find(|(n, _, _)| n == "beta").map(|l| l.2);
    if let (Some(gamma), Some(beta)) = (gamma, beta) {
        let ms = ms_between(gamma, beta);
        ctx.ms("timeout-after-step-start-ms", ms);
        ctx.promote("timeout-after-step-start-ms");
        ctx.check(ms >= TIMEOUT_MS - SLACK_MS, || {
            format!("`cleanup beta timeout` came {ms:.1} ms after the step began, before its {TIMEOUT_MS:.0} ms time-out")
        });
        ctx.check(ms - TIMEOUT_MS <= BOUND_MS, || {
            format!(
                "`cleanup beta timeout` came {:.1} ms after its time-out",
                ms - TIMEOUT_MS
            )
        });
    }
    Ok(())
}
