//! A tonic gRPC service with a unary and a server-streaming RPC over a
//! database-like store, and its shutdown.
//!
//! ```text
//! cargo run -p graceful-tokio --example tonic --features tonic
//! grpcurl -plaintext -import-path graceful-tokio/examples/proto -proto orders.proto \
//!     -d '{"item": "tea"}' localhost:50051 orders.v1.Orders/Place
//! grpcurl -plaintext localhost:50051 grpc.health.v1.Health/Watch
//! kill -TERM <pid>        # or Ctrl+C; a second one exits at once
//! ```
//!
//! On `SIGTERM` the health service turns `NOT_SERVING` for every service
//! (the load balancer's cue) while the unready delay still serves
//! everything; then the listener closes, each connection gets GOAWAY,
//! `Place` calls in progress finish, `Follow` streams end with
//! `UNAVAILABLE` (their clients reconnect elsewhere), health `Watch`
//! streams end with `OK`, and the store closes last.
//!
//! The code in `proto/orders.rs` is what `tonic-prost-build` generates from
//! `proto/orders.proto` (servers only); it is checked in so that building
//! the example needs no `protoc`.

use futures_lite::stream;
use graceful_tokio::{Shutdown, UntilGoingAway};
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tonic::service::Routes;
use tonic::{Request, Response, Status};

/// The code generated from `proto/orders.proto`.
#[allow(clippy::all, unreachable_pub, missing_docs)]
mod pb {
    include!("proto/orders.rs");
}

use pb::orders_server::{Orders, OrdersServer};
use pb::{FollowRequest, Order, PlaceReply, PlaceRequest};

#[tokio::main]
async fn main() -> Result<ExitCode, Box<dyn std::error::Error>> {
    let driver = Shutdown::builder()
        .unready_delay(Duration::from_secs(2))
        .drain_timeout(Duration::from_secs(20))
        .build()?;
    let shutdown = driver.handle();
    let signals = graceful_tokio::signals(&shutdown)?;

    // The store registers its cleanup as soon as it is open: it closes after
    // the last RPC that could write to it.
    let store = Store::open();
    shutdown.on_cleanup("store", {
        let store = store.clone();
        move || async move { store.close().await }
    })?;

    let (reporter, _) = tonic_health::server::health_reporter();
    reporter.set_serving::<OrdersServer<Service>>().await;
    let service = Service {
        store,
        shutdown: shutdown.clone(),
    };
    let routes = Routes::new(graceful_tokio::tonic::health(&shutdown, &reporter))
        .add_service(OrdersServer::new(service));

    let listener = TcpListener::bind("127.0.0.1:50051").await?;
    eprintln!("serving gRPC on {}", listener.local_addr()?);
    tokio::spawn(graceful_tokio::tonic::serve(listener, routes, &shutdown));

    let report = graceful_tokio::run(driver).with_signals(signals).await;
    Ok(ExitCode::from(report.exit_code()))
}

/// The gRPC service.
#[derive(Debug)]
struct Service {
    store: Store,
    shutdown: Shutdown,
}

type Follow = Pin<Box<dyn futures_lite::Stream<Item = Result<Order, Status>> + Send>>;

#[tonic::async_trait]
impl Orders for Service {
    async fn place(&self, request: Request<PlaceRequest>) -> Result<Response<PlaceReply>, Status> {
        let id = self.store.insert(request.into_inner().item).await?;
        Ok(Response::new(PlaceReply { id }))
    }

    type FollowStream = UntilGoingAway<Follow>;

    async fn follow(
        &self,
        _: Request<FollowRequest>,
    ) -> Result<Response<UntilGoingAway<Follow>>, Status> {
        let placed = self.store.placed.subscribe();
        let orders = stream::unfold(placed, |mut placed| async move {
            match placed.recv().await {
                Ok(order) => Some((Ok(order), placed)),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    Some((Err(Status::data_loss(format!("{n} orders missed"))), placed))
                }
                Err(broadcast::error::RecvError::Closed) => None,
            }
        });
        // Ends at `closed` with UNAVAILABLE: the client follows elsewhere.
        let orders: Follow = Box::pin(orders);
        let stream = graceful_tokio::tonic::until_going_away(&self.shutdown, orders);
        Ok(Response::new(stream))
    }
}

/// A stand-in for a database: rows in memory, a write that takes time, a
/// feed of new rows, and a close that must come after the last write.
#[derive(Debug, Clone)]
struct Store {
    rows: Arc<Mutex<Option<Vec<Order>>>>,
    placed: broadcast::Sender<Order>,
}

impl Store {
    fn open() -> Store {
        Store {
            rows: Arc::new(Mutex::new(Some(Vec::new()))),
            placed: broadcast::channel(64).0,
        }
    }

    async fn insert(&self, item: String) -> Result<u64, Status> {
        tokio::time::sleep(Duration::from_millis(200)).await; // the write
        let mut rows = self.rows.lock().unwrap_or_else(|e| e.into_inner());
        let rows = rows
            .as_mut()
            .ok_or_else(|| Status::unavailable("the store is closed"))?;
        let order = Order {
            id: rows.len() as u64 + 1,
            item,
        };
        rows.push(order.clone());
        let _ = self.placed.send(order.clone());
        Ok(order.id)
    }

    async fn close(&self) -> Result<(), std::io::Error> {
        let rows = self.rows.lock().unwrap_or_else(|e| e.into_inner()).take();
        eprintln!("store closed with {} orders", rows.map_or(0, |r| r.len()));
        Ok(())
    }
}
