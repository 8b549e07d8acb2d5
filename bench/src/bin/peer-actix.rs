//! A peer: actix-web 4 with its built-in shutdown, written the way its
//! documentation teaches: `HttpServer` handles SIGTERM (graceful stop) and
//! SIGINT itself, and `shutdown_timeout` bounds the graceful stop.
//!
//! `GET /sleep?ms=N` answers `slept N` after N ms, `POST /orders?ms=N`
//! answers `201 stored ID` (ID: the body) after N ms, with no store behind
//! it (the rollout's non-idempotent request), `GET /health/live` answers
//! `live`; `listening HOST:PORT` is printed once bound.

use actix_web::{App, HttpResponse, HttpServer, web};
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

async fn order(query: web::Query<Sleep>, id: String) -> HttpResponse {
    actix_web::rt::time::sleep(Duration::from_millis(query.ms)).await;
    HttpResponse::Created().body(format!("stored {id}"))
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
            .route("/orders", web::post().to(order))
            .route("/health/live", web::get().to(live))
    })
    .shutdown_timeout(30)
    .bind(args.addr)?;
    for addr in server.addrs() {
        graceful_bench::announce(addr);
    }
    server.run().await
}
