//! A baseline: a plain hyper 1 server on smol (through smol-hyper), with no
//! shutdown code at all: `GET /health/live` → `200 live`, anything else
//! `404`. `listening HOST:PORT` is printed once bound.
//!
//! It runs one `smol::Executor` on `--threads N` threads (default: one per
//! core, like tokio's multi-threaded runtime) and sets `TCP_NODELAY` on each
//! connection.

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use smol::Executor;
use smol::net::TcpListener;
use smol_hyper::rt::FuturesIo;
use std::convert::Infallible;
use std::num::NonZeroUsize;
use std::sync::Arc;

async fn route(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(if request.uri().path() == "/health/live" {
        Response::new(Full::new(Bytes::from_static(b"live")))
    } else {
        let mut response = Response::new(Full::new(Bytes::from_static(b"not found")));
        *response.status_mut() = StatusCode::NOT_FOUND;
        response
    })
}

async fn serve(executor: Arc<Executor<'static>>, listener: TcpListener) -> std::io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        executor
            .spawn(async move {
                if let Err(error) = http1::Builder::new()
                    .serve_connection(FuturesIo::new(stream), service_fn(route))
                    .await
                {
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
    let executor = Arc::new(Executor::new());
    let listener = smol::block_on(TcpListener::bind(args.addr))?;
    graceful_bench::announce(listener.local_addr()?);
    for _ in 1..threads {
        let executor = executor.clone();
        std::thread::spawn(move || smol::block_on(executor.run(smol::future::pending::<()>())));
    }
    smol::block_on(executor.run(serve(executor.clone(), listener)))
}
