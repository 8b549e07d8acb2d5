//! A small blocking HTTP/2 client, frame by frame, over a std `TcpStream`.
//!
//! The kit needs to see what a high-level client hides: the last stream id
//! of each GOAWAY, the PING the server sends with it, RST_STREAM codes, and
//! the moment the server closes the connection. It also needs to misbehave
//! on purpose: never answer a PING, never finish the connection preface.
//! So this module speaks HTTP/2 with prior knowledge (h2c) itself: a frame
//! reader and writer ([`Frame`]), and a [`Client`] whose reader thread
//! records every frame with the time it arrived. Header blocks are coded
//! with `fluke-hpack`.
//!
//! The fake target uses the same frame code for its own HTTP/2 side.

use std::collections::HashMap;
use std::fmt::{self, Display};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

/// The client connection preface (RFC 9113, section 3.4).
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The largest stream id, the last stream id of a first, announcing GOAWAY.
pub const MAX_STREAM_ID: u32 = (1 << 31) - 1;

/// Frame types used here.
pub mod kind {
    /// DATA.
    pub const DATA: u8 = 0x0;
    /// HEADERS.
    pub const HEADERS: u8 = 0x1;
    /// RST_STREAM.
    pub const RST_STREAM: u8 = 0x3;
    /// SETTINGS.
    pub const SETTINGS: u8 = 0x4;
    /// PING.
    pub const PING: u8 = 0x6;
    /// GOAWAY.
    pub const GOAWAY: u8 = 0x7;
    /// WINDOW_UPDATE.
    pub const WINDOW_UPDATE: u8 = 0x8;
    /// CONTINUATION.
    pub const CONTINUATION: u8 = 0x9;
}

/// Frame flags used here.
pub mod flag {
    /// END_STREAM (DATA, HEADERS).
    pub const END_STREAM: u8 = 0x1;
    /// ACK (SETTINGS, PING).
    pub const ACK: u8 = 0x1;
    /// END_HEADERS (HEADERS, CONTINUATION).
    pub const END_HEADERS: u8 = 0x4;
    /// PADDED (DATA, HEADERS).
    pub const PADDED: u8 = 0x8;
    /// PRIORITY (HEADERS).
    pub const PRIORITY: u8 = 0x20;
}

/// Error codes used here.
pub mod code {
    /// NO_ERROR: a graceful shutdown.
    pub const NO_ERROR: u32 = 0x0;
    /// CANCEL: the stream is no longer needed.
    pub const CANCEL: u32 = 0x8;
}

/// The name of an error code, for messages.
pub fn code_name(code: u32) -> String {
    let name = match code {
        0x0 => "NO_ERROR",
        0x1 => "PROTOCOL_ERROR",
        0x2 => "INTERNAL_ERROR",
        0x3 => "FLOW_CONTROL_ERROR",
        0x5 => "STREAM_CLOSED",
        0x7 => "REFUSED_STREAM",
        0x8 => "CANCEL",
        0xb => "ENHANCE_YOUR_CALM",
        _ => return format!("error code {code:#x}"),
    };
    name.to_owned()
}

/// The largest frame payload this module reads (the protocol's default
/// SETTINGS_MAX_FRAME_SIZE).
const MAX_FRAME: usize = 16_384;

/// One HTTP/2 frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The frame type ([`kind`]).
    pub kind: u8,
    /// The flags ([`flag`]).
    pub flags: u8,
    /// The stream id (0 for the connection).
    pub stream: u32,
    /// The payload.
    pub payload: Vec<u8>,
}

impl Frame {
    /// A frame of `kind` with `flags` on `stream`.
    pub fn new(kind: u8, flags: u8, stream: u32, payload: Vec<u8>) -> Self {
        Self {
            kind,
            flags,
            stream,
            payload,
        }
    }

    /// An empty SETTINGS frame, or its acknowledgement.
    pub fn settings(ack: bool) -> Self {
        Self::new(
            kind::SETTINGS,
            if ack { flag::ACK } else { 0 },
            0,
            Vec::new(),
        )
    }

    /// A PING, or its answer.
    pub fn ping(ack: bool, data: [u8; 8]) -> Self {
        Self::new(
            kind::PING,
            if ack { flag::ACK } else { 0 },
            0,
            data.to_vec(),
        )
    }

    /// A GOAWAY with `last` stream id and error `code`.
    pub fn goaway(last: u32, code: u32) -> Self {
        let mut payload = last.to_be_bytes().to_vec();
        payload.extend_from_slice(&code.to_be_bytes());
        Self::new(kind::GOAWAY, 0, 0, payload)
    }

    /// A RST_STREAM of `stream` with error `code`.
    pub fn rst(stream: u32, code: u32) -> Self {
        Self::new(kind::RST_STREAM, 0, stream, code.to_be_bytes().to_vec())
    }

    /// A WINDOW_UPDATE of `stream` (0: the connection) by `increment`.
    pub fn window_update(stream: u32, increment: u32) -> Self {
        Self::new(
            kind::WINDOW_UPDATE,
            0,
            stream,
            increment.to_be_bytes().to_vec(),
        )
    }

    /// A HEADERS frame carrying a whole header block.
    pub fn headers(stream: u32, block: Vec<u8>, end_stream: bool) -> Self {
        let end = if end_stream { flag::END_STREAM } else { 0 };
        Self::new(kind::HEADERS, flag::END_HEADERS | end, stream, block)
    }

    /// A DATA frame.
    pub fn data(stream: u32, bytes: &[u8], end_stream: bool) -> Self {
        let end = if end_stream { flag::END_STREAM } else { 0 };
        Self::new(kind::DATA, end, stream, bytes.to_vec())
    }

    /// Whether `f` is set.
    pub fn has(&self, f: u8) -> bool {
        self.flags & f != 0
    }

    /// The frame on the wire.
    pub fn encode(&self) -> Vec<u8> {
        let len = self.payload.len();
        let mut out = Vec::with_capacity(9 + len);
        out.extend_from_slice(&[(len >> 16) as u8, (len >> 8) as u8, len as u8]);
        out.push(self.kind);
        out.push(self.flags);
        out.extend_from_slice(&(self.stream & MAX_STREAM_ID).to_be_bytes());
        out.extend_from_slice(&self.payload);
        out
    }

    /// Writes the frame in one `write_all`.
    pub fn write_to(&self, w: &mut impl Write) -> io::Result<()> {
        w.write_all(&self.encode())
    }

    /// Reads one frame; `Ok(None)` at a clean end of stream before its
    /// first byte.
    pub fn read_from(r: &mut impl Read) -> io::Result<Option<Self>> {
        let mut head = [0u8; 9];
        let mut got = 0;
        while got < head.len() {
            match r.read(&mut head[got..])? {
                0 if got == 0 => return Ok(None),
                0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                n => got += n,
            }
        }
        let len = (usize::from(head[0]) << 16) | (usize::from(head[1]) << 8) | usize::from(head[2]);
        if len > MAX_FRAME {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "a frame of {len} bytes (bytes {:?}: not HTTP/2?)",
                    String::from_utf8_lossy(&head)
                ),
            ));
        }
        let mut payload = vec![0u8; len];
        r.read_exact(&mut payload)?;
        let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & MAX_STREAM_ID;
        Ok(Some(Self::new(head[3], head[4], stream, payload)))
    }

    /// A GOAWAY's last stream id and error code.
    pub fn goaway_fields(&self) -> Option<(u32, u32)> {
        if self.kind != kind::GOAWAY || self.payload.len() < 8 {
            return None;
        }
        let p = &self.payload;
        let last = u32::from_be_bytes([p[0], p[1], p[2], p[3]]) & MAX_STREAM_ID;
        Some((last, u32::from_be_bytes([p[4], p[5], p[6], p[7]])))
    }

    /// A RST_STREAM's error code.
    pub fn rst_code(&self) -> Option<u32> {
        if self.kind != kind::RST_STREAM || self.payload.len() < 4 {
            return None;
        }
        let p = &self.payload;
        Some(u32::from_be_bytes([p[0], p[1], p[2], p[3]]))
    }

    /// A PING's 8 bytes.
    pub fn ping_data(&self) -> Option<[u8; 8]> {
        if self.kind != kind::PING {
            return None;
        }
        self.payload.as_slice().try_into().ok()
    }

    /// The part of a HEADERS or DATA payload without padding and priority;
    /// `None` when the padding does not fit.
    pub fn content(&self) -> Option<&[u8]> {
        let mut p = self.payload.as_slice();
        let mut pad = 0;
        if self.has(flag::PADDED) && (self.kind == kind::DATA || self.kind == kind::HEADERS) {
            pad = usize::from(*p.first()?);
            p = &p[1..];
        }
        if self.kind == kind::HEADERS && self.has(flag::PRIORITY) {
            p = p.get(5..)?;
        }
        p.get(..p.len().checked_sub(pad)?)
    }
}

/// Something the client's reader thread saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// A whole header block of a stream (HEADERS and its CONTINUATIONs).
    Headers {
        /// The stream.
        stream: u32,
        /// The decoded fields, pseudo-headers included.
        fields: Vec<(String, String)>,
        /// Whether END_STREAM was set.
        end_stream: bool,
    },
    /// A DATA frame.
    Data {
        /// The stream.
        stream: u32,
        /// The data, without padding.
        bytes: Vec<u8>,
        /// Whether END_STREAM was set.
        end_stream: bool,
    },
    /// A RST_STREAM.
    Reset {
        /// The stream.
        stream: u32,
        /// The error code.
        code: u32,
    },
    /// A GOAWAY.
    GoAway {
        /// The last stream id.
        last: u32,
        /// The error code.
        code: u32,
    },
    /// A PING from the server (not an answer).
    Ping([u8; 8]),
    /// Any other frame (SETTINGS, WINDOW_UPDATE, PING answers...).
    Other(u8),
    /// The server closed the connection (end of stream or reset).
    Closed(String),
}

/// What the kit does when the server sends a PING.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pings {
    /// Answer at once.
    Answer,
    /// Never answer (rule 15's client that never answers).
    Ignore,
    /// Keep them; the scenario answers with [`Client::answer_pings`].
    Hold,
}

#[derive(Debug, Default)]
struct Log {
    seen: Vec<(Seen, Instant)>,
    held_pings: Vec<[u8; 8]>,
    closed: bool,
}

#[derive(Debug)]
struct Inner {
    log: Mutex<Log>,
    changed: Condvar,
    writer: Mutex<TcpStream>,
    answer: Mutex<Pings>,
    done: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Inner {
    fn record(&self, seen: Seen) {
        let mut log = lock(&self.log);
        if matches!(seen, Seen::Closed(_)) {
            log.closed = true;
        }
        log.seen.push((seen, Instant::now()));
        self.changed.notify_all();
    }

    fn send(&self, frame: &Frame) -> io::Result<()> {
        frame.write_to(&mut *lock(&self.writer))
    }
}

/// A whole (or cut) response on one stream.
#[derive(Debug, Clone, Default)]
pub struct Response {
    /// The `:status`, once the header block has come.
    pub status: Option<u16>,
    /// The other response fields.
    pub fields: Vec<(String, String)>,
    /// The body received so far.
    pub body: Vec<u8>,
    /// When END_STREAM arrived.
    pub ended: Option<Instant>,
    /// The RST_STREAM code and when it arrived.
    pub reset: Option<(u32, Instant)>,
}

impl Response {
    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Whether the response is whole: a status and END_STREAM, no reset.
    pub fn complete(&self) -> bool {
        self.status.is_some() && self.ended.is_some() && self.reset.is_none()
    }
}

impl Display for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status {
            Some(s) => write!(f, "{s} {:?}", self.text())?,
            None => f.write_str("no response head")?,
        }
        if let Some((code, _)) = self.reset {
            write!(f, ", reset with {}", code_name(code))?;
        } else if self.ended.is_none() {
            f.write_str(", not ended")?;
        }
        Ok(())
    }
}

/// One HTTP/2 connection of the kit.
pub struct Client {
    inner: Arc<Inner>,
    encoder: fluke_hpack::Encoder<'static>,
    next_stream: u32,
    reader: Option<thread::JoinHandle<()>>,
}

impl Client {
    /// Connects, sends the preface and SETTINGS (with a large window), and
    /// waits for the server's SETTINGS: an error naming rule 11 when the
    /// server does not speak HTTP/2 with prior knowledge.
    pub fn connect(addr: SocketAddr, pings: Pings, timeout: Duration) -> Result<Self, String> {
        let stream = TcpStream::connect_timeout(&addr, timeout)
            .map_err(|e| format!("HTTP/2 connect to {addr}: {e}"))?;
        let _ = stream.set_nodelay(true);
        let mut writer = stream
            .try_clone()
            .map_err(|e| format!("socket clone: {e}"))?;
        let mut hello = PREFACE.to_vec();
        // SETTINGS_INITIAL_WINDOW_SIZE = 2^31 - 1: the server never waits
        // for a WINDOW_UPDATE on a stream.
        let mut settings = Frame::settings(false);
        settings.payload = [0x00, 0x04, 0x7f, 0xff, 0xff, 0xff].to_vec();
        hello.extend_from_slice(&settings.encode());
        hello.extend_from_slice(&Frame::window_update(0, MAX_STREAM_ID - 65_535).encode());
        writer
            .write_all(&hello)
            .map_err(|e| format!("sending the HTTP/2 preface: {e}"))?;
        let inner = Arc::new(Inner {
            log: Mutex::new(Log::default()),
            changed: Condvar::new(),
            writer: Mutex::new(writer),
            answer: Mutex::new(pings),
            done: AtomicBool::new(false),
        });
        let mut first = [0u8; 9];
        let mut reader = stream;
        let _ = reader.set_read_timeout(Some(timeout));
        reader.read_exact(&mut first).map_err(|e| {
            format!("no answer to the HTTP/2 connection preface ({e}): the target does not serve HTTP/2 with prior knowledge (rule 11)")
        })?;
        if first.starts_with(b"HTTP/") {
            return Err(format!(
                "the target answered the HTTP/2 connection preface with HTTP/1 ({:?}): it does not serve HTTP/2 with prior knowledge (rule 11)",
                String::from_utf8_lossy(&first)
            ));
        }
        if first[3] != kind::SETTINGS {
            return Err(format!(
                "the target's first HTTP/2 frame is of type {:#x}, not SETTINGS (rule 11)",
                first[3]
            ));
        }
        let _ = reader.set_read_timeout(None);
        let mut chained = first.as_slice().chain(reader);
        let first_frame = Frame::read_from(&mut chained)
            .map_err(|e| format!("reading the server's SETTINGS: {e}"))?;
        let (_, reader) = chained.into_inner();
        let thread_inner = Arc::clone(&inner);
        let handle = thread::Builder::new()
            .name("h2-client".into())
            .spawn(move || read_loop(&thread_inner, reader, first_frame))
            .map_err(|e| format!("cannot start a reader thread: {e}"))?;
        Ok(Self {
            inner,
            encoder: fluke_hpack::Encoder::new(),
            next_stream: 1,
            reader: Some(handle),
        })
    }

    /// Opens a stream: `method` on `path`, with `body` as one DATA frame if
    /// given. Returns the stream id.
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<u32, String> {
        let id = self.next_stream;
        self.next_stream += 2;
        let fields: [(&[u8], &[u8]); 4] = [
            (b":method", method.as_bytes()),
            (b":scheme", b"http"),
            (b":path", path.as_bytes()),
            (b":authority", b"127.0.0.1"),
        ];
        let block = self.encoder.encode(fields);
        let mut bytes = Frame::headers(id, block, body.is_none()).encode();
        if let Some(body) = body {
            bytes.extend_from_slice(&Frame::data(id, body, true).encode());
        }
        lock(&self.inner.writer)
            .write_all(&bytes)
            .map_err(|e| format!("sending stream {id} ({method} {path}): {e}"))?;
        Ok(id)
    }

    /// A GET stream.
    pub fn get(&mut self, path: &str) -> Result<u32, String> {
        self.request("GET", path, None)
    }

    /// Sends a frame as it is.
    pub fn send(&self, frame: &Frame) -> Result<(), String> {
        self.inner
            .send(frame)
            .map_err(|e| format!("sending a frame: {e}"))
    }

    /// Answers the PINGs held so far, and from now on every PING at once.
    pub fn answer_pings(&self) -> Result<(), String> {
        *lock(&self.inner.answer) = Pings::Answer;
        let held = std::mem::take(&mut lock(&self.inner.log).held_pings);
        for data in held {
            self.send(&Frame::ping(true, data))?;
        }
        Ok(())
    }

    /// Everything seen so far, with arrival times.
    pub fn seen(&self) -> Vec<(Seen, Instant)> {
        lock(&self.inner.log).seen.clone()
    }

    /// Waits until something matching `pred` has been seen (at any time so
    /// far), at most `timeout`.
    pub fn wait(&self, timeout: Duration, pred: impl Fn(&Seen) -> bool) -> Option<(Seen, Instant)> {
        let until = Instant::now() + timeout;
        let mut log = lock(&self.inner.log);
        loop {
            if let Some(hit) = log.seen.iter().find(|(s, _)| pred(s)) {
                return Some(hit.clone());
            }
            let now = Instant::now();
            if now >= until {
                return None;
            }
            log = self
                .inner
                .changed
                .wait_timeout(log, until - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// What arrived from `since` on, frame by frame, for failure messages:
    /// `HEADERS 1, DATA 1 (10 bytes, END_STREAM), GOAWAY 0 NO_ERROR, closed`.
    pub fn describe_since(&self, since: Instant) -> String {
        let seen = self.seen();
        let items: Vec<String> = seen
            .iter()
            .filter(|(_, at)| *at >= since)
            .filter_map(|(s, _)| match s {
                Seen::Headers {
                    stream, end_stream, ..
                } => Some(format!(
                    "HEADERS {stream}{}",
                    if *end_stream { " END_STREAM" } else { "" }
                )),
                Seen::Data {
                    stream,
                    bytes,
                    end_stream,
                } => Some(format!(
                    "DATA {stream} ({} bytes{})",
                    bytes.len(),
                    if *end_stream { ", END_STREAM" } else { "" }
                )),
                Seen::Reset { stream, code } => {
                    Some(format!("RST_STREAM {stream} {}", code_name(*code)))
                }
                Seen::GoAway { last, code } => Some(format!("GOAWAY {last} {}", code_name(*code))),
                Seen::Ping(_) => Some("PING".to_owned()),
                Seen::Other(_) => None,
                Seen::Closed(why) => Some(format!("closed ({why})")),
            })
            .collect();
        if items.is_empty() {
            "nothing".to_owned()
        } else {
            items.join(", ")
        }
    }

    /// The GOAWAYs seen so far: last stream id, code, arrival.
    pub fn goaways(&self) -> Vec<(u32, u32, Instant)> {
        lock(&self.inner.log)
            .seen
            .iter()
            .filter_map(|(s, at)| match s {
                Seen::GoAway { last, code } => Some((*last, *code, *at)),
                _ => None,
            })
            .collect()
    }

    /// Waits for the `n`th GOAWAY (from 1).
    pub fn wait_goaway(&self, n: usize, timeout: Duration) -> Option<(u32, u32, Instant)> {
        let until = Instant::now() + timeout;
        loop {
            let g = self.goaways();
            if g.len() >= n {
                return Some(g[n - 1]);
            }
            if Instant::now() >= until {
                return None;
            }
            self.wait_change(until);
        }
    }

    fn wait_change(&self, until: Instant) {
        let log = lock(&self.inner.log);
        let before = log.seen.len();
        let now = Instant::now();
        if now < until {
            let _ = self
                .inner
                .changed
                .wait_timeout_while(log, until - now, |l| l.seen.len() == before);
        }
    }

    /// When the server closed the connection, waiting at most `timeout`.
    pub fn wait_closed(&self, timeout: Duration) -> Option<Instant> {
        self.wait(timeout, |s| matches!(s, Seen::Closed(_)))
            .map(|(_, at)| at)
    }

    /// The response on `stream` so far.
    pub fn response(&self, stream: u32) -> Response {
        let log = lock(&self.inner.log);
        response_of(&log.seen, stream)
    }

    /// Waits until the response on `stream` has ended (END_STREAM, a reset
    /// or the connection's close), at most `timeout`; returns it as it is.
    pub fn wait_response(&self, stream: u32, timeout: Duration) -> Response {
        self.wait(timeout, |s| match s {
            Seen::Headers {
                stream: id,
                end_stream: true,
                ..
            }
            | Seen::Data {
                stream: id,
                end_stream: true,
                ..
            }
            | Seen::Reset { stream: id, .. } => *id == stream,
            Seen::Closed(_) => true,
            _ => false,
        });
        self.response(stream)
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("next_stream", &self.next_stream)
            .finish_non_exhaustive()
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.inner.done.store(true, Ordering::SeqCst);
        let _ = lock(&self.inner.writer).shutdown(Shutdown::Both);
        if let Some(h) = self.reader.take() {
            let _ = h.join();
        }
    }
}

fn response_of(seen: &[(Seen, Instant)], stream: u32) -> Response {
    let mut r = Response::default();
    for (s, at) in seen {
        match s {
            Seen::Headers {
                stream: id,
                fields,
                end_stream,
            } if *id == stream => {
                for (name, value) in fields {
                    if name == ":status" {
                        r.status = value.parse().ok();
                    } else {
                        r.fields.push((name.clone(), value.clone()));
                    }
                }
                if *end_stream {
                    r.ended = Some(*at);
                }
            }
            Seen::Data {
                stream: id,
                bytes,
                end_stream,
            } if *id == stream => {
                r.body.extend_from_slice(bytes);
                if *end_stream {
                    r.ended = Some(*at);
                }
            }
            Seen::Reset { stream: id, code } if *id == stream => r.reset = Some((*code, *at)),
            _ => {}
        }
    }
    r
}

fn read_loop(inner: &Inner, mut reader: impl Read, first: Option<Frame>) {
    let mut decoder = fluke_hpack::Decoder::new();
    let mut block: Option<(u32, bool, Vec<u8>)> = None;
    let mut next = first;
    loop {
        let frame = match next.take() {
            Some(f) => f,
            None => match Frame::read_from(&mut reader) {
                Ok(Some(f)) => f,
                Ok(None) => {
                    inner.record(Seen::Closed("end of stream".into()));
                    return;
                }
                Err(e) => {
                    if !inner.done.load(Ordering::SeqCst) {
                        inner.record(Seen::Closed(e.to_string()));
                    }
                    return;
                }
            },
        };
        match frame.kind {
            kind::HEADERS | kind::CONTINUATION => {
                let content = frame.content().unwrap_or_default().to_vec();
                let acc = match (&mut block, frame.kind) {
                    (Some((_, _, acc)), kind::CONTINUATION) => {
                        acc.extend_from_slice(&content);
                        block.take()
                    }
                    _ => Some((frame.stream, frame.has(flag::END_STREAM), content)),
                };
                let Some((stream, end_stream, bytes)) = acc else {
                    continue;
                };
                if !frame.has(flag::END_HEADERS) {
                    block = Some((stream, end_stream, bytes));
                    continue;
                }
                let fields = match decoder.decode(&bytes) {
                    Ok(f) => f
                        .into_iter()
                        .map(|(n, v)| {
                            (
                                String::from_utf8_lossy(&n).into_owned(),
                                String::from_utf8_lossy(&v).into_owned(),
                            )
                        })
                        .collect(),
                    Err(e) => {
                        inner.record(Seen::Closed(format!("bad header block: {e:?}")));
                        return;
                    }
                };
                inner.record(Seen::Headers {
                    stream,
                    fields,
                    end_stream,
                });
            }
            kind::DATA => inner.record(Seen::Data {
                stream: frame.stream,
                bytes: frame.content().unwrap_or_default().to_vec(),
                end_stream: frame.has(flag::END_STREAM),
            }),
            kind::RST_STREAM => inner.record(Seen::Reset {
                stream: frame.stream,
                code: frame.rst_code().unwrap_or(u32::MAX),
            }),
            kind::GOAWAY => {
                let (last, code) = frame.goaway_fields().unwrap_or((0, u32::MAX));
                inner.record(Seen::GoAway { last, code });
            }
            kind::PING if !frame.has(flag::ACK) => {
                let data = frame.ping_data().unwrap_or_default();
                inner.record(Seen::Ping(data));
                let answer = *lock(&inner.answer);
                match answer {
                    Pings::Answer => {
                        let _ = inner.send(&Frame::ping(true, data));
                    }
                    Pings::Hold => lock(&inner.log).held_pings.push(data),
                    Pings::Ignore => {}
                }
            }
            kind::SETTINGS if !frame.has(flag::ACK) => {
                let _ = inner.send(&Frame::settings(true));
                inner.record(Seen::Other(frame.kind));
            }
            other => inner.record(Seen::Other(other)),
        }
    }
}

/// Parses `/path?a=1&b=2` into the path and its query.
pub fn split_target(target: &str) -> (&str, HashMap<&str, &str>) {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let query = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .collect();
    (path, query)
}

/// One request on a fresh HTTP/2 connection over any stream (a TLS one,
/// say), without a reader thread: sends the preface, SETTINGS and the
/// request on stream 1, and reads frames until its response ends.
pub fn exchange_once(
    io: &mut (impl Read + Write),
    method: &str,
    path: &str,
) -> Result<Response, String> {
    let mut out = PREFACE.to_vec();
    out.extend_from_slice(&Frame::settings(false).encode());
    let fields: [(&[u8], &[u8]); 4] = [
        (b":method", method.as_bytes()),
        (b":scheme", b"https"),
        (b":path", path.as_bytes()),
        (b":authority", b"localhost"),
    ];
    let block = fluke_hpack::Encoder::new().encode(fields);
    out.extend_from_slice(&Frame::headers(1, block, true).encode());
    io.write_all(&out)
        .and_then(|()| io.flush())
        .map_err(|e| format!("sending an HTTP/2 request: {e}"))?;
    let mut decoder = fluke_hpack::Decoder::new();
    let mut seen = Vec::new();
    loop {
        let frame = match Frame::read_from(io) {
            Ok(Some(f)) => f,
            Ok(None) => return Err("the connection ended before the HTTP/2 response did".into()),
            Err(e) => return Err(format!("reading HTTP/2 frames: {e}")),
        };
        let now = Instant::now();
        match frame.kind {
            kind::SETTINGS if !frame.has(flag::ACK) => {
                Frame::settings(true)
                    .write_to(io)
                    .and_then(|()| io.flush())
                    .map_err(|e| format!("acknowledging SETTINGS: {e}"))?;
            }
            kind::HEADERS if frame.stream == 1 => {
                if !frame.has(flag::END_HEADERS) {
                    return Err("a response header block in several frames".into());
                }
                let fields = decoder
                    .decode(frame.content().unwrap_or_default())
                    .map_err(|e| format!("bad header block: {e:?}"))?
                    .into_iter()
                    .map(|(n, v)| {
                        (
                            String::from_utf8_lossy(&n).into_owned(),
                            String::from_utf8_lossy(&v).into_owned(),
                        )
                    })
                    .collect();
                let end_stream = frame.has(flag::END_STREAM);
                seen.push((
                    Seen::Headers {
                        stream: 1,
                        fields,
                        end_stream,
                    },
                    now,
                ));
            }
            kind::DATA if frame.stream == 1 => seen.push((
                Seen::Data {
                    stream: 1,
                    bytes: frame.content().unwrap_or_default().to_vec(),
                    end_stream: frame.has(flag::END_STREAM),
                },
                now,
            )),
            kind::RST_STREAM if frame.stream == 1 => seen.push((
                Seen::Reset {
                    stream: 1,
                    code: frame.rst_code().unwrap_or(u32::MAX),
                },
                now,
            )),
            kind::GOAWAY => return Err("GOAWAY before the HTTP/2 response ended".into()),
            _ => {}
        }
        let r = response_of(&seen, 1);
        if r.ended.is_some() || r.reset.is_some() {
            return Ok(r);
        }
    }
}

/// After [`exchange_once`]: reads on, answering PINGs and SETTINGS, until
/// the server ends the connection. `Ok(())` for a clean end of stream
/// (over TLS: after a `close_notify`); the read error otherwise.
pub fn read_until_close(io: &mut (impl Read + Write)) -> io::Result<()> {
    loop {
        let Some(frame) = Frame::read_from(io)? else {
            return Ok(());
        };
        let answer = match frame.kind {
            kind::PING if !frame.has(flag::ACK) => {
                Some(Frame::ping(true, frame.ping_data().unwrap_or_default()))
            }
            kind::SETTINGS if !frame.has(flag::ACK) => Some(Frame::settings(true)),
            _ => None,
        };
        if let Some(answer) = answer {
            answer.write_to(io)?;
            io.flush()?;
        }
    }
}
