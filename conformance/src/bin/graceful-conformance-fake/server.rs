//! Accepting connections and answering requests.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use graceful_conformance::h2::PREFACE;

use crate::config::Fault;
use crate::{ConnEntry, ConnState, Phase, Shared, jobs, lock, streams};

const MAX_HEAD: usize = 16 * 1024;
const MAX_BODY: usize = 1024 * 1024;

/// How the accept thread ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Close {
    /// The shutdown: take what the kernel has already completed, then
    /// drop the listener.
    Drain,
    /// A hand-over: let go of this process's copy at once, with no socket
    /// filter and no reading of the queue; the socket stays open in the new
    /// process, which accepts from the same queue.
    Release,
}

/// Accepts from the shared listener until asked to close; then ends as
/// the [`Close`] says, and acknowledges once the listener is gone.
pub(crate) fn accept_loop(shared: &Arc<Shared>, close: &Receiver<Close>, closed: &Sender<()>) {
    let config = &shared.config;
    if let Some(listener) = lock(&shared.listener).as_ref()
        && let Err(e) = listener.set_nonblocking(true)
    {
        eprintln!("error: non-blocking listener: {e}");
    }
    let mut closing = false;
    loop {
        match close.try_recv() {
            Ok(Close::Release) => {
                release(shared);
                break;
            }
            Ok(Close::Drain) if !closing => {
                closing = true;
                if config.has(Fault::LateClose) {
                    // Claim the listener is closed, and keep accepting.
                    let _ = closed.send(());
                }
            }
            _ => {}
        }
        if config.has(Fault::StopAcceptAtSignal) && shared.phase() >= Phase::Draining {
            if closing {
                break;
            }
            thread::sleep(Duration::from_millis(1));
            continue;
        }
        // The lock only around the (non-blocking) accept: an upgrade takes
        // the listener from here.
        let accepted = {
            let listener = lock(&shared.listener);
            match listener.as_ref() {
                Some(listener) => listener.accept(),
                None => break,
            }
        };
        match accepted {
            Ok((stream, _)) => spawn_conn(shared, stream),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if closing && !config.has(Fault::LateClose) {
                    break;
                }
                thread::sleep(Duration::from_millis(1));
            }
            Err(e) => {
                eprintln!("accept: {e}");
                thread::sleep(Duration::from_millis(10));
            }
        }
    }
    // Only once the listener is really closed may `closed` be printed.
    drop(lock(&shared.listener).take());
    let _ = closed.send(());
}

/// Lets go of this process's copy of the listener at a hand-over.
fn release(shared: &Arc<Shared>) {
    let Some(listener) = lock(&shared.listener).take() else {
        return;
    };
    if shared.config.has(Fault::UpgradeFiltersSharedSocket) {
        // The mistake: the close meant for a socket of one's own, whose
        // drop-all filter belongs to the socket the new process accepts
        // from.
        let read = graceful_core::listener::close(listener, |stream| {
            spawn_conn(shared, stream);
            Ok(())
        });
        if let Err(e) = read {
            eprintln!("accept: {e}");
        }
    } else {
        drop(listener);
    }
}

/// Serves an accepted connection on a thread of its own.
fn spawn_conn(shared: &Arc<Shared>, stream: TcpStream) {
    let shared = Arc::clone(shared);
    let spawned =
        thread::Builder::new()
            .name("conn".into())
            .spawn(move || match shared.tls.clone() {
                Some(tls) => {
                    let _ = stream.set_nonblocking(false);
                    crate::tls::serve(&shared, tls, stream);
                }
                None => serve(&shared, stream),
            });
    if let Err(e) = spawned {
        eprintln!("error: cannot start a connection thread: {e}");
    }
}

/// A parsed request head.
#[derive(Debug)]
pub(crate) struct Head {
    method: String,
    path: String,
    query: HashMap<String, String>,
    content_length: usize,
    client_close: bool,
    /// Every header, in order.
    headers: Vec<(String, String)>,
}

impl Head {
    /// The first header named `name` (case-insensitive).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub(crate) struct Conn {
    pub(crate) id: u64,
    pub(crate) stream: TcpStream,
    /// What has been read but not used yet.
    pub(crate) buf: Vec<u8>,
    /// The connection began with the HTTP/2 preface.
    pub(crate) h2: bool,
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

pub(crate) fn serve(shared: &Arc<Shared>, stream: TcpStream) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    let Ok(registry_copy) = stream.try_clone() else {
        return;
    };
    let id = {
        let mut st = lock(&shared.state);
        let id = st.next_conn;
        st.next_conn += 1;
        st.conns.insert(
            id,
            ConnEntry {
                stream: registry_copy,
                state: ConnState::Idle,
                h2: None,
            },
        );
        id
    };
    if shared.config.has(Fault::StdoutNoise) {
        shared.event(&format!("accepted connection {id}"));
    }
    let mut conn = Conn {
        id,
        stream,
        buf: Vec::new(),
        h2: false,
    };
    while let Some(head) = read_head(shared, &mut conn) {
        let keep = handle(shared, &mut conn, &head);
        // The fault goes on to what is pipelined behind a closing response,
        // as part of the same work in progress.
        let pipelined = !keep && !conn.buf.is_empty() && shared.config.has(Fault::ServePipelined);
        if !pipelined {
            shared.set_state(id, ConnState::Idle);
        }
        if !keep && !pipelined {
            break;
        }
    }
    if conn.h2 {
        let Ok(stream) = conn.stream.try_clone() else {
            return;
        };
        crate::h2::serve(shared, id, stream, std::mem::take(&mut conn.buf));
    }
    lingering_close(&mut conn.stream);
    let mut st = lock(&shared.state);
    st.conns.remove(&id);
    shared.changed.notify_all();
}

/// Closes our side, then reads briefly what the client still sends, so that
/// unread bytes do not turn the close into a reset that could destroy the
/// response in flight.
fn lingering_close(stream: &mut TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let mut sink = [0u8; 4096];
    let until = Instant::now() + Duration::from_millis(500);
    while Instant::now() < until {
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

fn read_head(shared: &Shared, conn: &mut Conn) -> Option<Head> {
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(pos) = find(&conn.buf, b"\r\n\r\n") {
            let head_bytes: Vec<u8> = conn.buf.drain(..pos + 4).collect();
            return parse_head(&head_bytes);
        }
        if conn.buf.len() > MAX_HEAD {
            return None;
        }
        let n = match conn.stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => n,
        };
        let first = conn.buf.is_empty() && !conn.h2;
        if conn.buf.is_empty() {
            shared.set_state(conn.id, ConnState::Partial);
        }
        conn.buf.extend_from_slice(&chunk[..n]);
        if first && speaks_h2(shared, &conn.buf) {
            conn.h2 = true;
            return None;
        }
    }
}

/// Whether the first bytes of a connection are the HTTP/2 preface's.
fn speaks_h2(shared: &Shared, bytes: &[u8]) -> bool {
    let n = bytes.len().min(PREFACE.len());
    !shared.config.has(Fault::NoH2) && n >= 3 && PREFACE.starts_with(&bytes[..n])
}

fn parse_head(bytes: &[u8]) -> Option<Head> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut lines = text.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_owned();
    let target = first.next()?;
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let query = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let mut content_length = 0;
    let mut client_close = false;
    let mut headers = Vec::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let (name, value) = line.split_once(':')?;
        let value = value.trim();
        headers.push((name.to_owned(), value.to_owned()));
        if name.eq_ignore_ascii_case("content-length") {
            content_length = value.parse().ok()?;
        } else if name.eq_ignore_ascii_case("connection") {
            client_close = value
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("close"));
        }
    }
    Some(Head {
        method,
        path: path.to_owned(),
        query,
        content_length,
        client_close,
        headers,
    })
}

fn read_body(conn: &mut Conn, len: usize) -> Option<Vec<u8>> {
    if len > MAX_BODY {
        return None;
    }
    let mut chunk = [0u8; 4096];
    while conn.buf.len() < len {
        match conn.stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => conn.buf.extend_from_slice(&chunk[..n]),
        }
    }
    Some(conn.buf.drain(..len).collect())
}

/// Marks the request begun; returns the phase it began in.
fn begin(shared: &Shared, id: u64) -> Phase {
    let mut st = lock(&shared.state);
    let phase = st.phase;
    let state = if phase == Phase::Finished {
        ConnState::Idle
    } else {
        ConnState::Busy
    };
    if let Some(c) = st.conns.get_mut(&id) {
        c.state = state;
    }
    shared.changed.notify_all();
    phase
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        400 => "Bad Request",
        404 => "Not Found",
        409 => "Conflict",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    }
}

/// Writes a head (plus a whole body, if given); returns whether the
/// connection stays open afterwards.
fn write_head(
    shared: &Shared,
    conn: &mut Conn,
    head: &Head,
    status: u16,
    extra: &str,
    body: Option<&str>,
    force_close: bool,
) -> bool {
    write_head_as(
        shared,
        conn,
        head,
        (status, "text/plain"),
        extra,
        body,
        force_close,
    )
}

/// [`write_head`] with a content type of its own.
pub(crate) fn write_head_as(
    shared: &Shared,
    conn: &mut Conn,
    head: &Head,
    (status, content_type): (u16, &str),
    extra: &str,
    body: Option<&str>,
    force_close: bool,
) -> bool {
    let _gate = shared
        .head_gate
        .read()
        .unwrap_or_else(PoisonError::into_inner);
    let after_closed =
        shared.phase() >= Phase::Closed && !shared.config.has(Fault::NoConnectionClose);
    let closing = force_close || head.client_close || after_closed;
    let mut out = format!("HTTP/1.1 {status} {}\r\n{extra}", reason(status));
    if closing {
        out.push_str("Connection: close\r\n");
    }
    match body {
        Some(body) => {
            out.push_str(&format!(
                "Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ));
        }
        None => out.push_str(&format!(
            "Content-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n\r\n"
        )),
    }
    conn.stream.write_all(out.as_bytes()).is_ok() && !closing
}

pub(crate) fn respond(
    shared: &Shared,
    conn: &mut Conn,
    head: &Head,
    status: u16,
    body: &str,
) -> bool {
    write_head(shared, conn, head, status, "", Some(body), false)
}

pub(crate) fn number(head: &Head, key: &str) -> Option<u64> {
    head.query.get(key).and_then(|v| v.parse().ok())
}

/// Answers one request; returns whether the connection stays open.
fn handle(shared: &Arc<Shared>, conn: &mut Conn, head: &Head) -> bool {
    let config = &shared.config;
    let early_body = if config.has(Fault::IgnoreSlowBody) {
        match read_body(conn, head.content_length) {
            Some(body) => Some(body),
            None => return false,
        }
    } else {
        None
    };
    let phase = begin(shared, conn.id);
    let body = match early_body {
        Some(body) => body,
        None => match read_body(conn, head.content_length) {
            Some(body) => body,
            None => return false,
        },
    };
    let late_job = config.has(Fault::JobsAfterClose) && head.path == "/jobs";
    if phase == Phase::Finished
        || (phase == Phase::Closed && !config.has(Fault::No503) && !late_job)
    {
        write_head(
            shared,
            conn,
            head,
            503,
            "Retry-After: 1\r\n",
            Some("shutting down"),
            true,
        );
        return false;
    }
    match (head.method.as_str(), head.path.as_str()) {
        ("GET", "/sleep") => {
            let Some(ms) = number(head, "ms") else {
                return respond(shared, conn, head, 400, "ms expected");
            };
            thread::sleep(Duration::from_millis(ms));
            respond(shared, conn, head, 200, &format!("slept {ms}"))
        }
        ("GET", "/stream") => {
            let (Some(chunks), Some(ms)) = (number(head, "chunks"), number(head, "ms")) else {
                return respond(shared, conn, head, 400, "chunks and ms expected");
            };
            stream(shared, conn, head, chunks, ms)
        }
        ("GET", "/health/ready") => {
            if shared.phase() == Phase::Serving || config.has(Fault::Ready200) {
                respond(shared, conn, head, 200, "ready")
            } else {
                respond(shared, conn, head, 503, "not ready")
            }
        }
        ("GET", "/health/live") if !config.has(Fault::NoLive) => {
            respond(shared, conn, head, 200, "live")
        }
        ("POST", "/orders") => order(shared, conn, head, &body),
        ("GET", "/events") if !config.has(Fault::V1Only) => {
            let interval = number(head, "ms")
                .filter(|_| !config.has(Fault::EventsIgnoreMs))
                .map_or(config.events_interval, Duration::from_millis);
            if interval.is_zero() {
                return respond(
                    shared,
                    conn,
                    head,
                    400,
                    "an interval of at least 1 ms expected",
                );
            }
            streams::events(shared, conn, head, interval)
        }
        ("GET", "/ws") if !config.has(Fault::V1Only) => streams::websocket(shared, conn, head),
        ("POST", "/jobs") if !config.has(Fault::V1Only) => jobs::post(shared, conn, head, &body),
        _ => respond(shared, conn, head, 404, "not found"),
    }
}

fn stream(shared: &Shared, conn: &mut Conn, head: &Head, chunks: u64, ms: u64) -> bool {
    let keep = write_head(shared, conn, head, 200, "", None, false);
    for i in 0..chunks {
        if i > 0 {
            thread::sleep(Duration::from_millis(ms));
        }
        if shared.config.has(Fault::TruncateStream) && shared.phase() >= Phase::Closed {
            break;
        }
        let line = format!("chunk {i}\n");
        let chunk = format!("{:x}\r\n{line}\r\n", line.len());
        if conn.stream.write_all(chunk.as_bytes()).is_err() {
            return false;
        }
    }
    conn.stream.write_all(b"0\r\n\r\n").is_ok() && keep
}

fn order(shared: &Shared, conn: &mut Conn, head: &Head, body: &[u8]) -> bool {
    if shared.config.store.is_none() {
        return respond(shared, conn, head, 404, "no store");
    }
    let Some(ms) = number(head, "ms") else {
        return respond(shared, conn, head, 400, "ms expected");
    };
    let id = String::from_utf8_lossy(body).trim().to_owned();
    if id.is_empty() {
        return respond(shared, conn, head, 400, "order id expected");
    }
    let started = Instant::now();
    let half = Duration::from_millis(ms / 2);
    thread::sleep(half);
    let stored = if shared.config.has(Fault::SkipCommit) {
        Ok(true)
    } else {
        insert(shared, &id)
    };
    let rest = Duration::from_millis(ms).saturating_sub(started.elapsed());
    thread::sleep(rest);
    match stored {
        Ok(true) => respond(shared, conn, head, 201, &format!("stored {id}")),
        Ok(false) => respond(shared, conn, head, 409, &format!("already stored {id}")),
        Err(e) => {
            eprintln!("storing order {id}: {e}");
            respond(shared, conn, head, 500, "store failed")
        }
    }
}

/// Commits the order; `Ok(false)` when the id is already stored.
pub(crate) fn insert(shared: &Shared, id: &str) -> Result<bool, String> {
    let store = lock(&shared.store);
    let db = store.as_ref().ok_or("the store is closed")?;
    match db.execute("INSERT INTO orders (id) VALUES (?1)", [id]) {
        Ok(_) => Ok(true),
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            Ok(false)
        }
        Err(e) => Err(e.to_string()),
    }
}
