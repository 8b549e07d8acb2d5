//! The smol conformance target: an HTTP/1.1 server that implements the
//! conformance contract (see the `graceful-conformance` crate) with this
//! adapter, and so the fullest example of it.
//!
//! ```text
//! cargo run --example smol-target -- --store orders.sqlite --cleanup cache,queue
//! ```
//!
//! Standard output carries only the contract's events, one a line; logs go
//! to standard error. The shutdown part is `main`'s second half: signals
//! and the driver start before the listener is bound, resources register
//! their cleanup as they are acquired, and the process exits with the
//! report's code, or at once with `128 + N` on a second signal.
//!
//! It runs on an executor of its own (an `Arc<Executor>` run by one thread
//! per core, the main thread included); connections are spawned on it.

// Standard output is the contract's channel: printing is the point.
#![allow(clippy::print_stdout)]

use bytes::Bytes;
use clap::error::ErrorKind;
use clap::{CommandFactory, Parser};
use graceful_smol::{Event, Shutdown, Spawn};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Either, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use smol::{Async, Executor, Timer};
use std::convert::Infallible;
use std::fmt;
use std::future::{Future, poll_fn};
use std::io::{self, Write};
use std::net::TcpListener;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

/// An HTTP/1.1 server that shuts down gracefully, as the conformance
/// contract says.
#[derive(Debug, Parser)]
#[command(name = "smol-target", version)]
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

impl fmt::Display for Told {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Told::Succeed => "succeed",
            Told::Fail => "fail",
            Told::Panic => "panic",
            Told::Hang => "hang",
        })
    }
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
                            format!("step `{target}` is already told to {already}"),
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
            let option = match error.setting() {
                "unready delay" => "--unready-delay-ms",
                "drain timeout" => "--drain-timeout-ms",
                // No grace period is set here: the cleanup timeout is left.
                _ => "--cleanup-timeout-ms",
            };
            usage_error(option, error)
        });
    let executor = Arc::new(Executor::new());
    let threads = std::thread::available_parallelism().map_or(2, usize::from);
    // One thread per core, the main thread being the last.
    for n in 1..threads {
        let executor = executor.clone();
        std::thread::Builder::new()
            .name(format!("smol-target-{n}"))
            .spawn(move || smol::block_on(executor.run(std::future::pending::<()>())))
            .unwrap_or_else(|error| fail(format_args!("cannot start a thread: {error}")));
    }
    smol::block_on(executor.run(serve(args, steps, driver, executor.clone())))
}

async fn serve(
    args: Args,
    steps: Vec<(String, Told)>,
    driver: graceful_smol::Driver,
    executor: Arc<Executor<'static>>,
) -> ! {
    let shutdown = driver.handle();
    // Signals and the driver first: a signal from here on ends the process
    // cleanly, whatever start-up is doing.
    let signals = graceful_smol::signals(&shutdown)
        .unwrap_or_else(|error| fail(format_args!("cannot install signal handlers: {error}")));
    executor.spawn_detached(async move {
        let mut signals = pin!(signals);
        // Forwarded under the start-up gate: see where the listener is
        // registered.
        let code = poll_fn(|cx| {
            let _gate = gate();
            signals.as_mut().poll(cx)
        })
        .await;
        exit(code)
    });
    let run = executor.spawn(graceful_smol::run(driver));

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
                    smol::unblock(move || store.close())
                        .await
                        .map_err(io::Error::other)?;
                    behave(told).await
                })
            }
            _ => shutdown.on_cleanup(name, move || async move {
                Timer::after(work).await;
                behave(told).await
            }),
        };
        if registered.is_err() {
            // Cleanup has begun (a signal during start-up): what is
            // registered so far is what runs.
            break;
        }
    }

    let listener = Async::<TcpListener>::bind(args.addr)
        .unwrap_or_else(|error| fail(format_args!("cannot listen on {}: {error}", args.addr)));
    let addr = listener.get_ref().local_addr().unwrap_or(args.addr);
    let app = Arc::new(App {
        shutdown: shutdown.clone(),
        store,
    });
    let service = service_fn(move |request| {
        let app = app.clone();
        async move { Ok::<_, Infallible>(app.route(request).await) }
    });
    {
        // Under the gate that signals are forwarded under, so that no
        // signal comes in between: either it came before, and the listener
        // is never registered (the shutdown then skips the unready delay, as
        // a process that never listened must stop at once), or the listener
        // is registered (`serve` does that when called) and announced, and
        // `listening` comes before `draining`.
        let _gate = gate();
        if !shutdown.is_ready() {
            eprintln!("smol-target: stopped while starting up, never listened");
            drop(listener);
        } else {
            executor.spawn_detached(graceful_smol::serve(
                listener,
                service,
                &shutdown,
                executor.clone(),
            ));
            say(format_args!("listening {addr}"));
            eprintln!("smol-target: serving on {addr}");
        }
    }

    let report = run.await;
    eprintln!("smol-target: {report}");
    exit(report.exit_code())
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

/// The start-up gate: the first signal and the listener's start are
/// ordered by it.
fn gate() -> MutexGuard<'static, ()> {
    static GATE: Mutex<()> = Mutex::new(());
    GATE.lock().unwrap_or_else(|e| e.into_inner())
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
                eprintln!("smol-target: cleanup {}: {}", step.name(), step.outcome());
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
    eprintln!("smol-target: {message}");
    std::process::exit(1)
}

struct App {
    shutdown: Shutdown,
    store: Option<Store>,
}

type Reply = Response<Either<Full<Bytes>, Chunks>>;

fn text(status: StatusCode, body: impl Into<Bytes>) -> Reply {
    let mut response = Response::new(Either::Left(Full::new(body.into())));
    *response.status_mut() = status;
    response
}

/// A request that makes no sense: answered `400` with the reason.
struct BadRequest(String);

/// A query parameter as a number: `Ok(None)` when absent.
fn param(request: &Request<Incoming>, name: &str) -> Result<Option<u64>, BadRequest> {
    let query = request.uri().query().unwrap_or("");
    match query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
    {
        None => Ok(None),
        Some((_, value)) => value
            .parse()
            .map(Some)
            .map_err(|_| BadRequest(format!("{name} must be a whole number"))),
    }
}

impl App {
    async fn route(&self, request: Request<Incoming>) -> Reply {
        let result = match (request.method(), request.uri().path()) {
            (&Method::GET, "/sleep") => self.sleep(&request).await,
            (&Method::GET, "/stream") => Self::stream(&request),
            (&Method::GET, "/health/ready") => Ok(if self.shutdown.is_ready() {
                text(StatusCode::OK, "ready")
            } else {
                text(StatusCode::SERVICE_UNAVAILABLE, "not ready")
            }),
            (&Method::GET, "/health/live") => Ok(text(StatusCode::OK, "live")),
            (&Method::POST, "/orders") => self.order(request).await,
            _ => Ok(text(StatusCode::NOT_FOUND, "not found")),
        };
        result.unwrap_or_else(|BadRequest(why)| text(StatusCode::BAD_REQUEST, why))
    }

    async fn sleep(&self, request: &Request<Incoming>) -> Result<Reply, BadRequest> {
        let ms = param(request, "ms")?.unwrap_or(0);
        Timer::after(Duration::from_millis(ms)).await;
        Ok(text(StatusCode::OK, format!("slept {ms}")))
    }

    fn stream(request: &Request<Incoming>) -> Result<Reply, BadRequest> {
        let count = param(request, "chunks")?.unwrap_or(0);
        let every = Duration::from_millis(param(request, "ms")?.unwrap_or(0));
        Ok(Response::new(Either::Right(Chunks {
            next: 0,
            count,
            every,
            wait: Timer::never(),
        })))
    }

    /// Commits the order at half the time, answers at the full time.
    async fn order(&self, request: Request<Incoming>) -> Result<Reply, BadRequest> {
        let Some(store) = self.store.clone() else {
            return Ok(text(StatusCode::NOT_FOUND, "no store"));
        };
        let ms = param(&request, "ms")?.unwrap_or(0);
        let body = request
            .into_body()
            .collect()
            .await
            .map_err(|_| BadRequest("unreadable body".into()))?
            .to_bytes();
        let id = std::str::from_utf8(&body)
            .map(|id| id.trim().to_owned())
            .unwrap_or_default();
        if id.is_empty() {
            return Err(BadRequest("the body must be an order id".into()));
        }
        let started = Instant::now();
        Timer::at(started + Duration::from_millis(ms / 2)).await;
        let committed = {
            let id = id.clone();
            smol::unblock(move || store.insert(&id)).await
        };
        Timer::at(started + Duration::from_millis(ms)).await;
        Ok(match committed {
            Ok(()) => text(StatusCode::CREATED, format!("stored {id}")),
            Err(Insert::Duplicate) => text(StatusCode::CONFLICT, format!("duplicate {id}")),
            Err(Insert::Failed) => text(StatusCode::INTERNAL_SERVER_ERROR, "store failed"),
        })
    }
}

/// `K` lines `chunk I\n`, the first at once, then one every `every`.
struct Chunks {
    next: u64,
    count: u64,
    every: Duration,
    wait: Timer,
}

impl Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.next == self.count {
            return Poll::Ready(None);
        }
        if self.next > 0 {
            ready!(Pin::new(&mut self.wait).poll(cx));
        }
        let line = format!("chunk {}\n", self.next);
        self.next += 1;
        let every = self.every;
        self.wait.set_after(every);
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(line)))))
    }

    fn is_end_stream(&self) -> bool {
        self.next == self.count
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
        connection.execute_batch("CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY)")?;
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
                eprintln!("smol-target: insert {id}: {error}");
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
