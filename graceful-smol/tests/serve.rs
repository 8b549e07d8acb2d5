//! `serve` on real sockets on 127.0.0.1: what clients see during a
//! shutdown, with the connections spawned on an executor of the test's own
//! and on smol's global executor (every rule is checked on both).
//!
//! Every wait is bounded (a stuck test fails, it does not hang), and the
//! bounds are generous: the assertions are about what happens, not how
//! fast, except where the point is that something does not wait for a
//! timeout (then the timeout is far longer than the bound).

use bytes::Bytes;
use futures_lite::{Stream, future};
use graceful_smol::{Global, Phase, Report, Shutdown, Signal, Spawn};
use http_body::{Body, Frame};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use smol::channel::{self, Receiver, Sender};
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::{Async, Executor, Timer};
use std::collections::BTreeSet;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// The bound on anything that should happen "at once".
const SOON: Duration = Duration::from_secs(10);
/// How long a connect may take before it counts as not refused.
const PROBE: Duration = Duration::from_secs(2);
/// A drain timeout that no test waits for.
const LONG: Duration = Duration::from_secs(120);
/// The name of the threads that run the test's own executor.
const OWN_THREADS: &str = "own-executor";

/// Where the server spawns its connections.
#[derive(Clone, Copy, Debug)]
enum On {
    /// An `Arc<Executor>` of the test's own, run by two threads of its own.
    Own,
    /// smol's global executor.
    Global,
    /// A `&'static Executor`, run by two threads of the test's own.
    Static,
}

/// Runs `test` under `smol::block_on`, with the server's connections (and
/// its accept loop) on the executor `on` names.
fn run<F>(on: On, test: impl FnOnce(Exec) -> F)
where
    F: Future<Output = ()>,
{
    match on {
        On::Global => smol::block_on(test(Exec::Global)),
        On::Own => {
            let executor = Arc::new(Executor::new());
            let threads = run_threads(executor.clone());
            smol::block_on(test(Exec::Own(executor)));
            threads.stop();
        }
        On::Static => {
            static EXECUTOR: Executor<'static> = Executor::new();
            let threads = run_threads(&EXECUTOR);
            smol::block_on(test(Exec::Static(&EXECUTOR)));
            threads.stop();
        }
    }
}

/// Threads that run an executor, until stopped.
struct Threads {
    stop: Sender<()>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Threads {
    fn stop(self) {
        drop(self.stop);
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

/// Runs `executor` on two threads named `own-executor-N`.
fn run_threads<E>(executor: E) -> Threads
where
    E: std::ops::Deref<Target = Executor<'static>> + Clone + Send + 'static,
{
    let (stop, stopped) = channel::bounded::<()>(1);
    let threads = (1..=2)
        .map(|n| {
            let executor = executor.clone();
            let stopped = stopped.clone();
            std::thread::Builder::new()
                .name(format!("{OWN_THREADS}-{n}"))
                .spawn(move || {
                    let _ = smol::block_on(executor.run(stopped.recv()));
                })
                .unwrap()
        })
        .collect();
    Threads { stop, threads }
}

/// The executor a test runs its server on.
#[derive(Clone)]
enum Exec {
    Own(Arc<Executor<'static>>),
    Global,
    Static(&'static Executor<'static>),
}

impl Exec {
    fn spawn_detached(&self, future: impl Future<Output = ()> + Send + 'static) {
        match self {
            Exec::Own(executor) => executor.spawn_detached(future),
            Exec::Global => Global.spawn_detached(future),
            Exec::Static(executor) => executor.spawn_detached(future),
        }
    }

    fn serve<S, B>(
        &self,
        listener: Async<TcpListener>,
        service: S,
        shutdown: &Shutdown,
    ) -> graceful_smol::Serve
    where
        S: hyper::service::Service<Request<Incoming>, Response = Response<B>>
            + Clone
            + Send
            + 'static,
        S::Future: Send + 'static,
        S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        match self {
            Exec::Own(executor) => {
                graceful_smol::serve(listener, service, shutdown, executor.clone())
            }
            Exec::Global => graceful_smol::serve(listener, service, shutdown, Global),
            Exec::Static(executor) => graceful_smol::serve(listener, service, shutdown, *executor),
        }
    }

    /// The prefix of the names of the threads it runs tasks on.
    fn threads(&self) -> &'static str {
        match self {
            Exec::Own(_) | Exec::Static(_) => OWN_THREADS,
            // smol names its global executor's threads `smol-N`.
            Exec::Global => "smol-",
        }
    }
}

/// Each serving rule, checked on both executors.
macro_rules! on_both {
    ($($rule:ident),* $(,)?) => {$(
        mod $rule {
            #[test]
            fn on_own_executor() {
                super::run(super::On::Own, super::$rule);
            }

            #[test]
            fn on_global_executor() {
                super::run(super::On::Global, super::$rule);
            }
        }
    )*};
}

#[test]
fn a_static_executor_serves_too() {
    run(
        On::Static,
        a_request_on_an_open_keep_alive_connection_after_close_is_refused,
    );
}

on_both!(
    backlog_connections_completed_before_close_are_answered_not_reset,
    a_request_on_an_open_keep_alive_connection_after_close_is_refused,
    a_response_whose_head_goes_out_during_the_drain_closes_its_connection,
    idle_and_partial_head_connections_do_not_delay_the_drain,
    at_the_drain_deadline_busy_connections_are_closed_and_counted,
    a_streamed_response_is_in_progress_until_its_last_chunk,
);

type Reply = Response<Either<Full<Bytes>, Chunks>>;

/// A response body fed by the test, chunk by chunk.
struct Chunks(Pin<Box<Receiver<&'static str>>>);

impl Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0
            .as_mut()
            .poll_next(cx)
            .map(|chunk| chunk.map(|chunk| Ok(Frame::data(Bytes::from_static(chunk.as_bytes())))))
    }
}

/// What the test controls in the server.
struct Controls {
    /// `/wait` answers once it receives from here.
    release: (Sender<()>, Receiver<()>),
    /// How many `/wait` requests have reached their handler.
    waiting: AtomicUsize,
    /// The body of the next `/stream`.
    stream: Mutex<Option<Chunks>>,
    /// The threads the handlers ran on.
    threads: Mutex<BTreeSet<String>>,
}

impl Default for Controls {
    fn default() -> Controls {
        Controls {
            release: channel::unbounded(),
            waiting: AtomicUsize::new(0),
            stream: Mutex::new(None),
            threads: Mutex::new(BTreeSet::new()),
        }
    }
}

async fn route(request: Request<Incoming>, controls: Arc<Controls>) -> Result<Reply, Infallible> {
    let thread = std::thread::current()
        .name()
        .unwrap_or("unnamed")
        .to_owned();
    controls.threads.lock().unwrap().insert(thread);
    let text = |body: &'static str| Response::new(Either::Left(Full::new(Bytes::from(body))));
    Ok(match request.uri().path() {
        "/ok" => text("ok"),
        "/wait" => {
            controls.waiting.fetch_add(1, Ordering::SeqCst);
            let _ = controls.release.1.recv().await;
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
    exec: Exec,
    shutdown: Shutdown,
    controls: Arc<Controls>,
    events: Arc<Mutex<Vec<String>>>,
    report: Receiver<Report>,
    serve: Option<graceful_smol::Serve>,
}

impl Server {
    /// A server whose `serve` future is made (the listener registered) but
    /// not yet spawned: see [`Server::spawn`].
    fn new(exec: Exec, drain_timeout: Duration) -> Server {
        let events = Arc::new(Mutex::new(Vec::new()));
        let log = events.clone();
        let listener = Async::<TcpListener>::bind(([127, 0, 0, 1], 0)).unwrap();
        let addr = listener.get_ref().local_addr().unwrap();
        let driver = Shutdown::builder()
            .drain_timeout(drain_timeout)
            .on_event(move |event| {
                let mut log = log.lock().unwrap();
                log.push(format!("{event:?}"));
                if let graceful_smol::Event::Closed = event {
                    // "Closed" must mean that a connect is refused, now.
                    let probe = TcpStream::connect_timeout(&addr, PROBE);
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
        let serve = exec.serve(listener, service, &shutdown);
        Server {
            addr,
            exec,
            shutdown,
            controls,
            events,
            report: drive(driver),
            serve: Some(serve),
        }
    }

    /// A server, serving; the receiver says when the listener is closed.
    fn started(exec: Exec, drain_timeout: Duration) -> (Server, Receiver<()>) {
        let mut server = Server::new(exec, drain_timeout);
        let serving = server.spawn();
        (server, serving)
    }

    /// Spawns the accept loop on the server's executor; the receiver says
    /// when it has ended.
    fn spawn(&mut self) -> Receiver<()> {
        let serve = self.serve.take().expect("spawned once");
        let (done, serving) = channel::bounded(1);
        self.exec.spawn_detached(async move {
            serve.await;
            let _ = done.send(()).await;
        });
        serving
    }

    async fn connect(&self) -> Async<TcpStream> {
        bounded(Async::<TcpStream>::connect(self.addr))
            .await
            .unwrap()
    }

    fn request_shutdown(&self) {
        assert_eq!(
            self.shutdown.request(Signal::TERM),
            graceful_core::Request::Started
        );
    }

    /// The report, once every handler is known to have run on the
    /// server's executor.
    async fn report(self) -> Report {
        let report = bounded(self.report.recv()).await.unwrap();
        let threads = self.controls.threads.lock().unwrap().clone();
        let prefix = self.exec.threads();
        assert!(
            threads.iter().all(|name| name.starts_with(prefix)),
            "handlers ran on {threads:?}, not only on {prefix}* threads"
        );
        report
    }

    /// Waits until `n` `/wait` requests are in their handler.
    async fn handlers_waiting(&self, n: usize) {
        bounded(async {
            while self.controls.waiting.load(Ordering::SeqCst) < n {
                Timer::after(Duration::from_millis(5)).await;
            }
        })
        .await;
    }

    fn release(&self) {
        self.controls.release.0.try_send(()).unwrap();
    }

    fn saw(&self, event: &str) -> bool {
        self.events.lock().unwrap().iter().any(|e| e == event)
    }

    /// Waits for the driver to report `event` (it reports from its own
    /// thread, a moment after the fact).
    async fn wait_for(&self, event: &str) {
        bounded(async {
            while !self.saw(event) {
                Timer::after(Duration::from_millis(5)).await;
            }
        })
        .await;
    }
}

/// Runs the driver on a thread of its own, so that it reports events in
/// parallel with the server's tasks, as it may in production.
fn drive(driver: graceful_smol::Driver) -> Receiver<Report> {
    let (report, receiver) = channel::bounded(1);
    std::thread::spawn(move || {
        let _ = report.send_blocking(smol::block_on(graceful_smol::run(driver)));
    });
    receiver
}

async fn bounded<F: Future>(future: F) -> F::Output {
    future::or(future, async {
        Timer::after(SOON).await;
        panic!("took longer than the generous bound")
    })
    .await
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

/// Reads until `needle` has been read.
async fn read_until(
    stream: &mut Async<TcpStream>,
    buffer: &mut Vec<u8>,
    needle: &[u8],
) -> io::Result<()> {
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
async fn read_answer(stream: &mut Async<TcpStream>) -> io::Result<Answer> {
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

async fn get(stream: &mut Async<TcpStream>, path: &str) {
    let request = format!("GET {path} HTTP/1.1\r\nhost: test\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
}

async fn ask(stream: &mut Async<TcpStream>, path: &str) -> Answer {
    get(stream, path).await;
    bounded(read_answer(stream)).await.unwrap()
}

/// The server closed the connection: EOF (or a reset) rather than data.
async fn assert_closed(stream: &mut Async<TcpStream>) {
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

async fn backlog_connections_completed_before_close_are_answered_not_reset(exec: Exec) {
    let mut server = Server::new(exec, LONG);
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
    bounded(server.spawn().recv()).await.unwrap();

    server.wait_for("Closed").await;
    assert!(server.saw("connect at Closed: Err(ConnectionRefused)"));
    let refused = Async::<TcpStream>::connect(server.addr).await.unwrap_err();
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

async fn a_request_on_an_open_keep_alive_connection_after_close_is_refused(exec: Exec) {
    let (server, serving) = Server::started(exec, LONG);
    let mut client = server.connect().await;
    let answer = ask(&mut client, "/ok").await;
    assert_eq!((answer.status, answer.body.as_str()), (200, "ok"));
    assert!(!answer.closes(), "{answer:?}");

    server.request_shutdown();
    bounded(serving.recv()).await.unwrap();
    // An idle connection is not in progress.
    server.wait_for("Drained").await;

    let answer = ask(&mut client, "/ok").await;
    assert_refusal(&answer);
    assert_closed(&mut client).await;
    assert_eq!(server.report().await.exit_code(), 0);
}

async fn a_response_whose_head_goes_out_during_the_drain_closes_its_connection(exec: Exec) {
    let (server, serving) = Server::started(exec, LONG);
    let mut client = server.connect().await;
    get(&mut client, "/wait").await;
    // In progress once its handler runs.
    server.handlers_waiting(1).await;

    server.request_shutdown();
    bounded(serving.recv()).await.unwrap();
    assert!(!server.saw("Drained"), "the request is in progress");
    server.release();

    let answer = bounded(read_answer(&mut client)).await.unwrap();
    assert_eq!((answer.status, answer.body.as_str()), (200, "released"));
    assert!(answer.closes(), "{answer:?}");
    assert_closed(&mut client).await;
    let report = server.report().await;
    assert_eq!(report.exit_code(), 0, "{report}");
}

async fn idle_and_partial_head_connections_do_not_delay_the_drain(exec: Exec) {
    let (server, _serving) = Server::started(exec, LONG);
    let mut idle = server.connect().await;
    assert_eq!(ask(&mut idle, "/ok").await.status, 200);
    let mut partial = server.connect().await;
    partial
        .write_all(b"GET /ok HTTP/1.1\r\nhost: te")
        .await
        .unwrap();
    let _silent = server.connect().await;
    Timer::after(Duration::from_millis(50)).await;

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

async fn at_the_drain_deadline_busy_connections_are_closed_and_counted(exec: Exec) {
    let (server, _serving) = Server::started(exec, Duration::from_millis(300));
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

async fn a_streamed_response_is_in_progress_until_its_last_chunk(exec: Exec) {
    let (server, serving) = Server::started(exec, LONG);
    let (chunks, body) = channel::unbounded();
    *server.controls.stream.lock().unwrap() = Some(Chunks(Box::pin(body)));
    chunks.try_send("first\n").unwrap();
    let mut client = server.connect().await;
    get(&mut client, "/stream").await;
    let mut received = Vec::new();
    bounded(read_until(&mut client, &mut received, b"first\n"))
        .await
        .unwrap();

    server.request_shutdown();
    bounded(serving.recv()).await.unwrap();
    Timer::after(Duration::from_millis(200)).await;
    assert_eq!(server.shutdown.in_flight(), 1);
    assert!(!server.saw("Drained"), "the body is still streaming");

    chunks.try_send("last\n").unwrap();
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
