//! smol's `serve_tls` seen from a real rustls client (futures-rustls) on
//! 127.0.0.1, with a certificate made for the test: HTTP/1.1 and HTTP/2
//! chosen by ALPN, a handshake left hanging that does not delay the exit,
//! and the `close_notify` of a connection the server closes at the drain.

use bytes::Bytes;
use futures_rustls::TlsConnector;
use futures_rustls::client::TlsStream;
use graceful_smol::{Global, Shutdown, Signal};
use graceful_test_support::h2::{
    self, DATA, END_STREAM, GOAWAY, HEADERS, PREFACE, SETTINGS, frame,
};
use graceful_test_support::tls;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use smol::future::FutureExt;
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::{Async, Timer};
use std::convert::Infallible;
use std::future::Future;
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// The bound on anything that should happen "at once".
const SOON: Duration = Duration::from_secs(10);

async fn route(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let version = format!("{:?}", request.version());
    Ok(Response::new(Full::new(Bytes::from(version))))
}

/// `future`, which must end within [`SOON`].
async fn soon<T>(future: impl Future<Output = T>) -> T {
    async { Some(future.await) }
        .or(async {
            Timer::after(SOON).await;
            None
        })
        .await
        .expect("in time")
}

struct Server {
    addr: std::net::SocketAddr,
    shutdown: Shutdown,
    run: smol::Task<graceful_smol::Report>,
    client: TlsConnector,
}

/// A server on a fresh self-signed certificate for `localhost`, its PEM
/// files loaded with `load_config`, and a client that trusts it.
fn server(alpn: &[&[u8]]) -> Server {
    let (config, client) = tls::self_signed(alpn, |cert, key| {
        graceful_smol::tls::load_config(cert, key).expect("load")
    });

    let driver = Shutdown::builder()
        .drain_timeout(Duration::from_secs(120))
        .quiet()
        .build()
        .expect("build");
    let shutdown = driver.handle();
    let listener = Async::<TcpListener>::bind(([127, 0, 0, 1], 0)).expect("bind");
    let addr = listener.get_ref().local_addr().expect("addr");
    smol::spawn(graceful_smol::tls::serve_tls(
        listener,
        config,
        service_fn(route),
        &shutdown,
        Global,
    ))
    .detach();
    let run = smol::spawn(graceful_smol::run(driver));

    Server {
        addr,
        shutdown,
        run,
        client: TlsConnector::from(client),
    }
}

async fn connect(server: &Server) -> TlsStream<Async<TcpStream>> {
    let tcp = Async::<TcpStream>::connect(server.addr)
        .await
        .expect("connect");
    let name = tls::localhost();
    soon(server.client.connect(name, tcp))
        .await
        .expect("handshake")
}

/// The next frame's type, flags, stream id and payload; or the error that
/// ended the stream.
async fn read_frame(
    stream: &mut TlsStream<Async<TcpStream>>,
) -> Result<(u8, u8, u32, Vec<u8>), std::io::Error> {
    let mut head = [0u8; 9];
    soon(stream.read_exact(&mut head)).await?;
    let (kind, flags, id, len) = h2::head(&head);
    let mut payload = vec![0; len];
    stream.read_exact(&mut payload).await?;
    Ok((kind, flags, id, payload))
}

#[test]
fn alpn_http_1_1_is_served_as_http_1_1() {
    smol::block_on(async {
        let server = server(&[b"http/1.1"]);
        let mut client = connect(&server).await;
        assert_eq!(client.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .expect("write");
        let mut answer = Vec::new();
        soon(client.read_to_end(&mut answer))
            .await
            .expect("a whole answer, and close_notify at its end");
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("HTTP/1.1"), "{answer}");
        let _ = server.shutdown.request(Signal::TERM);
        assert_eq!(soon(server.run).await.exit_code(), 0);
    });
}

#[test]
fn alpn_h2_is_served_as_http_2() {
    smol::block_on(async {
        let server = server(&[b"h2", b"http/1.1"]);
        let mut client = connect(&server).await;
        assert_eq!(client.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        let mut out = PREFACE.to_vec();
        out.extend(frame(SETTINGS, 0, 0, &[]));
        // :method GET, :scheme https, :path / (all indexed), :authority x.
        out.extend(frame(
            HEADERS,
            0x4 | END_STREAM,
            1,
            &[0x82, 0x87, 0x84, 0x01, 1, b'x'],
        ));
        client.write_all(&out).await.expect("write");
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
    });
}

#[test]
fn a_handshake_left_hanging_does_not_delay_the_exit() {
    smol::block_on(async {
        let server = server(&[b"h2"]);
        // Connected, and a few bytes of a ClientHello that never ends.
        let mut hanging = Async::<TcpStream>::connect(server.addr)
            .await
            .expect("connect");
        hanging
            .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
            .await
            .expect("write");
        Timer::after(Duration::from_millis(200)).await;
        let started = Instant::now();
        let _ = server.shutdown.request(Signal::TERM);
        let report = soon(server.run).await;
        let took = started.elapsed();
        assert_eq!((report.exit_code(), report.abandoned()), (0, 0));
        assert!(took < Duration::from_secs(1), "drained after {took:?}");
        drop(hanging);
    });
}

/// The client never answers the GOAWAY's PING: the connection is closed
/// at the bound, here rather than by hyper, with close_notify all the same.
#[test]
fn a_connection_closed_at_the_goaway_bound_gets_close_notify() {
    smol::block_on(async {
        let server = server(&[b"h2"]);
        let mut client = connect(&server).await;
        let mut out = PREFACE.to_vec();
        out.extend(frame(SETTINGS, 0, 0, &[]));
        client.write_all(&out).await.expect("write");
        while let Ok((kind, ..)) = read_frame(&mut client).await {
            if kind == SETTINGS {
                break;
            }
        }
        let _ = server.shutdown.request(Signal::TERM);
        let mut kinds = Vec::new();
        while let Ok((kind, ..)) = read_frame(&mut client).await {
            kinds.push(kind);
        }
        assert!(kinds.contains(&GOAWAY), "{kinds:?}");
        // rustls reports a TCP close without close_notify as an error
        // (`UnexpectedEof`); after close_notify a read ends with 0 bytes.
        let mut rest = [0u8; 1];
        let clean = client.read(&mut rest).await;
        assert!(
            matches!(clean, Ok(0)),
            "close_notify before the end: {clean:?}"
        );
        assert_eq!(soon(server.run).await.exit_code(), 0);
    });
}
