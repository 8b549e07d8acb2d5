//! A baseline: a plain hyper 1 server on tokio, written like hyper's
//! "hello" example, with no shutdown code at all: `GET /health/live` →
//! `200 live`, anything else `404`. `listening HOST:PORT` is printed once
//! bound.
//!
//! It runs on tokio's multi-threaded runtime with its defaults and sets
//! `TCP_NODELAY` on each connection, as graceful-tokio's server does, so
//! that the only difference from the tokio target is the adapter.
//!
//! Like the tokio target, it serves HTTP/2 with prior knowledge (h2c) on the
//! same port (figure 9): a connection whose first bytes are the HTTP/2
//! preface goes to hyper's `http2::Builder`, any other to `http1::Builder`
//! as before. The bytes are looked at with `peek` (`MSG_PEEK`), not read, so
//! the HTTP/1.1 path serves the same `TcpStream` as it did without HTTP/2:
//! one more system call per connection, none per request.
//!
//! With `--tls CERT KEY` it serves TLS instead, as tokio-rustls's server
//! example does (a `TlsAcceptor` around each accepted stream), and chooses
//! HTTP/2 or HTTP/1.1 by the ALPN protocol the handshake settled on, as
//! graceful-tokio's `tls::serve_tls` does (figure 2's TLS rows, figure 11).

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

async fn route(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(if request.uri().path() == "/health/live" {
        Response::new(Full::new(Bytes::from_static(b"live")))
    } else {
        let mut response = Response::new(Full::new(Bytes::from_static(b"not found")));
        *response.status_mut() = StatusCode::NOT_FOUND;
        response
    })
}

/// Whether the connection starts with the HTTP/2 preface, from its first
/// bytes left in the socket (`None`: it closed, or failed, first).
async fn is_h2(stream: &TcpStream) -> Option<bool> {
    let mut first = [0; graceful_bench::H2_SNIFF];
    // A client that sent fewer bytes than the decision needs is looked at
    // again a little later (a peek of the same bytes would return at once);
    // a 100 ms bound, then it is HTTP/1.1's to answer.
    for _ in 0..100 {
        let n = stream.peek(&mut first).await.ok()?;
        if n == 0 {
            return None;
        }
        if let Some(h2) = graceful_bench::h2_preface(&first[..n]) {
            return Some(h2);
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Some(false)
}

/// One TLS connection: the handshake, then HTTP/2 if the client chose
/// `h2` by ALPN, HTTP/1.1 otherwise.
async fn serve_tls(acceptor: TlsAcceptor, stream: TcpStream) {
    let Ok(stream) = acceptor.accept(stream).await else {
        return;
    };
    let served = if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
        http2::Builder::new(TokioExecutor::new())
            .serve_connection(TokioIo::new(stream), service_fn(route))
            .await
    } else {
        http1::Builder::new()
            .serve_connection(TokioIo::new(stream), service_fn(route))
            .await
    };
    if let Err(error) = served {
        eprintln!("plain-tokio: connection: {error}");
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = graceful_bench::ServerArgs::from_env();
    let acceptor = match &args.tls {
        Some(tls) => Some(TlsAcceptor::from(graceful_bench::tls_config(tls)?)),
        None => None,
    };
    let listener = TcpListener::bind(args.addr).await?;
    graceful_bench::announce(listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        if let Some(acceptor) = &acceptor {
            tokio::spawn(serve_tls(acceptor.clone(), stream));
            continue;
        }
        tokio::spawn(async move {
            let served = match is_h2(&stream).await {
                None => return,
                Some(false) => {
                    http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service_fn(route))
                        .await
                }
                Some(true) => {
                    http2::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service_fn(route))
                        .await
                }
            };
            if let Err(error) = served {
                eprintln!("plain-tokio: connection: {error}");
            }
        });
    }
}
