//! HTTP/2 with prior knowledge (h2c): rules 11 and 13 to 16.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use super::{
    BOUND_MS, Ctx, Ending, Expect, PATIENCE, REQUEST_TIMEOUT, SLACK_MS, drained_after,
    expect_response, finish, ms_between,
};
use crate::contract::{CleanupResult, Event};
use crate::h2::{self, Client, MAX_STREAM_ID, Pings, Response};
use crate::process::Signal;
use crate::tmp::TempDir;

/// How long after the first GOAWAY the final one may come when the client
/// holds back its PING answer: the contract's 1 s, plus the kit's
/// observation tolerance.
const FINAL_GOAWAY_MS: f64 = 1000.0 + BOUND_MS / 2.0;

fn connect(addr: SocketAddr, pings: Pings) -> Result<Client, String> {
    Client::connect(addr, pings, REQUEST_TIMEOUT)
}

/// Checks that `r` is a whole response with `status` and `body` (when
/// given); records a failure naming `what` otherwise.
fn expect_h2(ctx: &mut Ctx<'_>, what: &str, r: &Response, status: u16, body: Option<&str>) -> bool {
    let ok = r.complete() && r.status == Some(status) && body.is_none_or(|b| r.text() == b);
    ctx.check(ok, || {
        let want = body.map(|b| format!(" {b:?}")).unwrap_or_default();
        format!("{what}: {r}, expected a whole {status}{want}")
    })
}

/// One request on its own stream, waited for.
fn exchange(
    c: &mut Client,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
) -> Result<Response, String> {
    let id = c.request(method, path, body)?;
    Ok(c.wait_response(id, REQUEST_TIMEOUT))
}

/// Rule 11: every endpoint answers over HTTP/2 as over HTTP/1.1, on the
/// same port.
pub(super) fn h2c_served(ctx: &mut Ctx<'_>) -> Result<(), String> {
    let dir = TempDir::new("h2c").map_err(|e| format!("temporary directory: {e}"))?;
    let store = dir.file("orders.sqlite");
    let mut run = ctx.start(&["--store", &store])?;
    let mut c = connect(run.addr, Pings::Answer)?;
    for (path, status, body) in [
        ("/health/live", 200, Some("live")),
        ("/health/ready", 200, Some("ready")),
        ("/sleep?ms=50", 200, Some("slept 50")),
        (
            "/stream?chunks=3&ms=20",
            200,
            Some("chunk 0\nchunk 1\nchunk 2\n"),
        ),
        ("/no-such-endpoint", 404, None),
    ] {
        let r = exchange(&mut c, "GET", path, None)?;
        expect_h2(ctx, &format!("GET {path} over HTTP/2"), &r, status, body);
    }
    let order = b"h2-order-1";
    let r = exchange(&mut c, "POST", "/orders?ms=20", Some(order))?;
    expect_h2(
        ctx,
        "POST /orders over HTTP/2",
        &r,
        201,
        Some("stored h2-order-1"),
    );
    let r = exchange(&mut c, "POST", "/orders?ms=20", Some(order))?;
    expect_h2(
        ctx,
        "POST /orders of a stored id over HTTP/2",
        &r,
        409,
        None,
    );
    // Two streams at once on one connection: both in progress together.
    let started = Instant::now();
    let a = c.get("/sleep?ms=400")?;
    let b = c.get("/sleep?ms=400")?;
    let (ra, rb) = (
        c.wait_response(a, REQUEST_TIMEOUT),
        c.wait_response(b, REQUEST_TIMEOUT),
    );
    expect_h2(
        ctx,
        "the first of two concurrent streams",
        &ra,
        200,
        Some("slept 400"),
    );
    expect_h2(
        ctx,
        "the second of two concurrent streams",
        &rb,
        200,
        Some("slept 400"),
    );
    let both = ms_between(started, Instant::now());
    ctx.ms("two-400-ms-streams-ms", both);
    ctx.check(both < 800.0 + BOUND_MS, || {
        format!("two concurrent 400 ms streams took {both:.1} ms: they were not served at once")
    });
    let h1 = run.get("/health/live");
    expect_response(
        ctx,
        "GET /health/live over HTTP/1.1 on the same port",
        &h1,
        200,
        Some("live"),
    );
    drop(c);
    run.signal(Signal::Term)?;
    let expect = Expect::clean().cleanup(&[("store", CleanupResult::Ok)]);
    finish(ctx, &mut run, PATIENCE, &expect);
    Ok(())
}

/// Rule 13: during the unready delay, HTTP/2 connections are served as
/// before, new streams and new connections included, and no GOAWAY comes.
pub(super) fn h2_unready_delay_serves(ctx: &mut Ctx<'_>) -> Result<(), String> {
    const DELAY_MS: f64 = 1500.0;
    let mut run = ctx.start(&["--unready-delay-ms", "1500"])?;
    let mut c = connect(run.addr, Pings::Answer)?;
    let r = exchange(&mut c, "GET", "/health/live", None)?;
    expect_h2(
        ctx,
        "GET /health/live over HTTP/2 before the signal",
        &r,
        200,
        Some("live"),
    );
    let signalled = run.signal(Signal::Term)?;
    run.wait_event("draining ", Duration::from_secs(2))?;
    let r = exchange(&mut c, "GET", "/health/ready", None)?;
    expect_h2(
        ctx,
        "GET /health/ready over HTTP/2 during the unready delay",
        &r,
        503,
        None,
    );
    let r = exchange(&mut c, "GET", "/sleep?ms=10", None)?;
    expect_h2(
        ctx,
        "a new stream on an open HTTP/2 connection during the unready delay",
        &r,
        200,
        Some("slept 10"),
    );
    match connect(run.addr, Pings::Answer) {
        Ok(mut fresh) => {
            let r = exchange(&mut fresh, "GET", "/health/live", None)?;
            expect_h2(
                ctx,
                "a new HTTP/2 connection during the unready delay",
                &r,
                200,
                Some("live"),
            );
        }
        Err(e) => ctx.fail(format!(
            "a new HTTP/2 connection during the unready delay: {e}"
        )),
    }
    run.wait_event("closed", Duration::from_secs(5))?;
    // `closed` comes at least the delay after the signal was sent: a
    // GOAWAY before that (less the kit's slack) came during the delay.
    if let Some((last, _, at)) = c.goaways().first() {
        let ms = ms_between(signalled, *at);
        ctx.check(ms >= DELAY_MS - SLACK_MS, || {
            format!("GOAWAY (last stream id {last}) came {ms:.1} ms after the signal, during the unready delay of {DELAY_MS:.0} ms (rule 13)")
        });
    }
    finish(ctx, &mut run, PATIENCE, &Expect::clean());
    Ok(())
}

/// Checks the GOAWAYs of a connection from `closed` on: the first within
/// the bound, NO_ERROR; a final one (last stream id below 2^31-1) within
/// 1 s of an announcing first. Returns the final GOAWAY.
fn check_goaways(
    ctx: &mut Ctx<'_>,
    who: &str,
    c: &Client,
    closed: Instant,
    key: &str,
) -> Option<(u32, u32, Instant)> {
    let Some(first) = c.wait_goaway(1, Duration::from_millis(1500)) else {
        ctx.fail(format!(
            "no GOAWAY on {who} within 1500 ms of `closed` (rule 14)"
        ));
        return None;
    };
    let (last, code, at) = first;
    let ms = ms_between(closed, at);
    ctx.ms(key, ms);
    ctx.check(code == h2::code::NO_ERROR, || {
        format!(
            "the GOAWAY on {who} carries {}, not NO_ERROR (rule 14)",
            h2::code_name(code)
        )
    });
    ctx.check(ms <= BOUND_MS, || {
        format!(
            "the GOAWAY on {who} came {ms:.1} ms after `closed` (the kit allows {BOUND_MS:.0} ms)"
        )
    });
    if last != MAX_STREAM_ID {
        return Some(first);
    }
    let Some(fin) = c.wait_goaway(2, Duration::from_millis(FINAL_GOAWAY_MS as u64 + 500)) else {
        ctx.fail(format!(
            "{who} got a first GOAWAY (last stream id 2^31-1) but no final GOAWAY within {FINAL_GOAWAY_MS:.0} ms (rule 14: at the PING answer or at most 1 s later)"
        ));
        return None;
    };
    let gap = ms_between(at, fin.2);
    ctx.ms(&format!("{key}-final-gap-ms"), gap);
    ctx.check(fin.1 == h2::code::NO_ERROR, || {
        format!(
            "the final GOAWAY on {who} carries {}, not NO_ERROR (rule 14)",
            h2::code_name(fin.1)
        )
    });
    ctx.check(gap <= FINAL_GOAWAY_MS, || {
        format!(
            "the final GOAWAY on {who} came {gap:.1} ms after the first (the contract allows 1 s)"
        )
    });
    ctx.check(fin.0 < MAX_STREAM_ID, || {
        format!("the second GOAWAY on {who} still carries the last stream id 2^31-1")
    });
    Some(fin)
}

/// Rule 14: GOAWAY NO_ERROR at `closed`, the final one within 1 s of an
/// announcing first; streams opened before the final GOAWAY are served.
pub(super) fn h2_goaway_at_closed(ctx: &mut Ctx<'_>) -> Result<(), String> {
    let mut run = ctx.start(&[])?;
    let mut idle = connect(run.addr, Pings::Answer)?;
    let r = exchange(&mut idle, "GET", "/health/live", None)?;
    expect_h2(ctx, "GET /health/live over HTTP/2", &r, 200, Some("live"));
    let mut busy = connect(run.addr, Pings::Hold)?;
    let s1 = busy.get("/sleep?ms=2500")?;
    thread::sleep(Duration::from_millis(150));
    run.signal(Signal::Term)?;
    let closed = run.wait_event("closed", Duration::from_secs(2))?;
    check_goaways(
        ctx,
        "an idle HTTP/2 connection",
        &idle,
        closed,
        "goaway-after-closed-ms",
    );
    let Some(first) = busy.wait_goaway(1, Duration::from_millis(1500)) else {
        ctx.fail("no GOAWAY on an HTTP/2 connection with a stream in progress within 1500 ms of `closed` (rule 14)");
        run.process.kill();
        return Ok(());
    };
    if first.0 == MAX_STREAM_ID {
        ctx.figure("goaway-phases", 2);
        // Between the two GOAWAYs (the kit holds its PING answer back),
        // a new stream must still be served.
        let sent = Instant::now();
        let s3 = busy.get("/sleep?ms=100")?;
        match check_goaways(ctx, "a busy HTTP/2 connection that holds its PING answer", &busy, closed, "busy-goaway-after-closed-ms") {
            Some((last, _, at)) if last < s3 && at > sent => ctx.fail(format!(
                "the final GOAWAY's last stream id {last} leaves out stream {s3}, opened before it (rule 14)"
            )),
            _ => {}
        }
        let r3 = busy.wait_response(s3, REQUEST_TIMEOUT);
        if r3.status == Some(503) {
            ctx.fail(format!(
                "stream {s3}, opened before the final GOAWAY, got 503: rule 4 is for HTTP/1.1, such streams are served (rule 14)"
            ));
        } else {
            expect_h2(
                ctx,
                "a stream opened between the two GOAWAYs",
                &r3,
                200,
                Some("slept 100"),
            );
        }
        busy.answer_pings()?;
    } else {
        ctx.figure("goaway-phases", 1);
        ctx.check(first.0 >= s1, || {
            format!(
                "the final GOAWAY's last stream id {} leaves out stream {s1}, in progress",
                first.0
            )
        });
    }
    // A stream above the final GOAWAY's last stream id is not processed.
    let fin = busy.wait(
        Duration::from_secs(1),
        |s| matches!(s, h2::Seen::GoAway { last, .. } if *last < MAX_STREAM_ID),
    );
    if let Some((h2::Seen::GoAway { last, .. }, _)) = fin {
        let above = busy.get("/health/live")?;
        let r = busy.wait_response(above, Duration::from_millis(500));
        if let Some(status) = r.status {
            ctx.fail(format!(
                "stream {above}, opened after the final GOAWAY (last stream id {last}), was processed: {status} (rule 14)"
            ));
        }
    }
    let r1 = busy.wait_response(s1, Duration::from_secs(5));
    if r1.status == Some(503) {
        ctx.fail("the stream in progress at `closed` got 503 (rule 14)".to_owned());
    } else {
        expect_h2(
            ctx,
            "the stream in progress at `closed`",
            &r1,
            200,
            Some("slept 2500"),
        );
    }
    finish(ctx, &mut run, PATIENCE, &Expect::clean());
    Ok(())
}

/// Rule 15: HTTP/2 streams in progress at the signal complete whole.
pub(super) fn h2_inflight_completes(ctx: &mut Ctx<'_>) -> Result<(), String> {
    let mut run = ctx.start(&[])?;
    let mut x = connect(run.addr, Pings::Answer)?;
    let mut y = connect(run.addr, Pings::Answer)?;
    let a = x.get("/sleep?ms=1000")?;
    let b = x.get("/stream?chunks=5&ms=200")?;
    let c = y.get("/sleep?ms=1200")?;
    thread::sleep(Duration::from_millis(200));
    run.signal(Signal::Term)?;
    let mut last = Instant::now();
    for (client, id, what, body) in [
        (&x, a, "GET /sleep?ms=1000", "slept 1000".to_owned()),
        (
            &x,
            b,
            "GET /stream?chunks=5&ms=200",
            (0..5).map(|i| format!("chunk {i}\n")).collect::<String>(),
        ),
        (&y, c, "GET /sleep?ms=1200", "slept 1200".to_owned()),
    ] {
        let r = client.wait_response(id, Duration::from_secs(5));
        let ok = expect_h2(
            ctx,
            &format!("the HTTP/2 stream in progress at the signal ({what})"),
            &r,
            200,
            Some(&body),
        );
        if let (true, Some(at)) = (ok, r.ended) {
            last = last.max(at);
        }
    }
    if let Some(done) = finish(ctx, &mut run, PATIENCE, &Expect::clean()) {
        drained_after(ctx, done.at(|e| matches!(e, Event::Drained)), last);
    }
    Ok(())
}

/// Rule 15: an idle HTTP/2 connection is closed by the server once its
/// final GOAWAY is sent, while the drain still goes on.
pub(super) fn h2_idle_closed(ctx: &mut Ctx<'_>) -> Result<(), String> {
    let mut run = ctx.start(&[])?;
    let mut holder = connect(run.addr, Pings::Answer)?;
    let s = holder.get("/sleep?ms=2500")?;
    let mut idle = connect(run.addr, Pings::Answer)?;
    let r = exchange(&mut idle, "GET", "/health/live", None)?;
    expect_h2(ctx, "GET /health/live over HTTP/2", &r, 200, Some("live"));
    run.signal(Signal::Term)?;
    let closed = run.wait_event("closed", Duration::from_secs(2))?;
    let fin = check_goaways(
        ctx,
        "an idle HTTP/2 connection",
        &idle,
        closed,
        "goaway-after-closed-ms",
    );
    match (fin, idle.wait_closed(Duration::from_secs(2))) {
        (_, None) => ctx.fail(
            "the idle HTTP/2 connection was still open 2 s after its GOAWAY, while the drain went on (rule 15)",
        ),
        (Some((_, _, sent)), Some(at)) => {
            ctx.bounded(
                "closed-after-final-goaway-ms",
                "closing the idle HTTP/2 connection after its final GOAWAY",
                ms_between(sent, at),
            );
            ctx.promote("closed-after-final-goaway-ms");
        }
        (None, Some(_)) => {}
    }
    let r = holder.wait_response(s, Duration::from_secs(5));
    expect_h2(
        ctx,
        "the stream that holds the drain",
        &r,
        200,
        Some("slept 2500"),
    );
    finish(ctx, &mut run, PATIENCE, &Expect::clean());
    Ok(())
}

/// Rule 15: a client that never answers the server's PING does not delay
/// `drained` or the exit.
pub(super) fn h2_no_ping_answer(ctx: &mut Ctx<'_>) -> Result<(), String> {
    let mut run = ctx.start(&[])?;
    let mut c = connect(run.addr, Pings::Ignore)?;
    let r = exchange(&mut c, "GET", "/health/live", None)?;
    expect_h2(ctx, "GET /health/live over HTTP/2", &r, 200, Some("live"));
    let signalled = run.signal(Signal::Term)?;
    if let Some(done) = finish(ctx, &mut run, PATIENCE, &Expect::clean()) {
        ctx.bounded(
            "exit-after-signal-ms",
            "the exit with an HTTP/2 client that never answers PING",
            ms_between(signalled, done.exit.at),
        );
        ctx.promote("exit-after-signal-ms");
    }
    drop(c);
    Ok(())
}

/// Rule 15: connections that never finish the HTTP/2 preface do not delay
/// `drained` or the exit.
pub(super) fn h2_no_preface(ctx: &mut Ctx<'_>) -> Result<(), String> {
    let mut run = ctx.start(&[])?;
    let mut held = Vec::new();
    // Half the magic; the whole magic without the SETTINGS frame.
    for bytes in [&h2::PREFACE[..10], h2::PREFACE] {
        let mut s = TcpStream::connect_timeout(&run.addr, REQUEST_TIMEOUT)
            .map_err(|e| format!("connect: {e}"))?;
        s.write_all(bytes).map_err(|e| format!("send: {e}"))?;
        held.push(s);
    }
    thread::sleep(Duration::from_millis(150));
    let signalled = run.signal(Signal::Term)?;
    if let Some(done) = finish(ctx, &mut run, PATIENCE, &Expect::clean()) {
        ctx.bounded(
            "exit-after-signal-ms",
            "the exit with unfinished HTTP/2 prefaces open",
            ms_between(signalled, done.exit.at),
        );
        ctx.promote("exit-after-signal-ms");
    }
    drop(held);
    Ok(())
}

/// Rule 16: at the drain deadline, HTTP/2 streams in progress get
/// RST_STREAM CANCEL, count in `abandoned N`, and their connections close.
pub(super) fn h2_deadline_resets(ctx: &mut Ctx<'_>) -> Result<(), String> {
    const DEADLINE_MS: f64 = 1000.0;
    let mut run = ctx.start(&["--drain-timeout-ms", "1000"])?;
    let mut x = connect(run.addr, Pings::Answer)?;
    let mut y = connect(run.addr, Pings::Answer)?;
    let streams = [
        (0, x.get("/sleep?ms=20000")?),
        (0, x.get("/stream?chunks=200&ms=100")?),
        (1, y.get("/sleep?ms=20000")?),
    ];
    thread::sleep(Duration::from_millis(200));
    let signalled = run.signal(Signal::Term)?;
    let closed = run.wait_event("closed", Duration::from_secs(2))?;
    let conns = [&x, &y];
    let mut worst: Option<f64> = None;
    for (conn, id) in streams {
        let r = conns[conn].wait_response(id, Duration::from_secs(5));
        match r.reset {
            Some((h2::code::CANCEL, at)) => {
                let late = ms_between(closed, at) - DEADLINE_MS;
                worst = Some(worst.map_or(late, |w| w.max(late)));
                ctx.check(late >= -SLACK_MS, || {
                    format!("stream {id} was reset {:.1} ms before the drain deadline", -late)
                });
            }
            Some((code, _)) => ctx.fail(format!(
                "stream {id} was reset with {} at the deadline, not CANCEL (rule 16)",
                h2::code_name(code)
            )),
            None => ctx.fail(format!(
                "stream {id}, in progress at the drain deadline, got no RST_STREAM CANCEL ({r}) (rule 16); after the signal its connection got: {}",
                conns[conn].describe_since(signalled)
            )),
        }
    }
    if let Some(worst) = worst {
        ctx.bounded(
            "reset-after-deadline-ms",
            "the RST_STREAM after the deadline",
            worst,
        );
        ctx.promote("reset-after-deadline-ms");
    }
    for (i, c) in conns.iter().enumerate() {
        ctx.check(c.wait_closed(Duration::from_secs(2)).is_some(), || {
            format!(
                "HTTP/2 connection {i} was still open 2 s after its streams were reset (rule 16)"
            )
        });
    }
    let expect = Expect {
        signal: Signal::Term,
        ending: Ending::Abandoned(3),
        cleanup: Vec::new(),
        code: 1,
    };
    finish(ctx, &mut run, PATIENCE, &expect);
    Ok(())
}
