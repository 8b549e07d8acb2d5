//! A baseline: a plain hyper 1 server on tokio, written like hyper's
//! "hello" example, with no shutdown code at all: `GET /health/live` →
//! `200 live`, anything else `404`. `listening HOST:PORT` is printed once
//! bound.
//!
//! It runs on tokio's multi-threaded runtime with its defaults and sets
//! `TCP_NODELAY` on each connection, as graceful-tokio's server does, so
//! that the only difference from the tokio target is the adapter.

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use tokio::net::TcpListener;

async fn route(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(if request.uri().path() == "/health/live" {
        Response::new(Full::new(Bytes::from_static(b"live")))
    } else {
        let mut response = Response::new(Full::new(Bytes::from_static(b"not found")));
        *response.status_mut() = StatusCode::NOT_FOUND;
        response
    })
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = graceful_bench::ServerArgs::from_env();
    let listener = TcpListener::bind(args.addr).await?;
    graceful_bench::announce(listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let io = TokioIo::new(stream);
            if let Err(error) = http1::Builder::new()
                .serve_connection(io, service_fn(route))
                .await
            {
                eprintln!("plain-tokio: connection: {error}");
            }
        });
    }
}
