//! `plain-smol` with graceful-smol added the way its README teaches, and
//! nothing else: the same route (`GET /health/live` → `200 live`, anything
//! else `404`) on the same `smol::Executor` and threads, served by
//! `graceful_smol::serve` instead of the hand-written accept loop, with
//! `signals` and `run` turning `SIGTERM` into the drain and the exit code.
//!
//! This is the server figure 2's goal compares to `plain-smol`: the
//! conformance target also carries its routes, its store and its event
//! lines, which are not shutdown code. `listening HOST:PORT` is printed
//! once bound.
//!
//! With `--tls CERT KEY` it serves TLS through `tls::serve_tls` and
//! `tls::load_config`, as the README's TLS section teaches.

use bytes::Bytes;
use graceful_smol::{Shutdown, Spawn};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use smol::{Async, Executor};
use std::convert::Infallible;
use std::net::TcpListener;
use std::num::NonZeroUsize;
use std::process::ExitCode;
use std::sync::Arc;

/// The same route as `plain-smol`'s, byte for byte.
async fn route(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(if request.uri().path() == "/health/live" {
        Response::new(Full::new(Bytes::from_static(b"live")))
    } else {
        let mut response = Response::new(Full::new(Bytes::from_static(b"not found")));
        *response.status_mut() = StatusCode::NOT_FOUND;
        response
    })
}

fn main() -> Result<ExitCode, Box<dyn std::error::Error>> {
    let args = graceful_bench::ServerArgs::from_env();
    let threads = args
        .threads
        .or_else(|| std::thread::available_parallelism().ok())
        .unwrap_or(NonZeroUsize::MIN)
        .get();
    let driver = Shutdown::builder().build()?;
    let shutdown = driver.handle();
    let signals = graceful_smol::signals(&shutdown)?;
    let executor = Arc::new(Executor::new());
    let listener = Async::<TcpListener>::bind(args.addr)?;
    graceful_bench::announce(listener.get_ref().local_addr()?);
    for _ in 1..threads {
        let executor = executor.clone();
        std::thread::spawn(move || smol::block_on(executor.run(smol::future::pending::<()>())));
    }
    match &args.tls {
        Some(tls) => {
            let config = graceful_smol::tls::load_config(&tls.cert, &tls.key)?;
            executor.spawn_detached(graceful_smol::tls::serve_tls(
                listener,
                config,
                service_fn(route),
                &shutdown,
                executor.clone(),
            ));
        }
        None => {
            executor.spawn_detached(graceful_smol::serve(
                listener,
                service_fn(route),
                &shutdown,
                executor.clone(),
            ));
        }
    }
    let run = graceful_smol::run(driver).with_signals(signals);
    let report = smol::block_on(executor.run(run));
    Ok(ExitCode::from(report.exit_code()))
}
