//! HTTP/2 on `serve` and `serve_tls`, seen from a frame-level client on
//! 127.0.0.1: h2c (prior knowledge) and h2 by ALPN both served, the GOAWAY
//! at the drain, a stream in progress across it, the bound on a client
//! that never answers the GOAWAY's PING, and the streams reset with CANCEL
//! at the drain deadline.

use actix_web::web::Bytes;
use actix_web::{App, HttpRequest, HttpResponse, web};
use graceful_actix::{Shutdown, Signal};
use graceful_test_support::h2::{
    self, CANCEL, DATA, END_STREAM, Frame, GOAWAY, PING, RST_STREAM, SETTINGS, Scheme, frame,
};
use graceful_test_support::tls;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The bound on anything that should happen "at once".
const SOON: Duration = Duration::from_secs(10);

struct Server {
    addr: SocketAddr,
    shutdown: Shutdown,
    /// The exit code and the abandoned count, once the shutdown is over.
    report: mpsc::Receiver<(u8, usize)>,
    /// With TLS: a client config that trusts the server and offers `h2`.
    client: Option<std::sync::Arc<graceful_actix::tls::rustls::ClientConfig>>,
}

/// `/sleep` answers after 400 ms, `/long` after 2.5 s, `/hang` never
/// answers, `/trickle` sends its head and one chunk and never ends its
/// body; `/` answers with the request's HTTP version.
fn app() -> App<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    async fn slept(ms: u64) -> &'static str {
        actix_web::rt::time::sleep(Duration::from_millis(ms)).await;
        "slept"
    }
    App::new()
        .route(
            "/",
            web::get().to(|request: HttpRequest| async move { format!("{:?}", request.version()) }),
        )
        .route("/sleep", web::get().to(|| slept(400)))
        .route("/long", web::get().to(|| slept(2_500)))
        .route("/hang", web::get().to(std::future::pending::<&'static str>))
        .route(
            "/trickle",
            web::get().to(|| async {
                let chunk = futures_lite::stream::once(Ok::<_, actix_web::Error>(
                    Bytes::from_static(b"tick"),
                ));
                let never = futures_lite::stream::pending();
                HttpResponse::Ok().streaming(futures_lite::StreamExt::chain(chunk, never))
            }),
        )
}

/// A plaintext server on its own actix `System` thread.
fn server() -> Server {
    start(Duration::from_secs(120), false)
}

fn start(drain: Duration, tls: bool) -> Server {
    let driver = Shutdown::builder()
        .drain_timeout(drain)
        .quiet()
        .build()
        .expect("build");
    let shutdown = driver.handle();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (config, client) = if tls {
        let (config, client) = tls::self_signed(&[b"h2"], |cert, key| {
            graceful_actix::tls::load_config(cert, key).expect("load")
        });
        (Some(config), Some(client))
    } else {
        (None, None)
    };
    let (sender, report) = mpsc::channel();
    let serving = shutdown.clone();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let serve = match config {
                Some(config) => graceful_actix::tls::serve_tls(listener, config, app, &serving),
                None => graceful_actix::serve(listener, app, &serving),
            };
            actix_web::rt::spawn(serve);
            let report = graceful_actix::run(driver).await;
            if report.abandoned() > 0 {
                graceful_actix::resets_sent().await;
            }
            let _ = sender.send((report.exit_code(), report.abandoned()));
        });
    });
    Server {
        addr,
        shutdown,
        report,
        client,
    }
}

/// Reads one frame; `None` at the end of the connection.
fn read_frame(stream: &mut impl Read) -> Option<Frame> {
    let mut head = [0u8; 9];
    stream.read_exact(&mut head).ok()?;
    let (kind, flags, id, len) = h2::head(&head);
    let mut payload = vec![0; len];
    stream.read_exact(&mut payload).ok()?;
    Some((kind, flags, id, payload))
}

/// Connects and sends the preface and empty SETTINGS (never acknowledging
/// the server's), and with `path` one GET stream (id 1).
fn connect(addr: SocketAddr, path: Option<&str>) -> TcpStream {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(SOON)).expect("timeout");
    stream
        .write_all(&h2::start(Scheme::Http, path))
        .expect("write");
    stream
}

fn last_stream_id(payload: &[u8]) -> u32 {
    u32::from_be_bytes(payload[..4].try_into().expect("4 bytes")) & 0x7fff_ffff
}

/// Reads stream 1's DATA to its END_STREAM, answering PINGs if `answer`;
/// the body and the GOAWAYs seen (when, last stream id) before its end.
fn read_stream(stream: &mut (impl Read + Write), answer: bool) -> (Vec<u8>, Vec<(Instant, u32)>) {
    let mut body = Vec::new();
    let mut goaways = Vec::new();
    loop {
        let (kind, flags, id, payload) = read_frame(stream).expect("a frame before the end");
        if kind == GOAWAY {
            goaways.push((Instant::now(), last_stream_id(&payload)));
        }
        if kind == PING && flags == 0 && answer {
            stream.write_all(&frame(PING, 1, 0, &payload)).expect("ack");
        }
        if kind == DATA && id == 1 {
            body.extend_from_slice(&payload);
            if flags & END_STREAM != 0 {
                return (body, goaways);
            }
        }
        assert_ne!(kind, RST_STREAM, "stream 1 reset");
    }
}

#[test]
fn h2c_and_http_1_1_are_served_on_the_same_port() {
    let server = server();
    let mut client = connect(server.addr, Some("/"));
    let (body, _) = read_stream(&mut client, true);
    assert_eq!(body, b"HTTP/2.0");
    let mut h1 = TcpStream::connect(server.addr).expect("connect");
    h1.set_read_timeout(Some(SOON)).expect("timeout");
    h1.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("write");
    let mut answer = String::new();
    h1.read_to_string(&mut answer).expect("read");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("HTTP/1.1"), "{answer}");
    let _ = server.shutdown.request(Signal::TERM);
    assert_eq!(server.report.recv_timeout(SOON).expect("exited"), (0, 0));
}

#[test]
fn h2_is_served_over_tls_by_alpn() {
    let server = start(Duration::from_secs(120), true);
    let config = server.client.clone().expect("tls");
    let mut client = tls::connect(server.addr, &config, SOON);
    client
        .write_all(&h2::start(Scheme::Https, Some("/")))
        .expect("write");
    let (body, _) = read_stream(&mut client, true);
    assert_eq!(client.conn.alpn_protocol(), Some(&b"h2"[..]));
    assert_eq!(body, b"HTTP/2.0");
    let _ = server.shutdown.request(Signal::TERM);
    // The idle connection is closed after its final GOAWAY, with
    // close_notify (rustls reports a close without it as an error).
    let mut rest = Vec::new();
    client
        .read_to_end(&mut rest)
        .expect("the GOAWAYs, then close_notify");
    assert_eq!(server.report.recv_timeout(SOON).expect("exited"), (0, 0));
}

#[test]
fn a_stream_in_progress_completes_after_the_goaway() {
    let server = server();
    let mut client = connect(server.addr, Some("/long"));
    std::thread::sleep(Duration::from_millis(100));
    let _ = server.shutdown.request(Signal::TERM);
    // The stream is counted: the drain waits for it.
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        server.report.try_recv().is_err(),
        "drained with the stream in progress"
    );
    let (body, goaways) = read_stream(&mut client, true);
    assert!(!goaways.is_empty(), "GOAWAY before the stream's end");
    assert_eq!(body, b"slept");
    assert_eq!(
        server.report.recv_timeout(SOON).expect("drained"),
        (0, 0),
        "drained, nothing abandoned"
    );
}

#[test]
fn a_client_that_never_answers_the_ping_is_closed_within_the_bound() {
    let server = server();
    let mut client = connect(server.addr, None);
    // Its SETTINGS arrive; the server's are never acknowledged.
    while let Some((kind, ..)) = read_frame(&mut client) {
        if kind == SETTINGS {
            break;
        }
    }
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    let _ = server.shutdown.request(Signal::TERM);
    let mut kinds = Vec::new();
    while let Some((kind, ..)) = read_frame(&mut client) {
        kinds.push(kind);
    }
    let closed = started.elapsed();
    assert!(
        kinds.iter().filter(|&&k| k == GOAWAY).count() >= 2 && kinds.contains(&PING),
        "{kinds:?}"
    );
    // The bound is 1 s; h2 alone would never close it.
    assert!(closed < Duration::from_secs(3), "closed after {closed:?}");
    assert_eq!(server.report.recv_timeout(SOON).expect("exited"), (0, 0));
}

#[test]
fn the_final_goaway_comes_within_the_bound_when_the_ping_is_never_answered() {
    let server = server();
    // A stream that outlasts the bound, and a PING never answered.
    let mut client = connect(server.addr, Some("/long"));
    std::thread::sleep(Duration::from_millis(100));
    let _ = server.shutdown.request(Signal::TERM);
    let (body, goaways) = read_stream(&mut client, false);
    let ended = Instant::now();
    graceful_test_support::h2::assert_final_goaway_bounded(&goaways, ended);
    assert_eq!(body, b"slept");
    assert_eq!(
        server.report.recv_timeout(SOON).expect("drained"),
        (0, 0),
        "drained, nothing abandoned"
    );
}

/// At the drain deadline a stream still in progress is reset with CANCEL
/// (its handler still running, or its body still being sent), counted as
/// abandoned, and its connection closed.
fn reset_at_the_deadline(path: &str) {
    let server = start(Duration::from_millis(300), false);
    let mut client = connect(server.addr, Some(path));
    std::thread::sleep(Duration::from_millis(100));
    let _ = server.shutdown.request(Signal::TERM);
    let mut reset = None;
    while let Some((kind, flags, id, payload)) = read_frame(&mut client) {
        if kind == PING && flags == 0 {
            client.write_all(&frame(PING, 1, 0, &payload)).expect("ack");
        }
        if kind == RST_STREAM && id == 1 {
            reset = Some(u32::from_be_bytes(
                payload[..4].try_into().expect("4 bytes"),
            ));
        }
    }
    assert_eq!(
        reset,
        Some(CANCEL),
        "{path}: RST_STREAM(CANCEL) on stream 1"
    );
    assert_eq!(
        server.report.recv_timeout(SOON).expect("exited"),
        (1, 1),
        "{path}: one stream abandoned"
    );
}

#[test]
fn a_stream_whose_handler_runs_at_the_deadline_is_reset_with_cancel() {
    reset_at_the_deadline("/hang");
}

#[test]
fn a_stream_whose_body_is_unfinished_at_the_deadline_is_reset_with_cancel() {
    reset_at_the_deadline("/trickle");
}
