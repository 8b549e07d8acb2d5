//! A hyper app on smol with resources that need an orderly shutdown: a
//! connection pool, and a background task that flushes an audit log through
//! it. Everything runs on smol's global executor.
//!
//! ```text
//! cargo run -p graceful-smol --example orders
//! curl -X POST localhost:3000/orders -d 42
//! kill -TERM <pid>        # or Ctrl+C; a second one exits at once
//! ```
//!
//! On `SIGTERM`, `/health/ready` turns `503` for a second (the load
//! balancer's cue), the listener closes, requests in progress finish, and
//! then the resources are released in the reverse order they were acquired:
//! the flusher writes its last batch while the pool it writes through is
//! still open, then the pool closes.

use futures_lite::{StreamExt, future};
use graceful_smol::{Global, Shutdown};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use smol::channel::{self, Receiver, Sender};
use smol::lock::{Semaphore, SemaphoreGuardArc};
use smol::{Async, Task, Timer};
use std::convert::Infallible;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

fn main() -> Result<ExitCode, Box<dyn std::error::Error>> {
    smol::block_on(serve())
}

async fn serve() -> Result<ExitCode, Box<dyn std::error::Error>> {
    let driver = Shutdown::builder()
        .unready_delay(Duration::from_secs(1))
        .drain_timeout(Duration::from_secs(20))
        .grace_period(Duration::from_secs(30))
        .on_event(|event| eprintln!("shutdown: {event:?}"))
        .build()?;
    let shutdown = driver.handle();
    let signals = graceful_smol::signals(&shutdown)?;

    // Each resource registers its cleanup as soon as it exists.
    let pool = Pool::connect(4);
    shutdown.on_cleanup("pool", {
        let pool = pool.clone();
        move || async move { pool.close().await }
    })?;
    let (audit, flusher) = Flusher::start(pool.clone());
    shutdown.on_cleanup("audit-flusher", move || flusher.stop())?;

    let app = Arc::new(App {
        shutdown: shutdown.clone(),
        pool,
        audit,
    });
    let service = service_fn(move |request| {
        let app = app.clone();
        async move { Ok::<_, Infallible>(app.route(request).await) }
    });

    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or("127.0.0.1:3000".into())
        .parse()?;
    let listener = Async::<TcpListener>::bind(addr)?;
    eprintln!("listening on {}", listener.get_ref().local_addr()?);
    smol::spawn(graceful_smol::serve(listener, service, &shutdown, Global)).detach();

    // The report, whether the drain finished or a second signal forced it.
    let report = graceful_smol::run(driver).with_signals(signals).await;
    eprintln!("{report}");
    Ok(ExitCode::from(report.exit_code()))
}

struct App {
    shutdown: Shutdown,
    pool: Pool,
    audit: Sender<String>,
}

impl App {
    async fn route(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        match (request.method(), request.uri().path()) {
            (&Method::GET, "/") => text(StatusCode::OK, "hello\n"),
            (&Method::POST, "/orders") => self.create_order(request).await,
            (&Method::GET, "/health/ready") if self.shutdown.is_ready() => {
                text(StatusCode::OK, "ready")
            }
            (&Method::GET, "/health/ready") => text(StatusCode::SERVICE_UNAVAILABLE, "not ready"),
            (&Method::GET, "/health/live") => text(StatusCode::OK, "live"),
            _ => text(StatusCode::NOT_FOUND, "not found\n"),
        }
    }

    async fn create_order(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let Ok(body) = request.into_body().collect().await else {
            return text(StatusCode::BAD_REQUEST, "unreadable body\n");
        };
        let id = String::from_utf8_lossy(&body.to_bytes()).trim().to_owned();
        let Some(connection) = self.pool.get().await else {
            return text(StatusCode::SERVICE_UNAVAILABLE, "pool closed\n");
        };
        // The "query".
        Timer::after(Duration::from_millis(200)).await;
        drop(connection);
        let _ = self.audit.try_send(format!("order {id} stored"));
        text(StatusCode::CREATED, format!("stored {id}\n"))
    }
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
}

/// A stand-in for a database pool: `size` connections, handed out one
/// request at a time, and closed for good at shutdown.
#[derive(Clone)]
struct Pool {
    connections: Arc<Semaphore>,
    closed: Arc<AtomicBool>,
    size: usize,
}

impl Pool {
    fn connect(size: usize) -> Pool {
        eprintln!("pool: {size} connections open");
        Pool {
            connections: Arc::new(Semaphore::new(size)),
            closed: Arc::new(AtomicBool::new(false)),
            size,
        }
    }

    async fn get(&self) -> Option<SemaphoreGuardArc> {
        if self.closed.load(Ordering::Acquire) {
            return None;
        }
        let connection = self.connections.acquire_arc().await;
        (!self.closed.load(Ordering::Acquire)).then_some(connection)
    }

    /// Waits for every connection to come back, then closes them.
    async fn close(&self) -> io::Result<()> {
        let mut all = Vec::with_capacity(self.size);
        for _ in 0..self.size {
            all.push(self.connections.acquire_arc().await);
        }
        self.closed.store(true, Ordering::Release);
        eprintln!("pool: {} connections closed", self.size);
        Ok(())
    }
}

/// Batches audit lines, and writes them through the pool every second.
struct Flusher {
    stop: Sender<()>,
    task: Task<()>,
}

/// What woke the flusher.
enum Wake {
    Line(String),
    Tick,
    Stop,
}

impl Flusher {
    fn start(pool: Pool) -> (Sender<String>, Flusher) {
        let (lines, incoming) = channel::unbounded::<String>();
        let (stop, stopped) = channel::bounded::<()>(1);
        let task = smol::spawn(async move {
            let mut batch = Vec::new();
            let mut tick = Timer::interval(Duration::from_secs(1));
            loop {
                let wake = future::or(
                    next_line(&incoming),
                    future::or(
                        async {
                            tick.next().await;
                            Wake::Tick
                        },
                        async {
                            let _ = stopped.recv().await;
                            Wake::Stop
                        },
                    ),
                )
                .await;
                match wake {
                    Wake::Line(line) => batch.push(line),
                    Wake::Tick => flush(&pool, &mut batch).await,
                    Wake::Stop => break,
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
        let _ = self.stop.send(()).await;
        self.task.await;
        Ok(())
    }
}

async fn next_line(incoming: &Receiver<String>) -> Wake {
    match incoming.recv().await {
        Ok(line) => Wake::Line(line),
        // Every sender is gone: nothing more to batch.
        Err(_) => Wake::Stop,
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
