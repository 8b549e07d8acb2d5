//! The actix conformance target: an HTTP/1.1 server that implements the
//! conformance contract (see the `graceful-conformance` crate) with
//! actix-web and this adapter, and so the fullest example of it.
//!
//! ```text
//! cargo run --example actix-target -- --store orders.sqlite --cleanup cache,queue
//! ```
//!
//! Standard output carries only the contract's events, one a line; logs go
//! to standard error. The shutdown part is `serve`: signals and the driver
//! start before the listener is bound, resources register their cleanup as
//! they are acquired, and the process exits with the report's code, or at
//! once with `128 + N` on a second signal.

// Standard output is the contract's channel: printing is the point.
#![allow(clippy::print_stdout)]

use actix_web::body::{BodySize, MessageBody};
use actix_web::http::StatusCode;
use actix_web::rt::time::{Instant, Sleep, sleep, sleep_until};
use actix_web::web::{self, Bytes};
use actix_web::{App, HttpRequest, HttpResponse, Resource};
use clap::error::ErrorKind;
use clap::{CommandFactory, Parser};
use graceful_actix::{Event, Shutdown};
use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, ready};
use std::time::Duration;

/// An HTTP/1.1 server on actix-web that shuts down gracefully, as the
/// conformance contract says.
#[derive(Debug, Parser)]
#[command(name = "actix-target", version)]
struct Args {
    /// Where to listen; port 0 picks a free port.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:0", value_parser = parse_addr)]
    addr: SocketAddr,
    /// How long requests in progress may run, from `closed`, before they are abandoned.
    #[arg(long, value_name = "N", default_value_t = 30_000)]
    drain_timeout_ms: u64,
    /// After the first signal, serve on (unready) for N ms before closing the listener.
    #[arg(long, value_name = "N", default_value_t = 0)]
    unready_delay_ms: u64,
    /// Names of cleanup steps, registered in this order at start-up.
    #[arg(long, value_name = "A,B,C", value_delimiter = ',')]
    cleanup: Vec<String>,
    /// How long each `--cleanup` step takes.
    #[arg(long, value_name = "N", default_value_t = 0)]
    cleanup_ms: u64,
    /// How long one cleanup step may take before it is abandoned.
    #[arg(long, value_name = "N", default_value_t = 5_000)]
    cleanup_timeout_ms: u64,
    /// That step returns an error.
    #[arg(long, value_name = "NAME")]
    cleanup_fail: Vec<String>,
    /// That step panics.
    #[arg(long, value_name = "NAME")]
    cleanup_panic: Vec<String>,
    /// That step never finishes by itself.
    #[arg(long, value_name = "NAME")]
    cleanup_hang: Vec<String>,
    /// SQLite database for `/orders`, created if missing.
    #[arg(long, value_name = "PATH")]
    store: Option<PathBuf>,
}

fn parse_addr(value: &str) -> Result<SocketAddr, String> {
    let mut addrs = value
        .to_socket_addrs()
        .map_err(|error| format!("not HOST:PORT ({error})"))?;
    addrs.next().ok_or_else(|| "no address".to_owned())
}

/// What a cleanup step is told to do.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Told {
    Succeed,
    Fail,
    Panic,
    Hang,
}

const STORE: &str = "store";

/// Exits with a usage error naming `option`: status 2, nothing served.
fn usage_error(option: &str, message: impl fmt::Display) -> ! {
    Args::command()
        .error(
            ErrorKind::ValueValidation,
            format!("invalid value for {option}: {message}"),
        )
        .exit()
}

impl Args {
    /// The cleanup steps in registration order, with what each is told.
    fn steps(&self) -> Vec<(String, Told)> {
        let mut names: Vec<&str> = Vec::new();
        if self.store.is_some() {
            names.push(STORE);
        }
        for name in &self.cleanup {
            if name.is_empty() || name.chars().any(char::is_whitespace) {
                usage_error("--cleanup", format!("`{name}` is not a step name"));
            }
            if names.contains(&name.as_str()) {
                usage_error("--cleanup", format!("step `{name}` is named twice"));
            }
            names.push(name);
        }
        let mut steps: Vec<(String, Told)> = names
            .iter()
            .map(|name| ((*name).to_owned(), Told::Succeed))
            .collect();
        for (option, told, targets) in [
            ("--cleanup-fail", Told::Fail, &self.cleanup_fail),
            ("--cleanup-panic", Told::Panic, &self.cleanup_panic),
            ("--cleanup-hang", Told::Hang, &self.cleanup_hang),
        ] {
            for target in targets {
                match steps.iter_mut().find(|(name, _)| name == target) {
                    None => usage_error(option, format!("no cleanup step is named `{target}`")),
                    Some((_, already)) if *already != Told::Succeed && *already != told => {
                        usage_error(
                            option,
                            format!("step `{target}` is already told {already:?}"),
                        )
                    }
                    Some((_, slot)) => *slot = told,
                }
            }
        }
        steps
    }
}

fn main() {
    let args = Args::parse();
    let steps = args.steps();
    let driver = Shutdown::builder()
        .unready_delay(Duration::from_millis(args.unready_delay_ms))
        .drain_timeout(Duration::from_millis(args.drain_timeout_ms))
        .cleanup_timeout(Duration::from_millis(args.cleanup_timeout_ms))
        .on_event(print_event)
        .build()
        .unwrap_or_else(|error| {
            let text = error.to_string();
            let option = if text.starts_with("unready") {
                "--unready-delay-ms"
            } else if text.starts_with("drain") {
                "--drain-timeout-ms"
            } else {
                "--cleanup-timeout-ms"
            };
            usage_error(option, text)
        });
    actix_web::rt::System::new().block_on(serve(args, steps, driver))
}

async fn serve(args: Args, steps: Vec<(String, Told)>, driver: graceful_actix::Driver) -> ! {
    let shutdown = driver.handle();
    // Signals and the driver first: a signal from here on ends the process
    // cleanly, whatever start-up is doing.
    let signals = graceful_actix::signals(&shutdown)
        .unwrap_or_else(|error| fail(format_args!("cannot install signal handlers: {error}")));
    actix_web::rt::spawn(async move { exit(signals.await) });
    let run = actix_web::rt::spawn(graceful_actix::run(driver));

    // Resources register their cleanup as they are acquired; the steps run
    // in reverse, so the store, registered first, closes last.
    let store = args.store.as_ref().map(|path| {
        Store::open(path).unwrap_or_else(|error| {
            usage_error(
                "--store",
                format!("cannot open {}: {error}", path.display()),
            )
        })
    });
    let work = Duration::from_millis(args.cleanup_ms);
    for (name, told) in steps {
        let registered = match &store {
            Some(store) if name == STORE => {
                let store = store.clone();
                shutdown.on_cleanup(name, move || async move {
                    actix_web::rt::task::spawn_blocking(move || store.close())
                        .await
                        .map_err(io::Error::other)?
                        .map_err(io::Error::other)?;
                    behave(told).await
                })
            }
            _ => shutdown.on_cleanup(name, move || async move {
                sleep(work).await;
                behave(told).await
            }),
        };
        if registered.is_err() {
            // Cleanup has begun (a signal during start-up): what is
            // registered so far is what runs.
            break;
        }
    }

    let listener = TcpListener::bind(args.addr)
        .unwrap_or_else(|error| fail(format_args!("cannot listen on {}: {error}", args.addr)));
    let addr = listener.local_addr().unwrap_or(args.addr);
    let app = {
        let shutdown = shutdown.clone();
        move || {
            App::new()
                .app_data(web::Data::new(store.clone()))
                .service(resource("/sleep").route(web::get().to(sleep_for)))
                .service(resource("/stream").route(web::get().to(stream)))
                .service(resource("/health/ready").route(graceful_actix::readiness(&shutdown)))
                .service(resource("/health/live").route(web::get().to(|| async { "live" })))
                .service(resource("/orders").route(web::post().to(order)))
                .default_service(web::to(not_found))
        }
    };
    let server = graceful_actix::serve(listener, app, &shutdown);
    actix_web::rt::spawn(async move {
        if let Err(error) = server.await {
            fail(format_args!("cannot serve: {error}"));
        }
    });
    {
        // Under the lock the events print with, and only while no signal
        // has come: `listening` never follows `draining`.
        let mut out = io::stdout().lock();
        if shutdown.is_ready() {
            let _ = writeln!(out, "listening {addr}").and_then(|()| out.flush());
        }
    }
    eprintln!("actix-target: serving on {addr}");

    match run.await {
        Ok(report) => {
            eprintln!("actix-target: {report}");
            exit(report.exit_code())
        }
        Err(error) => fail(format_args!("the shutdown driver failed: {error}")),
    }
}

/// What a `--cleanup` step does after its work.
async fn behave(told: Told) -> io::Result<()> {
    match told {
        Told::Succeed => Ok(()),
        Told::Fail => Err(io::Error::other("told to fail")),
        Told::Panic => panic!("told to panic"),
        Told::Hang => std::future::pending().await,
    }
}

/// Prints one contract line, flushed, through the one stdout lock.
fn say(line: fmt::Arguments<'_>) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

fn print_event(event: &Event<'_>) {
    match event {
        Event::Requested { cause } => say(format_args!("draining {cause}")),
        Event::Closed => say(format_args!("closed")),
        Event::Drained => say(format_args!("drained")),
        Event::Abandoned { in_flight } => say(format_args!("abandoned {in_flight}")),
        Event::StepFinished { step } => {
            if !step.outcome().is_ok() {
                eprintln!("actix-target: cleanup {}: {}", step.name(), step.outcome());
            }
            say(format_args!(
                "cleanup {} {}",
                step.name(),
                step.outcome().as_str()
            ));
        }
        // `Draining` has no line of its own; the exit line is printed by
        // whoever ends the process.
        _ => {}
    }
}

/// Prints `exit CODE` and exits. The stdout lock is kept until the process
/// is gone, so that nothing prints after this line, and a second caller
/// (the driver and the signal task can race to a forced exit) never prints
/// a second one.
fn exit(code: u8) -> ! {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "exit {code}").and_then(|()| out.flush());
    std::process::exit(code.into())
}

/// A start-up failure that is not a usage error.
fn fail(message: fmt::Arguments<'_>) -> ! {
    eprintln!("actix-target: {message}");
    std::process::exit(1)
}

/// A resource that answers `404`, not actix's `405`, to other methods: the
/// contract has `404` for anything it does not name.
fn resource(path: &str) -> Resource {
    web::resource(path).default_service(web::to(not_found))
}

async fn not_found() -> HttpResponse {
    HttpResponse::NotFound().body("not found")
}

fn text(status: StatusCode, body: impl Into<String>) -> HttpResponse {
    HttpResponse::build(status).body(body.into())
}

/// A query parameter as a number: `Ok(None)` when absent.
fn param(request: &HttpRequest, name: &str) -> Result<Option<u64>, HttpResponse> {
    match request
        .query_string()
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
    {
        None => Ok(None),
        Some((_, value)) => value.parse().map(Some).map_err(|_| {
            text(
                StatusCode::BAD_REQUEST,
                format!("{name} must be a number of milliseconds or items"),
            )
        }),
    }
}

/// A handler's answer: a bad request is answered early, with `Err`.
type Reply = Result<HttpResponse, HttpResponse>;

async fn sleep_for(request: HttpRequest) -> HttpResponse {
    async fn inner(request: HttpRequest) -> Reply {
        let ms = param(&request, "ms")?.unwrap_or(0);
        sleep(Duration::from_millis(ms)).await;
        Ok(text(StatusCode::OK, format!("slept {ms}")))
    }
    inner(request).await.unwrap_or_else(|reply| reply)
}

async fn stream(request: HttpRequest) -> HttpResponse {
    fn inner(request: &HttpRequest) -> Reply {
        let count = param(request, "chunks")?.unwrap_or(0);
        let every = Duration::from_millis(param(request, "ms")?.unwrap_or(0));
        Ok(HttpResponse::Ok().body(Chunks {
            next: 0,
            count,
            every,
            wait: Box::pin(sleep(Duration::ZERO)),
        }))
    }
    inner(&request).unwrap_or_else(|reply| reply)
}

async fn order(request: HttpRequest, body: Bytes, store: web::Data<Option<Store>>) -> HttpResponse {
    commit(request, body, store)
        .await
        .unwrap_or_else(|reply| reply)
}

/// Commits the order at half the time, answers at the full time.
async fn commit(request: HttpRequest, body: Bytes, store: web::Data<Option<Store>>) -> Reply {
    let Some(store) = store.get_ref().clone() else {
        return Ok(text(StatusCode::NOT_FOUND, "no store"));
    };
    let ms = param(&request, "ms")?.unwrap_or(0);
    let id = std::str::from_utf8(&body)
        .map(|id| id.trim().to_owned())
        .unwrap_or_default();
    if id.is_empty() {
        return Err(text(
            StatusCode::BAD_REQUEST,
            "the body must be an order id",
        ));
    }
    let started = Instant::now();
    sleep_until(started + Duration::from_millis(ms / 2)).await;
    // On this thread, not a blocking pool: if the request is cut off (the
    // drain deadline closes its connection), no insert is left running to
    // store an order whose answer can no longer be sent.
    let committed = store.insert(&id);
    sleep_until(started + Duration::from_millis(ms)).await;
    Ok(match committed {
        Ok(()) => text(StatusCode::CREATED, format!("stored {id}")),
        Err(Insert::Duplicate) => text(StatusCode::CONFLICT, format!("duplicate {id}")),
        Err(Insert::Failed) => text(StatusCode::INTERNAL_SERVER_ERROR, "store failed"),
    })
}

/// `K` lines `chunk I\n`, the first at once, then one every `every`.
struct Chunks {
    next: u64,
    count: u64,
    every: Duration,
    wait: Pin<Box<Sleep>>,
}

impl MessageBody for Chunks {
    type Error = Infallible;

    fn size(&self) -> BodySize {
        BodySize::Stream
    }

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Infallible>>> {
        if self.next == self.count {
            return Poll::Ready(None);
        }
        if self.next > 0 {
            ready!(self.wait.as_mut().poll(cx));
        }
        let line = format!("chunk {}\n", self.next);
        self.next += 1;
        let due = Instant::now() + self.every;
        self.wait.as_mut().reset(due);
        Poll::Ready(Some(Ok(Bytes::from(line))))
    }
}

/// The orders table, in SQLite; `None` once closed by the `store` step.
#[derive(Clone)]
struct Store(Arc<Mutex<Option<rusqlite::Connection>>>);

enum Insert {
    Duplicate,
    Failed,
}

impl Store {
    fn open(path: &PathBuf) -> rusqlite::Result<Store> {
        let connection = rusqlite::Connection::open(path)?;
        // WAL: a commit is a write to the log, without an fsync; it
        // survives the process being killed, which is what the contract's
        // store checks.
        connection.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY);",
        )?;
        Ok(Store(Arc::new(Mutex::new(Some(connection)))))
    }

    fn lock(&self) -> MutexGuard<'_, Option<rusqlite::Connection>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn insert(&self, id: &str) -> Result<(), Insert> {
        let connection = self.lock();
        let connection = connection.as_ref().ok_or(Insert::Failed)?;
        match connection.execute("INSERT INTO orders (id) VALUES (?1)", [id]) {
            Ok(_) => Ok(()),
            Err(error)
                if error.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation) =>
            {
                Err(Insert::Duplicate)
            }
            Err(error) => {
                eprintln!("actix-target: insert {id}: {error}");
                Err(Insert::Failed)
            }
        }
    }

    fn close(&self) -> rusqlite::Result<()> {
        match self.lock().take() {
            Some(connection) => connection.close().map_err(|(_, error)| error),
            None => Ok(()),
        }
    }
}
