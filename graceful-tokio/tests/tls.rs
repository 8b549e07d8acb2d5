//! `serve_tls` seen from a real rustls client on 127.0.0.1, with a
//! certificate made for the test: HTTP/1.1 and HTTP/2 chosen by ALPN, a
//! handshake left hanging that does not delay the exit, and the
//! `close_notify` of a connection the server closes at the drain.

use bytes::Bytes;
use graceful_test_support::h2::{
    self, CANCEL, DATA, END_STREAM, Frame, GOAWAY, PING, RST_STREAM, SETTINGS, Scheme, frame,
};
use graceful_test_support::tls;
use graceful_tokio::{Shutdown, Signal};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use std::convert::Infallible;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// The bound on anything that should happen "at once".
const SOON: Duration = Duration::from_secs(10);

async fn route(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    if request.uri().path() == "/hang" {
        std::future::pending::<()>().await;
    }
    let version = format!("{:?}", request.version());
    Ok(Response::new(Full::new(Bytes::from(version))))
}

struct Server {
    addr: std::net::SocketAddr,
    shutdown: Shutdown,
    run: tokio::task::JoinHandle<graceful_tokio::Report>,
    client: TlsConnector,
}

/// A server on a fresh self-signed certificate for `localhost`, its PEM
/// files loaded with `load_config`, and a client that trusts it.
async fn server(alpn: &[&[u8]]) -> Server {
    server_draining_for(alpn, Duration::from_secs(120)).await
}

/// [`server`], with this drain timeout.
async fn server_draining_for(alpn: &[&[u8]], drain: Duration) -> Server {
    let (config, client) = tls::self_signed(alpn, |cert, key| {
        graceful_tokio::tls::load_config(cert, key).expect("load")
    });

    let driver = Shutdown::builder()
        .drain_timeout(drain)
        .quiet()
        .build()
        .expect("build");
    let shutdown = driver.handle();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(graceful_tokio::tls::serve_tls(
        listener,
        config,
        service_fn(route),
        &shutdown,
    ));
    let run = tokio::spawn(graceful_tokio::run(driver));

    Server {
        addr,
        shutdown,
        run,
        client: TlsConnector::from(client),
    }
}

async fn connect(server: &Server) -> TlsStream<TcpStream> {
    let tcp = TcpStream::connect(server.addr).await.expect("connect");
    let name = tls::localhost();
    tokio::time::timeout(SOON, server.client.connect(name, tcp))
        .await
        .expect("handshake in time")
        .expect("handshake")
}

async fn read_frame<R: AsyncRead + Unpin>(stream: &mut R) -> Option<Frame> {
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

/// The preface and empty SETTINGS, and with `path` one GET stream (id 1).
async fn h2_start<W: AsyncWrite + Unpin>(stream: &mut W, path: Option<&str>) {
    let out = h2::start(Scheme::Https, path);
    stream.write_all(&out).await.expect("write");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alpn_http_1_1_is_served_as_http_1_1() {
    let server = server(&[b"http/1.1"]).await;
    let mut client = connect(&server).await;
    assert_eq!(client.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut answer = Vec::new();
    tokio::time::timeout(SOON, client.read_to_end(&mut answer))
        .await
        .expect("in time")
        .expect("a whole answer, and close_notify at its end");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("HTTP/1.1"), "{answer}");
    let _ = server.shutdown.request(Signal::TERM);
    let report = tokio::time::timeout(SOON, server.run)
        .await
        .expect("exit")
        .expect("join");
    assert_eq!(report.exit_code(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alpn_h2_is_served_as_http_2() {
    let server = server(&[b"h2", b"http/1.1"]).await;
    let mut client = connect(&server).await;
    assert_eq!(client.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    h2_start(&mut client, Some("/")).await;
    let mut body = Vec::new();
    loop {
        let (kind, flags, id, payload) = read_frame(&mut client).await.expect("a frame");
        if kind == DATA && id == 1 {
            body.extend_from_slice(&payload);
            if flags & END_STREAM != 0 {
                break;
            }
        }
    }
    assert_eq!(body, b"HTTP/2.0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handshake_left_hanging_does_not_delay_the_exit() {
    let server = server(&[b"h2"]).await;
    // Connected, and a few bytes of a ClientHello that never ends.
    let mut hanging = TcpStream::connect(server.addr).await.expect("connect");
    hanging
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .await
        .expect("write");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let _ = server.shutdown.request(Signal::TERM);
    let report = tokio::time::timeout(SOON, server.run)
        .await
        .expect("exit")
        .expect("join");
    let took = started.elapsed();
    assert_eq!(report.exit_code(), 0);
    assert_eq!(report.abandoned(), 0);
    assert!(took < Duration::from_secs(1), "drained after {took:?}");
    drop(hanging);
}

/// An idle HTTP/2 connection at the drain: closed by hyper once the PING
/// is answered, or here at the GOAWAY's bound when it is not.
async fn close_notify_at_the_drain(answer_ping: bool) {
    let server = server(&[b"h2"]).await;
    let mut client = connect(&server).await;
    h2_start(&mut client, None).await;
    while let Some((kind, ..)) = read_frame(&mut client).await {
        if kind == SETTINGS {
            break;
        }
    }
    let _ = server.shutdown.request(Signal::TERM);
    let mut kinds = Vec::new();
    // rustls reports a TCP close without close_notify as an error
    // (`UnexpectedEof`); after close_notify the read ends with 0 bytes.
    let end = loop {
        let mut head = [0u8; 9];
        match tokio::time::timeout(SOON, client.read_exact(&mut head))
            .await
            .expect("in time")
        {
            Ok(_) => {
                let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
                let mut payload = vec![0; len];
                client.read_exact(&mut payload).await.expect("payload");
                kinds.push(head[3]);
                if answer_ping && head[3] == PING && head[4] == 0 {
                    client
                        .write_all(&frame(PING, 1, 0, &payload))
                        .await
                        .expect("ack");
                }
            }
            Err(error) => break error,
        }
    };
    assert!(kinds.contains(&GOAWAY), "{kinds:?}");
    // `read_exact` turns the clean end into UnexpectedEof too: read once
    // more, the rustls session says whether close_notify came.
    let mut rest = [0u8; 1];
    let clean = client.read(&mut rest).await;
    assert!(
        matches!(clean, Ok(0)),
        "close_notify before the end: {clean:?} (first end: {end})"
    );
    let report = tokio::time::timeout(SOON, server.run)
        .await
        .expect("exit")
        .expect("join");
    assert_eq!(report.exit_code(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_h2_connection_closed_at_the_drain_gets_close_notify() {
    close_notify_at_the_drain(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_closed_at_the_goaway_bound_gets_close_notify() {
    close_notify_at_the_drain(false).await;
}

/// Over TLS too, a stream in progress at the drain deadline is reset with
/// CANCEL and counted as abandoned, and its connection closed with
/// close_notify.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_in_progress_at_the_deadline_is_reset_with_cancel() {
    let server = server_draining_for(&[b"h2"], Duration::from_millis(300)).await;
    let mut client = connect(&server).await;
    h2_start(&mut client, Some("/hang")).await;
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
            reset = Some(u32::from_be_bytes(
                payload[..4].try_into().expect("4 bytes"),
            ));
        }
    }
    assert_eq!(reset, Some(CANCEL), "RST_STREAM(CANCEL) on stream 1");
    let mut rest = [0u8; 1];
    let clean = client.read(&mut rest).await;
    assert!(
        matches!(clean, Ok(0)),
        "close_notify before the end: {clean:?}"
    );
    let report = tokio::time::timeout(SOON, server.run)
        .await
        .expect("exit")
        .expect("join");
    assert_eq!((report.exit_code(), report.abandoned()), (1, 1));
}
