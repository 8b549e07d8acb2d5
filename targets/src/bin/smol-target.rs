//! The smol conformance target: an HTTP/1.1 server that implements the
//! conformance contract (see the `graceful-conformance` crate) with
//! `graceful-smol`, and so the fullest example of that adapter.
//!
//! ```text
//! cargo run -p graceful-targets --bin smol-target -- --store orders.sqlite --cleanup cache,queue
//! ```
//!
//! Standard output carries only the contract's events, one a line; logs go
//! to standard error. The shutdown part is `serve`: signals and the driver
//! start before the listener is bound, resources register their cleanup as
//! they are acquired, and the process exits with the report's code, or at
//! once with `128 + N` on a second signal.
//!
//! It runs on an executor of its own (an `Arc<Executor>` run by one thread
//! per core, the main thread included); connections are spawned on it.
//!
//! What does not depend on the runtime (the command line, the cleanup
//! steps' behaviours, the store, the event lines, the start-up gate) comes
//! from this crate's library, shared by every adapter's target.

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use graceful_core::Shutdown;
use graceful_smol::Spawn;
use graceful_targets::{
    self as target, Answer, BadRequest, ChunkLines, Handover, Jobs, Journal, Options, Route,
    Routes, Store, Ticks,
};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Either, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use smol::{Async, Executor, Timer};
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

fn main() {
    let options = Options::parse("smol-target");
    // Before any thread: the listener an upgrade passed down, if any.
    let handover = target::inherit(&options);
    let driver = options.driver();
    let executor = Arc::new(Executor::new());
    let threads = std::thread::available_parallelism().map_or(2, usize::from);
    // One thread per core, the main thread being the last.
    for n in 1..threads {
        let executor = executor.clone();
        std::thread::Builder::new()
            .name(format!("smol-target-{n}"))
            .spawn(move || smol::block_on(executor.run(std::future::pending::<()>())))
            .unwrap_or_else(|error| target::fail(format_args!("cannot start a thread: {error}")));
    }
    smol::block_on(executor.run(serve(options, driver, executor.clone(), handover)))
}

async fn serve(
    options: Options,
    driver: graceful_smol::Driver,
    executor: Arc<Executor<'static>>,
    mut handover: Handover,
) -> ! {
    let shutdown = driver.handle();
    // Signals and the driver first: a signal from here on ends the process
    // cleanly, whatever start-up is doing.
    let signals = graceful_smol::signals(&shutdown).unwrap_or_else(|error| {
        target::fail(format_args!("cannot install signal handlers: {error}"))
    });
    executor.spawn_detached(target::exit_on_signals(signals));
    let run = executor.spawn(graceful_smol::run(driver));

    // Resources register their cleanup as they are acquired; the steps run
    // in reverse, so the store, registered first, closes last.
    let store = options.open_store(Journal::Rollback);
    options.register_cleanup(&shutdown, store.as_ref(), Timer::after, |store| {
        smol::unblock(move || store.close())
    });

    let listener = Async::new(handover.listener(options.addr)).unwrap_or_else(|error| {
        target::fail(format_args!("cannot listen on {}: {error}", options.addr))
    });
    let addr = listener.get_ref().local_addr().unwrap_or(options.addr);
    let routes = Routes::new(shutdown.clone(), store, options.events_every);
    let service = {
        let (shutdown, executor) = (shutdown.clone(), executor.clone());
        service_fn(move |request: Request<Incoming>| {
            let (method, uri) = (request.method().as_str(), request.uri());
            let route = routes.route(method, uri.path(), uri.query());
            let (shutdown, executor) = (shutdown.clone(), executor.clone());
            async move {
                let reply = match route {
                    Route::WebSocket => websocket(&shutdown, &executor, request),
                    route => respond(&shutdown, &executor, route, request.into_body()).await,
                };
                Ok::<_, Infallible>(reply)
            }
        })
    };
    // Under the start-up gate: a signal comes before (nothing is served)
    // or after `listening`.
    let served = target::start_serving(&shutdown, addr, || {
        // Rules 23 to 27: SIGHUP upgrades, with this listener.
        match graceful_smol::upgrade_on_sighup(&shutdown, &listener, target::print_progress) {
            Ok(upgrades) => executor.spawn_detached(upgrades),
            Err(error) => target::log(format_args!("no upgrades: {error}")),
        }
        let server = match options.tls.clone() {
            Some(tls) => {
                graceful_smol::tls::serve_tls(listener, tls, service, &shutdown, executor.clone())
            }
            None => graceful_smol::serve(listener, service, &shutdown, executor.clone()),
        };
        executor.spawn_detached(server);
    });
    if served {
        handover.serving();
    }

    let report = run.await;
    // The HTTP/2 streams reset at the deadline: their frames first.
    if report.abandoned() > 0 {
        graceful_smol::resets_sent().await;
    }
    target::exit_with(&report)
}

type Reply = Response<Either<Full<Bytes>, Either<Chunks, Events>>>;

/// The `/events` body: the library's ticks, going away at `closed`.
type Events = graceful_smol::sse::SseBody<Ticks>;

/// Carries a route out on smol.
async fn respond(
    shutdown: &Shutdown,
    executor: &Arc<Executor<'static>>,
    route: Route,
    body: Incoming,
) -> Reply {
    let answer = match route {
        Route::Answer(answer) => answer,
        Route::Sleep { ms } => {
            Timer::after(Duration::from_millis(ms)).await;
            Answer::slept(ms)
        }
        Route::Stream(lines) => {
            let wait = Timer::never();
            return Response::new(Either::Right(Either::Left(Chunks { lines, wait })));
        }
        Route::Events { every } => {
            let ticks = Ticks::new(Arc::new(graceful_smol::SmolTimer), every);
            let response = graceful_smol::sse::sse(shutdown, ticks);
            return response.map(|body| Either::Right(Either::Right(body)));
        }
        // Answered before `respond`, with the request's upgrade.
        Route::WebSocket => Answer::not_found(),
        Route::Job { jobs, ms } => job(shutdown, executor, jobs, ms, body)
            .await
            .unwrap_or_else(Answer::from),
        Route::Order { store, ms } => order(store, ms, body).await.unwrap_or_else(Answer::from),
    };
    answer.into_reply()
}

/// An answer as a response.
trait IntoReply {
    fn into_reply(self) -> Reply;
}

impl IntoReply for Answer {
    fn into_reply(self) -> Reply {
        let response = Response::builder().status(self.status);
        response
            .body(Either::Left(Full::from(self.body)))
            .expect("a valid status")
    }
}

/// Queues the job, spawns it (in flight from here), answers `202` at once;
/// the job commits its row after `ms`.
async fn job(
    shutdown: &Shutdown,
    executor: &Arc<Executor<'static>>,
    jobs: Jobs,
    ms: u64,
    body: Incoming,
) -> Result<Answer, BadRequest> {
    let body = body.collect().await;
    let body = body.map_err(|_| BadRequest("unreadable body".into()))?;
    let id = target::job_id(&body.to_bytes())?;
    let queue = smol::unblock({
        let id = id.clone();
        move || jobs.queue(&id)
    });
    let queued = match queue.await {
        Ok(queued) => queued,
        Err(why) => return Ok(Answer::not_queued(why, &id)),
    };
    let work = async move {
        Timer::after(Duration::from_millis(ms)).await;
        let id = queued.id().to_owned();
        if let Err(why) = smol::unblock(move || queued.commit()).await {
            target::log(format_args!("job {id} not committed: {why:?}"));
        }
    };
    match graceful_smol::spawn_job(executor, shutdown, work) {
        Ok(()) => Ok(Answer::queued(&id)),
        Err(_) => Ok(Answer::refused()),
    }
}

/// `GET /ws`: a WebSocket echoing every text message, going away at
/// `closed` (`graceful_smol::websocket`).
fn websocket(
    shutdown: &Shutdown,
    executor: &Arc<Executor<'static>>,
    mut request: Request<Incoming>,
) -> Reply {
    let echo = graceful_smol::websocket::upgrade(
        executor,
        shutdown,
        &mut request,
        |mut socket| async move {
            while let Some(Ok(message)) = socket.next().await {
                if message.is_text() && socket.send(message).await.is_err() {
                    break;
                }
            }
        },
    );
    let response: Result<Response<Full<Bytes>>, _> = echo;
    response.map_or_else(
        |not| Answer::from(BadRequest(not.to_string())).into_reply(),
        |response| response.map(Either::Left),
    )
}

/// Commits the order at half the time, answers at the full time.
async fn order(store: Store, ms: u64, body: Incoming) -> Result<Answer, BadRequest> {
    let body = body.collect().await;
    let body = body.map_err(|_| BadRequest("unreadable body".into()))?;
    let id = target::order_id(&body.to_bytes())?;
    let started = Instant::now();
    Timer::at(started + Duration::from_millis(ms / 2)).await;
    let insert = smol::unblock({
        let id = id.clone();
        move || store.insert(&id)
    });
    let committed = insert.await;
    Timer::at(started + Duration::from_millis(ms)).await;
    Ok(Answer::stored(committed, &id))
}

/// The `/stream` body: its lines, on smol's timer.
struct Chunks {
    lines: ChunkLines,
    wait: Timer,
}

impl Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let Chunks { lines, wait } = &mut *self;
        let line = ready!(lines.poll_line(cx, Pin::new(wait), |wait, every| {
            wait.get_mut().set_after(every);
        }));
        Poll::Ready(line.map(|line| Ok(Frame::data(Bytes::from(line)))))
    }

    fn is_end_stream(&self) -> bool {
        self.lines.is_done()
    }
}
