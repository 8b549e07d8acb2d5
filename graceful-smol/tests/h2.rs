//! HTTP/2 with prior knowledge on smol's `serve`, seen from a frame-level client
//! on 127.0.0.1: the GOAWAY at the drain, a stream in progress across it,
//! the bound on a client that never answers the GOAWAY's PING, and the
//! stream reset with CANCEL at the drain deadline.

use bytes::Bytes;
use graceful_smol::{Global, Shutdown, Signal};
use graceful_test_support::h2::{
    self, CANCEL, DATA, END_STREAM, Frame, GOAWAY, PING, RST_STREAM, Scheme, frame,
};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use smol::future::FutureExt;
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::{Async, Timer};
use std::convert::Infallible;
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// The bound on anything that should happen "at once".
const SOON: Duration = Duration::from_secs(10);

async fn sleep_route(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    match request.uri().path() {
        "/sleep" => {
            Timer::after(Duration::from_millis(400)).await;
        }
        "/hang" => std::future::pending().await,
        _ => {}
    }
    Ok(Response::new(Full::new(Bytes::from_static(b"slept"))))
}

async fn read_frame(stream: &mut Async<TcpStream>) -> Option<Frame> {
    let mut head = [0u8; 9];
    let read = async { Some(stream.read_exact(&mut head).await) };
    read.or(async {
        Timer::after(SOON).await;
        None
    })
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
async fn connect(addr: std::net::SocketAddr, path: Option<&str>) -> Async<TcpStream> {
    let mut stream = Async::<TcpStream>::connect(addr).await.expect("connect");
    let out = h2::start(Scheme::Http, path);
    stream.write_all(&out).await.expect("write");
    stream
}

struct Server {
    addr: std::net::SocketAddr,
    shutdown: Shutdown,
    run: smol::Task<graceful_smol::Report>,
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
    let listener = Async::<TcpListener>::bind(([127, 0, 0, 1], 0)).expect("bind");
    let addr = listener.get_ref().local_addr().expect("addr");
    smol::spawn(graceful_smol::serve(
        listener,
        service_fn(sleep_route),
        &shutdown,
        Global,
    ))
    .detach();
    let run = smol::spawn(graceful_smol::run(driver));
    Server {
        addr,
        shutdown,
        run,
    }
}

#[test]
fn a_stream_in_progress_completes_after_the_goaway() {
    smol::block_on(stream_in_progress());
}

#[test]
fn a_client_that_never_answers_the_ping_is_closed_within_the_bound() {
    smol::block_on(ping_less());
}

async fn stream_in_progress() {
    let server = server().await;
    let mut client = connect(server.addr, Some("/sleep")).await;
    Timer::after(Duration::from_millis(100)).await;
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
    let report = server.run.await;
    assert_eq!(report.exit_code(), 0, "drained, nothing abandoned");
}

async fn ping_less() {
    let server = server().await;
    let mut client = connect(server.addr, None).await;
    // Its SETTINGS arrive; the server's are never acknowledged.
    while let Some((kind, ..)) = read_frame(&mut client).await {
        if kind == 4 {
            break;
        }
    }
    Timer::after(Duration::from_millis(100)).await;
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
    let report = server.run.await;
    assert_eq!(report.exit_code(), 0);
}

/// At the drain deadline a stream still in progress is reset with CANCEL,
/// counted as abandoned, and its connection closed.
#[test]
fn a_stream_in_progress_at_the_deadline_is_reset_with_cancel() {
    smol::block_on(async {
        let server = server_draining_for(Duration::from_millis(300)).await;
        let mut client = connect(server.addr, Some("/hang")).await;
        Timer::after(Duration::from_millis(100)).await;
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
                reset = Some(u32::from_be_bytes(
                    payload[..4].try_into().expect("4 bytes"),
                ));
            }
        }
        assert_eq!(reset, Some(CANCEL), "RST_STREAM(CANCEL) on stream 1");
        let report = server.run.await;
        assert_eq!((report.exit_code(), report.abandoned()), (1, 1));
    });
}
