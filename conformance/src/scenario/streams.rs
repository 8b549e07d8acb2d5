//! Long-lived streams (contract v2, rules 17 to 20): server-sent events on
//! `GET /events`, read chunk by chunk with the kit's own HTTP/1.1 client,
//! and a WebSocket echo on `GET /ws`, spoken by `tungstenite` over a
//! blocking `TcpStream`.
//!
//! Both are in progress while they are open and are served as before
//! during the unready delay. At `closed` an event stream gets a last event
//! `retry: 1000` and its chunked body ends; a WebSocket gets a Close frame
//! with code 1001, echoes nothing more, and its TCP connection closes when
//! the client answers or 1 s after that Close. Streams that end that way
//! leave a clean exit: `drained` within 500 ms of the last one, code 0.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tungstenite::error::ProtocolError;
use tungstenite::handshake::HandshakeError;
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::Frame;
use tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tungstenite::{Message, WebSocket};

use super::{
    BOUND_MS, Ctx, Expect, PATIENCE, REQUEST_TIMEOUT, Running, SLACK_MS, drained_after, finish,
    ms_between,
};
use crate::contract::Event;
use crate::http::{self, Chunk, Conn, Request};
use crate::process::Signal;

/// What a target that does not serve `/events` is told.
pub(crate) const EVENTS_404: &str =
    "GET /events answered 404: the target does not serve long-lived streams (contract v2, rule 17)";
/// What a target that does not serve `/ws` is told.
pub(crate) const WS_404: &str =
    "GET /ws answered 404: the target does not serve WebSockets (contract v2, rule 19)";
/// The last event of a stream told to go away (rule 18).
const RETRY: &str = "retry: 1000";
/// How long a WebSocket waits for its client's Close answer (rule 19).
const WS_CLOSE_MS: f64 = 1000.0;

/// Starts the target with `args`, which include `--events-ms`: a target
/// that refuses that option (a usage error) is told it is version 2's.
fn start_with_events_ms(ctx: &mut Ctx<'_>, args: &[&str]) -> Result<Running, String> {
    ctx.start(args).map_err(|why| {
        if why.contains("exited with code 2") {
            format!("{why}: the target refuses --events-ms, an option of contract v2 (rule 17)")
        } else {
            why
        }
    })
}

/// One `/events` stream, read as it arrives.
struct Events {
    what: String,
    conn: Conn,
    /// Text received that is not a whole event yet.
    partial: String,
    /// Whole events (without their blank line), with when they arrived.
    events: Vec<(String, Instant)>,
    /// When the body ended with its chunked terminator.
    ended: Option<Instant>,
    /// Why reading it stopped, if it went wrong.
    broken: Option<String>,
}

impl Events {
    /// Sends `GET target` on a new connection and reads the head.
    fn open(addr: SocketAddr, target: &str, what: &str) -> Result<Self, String> {
        let mut conn =
            http::connect(addr, REQUEST_TIMEOUT).map_err(|o| format!("{what}: connect: {o}"))?;
        conn.send(&Request::get(target))
            .map_err(|e| format!("{what}: sending GET {target}: {e}"))?;
        let head = conn
            .read_head(REQUEST_TIMEOUT)
            .map_err(|o| format!("{what}: GET {target}: {o}"))?;
        if head.status == 404 {
            return Err(EVENTS_404.to_owned());
        }
        if head.status != 200 {
            return Err(format!(
                "{what}: GET {target} answered {}, expected 200",
                head.status
            ));
        }
        let kind = head.header("content-type").unwrap_or_default();
        if !kind.starts_with("text/event-stream") {
            return Err(format!(
                "{what}: Content-Type {kind:?}, expected text/event-stream"
            ));
        }
        if !head.chunked() {
            return Err(format!(
                "{what}: the stream is not chunked, so it cannot end cleanly"
            ));
        }
        Ok(Self {
            what: what.to_owned(),
            conn,
            partial: String::new(),
            events: Vec::new(),
            ended: None,
            broken: None,
        })
    }

    /// Reads until `until`, or until the body ends or breaks.
    fn read_until(&mut self, until: Instant) {
        while self.ended.is_none() && self.broken.is_none() {
            let now = Instant::now();
            if now >= until {
                return;
            }
            match self.conn.read_chunk(until - now) {
                Chunk::Data(data) => {
                    let at = Instant::now();
                    self.partial.push_str(&String::from_utf8_lossy(&data));
                    while let Some(end) = self.partial.find("\n\n") {
                        let event = self.partial[..end].to_owned();
                        self.partial.drain(..end + 2);
                        // A comment (a keep-alive `:` line) is no event.
                        if !event.lines().all(|l| l.starts_with(':')) {
                            self.events.push((event, at));
                        }
                    }
                }
                Chunk::End => self.ended = Some(Instant::now()),
                Chunk::TimedOut => return,
                Chunk::Cut => {
                    self.broken = Some(format!(
                        "{}: the stream was cut off without its chunked terminator, after {} events",
                        self.what,
                        self.events.len()
                    ));
                }
                Chunk::Malformed(why) | Chunk::Failed(why) => {
                    self.broken = Some(format!("{}: {why}", self.what));
                }
            }
        }
    }

    /// The ticks, `data: tick 0`, `data: tick 1`, ..., every event but a
    /// last `retry: 1000`; records a failure for anything else.
    fn check_ticks(&self, ctx: &mut Ctx<'_>) {
        for (i, (event, _)) in self.events.iter().enumerate() {
            let last = i + 1 == self.events.len();
            if last && event == RETRY {
                continue;
            }
            let want = format!("data: tick {i}");
            if *event != want {
                ctx.fail(format!(
                    "{}: event {i} is {event:?}, expected {want:?}",
                    self.what
                ));
                return;
            }
        }
    }

    /// How many ticks arrived after `from`.
    fn ticks_after(&self, from: Instant) -> usize {
        self.events
            .iter()
            .filter(|(e, at)| *at > from && e.starts_with("data: tick "))
            .count()
    }

    fn retry_at(&self) -> Option<Instant> {
        self.events
            .iter()
            .find(|(e, _)| e == RETRY)
            .map(|(_, at)| *at)
    }

    /// Records a failure if the stream broke.
    fn check_broken(&self, ctx: &mut Ctx<'_>) {
        if let Some(why) = &self.broken {
            ctx.fail(why.clone());
        }
    }

    /// The checks of rule 18 once the stream should have ended at `closed`:
    /// a last event `retry: 1000`, then a clean end, at `closed` within the
    /// bound. Returns when it ended.
    fn check_end(&self, ctx: &mut Ctx<'_>, closed: Instant) -> Option<Instant> {
        self.check_broken(ctx);
        let Some(ended) = self.ended else {
            if self.broken.is_none() {
                ctx.fail(format!(
                    "{}: still open {:.0} ms after `closed` (a stream ends at `closed`)",
                    self.what,
                    ms_between(closed, Instant::now())
                ));
            }
            return None;
        };
        match self.events.last() {
            Some((last, at)) if last == RETRY => {
                ctx.check(ms_between(closed, *at) >= -SLACK_MS, || {
                    format!(
                        "{}: `retry: 1000` came {:.1} ms before `closed`",
                        self.what,
                        -ms_between(closed, *at)
                    )
                });
            }
            Some((last, _)) => ctx.fail(format!(
                "{}: the last event is {last:?}, expected `retry: 1000`",
                self.what
            )),
            None => ctx.fail(format!("{}: no event at all", self.what)),
        }
        let ms = ms_between(closed, ended);
        ctx.check(ms >= -SLACK_MS, || {
            format!(
                "{}: the stream ended {:.1} ms before `closed`",
                self.what, -ms
            )
        });
        ctx.check(ms <= BOUND_MS, || {
            format!(
                "{}: the stream ended {ms:.1} ms after `closed` (the contract allows {BOUND_MS:.0} ms)",
                self.what
            )
        });
        Some(ended)
    }
}

/// Reads every stream until `until`, each on its own thread so that every
/// arrival time is the real one.
fn read_all_until(streams: &mut [Events], until: Instant) {
    thread::scope(|s| {
        for stream in streams.iter_mut() {
            s.spawn(move || stream.read_until(until));
        }
    });
}

type Ws = WebSocket<TcpStream>;

fn ws_error(e: &tungstenite::Error) -> String {
    match e {
        tungstenite::Error::Io(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            "timed out".to_owned()
        }
        tungstenite::Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
            "the connection ended without a Close frame".to_owned()
        }
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
            "the connection is closed".to_owned()
        }
        other => other.to_string(),
    }
}

/// Opens a WebSocket on `GET /ws`.
fn open_ws(addr: SocketAddr, what: &str) -> Result<Ws, String> {
    let stream = TcpStream::connect_timeout(&addr, REQUEST_TIMEOUT)
        .map_err(|e| format!("{what}: connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    stream
        .set_read_timeout(Some(REQUEST_TIMEOUT))
        .map_err(|e| format!("{what}: {e}"))?;
    match tungstenite::client::client(format!("ws://{addr}/ws"), stream) {
        Ok((ws, _)) => Ok(ws),
        Err(HandshakeError::Failure(tungstenite::Error::Http(response))) => {
            match response.status().as_u16() {
                404 => Err(WS_404.to_owned()),
                status => Err(format!(
                    "{what}: GET /ws answered {status}, expected 101 Switching Protocols"
                )),
            }
        }
        Err(HandshakeError::Failure(e)) => Err(format!(
            "{what}: the WebSocket handshake failed: {}",
            ws_error(&e)
        )),
        Err(HandshakeError::Interrupted(_)) => Err(format!(
            "{what}: no answer to the WebSocket handshake within {} ms",
            REQUEST_TIMEOUT.as_millis()
        )),
    }
}

fn describe_close(frame: Option<&CloseFrame>) -> String {
    match frame {
        Some(f) => format!("code {}", u16::from(f.code)),
        None => "no code".to_owned(),
    }
}

/// Sends `text` and waits for its echo.
fn echo(ws: &mut Ws, text: &str, what: &str) -> Result<(), String> {
    let _ = ws.get_ref().set_read_timeout(Some(REQUEST_TIMEOUT));
    ws.send(Message::Text(text.into()))
        .map_err(|e| format!("{what}: sending {text:?}: {}", ws_error(&e)))?;
    loop {
        match ws.read() {
            Ok(Message::Text(got)) if got.as_str() == text => return Ok(()),
            Ok(Message::Text(got)) => {
                return Err(format!("{what}: {:?} came back for {text:?}", got.as_str()));
            }
            Ok(Message::Close(frame)) => {
                return Err(format!(
                    "{what}: a Close frame ({}) instead of the echo of {text:?}",
                    describe_close(frame.as_ref())
                ));
            }
            Ok(_) => {}
            Err(e) => return Err(format!("{what}: no echo of {text:?}: {}", ws_error(&e))),
        }
    }
}

/// Waits at most `timeout` for the server's Close frame; returns it and
/// when it arrived. tungstenite queues our answer, sent at the next flush.
fn read_close(
    ws: &mut Ws,
    timeout: Duration,
    what: &str,
) -> Result<(Option<CloseFrame>, Instant), String> {
    let _ = ws.get_ref().set_read_timeout(Some(timeout));
    loop {
        match ws.read() {
            Ok(Message::Close(frame)) => return Ok((frame, Instant::now())),
            Ok(_) => {}
            Err(e) => return Err(format!("{what}: no Close frame: {}", ws_error(&e))),
        }
    }
}

/// Sends our answer to the server's Close and waits for the server to close
/// the TCP connection; returns when it did.
fn answer_close(ws: &mut Ws, timeout: Duration, what: &str) -> Result<Instant, String> {
    let _ = ws.get_ref().set_read_timeout(Some(timeout));
    let answered = Instant::now();
    if let Err(e) = ws.flush() {
        // The server had closed the TCP connection already: on a busy
        // machine that can show only now, at our answer, rather than in the
        // look at the socket before it.
        let gone = matches!(&e, tungstenite::Error::Io(io)
            if matches!(io.kind(), io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset));
        if gone {
            return Err(format!(
                "{what}: the TCP connection was closed after the server's Close frame, before our answer (it waits up to 1 s for it): {}",
                ws_error(&e)
            ));
        }
        return Err(format!(
            "{what}: answering the Close frame: {}",
            ws_error(&e)
        ));
    }
    loop {
        match ws.read() {
            Ok(_) => {}
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                return Ok(Instant::now());
            }
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::ConnectionReset => {
                return Ok(Instant::now());
            }
            Err(tungstenite::Error::Protocol(ProtocolError::ReceivedAfterClosing)) => {
                return Err(format!(
                    "{what}: the server sent a message after its Close frame (it echoed what came after it)"
                ));
            }
            Err(e) => {
                return Err(format!(
                    "{what}: the TCP connection was not closed {:.0} ms after our Close answer: {}",
                    ms_between(answered, Instant::now()),
                    ws_error(&e)
                ));
            }
        }
    }
}

/// Whether the server has already closed the connection (an end of file
/// waits to be read), looked at without waiting.
fn closed_by_peer(ws: &Ws) -> bool {
    let stream = ws.get_ref();
    if stream.set_nonblocking(true).is_err() {
        return false;
    }
    let eof = matches!(stream.peek(&mut [0u8; 1]), Ok(0));
    let _ = stream.set_nonblocking(false);
    eof
}

/// Writes a text message beside tungstenite, which refuses to send after
/// the server's Close: a client whose message crossed that Close.
fn send_raw_text(ws: &mut Ws, text: &str) -> io::Result<()> {
    let mut frame = Frame::message(text.as_bytes().to_vec(), OpCode::Data(Data::Text), true);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0x5a5a_5a5a);
    frame.header_mut().mask = Some(nanos.to_be_bytes());
    let mut bytes = Vec::new();
    frame.format(&mut bytes).map_err(io::Error::other)?;
    ws.get_mut().write_all(&bytes)
}

/// A WebSocket read to its end, by a client that answers at once: the
/// server's Close, our answer, the TCP close. Returns when the TCP
/// connection closed (if it did), and what went wrong.
fn close_politely(ws: &mut Ws, what: &str) -> (Option<Instant>, Vec<String>) {
    let mut problems = Vec::new();
    match read_close(ws, Duration::from_secs(3), what) {
        Ok((frame, _)) => {
            if frame.as_ref().map(|f| f.code) != Some(CloseCode::Away) {
                problems.push(format!(
                    "{what}: Close frame with {}, expected code 1001 (going away)",
                    describe_close(frame.as_ref())
                ));
            }
        }
        Err(why) => return (None, vec![why]),
    }
    match answer_close(ws, Duration::from_secs(2), what) {
        Ok(at) => (Some(at), problems),
        Err(why) => {
            problems.push(why);
            (None, problems)
        }
    }
}

pub(super) fn streams_served_during_unready_delay(ctx: &mut Ctx<'_>) -> Result<(), String> {
    let mut run = start_with_events_ms(
        ctx,
        &[
            "--unready-delay-ms",
            "2000",
            "--events-ms",
            "100",
            "--drain-timeout-ms",
            "10000",
        ],
    )?;
    let mut streams = vec![Events::open(
        run.addr,
        "/events",
        "the stream opened before the signal",
    )?];
    let mut before = open_ws(run.addr, "the WebSocket opened before the signal")?;
    echo(
        &mut before,
        "before",
        "the WebSocket opened before the signal",
    )?;
    read_all_until(&mut streams, Instant::now() + Duration::from_millis(250));
    let signalled = run.signal(Signal::Term)?;
    thread::sleep(Duration::from_millis(200));
    streams.push(Events::open(
        run.addr,
        "/events?ms=100",
        "a stream opened during the unready delay",
    )?);
    let mut during = open_ws(run.addr, "a WebSocket opened during the unready delay")?;
    echo(
        &mut during,
        "during",
        "a WebSocket opened during the unready delay",
    )?;
    echo(
        &mut before,
        "before, in the delay",
        "the WebSocket opened before the signal, during the unready delay",
    )?;
    read_all_until(&mut streams, signalled + Duration::from_millis(1100));
    echo(
        &mut during,
        "during, later",
        "a WebSocket opened during the unready delay, 1.1 s into it",
    )?;
    for stream in &streams {
        stream.check_broken(ctx);
        let ended = stream.ended.or(stream.retry_at());
        if let Some(at) = ended {
            ctx.fail(format!(
                "{}: ended {:.0} ms after the signal, during the unready delay (streams are served as before until `closed`)",
                stream.what,
                ms_between(signalled, at)
            ));
        }
        let ticks = stream.ticks_after(signalled + Duration::from_millis(200));
        ctx.check(ticks >= 4, || {
            format!(
                "{}: {ticks} ticks in the 900 ms before 1.1 s of the unready delay, expected one every 100 ms",
                stream.what
            )
        });
        stream.check_ticks(ctx);
    }
    ctx.figure(
        "ticks-during-delay",
        streams[0].ticks_after(signalled + Duration::from_millis(200)),
    );
    let closed = run.wait_event("closed", Duration::from_secs(3))?;
    ctx.ms("closed-after-signal-ms", ms_between(signalled, closed));
    let ws_ends = thread::scope(|s| {
        let ends = [
            (&mut before, "the WebSocket opened before the signal"),
            (&mut during, "the WebSocket opened during the unready delay"),
        ]
        .map(|(ws, what)| s.spawn(move || close_politely(ws, what)));
        read_all_until(&mut streams, closed + Duration::from_millis(2000));
        ends.map(|end| {
            end.join()
                .unwrap_or_else(|_| (None, vec!["a WebSocket's thread panicked".to_owned()]))
        })
    });
    let mut last = None;
    for stream in &streams {
        last = last.max(stream.check_end(ctx, closed));
    }
    for (at, problems) in ws_ends {
        last = last.max(at);
        problems.into_iter().for_each(|p| ctx.fail(p));
    }
    if let Some(done) = finish(ctx, &mut run, PATIENCE, &Expect::clean())
        && let Some(last) = last
    {
        drained_after(ctx, done.at(|e| *e == Event::Drained), last);
    }
    Ok(())
}

pub(super) fn events_end_with_retry(ctx: &mut Ctx<'_>) -> Result<(), String> {
    let mut run = start_with_events_ms(ctx, &["--events-ms", "150", "--drain-timeout-ms", "3000"])?;
    let opened = Instant::now();
    let mut streams = vec![
        Events::open(run.addr, "/events", "the stream at --events-ms 150")?,
        Events::open(run.addr, "/events?ms=400", "the stream at ?ms=400")?,
    ];
    read_all_until(&mut streams, opened + Duration::from_millis(1000));
    for (stream, interval, most) in [(&streams[0], 150.0, 9), (&streams[1], 400.0, 4)] {
        stream.check_broken(ctx);
        stream.check_ticks(ctx);
        let ticks = stream.events.len();
        match stream.events.first() {
            Some((_, at)) => {
                let ms = ms_between(opened, *at);
                ctx.check(ms <= BOUND_MS, || {
                    format!(
                        "{}: the first event came {ms:.1} ms after the request (it is sent at once)",
                        stream.what
                    )
                });
            }
            None => ctx.fail(format!("{}: no event in 1 s", stream.what)),
        }
        // Not faster than asked, and not much slower.
        ctx.check((2..=most).contains(&ticks), || {
            format!(
                "{}: {ticks} events in 1 s, expected one at once and then one every {interval:.0} ms",
                stream.what
            )
        });
    }
    let signalled = run.signal(Signal::Term)?;
    let closed = run.wait_event("closed", Duration::from_secs(2))?;
    read_all_until(&mut streams, closed + Duration::from_millis(1500));
    let mut last = None;
    for stream in &streams {
        stream.check_ticks(ctx);
        last = last.max(stream.check_end(ctx, closed));
    }
    if let Some(at) = streams[0].ended {
        ctx.ms("end-after-closed-ms", ms_between(closed, at));
        ctx.promote("end-after-closed-ms");
    }
    if let Some(done) = finish(ctx, &mut run, PATIENCE, &Expect::clean()) {
        ctx.ms("exit-after-signal-ms", ms_between(signalled, done.exit.at));
        if let Some(last) = last {
            drained_after(ctx, done.at(|e| *e == Event::Drained), last);
        }
    }
    Ok(())
}

pub(super) fn ws_close_1001(ctx: &mut Ctx<'_>) -> Result<(), String> {
    let what = "the WebSocket";
    let mut run = ctx.start(&["--drain-timeout-ms", "3000"])?;
    let mut ws = open_ws(run.addr, what)?;
    echo(&mut ws, "hello", what)?;
    run.signal(Signal::Term)?;
    let closed = run.wait_event("closed", Duration::from_secs(2))?;
    let (frame, close_at) = read_close(&mut ws, Duration::from_secs(2), what)?;
    let ms = ms_between(closed, close_at);
    ctx.ms("close-frame-after-closed-ms", ms);
    ctx.promote("close-frame-after-closed-ms");
    ctx.check(
        frame.as_ref().map(|f| f.code) == Some(CloseCode::Away),
        || {
            format!(
                "{what}: Close frame with {}, expected code 1001 (going away)",
                describe_close(frame.as_ref())
            )
        },
    );
    ctx.check(ms >= -SLACK_MS, || {
        format!("{what}: the Close frame came {:.1} ms before `closed`", -ms)
    });
    ctx.check(ms <= BOUND_MS, || {
        format!(
            "{what}: the Close frame came {ms:.1} ms after `closed` (the contract allows {BOUND_MS:.0} ms)"
        )
    });
    // A message that crossed the server's Close: it must not be echoed.
    if let Err(e) = send_raw_text(&mut ws, "after the close") {
        ctx.fail(format!(
            "{what}: the connection was gone right after the server's Close frame: {e}"
        ));
    }
    thread::sleep(Duration::from_millis(100));
    if closed_by_peer(&ws) {
        ctx.fail(format!(
            "{what}: the TCP connection was closed {:.0} ms after the server's Close frame, before our answer (it waits up to 1 s for it)",
            ms_between(close_at, Instant::now())
        ));
        finish(ctx, &mut run, PATIENCE, &Expect::clean());
        return Ok(());
    }
    let answered = Instant::now();
    let mut tcp_closed = None;
    match answer_close(&mut ws, Duration::from_millis(1500), what) {
        Ok(at) => {
            let ms = ms_between(answered, at);
            ctx.ms("tcp-close-after-answer-ms", ms);
            ctx.check(ms <= BOUND_MS, || {
                format!("{what}: the TCP connection closed {ms:.1} ms after our Close answer (the contract allows {BOUND_MS:.0} ms)")
            });
            tcp_closed = Some(at);
        }
        Err(why) => ctx.fail(why),
    }
    if let Some(done) = finish(ctx, &mut run, PATIENCE, &Expect::clean())
        && let Some(at) = tcp_closed
    {
        drained_after(ctx, done.at(|e| *e == Event::Drained), at);
    }
    Ok(())
}

pub(super) fn ws_close_bound(ctx: &mut Ctx<'_>) -> Result<(), String> {
    let what = "the WebSocket that never answers its Close";
    let mut run = ctx.start(&["--drain-timeout-ms", "3000"])?;
    let mut ws = open_ws(run.addr, what)?;
    echo(&mut ws, "hello", what)?;
    run.signal(Signal::Term)?;
    run.wait_event("closed", Duration::from_secs(2))?;
    let (_, close_at) = read_close(&mut ws, Duration::from_secs(2), what)?;
    // Never answer: read the raw socket (tungstenite would send our answer).
    let until = close_at + Duration::from_millis((WS_CLOSE_MS + BOUND_MS) as u64 + 500);
    let stream = ws.get_mut();
    let mut eof = None;
    let mut buf = [0u8; 1024];
    while Instant::now() < until {
        let _ = stream.set_read_timeout(Some(
            until
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1)),
        ));
        match stream.read(&mut buf) {
            Ok(0) => {
                eof = Some(Instant::now());
                break;
            }
            Ok(n) => {
                ctx.fail(format!("{what}: {n} bytes after the server's Close frame"));
                break;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(_) => {
                eof = Some(Instant::now());
                break;
            }
        }
    }
    match eof {
        Some(at) => {
            let ms = ms_between(close_at, at);
            ctx.ms("tcp-close-after-close-frame-ms", ms);
            ctx.promote("tcp-close-after-close-frame-ms");
            // Twice the slack: the Close frame is seen a little after it
            // was sent, and the 1 s counts from the sending.
            ctx.check(ms >= WS_CLOSE_MS - 2.0 * SLACK_MS, || {
                format!("{what}: the TCP connection closed {ms:.1} ms after the server's Close frame, before the {WS_CLOSE_MS:.0} ms the client has to answer")
            });
            ctx.check(ms <= WS_CLOSE_MS + BOUND_MS, || {
                format!("{what}: the TCP connection closed {ms:.1} ms after the server's Close frame (the contract: {WS_CLOSE_MS:.0} ms, and {BOUND_MS:.0} ms of leeway)")
            });
        }
        None => ctx.fail(format!(
            "{what}: the TCP connection was still open {:.0} ms after the server's Close frame (it closes 1 s after it)",
            ms_between(close_at, Instant::now())
        )),
    }
    if let Some(done) = finish(ctx, &mut run, PATIENCE, &Expect::clean())
        && let Some(at) = eof
    {
        drained_after(ctx, done.at(|e| *e == Event::Drained), at);
        let ms = ms_between(at, done.exit.at);
        ctx.bounded(
            "exit-after-tcp-close-ms",
            "the exit after the TCP close",
            ms,
        );
    }
    Ok(())
}

pub(super) fn streams_exit_clean(ctx: &mut Ctx<'_>) -> Result<(), String> {
    let mut run = start_with_events_ms(ctx, &["--events-ms", "100", "--drain-timeout-ms", "3000"])?;
    let mut streams = vec![
        Events::open(run.addr, "/events", "the first stream")?,
        Events::open(run.addr, "/events?ms=250", "the second stream")?,
    ];
    let what = "the WebSocket";
    let mut ws = open_ws(run.addr, what)?;
    echo(&mut ws, "hello", what)?;
    read_all_until(&mut streams, Instant::now() + Duration::from_millis(300));
    let signalled = run.signal(Signal::Term)?;
    let closed = run.wait_event("closed", Duration::from_secs(2))?;
    let ws_end = thread::scope(|s| {
        let ws_end = s.spawn(|| close_politely(&mut ws, what));
        read_all_until(&mut streams, closed + Duration::from_millis(1500));
        ws_end
            .join()
            .unwrap_or_else(|_| (None, vec!["the WebSocket's thread panicked".to_owned()]))
    });
    let mut last = None;
    for stream in &streams {
        last = last.max(stream.check_end(ctx, closed));
    }
    let (at, problems) = ws_end;
    last = last.max(at);
    problems.into_iter().for_each(|p| ctx.fail(p));
    if let Some(last) = last {
        ctx.ms("last-stream-end-after-closed-ms", ms_between(closed, last));
    }
    if let Some(done) = finish(ctx, &mut run, PATIENCE, &Expect::clean()) {
        ctx.ms("exit-after-signal-ms", ms_between(signalled, done.exit.at));
        if let Some(last) = last {
            drained_after(ctx, done.at(|e| *e == Event::Drained), last);
        }
    }
    Ok(())
}
