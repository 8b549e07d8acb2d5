//! A peer: tonic's own graceful shutdown, written the way tonic's
//! documentation teaches: `Server::serve_with_incoming_shutdown` with a
//! future that resolves at SIGTERM or Ctrl+C, and the standard health
//! service as `tonic-health` ships it.
//!
//! `grpc.health.v1.Health/Check` answers `SERVING` for the service `""`;
//! `listening HOST:PORT` is printed once bound.

use tokio::net::TcpListener;
use tokio::signal;
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
        .serve_with_incoming_shutdown(TcpIncoming::from(listener), shutdown_signal())
        .await?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        signal::ctrl_c()
            .await
            .expect("failed to install Ctrl+C handler");
    };
    let terminate = async {
        signal::unix::signal(signal::unix::SignalKind::terminate())
            .expect("failed to install signal handler")
            .recv()
            .await;
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
