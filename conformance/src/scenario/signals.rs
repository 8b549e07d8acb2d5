//! Signals: SIGINT, the second signal, the unready delay, signals during
//! start-up.

use std::thread;
use std::time::Duration;

use super::{
    BOUND_MS, Ctx, Ending, Expect, PATIENCE, REQUEST_TIMEOUT, SLACK_MS, drained_after,
    expect_response, finish, ms_between,
};
use crate::contract::{CleanupResult, Event, check_grammar};
use crate::http::{self, Outcome, Request};
use crate::process::Signal;
use crate::tmp::TempDir;

pub(super) fn sigint_like_sigterm(ctx: &mut Ctx<'_>) -> Result<(), String> {
    let mut run = ctx.start(&[])?;
    let mut conn = http::connect(run.addr, REQUEST_TIMEOUT).map_err(|o| format!("connect: {o}"))?;
    conn.send(&Request::get("/sleep?ms=500"))
        .map_err(|e| format!("send: {e}"))?;
    thread::sleep(Duration::from_millis(100));
    let signalled = run.signal(Signal::Int)?;
    let out = conn.read_response(REQUEST_TIMEOUT);
    expect_response(
        ctx,
        "the request in progress at SIGINT",
        &out,
        200,
        Some("slept 500"),
    );
    let expect = Expect {
        signal: Signal::Int,
        ..Expect::clean()
    };
    if let Some(done) = finish(ctx, &mut run, PATIENCE, &expect) {
        ctx.ms("exit-after-signal-ms", ms_between(signalled, done.exit.at));
        if let Some(r) = out.response() {
            drained_after(ctx, done.at(|e| *e == Event::Drained), r.done_at);
        }
    }
    Ok(())
}

struct Forced {
    label: &'static str,
    args: &'static [&'static str],
    in_flight: Option<&'static str>,
    first: Signal,
    wait_for: &'static str,
    second: Signal,
    code: i32,
}

pub(super) fn second_signal_forces(ctx: &mut Ctx<'_>) -> Result<(), String> {
    let cases = [
        Forced {
            label: "term-term-while-draining",
            args: &["--drain-timeout-ms", "20000"],
            in_flight: Some("/sleep?ms=10000"),
            first: Signal::Term,
            wait_for: "closed",
            second: Signal::Term,
            code: 143,
        },
        Forced {
            label: "term-int-during-unready-delay",
            args: &["--unready-delay-ms", "10000"],
            in_flight: None,
            first: Signal::Term,
            wait_for: "draining ",
            second: Signal::Int,
            code: 130,
        },
        Forced {
            label: "int-term-during-cleanup",
            args: &[
                "--cleanup",
                "alpha",
                "--cleanup-hang",
                "alpha",
                "--cleanup-timeout-ms",
                "20000",
            ],
            in_flight: None,
            first: Signal::Int,
            wait_for: "drained",
            second: Signal::Term,
            code: 143,
        },
    ];
    for case in &cases {
        let failures_before = ctx.failures.len();
        let mut run = ctx.start(case.args)?;
        let _busy = match case.in_flight {
            Some(target) => {
                let mut conn = http::connect(run.addr, REQUEST_TIMEOUT)
                    .map_err(|o| format!("connect: {o}"))?;
                conn.send(&Request::get(target))
                    .map_err(|e| format!("send: {e}"))?;
                thread::sleep(Duration::from_millis(100));
                Some(conn)
            }
            None => None,
        };
        run.signal(case.first)?;
        run.wait_event(case.wait_for, Duration::from_secs(2))
            .map_err(|e| format!("{}: {e}", case.label))?;
        thread::sleep(Duration::from_millis(100));
        let second = run.signal(case.second)?;
        let expect = Expect {
            signal: case.first,
            ending: Ending::Forced,
            cleanup: Vec::new(),
            code: case.code,
        };
        if let Some(done) = finish(ctx, &mut run, PATIENCE, &expect) {
            ctx.bounded(
                &format!("{}-ms", case.label),
                &format!("{}: the exit after the second signal", case.label),
                ms_between(second, done.exit.at),
            );
        }
        for failure in &mut ctx.failures[failures_before..] {
            if !failure.starts_with(case.label) {
                *failure = format!("{}: {failure}", case.label);
            }
        }
    }
    Ok(())
}

pub(super) fn unready_delay_serves(ctx: &mut Ctx<'_>) -> Result<(), String> {
    const DELAY_MS: f64 = 1000.0;
    let mut run = ctx.start(&["--unready-delay-ms", "1000"])?;
    let mut keep = http::connect(run.addr, REQUEST_TIMEOUT).map_err(|o| format!("connect: {o}"))?;
    let before = keep.exchange(&Request::get("/health/live"), REQUEST_TIMEOUT);
    expect_response(
        ctx,
        "GET /health/live before the signal",
        &before,
        200,
        None,
    );
    run.signal(Signal::Term)?;
    let draining = run.wait_event("draining ", Duration::from_secs(2))?;
    let ready = run.get("/health/ready");
    expect_response(
        ctx,
        "GET /health/ready during the unready delay",
        &ready,
        503,
        None,
    );
    let live = run.get("/health/live");
    expect_response(
        ctx,
        "GET /health/live on a new connection during the unready delay",
        &live,
        200,
        Some("live"),
    );
    let fresh = run.get("/sleep?ms=10");
    expect_response(
        ctx,
        "GET /sleep on a new connection during the unready delay",
        &fresh,
        200,
        Some("slept 10"),
    );
    let kept = keep.exchange(&Request::get("/sleep?ms=10"), REQUEST_TIMEOUT);
    if expect_response(
        ctx,
        "GET /sleep on an open connection during the unready delay",
        &kept,
        200,
        Some("slept 10"),
    ) {
        ctx.check(
            kept.response().is_some_and(|r| !r.head.connection_close()),
            || "a response during the unready delay said `Connection: close` (it must be served as before)".to_owned(),
        );
    }
    let window_end = std::time::Instant::now();
    let closed = run.wait_event("closed", Duration::from_secs(3))?;
    ctx.check(window_end < closed, || {
        "the requests ran past the unready delay, so it was not really checked".to_owned()
    });
    let delay = ms_between(draining, closed);
    ctx.ms("closed-after-draining-ms", delay);
    ctx.check(delay >= DELAY_MS - SLACK_MS, || {
        format!("`closed` came {delay:.1} ms after `draining`, before the {DELAY_MS:.0} ms unready delay")
    });
    ctx.check(delay - DELAY_MS <= BOUND_MS, || {
        format!(
            "`closed` came {:.1} ms after the end of the unready delay",
            delay - DELAY_MS
        )
    });
    match http::connect(run.addr, Duration::from_secs(1)) {
        Err(Outcome::Refused) => {}
        Err(o) => ctx.fail(format!("connect after `closed`: {o}")),
        Ok(_) => ctx.fail("a connect after `closed` was accepted"),
    }
    finish(ctx, &mut run, PATIENCE, &Expect::clean());
    Ok(())
}

#[derive(Default)]
struct Paths {
    default_action: usize,
    before_listening: usize,
    after_listening: usize,
}

pub(super) fn signal_before_listening(ctx: &mut Ctx<'_>) -> Result<(), String> {
    const LIMIT_MS: f64 = 1000.0;
    const REGISTERED: [&str; 3] = ["store", "alpha", "beta"];
    // With an unready delay, so that a target which waits it out even
    // though it never listened misses the 1 s bound. After `listening` the
    // delay applies and the bound does not.
    const UNREADY_MS: u64 = 2000;
    let delays = [0u64, 1, 2, 5, 10, 20, 50, 100, 200];
    let mut paths = Paths::default();
    let mut slowest: f64 = 0.0;
    for delay in delays {
        let label = format!("signal {delay} ms after spawn");
        let dir = TempDir::new("early").map_err(|e| format!("temporary directory: {e}"))?;
        let args: Vec<String> = [
            "--addr",
            "127.0.0.1:0",
            "--store",
            &dir.file("orders.sqlite"),
            "--cleanup",
            "alpha,beta",
            "--unready-delay-ms",
            &UNREADY_MS.to_string(),
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let mut process = ctx.spawn(&label, &args)?;
        let at = process.spawned_at() + Duration::from_millis(delay);
        let now = std::time::Instant::now();
        if at > now {
            thread::sleep(at - now);
        }
        let signalled = match process.send(Signal::Term) {
            Ok(t) => t,
            Err(e) => {
                ctx.fail(format!("{label}: {e}"));
                continue;
            }
        };
        let patience = PATIENCE + Duration::from_millis(UNREADY_MS);
        let Some(exit) = process.wait_exit(patience) else {
            ctx.fail(format!(
                "{label}: still running {} ms after SIGTERM",
                patience.as_millis()
            ));
            continue;
        };
        let took = ms_between(signalled, exit.at);
        process.wait_stdout_end(Duration::from_secs(2));
        let texts: Vec<String> = process.lines().into_iter().map(|l| l.text).collect();
        let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
        let Some(code) = exit.code() else {
            if exit.signal() == Some(Signal::Term.number()) && texts.is_empty() {
                // Killed by the default action before a handler existed.
                paths.default_action += 1;
            } else {
                ctx.fail(format!(
                    "{label}: {} after printing {texts:?}",
                    exit.describe()
                ));
            }
            continue;
        };
        let (events, problems) = check_grammar(&texts, Some(code));
        for p in problems {
            ctx.fail(format!("{label}: {p}"));
        }
        let has = |pred: &dyn Fn(&Event) -> bool| events.iter().any(pred);
        if !has(&|e| *e == Event::Draining("SIGTERM".into())) {
            ctx.fail(format!("{label}: no `draining SIGTERM` line in {texts:?}"));
        }
        if !has(&|e| matches!(e, Event::Exit(_))) {
            ctx.fail(format!("{label}: no `exit` line in {texts:?}"));
        }
        let cleanup: Vec<(&str, CleanupResult)> = events
            .iter()
            .filter_map(|e| match e {
                Event::Cleanup { name, result } => Some((name.as_str(), *result)),
                _ => None,
            })
            .collect();
        let names: Vec<&str> = cleanup.iter().map(|(n, _)| *n).collect();
        if let Some((name, result)) = cleanup.iter().find(|(_, r)| *r != CleanupResult::Ok) {
            ctx.fail(format!(
                "{label}: `cleanup {name} {result}` (no step was set to fail)"
            ));
        }
        if has(&|e| matches!(e, Event::Listening(_))) {
            paths.after_listening += 1;
            ctx.check(names == ["beta", "alpha", "store"], || {
                format!("{label}: after `listening`, cleanup lines {names:?}, expected [beta, alpha, store]")
            });
            ctx.check(has(&|e| *e == Event::Drained) && code == 0, || {
                format!(
                    "{label}: after `listening`, a full drain and exit 0 expected; got {texts:?}"
                )
            });
        } else {
            paths.before_listening += 1;
            slowest = slowest.max(took);
            ctx.check(took <= LIMIT_MS, || {
                format!(
                    "{label}: ended {took:.1} ms after SIGTERM (the contract allows {LIMIT_MS:.0} ms)"
                )
            });
            let fits = (0..=REGISTERED.len()).any(|k| {
                REGISTERED[..k]
                    .iter()
                    .rev()
                    .copied()
                    .eq(names.iter().copied())
            });
            ctx.check(fits, || {
                format!("{label}: cleanup lines {names:?} are not the steps registered so far, last first")
            });
            ctx.check([0, 1, 128 + Signal::Term.number()].contains(&code), || {
                format!("{label}: exit code {code}; 0, 1 or 143 expected")
            });
        }
    }
    ctx.ms("slowest-end-after-signal-ms", slowest);
    ctx.figure("default-action", paths.default_action);
    ctx.figure("before-listening", paths.before_listening);
    ctx.figure("after-listening", paths.after_listening);
    Ok(())
}
