//! A baseline: a plain hyper 1 server on smol (through smol-hyper), with no
//! shutdown code at all: `GET /health/live` → `200 live`, anything else
//! `404`. `listening HOST:PORT` is printed once bound.
//!
//! It runs one `smol::Executor` on `--threads N` threads (default: one per
//! core, like tokio's multi-threaded runtime) and sets `TCP_NODELAY` on each
//! connection.
//!
//! Like the smol target, it serves HTTP/2 with prior knowledge (h2c) on the
//! same port (figure 9): a connection whose first bytes are the HTTP/2
//! preface goes to hyper's `http2::Builder` (streams spawned on the same
//! executor), any other to `http1::Builder` as before. The bytes are looked
//! at with `peek` (`MSG_PEEK`), not read, so the HTTP/1.1 path serves the
//! same stream as it did without HTTP/2: one more system call per
//! connection, none per request.
//!
//! With `--tls CERT KEY` it serves TLS instead, as futures-rustls teaches
//! (a `TlsAcceptor` around each accepted stream), and chooses HTTP/2 or
//! HTTP/1.1 by the ALPN protocol the handshake settled on, as
//! graceful-smol's `tls::serve_tls` does (figure 2's TLS rows, figure 11).

use bytes::Bytes;
use futures_rustls::TlsAcceptor;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use smol::Executor;
use smol::net::{TcpListener, TcpStream};
use smol_hyper::rt::{FuturesIo, SmolExecutor};
use std::convert::Infallible;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

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
        smol::Timer::after(Duration::from_millis(1)).await;
    }
    Some(false)
}

/// One TLS connection: the handshake, then HTTP/2 if the client chose
/// `h2` by ALPN, HTTP/1.1 otherwise.
async fn serve_tls(
    acceptor: TlsAcceptor,
    stream: TcpStream,
    streams: SmolExecutor<Arc<Executor<'static>>>,
) {
    let Ok(stream) = acceptor.accept(stream).await else {
        return;
    };
    let served = if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
        http2::Builder::new(streams)
            .serve_connection(FuturesIo::new(stream), service_fn(route))
            .await
    } else {
        http1::Builder::new()
            .serve_connection(FuturesIo::new(stream), service_fn(route))
            .await
    };
    if let Err(error) = served {
        eprintln!("plain-smol: connection: {error}");
    }
}

async fn serve(
    executor: Arc<Executor<'static>>,
    listener: TcpListener,
    acceptor: Option<TlsAcceptor>,
) -> std::io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let streams = SmolExecutor::new(executor.clone());
        if let Some(acceptor) = &acceptor {
            executor
                .spawn(serve_tls(acceptor.clone(), stream, streams))
                .detach();
            continue;
        }
        executor
            .spawn(async move {
                let served = match is_h2(&stream).await {
                    None => return,
                    Some(false) => {
                        http1::Builder::new()
                            .serve_connection(FuturesIo::new(stream), service_fn(route))
                            .await
                    }
                    Some(true) => {
                        http2::Builder::new(streams)
                            .serve_connection(FuturesIo::new(stream), service_fn(route))
                            .await
                    }
                };
                if let Err(error) = served {
                    eprintln!("plain-smol: connection: {error}");
                }
            })
            .detach();
    }
}

fn main() -> std::io::Result<()> {
    let args = graceful_bench::ServerArgs::from_env();
    let threads = args
        .threads
        .or_else(|| std::thread::available_parallelism().ok())
        .unwrap_or(NonZeroUsize::MIN)
        .get();
    let acceptor = match &args.tls {
        Some(tls) => Some(TlsAcceptor::from(graceful_bench::tls_config(tls)?)),
        None => None,
    };
    let executor = Arc::new(Executor::new());
    let listener = smol::block_on(TcpListener::bind(args.addr))?;
    graceful_bench::announce(listener.local_addr()?);
    for _ in 1..threads {
        let executor = executor.clone();
        std::thread::spawn(move || smol::block_on(executor.run(smol::future::pending::<()>())));
    }
    smol::block_on(executor.run(serve(executor.clone(), listener, acceptor)))
}
