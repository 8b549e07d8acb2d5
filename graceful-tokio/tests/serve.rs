//! `serve` on real sockets on 127.0.0.1: what clients see during a
//! shutdown.
//!
//! Every wait is bounded (a stuck test fails, it does not hang), and the
//! bounds are generous: the assertions are about what happens, not how
//! fast, except where the point is that something does not wait for a
//! timeout (then the timeout is far longer than the bound).

use bytes::Bytes;
use graceful_tokio::{Phase, Report, Shutdown, Signal};
use http_body::{Body, Frame};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinHandle;

/// The bound on anything that should happen "at once".
const SOON: Duration = Duration::from_secs(10);
/// How long a connect may take before it counts as not refused.
const PROBE: Duration = Duration::from_secs(2);
/// A drain timeout that no test waits for.
const LONG: Duration = Duration::from_secs(120);

type Reply = Response<Either<Full<Bytes>, Chunks>>;

/// A response body fed by the test, chunk by chunk.
struct Chunks(mpsc::UnboundedReceiver<&'static str>);

impl Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|chunk| Ok(Frame::data(Bytes::from_static(chunk.as_bytes())))))
    }
}

/// What the test controls in the server.
#[derive(Default)]
struct Controls {
    /// `/wait` answers once notified.
    release: Notify,
    /// How many `/wait` requests have reached their handler.
    waiting: AtomicUsize,
    /// The body of the next `/stream`.
    stream: Mutex<Option<Chunks>>,
}

async fn route(request: Request<Incoming>, controls: Arc<Controls>) -> Result<Reply, Infallible> {
    let text = |body: &'static str| Response::new(Either::Left(Full::new(Bytes::from(body))));
    Ok(match request.uri().path() {
        "/ok" => text("ok"),
        "/wait" => {
            controls.waiting.fetch_add(1, Ordering::SeqCst);
            controls.release.notified().await;
            text("released")
        }
        "/stream" => {
            let chunks = controls
                .stream
                .lock()
                .unwrap()
                .take()
                .expect("a stream set up");
            Response::new(Either::Right(chunks))
        }
        _ => text("?"),
    })
}

struct Server {
    addr: SocketAddr,
    shutdown: Shutdown,
    controls: Arc<Controls>,
    events: Arc<Mutex<Vec<String>>>,
    report: oneshot::Receiver<Report>,
    serve: Option<graceful_tokio::Serve>,
}

impl Server {
    /// A server whose `serve` future is made (the listener registered) but
    /// not yet spawned: see [`Server::spawn`].
    async fn new(drain_timeout: Duration) -> Server {
        let events = Arc::new(Mutex::new(Vec::new()));
        let log = events.clone();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let driver = Shutdown::builder()
            .drain_timeout(drain_timeout)
            .on_event(move |event| {
                let mut log = log.lock().unwrap();
                log.push(format!("{event:?}"));
                if let graceful_tokio::Event::Closed = event {
                    // "Closed" must mean that a connect is refused, now.
                    let probe = std::net::TcpStream::connect_timeout(&addr, PROBE);
                    log.push(format!(
                        "connect at Closed: {:?}",
                        probe.map_err(|e| e.kind())
                    ));
                }
            })
            .build()
            .unwrap();
        let shutdown = driver.handle();
        let controls = Arc::new(Controls::default());
        let serving = controls.clone();
        let service = service_fn(move |request| route(request, serving.clone()));
        let serve = graceful_tokio::serve(listener, service, &shutdown);
        Server {
            addr,
            shutdown,
            controls,
            events,
            report: drive(driver),
            serve: Some(serve),
        }
    }

    async fn started(drain_timeout: Duration) -> (Server, JoinHandle<()>) {
        let mut server = Server::new(drain_timeout).await;
        let serving = server.spawn();
        (server, serving)
    }

    fn spawn(&mut self) -> JoinHandle<()> {
        tokio::spawn(self.serve.take().expect("spawned once"))
    }

    async fn connect(&self) -> TcpStream {
        bounded(TcpStream::connect(self.addr)).await.unwrap()
    }

    fn request_shutdown(&self) {
        assert_eq!(
            self.shutdown.request(Signal::TERM),
            graceful_core::Request::Started
        );
    }

    async fn report(self) -> Report {
        bounded(self.report).await.unwrap()
    }

    /// Waits until `n` `/wait` requests are in their handler.
    async fn handlers_waiting(&self, n: usize) {
        bounded(async {
            while self.controls.waiting.load(Ordering::SeqCst) < n {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
    }

    fn saw(&self, event: &str) -> bool {
        self.events.lock().unwrap().iter().any(|e| e == event)
    }

    /// Waits for the driver to report `event` (it reports from its own
    /// task, a moment after the fact).
    async fn wait_for(&self, event: &str) {
        bounded(async {
            while !self.saw(event) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
    }
}

/// Runs the driver on a thread and runtime of its own, so that it reports
/// events in parallel with the server's tasks, as it may in production,
/// rather than whenever the server's worker thread lets it.
fn drive(driver: graceful_tokio::Driver) -> oneshot::Receiver<Report> {
    let (report, receiver) = oneshot::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let _ = report.send(runtime.block_on(graceful_tokio::run(driver)));
    });
    receiver
}

async fn bounded<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(SOON, future)
        .await
        .expect("took longer than the generous bound")
}

/// A response as read from the socket.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    fn closes(&self) -> bool {
        self.header("connection") == Some("close")
    }
}

/// Reads until `needle` has been read; returns what was read.
async fn read_until(stream: &mut TcpStream, buffer: &mut Vec<u8>, needle: &[u8]) -> io::Result<()> {
    while !buffer.windows(needle.len()).any(|w| w == needle) {
        let mut chunk = [0; 4096];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    Ok(())
}

/// Reads one whole response (content-length or chunked).
async fn read_answer(stream: &mut TcpStream) -> io::Result<Answer> {
    let mut buffer = Vec::new();
    read_until(stream, &mut buffer, b"\r\n\r\n").await?;
    let end = buffer.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8(buffer[..end].to_vec()).unwrap();
    let mut rest = buffer[end..].to_vec();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(": "))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let mut answer = Answer {
        status,
        headers,
        body: String::new(),
    };
    if let Some(length) = answer.header("content-length") {
        let length: usize = length.parse().unwrap();
        while rest.len() < length {
            let mut chunk = [0; 4096];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            rest.extend_from_slice(&chunk[..n]);
        }
        answer.body = String::from_utf8(rest[..length].to_vec()).unwrap();
    } else if answer.header("transfer-encoding") == Some("chunked") {
        read_until(stream, &mut rest, b"0\r\n\r\n").await?;
        answer.body = dechunk(&rest);
    }
    Ok(answer)
}

fn dechunk(mut raw: &[u8]) -> String {
    let mut body = Vec::new();
    loop {
        let line = raw.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = usize::from_str_radix(std::str::from_utf8(&raw[..line]).unwrap(), 16).unwrap();
        if size == 0 {
            return String::from_utf8(body).unwrap();
        }
        body.extend_from_slice(&raw[line + 2..line + 2 + size]);
        raw = &raw[line + 2 + size + 2..];
    }
}

async fn get(stream: &mut TcpStream, path: &str) {
    let request = format!("GET {path} HTTP/1.1\r\nhost: test\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
}

async fn ask(stream: &mut TcpStream, path: &str) -> Answer {
    get(stream, path).await;
    bounded(read_answer(stream)).await.unwrap()
}

/// The server closed the connection: EOF (or a reset) rather than data.
async fn assert_closed(stream: &mut TcpStream) {
    let mut byte = [0; 1];
    match bounded(stream.read(&mut byte)).await {
        Ok(0) => {}
        Err(error) if error.kind() == io::ErrorKind::ConnectionReset => {}
        other => panic!("expected the connection to close, got {other:?}"),
    }
}

fn assert_refusal(answer: &Answer) {
    assert_eq!(answer.status, 503, "{answer:?}");
    assert!(answer.closes(), "{answer:?}");
    assert_eq!(answer.header("retry-after"), Some("1"), "{answer:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backlog_connections_completed_before_close_are_answered_not_reset() {
    let mut server = Server::new(LONG).await;
    // Nothing accepts yet: these handshakes complete in the kernel's accept
    // queue, and the requests wait in their sockets.
    let mut clients = Vec::new();
    for _ in 0..3 {
        let mut client = server.connect().await;
        get(&mut client, "/ok").await;
        clients.push(client);
    }
    server.request_shutdown();
    bounded(server.shutdown.reached(Phase::Draining)).await;
    // The accept loop starts with the listener already due to close.
    bounded(server.spawn()).await.unwrap();

    server.wait_for("Closed").await;
    assert!(server.saw("connect at Closed: Err(ConnectionRefused)"));
    let refused = TcpStream::connect(server.addr).await.unwrap_err();
    assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);
    for client in &mut clients {
        let answer = bounded(read_answer(client))
            .await
            .expect("answered, not reset");
        assert_refusal(&answer);
        assert_closed(client).await;
    }
    let report = server.report().await;
    assert_eq!(report.exit_code(), 0, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_on_an_open_keep_alive_connection_after_close_is_refused() {
    let (server, serving) = Server::started(LONG).await;
    let mut client = server.connect().await;
    let answer = ask(&mut client, "/ok").await;
    assert_eq!((answer.status, answer.body.as_str()), (200, "ok"));
    assert!(!answer.closes(), "{answer:?}");

    server.request_shutdown();
    bounded(serving).await.unwrap();
    // An idle connection is not in progress.
    server.wait_for("Drained").await;

    let answer = ask(&mut client, "/ok").await;
    assert_refusal(&answer);
    assert_closed(&mut client).await;
    assert_eq!(server.report().await.exit_code(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_whose_head_goes_out_during_the_drain_closes_its_connection() {
    let (server, serving) = Server::started(LONG).await;
    let mut client = server.connect().await;
    get(&mut client, "/wait").await;
    // In progress once its handler runs.
    server.handlers_waiting(1).await;

    server.request_shutdown();
    bounded(serving).await.unwrap();
    assert!(!server.saw("Drained"), "the request is in progress");
    server.controls.release.notify_one();

    let answer = bounded(read_answer(&mut client)).await.unwrap();
    assert_eq!((answer.status, answer.body.as_str()), (200, "released"));
    assert!(answer.closes(), "{answer:?}");
    assert_closed(&mut client).await;
    let report = server.report().await;
    assert_eq!(report.exit_code(), 0, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_partial_head_connections_do_not_delay_the_drain() {
    let (server, _serving) = Server::started(LONG).await;
    let mut idle = server.connect().await;
    assert_eq!(ask(&mut idle, "/ok").await.status, 200);
    let mut partial = server.connect().await;
    partial
        .write_all(b"GET /ok HTTP/1.1\r\nhost: te")
        .await
        .unwrap();
    let _silent = server.connect().await;
    tokio::time::sleep(Duration::from_millis(50)).await;

    let started = Instant::now();
    server.request_shutdown();
    let shutdown = server.shutdown.clone();
    let report = server.report().await;
    assert!(
        started.elapsed() < LONG / 4,
        "the drain waited for idle connections"
    );
    assert_eq!(report.exit_code(), 0, "{report}");
    assert_eq!(report.abandoned(), 0);
    assert_eq!(shutdown.phase(), Phase::Finished);

    // Still open after the drain: a request gets a clean refusal.
    let answer = ask(&mut idle, "/ok").await;
    assert_refusal(&answer);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_drain_deadline_busy_connections_are_closed_and_counted() {
    let (server, _serving) = Server::started(Duration::from_millis(300)).await;
    let mut busy = server.connect().await;
    let mut idle = server.connect().await;
    assert_eq!(ask(&mut idle, "/ok").await.status, 200);
    get(&mut busy, "/wait").await;
    server.handlers_waiting(1).await;

    server.request_shutdown();
    let report = server.report().await;
    assert_eq!(report.abandoned(), 1, "{report}");
    assert_eq!(report.exit_code(), 1);

    // Closed without a response; the idle connection stays open.
    assert_closed(&mut busy).await;
    assert_refusal(&ask(&mut idle, "/ok").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_response_is_in_progress_until_its_last_chunk() {
    let (server, serving) = Server::started(LONG).await;
    let (chunks, body) = mpsc::unbounded_channel();
    *server.controls.stream.lock().unwrap() = Some(Chunks(body));
    chunks.send("first\n").unwrap();
    let mut client = server.connect().await;
    get(&mut client, "/stream").await;
    let mut received = Vec::new();
    bounded(read_until(&mut client, &mut received, b"first\n"))
        .await
        .unwrap();

    server.request_shutdown();
    bounded(serving).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(server.shutdown.in_flight(), 1);
    assert!(!server.saw("Drained"), "the body is still streaming");

    chunks.send("last\n").unwrap();
    drop(chunks);
    bounded(read_until(&mut client, &mut received, b"0\r\n\r\n"))
        .await
        .unwrap();
    let text = String::from_utf8(received).unwrap();
    assert!(
        text.contains("first\n") && text.contains("last\n"),
        "{text}"
    );
    let report = server.report().await;
    assert_eq!(report.exit_code(), 0, "{report}");
}
