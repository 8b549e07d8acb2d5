//! HTTP/2 with prior knowledge (h2c) on the same port: the frame code of the
//! kit, one reader per connection, one thread per stream.
//!
//! At `closed` every connection gets a first GOAWAY (last stream id
//! 2^31-1) and a PING; the final GOAWAY goes out at the PING's answer or
//! 1 s later, and a connection with no stream in progress is then closed.
//! A stream is in progress from its headers to its END_STREAM; at the
//! deadline the streams left are reset with CANCEL.

use std::collections::{BTreeSet, HashMap};
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use graceful_conformance::h2::{Frame, MAX_STREAM_ID, PREFACE, code, flag, kind, split_target};

use crate::config::Fault;
use crate::{ConnState, Phase, Shared, lock};

/// The PING sent with the first GOAWAY.
const GOAWAY_PING: [u8; 8] = *b"goingawy";

/// Where a connection is in its shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Away {
    No,
    /// The first GOAWAY and its PING are sent.
    First,
    /// The final GOAWAY is sent: streams above `last` are not processed.
    Final,
}

#[derive(Debug)]
struct ConnInner {
    /// Streams in progress.
    streams: BTreeSet<u32>,
    /// The highest stream id processed.
    last: u32,
    away: Away,
}

/// One HTTP/2 connection, as the shutdown sees it.
pub(crate) struct H2Conn {
    id: u64,
    writer: Mutex<TcpStream>,
    inner: Mutex<ConnInner>,
    encoder: Mutex<fluke_hpack::Encoder<'static>>,
}

impl std::fmt::Debug for H2Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H2Conn")
            .field("id", &self.id)
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl H2Conn {
    fn send(&self, frame: &Frame) -> bool {
        frame.write_to(&mut *lock(&self.writer)).is_ok()
    }

    /// Sends a frame of `stream` unless the stream was reset meanwhile.
    fn send_on(&self, stream: u32, frame: &Frame) -> bool {
        let inner = lock(&self.inner);
        if !inner.streams.contains(&stream) {
            return false;
        }
        let ok = self.send(frame);
        drop(inner);
        ok
    }

    fn close(&self) {
        let _ = lock(&self.writer).shutdown(Shutdown::Both);
    }

    /// The number of streams in progress.
    pub(crate) fn streams(&self) -> usize {
        lock(&self.inner).streams.len()
    }

    /// Sends the final GOAWAY (once), and closes the connection if no
    /// stream is in progress.
    fn final_goaway(&self, shared: &Shared) {
        let mut inner = lock(&self.inner);
        if inner.away == Away::Final {
            return;
        }
        inner.away = Away::Final;
        let idle = inner.streams.is_empty();
        self.send(&Frame::goaway(inner.last, code::NO_ERROR));
        drop(inner);
        if idle {
            self.close();
        }
        // Only the `h2-wait-ping` fault counts the connection until here.
        shared.set_state(self.id, ConnState::Idle);
    }
}

/// At `closed` (or at the signal, with `h2-goaway-at-signal`): starts the
/// GOAWAY of every HTTP/2 connection.
pub(crate) fn going_away(shared: &Arc<Shared>, conns: Vec<Arc<H2Conn>>) {
    let config = &shared.config;
    if config.has(Fault::H2NoGoaway) {
        return;
    }
    for conn in conns {
        {
            let mut inner = lock(&conn.inner);
            if inner.away != Away::No {
                continue;
            }
            inner.away = Away::First;
            if config.has(Fault::H2ResetAtClosed) {
                for id in std::mem::take(&mut inner.streams) {
                    conn.send(&Frame::rst(id, code::CANCEL));
                }
            }
        }
        shared.poke();
        conn.send(&Frame::goaway(MAX_STREAM_ID, code::NO_ERROR));
        conn.send(&Frame::ping(false, GOAWAY_PING));
        if config.has(Fault::H2WaitPing) {
            // Counted in progress until the PING is answered.
            shared.set_state(conn.id, ConnState::Busy);
            continue;
        }
        let shared = Arc::clone(shared);
        let _ = thread::Builder::new()
            .name("h2-goaway".into())
            .spawn(move || {
                thread::sleep(Duration::from_secs(1));
                conn.final_goaway(&shared);
            });
    }
}

/// At the drain deadline: resets the streams in progress (CANCEL) and
/// closes the connection. Returns how many streams were in progress.
pub(crate) fn abandon(shared: &Shared, conn: &H2Conn) -> usize {
    let mut inner = lock(&conn.inner);
    let streams = std::mem::take(&mut inner.streams);
    if !shared.config.has(Fault::H2DeadlineEof) {
        for id in &streams {
            conn.send(&Frame::rst(*id, code::CANCEL));
        }
    }
    drop(inner);
    conn.close();
    streams.len()
}

/// A stream whose headers have come, waiting for the rest of its body.
struct Pending {
    method: String,
    target: String,
    body: Vec<u8>,
}

/// Serves one connection that began with the preface's first bytes (some
/// of them already in `buf`).
pub(crate) fn serve(shared: &Arc<Shared>, id: u64, mut stream: TcpStream, mut buf: Vec<u8>) {
    let config = &shared.config;
    if config.has(Fault::H2WaitPreface) {
        shared.set_state(id, ConnState::Busy);
    }
    let mut chunk = [0u8; 64];
    while buf.len() < PREFACE.len() {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    if &buf[..PREFACE.len()] != PREFACE {
        return;
    }
    let (Ok(rest), Ok(writer)) = (stream.try_clone(), stream.try_clone()) else {
        return;
    };
    let mut reader = io::Cursor::new(buf[PREFACE.len()..].to_vec()).chain(rest);
    match read_frame(&mut reader) {
        Some(f) if f.kind == kind::SETTINGS && !f.has(flag::ACK) => {}
        _ => return,
    }
    let conn = Arc::new(H2Conn {
        id,
        writer: Mutex::new(writer),
        inner: Mutex::new(ConnInner {
            streams: BTreeSet::new(),
            last: 0,
            away: Away::No,
        }),
        encoder: Mutex::new(fluke_hpack::Encoder::new()),
    });
    {
        let mut st = lock(&shared.state);
        if let Some(c) = st.conns.get_mut(&id) {
            c.h2 = Some(Arc::clone(&conn));
        }
        let late = st.phase >= Phase::Closed;
        drop(st);
        shared.set_state(id, ConnState::Idle);
        let mut hello = Frame::settings(false).encode();
        hello.extend_from_slice(&Frame::settings(true).encode());
        if lock(&conn.writer).write_all(&hello).is_err() {
            return;
        }
        if late {
            going_away(shared, vec![Arc::clone(&conn)]);
        }
    }
    let mut decoder = fluke_hpack::Decoder::new();
    let mut pending: HashMap<u32, Pending> = HashMap::new();
    while let Some(frame) = read_frame(&mut reader) {
        match frame.kind {
            kind::HEADERS => {
                let sid = frame.stream;
                let Some(block) = frame.content() else { break };
                if !frame.has(flag::END_HEADERS) {
                    // The kit's header blocks always fit one frame.
                    break;
                }
                let Ok(fields) = decoder.decode(block) else {
                    break;
                };
                {
                    let mut inner = lock(&conn.inner);
                    if inner.away == Away::Final
                        && sid > inner.last
                        && !config.has(Fault::H2ServeAfterGoaway)
                    {
                        continue;
                    }
                    inner.last = inner.last.max(sid);
                    inner.streams.insert(sid);
                }
                shared.poke();
                let field = |name: &str| {
                    fields
                        .iter()
                        .find(|(n, _)| n == name.as_bytes())
                        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
                        .unwrap_or_default()
                };
                let p = Pending {
                    method: field(":method"),
                    target: field(":path"),
                    body: Vec::new(),
                };
                if frame.has(flag::END_STREAM) {
                    start(shared, &conn, sid, p);
                } else {
                    pending.insert(sid, p);
                }
            }
            kind::DATA => {
                let sid = frame.stream;
                let data = frame.content().unwrap_or_default();
                if !data.is_empty() {
                    let n = data.len() as u32;
                    conn.send(&Frame::window_update(0, n));
                    conn.send(&Frame::window_update(sid, n));
                }
                if let Some(p) = pending.get_mut(&sid) {
                    p.body.extend_from_slice(data);
                }
                if frame.has(flag::END_STREAM)
                    && let Some(p) = pending.remove(&sid)
                {
                    start(shared, &conn, sid, p);
                }
            }
            kind::PING if frame.has(flag::ACK) && frame.ping_data() == Some(GOAWAY_PING) => {
                conn.final_goaway(shared);
            }
            kind::PING if frame.has(flag::ACK) => {}
            kind::PING => {
                conn.send(&Frame::ping(true, frame.ping_data().unwrap_or_default()));
            }
            kind::SETTINGS if !frame.has(flag::ACK) => {
                conn.send(&Frame::settings(true));
            }
            kind::RST_STREAM => {
                pending.remove(&frame.stream);
                end_stream(shared, &conn, frame.stream);
            }
            _ => {}
        }
    }
}

fn read_frame(r: &mut impl Read) -> Option<Frame> {
    Frame::read_from(r).ok().flatten()
}

/// The stream ended or was reset: it is no longer in progress.
fn end_stream(shared: &Shared, conn: &H2Conn, sid: u32) {
    let mut inner = lock(&conn.inner);
    if !inner.streams.remove(&sid) {
        return;
    }
    let close = inner.streams.is_empty() && inner.away == Away::Final;
    drop(inner);
    if close {
        conn.close();
    }
    shared.poke();
}

fn start(shared: &Arc<Shared>, conn: &Arc<H2Conn>, sid: u32, p: Pending) {
    let shared = Arc::clone(shared);
    let conn = Arc::clone(conn);
    let spawned = thread::Builder::new()
        .name("h2-stream".into())
        .spawn(move || {
            answer(&shared, &conn, sid, &p);
            end_stream(&shared, &conn, sid);
        });
    if let Err(e) = spawned {
        eprintln!("error: cannot start a stream thread: {e}");
    }
}

fn head(conn: &H2Conn, sid: u32, status: u16, end: bool) -> bool {
    let status = status.to_string();
    let fields: [(&[u8], &[u8]); 2] = [
        (b":status", status.as_bytes()),
        (b"content-type", b"text/plain"),
    ];
    let block = lock(&conn.encoder).encode(fields);
    conn.send_on(sid, &Frame::headers(sid, block, end))
}

fn whole(conn: &H2Conn, sid: u32, status: u16, body: &str) {
    if head(conn, sid, status, false) {
        conn.send_on(sid, &Frame::data(sid, body.as_bytes(), true));
    }
}

/// Answers one stream, as `server::handle` answers an HTTP/1.1 request.
fn answer(shared: &Shared, conn: &H2Conn, sid: u32, p: &Pending) {
    let config = &shared.config;
    let phase = shared.phase();
    if phase >= Phase::Closed && config.has(Fault::H2Status503) {
        whole(conn, sid, 503, "shutting down");
        return;
    }
    let (path, query) = split_target(&p.target);
    let number = |key: &str| query.get(key).and_then(|v| v.parse::<u64>().ok());
    match (p.method.as_str(), path) {
        ("GET", "/sleep") => {
            let Some(ms) = number("ms") else {
                return whole(conn, sid, 400, "ms expected");
            };
            thread::sleep(Duration::from_millis(ms));
            whole(conn, sid, 200, &format!("slept {ms}"));
        }
        ("GET", "/stream") => {
            let (Some(chunks), Some(ms)) = (number("chunks"), number("ms")) else {
                return whole(conn, sid, 400, "chunks and ms expected");
            };
            if !head(conn, sid, 200, false) {
                return;
            }
            for i in 0..chunks {
                if i > 0 {
                    thread::sleep(Duration::from_millis(ms));
                }
                let line = format!("chunk {i}\n");
                if !conn.send_on(sid, &Frame::data(sid, line.as_bytes(), false)) {
                    return;
                }
            }
            conn.send_on(sid, &Frame::data(sid, b"", true));
        }
        ("GET", "/health/ready") => {
            if phase == Phase::Serving || config.has(Fault::Ready200) {
                whole(conn, sid, 200, "ready");
            } else {
                whole(conn, sid, 503, "not ready");
            }
        }
        ("GET", "/health/live") if !config.has(Fault::NoLive) => whole(conn, sid, 200, "live"),
        ("POST", "/orders") => order(shared, conn, sid, &query, &p.body),
        _ => whole(conn, sid, 404, "not found"),
    }
}

fn order(shared: &Shared, conn: &H2Conn, sid: u32, query: &HashMap<&str, &str>, body: &[u8]) {
    if shared.config.store.is_none() {
        return whole(conn, sid, 404, "no store");
    }
    let Some(ms) = query.get("ms").and_then(|v| v.parse::<u64>().ok()) else {
        return whole(conn, sid, 400, "ms expected");
    };
    let id = String::from_utf8_lossy(body).trim().to_owned();
    if id.is_empty() {
        return whole(conn, sid, 400, "order id expected");
    }
    thread::sleep(Duration::from_millis(ms / 2));
    let stored = if shared.config.has(Fault::SkipCommit) {
        Ok(true)
    } else {
        crate::server::insert(shared, &id)
    };
    thread::sleep(Duration::from_millis(ms - ms / 2));
    match stored {
        Ok(true) => whole(conn, sid, 201, &format!("stored {id}")),
        Ok(false) => whole(conn, sid, 409, &format!("already stored {id}")),
        Err(e) => {
            eprintln!("storing order {id}: {e}");
            whole(conn, sid, 500, "store failed");
        }
    }
}
