//! An axum app with resources that need an orderly shutdown: a connection
//! pool, and a background task that flushes an audit log through it.
//!
//! ```text
//! cargo run -p graceful-tokio --example axum --features axum
//! curl -X POST localhost:3000/orders -d 42
//! kill -TERM <pid>        # or Ctrl+C; a second one exits at once
//! ```
//!
//! On `SIGTERM`, `/health/ready` turns `503` for a second (the load
//! balancer's cue), the listener closes, requests in progress finish, and
//! then the resources are released in the reverse order they were acquired:
//! the flusher writes its last batch while the pool it writes through is
//! still open, then the pool closes.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Router, http::StatusCode};
use graceful_tokio::Shutdown;
use std::io;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc, oneshot};

#[tokio::main]
async fn main() -> Result<ExitCode, Box<dyn std::error::Error>> {
    let driver = Shutdown::builder()
        .unready_delay(Duration::from_secs(1))
        .drain_timeout(Duration::from_secs(20))
        .grace_period(Duration::from_secs(30))
        .on_event(|event| eprintln!("shutdown: {event:?}"))
        .build()?;
    let shutdown = driver.handle();
    let signals = graceful_tokio::signals(&shutdown)?;

    // Each resource registers its cleanup as soon as it exists.
    let pool = Pool::connect(4).await;
    shutdown.on_cleanup("pool", {
        let pool = pool.clone();
        move || async move { pool.close().await }
    })?;
    let (audit, flusher) = Flusher::start(pool.clone());
    shutdown.on_cleanup("audit-flusher", move || flusher.stop())?;

    let app = Router::new()
        .route("/", get(|| async { "hello\n" }))
        .route("/orders", post(create_order))
        .route("/health/ready", graceful_tokio::axum::readiness(&shutdown))
        .route("/health/live", get(|| async { "live" }))
        .with_state(AppState { pool, audit });

    let addr = std::env::args().nth(1).unwrap_or("127.0.0.1:3000".into());
    let listener = TcpListener::bind(&addr).await?;
    eprintln!("listening on {}", listener.local_addr()?);
    tokio::spawn(graceful_tokio::serve_tower(listener, app, &shutdown));

    // The report, whether the drain finished or a second signal forced it.
    let report = graceful_tokio::run(driver).with_signals(signals).await;
    eprintln!("{report}");
    Ok(ExitCode::from(report.exit_code()))
}

#[derive(Clone)]
struct AppState {
    pool: Pool,
    audit: mpsc::UnboundedSender<String>,
}

async fn create_order(State(state): State<AppState>, id: String) -> (StatusCode, String) {
    let Some(connection) = state.pool.get().await else {
        return (StatusCode::SERVICE_UNAVAILABLE, "pool closed\n".into());
    };
    // The "query".
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(connection);
    let _ = state.audit.send(format!("order {id} stored"));
    (StatusCode::CREATED, format!("stored {id}\n"))
}

/// A stand-in for a database pool: `size` connections, handed out one
/// request at a time, and closed for good at shutdown.
#[derive(Clone)]
struct Pool {
    connections: Arc<Semaphore>,
    size: u32,
}

impl Pool {
    async fn connect(size: u32) -> Pool {
        eprintln!("pool: {size} connections open");
        Pool {
            connections: Arc::new(Semaphore::new(size as usize)),
            size,
        }
    }

    async fn get(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        self.connections.acquire().await.ok()
    }

    /// Waits for every connection to come back, then closes them.
    async fn close(&self) -> io::Result<()> {
        let all = self
            .connections
            .acquire_many(self.size)
            .await
            .map_err(io::Error::other)?;
        all.forget();
        self.connections.close();
        eprintln!("pool: {} connections closed", self.size);
        Ok(())
    }
}

/// Batches audit lines, and writes them through the pool every second.
struct Flusher {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Flusher {
    fn start(pool: Pool) -> (mpsc::UnboundedSender<String>, Flusher) {
        let (lines, mut incoming) = mpsc::unbounded_channel::<String>();
        let (stop, mut stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            let mut batch = Vec::new();
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    Some(line) = incoming.recv() => batch.push(line),
                    _ = tick.tick() => flush(&pool, &mut batch).await,
                    _ = &mut stopped => break,
                }
            }
            // Whatever arrived before the stop, including during the drain.
            while let Ok(line) = incoming.try_recv() {
                batch.push(line);
            }
            flush(&pool, &mut batch).await;
        });
        (lines, Flusher { stop, task })
    }

    /// Stops the task after a last flush.
    async fn stop(self) -> io::Result<()> {
        let _ = self.stop.send(());
        self.task.await.map_err(io::Error::other)
    }
}

async fn flush(pool: &Pool, batch: &mut Vec<String>) {
    if batch.is_empty() {
        return;
    }
    let Some(_connection) = pool.get().await else {
        eprintln!("audit: pool closed, {} lines lost", batch.len());
        return;
    };
    for line in batch.drain(..) {
        eprintln!("audit: {line}");
    }
}
