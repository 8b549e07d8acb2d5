//! A baseline: a plain actix-web 4 server as it comes, with no shutdown
//! code of its own, serving `GET /health/live` → `200 live` like the
//! conformance targets, over HTTP/1.1 and h2c (prior knowledge, chosen by
//! actix-web's `bind_auto_h2c` from the first bytes, as the targets do).
//! `listening HOST:PORT` is printed once bound.
//!
//! With `--tls CERT KEY` it serves TLS instead, by actix-web's own
//! `bind_rustls_0_23` (HTTP/2 or HTTP/1.1 by ALPN, as the adapters).

use actix_web::{App, HttpServer, web};
use std::sync::Arc;

async fn live() -> &'static str {
    "live"
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let args = graceful_bench::ServerArgs::from_env();
    let server = HttpServer::new(|| App::new().route("/health/live", web::get().to(live)));
    let server = match &args.tls {
        Some(tls) => {
            let config = Arc::unwrap_or_clone(graceful_bench::tls_config(tls)?);
            server.bind_rustls_0_23(args.addr, config)?
        }
        None => server.bind_auto_h2c(args.addr)?,
    };
    for addr in server.addrs() {
        graceful_bench::announce(addr);
    }
    server.run().await
}
