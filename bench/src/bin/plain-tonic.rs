//! A baseline: tonic's own server with the standard health service, and no
//! shutdown code at all (it runs until it is killed).
//!
//! `grpc.health.v1.Health/Check` answers `SERVING` for the service `""`;
//! `listening HOST:PORT` is printed once bound.

use tokio::net::TcpListener;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = graceful_bench::ServerArgs::from_env();
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("", ServingStatus::Serving)
        .await;
    let listener = TcpListener::bind(args.addr).await?;
    graceful_bench::announce(listener.local_addr()?);
    Server::builder()
        .add_service(health)
        .serve_with_incoming(TcpIncoming::from(listener))
        .await?;
    Ok(())
}
