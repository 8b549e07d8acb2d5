//! `plain-actix` with graceful-actix added the way its README teaches, and
//! nothing else: the same `App` (`GET /health/live` → `200 live`) served
//! by `graceful_actix::Server` instead of `HttpServer`, with `signals` and
//! `run` turning `SIGTERM` into the drain and the exit code.
//!
//! This is the server figure 2's goal compares to `plain-actix`: the
//! conformance target also carries its routes, its store and its event
//! lines, which are not shutdown code. `listening HOST:PORT` is printed
//! once bound.
//!
//! With `--tls CERT KEY` it serves TLS through `tls::serve_tls` and
//! `tls::load_config`, as the README's TLS section teaches.

use actix_web::{App, web};
use graceful_actix::{Server, Shutdown};
use std::net::TcpListener;
use std::process::ExitCode;

async fn live() -> &'static str {
    "live"
}

#[actix_web::main]
async fn main() -> Result<ExitCode, Box<dyn std::error::Error>> {
    let args = graceful_bench::ServerArgs::from_env();
    let driver = Shutdown::builder().build()?;
    let shutdown = driver.handle();
    let signals = graceful_actix::signals(&shutdown)?;
    let listener = TcpListener::bind(args.addr)?;
    graceful_bench::announce(listener.local_addr()?);
    let app = || App::new().route("/health/live", web::get().to(live));
    match &args.tls {
        Some(tls) => {
            let config = graceful_actix::tls::load_config(&tls.cert, &tls.key)?;
            actix_web::rt::spawn(graceful_actix::tls::serve_tls(
                listener, config, app, &shutdown,
            ));
        }
        None => {
            actix_web::rt::spawn(Server::new(app).serve(listener, &shutdown));
        }
    }
    let report = graceful_actix::run(driver).with_signals(signals).await;
    Ok(ExitCode::from(report.exit_code()))
}
