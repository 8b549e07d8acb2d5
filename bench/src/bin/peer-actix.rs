//! A peer: actix-web 4 with its built-in shutdown, written the way its
//! documentation teaches: `HttpServer` handles SIGTERM (graceful stop) and
//! SIGINT itself, and `shutdown_timeout` bounds the graceful stop.
//!
//! `GET /sleep?ms=N` answers `slept N` after N ms, `GET /health/live`
//! answers `live`; `listening HOST:PORT` is printed once bound.

use actix_web::{App, HttpServer, web};
use serde::Deserialize;
use std::time::Duration;

#[derive(Deserialize)]
struct Sleep {
    ms: u64,
}

async fn sleep(query: web::Query<Sleep>) -> String {
    let ms = query.ms;
    actix_web::rt::time::sleep(Duration::from_millis(ms)).await;
    format!("slept {ms}")
}

async fn live() -> &'static str {
    "live"
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let args = graceful_bench::ServerArgs::from_env();
    let server = HttpServer::new(|| {
        App::new()
            .route("/sleep", web::get().to(sleep))
            .route("/health/live", web::get().to(live))
    })
    .shutdown_timeout(30)
    .bind(args.addr)?;
    for addr in server.addrs() {
        graceful_bench::announce(addr);
    }
    server.run().await
}
