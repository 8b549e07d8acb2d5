//! `serve_tls` seen from a real rustls client on 127.0.0.1, with a
//! certificate made for the test: HTTP/1.1 over TLS (chosen by ALPN, or
//! with no ALPN at all; `h2` by ALPN is `tests/h2.rs`'s), `close_notify` on
//! the connection the server closes, and a handshake left hanging that does
//! not delay the exit.

use actix_web::{App, HttpRequest, web};
use graceful_actix::tls::rustls;
use graceful_actix::{Shutdown, Signal};
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
    report: mpsc::Receiver<(u8, usize)>,
    client: std::sync::Arc<rustls::ClientConfig>,
}

/// A server on its own actix `System` thread, on a fresh self-signed
/// certificate for `localhost` loaded with `load_config`, and a client
/// config that trusts it and offers `alpn`.
fn server(alpn: &[&[u8]]) -> Server {
    server_draining_for(alpn, Duration::from_secs(120))
}

/// [`server`], with this drain timeout.
fn server_draining_for(alpn: &[&[u8]], drain: Duration) -> Server {
    let (config, client) = tls::self_signed(alpn, |cert, key| {
        graceful_actix::tls::load_config(cert, key).expect("load")
    });

    let driver = Shutdown::builder()
        .drain_timeout(drain)
        .quiet()
        .build()
        .expect("build");
    let shutdown = driver.handle();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (sender, report) = mpsc::channel();
    let serving = shutdown.clone();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let app = || {
                App::new()
                    .route(
                        "/",
                        web::get().to(|request: HttpRequest| async move {
                            format!("{:?}", request.version())
                        }),
                    )
                    .route("/hang", web::get().to(std::future::pending::<&'static str>))
            };
            actix_web::rt::spawn(graceful_actix::tls::serve_tls(
                listener, config, app, &serving,
            ));
            let report = graceful_actix::run(driver).await;
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

fn connect(server: &Server) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    tls::connect(server.addr, &server.client, SOON)
}

#[test]
fn http_1_1_is_served_over_tls_and_the_close_gets_close_notify() {
    for alpn in [&[&b"http/1.1"[..]][..], &[]] {
        let server = server(alpn);
        let mut client = connect(&server);
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .expect("write");
        let mut answer = Vec::new();
        // rustls reports a TCP close without close_notify as an error.
        client
            .read_to_end(&mut answer)
            .expect("a whole answer, and close_notify at its end");
        let negotiated = client.conn.alpn_protocol().map(<[u8]>::to_vec);
        let expected = (!alpn.is_empty()).then(|| b"http/1.1".to_vec());
        assert_eq!(negotiated, expected, "{alpn:?}");
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("HTTP/1.1"), "{answer}");
        let _ = server.shutdown.request(Signal::TERM);
        let report = server.report.recv_timeout(SOON).expect("exited");
        assert_eq!(report, (0, 0));
    }
}

#[test]
fn a_handshake_left_hanging_does_not_delay_the_exit() {
    let server = server(&[b"http/1.1"]);
    // Connected, and a few bytes of a ClientHello that never ends.
    let mut hanging = TcpStream::connect(server.addr).expect("connect");
    hanging
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .expect("write");
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let _ = server.shutdown.request(Signal::TERM);
    let report = server.report.recv_timeout(SOON).expect("exited");
    let took = started.elapsed();
    assert_eq!(report, (0, 0));
    assert!(took < Duration::from_secs(1), "drained after {took:?}");
    drop(hanging);
}

/// At the drain deadline the busy connection is closed by the server (not
/// by actix-http), with close_notify all the same.
#[test]
fn a_connection_closed_at_the_deadline_gets_close_notify() {
    let server = server_draining_for(&[b"http/1.1"], Duration::from_millis(300));
    let mut client = connect(&server);
    client
        .write_all(b"GET /hang HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write");
    client.flush().expect("flush");
    std::thread::sleep(Duration::from_millis(200));
    let _ = server.shutdown.request(Signal::TERM);
    let mut answer = Vec::new();
    let end = client.read_to_end(&mut answer);
    assert!(
        matches!(end, Ok(0)),
        "no answer, and close_notify before the end: {end:?}"
    );
    let report = server.report.recv_timeout(SOON).expect("exited");
    assert_eq!(report, (1, 1));
}
