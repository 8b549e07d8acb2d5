//! `plain-tokio` with graceful-tokio added the way its README teaches, and
//! nothing else: the same route (`GET /health/live` → `200 live`, anything
//! else `404`) on the same runtime, served by `graceful_tokio::serve`
//! instead of the hand-written accept loop, with `signals` and `run`
//! turning `SIGTERM` into the drain and the exit code.
//!
//! This is the server figure 2's goal compares to `plain-tokio`: the
//! conformance target also carries its routes, its store and its event
//! lines, which are not shutdown code. `listening HOST:PORT` is printed
//! once bound.
//!
//! With `--tls CERT KEY` it serves TLS through `tls::serve_tls` and
//! `tls::load_config`, as the README's TLS section teaches.

use bytes::Bytes;
use graceful_tokio::Shutdown;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use std::convert::Infallible;
use std::process::ExitCode;
use tokio::net::TcpListener;

/// The same route as `plain-tokio`'s, byte for byte.
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
async fn main() -> Result<ExitCode, Box<dyn std::error::Error>> {
    let args = graceful_bench::ServerArgs::from_env();
    let driver = Shutdown::builder().build()?;
    let shutdown = driver.handle();
    let signals = graceful_tokio::signals(&shutdown)?;
    let listener = TcpListener::bind(args.addr).await?;
    graceful_bench::announce(listener.local_addr()?);
    match &args.tls {
        Some(tls) => {
            let config = graceful_tokio::tls::load_config(&tls.cert, &tls.key)?;
            tokio::spawn(graceful_tokio::tls::serve_tls(
                listener,
                config,
                service_fn(route),
                &shutdown,
            ));
        }
        None => {
            tokio::spawn(graceful_tokio::serve(
                listener,
                service_fn(route),
                &shutdown,
            ));
        }
    }
    let report = graceful_tokio::run(driver).with_signals(signals).await;
    Ok(ExitCode::from(report.exit_code()))
}
