//! HTTP upgrades (what a WebSocket does): `101 Switching Protocols`, then
//! bytes over the upgraded connection, on a real socket.

use graceful_tokio::Shutdown;
use http_body_util::Empty;
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONNECTION, UPGRADE};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::io::{Read, Write};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Answers `101` and echoes whatever the upgraded connection sends.
async fn echo(mut request: Request<Incoming>) -> Result<Response<Empty<Bytes>>, Infallible> {
    let upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else { return };
        let mut io = TokioIo::new(upgraded);
        let mut buffer = [0; 64];
        while let Ok(read @ 1..) = io.read(&mut buffer).await {
            if io.write_all(&buffer[..read]).await.is_err() {
                return;
            }
        }
    });
    let mut response = Response::new(Empty::new());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    response
        .headers_mut()
        .insert(CONNECTION, "upgrade".parse().unwrap());
    response
        .headers_mut()
        .insert(UPGRADE, "echo".parse().unwrap());
    Ok(response)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgraded_connection_carries_bytes_after_its_101() {
    let shutdown = Shutdown::builder().build().expect("build").handle();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(graceful_tokio::serve(listener, service_fn(echo), &shutdown));

    let exchange = tokio::task::spawn_blocking(move || {
        let mut client = std::net::TcpStream::connect(addr).expect("connect");
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\n")
            .expect("send");
        let mut head = Vec::new();
        let mut byte = [0];
        while !head.ends_with(b"\r\n\r\n") {
            client.read_exact(&mut byte).expect("read the head");
            head.push(byte[0]);
        }
        client.write_all(b"ping").expect("send over the upgrade");
        let mut echoed = [0; 4];
        client.read_exact(&mut echoed).expect("read the echo");
        (String::from_utf8_lossy(&head).into_owned(), echoed)
    });
    let (head, echoed) = exchange.await.expect("client");
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert_eq!(&echoed, b"ping");
    assert_eq!(shutdown.in_flight(), 0, "the upgrading request has ended");
}
