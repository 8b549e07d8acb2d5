//! HTTP upgrades (what a WebSocket does): `101 Switching Protocols`, then
//! bytes over the upgraded connection, on a real socket.

use graceful_smol::{Global, Shutdown};
use http_body_util::Empty;
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONNECTION, UPGRADE};
use hyper::rt::{Read as _, ReadBuf, Write as _};
use hyper::service::service_fn;
use hyper::upgrade::Upgraded;
use hyper::{Request, Response, StatusCode};
use smol::Async;
use std::convert::Infallible;
use std::future::poll_fn;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::pin::Pin;
use std::time::Duration;

/// Echoes what arrives on `io` until it ends, through hyper's own io
/// traits (smol-hyper adapts them one way only).
async fn echo_over(mut io: Upgraded) {
    let mut buffer = [0; 64];
    loop {
        let mut read = ReadBuf::new(&mut buffer);
        let filled = poll_fn(|cx| Pin::new(&mut io).poll_read(cx, read.unfilled())).await;
        let count = read.filled().len();
        if filled.is_err() || count == 0 {
            return;
        }
        let mut written = 0;
        while written < count {
            let chunk = &buffer[written..count];
            match poll_fn(|cx| Pin::new(&mut io).poll_write(cx, chunk)).await {
                Ok(0) | Err(_) => return,
                Ok(n) => written += n,
            }
        }
    }
}

/// Answers `101` and echoes whatever the upgraded connection sends.
async fn echo(mut request: Request<Incoming>) -> Result<Response<Empty<Bytes>>, Infallible> {
    let upgrade = hyper::upgrade::on(&mut request);
    smol::spawn(async move {
        if let Ok(upgraded) = upgrade.await {
            echo_over(upgraded).await;
        }
    })
    .detach();
    let mut response = Response::new(Empty::new());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(CONNECTION, "upgrade".parse().unwrap());
    headers.insert(UPGRADE, "echo".parse().unwrap());
    Ok(response)
}

#[test]
fn an_upgraded_connection_carries_bytes_after_its_101() {
    let shutdown = Shutdown::builder().build().expect("build").handle();
    let listener = Async::<TcpListener>::bind(([127, 0, 0, 1], 0)).expect("bind");
    let addr = listener.get_ref().local_addr().expect("addr");
    smol::spawn(graceful_smol::serve(
        listener,
        service_fn(echo),
        &shutdown,
        Global,
    ))
    .detach();

    let mut client = std::net::TcpStream::connect(addr).expect("connect");
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    client
        .write_all(
            b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\n",
        )
        .expect("send");
    let mut head = Vec::new();
    let mut byte = [0];
    while !head.ends_with(b"\r\n\r\n") {
        client.read_exact(&mut byte).expect("read the head");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    client.write_all(b"ping").expect("send over the upgrade");
    let mut echoed = [0; 4];
    client.read_exact(&mut echoed).expect("read the echo");
    assert_eq!(&echoed, b"ping");
}
