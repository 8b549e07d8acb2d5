//! The checks themselves, one function each, every one on a fresh start of
//! the server.
//!
//! A check sees the server only from outside: HTTP on loopback, signals,
//! the exit status and the clock. Where a rule is about the drain, the
//! check holds the drain open with a slow request sent before the signal;
//! a slow request that is too short to do so (a fixed endpoint that ends
//! before the unready delay is over) makes the check not applicable rather
//! than pass, and the report says so.
//!
//! A connection that ends at the very moment the process exits is the exit
//! itself closing it, which no rule forbids; a connection that ends while
//! the process goes on running is the server's doing. The checks tell the
//! two apart by the exit time ([`EXIT_SLACK`]).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::check::Check;
use super::observe::{
    EXIT_SLACK, InFlight, PATIENCE, Seen, expect_exit, is_whole_2xx, ms, ms_since,
};
use super::options::Options;
use super::server::{self, Running};
use crate::http::{self, Outcome, Peer, Request};
use crate::process::Signal;

/// A fixed slow request shorter than this cannot be caught in flight.
const MIN_IN_FLIGHT: Duration = Duration::from_millis(60);
/// How long one probe waits for its answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the polling loops look again.
const POLL_EVERY: Duration = Duration::from_millis(10);
/// Requests in flight in `inflight-*`.
const IN_FLIGHT: usize = 3;
/// How much earlier than its unready delay a server may stop accepting
/// (the kit sees the signal's effect a little late, never early).
const UNREADY_SLACK: Duration = Duration::from_millis(100);

/// What every check of one run shares.
#[derive(Debug)]
pub(crate) struct Context<'a> {
    pub(crate) options: &'a Options,
    /// How long the slow request took at the start.
    pub(crate) slow_took: Duration,
    /// The slow request as sent at the start, and the body it got, to
    /// compare an identical request's body with.
    pub(crate) reference: Option<(Request, Vec<u8>)>,
    counter: AtomicU64,
}

/// What the slow request did at the start: how long it took, the request
/// and the body it got.
pub(crate) type Measured = (Duration, Request, Vec<u8>);

/// A slow request ready to send, and how long it should take.
pub(crate) struct Slow {
    pub(crate) request: Request,
    pub(crate) takes: Duration,
}

impl<'a> Context<'a> {
    pub(crate) fn new(options: &'a Options) -> Self {
        Self {
            options,
            slow_took: Duration::ZERO,
            reference: None,
            counter: AtomicU64::new(1),
        }
    }

    /// A fresh `{n}`. Relaxed: only uniqueness matters, and `fetch_add` is
    /// unique under any ordering.
    fn next_n(&self) -> u64 {
        self.counter.fetch_add(1, Ordering::Relaxed)
    }

    /// The slow request, asked (when it can be) to last through the unready
    /// delay and `extra` beyond it.
    fn slow_past_unready(&self, extra: Duration) -> Slow {
        if self.options.slow.is_timed() {
            let ms = self.options.slow_ms_past_unready(extra);
            Slow {
                request: self.options.slow.build(ms, self.next_n()),
                takes: Duration::from_millis(ms),
            }
        } else {
            self.slow_fixed()
        }
    }

    /// The slow request asked for `ms` when it can be, else as it is.
    pub(crate) fn slow_for(&self, ms: u64) -> Slow {
        if self.options.slow.is_timed() {
            Slow {
                request: self.options.slow.build(ms, self.next_n()),
                takes: Duration::from_millis(ms),
            }
        } else {
            self.slow_fixed()
        }
    }

    fn slow_fixed(&self) -> Slow {
        Slow {
            request: self.options.slow.build(0, self.next_n()),
            takes: self.slow_took,
        }
    }

    /// A request's time-out: its own time, the unready delay and patience.
    fn timeout_for(&self, takes: Duration) -> Duration {
        takes + self.options.unready_delay + PATIENCE
    }

    fn probe(&self) -> Request {
        Request::get(self.options.probe.clone())
    }
}

/// Runs `check` on a fresh start of the server: its findings and the
/// server's standard error.
pub(crate) fn run(ctx: &Context<'_>, check: Check) -> (Seen, String) {
    if check == Check::Start {
        let (seen, stderr, _) = start(ctx);
        return (seen, stderr);
    }
    let mut running = match server::start(ctx.options) {
        Ok(running) => running,
        Err(why) => {
            let mut seen = Seen::default();
            seen.fail(format!("the server did not start: {why}"));
            return (seen, String::new());
        }
    };
    let seen = match check {
        Check::Start => Seen::default(),
        Check::InflightSigterm | Check::InflightSigint => {
            inflight(ctx, &mut running, check.signal())
        }
        Check::RefusedNotReset => refused_not_reset(ctx, &mut running),
        Check::KeepaliveDuringDrain => keepalive_during_drain(ctx, &mut running),
        Check::IdleKeepaliveExit => idle_exit(ctx, &mut running, false),
        Check::HalfSentExit => idle_exit(ctx, &mut running, true),
        Check::ReadinessFirst => readiness_first(ctx, &mut running),
        Check::CleanExit => clean_exit(ctx, &mut running),
        Check::SecondSignal => second_signal(ctx, &mut running),
        Check::LoadAtSigterm => super::load::load_at_sigterm(ctx, &mut running),
    };
    let stderr = running.process.stderr();
    running.process.kill();
    (seen, stderr)
}

/// `start`: the server comes up, and the slow request is measured. Returns
/// the findings, the server's standard error, and how long the slow request
/// took and what it got, when it came back whole.
pub(crate) fn start(ctx: &Context<'_>) -> (Seen, String, Option<Measured>) {
    let mut seen = Seen::default();
    let mut running = match server::start(ctx.options) {
        Ok(running) => running,
        Err(why) => {
            seen.fail(format!("the server did not start: {why}"));
            return (seen, String::new(), None);
        }
    };
    seen.figure("start-ms", ms(running.start));
    let slow = ctx.slow_for(ctx.options.slow_ms);
    let asked = ctx.options.slow.is_timed().then_some(slow.takes);
    let timeout = asked.unwrap_or(Duration::from_secs(30)) + PATIENCE;
    let began = Instant::now();
    let outcome = http::request(running.addr, &slow.request, timeout);
    let mut measured = None;
    match &outcome {
        Outcome::Response(r) if (200..300).contains(&r.status()) => {
            let took = r.done_at - began;
            measured = Some((took, slow.request.clone(), r.body.clone()));
            seen.figure("slow-ms", ms(took));
            seen.figure("slow-status", r.status());
            if let Some(asked) = asked
                && took < asked.mul_f64(0.8)
            {
                seen.fail(format!(
                    "`{}` took {} ms, asked for {} ms: the server does not honour {{ms}}",
                    ctx.options.slow,
                    ms(took),
                    asked.as_millis()
                ));
            } else if took < MIN_IN_FLIGHT {
                seen.findings.push(format!(
                    "`{}` takes only {} ms: the in-flight checks cannot catch it in flight",
                    ctx.options.slow,
                    ms(took)
                ));
            }
        }
        other => seen.fail(format!(
            "`{}` got {other} instead of a whole 2xx answer",
            ctx.options.slow
        )),
    }
    let stderr = running.process.stderr();
    running.process.kill();
    (seen, stderr, measured)
}

/// Sends the slow request and waits until it is on the wire and has had a
/// little time to begin; `None` (with the failure recorded) when it could
/// not be sent.
fn hold(ctx: &Context<'_>, addr: SocketAddr, slow: &Slow, seen: &mut Seen) -> Option<InFlight> {
    let in_flight = InFlight::send(addr, slow.request.clone(), ctx.timeout_for(slow.takes));
    if in_flight.wait_sent(PROBE_TIMEOUT).is_none() {
        seen.fail("the slow request could not be sent");
        return None;
    }
    thread::sleep((slow.takes / 4).min(Duration::from_millis(300)));
    Some(in_flight)
}

/// `inflight-sigterm`, `inflight-sigint`: requests in flight at the signal
/// come back whole.
fn inflight(ctx: &Context<'_>, running: &mut Running, signal: Signal) -> Seen {
    let mut seen = Seen::default();
    let slow = ctx.slow_past_unready(Duration::from_millis(1000));
    if slow.takes < MIN_IN_FLIGHT {
        seen.not_applicable(format!(
            "the slow request takes only {} ms, too quick to be caught in flight",
            ms(slow.takes)
        ));
        return seen;
    }
    let timeout = ctx.timeout_for(slow.takes);
    let flights: Vec<(InFlight, Request)> = (0..IN_FLIGHT)
        .map(|_| {
            let ms = u64::try_from(slow.takes.as_millis()).unwrap_or(u64::MAX);
            let request = ctx.slow_for(ms).request;
            (
                InFlight::send(running.addr, request.clone(), timeout),
                request,
            )
        })
        .collect();
    for (i, (flight, _)) in flights.iter().enumerate() {
        if flight.wait_sent(PROBE_TIMEOUT).is_none() {
            seen.fail(format!("request {i} could not be sent"));
        }
    }
    thread::sleep((slow.takes / 4).min(Duration::from_millis(300)));
    let Ok(signalled) = running.process.send(signal) else {
        seen.fail(format!("the server had exited before {signal}"));
        return seen;
    };
    let mut whole = 0;
    let mut last = signalled;
    for (i, (flight, request)) in flights.into_iter().enumerate() {
        let finished = flight.finish();
        last = last.max(finished.at);
        let short = match (&ctx.reference, finished.outcome.response()) {
            (Some((sent, body)), Some(r)) if *sent == request && r.body != *body => {
                Some((r.body.len(), body.len()))
            }
            _ => None,
        };
        if let Some((got, before)) = short {
            seen.fail(format!(
                "request {i}, in flight at {signal}, came back with a body of {got} bytes, \
                 where the same request got {before} bytes before the signal"
            ));
        } else if is_whole_2xx(&finished.outcome) {
            whole += 1;
        } else {
            seen.fail(format!(
                "request {i}, in flight at {signal}, got {} {} ms after the signal",
                finished.outcome,
                ms_since(finished.at, signalled)
            ));
        }
    }
    seen.figure("whole", format!("{whole}/{IN_FLIGHT}"));
    seen.figure("last-answer-ms", ms_since(last, signalled));
    let patience = slow.takes + ctx.options.unready_delay + PATIENCE;
    if let Some(exit) = expect_exit(
        &mut running.process,
        signalled,
        signal.name(),
        patience,
        &mut seen,
    ) {
        seen.figure("exit-ms", ms_since(exit.at, signalled));
        seen.figure("exit", exit.describe());
    }
    seen
}

/// `refused-not-reset`: during the drain, new connections are served or
/// refused; none is reset, and none is accepted again after a refusal.
fn refused_not_reset(ctx: &Context<'_>, running: &mut Running) -> Seen {
    let mut seen = Seen::default();
    let slow = ctx.slow_past_unready(Duration::from_millis(1500));
    let Some(holder) = hold(ctx, running.addr, &slow, &mut seen) else {
        return seen;
    };
    let Ok(signalled) = running.process.send(Signal::Term) else {
        seen.fail("the server had exited before SIGTERM");
        return seen;
    };
    let deadline = signalled + ctx.timeout_for(slow.takes);
    let probe = ctx.probe();
    // (when the probe began, when it ended, what it got)
    let mut probes: Vec<(Instant, Instant, Outcome)> = Vec::new();
    while Instant::now() < deadline && running.process.try_exit().is_none() {
        let began = Instant::now();
        let outcome = http::request(running.addr, &probe, PROBE_TIMEOUT);
        probes.push((began, Instant::now(), outcome));
        thread::sleep(POLL_EVERY);
    }
    let exit = running.process.wait_exit(EXIT_SLACK);
    let _ = holder.finish();
    let first_refused = probes
        .iter()
        .find(|(_, _, o)| *o == Outcome::Refused)
        .map(|(began, _, _)| *began);
    let (mut served, mut refused, mut at_exit) = (0, 0, 0);
    let mut reaccepted = false;
    for (began, ended, outcome) in &probes {
        match outcome {
            Outcome::Refused => refused += 1,
            other => {
                if other.response().is_some() {
                    served += 1;
                }
                if let Some(refused_at) = first_refused
                    && *began > refused_at
                    && !reaccepted
                {
                    reaccepted = true;
                    seen.fail(format!(
                        "a connection made {} ms after SIGTERM was accepted ({other}) after one \
                         was refused at {} ms",
                        ms_since(*began, signalled),
                        ms_since(refused_at, signalled)
                    ));
                }
                if other.response().is_none() {
                    let by_exit = exit.is_some_and(|e| *ended + EXIT_SLACK >= e.at);
                    if by_exit {
                        at_exit += 1;
                    } else {
                        seen.fail(format!(
                            "a new connection made {} ms after SIGTERM got {other}",
                            ms_since(*began, signalled)
                        ));
                    }
                }
            }
        }
    }
    match first_refused {
        Some(at) => seen.figure("stopped-accepting-ms", ms_since(at, signalled)),
        None => seen.figure("stopped-accepting-ms", "at-exit"),
    }
    seen.figure("probes", probes.len());
    seen.figure("served", served);
    seen.figure("refused", refused);
    seen.figure("lost-at-exit", at_exit);
    match exit {
        Some(exit) => seen.figure("exit-ms", ms_since(exit.at, signalled)),
        None => seen.not_applicable(format!(
            "the server neither stopped accepting nor exited within {} ms of SIGTERM",
            ms_since(Instant::now(), signalled)
        )),
    }
    seen
}

/// `keepalive-during-drain`: a request on a keep-alive connection that was
/// open before the signal is answered during the drain.
fn keepalive_during_drain(ctx: &Context<'_>, running: &mut Running) -> Seen {
    let mut seen = Seen::default();
    let probe = ctx.probe();
    let mut conn = match http::connect(running.addr, PROBE_TIMEOUT) {
        Ok(conn) => conn,
        Err(outcome) => {
            seen.fail(format!(
                "the keep-alive connection could not be made: {outcome}"
            ));
            return seen;
        }
    };
    match conn.exchange(&probe, PROBE_TIMEOUT) {
        Outcome::Response(r) if r.head.connection_close() => {
            seen.not_applicable(format!(
                "`GET {}` came back with `Connection: close`: no keep-alive connection to check",
                ctx.options.probe
            ));
            return seen;
        }
        Outcome::Response(_) => {}
        other => {
            seen.fail(format!(
                "`GET {}` before the signal got {other}",
                ctx.options.probe
            ));
            return seen;
        }
    }
    let slow = ctx.slow_past_unready(Duration::from_millis(2000));
    let Some(holder) = hold(ctx, running.addr, &slow, &mut seen) else {
        return seen;
    };
    let Ok(signalled) = running.process.send(Signal::Term) else {
        seen.fail("the server had exited before SIGTERM");
        return seen;
    };
    // Watch the idle connection until the server stops accepting, or the
    // unready delay and a second have passed.
    let deadline = signalled + ctx.options.unready_delay + Duration::from_millis(1000);
    let mut closed: Option<(Instant, Peer)> = None;
    let mut stopped: Option<Instant> = None;
    loop {
        match conn.wait_peer(Duration::from_millis(20)) {
            Peer::Open => {}
            peer => {
                closed = Some((Instant::now(), peer));
                break;
            }
        }
        if running.process.try_exit().is_some() || Instant::now() >= deadline {
            break;
        }
        if let Err(Outcome::Refused) = http::connect(running.addr, PROBE_TIMEOUT) {
            stopped = Some(Instant::now());
            break;
        }
    }
    if let Some(at) = stopped {
        seen.figure("stopped-accepting-ms", ms_since(at, signalled));
    }
    let exited_by = |process: &mut crate::process::Process, at: Instant| {
        process
            .wait_exit(EXIT_SLACK * 3)
            .filter(|exit| exit.at <= at + EXIT_SLACK * 3)
    };
    if let Some((at, peer)) = closed {
        let how = match peer {
            Peer::Closed => "closed".to_owned(),
            Peer::Reset => "reset".to_owned(),
            Peer::Sent(n) => format!("sent {n} unasked bytes on"),
            Peer::Open => "left open".to_owned(),
        };
        if let Some(exit) = exited_by(&mut running.process, at) {
            seen.not_applicable(format!(
                "the server exited {} ms after SIGTERM, before a request could be sent in the \
                 drain (the slow request ended too early to hold it)",
                ms_since(exit.at, signalled)
            ));
        } else {
            seen.figure("idle-closed-ms", ms_since(at, signalled));
            seen.fail(format!(
                "the server {how} the idle keep-alive connection {} ms after SIGTERM, while it \
                 went on running: the client's next request on it would be lost",
                ms_since(at, signalled)
            ));
        }
        let _ = holder.finish();
        return seen;
    }
    if let Some(exit) = running.process.try_exit() {
        seen.not_applicable(format!(
            "the server exited {} ms after SIGTERM, before a request could be sent in the drain",
            ms_since(exit.at, signalled)
        ));
        let _ = holder.finish();
        return seen;
    }
    let sent = Instant::now();
    let outcome = conn.exchange(&probe, PROBE_TIMEOUT);
    let ended = Instant::now();
    seen.figure("sent-ms", ms_since(sent, signalled));
    match &outcome {
        Outcome::Response(r) => {
            seen.figure("status", r.status());
            seen.figure("connection-close", r.head.connection_close());
        }
        other => {
            if let Some(exit) = exited_by(&mut running.process, ended) {
                seen.not_applicable(format!(
                    "the server exited {} ms after SIGTERM, as the request was sent",
                    ms_since(exit.at, signalled)
                ));
            } else {
                seen.fail(format!(
                    "a request sent on the open keep-alive connection {} ms after SIGTERM got \
                     {other}, while the server went on running",
                    ms_since(sent, signalled)
                ));
            }
        }
    }
    let _ = holder.finish();
    seen
}

/// `idle-keepalive-exit` and `half-sent-exit`: connections with nothing in
/// progress do not hold the exit back.
fn idle_exit(ctx: &Context<'_>, running: &mut Running, half_sent: bool) -> Seen {
    let mut seen = Seen::default();
    let probe = ctx.probe();
    let mut conns = Vec::new();
    for _ in 0..3 {
        let mut conn = match http::connect(running.addr, PROBE_TIMEOUT) {
            Ok(conn) => conn,
            Err(outcome) => {
                seen.fail(format!("a connection could not be made: {outcome}"));
                return seen;
            }
        };
        let sent = if half_sent {
            let head = probe.head_bytes();
            // Everything but the blank line that ends the head.
            conn.send_raw(&head[..head.len() - 2])
                .map_err(|e| e.to_string())
        } else {
            match conn.exchange(&probe, PROBE_TIMEOUT) {
                Outcome::Response(_) => Ok(()),
                other => Err(other.to_string()),
            }
        };
        if let Err(e) = sent {
            seen.fail(format!("a connection could not be set up: {e}"));
            return seen;
        }
        conns.push(conn);
    }
    // Let the server read what was sent.
    thread::sleep(Duration::from_millis(100));
    let Ok(signalled) = running.process.send(Signal::Term) else {
        seen.fail("the server had exited before SIGTERM");
        return seen;
    };
    let bound = ctx.options.unready_delay + ctx.options.bounds.exit;
    seen.figure("bound-ms", bound.as_millis());
    let what = if half_sent {
        "connections holding half a request head"
    } else {
        "idle keep-alive connections"
    };
    if let Some(exit) = expect_exit(
        &mut running.process,
        signalled,
        &format!("SIGTERM with 3 {what} open"),
        bound + PATIENCE,
        &mut seen,
    ) {
        let took = exit.at - signalled;
        seen.figures.insert(0, ("exit-ms".into(), ms(took)));
        if took > bound {
            seen.fail(format!(
                "exited {} ms after SIGTERM with 3 {what} open, beyond the bound of {} ms \
                 (unready delay + exit bound)",
                ms(took),
                bound.as_millis()
            ));
        }
    }
    drop(conns);
    seen
}

/// `readiness-first`: the readiness path fails before accepting stops, and
/// accepting goes on for the unready delay.
fn readiness_first(ctx: &Context<'_>, running: &mut Running) -> Seen {
    let mut seen = Seen::default();
    let Some(path) = &ctx.options.ready else {
        seen.not_applicable("no readiness path given (--ready PATH)");
        return seen;
    };
    let ready = Request::get(path.clone());
    let unready = ctx.options.unready_delay;
    seen.figure("unready-delay-ms", unready.as_millis());
    let Ok(signalled) = running.process.send(Signal::Term) else {
        seen.fail("the server had exited before SIGTERM");
        return seen;
    };
    let deadline = signalled + unready + PATIENCE;
    let mut flipped: Option<Instant> = None;
    let mut stopped: Option<(Instant, String)> = None;
    while Instant::now() < deadline {
        let began = Instant::now();
        match http::request(running.addr, &ready, Duration::from_secs(1)) {
            Outcome::Response(r) if (200..300).contains(&r.status()) => {}
            Outcome::Response(_) => {
                flipped.get_or_insert(began);
            }
            other => {
                stopped = Some((began, other.to_string()));
                break;
            }
        }
        if let Some(exit) = running.process.try_exit() {
            stopped = Some((exit.at, format!("exit ({})", exit.describe())));
            break;
        }
        thread::sleep(POLL_EVERY);
    }
    if let Some(at) = flipped {
        seen.figure("ready-flip-ms", ms_since(at, signalled));
    }
    let Some((stopped_at, how)) = stopped else {
        seen.figure("stopped-accepting-ms", "never");
        if flipped.is_none() {
            seen.fail(format!(
                "`{path}` still answered 2xx {} ms after SIGTERM",
                ms_since(Instant::now(), signalled)
            ));
        } else {
            seen.not_applicable(format!(
                "the server went on accepting for {} ms after SIGTERM",
                ms_since(Instant::now(), signalled)
            ));
        }
        return seen;
    };
    seen.figure("stopped-accepting-ms", ms_since(stopped_at, signalled));
    if flipped.is_none() && unready.is_zero() {
        seen.not_applicable(format!(
            "with no unready delay the server stopped accepting {} ms after SIGTERM, before \
             `{path}` could be seen failing (give --unready-delay-ms)",
            ms_since(stopped_at, signalled)
        ));
        return seen;
    }
    if flipped.is_none() {
        seen.fail(format!(
            "`{path}` still answered 2xx when accepting stopped {} ms after SIGTERM ({how})",
            ms_since(stopped_at, signalled)
        ));
    } else if let Some(at) = flipped
        && !unready.is_zero()
        && at + UNREADY_SLACK >= signalled + unready
    {
        // A non-2xx that first comes once the unready delay is over is the
        // drain refusing new work (a 503 on a connection accepted from the
        // queue), not readiness: a server whose readiness path never flips
        // shows exactly that.
        seen.fail(format!(
            "`{path}` still answered 2xx for the whole unready delay of {} ms; its first failure \
             came {} ms after SIGTERM, as the drain began",
            unready.as_millis(),
            ms_since(at, signalled)
        ));
    }
    if stopped_at + UNREADY_SLACK < signalled + unready {
        seen.fail(format!(
            "accepting stopped {} ms after SIGTERM ({how}), before the unready delay of {} ms \
             was over",
            ms_since(stopped_at, signalled),
            unready.as_millis()
        ));
    }
    seen
}

/// `clean-exit`: after a request in flight completes, the exit status is 0
/// and the exit follows soon.
fn clean_exit(ctx: &Context<'_>, running: &mut Running) -> Seen {
    let mut seen = Seen::default();
    let slow = ctx.slow_past_unready(Duration::from_millis(500));
    let Some(holder) = hold(ctx, running.addr, &slow, &mut seen) else {
        return seen;
    };
    let Ok(signalled) = running.process.send(Signal::Term) else {
        seen.fail("the server had exited before SIGTERM");
        return seen;
    };
    let finished = holder.finish();
    if !is_whole_2xx(&finished.outcome) {
        seen.fail(format!(
            "the request in flight at SIGTERM got {}: the drain was not clean",
            finished.outcome
        ));
    }
    let patience = ctx.options.unready_delay + ctx.options.bounds.drain_exit + PATIENCE;
    let Some(exit) = expect_exit(
        &mut running.process,
        signalled,
        "SIGTERM",
        patience,
        &mut seen,
    ) else {
        return seen;
    };
    let drained = finished.at.max(signalled + ctx.options.unready_delay);
    let after = exit.at.saturating_duration_since(drained);
    seen.figure("exit", exit.describe());
    seen.figure("exit-after-drain-ms", ms(after));
    seen.figure("bound-ms", ctx.options.bounds.drain_exit.as_millis());
    if exit.code() != Some(0) {
        seen.fail(format!(
            "exited with {} after a clean drain",
            exit.describe()
        ));
    }
    if after > ctx.options.bounds.drain_exit {
        seen.fail(format!(
            "exited {} ms after the last response (and the unready delay), beyond the bound \
             of {} ms",
            ms(after),
            ctx.options.bounds.drain_exit.as_millis()
        ));
    }
    seen
}

/// `second-signal`: a second SIGTERM during the drain ends the process.
fn second_signal(ctx: &Context<'_>, running: &mut Running) -> Seen {
    let mut seen = Seen::default();
    let slow = ctx.slow_past_unready(Duration::from_millis(3000));
    let Some(holder) = hold(ctx, running.addr, &slow, &mut seen) else {
        return seen;
    };
    let Ok(first) = running.process.send(Signal::Term) else {
        seen.fail("the server had exited before SIGTERM");
        return seen;
    };
    thread::sleep(Duration::from_millis(200));
    let second = match running.process.send(Signal::Term) {
        Ok(at) => at,
        Err(_) => {
            let exit = running.process.try_exit();
            seen.not_applicable(format!(
                "the server had exited {} after the first SIGTERM, before the second",
                exit.map(|e| format!("{} ms", ms_since(e.at, first)))
                    .unwrap_or_else(|| "soon".into())
            ));
            drop(holder);
            return seen;
        }
    };
    let bound = ctx.options.bounds.second_signal;
    seen.figure("bound-ms", bound.as_millis());
    if let Some(exit) = expect_exit(
        &mut running.process,
        second,
        "the second SIGTERM",
        bound + PATIENCE,
        &mut seen,
    ) {
        let took = exit.at - second;
        seen.figures
            .insert(0, ("exit-after-second-ms".into(), ms(took)));
        seen.figure("exit", exit.describe());
        if took > bound {
            seen.fail(format!(
                "exited {} ms after the second SIGTERM, beyond the bound of {} ms",
                ms(took),
                bound.as_millis()
            ));
        }
    }
    let _ = holder.finish();
    seen
}
