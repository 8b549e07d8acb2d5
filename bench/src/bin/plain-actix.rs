//! A baseline: a plain actix-web 4 server as it comes, with no shutdown
//! code of its own, serving `GET /health/live` → `200 live` like the
//! conformance targets, over HTTP/1.1 and h2c (prior knowledge, chosen by
//! actix-web's `bind_auto_h2c` from the first bytes, as the targets do).
//! `listening HOST:PORT` is printed once bound.

use actix_web::{App, HttpServer, web};

async fn live() -> &'static str {
    "live"
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let args = graceful_bench::ServerArgs::from_env();
    let server = HttpServer::new(|| App::new().route("/health/live", web::get().to(live)))
        .bind_auto_h2c(args.addr)?;
    for addr in server.addrs() {
        graceful_bench::announce(addr);
    }
    server.run().await
}
