//! HTTP/2 with prior knowledge on `serve`, seen from a frame-level client
//! on 127.0.0.1: the GOAWAY at the drain, a stream in progress across it,
//! the bound on a client that never answers the GOAWAY's PING, and the
//! streams reset with CANCEL at the drain deadline.

use bytes::Bytes;
use graceful_test_support::h2::{
    self, CANCEL, DATA, END_STREAM, Frame, GOAWAY, PING, RST_STREAM, Scheme, frame,
};
use graceful_tokio::{Shutdown, Signal};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame as BodyFrame;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use std::convert::Infallible;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The bound on anything that should happen "at once".
const SOON: Duration = Duration::from_secs(10);

type Body = http_body_util::combinators::BoxBody<Bytes, Infallible>;

/// `/sleep` answers after 400 ms, `/long` after 2.5 s, `/hang` never
/// answers, `/trickle` sends its head and one chunk and never ends its body.
async fn sleep_route(request: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    match request.uri().path() {
        "/sleep" => tokio::time::sleep(Duration::from_millis(400)).await,
        "/long" => tokio::time::sleep(Duration::from_millis(2_500)).await,
        "/hang" => std::future::pending().await,
        "/trickle" => {
            let chunk =
                futures_lite::stream::once(Ok(BodyFrame::data(Bytes::from_static(b"tick"))));
            let never = futures_lite::stream::pending();
            let body = StreamBody::new(futures_lite::StreamExt::chain(chunk, never));
            return Ok(Response::new(BodyExt::boxed(body)));
        }
        _ => {}
    }
    Ok(Response::new(BodyExt::boxed(Full::new(
        Bytes::from_static(b"slept"),
    ))))
}

async fn read_frame(stream: &mut TcpStream) -> Option<Frame> {
    let mut head = [0u8; 9];
    tokio::time::timeout(SOON, stream.read_exact(&mut head))
        .await
        .expect("a frame or the end in time")
        .ok()?;
    let (kind, flags, id, len) = h2::head(&head);
    let mut payload = vec![0; len];
    stream.read_exact(&mut payload).await.ok()?;
    Some((kind, flags, id, payload))
}

/// Connects and sends the preface and empty SETTINGS (never acknowledging
/// the server's), and with `path` one GET stream (id 1) in literal HPACK.
async fn connect(addr: std::net::SocketAddr, path: Option<&str>) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let out = h2::start(Scheme::Http, path);
    stream.write_all(&out).await.expect("write");
    stream
}

struct Server {
    addr: std::net::SocketAddr,
    shutdown: Shutdown,
    run: tokio::task::JoinHandle<graceful_tokio::Report>,
}

async fn server() -> Server {
    server_draining_for(Duration::from_secs(120)).await
}

async fn server_draining_for(drain: Duration) -> Server {
    let driver = Shutdown::builder()
        .drain_timeout(drain)
        .quiet()
        .build()
        .expect("build");
    let shutdown = driver.handle();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(graceful_tokio::serve(
        listener,
        service_fn(sleep_route),
        &shutdown,
    ));
    let run = tokio::spawn(graceful_tokio::run(driver));
    Server {
        addr,
        shutdown,
        run,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_in_progress_completes_after_the_goaway() {
    let server = server().await;
    let mut client = connect(server.addr, Some("/sleep")).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _ = server.shutdown.request(Signal::TERM);
    let mut goaway = false;
    let mut body = Vec::new();
    loop {
        let (kind, flags, id, payload) = read_frame(&mut client).await.expect("a frame");
        if kind == GOAWAY {
            goaway = true;
        }
        if kind == PING && flags == 0 {
            client
                .write_all(&frame(PING, 1, 0, &payload))
                .await
                .expect("ack");
        }
        if kind == DATA && id == 1 {
            body.extend_from_slice(&payload);
            if flags & END_STREAM != 0 {
                break;
            }
        }
    }
    assert!(goaway, "GOAWAY before the stream's end");
    assert_eq!(body, b"slept");
    let report = tokio::time::timeout(SOON, server.run)
        .await
        .expect("drained")
        .expect("join");
    assert_eq!(report.exit_code(), 0, "drained, nothing abandoned");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_answers_the_ping_is_closed_within_the_bound() {
    let server = server().await;
    let mut client = connect(server.addr, None).await;
    // Its SETTINGS arrive; the server's are never acknowledged.
    while let Some((kind, ..)) = read_frame(&mut client).await {
        if kind == 4 {
            break;
        }
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let _ = server.shutdown.request(Signal::TERM);
    let mut kinds = Vec::new();
    while let Some((kind, ..)) = read_frame(&mut client).await {
        kinds.push(kind);
    }
    let closed = started.elapsed();
    assert!(
        kinds.contains(&GOAWAY) && kinds.contains(&PING),
        "{kinds:?}"
    );
    // The bound is 1 s; hyper alone would never close it.
    assert!(closed < Duration::from_secs(3), "closed after {closed:?}");
    let report = server.run.await.expect("join");
    assert_eq!(report.exit_code(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_final_goaway_comes_within_the_bound_when_the_ping_is_never_answered() {
    let server = server().await;
    // A stream that outlasts the bound, and a PING never answered.
    let mut client = connect(server.addr, Some("/long")).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _ = server.shutdown.request(Signal::TERM);
    let mut goaways = Vec::new();
    let mut body = Vec::new();
    let mut ended = None;
    while let Some((kind, flags, id, payload)) = read_frame(&mut client).await {
        if kind == GOAWAY {
            let last = u32::from_be_bytes(payload[..4].try_into().expect("4 bytes")) & 0x7fff_ffff;
            goaways.push((Instant::now(), last));
        }
        if kind == DATA && id == 1 {
            body.extend_from_slice(&payload);
            if flags & END_STREAM != 0 {
                ended = Some(Instant::now());
                break;
            }
        }
    }
    let ended = ended.expect("the stream's end");
    graceful_test_support::h2::assert_final_goaway_bounded(&goaways, ended);
    assert_eq!(body, b"slept");
    let report = tokio::time::timeout(SOON, server.run)
        .await
        .expect("drained")
        .expect("join");
    assert_eq!(report.exit_code(), 0, "drained, nothing abandoned");
}

/// At the drain deadline a stream still in progress is reset with CANCEL
/// (its handler still running, or its body still being sent), counted as
/// abandoned, and its connection closed.
async fn reset_at_the_deadline(path: &str) {
    let server = server_draining_for(Duration::from_millis(300)).await;
    let mut client = connect(server.addr, Some(path)).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _ = server.shutdown.request(Signal::TERM);
    let mut reset = None;
    while let Some((kind, flags, id, payload)) = read_frame(&mut client).await {
        if kind == PING && flags == 0 {
            client
                .write_all(&frame(PING, 1, 0, &payload))
                .await
                .expect("ack");
        }
        if kind == RST_STREAM && id == 1 {
            let code = u32::from_be_bytes(payload[..4].try_into().expect("4 bytes"));
            reset = Some(code);
        }
    }
    assert_eq!(
        reset,
        Some(CANCEL),
        "{path}: RST_STREAM(CANCEL) on stream 1"
    );
    let report = tokio::time::timeout(SOON, server.run)
        .await
        .expect("exited")
        .expect("join");
    assert_eq!(report.abandoned(), 1, "{path}");
    assert_eq!(report.exit_code(), 1, "{path}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_whose_handler_runs_at_the_deadline_is_reset_with_cancel() {
    reset_at_the_deadline("/hang").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_whose_body_is_unfinished_at_the_deadline_is_reset_with_cancel() {
    reset_at_the_deadline("/trickle").await;
}
