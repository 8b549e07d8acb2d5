//! A small blocking HTTP/1.1 client over `std::net::TcpStream`.
//!
//! It exists to tell apart what a graceful shutdown can do to a request,
//! which general-purpose clients blur: a complete response ([`Outcome::Response`],
//! with Content-Length, chunked or until-close bodies), a refused connect
//! ([`Outcome::Refused`]), a connection closed or reset before any byte of
//! the answer ([`Outcome::Closed`]), an answer cut short
//! ([`Outcome::Truncated`]), no answer in time ([`Outcome::TimedOut`]), and
//! an answer that is not HTTP/1.1 ([`Outcome::Malformed`]). A [`Conn`] keeps
//! its connection open across requests (keep-alive) and can send raw bytes,
//! such as half a request head. A body that does not end by itself (a
//! server-sent event stream) is read chunk by chunk, as it arrives, with
//! [`Conn::read_head`] and [`Conn::read_chunk`].
//!
//! The transport and that classification are written here, because they
//! are the kit's purpose; the syntax is not. Status lines, headers, chunk
//! sizes and trailers are parsed by `httparse`, the parser under hyper:
//! a stricter judge than a hand-written one for servers written in any
//! language, which must not pass the kit with an answer a real client
//! would refuse. `Content-Length` is held to the same standard: digits
//! only, and every copy of the header the same.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Largest response head (and chunk-size line, and trailer section) the
/// client accepts.
const MAX_HEAD: usize = 64 * 1024;
/// Most headers (or trailers) one response may carry.
const MAX_HEADERS: usize = 128;

/// A request to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `POST`, ...
    pub method: String,
    /// Path and query, e.g. `/sleep?ms=10`.
    pub target: String,
    /// Extra headers (`Host` and, with a body, `Content-Length` are added).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Request {
    /// A `GET` for `target`.
    pub fn get(target: impl Into<String>) -> Self {
        Self {
            method: "GET".into(),
            target: target.into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A `POST` of `body` to `target`.
    pub fn post(target: impl Into<String>, body: impl Into<Vec<u8>>) -> Self {
        Self {
            method: "POST".into(),
            target: target.into(),
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// Adds a header.
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The head alone (through the blank line).
    pub fn head_bytes(&self) -> Vec<u8> {
        let mut head = format!(
            "{} {} HTTP/1.1\r\nHost: 127.0.0.1\r\n",
            self.method, self.target
        );
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if !self.body.is_empty() || self.method == "POST" {
            head.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
        }
        head.push_str("\r\n");
        head.into_bytes()
    }

    /// The whole request on the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = self.head_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }
}

/// A response's status line and headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// The status code.
    pub status: u16,
    /// The reason phrase.
    pub reason: String,
    /// Headers in order of arrival.
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the response says `Connection: close`.
    pub fn connection_close(&self) -> bool {
        self.headers.iter().any(|(n, v)| {
            n.eq_ignore_ascii_case("connection")
                && v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close"))
        })
    }

    /// Whether the body is chunked (`Transfer-Encoding: chunked`).
    pub fn chunked(&self) -> bool {
        self.headers.iter().any(|(n, v)| {
            n.eq_ignore_ascii_case("transfer-encoding")
                && v.split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("chunked"))
        })
    }
}

/// A complete response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status line and headers.
    pub head: Head,
    /// The body (de-chunked).
    pub body: Vec<u8>,
    /// When the head had arrived.
    pub head_at: Instant,
    /// When the last byte of the body had arrived.
    pub done_at: Instant,
}

impl Response {
    /// The status code.
    pub fn status(&self) -> u16 {
        self.head.status
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// What became of a request (or a connect).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A whole response arrived.
    Response(Response),
    /// The connect was refused: nothing listens there.
    Refused,
    /// The connection ended before any byte of the answer arrived.
    Closed {
        /// `true` for a reset (RST), `false` for an orderly close (EOF).
        reset: bool,
    },
    /// Part of the answer arrived, then the connection ended.
    Truncated {
        /// The head, when it had arrived whole.
        head: Option<Head>,
        /// Bytes of the answer received (head included).
        received: usize,
    },
    /// No complete answer within the time allowed.
    TimedOut {
        /// Bytes of the answer received so far.
        received: usize,
    },
    /// The answer is not HTTP/1.1: a bad status line, header, length, chunk
    /// size or trailer. The reason says which.
    Malformed(String),
    /// Any other failure: an unexpected I/O error, a head larger than the
    /// client accepts.
    Failed(String),
}

impl Outcome {
    /// The response, if one arrived whole.
    pub fn response(&self) -> Option<&Response> {
        match self {
            Self::Response(r) => Some(r),
            _ => None,
        }
    }

    /// The status, if a whole response arrived.
    pub fn status(&self) -> Option<u16> {
        self.response().map(Response::status)
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Response(r) => write!(f, "{} {:?}", r.status(), r.text()),
            Self::Refused => f.write_str("connect refused"),
            Self::Closed { reset: true } => f.write_str("reset before any byte"),
            Self::Closed { reset: false } => f.write_str("closed before any byte"),
            Self::Truncated { head, received } => match head {
                Some(h) => write!(
                    f,
                    "truncated after the head ({} {received} bytes)",
                    h.status
                ),
                None => write!(f, "truncated inside the head ({received} bytes)"),
            },
            Self::TimedOut { received } => write!(f, "timed out ({received} bytes received)"),
            Self::Malformed(why) => write!(f, "malformed answer: {why}"),
            Self::Failed(why) => write!(f, "failed: {why}"),
        }
    }
}

/// How a connection looks when the client listens to it without sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// The server closed it (EOF).
    Closed,
    /// The server reset it.
    Reset,
    /// The server sent unexpected bytes.
    Sent(usize),
    /// Still open after the time allowed.
    Open,
}

/// Connects to `addr`; a refused connect is [`Outcome::Refused`].
pub fn connect(addr: SocketAddr, timeout: Duration) -> Result<Conn, Outcome> {
    match TcpStream::connect_timeout(&addr, timeout) {
        Ok(stream) => {
            let _ = stream.set_nodelay(true);
            Ok(Conn {
                stream,
                buf: Vec::new(),
            })
        }
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => Err(Outcome::Refused),
        Err(e) if e.kind() == io::ErrorKind::TimedOut => Err(Outcome::TimedOut { received: 0 }),
        Err(e) => Err(Outcome::Failed(format!("connect: {e}"))),
    }
}

/// One request on a fresh connection.
pub fn request(addr: SocketAddr, req: &Request, timeout: Duration) -> Outcome {
    match connect(addr, timeout) {
        Ok(mut conn) => conn.exchange(req, timeout),
        Err(outcome) => outcome,
    }
}

/// An open connection.
#[derive(Debug)]
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

enum Fill {
    Data,
    Eof,
    Reset,
    TimedOut,
    Error(io::Error),
}

fn is_reset(kind: io::ErrorKind) -> bool {
    matches!(
        kind,
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::NotConnected
    )
}

impl Conn {
    /// The underlying stream.
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Writes raw bytes (a partial head, the rest of a body, ...).
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Writes a whole request.
    pub fn send(&mut self, req: &Request) -> io::Result<()> {
        self.send_raw(&req.to_bytes())
    }

    /// Sends `req` and reads its response.
    pub fn exchange(&mut self, req: &Request, timeout: Duration) -> Outcome {
        if let Err(e) = self.send(req) {
            if is_reset(e.kind()) {
                return Outcome::Closed { reset: true };
            }
            return Outcome::Failed(format!("send: {e}"));
        }
        self.read_response(timeout)
    }

    fn fill(&mut self, deadline: Instant) -> Fill {
        let now = Instant::now();
        if now >= deadline {
            return Fill::TimedOut;
        }
        let wait = (deadline - now).max(Duration::from_millis(1));
        if let Err(e) = self.stream.set_read_timeout(Some(wait)) {
            return Fill::Error(e);
        }
        let mut chunk = [0u8; 16 * 1024];
        loop {
            return match self.stream.read(&mut chunk) {
                Ok(0) => Fill::Eof,
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    Fill::Data
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    Fill::TimedOut
                }
                Err(e) if is_reset(e.kind()) => Fill::Reset,
                Err(e) => Fill::Error(e),
            };
        }
    }

    /// Reads one response head and takes it from the buffer; the error is
    /// the outcome of a response that has no whole head.
    fn head(&mut self, deadline: Instant, received: &mut usize) -> Result<Head, Outcome> {
        let (head, head_end) = loop {
            match parse_head(&self.buf) {
                Ok(Some(parsed)) => break parsed,
                Ok(None) => {}
                Err(why) => return Err(Outcome::Malformed(why)),
            }
            if self.buf.len() > MAX_HEAD {
                return Err(Outcome::Failed("response head too large".into()));
            }
            let before = self.buf.len();
            match self.fill(deadline) {
                Fill::Data => *received += self.buf.len() - before,
                Fill::Eof if *received == 0 => return Err(Outcome::Closed { reset: false }),
                Fill::Reset if *received == 0 => return Err(Outcome::Closed { reset: true }),
                Fill::Eof | Fill::Reset => {
                    return Err(Outcome::Truncated {
                        head: None,
                        received: *received,
                    });
                }
                Fill::TimedOut => {
                    return Err(Outcome::TimedOut {
                        received: *received,
                    });
                }
                Fill::Error(e) => return Err(Outcome::Failed(format!("read: {e}"))),
            }
        };
        self.buf.drain(..head_end);
        Ok(head)
    }

    /// Reads one response head within `timeout` and leaves the body to be
    /// read, e.g. by [`Conn::read_chunk`] for a stream that does not end by
    /// itself. The error is what became of a response with no whole head.
    pub fn read_head(&mut self, timeout: Duration) -> Result<Head, Outcome> {
        let mut received = self.buf.len();
        self.head(Instant::now() + timeout, &mut received)
    }

    /// Reads the next chunk of a chunked body whose head
    /// [`Conn::read_head`] has read, waiting at most `timeout` for it. A
    /// time-out loses nothing: the next call goes on where this one stopped.
    pub fn read_chunk(&mut self, timeout: Duration) -> Chunk {
        let mut received = 0;
        match self.next_chunk(Instant::now() + timeout, &mut received) {
            Ok(Some(data)) => Chunk::Data(data),
            Ok(None) => Chunk::End,
            Err(BodyEnd::Cut) => Chunk::Cut,
            Err(BodyEnd::TimedOut) => Chunk::TimedOut,
            Err(BodyEnd::Malformed(why)) => Chunk::Malformed(why),
            Err(BodyEnd::Failed(why)) => Chunk::Failed(why),
        }
    }

    /// Reads one response within `timeout`.
    pub fn read_response(&mut self, timeout: Duration) -> Outcome {
        let deadline = Instant::now() + timeout;
        let mut received = self.buf.len();
        let head = match self.head(deadline, &mut received) {
            Ok(head) => head,
            Err(outcome) => return outcome,
        };
        let head_at = Instant::now();
        let no_body = head.status < 200 || head.status == 204 || head.status == 304;
        let body = if no_body {
            Ok(Vec::new())
        } else if head.chunked() {
            self.read_chunked(deadline, &mut received)
        } else {
            match content_length(&head) {
                Ok(Some(len)) => self.read_exact_body(len, deadline, &mut received),
                Ok(None) => self.read_to_close(deadline, &mut received),
                Err(why) => return Outcome::Malformed(why),
            }
        };
        match body {
            Ok(body) => Outcome::Response(Response {
                head,
                body,
                head_at,
                done_at: Instant::now(),
            }),
            Err(BodyEnd::Cut) => Outcome::Truncated {
                head: Some(head),
                received,
            },
            Err(BodyEnd::TimedOut) => Outcome::TimedOut { received },
            Err(BodyEnd::Malformed(why)) => Outcome::Malformed(why),
            Err(BodyEnd::Failed(why)) => Outcome::Failed(why),
        }
    }

    fn more(&mut self, deadline: Instant, received: &mut usize) -> Result<(), BodyEnd> {
        let before = self.buf.len();
        match self.fill(deadline) {
            Fill::Data => {
                *received += self.buf.len() - before;
                Ok(())
            }
            Fill::Eof | Fill::Reset => Err(BodyEnd::Cut),
            Fill::TimedOut => Err(BodyEnd::TimedOut),
            Fill::Error(e) => Err(BodyEnd::Failed(format!("read: {e}"))),
        }
    }

    fn read_exact_body(
        &mut self,
        len: usize,
        deadline: Instant,
        received: &mut usize,
    ) -> Result<Vec<u8>, BodyEnd> {
        while self.buf.len() < len {
            self.more(deadline, received)?;
        }
        Ok(self.buf.drain(..len).collect())
    }

    fn read_to_close(
        &mut self,
        deadline: Instant,
        received: &mut usize,
    ) -> Result<Vec<u8>, BodyEnd> {
        loop {
            let before = self.buf.len();
            match self.fill(deadline) {
                Fill::Data => *received += self.buf.len() - before,
                Fill::Eof => return Ok(std::mem::take(&mut self.buf)),
                Fill::Reset => return Err(BodyEnd::Cut),
                Fill::TimedOut => return Err(BodyEnd::TimedOut),
                Fill::Error(e) => return Err(BodyEnd::Failed(format!("read: {e}"))),
            }
        }
    }

    /// The next chunk of a chunked body: its data, or `None` for the last
    /// chunk (its trailers read). Nothing is taken from the buffer before
    /// the whole chunk is there, so that a time-out can be resumed.
    fn next_chunk(
        &mut self,
        deadline: Instant,
        received: &mut usize,
    ) -> Result<Option<Vec<u8>>, BodyEnd> {
        loop {
            match peek_chunk(&self.buf)? {
                Some((used, data)) => {
                    self.buf.drain(..used);
                    return Ok(data);
                }
                None => self.more(deadline, received)?,
            }
        }
    }

    fn read_chunked(
        &mut self,
        deadline: Instant,
        received: &mut usize,
    ) -> Result<Vec<u8>, BodyEnd> {
        let mut body = Vec::new();
        while let Some(data) = self.next_chunk(deadline, received)? {
            body.extend(data);
        }
        Ok(body)
    }

    /// Listens without sending for at most `timeout`: has the server closed
    /// the connection?
    pub fn wait_peer(&mut self, timeout: Duration) -> Peer {
        if !self.buf.is_empty() {
            return Peer::Sent(self.buf.len());
        }
        match self.fill(Instant::now() + timeout) {
            Fill::Data => Peer::Sent(self.buf.len()),
            Fill::Eof => Peer::Closed,
            Fill::Reset | Fill::Error(_) => Peer::Reset,
            Fill::TimedOut => Peer::Open,
        }
    }
}

enum BodyEnd {
    Cut,
    TimedOut,
    Malformed(String),
    Failed(String),
}

/// One step of a chunked body read as it arrives ([`Conn::read_chunk`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chunk {
    /// One chunk's data.
    Data(Vec<u8>),
    /// The last chunk and its trailers: the body ended cleanly.
    End,
    /// No whole chunk within the time allowed (nothing is lost).
    TimedOut,
    /// The connection ended inside the body.
    Cut,
    /// A bad chunk size, chunk end or trailer.
    Malformed(String),
    /// Any other failure.
    Failed(String),
}

/// The first line of `bytes`, at most 64 bytes of it, for an error.
fn first_line(bytes: &[u8]) -> String {
    let line = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    String::from_utf8_lossy(&line[..line.len().min(64)]).into_owned()
}

/// The chunk at the front of `buf`: how many bytes it takes, and its data
/// (`None` for the last chunk, trailers included); `None` while it is
/// incomplete.
type Peeked = Option<(usize, Option<Vec<u8>>)>;

fn peek_chunk(buf: &[u8]) -> Result<Peeked, BodyEnd> {
    // httparse reads a line with no digit at all as size 0.
    let parsed = match buf.first() {
        Some(b) if !b.is_ascii_hexdigit() => Err(httparse::InvalidChunkSize),
        _ => httparse::parse_chunk_size(buf),
    };
    let (line, size) = match parsed {
        Ok(httparse::Status::Complete(parsed)) => parsed,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => {
            return Err(BodyEnd::Malformed(format!(
                "chunk size over {MAX_HEAD} bytes"
            )));
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(error) => {
            return Err(BodyEnd::Malformed(format!(
                "bad chunk size {:?}: {error}",
                first_line(buf)
            )));
        }
    };
    let size = usize::try_from(size)
        .ok()
        .filter(|size| size.checked_add(line + 2).is_some())
        .ok_or_else(|| BodyEnd::Malformed(format!("chunk size {size} too large")))?;
    if size == 0 {
        // Trailers, up to the blank line.
        let rest = &buf[line..];
        let mut trailers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        return match httparse::parse_headers(rest, &mut trailers) {
            Ok(httparse::Status::Complete((used, _))) => Ok(Some((line + used, None))),
            Ok(httparse::Status::Partial) if rest.len() > MAX_HEAD => {
                Err(BodyEnd::Malformed(format!("trailer over {MAX_HEAD} bytes")))
            }
            Ok(httparse::Status::Partial) => Ok(None),
            Err(error) => Err(BodyEnd::Malformed(format!(
                "bad trailer {:?}: {error}",
                first_line(rest)
            ))),
        };
    }
    if buf.len() < line + size + 2 {
        return Ok(None);
    }
    if &buf[line + size..line + size + 2] != b"\r\n" {
        return Err(BodyEnd::Malformed("chunk not followed by CRLF".into()));
    }
    Ok(Some((
        line + size + 2,
        Some(buf[line..line + size].to_vec()),
    )))
}

/// The response head at the front of `bytes`, and its length in bytes;
/// `None` while it is incomplete.
fn parse_head(bytes: &[u8]) -> Result<Option<(Head, usize)>, String> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let len = match response.parse(bytes) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(error) => {
            let line = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
            let line = String::from_utf8_lossy(&line[..line.len().min(64)]);
            return Err(format!("bad response head ({error}), starting {line:?}"));
        }
    };
    // Complete: httparse has filled every field.
    let head = Head {
        status: response.code.unwrap_or_default(),
        reason: response.reason.unwrap_or_default().to_owned(),
        headers: response
            .headers
            .iter()
            .map(|header| {
                let value = String::from_utf8_lossy(header.value);
                (header.name.to_owned(), value.trim().to_owned())
            })
            .collect(),
    };
    Ok(Some((head, len)))
}

/// The body's length, when `Content-Length` gives it: digits only, and
/// every copy of the header the same.
fn content_length(head: &Head) -> Result<Option<usize>, String> {
    let mut length = None;
    for (_, value) in head
        .headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("content-length"))
    {
        let parsed = Some(value)
            .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|v| v.parse::<usize>().ok())
            .ok_or_else(|| format!("bad Content-Length {value:?}"))?;
        if length.is_some_and(|length| length != parsed) {
            return Err("Content-Length given twice, differently".to_owned());
        }
        length = Some(parsed);
    }
    Ok(length)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Shutdown, TcpListener};
    use std::thread;

    /// A one-connection server that reads one request head, writes `answer`
    /// and closes.
    fn serve_once(answer: &'static [u8]) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut got = Vec::new();
            let mut b = [0u8; 1024];
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = s.read(&mut b).unwrap();
                if n == 0 {
                    return;
                }
                got.extend_from_slice(&b[..n]);
            }
            s.write_all(answer).unwrap();
            s.shutdown(Shutdown::Both).ok();
        });
        addr
    }

    const T: Duration = Duration::from_secs(5);

    #[test]
    fn complete_response_with_content_length() {
        let addr = serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nX: y\r\n\r\nlive");
        let out = request(addr, &Request::get("/health/live"), T);
        let r = out.response().expect("response");
        assert_eq!(r.status(), 200);
        assert_eq!(r.text(), "live");
        assert_eq!(r.head.header("x"), Some("y"));
        assert!(!r.head.connection_close());
    }

    #[test]
    fn chunked_body_is_decoded() {
        let addr = serve_once(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n8\r\nchunk 0\n\r\n8;x=1\r\nchunk 1\n\r\n0\r\n\r\n");
        let out = request(addr, &Request::get("/stream"), T);
        let r = out.response().expect("response");
        assert_eq!(r.text(), "chunk 0\nchunk 1\n");
        assert!(r.head.connection_close());
    }

    #[test]
    fn body_until_close() {
        let addr = serve_once(b"HTTP/1.1 200 OK\r\n\r\nall of it");
        assert_eq!(
            request(addr, &Request::get("/"), T)
                .response()
                .unwrap()
                .text(),
            "all of it"
        );
    }

    #[test]
    fn refused_connect() {
        let addr = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        // The listener is dropped: nothing listens on that port any more.
        assert_eq!(request(addr, &Request::get("/"), T), Outcome::Refused);
    }

    #[test]
    fn closed_before_any_byte() {
        let addr = serve_once(b"");
        assert_eq!(
            request(addr, &Request::get("/"), T),
            Outcome::Closed { reset: false }
        );
    }

    #[test]
    fn reset_before_any_byte() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        thread::spawn(move || {
            let (s, _) = listener.accept().unwrap();
            // Wait for the request so that it sits unread: closing a socket
            // with unread data makes the kernel reset the connection.
            thread::sleep(Duration::from_millis(200));
            drop(s);
        });
        assert_eq!(
            request(addr, &Request::get("/"), T),
            Outcome::Closed { reset: true }
        );
    }

    #[test]
    fn truncated_body_and_truncated_head() {
        let addr = serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
        match request(addr, &Request::get("/"), T) {
            Outcome::Truncated {
                head: Some(h),
                received,
            } => {
                assert_eq!(h.status, 200);
                assert!(received > 3);
            }
            other => panic!("{other:?}"),
        }
        let addr =
            serve_once(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n8\r\nchunk 0\n\r\n");
        assert!(matches!(
            request(addr, &Request::get("/"), T),
            Outcome::Truncated { head: Some(_), .. }
        ));
        let addr = serve_once(b"HTTP/1.1 200 O");
        assert!(matches!(
            request(addr, &Request::get("/"), T),
            Outcome::Truncated { head: None, .. }
        ));
    }

    #[test]
    fn keep_alive_reads_two_responses_on_one_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut b = [0u8; 1024];
            for body in ["one", "two"] {
                let _ = s.read(&mut b).unwrap();
                write!(s, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n{body}").unwrap();
            }
            thread::sleep(Duration::from_millis(100));
        });
        let mut conn = connect(addr, T).unwrap();
        for body in ["one", "two"] {
            let out = conn.exchange(&Request::get("/"), T);
            assert_eq!(out.response().unwrap().text(), body);
        }
        assert_eq!(conn.wait_peer(T), Peer::Closed);
    }

    #[test]
    fn times_out_on_silence() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut conn = connect(addr, T).unwrap();
        conn.send_raw(b"GET / HTTP/1.1\r\n").unwrap();
        assert_eq!(
            conn.read_response(Duration::from_millis(50)),
            Outcome::TimedOut { received: 0 }
        );
        assert_eq!(conn.wait_peer(Duration::from_millis(20)), Peer::Open);
        drop(listener);
    }

    /// What one GET gets from a server that answers `answer`.
    fn outcome_of(answer: &'static [u8]) -> Outcome {
        request(serve_once(answer), &Request::get("/"), T)
    }

    /// `answer` must be classified malformed, for a reason that says `why`.
    fn assert_malformed(answer: &'static [u8], why: &str) {
        let shown = String::from_utf8_lossy(answer);
        match outcome_of(answer) {
            Outcome::Malformed(text) => assert!(text.contains(why), "{shown:?}: {text}"),
            other => panic!("{shown:?} is not malformed: {other:?}"),
        }
    }

    #[test]
    fn malformed_heads_are_malformed() {
        for answer in [
            // A status of two digits, or four.
            &b"HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n"[..],
            b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
            // No such version.
            b"HTTP/1.9 200 OK\r\nContent-Length: 0\r\n\r\n",
            b"ICY 200 OK\r\nContent-Length: 0\r\n\r\n",
            // A space in a header name, or before its colon.
            b"HTTP/1.1 200 OK\r\nBad Name: x\r\nContent-Length: 0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n",
            // A header line without a colon; a folded line.
            b"HTTP/1.1 200 OK\r\nno colon\r\nContent-Length: 0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n",
        ] {
            assert_malformed(answer, "bad response head");
        }
        assert_malformed(
            b"HTTP/1.1 200 OK\r\nContent-Length: +4\r\n\r\nlive",
            "bad Content-Length",
        );
        assert_malformed(
            b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nlive",
            "Content-Length given twice",
        );
        // The same lengths twice are one length.
        let twice = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nlive";
        assert_eq!(
            outcome_of(twice).response().map(Response::text),
            Some("live".into())
        );
    }

    #[test]
    fn malformed_chunk_sizes_are_malformed() {
        for answer in [
            // A sign, a prefix, a space before the size.
            &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n+8\r\nchunk 0\n\r\n0\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x8\r\nchunk 0\n\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n 8\r\nchunk 0\n\r\n0\r\n\r\n",
            // No digit at all; not a hex digit.
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\nchunk 0\n\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\ng\r\nchunk 0\n\r\n0\r\n\r\n",
            // More digits than any size has; a bare LF.
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\nx\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n8\nchunk 0\n\r\n0\r\n\r\n",
        ] {
            assert_malformed(answer, "bad chunk size");
        }
        assert_malformed(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n8\r\nchunk 0\nXY0\r\n\r\n",
            "chunk not followed by CRLF",
        );
        assert_malformed(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nno colon\r\n\r\n",
            "bad trailer",
        );
        // Extensions and trailers are fine.
        let fine = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n8 ; a=b\r\nchunk 0\n\r\n0\r\nX-T: 1\r\n\r\n";
        assert_eq!(
            outcome_of(fine).response().map(Response::text),
            Some("chunk 0\n".into())
        );
    }

    #[test]
    fn cut_short_is_truncated_not_malformed() {
        // A head, a chunk-size line and a trailer section that stop halfway
        // are cut, not broken.
        for answer in [
            &b"HTTP/1.1 200 OK\r\nContent-Le"[..],
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n8",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: 1\r\n",
        ] {
            assert!(
                matches!(outcome_of(answer), Outcome::Truncated { .. }),
                "{:?}",
                String::from_utf8_lossy(answer)
            );
        }
    }

    #[test]
    fn chunks_read_one_by_one_resume_after_a_time_out() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut b = [0u8; 1024];
            let _ = s.read(&mut b).unwrap();
            s.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\none\r\n")
                .unwrap();
            // Half a chunk, a pause, then the rest and the terminator.
            thread::sleep(Duration::from_millis(150));
            s.write_all(b"3\r\ntw").unwrap();
            thread::sleep(Duration::from_millis(150));
            s.write_all(b"o\r\n0\r\n\r\n").unwrap();
            thread::sleep(Duration::from_millis(100));
        });
        let mut conn = connect(addr, T).unwrap();
        conn.send(&Request::get("/events")).unwrap();
        let head = conn.read_head(T).unwrap();
        assert_eq!(head.status, 200);
        assert!(head.chunked());
        assert_eq!(conn.read_chunk(T), Chunk::Data(b"one".to_vec()));
        let mut timed_out = 0;
        let two = loop {
            match conn.read_chunk(Duration::from_millis(40)) {
                Chunk::TimedOut => timed_out += 1,
                other => break other,
            }
        };
        assert_eq!(two, Chunk::Data(b"two".to_vec()));
        assert!(timed_out >= 2, "{timed_out}");
        assert_eq!(conn.read_chunk(T), Chunk::End);
    }

    #[test]
    fn a_stream_cut_short_is_cut() {
        let addr =
            serve_once(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\none\r\n3\r\nt");
        let mut conn = connect(addr, T).unwrap();
        conn.send(&Request::get("/events")).unwrap();
        assert!(conn.read_head(T).is_ok());
        assert_eq!(conn.read_chunk(T), Chunk::Data(b"one".to_vec()));
        assert_eq!(conn.read_chunk(T), Chunk::Cut);
        // A head that never comes is what a whole response would have been.
        let addr = serve_once(b"");
        let mut conn = connect(addr, T).unwrap();
        conn.send(&Request::get("/events")).unwrap();
        assert_eq!(conn.read_head(T), Err(Outcome::Closed { reset: false }));
    }

    #[test]
    fn request_bytes() {
        let bytes = Request::post("/orders?ms=4", "id-1").to_bytes();
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with("POST /orders?ms=4 HTTP/1.1\r\n"));
        assert!(text.contains("Content-Length: 4\r\n"));
        assert!(text.ends_with("\r\n\r\nid-1"));
    }
}
