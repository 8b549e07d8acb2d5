//! The runtime-agnostic half of a conformance target written in Rust on
//! `graceful-core` (feature `target`).
//!
//! A conformance target is a server that speaks the [`contract`]. Most of
//! what it does has nothing to do with its runtime: the command line, the
//! cleanup steps it is told to run, the SQLite store, the event lines on
//! standard output, the parameters of its routes. This module is that half,
//! so that the targets of the tokio, smol and actix adapters differ only
//! where their runtimes do: setting the runtime up, spawning, sleeping,
//! blocking calls, the bodies of the HTTP routes.
//!
//! - [`Options::parse`] reads the contract's command line. A usage error (an
//!   unknown option, a missing or bad value, a `--cleanup-fail NAME` that
//!   names no step) ends the process with a short message naming the option
//!   on standard error, exit code 2 and nothing on standard output.
//!   [`Options::driver`] builds the shutdown driver from it, with
//!   [`print_event`] as its observer, and reports a setting the core refuses
//!   the same way, naming the option behind [`ConfigError::setting`].
//! - [`Options::steps`] are the cleanup steps in registration order, each
//!   [`Told`] how to end ([`Told::behave`]). [`Options::open_store`] opens
//!   the [`Store`], and [`Options::register_cleanup`] registers the steps,
//!   the one named [`STORE`] closing the store, with the target's runtime
//!   doing the sleeping and the blocking call.
//! - Standard output carries the contract's lines only, each through the one
//!   stdout lock: [`say`], [`print_event`] (the [`event_line`] of each
//!   [`Event`]) and [`exit`], which prints `exit CODE` and exits holding the
//!   lock, so that it is the last line. [`fail`] is a start-up failure that
//!   is not a usage error (a failed bind): its reason on standard error,
//!   then `exit 1`. [`log`] writes to standard error, under the target's
//!   name.
//! - [`Routes::route`] decides what a request asks: an [`Answer`] at once,
//!   or a [`Route`] for the target to carry out on its runtime. The pieces
//!   are there for a target with a router of its own: [`param`],
//!   [`order_id`], [`ChunkLines`] (the `/stream` lines, polled on the
//!   target's timer) and the answers.
//!
//! # The start-up gate
//!
//! A signal can land while the target starts serving: after the adapter's
//! `serve` has registered the listener with the shutdown but before the
//! `listening` line is out. The shutdown then sees a listener and keeps its
//! unready delay, although the process never said it listened; and
//! `draining` can come before `listening`. The gate closes that window. The
//! signal future is polled under it ([`exit_on_signals`]), and the listener
//! is handed to the adapter and announced under it ([`start_serving`]), so a
//! signal comes either before (the listener is never registered, and the
//! shutdown, having no listener, skips the unready delay) or after
//! `listening`.
//!
//! # Examples
//!
//! The skeleton every target shares; the comments mark where the runtime's
//! adapter comes in.
//!
//! ```no_run
//! use graceful_conformance::target::{self, Journal, Options, Routes};
//! use std::net::TcpListener;
//! use std::time::Duration;
//!
//! // The runtime's sleep and blocking call; stand-ins here.
//! async fn sleep(_: Duration) {}
//! async fn unblock<T>(f: impl FnOnce() -> T) -> T {
//!     f()
//! }
//!
//! let options = Options::parse("my-target");
//! let driver = options.driver();
//! let shutdown = driver.handle();
//! // Spawn `target::exit_on_signals(adapter::signals(&shutdown)?)` and the
//! // adapter's `run(driver)` here, before anything else.
//!
//! // Resources register their cleanup as they are acquired: the store,
//! // registered first, closes last.
//! let store = options.open_store(Journal::Rollback);
//! options.register_cleanup(&shutdown, store.as_ref(), sleep, |store| async move {
//!     unblock(move || store.close()).await
//! });
//!
//! let listener = TcpListener::bind(options.addr)
//!     .unwrap_or_else(|error| target::fail(format_args!("cannot listen: {error}")));
//! let addr = listener.local_addr().unwrap_or(options.addr);
//! let routes = Routes::new(shutdown.clone(), store);
//! target::start_serving(&shutdown, addr, || {
//!     // Spawn the adapter's `serve(listener, ...)`, with a service that
//!     // carries out `routes.route(method, path, query)`.
//!     drop((listener, routes));
//! });
//! // Then await the driver's report: `target::exit_with(&report)`.
//! ```
//!
//! [`contract`]: crate::contract

use clap::error::ErrorKind;
use clap::{CommandFactory, FromArgMatches, Parser};
use graceful_core::{ConfigError, Driver, Event, Report, Setting, Shutdown};
use std::ffi::OsString;
use std::fmt;
use std::future::{Future, poll_fn};
use std::io::{self, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll, ready};
use std::time::Duration;

/// The name of the cleanup step that closes the [`Store`].
pub const STORE: &str = "store";

/// An HTTP/1.1 server that shuts down gracefully, as the conformance
/// contract says.
#[derive(Debug, Parser)]
#[command(version, allow_negative_numbers = true)]
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

/// The target's name, for its usage errors and its logs.
static NAME: OnceLock<&'static str> = OnceLock::new();

fn name() -> &'static str {
    NAME.get().copied().unwrap_or("target")
}

/// A usage error of the target called `name`, naming `option`.
fn usage(name: &'static str, option: &str, message: impl fmt::Display) -> clap::Error {
    Args::command().name(name).error(
        ErrorKind::ValueValidation,
        format!("invalid value for {option}: {message}"),
    )
}

/// Exits with a usage error naming `option`: a short message on standard
/// error, exit code 2, nothing on standard output.
pub fn usage_error(option: &str, message: impl fmt::Display) -> ! {
    usage(name(), option, message).exit()
}

/// The contract's command line, parsed and checked.
#[derive(Clone, Debug)]
pub struct Options {
    /// `--addr`: where to listen.
    pub addr: SocketAddr,
    /// `--drain-timeout-ms`.
    pub drain_timeout: Duration,
    /// `--unready-delay-ms`.
    pub unready_delay: Duration,
    /// `--cleanup-ms`: how long each `--cleanup` step works (not the
    /// [`STORE`] step).
    pub cleanup_work: Duration,
    /// `--cleanup-timeout-ms`.
    pub cleanup_timeout: Duration,
    /// `--store`: the SQLite file for `/orders`.
    pub store: Option<PathBuf>,
    /// The cleanup steps in registration order: [`STORE`] first when there
    /// is a store, then the `--cleanup` steps.
    pub steps: Vec<Step>,
}

impl Options {
    /// Parses the process's command line for the target called `name`, or
    /// exits with a usage error (code 2; `--help` and `--version` exit 0).
    ///
    /// `name` is also the prefix of what the module logs on standard error.
    pub fn parse(name: &'static str) -> Options {
        let _ = NAME.set(name);
        Options::try_parse_from(name, std::env::args_os()).unwrap_or_else(|error| error.exit())
    }

    /// Parses `args` (the program's name first) for the target called
    /// `name`.
    ///
    /// # Errors
    ///
    /// clap's usage error: an unknown option, a missing or bad value, or a
    /// cleanup step that is badly named, named twice, or told two things.
    pub fn try_parse_from<I, T>(name: &'static str, args: I) -> Result<Options, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let matches = Args::command().name(name).try_get_matches_from(args)?;
        let args = Args::from_arg_matches(&matches)?;
        let steps = steps(&args).map_err(|(option, message)| usage(name, option, message))?;
        Ok(Options {
            addr: args.addr,
            drain_timeout: Duration::from_millis(args.drain_timeout_ms),
            unready_delay: Duration::from_millis(args.unready_delay_ms),
            cleanup_work: Duration::from_millis(args.cleanup_ms),
            cleanup_timeout: Duration::from_millis(args.cleanup_timeout_ms),
            store: args.store,
            steps,
        })
    }

    /// The shutdown's driver, with these settings and [`print_event`] as its
    /// observer; a setting the core refuses is a usage error naming its
    /// option.
    pub fn driver(&self) -> Driver {
        self.try_driver().unwrap_or_else(|error| error.exit())
    }

    /// [`Options::driver`], with the usage error returned.
    ///
    /// # Errors
    ///
    /// The usage error for the option behind the [`ConfigError`].
    pub fn try_driver(&self) -> Result<Driver, clap::Error> {
        Shutdown::builder()
            .unready_delay(self.unready_delay)
            .drain_timeout(self.drain_timeout)
            .cleanup_timeout(self.cleanup_timeout)
            .on_event(print_event)
            .build()
            .map_err(|error| usage(name(), option_of(&error), error))
    }

    /// Opens the `--store` file, if any; a file that cannot be opened is a
    /// usage error naming `--store`.
    pub fn open_store(&self, journal: Journal) -> Option<Store> {
        self.store.as_ref().map(|path| {
            Store::open(path, journal).unwrap_or_else(|error| {
                usage_error(
                    "--store",
                    format!("cannot open {}: {error}", path.display()),
                )
            })
        })
    }

    /// Registers the cleanup steps on `shutdown`, in order, with the
    /// target's runtime doing their work: the [`STORE`] step, when there is
    /// a `store`, closes it with `close` (which runs [`Store::close`], a
    /// blocking call, off the runtime's threads); the others `sleep` for
    /// `--cleanup-ms`. Then each behaves as [`Told`].
    ///
    /// Registration stops at the first refusal: a signal came during
    /// start-up and cleanup has begun; what is registered so far is what
    /// runs.
    pub fn register_cleanup<S, SF, C, CF>(
        &self,
        shutdown: &Shutdown,
        store: Option<&Store>,
        sleep: S,
        close: C,
    ) where
        S: FnOnce(Duration) -> SF + Clone + Send + 'static,
        SF: Future + Send + 'static,
        C: FnOnce(Store) -> CF + Clone + Send + 'static,
        CF: Future<Output = io::Result<()>> + Send + 'static,
    {
        for step in &self.steps {
            let told = step.told;
            let store = store.filter(|_| step.name == STORE).cloned();
            let (sleep, close, time) = (sleep.clone(), close.clone(), self.cleanup_work);
            let registered = shutdown.on_cleanup(step.name.clone(), move || async move {
                match store {
                    Some(store) => close(store).await?,
                    None => {
                        sleep(time).await;
                    }
                }
                told.behave().await
            });
            if registered.is_err() {
                break;
            }
        }
    }
}

/// The option behind a setting the core refuses.
fn option_of(error: &ConfigError) -> &'static str {
    match error.setting() {
        Setting::UnreadyDelay => "--unready-delay-ms",
        Setting::DrainTimeout => "--drain-timeout-ms",
        Setting::CleanupTimeout => "--cleanup-timeout-ms",
        // The targets set no grace period, so the core never names it;
        // should one be set, its option is the drain's.
        Setting::GracePeriod => "--drain-timeout-ms",
    }
}

/// The cleanup steps in registration order, with what each is told; or the
/// option at fault and why.
fn steps(args: &Args) -> Result<Vec<Step>, (&'static str, String)> {
    let mut steps: Vec<Step> = Vec::new();
    let store = args.store.as_ref().map(|_| STORE.to_owned());
    for name in store.iter().chain(&args.cleanup) {
        if name.is_empty() || name.chars().any(char::is_whitespace) {
            return Err(("--cleanup", format!("`{name}` is not a step name")));
        }
        if steps.iter().any(|step| step.name == *name) {
            return Err(("--cleanup", format!("step `{name}` is named twice")));
        }
        steps.push(Step {
            name: name.clone(),
            told: Told::Succeed,
        });
    }
    for (option, told, names) in [
        ("--cleanup-fail", Told::Fail, &args.cleanup_fail),
        ("--cleanup-panic", Told::Panic, &args.cleanup_panic),
        ("--cleanup-hang", Told::Hang, &args.cleanup_hang),
    ] {
        for name in names {
            match steps.iter_mut().find(|step| step.name == *name) {
                None => return Err((option, format!("no cleanup step is named `{name}`"))),
                Some(step) if step.told != Told::Succeed && step.told != told => {
                    let already = step.told;
                    return Err((
                        option,
                        format!("step `{name}` is already told to {already}"),
                    ));
                }
                Some(step) => step.told = told,
            }
        }
    }
    Ok(steps)
}

/// A cleanup step: its name, and how it is told to end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// The name it is registered under.
    pub name: String,
    /// How it ends, after its work.
    pub told: Told,
}

/// What a cleanup step is told to do (`--cleanup-fail`, `--cleanup-panic`,
/// `--cleanup-hang`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Told {
    /// End `ok`.
    Succeed,
    /// Return an error.
    Fail,
    /// Panic.
    Panic,
    /// Never finish by itself.
    Hang,
}

impl Told {
    /// What a step does after its work: succeed, return an error, panic, or
    /// never finish.
    ///
    /// # Errors
    ///
    /// When told to fail.
    ///
    /// # Panics
    ///
    /// When told to panic.
    pub async fn behave(self) -> io::Result<()> {
        match self {
            Told::Succeed => Ok(()),
            Told::Fail => Err(io::Error::other("told to fail")),
            Told::Panic => panic!("told to panic"),
            Told::Hang => std::future::pending().await,
        }
    }
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

/// Writes one line on standard error, after the target's name.
pub fn log(message: impl fmt::Display) {
    eprintln!("{}: {message}", name());
}

/// Prints one contract line, flushed, through the one stdout lock.
pub fn say(line: fmt::Arguments<'_>) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

/// The contract's line for an event, if it has one: `draining SIGNAL`,
/// `closed`, `drained`, `abandoned N`, `cleanup NAME RESULT`.
///
/// The other events have none: `exit CODE` is printed by whoever ends the
/// process ([`exit`]).
pub fn event_line(event: &Event<'_>) -> Option<String> {
    match event {
        Event::Requested { cause } => Some(format!("draining {cause}")),
        Event::Closed => Some("closed".to_owned()),
        Event::Drained => Some("drained".to_owned()),
        Event::Abandoned { in_flight } => Some(format!("abandoned {in_flight}")),
        Event::StepFinished { step } => Some(format!(
            "cleanup {} {}",
            step.name(),
            step.outcome().as_str()
        )),
        _ => None,
    }
}

/// The shutdown's observer: prints each event's [`event_line`], and logs
/// why a cleanup step did not end `ok`.
pub fn print_event(event: &Event<'_>) {
    if let Event::StepFinished { step } = event
        && !step.outcome().is_ok()
    {
        log(format_args!("cleanup {}: {}", step.name(), step.outcome()));
    }
    if let Some(line) = event_line(event) {
        say(format_args!("{line}"));
    }
}

/// Prints `exit CODE` and exits with CODE. The stdout lock is kept until
/// the process is gone, so that nothing prints after this line, and a
/// second caller (the driver and the signal task can race to a forced exit)
/// never prints a second one.
pub fn exit(code: u8) -> ! {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "exit {code}").and_then(|()| out.flush());
    std::process::exit(code.into())
}

/// Logs the shutdown's report and [`exit`]s with its code.
pub fn exit_with(report: &Report) -> ! {
    log(report);
    exit(report.exit_code())
}

/// A start-up failure that is not a usage error, such as a failed bind:
/// the reason on standard error, then `exit 1`.
pub fn fail(reason: impl fmt::Display) -> ! {
    log(reason);
    exit(1)
}

/// The start-up gate: the first signal and the listener's start are ordered
/// by it.
fn gate() -> MutexGuard<'static, ()> {
    GATE.lock().unwrap_or_else(|e| e.into_inner())
}

static GATE: Mutex<()> = Mutex::new(());

/// Polls the adapter's signal future under the start-up gate, and
/// [`exit`]s with its code once a signal forced the exit.
///
/// Spawn it as soon as the signals are installed.
pub async fn exit_on_signals<S: Future<Output = u8>>(signals: S) {
    let mut signals = pin!(signals);
    let code = poll_fn(|cx| {
        let _gate = gate();
        signals.as_mut().poll(cx)
    })
    .await;
    exit(code)
}

/// Starts serving under the start-up gate: unless a signal came first,
/// calls `serve` (which hands the listener to the adapter: its `serve`
/// registers it) and prints `listening ADDR`. Returns whether it did.
///
/// When a signal came first, `serve` is dropped unused, and the listener it
/// holds with it: the process stops without ever listening.
pub fn start_serving(shutdown: &Shutdown, addr: SocketAddr, serve: impl FnOnce()) -> bool {
    start_serving_then(shutdown, serve, || {
        say(format_args!("listening {addr}"));
        log(format_args!("serving on {addr}"));
    })
}

fn start_serving_then(shutdown: &Shutdown, serve: impl FnOnce(), announce: impl FnOnce()) -> bool {
    let _gate = gate();
    if !shutdown.is_ready() {
        log("stopped while starting up, never listened");
        return false;
    }
    serve();
    announce();
    true
}

/// How the [`Store`] journals its commits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Journal {
    /// SQLite's default rollback journal.
    Rollback,
    /// Write-ahead log with `synchronous = NORMAL`: a commit is a write to
    /// the log, without an fsync; it survives the process being killed,
    /// which is what the contract's store checks. For a target that inserts
    /// on its runtime's thread.
    Wal,
}

/// The orders table, in SQLite; closed by the [`STORE`] cleanup step.
#[derive(Clone)]
pub struct Store(Arc<Mutex<Option<rusqlite::Connection>>>);

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("open", &self.lock().is_some())
            .finish()
    }
}

/// Why an order was not stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Insert {
    /// That id is already stored.
    Duplicate,
    /// The store failed, or is closed.
    Failed,
}

impl Store {
    /// Opens (creating it if missing) the file at `path`, with a table
    /// `orders (id TEXT PRIMARY KEY)`.
    ///
    /// # Errors
    ///
    /// SQLite's, when the file cannot be opened or the table made.
    pub fn open(path: &Path, journal: Journal) -> rusqlite::Result<Store> {
        let connection = rusqlite::Connection::open(path)?;
        if journal == Journal::Wal {
            connection.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")?;
        }
        connection.execute_batch("CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY)")?;
        Ok(Store(Arc::new(Mutex::new(Some(connection)))))
    }

    fn lock(&self) -> MutexGuard<'_, Option<rusqlite::Connection>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Commits the order `id`. Blocks on SQLite.
    ///
    /// # Errors
    ///
    /// [`Insert::Duplicate`] when `id` is already stored, else
    /// [`Insert::Failed`] (logged), also once the store is closed.
    pub fn insert(&self, id: &str) -> Result<(), Insert> {
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
                log(format_args!("insert {id}: {error}"));
                Err(Insert::Failed)
            }
        }
    }

    /// Closes the store; later inserts fail. Blocks on SQLite.
    ///
    /// # Errors
    ///
    /// SQLite's, when closing fails.
    pub fn close(&self) -> io::Result<()> {
        match self.lock().take() {
            Some(connection) => connection
                .close()
                .map_err(|(_, error)| io::Error::other(error)),
            None => Ok(()),
        }
    }
}

/// What a route answers: a status and a plain-text body, for the target to
/// turn into its HTTP library's response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The body.
    pub body: String,
}

impl Answer {
    fn new(status: u16, body: impl Into<String>) -> Answer {
        Answer {
            status,
            body: body.into(),
        }
    }

    /// `GET /sleep?ms=N`, after the wait: `200 slept N`.
    pub fn slept(ms: u64) -> Answer {
        Answer::new(200, format!("slept {ms}"))
    }

    /// `GET /health/ready`: `200 ready`, or `503` once a signal came.
    pub fn ready(is_ready: bool) -> Answer {
        if is_ready {
            Answer::new(200, "ready")
        } else {
            Answer::new(503, "not ready")
        }
    }

    /// `GET /health/live`: `200 live`.
    pub fn live() -> Answer {
        Answer::new(200, "live")
    }

    /// Anything the contract does not name: `404`.
    pub fn not_found() -> Answer {
        Answer::new(404, "not found")
    }

    /// `POST /orders` without `--store`: `404`.
    pub fn no_store() -> Answer {
        Answer::new(404, "no store")
    }

    /// `POST /orders`, once committed (or not): `201 stored ID`, `409` for an
    /// id already stored, `500` when the store failed.
    pub fn stored(committed: Result<(), Insert>, id: &str) -> Answer {
        match committed {
            Ok(()) => Answer::new(201, format!("stored {id}")),
            Err(Insert::Duplicate) => Answer::new(409, format!("duplicate {id}")),
            Err(Insert::Failed) => Answer::new(500, "store failed"),
        }
    }
}

/// A request that makes no sense: answered `400` with the reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadRequest(pub String);

impl From<BadRequest> for Answer {
    fn from(BadRequest(why): BadRequest) -> Answer {
        Answer::new(400, why)
    }
}

/// The routes of the contract, decided without a runtime: what a request
/// asks, as a [`Route`] for the target to carry out.
#[derive(Clone, Debug)]
pub struct Routes {
    shutdown: Shutdown,
    store: Option<Store>,
}

/// What a request asks of the target: an answer at once, or work on the
/// target's runtime.
#[derive(Debug)]
pub enum Route {
    /// Answer this at once: the health checks, a bad request, a `404`.
    Answer(Answer),
    /// `GET /sleep?ms=N`: wait N ms, then answer [`Answer::slept`].
    Sleep {
        /// N.
        ms: u64,
    },
    /// `GET /stream`: a chunked body of these lines.
    Stream(ChunkLines),
    /// `POST /orders?ms=N`: take the body's [`order_id`], commit it to the
    /// store at N/2 ms ([`Store::insert`] blocks) and answer
    /// [`Answer::stored`] at N ms.
    Order {
        /// Where the order goes.
        store: Store,
        /// N.
        ms: u64,
    },
}

impl Routes {
    /// Routes that answer readiness from `shutdown` and take orders into
    /// `store`.
    pub fn new(shutdown: Shutdown, store: Option<Store>) -> Routes {
        Routes { shutdown, store }
    }

    /// What the request `method path?query` asks.
    pub fn route(&self, method: &str, path: &str, query: Option<&str>) -> Route {
        let query = query.unwrap_or("");
        let routed = match (method, path) {
            ("GET", "/sleep") => param(query, "ms").map(|ms| Route::Sleep {
                ms: ms.unwrap_or(0),
            }),
            ("GET", "/stream") => ChunkLines::from_query(query).map(Route::Stream),
            ("GET", "/health/ready") => Ok(Route::Answer(Answer::ready(self.shutdown.is_ready()))),
            ("GET", "/health/live") => Ok(Route::Answer(Answer::live())),
            ("POST", "/orders") => match &self.store {
                None => Ok(Route::Answer(Answer::no_store())),
                Some(store) => param(query, "ms").map(|ms| Route::Order {
                    store: store.clone(),
                    ms: ms.unwrap_or(0),
                }),
            },
            _ => Ok(Route::Answer(Answer::not_found())),
        };
        routed.unwrap_or_else(|bad| Route::Answer(bad.into()))
    }
}

/// A query parameter as a whole number: `Ok(None)` when absent.
///
/// # Errors
///
/// When the parameter is there but not a whole number.
pub fn param(query: &str, name: &str) -> Result<Option<u64>, BadRequest> {
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

/// The order id in a `POST /orders` body, trimmed.
///
/// # Errors
///
/// When the body holds no id (empty, blank, or not UTF-8).
pub fn order_id(body: &[u8]) -> Result<String, BadRequest> {
    let id = std::str::from_utf8(body)
        .map(|id| id.trim().to_owned())
        .unwrap_or_default();
    if id.is_empty() {
        return Err(BadRequest("the body must be an order id".into()));
    }
    Ok(id)
}

/// The lines of `GET /stream?chunks=K&ms=N`, without the timer: K lines
/// `chunk I\n` (I from 0), the first at once, then one every N ms.
///
/// A target's body type pairs it with its runtime's timer, and polls it
/// with [`ChunkLines::poll_line`].
#[derive(Clone, Debug)]
pub struct ChunkLines {
    next: u64,
    count: u64,
    every: Duration,
}

impl ChunkLines {
    /// The lines a `/stream` query asks for (`chunks` and `ms`, 0 when
    /// absent).
    ///
    /// # Errors
    ///
    /// When `chunks` or `ms` is not a whole number.
    pub fn from_query(query: &str) -> Result<ChunkLines, BadRequest> {
        Ok(ChunkLines {
            next: 0,
            count: param(query, "chunks")?.unwrap_or(0),
            every: Duration::from_millis(param(query, "ms")?.unwrap_or(0)),
        })
    }

    /// Whether every line is out.
    pub fn is_done(&self) -> bool {
        self.next == self.count
    }

    /// Polls for the next line, on the target's `timer`: the first line at
    /// once, each later one once `timer` has fired; after a line, `rearm`
    /// sets `timer` to fire `ms` from now. `None` once every line is out.
    pub fn poll_line<T: Future + ?Sized>(
        &mut self,
        cx: &mut Context<'_>,
        mut timer: Pin<&mut T>,
        rearm: impl FnOnce(Pin<&mut T>, Duration),
    ) -> Poll<Option<String>> {
        if self.is_done() {
            return Poll::Ready(None);
        }
        if self.next > 0 {
            ready!(timer.as_mut().poll(cx));
        }
        let line = format!("chunk {}\n", self.next);
        self.next += 1;
        rearm(timer, self.every);
        Poll::Ready(Some(line))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use graceful_core::{ManualClock, Signal};
    use std::task::Waker;

    const TARGET: &str = "test-target";

    fn parse(args: &[&str]) -> Result<Options, clap::Error> {
        Options::try_parse_from(TARGET, std::iter::once(TARGET).chain(args.iter().copied()))
    }

    /// The usage error `args` gives: it must exist, exit 2 and name `option`.
    fn refused(args: &[&str], option: &str) -> String {
        let error = parse(args).expect_err("a usage error");
        let text = error.to_string();
        assert_eq!(error.exit_code(), 2, "{args:?}: {text}");
        assert!(
            text.contains(option),
            "{args:?} does not name {option}: {text}"
        );
        text
    }

    #[test]
    fn defaults_are_the_contracts() {
        let options = parse(&[]).unwrap();
        assert_eq!(options.addr, "127.0.0.1:0".parse().unwrap());
        assert_eq!(options.drain_timeout, Duration::from_secs(30));
        assert_eq!(options.unready_delay, Duration::ZERO);
        assert_eq!(options.cleanup_work, Duration::ZERO);
        assert_eq!(options.cleanup_timeout, Duration::from_secs(5));
        assert_eq!(options.store, None);
        assert!(options.steps.is_empty());
    }

    #[test]
    fn values_are_read_in_milliseconds() {
        let options = parse(&[
            "--addr",
            "127.0.0.1:8080",
            "--drain-timeout-ms",
            "1500",
            "--unready-delay-ms",
            "20",
            "--cleanup-ms",
            "3",
            "--cleanup-timeout-ms",
            "40",
        ])
        .unwrap();
        assert_eq!(options.addr.port(), 8080);
        assert_eq!(options.drain_timeout, Duration::from_millis(1500));
        assert_eq!(options.unready_delay, Duration::from_millis(20));
        assert_eq!(options.cleanup_work, Duration::from_millis(3));
        assert_eq!(options.cleanup_timeout, Duration::from_millis(40));
    }

    #[test]
    fn bad_values_name_their_option() {
        refused(&["--no-such-option"], "--no-such-option");
        refused(&["--drain-timeout-ms", "abc"], "--drain-timeout-ms");
        refused(&["--drain-timeout-ms"], "--drain-timeout-ms");
        refused(&["--unready-delay-ms=-1"], "--unready-delay-ms");
        refused(&["--unready-delay-ms", "-1"], "--unready-delay-ms");
        refused(&["--drain-timeout-ms", "-5"], "--drain-timeout-ms");
        refused(&["--cleanup-ms", "1.5"], "--cleanup-ms");
        refused(&["--cleanup-timeout-ms", "x"], "--cleanup-timeout-ms");
        refused(&["--addr", "no-such-address"], "--addr");
        refused(&["--addr", "127.0.0.1"], "--addr");
    }

    #[test]
    fn steps_come_store_first_then_in_order() {
        let options =
            parse(&["--store", "x.sqlite", "--cleanup", "b,a", "--cleanup", "c"]).unwrap();
        let names: Vec<&str> = options.steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, [STORE, "b", "a", "c"]);
        assert!(options.steps.iter().all(|s| s.told == Told::Succeed));
    }

    #[test]
    fn steps_are_told_what_to_do() {
        let options = parse(&[
            "--cleanup",
            "a,b,c,d",
            "--cleanup-fail",
            "a",
            "--cleanup-panic",
            "b",
            "--cleanup-hang",
            "c",
            "--cleanup-fail",
            "a",
        ])
        .unwrap();
        let told: Vec<Told> = options.steps.iter().map(|s| s.told).collect();
        assert_eq!(told, [Told::Fail, Told::Panic, Told::Hang, Told::Succeed]);
    }

    #[test]
    fn bad_steps_name_their_option() {
        refused(&["--cleanup", "a,a"], "--cleanup");
        refused(&["--cleanup", "a,,b"], "--cleanup");
        refused(&["--cleanup", "a b"], "--cleanup");
        let text = refused(&["--store", "x", "--cleanup", "store"], "--cleanup");
        assert!(text.contains("named twice"), "{text}");
        let text = refused(&["--cleanup", "a", "--cleanup-fail", "b"], "--cleanup-fail");
        assert!(text.contains("no cleanup step is named `b`"), "{text}");
        refused(&["--cleanup-panic", "store"], "--cleanup-panic");
        refused(&["--cleanup-hang", "x"], "--cleanup-hang");
        let text = refused(
            &[
                "--cleanup",
                "a",
                "--cleanup-fail",
                "a",
                "--cleanup-hang",
                "a",
            ],
            "--cleanup-hang",
        );
        assert!(text.contains("already told to fail"), "{text}");
        // The store step can be told too.
        let options = parse(&["--store", "x", "--cleanup-fail", STORE]).unwrap();
        assert_eq!(options.steps[0].told, Told::Fail);
    }

    #[test]
    fn settings_the_core_refuses_name_their_option() {
        let day_and_more = (24 * 60 * 60 * 1000 + 1).to_string();
        for option in [
            "--drain-timeout-ms",
            "--unready-delay-ms",
            "--cleanup-timeout-ms",
        ] {
            let error = parse(&[option, &day_and_more])
                .unwrap()
                .try_driver()
                .expect_err("refused by the core");
            assert_eq!(error.exit_code(), 2);
            assert!(error.to_string().contains(option), "{option}: {error}");
        }
        let error = parse(&["--cleanup-timeout-ms", "0"])
            .unwrap()
            .try_driver()
            .expect_err("a zero cleanup timeout");
        assert!(
            error.to_string().contains("--cleanup-timeout-ms"),
            "{error}"
        );
        assert!(parse(&[]).unwrap().try_driver().is_ok());
    }

    /// Runs a shutdown to its end on a manual clock and collects its lines.
    /// `build` sets the shutdown up and requests it; what it returns is
    /// kept until the end.
    fn lines_of<K>(build: impl FnOnce(&Shutdown) -> K) -> Vec<String> {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let driver = {
            let lines = lines.clone();
            Shutdown::builder()
                .drain_timeout(Duration::from_millis(100))
                .on_event(move |event| lines.lock().unwrap().extend(event_line(event)))
                .build()
                .unwrap()
        };
        let shutdown = driver.handle();
        let clock = Arc::new(ManualClock::new());
        let mut run = pin!(driver.run(clock.clone()));
        let _kept = build(&shutdown);
        let mut cx = Context::from_waker(Waker::noop());
        for _ in 0..100 {
            if run.as_mut().poll(&mut cx).is_ready() {
                return lines.lock().unwrap().clone();
            }
            clock.advance(Duration::from_millis(50));
        }
        panic!("the shutdown never ended: {:?}", lines.lock().unwrap());
    }

    #[test]
    fn events_print_as_the_contract_says() {
        let lines = lines_of(|shutdown| {
            shutdown
                .on_cleanup_sync("db", || Ok::<(), io::Error>(()))
                .unwrap();
            shutdown
                .on_cleanup_sync("cache", || Err(io::Error::other("no")))
                .unwrap();
            let _ = shutdown.request(Signal::TERM);
        });
        assert_eq!(
            lines,
            [
                "draining SIGTERM",
                "closed",
                "drained",
                "cleanup cache error",
                "cleanup db ok"
            ]
        );
    }

    #[test]
    fn an_abandoned_drain_prints_how_many() {
        let lines = lines_of(|shutdown| {
            let guards = [
                shutdown.enter_owned().unwrap(),
                shutdown.enter_owned().unwrap(),
            ];
            let _ = shutdown.request(Signal::INT);
            guards
        });
        assert_eq!(lines, ["draining SIGINT", "closed", "abandoned 2"]);
    }

    #[test]
    fn told_steps_behave() {
        let mut cx = Context::from_waker(Waker::noop());
        let poll = |told: Told, cx: &mut Context<'_>| {
            let mut future = pin!(told.behave());
            future.as_mut().poll(cx).map(|result| result.is_ok())
        };
        assert_eq!(poll(Told::Succeed, &mut cx), Poll::Ready(true));
        assert_eq!(poll(Told::Fail, &mut cx), Poll::Ready(false));
        assert_eq!(poll(Told::Hang, &mut cx), Poll::Pending);
        let panicked = std::panic::catch_unwind(|| {
            let mut cx = Context::from_waker(Waker::noop());
            let _ = poll(Told::Panic, &mut cx);
        });
        assert!(panicked.is_err());
    }

    /// Whether the gate is held (by this thread or another).
    fn gate_is_held() -> bool {
        GATE.try_lock().is_err()
    }

    #[test]
    fn the_gate_orders_the_start_against_signals() {
        let driver = Shutdown::builder().build().unwrap();
        let shutdown = driver.handle();
        let (mut served, mut announced) = (false, false);
        let started = start_serving_then(
            &shutdown,
            || served = gate_is_held(),
            || announced = gate_is_held(),
        );
        assert!(
            started && served && announced,
            "served and announced under the gate"
        );

        let _ = shutdown.request(Signal::TERM);
        let started = start_serving_then(
            &shutdown,
            || panic!("served after a signal"),
            || panic!("announced after a signal"),
        );
        assert!(!started);
    }

    #[test]
    fn signals_are_polled_under_the_gate() {
        let polled = std::cell::Cell::new(0);
        let probe = std::future::poll_fn(|_| {
            assert!(gate_is_held(), "polled outside the gate");
            polled.set(polled.get() + 1);
            Poll::<u8>::Pending
        });
        let mut future = pin!(exit_on_signals(probe));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(future.as_mut().poll(&mut cx).is_pending());
        assert_eq!(polled.get(), 1);
    }

    #[test]
    fn query_parameters_are_whole_numbers() {
        assert_eq!(param("ms=20", "ms"), Ok(Some(20)));
        assert_eq!(param("chunks=3&ms=20", "ms"), Ok(Some(20)));
        assert_eq!(param("xms=1&ms=2", "ms"), Ok(Some(2)));
        assert_eq!(param("", "ms"), Ok(None));
        assert_eq!(param("ms", "ms"), Ok(None));
        let bad = param("ms=-1", "ms").unwrap_err();
        assert_eq!(Answer::from(bad).status, 400);
        assert!(param("ms=1.5", "ms").is_err());
    }

    #[test]
    fn order_ids_are_trimmed_and_required() {
        assert_eq!(order_id(b" a-1\n"), Ok("a-1".to_owned()));
        assert!(order_id(b"").is_err());
        assert!(order_id(b" \n").is_err());
        assert!(order_id(&[0xff, 0xfe]).is_err());
    }

    /// A timer that fires when told to; `rearm` records when it is set.
    struct Timer {
        fired: bool,
        set_to: Option<Duration>,
    }

    impl Future for Timer {
        type Output = ();

        fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
            if self.fired {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        }
    }

    #[test]
    fn stream_lines_come_first_at_once_then_on_the_timer() {
        let mut cx = Context::from_waker(Waker::noop());
        let mut lines = ChunkLines::from_query("chunks=3&ms=20").unwrap();
        let mut timer = Timer {
            fired: false,
            set_to: None,
        };
        let mut poll = |lines: &mut ChunkLines, timer: &mut Timer| {
            lines.poll_line(&mut cx, Pin::new(timer), |timer, every| {
                let timer = timer.get_mut();
                (timer.fired, timer.set_to) = (false, Some(every));
            })
        };
        assert_eq!(
            poll(&mut lines, &mut timer),
            Poll::Ready(Some("chunk 0\n".into()))
        );
        assert_eq!(timer.set_to, Some(Duration::from_millis(20)));
        assert_eq!(poll(&mut lines, &mut timer), Poll::Pending);
        timer.fired = true;
        assert_eq!(
            poll(&mut lines, &mut timer),
            Poll::Ready(Some("chunk 1\n".into()))
        );
        assert_eq!(poll(&mut lines, &mut timer), Poll::Pending);
        timer.fired = true;
        assert_eq!(
            poll(&mut lines, &mut timer),
            Poll::Ready(Some("chunk 2\n".into()))
        );
        assert!(lines.is_done());
        assert_eq!(poll(&mut lines, &mut timer), Poll::Ready(None));
        assert!(ChunkLines::from_query("").unwrap().is_done());
        assert!(ChunkLines::from_query("chunks=x").is_err());
        assert!(ChunkLines::from_query("chunks=1&ms=x").is_err());
    }

    #[test]
    fn routes_decide_what_a_request_asks() {
        let driver = Shutdown::builder().build().unwrap();
        let shutdown = driver.handle();
        let answer = |route: Route| match route {
            Route::Answer(answer) => answer,
            other => panic!("not answered at once: {other:?}"),
        };
        let dir = crate::tmp::TempDir::new("routes").unwrap();
        let store = Store::open(Path::new(&dir.file("o.sqlite")), Journal::Rollback).unwrap();
        let without = Routes::new(shutdown.clone(), None);
        let with = Routes::new(shutdown.clone(), Some(store));

        assert!(matches!(
            without.route("GET", "/sleep", Some("ms=5")),
            Route::Sleep { ms: 5 }
        ));
        assert!(matches!(
            without.route("GET", "/sleep", None),
            Route::Sleep { ms: 0 }
        ));
        assert_eq!(
            answer(without.route("GET", "/sleep", Some("ms=x"))).status,
            400
        );
        assert!(matches!(
            without.route("GET", "/stream", Some("chunks=2")),
            Route::Stream(_)
        ));
        assert_eq!(
            answer(without.route("GET", "/stream", Some("chunks=-2"))).status,
            400
        );
        assert_eq!(
            answer(without.route("GET", "/health/live", None)),
            Answer::live()
        );
        assert_eq!(
            answer(without.route("HEAD", "/health/live", None)).status,
            404
        );
        assert_eq!(
            answer(without.route("GET", "/nowhere", None)),
            Answer::not_found()
        );
        // No store: 404 before the query is read.
        assert_eq!(
            answer(without.route("POST", "/orders", Some("ms=x"))),
            Answer::no_store()
        );
        assert_eq!(answer(without.route("GET", "/orders", None)).status, 404);
        assert!(matches!(
            with.route("POST", "/orders", Some("ms=8")),
            Route::Order { ms: 8, .. }
        ));
        assert_eq!(
            answer(with.route("POST", "/orders", Some("ms=x"))).status,
            400
        );

        assert_eq!(
            answer(with.route("GET", "/health/ready", None)),
            Answer::ready(true)
        );
        let _ = shutdown.request(Signal::TERM);
        assert_eq!(answer(with.route("GET", "/health/ready", None)).status, 503);
    }

    #[test]
    fn cleanup_is_registered_in_order_with_its_work() {
        let dir = crate::tmp::TempDir::new("cleanup").unwrap();
        let path = dir.file("o.sqlite");
        let options = parse(&[
            "--store",
            &path,
            "--cleanup",
            "a,b",
            "--cleanup-ms",
            "7",
            "--cleanup-fail",
            "a",
        ])
        .unwrap();
        let store = options.open_store(Journal::Rollback);
        let done = Arc::new(Mutex::new(Vec::new()));
        let lines = lines_of(|shutdown| {
            let (slept, closed) = (done.clone(), done.clone());
            let sleep = move |time: Duration| {
                slept
                    .lock()
                    .unwrap()
                    .push(format!("slept {}", time.as_millis()));
                std::future::ready(())
            };
            let close = move |store: Store| {
                closed.lock().unwrap().push("closed".to_owned());
                std::future::ready(store.close())
            };
            options.register_cleanup(shutdown, store.as_ref(), sleep, close);
            let _ = shutdown.request(Signal::TERM);
        });
        assert_eq!(
            lines[lines.len() - 3..],
            ["cleanup b ok", "cleanup a error", "cleanup store ok"]
        );
        assert_eq!(*done.lock().unwrap(), ["slept 7", "slept 7", "closed"]);
        let store = store.unwrap();
        assert_eq!(store.insert("late"), Err(Insert::Failed), "closed");
    }

    #[test]
    fn answers_are_the_contracts() {
        assert_eq!(Answer::slept(5), Answer::new(200, "slept 5"));
        assert_eq!(Answer::ready(true), Answer::new(200, "ready"));
        assert_eq!(Answer::ready(false).status, 503);
        assert_eq!(Answer::stored(Ok(()), "a"), Answer::new(201, "stored a"));
        assert_eq!(Answer::stored(Err(Insert::Duplicate), "a").status, 409);
        assert_eq!(Answer::stored(Err(Insert::Failed), "a").status, 500);
    }

    #[test]
    fn the_store_refuses_duplicates_and_closes() {
        let dir = crate::tmp::TempDir::new("store").unwrap();
        for journal in [Journal::Rollback, Journal::Wal] {
            let path = PathBuf::from(dir.file(&format!("{journal:?}.sqlite")));
            let store = Store::open(&path, journal).unwrap();
            assert_eq!(store.insert("a"), Ok(()));
            assert_eq!(store.insert("a"), Err(Insert::Duplicate));
            store.close().unwrap();
            assert_eq!(store.insert("b"), Err(Insert::Failed));
            let store = Store::open(&path, journal).unwrap();
            assert_eq!(store.insert("a"), Err(Insert::Duplicate));
            store.close().unwrap();
        }
    }
}
