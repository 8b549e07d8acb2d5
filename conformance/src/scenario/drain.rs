//! The drain: requests in progress, connections open, the deadline, the
//! backlog.

use std::thread;
use std::time::{Duration, Instant};

use super::orders::stored_ids;
use super::{
    BOUND_MS, Ctx, Ending, Expect, PATIENCE, REQUEST_TIMEOUT, SLACK_MS, drained_after,
    expect_response, finish, ms_between,
};
use crate::contract::{CleanupResult, Event};
use crate::http::{self, Conn, Outcome, Peer, Request};
use crate::process::Signal;
use crate::tmp::TempDir;

fn open(addr: std::net::SocketAddr) -> Result<Conn, String> {
    http::connect(addr, REQUEST_TIMEOUT).map_err(|o| format!("connect: {o}"))
}

fn send(conn: &mut Conn, target: &str) -> Result<(), String> {
    conn.send(&Request::get(target))
        .map_err(|e| format!("send {target}: {e}"))
}

fn sleep_until(at: Instant) {
    let now = Instant::now();
    if at > now {
        thread::sleep(at - now);
    }
}

/// After a response that said `Connection: close`, the server must close.
fn expect_closed_after(ctx: &mut Ctx<'_>, what: &str, conn: &mut Conn) {
    match conn.wait_peer(Duration::from_secs(1)) {
        Peer::Closed | Peer::Reset => {}
        Peer::Open => ctx.fail(format!(
            "{what}: the connection stayed open 1 s after `Connection: close`"
        )),
        Peer::Sent(n) => ctx.fail(format!(
            "{what}: {n} unexpected bytes after a `Connection: close` response"
        )),
    }
}

pub(super) fn inflight_sleep_completes(ctx: &mut Ctx<'_>) -> Result<(), String> {
    let mut run = ctx.start(&["--drain-timeout-ms", "10000"])?;
    let mut conns = Vec::new();
    for _ in 0..3 {
        let mut conn = open(run.addr)?;
        send(&mut conn, "/sleep?ms=700")?;
        conns.push(conn);
    }
    thread::sleep(Duration::from_millis(150));
    let signalled = run.signal(Signal::Term)?;
    let closed = run.wait_event("closed", Duration::from_secs(2));
    if let Err(why) = &closed {
        ctx.fail(why.clone());
    }
    let mut answered = 0;
    let mut last = None;
    for (i, conn) in conns.iter_mut().enumerate() {
        let what = format!("in-flight request {i}");
        let out = conn.read_response(REQUEST_TIMEOUT);
        if !expect_response(ctx, &what, &out, 200, Some("slept 700")) {
            continue;
        }
        answered += 1;
        let Some(r) = out.response() else { continue };
        last = last.max(Some(r.done_at));
        if let Ok(closed) = closed
            && r.head_at > closed
        {
            if r.head.connection_close() {
                expect_closed_after(ctx, &what, conn);
            } else {
                ctx.fail(format!(
                    "{what}: response head sent {:.1} ms after `closed` without `Connection: close`",
                    ms_between(closed, r.head_at)
                ));
            }
        }
    }
    ctx.figure("answered", format!("{answered}/3"));
    if let Some(last) = last {
        ctx.ms("last-response-after-signal-ms", ms_between(signalled, last));
    }
    if let Some(done) = finish(ctx, &mut run, PATIENCE, &Expect::clean())
        && let Some(last) = last
    {
        drained_after(ctx, done.at(|e| *e == Event::Drained), last);
    }
    Ok(())
}

pub(super) fn inflight_stream_completes(ctx: &mut Ctx<'_>) -> Result<(), String> {
    let mut run = ctx.start(&["--drain-timeout-ms", "10000"])?;
    let mut conn = open(run.addr)?;
    send(&mut conn, "/stream?chunks=8&ms=100")?;
    // A longer request keeps the drain going after the stream has ended, so
    // that a request can still be sent on the stream's connection.
    let mut longer = open(run.addr)?;
    send(&mut longer, "/sleep?ms=1500")?;
    thread::sleep(Duration::from_millis(150));
    let signalled = run.signal(Signal::Term)?;
    if let Err(why) = run.wait_event("closed", Duration::from_secs(2)) {
        ctx.fail(why);
    }
    let out = conn.read_response(REQUEST_TIMEOUT);
    let want: String = (0..8).map(|i| format!("chunk {i}\n")).collect();
    if expect_response(ctx, "the stream in progress", &out, 200, Some(&want))
        && let Some(r) = out.response()
    {
        ctx.figure("chunks", 8);
        ctx.ms(
            "stream-end-after-signal-ms",
            ms_between(signalled, r.done_at),
        );
        if r.head.connection_close() {
            expect_closed_after(ctx, "the stream's connection", &mut conn);
        } else {
            // The head went out before `closed`: the connection stays open,
            // and the next request on it is a new request after `closed`.
            let next = conn.exchange(&Request::get("/health/live"), REQUEST_TIMEOUT);
            if check_503(ctx, "the next request on the stream's connection", &next) {
                expect_closed_after(ctx, "the stream's connection after its 503", &mut conn);
            }
        }
    }
    let last = longer.read_response(REQUEST_TIMEOUT);
    expect_response(ctx, "the longer request", &last, 200, Some("slept 1500"));
    if let Some(done) = finish(ctx, &mut run, PATIENCE, &Expect::clean())
        && let Some(r) = last.response()
    {
        drained_after(ctx, done.at(|e| *e == Event::Drained), r.done_at);
    }
    Ok(())
}

/// Rule 4's answer: 503, `Connection: close`, `Retry-After`.
fn check_503(ctx: &mut Ctx<'_>, what: &str, out: &Outcome) -> bool {
    let Some(r) = out.response().filter(|r| r.status() == 503) else {
        ctx.fail(format!("{what}: {out}, expected 503"));
        return false;
    };
    let close = ctx.check(r.head.connection_close(), || {
        format!("{what}: 503 without `Connection: close`")
    });
    let retry = ctx.check(r.head.header("retry-after").is_some(), || {
        format!("{what}: 503 without `Retry-After`")
    });
    close && retry
}

pub(super) fn slow_body_completes(ctx: &mut Ctx<'_>) -> Result<(), String> {
    let dir = TempDir::new("slow-body").map_err(|e| format!("temporary directory: {e}"))?;
    let db = dir.file("orders.sqlite");
    let mut run = ctx.start(&["--store", &db, "--drain-timeout-ms", "10000"])?;
    let id = "slow-body-order-1";
    let req = Request::post("/orders?ms=50", id);
    let mut conn = open(run.addr)?;
    let mut first = req.head_bytes();
    first.extend_from_slice(&id.as_bytes()[..4]);
    conn.send_raw(&first).map_err(|e| format!("send: {e}"))?;
    thread::sleep(Duration::from_millis(150));
    run.signal(Signal::Term)?;
    let closed = run.wait_event("closed", Duration::from_secs(2))?;
    sleep_until(closed + Duration::from_millis(400));
    let early: Vec<String> = run
        .process
        .lines()
        .into_iter()
        .map(|l| l.text)
        .filter(|t| t == "drained" || t.starts_with("abandoned") || t.starts_with("exit"))
        .collect();
    ctx.check(early.is_empty(), || {
        format!(
            "`{}` while a request body was still arriving (it is in progress)",
            early.join("`, `")
        )
    });
    ctx.check(run.process.try_exit().is_none(), || {
        "the process exited while a request body was still arriving".to_owned()
    });
    let sent_rest = Instant::now();
    if let Err(e) = conn.send_raw(&id.as_bytes()[4..]) {
        ctx.fail(format!("sending the rest of the body: {e}"));
    }
    let out = conn.read_response(REQUEST_TIMEOUT);
    let mut last = None;
    if expect_response(
        ctx,
        "the order whose body arrived late",
        &out,
        201,
        Some(&format!("stored {id}")),
    ) && let Some(r) = out.response()
    {
        ctx.ms("answer-after-body-ms", ms_between(sent_rest, r.done_at));
        ctx.check(r.head.connection_close(), || {
            "the 201 sent after `closed` lacks `Connection: close`".to_owned()
        });
        last = Some(r.done_at);
    }
    let expect = Expect::clean().cleanup(&[("store", CleanupResult::Ok)]);
    if let Some(done) = finish(ctx, &mut run, PATIENCE, &expect) {
        if let Some(last) = last {
            drained_after(ctx, done.at(|e| *e == Event::Drained), last);
        }
        match stored_ids(std::path::Path::new(&db)) {
            Ok(ids) => {
                ctx.check(ids.contains(id), || {
                    format!("order {id} got its answer but has no row")
                });
            }
            Err(why) => ctx.fail(why),
        }
    }
    Ok(())
}

pub(super) fn keepalive_503_during_drain(ctx: &mut Ctx<'_>) -> Result<(), String> {
    let mut run = ctx.start(&["--drain-timeout-ms", "10000"])?;
    let mut idle = open(run.addr)?;
    let first = idle.exchange(&Request::get("/health/live"), REQUEST_TIMEOUT);
    if !expect_response(ctx, "GET /health/live before the signal", &first, 200, None) {
        return Ok(());
    }
    if first.response().is_some_and(|r| r.head.connection_close()) {
        return Err("the server closed a keep-alive connection before any signal".to_owned());
    }
    let mut busy = open(run.addr)?;
    send(&mut busy, "/sleep?ms=1200")?;
    thread::sleep(Duration::from_millis(100));
    run.signal(Signal::Term)?;
    run.wait_event("closed", Duration::from_secs(2))?;
    let sent = Instant::now();
    let out = idle.exchange(&Request::get("/health/live"), REQUEST_TIMEOUT);
    if let Some(r) = out.response() {
        ctx.ms("503-latency-ms", ms_between(sent, r.done_at));
    }
    let what = "a request on an open keep-alive connection after `closed`";
    if check_503(ctx, what, &out) {
        expect_closed_after(ctx, what, &mut idle);
    }
    let answer = busy.read_response(REQUEST_TIMEOUT);
    expect_response(
        ctx,
        "the request in progress",
        &answer,
        200,
        Some("slept 1200"),
    );
    finish(ctx, &mut run, PATIENCE, &Expect::clean());
    Ok(())
}

pub(super) fn idle_keepalive_does_not_delay_exit(ctx: &mut Ctx<'_>) -> Result<(), String> {
    let mut run = ctx.start(&[])?;
    let mut conns = Vec::new();
    for i in 0..3 {
        let mut conn = open(run.addr)?;
        let out = conn.exchange(&Request::get("/health/live"), REQUEST_TIMEOUT);
        expect_response(ctx, &format!("keep-alive request {i}"), &out, 200, None);
        if out.response().is_some_and(|r| r.head.connection_close()) {
            return Err("the server closed a keep-alive connection before any signal".to_owned());
        }
        conns.push(conn);
    }
    ctx.figure("idle-connections", conns.len());
    let signalled = run.signal(Signal::Term)?;
    if let Some(done) = finish(ctx, &mut run, PATIENCE, &Expect::clean()) {
        ctx.bounded(
            "exit-after-signal-ms",
            "the exit with idle keep-alive connections open",
            ms_between(signalled, done.exit.at),
        );
        ctx.promote("exit-after-signal-ms");
    }
    Ok(())
}

pub(super) fn partial_head_does_not_delay_exit(ctx: &mut Ctx<'_>) -> Result<(), String> {
    let mut run = ctx.start(&[])?;
    let mut half = open(run.addr)?;
    half.send_raw(b"GET /sleep?ms=10 HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .map_err(|e| format!("send: {e}"))?;
    let mut line = open(run.addr)?;
    line.send_raw(b"POST /orders?ms=10 HT")
        .map_err(|e| format!("send: {e}"))?;
    let _silent = open(run.addr)?;
    thread::sleep(Duration::from_millis(150));
    let signalled = run.signal(Signal::Term)?;
    if let Some(done) = finish(ctx, &mut run, PATIENCE, &Expect::clean()) {
        ctx.bounded(
            "exit-after-signal-ms",
            "the exit with partial request heads open",
            ms_between(signalled, done.exit.at),
        );
        for (what, conn) in [
            ("half a head", &mut half),
            ("half a request line", &mut line),
        ] {
            if let Peer::Sent(n) = conn.wait_peer(Duration::from_millis(200)) {
                ctx.fail(format!(
                    "the connection with {what} got {n} bytes of answer"
                ));
            }
        }
    }
    Ok(())
}

pub(super) fn drain_deadline_abandons(ctx: &mut Ctx<'_>) -> Result<(), String> {
    const DEADLINE_MS: f64 = 600.0;
    let mut run = ctx.start(&["--drain-timeout-ms", "600", "--cleanup", "alpha,beta"])?;
    let mut long = Vec::new();
    for _ in 0..2 {
        let mut conn = open(run.addr)?;
        send(&mut conn, "/sleep?ms=5000")?;
        long.push(conn);
    }
    let mut stream = open(run.addr)?;
    send(&mut stream, "/stream?chunks=100&ms=100")?;
    let mut short = open(run.addr)?;
    send(&mut short, "/sleep?ms=250")?;
    thread::sleep(Duration::from_millis(150));
    run.signal(Signal::Term)?;
    let out = short.read_response(REQUEST_TIMEOUT);
    expect_response(
        ctx,
        "the short request (ends before the deadline)",
        &out,
        200,
        Some("slept 250"),
    );
    let expect = Expect {
        signal: Signal::Term,
        ending: Ending::Abandoned(3),
        cleanup: vec![
            ("beta".to_owned(), CleanupResult::Ok),
            ("alpha".to_owned(), CleanupResult::Ok),
        ],
        code: 1,
    };
    let wait = Duration::from_millis(600) + PATIENCE;
    let Some(done) = finish(ctx, &mut run, wait, &expect) else {
        return Ok(());
    };
    let closed = done.at(|e| *e == Event::Closed);
    let abandoned = done.at(|e| matches!(e, Event::Abandoned(_)));
    if let (Some(closed), Some(abandoned)) = (closed, abandoned) {
        let ms = ms_between(closed, abandoned);
        ctx.ms("abandoned-after-closed-ms", ms);
        ctx.promote("abandoned-after-closed-ms");
        ctx.check(ms >= DEADLINE_MS - SLACK_MS, || {
            format!("`abandoned` came {ms:.1} ms after `closed`, before the {DEADLINE_MS:.0} ms deadline")
        });
        ctx.check(ms - DEADLINE_MS <= BOUND_MS, || {
            format!(
                "`abandoned` came {:.1} ms after the deadline (the contract allows {BOUND_MS:.0} ms)",
                ms - DEADLINE_MS
            )
        });
    }
    for (i, conn) in long.iter_mut().enumerate() {
        let out = conn.read_response(Duration::from_secs(1));
        ctx.check(out.response().is_none(), || {
            format!("abandoned request {i} was completed after all: {out}")
        });
    }
    let out = stream.read_response(Duration::from_secs(1));
    ctx.check(out.response().is_none(), || {
        format!("the abandoned stream was completed after all: {out}")
    });
    Ok(())
}

pub(super) fn backlog_accepted_not_reset(ctx: &mut Ctx<'_>) -> Result<(), String> {
    const EARLY: usize = 16;
    const STORM_MAX: usize = 1500;
    let mut run = ctx.start(&["--unready-delay-ms", "700", "--drain-timeout-ms", "10000"])?;
    // A long request keeps the drain going while the kit checks the
    // connections.
    let mut busy = open(run.addr)?;
    send(&mut busy, "/sleep?ms=4000")?;
    thread::sleep(Duration::from_millis(100));
    run.signal(Signal::Term)?;
    let draining = run.wait_event("draining ", Duration::from_secs(2))?;
    // Well before the close: these connections must be accepted.
    sleep_until(draining + Duration::from_millis(100));
    let mut early = Vec::new();
    for i in 0..EARLY {
        match http::connect(run.addr, REQUEST_TIMEOUT) {
            Ok(conn) => early.push(conn),
            Err(o) => ctx.fail(format!("connect {i} during the unready delay: {o}")),
        }
    }
    // Right at the close: a steady stream of connects until one is refused.
    sleep_until(draining + Duration::from_millis(550));
    let storm_started = Instant::now();
    let mut storm = Vec::new();
    let mut storm_errors = 0;
    let mut refused = false;
    while storm.len() < STORM_MAX && storm_started.elapsed() < Duration::from_secs(3) {
        match http::connect(run.addr, Duration::from_secs(1)) {
            Ok(conn) => storm.push(conn),
            Err(Outcome::Refused) => {
                refused = true;
                break;
            }
            Err(_) => storm_errors += 1,
        }
        thread::sleep(Duration::from_millis(1));
    }
    run.wait_event("closed", Duration::from_secs(3))?;
    ctx.check(refused, || {
        "connects were still accepted 3 s into the storm (the listener never closed)".to_owned()
    });
    if let Some(exit) = run.process.try_exit() {
        return Err(format!(
            "the process ended ({}) before the kit could use the connections: the long request was cut off or the machine is overloaded",
            exit.describe()
        ));
    }
    // Every accepted connection now sends a request, after `closed`.
    let req = Request::get("/health/live");
    let mut sends = Vec::new();
    for conn in early.iter_mut().chain(storm.iter_mut()) {
        sends.push(conn.send(&req).is_ok());
    }
    let mut early_ok = 0;
    let mut early_bad = Vec::new();
    for (conn, sent) in early.iter_mut().zip(&sends) {
        let out = if *sent {
            conn.read_response(REQUEST_TIMEOUT)
        } else {
            Outcome::Closed { reset: true }
        };
        if out.status() == Some(503) && out.response().is_some_and(|r| r.head.connection_close()) {
            early_ok += 1;
        } else {
            early_bad.push(out.to_string());
        }
    }
    let mut storm_ok = 0;
    let mut storm_resets = 0;
    let mut storm_bad = Vec::new();
    for (conn, sent) in storm.iter_mut().zip(&sends[early.len()..]) {
        let out = if *sent {
            conn.read_response(REQUEST_TIMEOUT)
        } else {
            Outcome::Closed { reset: true }
        };
        match &out {
            Outcome::Response(r) if r.status() == 503 && r.head.connection_close() => {
                storm_ok += 1;
            }
            Outcome::Closed { .. } => storm_resets += 1,
            other => storm_bad.push(other.to_string()),
        }
    }
    ctx.figure("early-answered", format!("{early_ok}/{}", early.len()));
    ctx.figure("storm-connections", storm.len());
    ctx.figure("storm-answered", storm_ok);
    ctx.figure("storm-resets", storm_resets);
    if storm_errors > 0 {
        ctx.figure("storm-connect-errors", storm_errors);
    }
    if !early_bad.is_empty() {
        ctx.fail(format!(
            "{} of {} connections made during the unready delay were not answered 503 + Connection: close after `closed` (first: {})",
            early_bad.len(),
            early.len(),
            early_bad[0]
        ));
    }
    if !storm_bad.is_empty() {
        ctx.fail(format!(
            "{} connections made right before the close got a wrong answer (first: {})",
            storm_bad.len(),
            storm_bad[0]
        ));
    }
    let allowed = (storm.len() / 200).max(1);
    ctx.check(storm_resets <= allowed, || {
        format!(
            "{storm_resets} of {} connections completed right before the close were reset or closed unanswered (at most {allowed} tolerated)",
            storm.len()
        )
    });
    let answer = busy.read_response(REQUEST_TIMEOUT);
    expect_response(
        ctx,
        "the request in progress",
        &answer,
        200,
        Some("slept 4000"),
    );
    finish(ctx, &mut run, PATIENCE, &Expect::clean());
    Ok(())
}

pub(super) fn pipelined_after_close_not_begun(ctx: &mut Ctx<'_>) -> Result<(), String> {
    let dir = TempDir::new("pipelined").map_err(|e| format!("temporary directory: {e}"))?;
    let db = dir.file("orders.sqlite");
    let mut run = ctx.start(&["--store", &db, "--drain-timeout-ms", "10000"])?;
    let id = "pipelined-order-1";
    let mut conn = open(run.addr)?;
    // Two requests in one write: the second waits behind the first.
    let mut bytes = Request::get("/sleep?ms=600").to_bytes();
    bytes.extend(Request::post("/orders?ms=10", id).to_bytes());
    conn.send_raw(&bytes).map_err(|e| format!("send: {e}"))?;
    thread::sleep(Duration::from_millis(100));
    run.signal(Signal::Term)?;
    let closed = run.wait_event("closed", Duration::from_secs(2))?;
    let out = conn.read_response(REQUEST_TIMEOUT);
    let mut last = None;
    if expect_response(ctx, "the first request", &out, 200, Some("slept 600"))
        && let Some(r) = out.response()
    {
        last = Some(r.done_at);
        if r.head_at > closed {
            if r.head.connection_close() {
                match conn.wait_peer(Duration::from_secs(1)) {
                    Peer::Closed | Peer::Reset => {}
                    Peer::Open => ctx.fail(
                        "the connection stayed open 1 s after `Connection: close`".to_owned(),
                    ),
                    Peer::Sent(n) => ctx.fail(format!(
                        "the request pipelined behind `Connection: close` was answered ({n} bytes)"
                    )),
                }
            } else {
                ctx.fail("the response head sent after `closed` lacks `Connection: close`");
            }
        }
    }
    let expect = Expect::clean().cleanup(&[("store", CleanupResult::Ok)]);
    if let Some(done) = finish(ctx, &mut run, PATIENCE, &expect) {
        if let Some(last) = last {
            drained_after(ctx, done.at(|e| *e == Event::Drained), last);
        }
        match stored_ids(std::path::Path::new(&db)) {
            Ok(ids) => {
                ctx.figure("rows", ids.len());
                ctx.check(!ids.contains(id), || {
                    "the order pipelined behind `Connection: close` was begun: its row exists"
                        .to_owned()
                });
            }
            Err(why) => ctx.fail(why),
        }
    }
    Ok(())
}
