//! What the integration tests share: a server under a shutdown on
//! 127.0.0.1, its events, and a raw HTTP/1.1 client that can tell a clean
//! close from a reset.

#![allow(dead_code, unreachable_pub)]

use actix_web::rt::net::TcpStream;
use actix_web::rt::time::{sleep, timeout};
use graceful_actix::{Event, Report, Shutdown};
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Generous: the box running the tests may be busy.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// The events of one shutdown, as they happened.
#[derive(Clone, Default)]
pub struct Events(Arc<Mutex<Vec<(String, Instant)>>>);

impl Events {
    /// Records every event of a shutdown built with this observer.
    pub fn observer(&self) -> impl Fn(&Event<'_>) + Send + Sync + 'static {
        let events = self.clone();
        move |event| {
            let name = match event {
                Event::Requested { .. } => "requested".to_owned(),
                Event::Draining => "draining".to_owned(),
                Event::Closed => "closed".to_owned(),
                Event::Drained => "drained".to_owned(),
                Event::Abandoned { in_flight } => format!("abandoned {in_flight}"),
                Event::StepFinished { step } => {
                    format!("cleanup {} {}", step.name(), step.outcome().as_str())
                }
                Event::Forced { exit_code, .. } => format!("forced {exit_code}"),
                Event::Finished { exit_code } => format!("finished {exit_code}"),
                _ => "other".to_owned(),
            };
            events.lock().push((name, Instant::now()));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(String, Instant)>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// When `name` happened, if it did.
    pub fn at(&self, name: &str) -> Option<Instant> {
        self.lock()
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, at)| *at)
    }

    /// The names so far.
    pub fn names(&self) -> Vec<String> {
        self.lock().iter().map(|(n, _)| n.clone()).collect()
    }

    /// Waits (polling, it is a test) until `name` has happened.
    pub async fn wait(&self, name: &str) -> Instant {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(at) = self.at(name) {
                return at;
            }
            assert!(
                Instant::now() < deadline,
                "no `{name}` event within {PATIENCE:?}; got {:?}",
                self.names()
            );
            sleep(Duration::from_millis(2)).await;
        }
    }
}

/// Waits (polling) until `condition` holds.
pub async fn eventually(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !condition() {
        assert!(Instant::now() < deadline, "{what}: not within {PATIENCE:?}");
        sleep(Duration::from_millis(2)).await;
    }
}

/// A parsed response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// When its last byte arrived.
    pub done_at: Instant,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn closes(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Why no response came.
#[derive(Debug, PartialEq, Eq)]
pub enum NoResponse {
    /// The server closed the connection cleanly (after `got` bytes).
    Closed { got: usize },
    /// The connection was reset.
    Reset,
    /// Nothing more within the time allowed.
    Timeout,
}

/// What the peer did, seen by a client that expects nothing more.
#[derive(Debug, PartialEq, Eq)]
pub enum Peer {
    Closed,
    Reset,
    Open,
    Sent(usize),
}

/// One client connection, speaking raw HTTP/1.1.
pub struct Conn {
    stream: TcpStream,
    buffer: Vec<u8>,
}

pub fn get(target: &str) -> String {
    format!("GET {target} HTTP/1.1\r\nHost: test\r\n\r\n")
}

impl Conn {
    pub async fn open(addr: SocketAddr) -> Conn {
        let stream = timeout(PATIENCE, TcpStream::connect(addr))
            .await
            .expect("connect timed out")
            .expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        Conn {
            stream,
            buffer: Vec::new(),
        }
    }

    pub async fn send(&mut self, raw: &str) {
        self.stream
            .write_all(raw.as_bytes())
            .await
            .expect("send request");
    }

    pub async fn exchange(&mut self, raw: &str) -> Result<Response, NoResponse> {
        self.send(raw).await;
        self.response().await
    }

    /// Reads more into the buffer; `Ok(0)` at a clean end.
    async fn fill(&mut self, until: Instant) -> Result<usize, NoResponse> {
        let mut chunk = [0u8; 16 * 1024];
        let left = until.saturating_duration_since(Instant::now());
        match timeout(left, self.stream.read(&mut chunk)).await {
            Err(_) => Err(NoResponse::Timeout),
            Ok(Ok(n)) => {
                self.buffer.extend_from_slice(&chunk[..n]);
                Ok(n)
            }
            Ok(Err(error)) if error.kind() == io::ErrorKind::ConnectionReset => {
                Err(NoResponse::Reset)
            }
            Ok(Err(error)) => panic!("read: {error}"),
        }
    }

    /// Reads until `n` bytes are buffered.
    async fn need(&mut self, n: usize, until: Instant) -> Result<(), NoResponse> {
        while self.buffer.len() < n {
            if self.fill(until).await? == 0 {
                return Err(NoResponse::Closed {
                    got: self.buffer.len(),
                });
            }
        }
        Ok(())
    }

    /// Reads until `pattern` is buffered; returns the index after it.
    async fn need_pattern(&mut self, pattern: &[u8], until: Instant) -> Result<usize, NoResponse> {
        loop {
            if let Some(at) = self
                .buffer
                .windows(pattern.len())
                .position(|w| w == pattern)
            {
                return Ok(at + pattern.len());
            }
            if self.fill(until).await? == 0 {
                return Err(NoResponse::Closed {
                    got: self.buffer.len(),
                });
            }
        }
    }

    fn take(&mut self, n: usize) -> Vec<u8> {
        self.buffer.drain(..n).collect()
    }

    /// Reads one whole response (content-length or chunked).
    pub async fn response(&mut self) -> Result<Response, NoResponse> {
        self.response_within(PATIENCE).await
    }

    pub async fn response_within(&mut self, limit: Duration) -> Result<Response, NoResponse> {
        let until = Instant::now() + limit;
        let end = self.need_pattern(b"\r\n\r\n", until).await?;
        let head = String::from_utf8(self.take(end)).expect("head is text");
        let mut lines = head.split("\r\n");
        let status: u16 = lines
            .next()
            .and_then(|line| line.split(' ').nth(1))
            .and_then(|code| code.parse().ok())
            .expect("status line");
        let headers: Vec<(String, String)> = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
            .collect();
        let mut response = Response {
            status,
            headers,
            body: Vec::new(),
            done_at: Instant::now(),
        };
        if response
            .header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
        {
            loop {
                let line_end = self.need_pattern(b"\r\n", until).await?;
                let line = String::from_utf8(self.take(line_end)).expect("chunk size");
                let size = usize::from_str_radix(line.trim(), 16).expect("chunk size");
                self.need(size + 2, until).await?;
                let chunk = self.take(size + 2);
                response.body.extend_from_slice(&chunk[..size]);
                if size == 0 {
                    break;
                }
            }
        } else {
            let length: usize = response
                .header("content-length")
                .map_or(0, |v| v.parse().expect("content-length"));
            self.need(length, until).await?;
            response.body = self.take(length);
        }
        response.done_at = Instant::now();
        Ok(response)
    }

    /// Reads whatever the server sends within `limit`, expecting nothing.
    pub async fn peer(&mut self, limit: Duration) -> Peer {
        if !self.buffer.is_empty() {
            return Peer::Sent(self.buffer.len());
        }
        let until = Instant::now() + limit;
        match self.fill(until).await {
            Ok(0) => Peer::Closed,
            Ok(n) => Peer::Sent(n),
            Err(NoResponse::Reset) => Peer::Reset,
            Err(_) => Peer::Open,
        }
    }
}

/// Connects and expects a refusal.
pub async fn refused(addr: SocketAddr) -> bool {
    match timeout(PATIENCE, TcpStream::connect(addr)).await {
        Ok(Err(error)) => error.kind() == io::ErrorKind::ConnectionRefused,
        _ => false,
    }
}

/// A shutdown with its events recorded, and its driver running on the
/// current actix `System`.
pub struct Running {
    pub shutdown: Shutdown,
    pub events: Events,
    pub report: actix_web::rt::task::JoinHandle<Report>,
}

pub fn start_driver(driver: graceful_actix::Driver, events: Events) -> Running {
    Running {
        shutdown: driver.handle(),
        events,
        report: actix_web::rt::spawn(graceful_actix::run(driver)),
    }
}

/// A builder that records its events in `events`.
pub fn builder(events: &Events) -> graceful_core::Builder {
    Shutdown::builder().on_event(events.observer())
}

/// Binds 127.0.0.1:0.
pub fn listener() -> (std::net::TcpListener, SocketAddr) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("local addr");
    (listener, addr)
}

/// Milliseconds from `from` to `to`, negative when `to` came first.
pub fn ms(from: Instant, to: Instant) -> f64 {
    if to >= from {
        (to - from).as_secs_f64() * 1000.0
    } else {
        -((from - to).as_secs_f64() * 1000.0)
    }
}
