//! The tokio conformance target: an HTTP/1.1 server that implements the
//! conformance contract (see the `graceful-conformance` crate) with
//! `graceful-tokio`, and so the fullest example of that adapter. It also
//! serves the contract's gRPC services on the same port (`grpc.rs` of the
//! library).
//!
//! ```text
//! cargo run -p graceful-targets --bin tokio-target -- --store orders.sqlite --cleanup cache,queue
//! ```
//!
//! Standard output carries only the contract's events, one a line; logs go
//! to standard error. The shutdown part is `serve`: signals and the driver
//! start before the listener is bound, resources register their cleanup as
//! they are acquired, and the process exits with the report's code, or at
//! once with `128 + N` on a second signal.
//!
//! What does not depend on the runtime (the command line, the cleanup
//! steps' behaviours, the store, the event lines, the start-up gate) comes
//! from this crate's library, shared by every adapter's target.

use bytes::Bytes;
use futures_util::stream::Map;
use futures_util::{SinkExt, StreamExt};
use graceful_core::{Shutdown, UntilGoingAway};
use graceful_targets::{
    self as target, Answer, BadRequest, ChunkLines, Handover, Insert, Jobs, Journal, Options,
    Route, Routes, Store, Ticks,
};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Either, Full, StreamBody};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::time::{Instant, Sleep, sleep, sleep_until};

fn main() {
    let options = Options::parse("tokio-target");
    // Before any thread: the listener an upgrade passed down, if any.
    let handover = target::inherit(&options);
    let driver = options.driver();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|error| target::fail(format_args!("cannot start the runtime: {error}")));
    runtime.block_on(serve(options, driver, handover))
}

async fn serve(options: Options, driver: graceful_tokio::Driver, mut handover: Handover) -> ! {
    let shutdown = driver.handle();
    // Signals and the driver first: a signal from here on ends the process
    // cleanly, whatever start-up is doing.
    let signals = graceful_tokio::signals(&shutdown).unwrap_or_else(|error| {
        target::fail(format_args!("cannot install signal handlers: {error}"))
    });
    tokio::spawn(target::exit_on_signals(signals));
    let run = tokio::spawn(graceful_tokio::run(driver));

    // Resources register their cleanup as they are acquired; the steps run
    // in reverse, so the store, registered first, closes last.
    let store = options.open_store(Journal::Rollback);
    options.register_cleanup(&shutdown, store.as_ref(), sleep, |store| async move {
        let closed = tokio::task::spawn_blocking(move || store.close()).await;
        closed.unwrap_or_else(|error| Err(io::Error::other(error)))
    });

    let listener = TcpListener::from_std(handover.listener(options.addr)).unwrap_or_else(|error| {
        target::fail(format_args!("cannot listen on {}: {error}", options.addr))
    });
    let addr = listener.local_addr().unwrap_or(options.addr);
    let routes = Routes::new(shutdown.clone(), store, options.events_every);
    let service = {
        let shutdown = shutdown.clone();
        service_fn(move |request: Request<Incoming>| {
            let (method, uri) = (request.method().as_str(), request.uri());
            let route = routes.route(method, uri.path(), uri.query());
            let shutdown = shutdown.clone();
            async move {
                let reply = match route {
                    Route::WebSocket => websocket(&shutdown, request),
                    route => respond(&shutdown, route, request.into_body()).await,
                };
                Ok::<_, Infallible>(reply)
            }
        })
    };
    // gRPC on the same port: `application/grpc` calls go to tonic's routes.
    let service = target::grpc::WithGrpc::new(target::grpc::routes(&shutdown).await, service);
    // Under the start-up gate: a signal comes before (nothing is served)
    // or after `listening`.
    let served = target::start_serving(&shutdown, addr, || {
        // Rules 23 to 27: SIGHUP upgrades, with this listener.
        match graceful_tokio::upgrade_on_sighup(&shutdown, &listener, target::print_progress) {
            Ok(upgrades) => drop(tokio::spawn(upgrades)),
            Err(error) => target::log(format_args!("no upgrades: {error}")),
        }
        let server = match options.tls.clone() {
            Some(tls) => graceful_tokio::tls::serve_tls(listener, tls, service, &shutdown),
            None => graceful_tokio::serve(listener, service, &shutdown),
        };
        tokio::spawn(server);
    });
    if served {
        handover.serving();
    }

    match run.await {
        Ok(report) => {
            // The HTTP/2 streams reset at the deadline: their frames first.
            if report.abandoned() > 0 {
                graceful_tokio::resets_sent().await;
            }
            target::exit_with(&report)
        }
        Err(error) => target::fail(format_args!("the shutdown driver failed: {error}")),
    }
}

type Reply = Response<Either<Full<Bytes>, Either<Chunks, Events>>>;

/// The `/events` body: the library's events, as data frames.
type Events =
    StreamBody<Map<UntilGoingAway<Ticks>, fn(String) -> Result<Frame<Bytes>, Infallible>>>;

fn data(event: String) -> Result<Frame<Bytes>, Infallible> {
    Ok(Frame::data(Bytes::from(event)))
}

/// Carries a route out on tokio.
async fn respond(shutdown: &Shutdown, route: Route, body: Incoming) -> Reply {
    let answer = match route {
        Route::Answer(answer) => answer,
        Route::Sleep { ms } => {
            sleep(Duration::from_millis(ms)).await;
            Answer::slept(ms)
        }
        Route::Stream(lines) => {
            let wait = Box::pin(sleep(Duration::ZERO));
            return Response::new(Either::Right(Either::Left(Chunks { lines, wait })));
        }
        Route::Events { every } => {
            let events =
                target::ticks::events(shutdown, Arc::new(graceful_tokio::TokioTimer), every);
            let body = StreamBody::new(events.map(data as fn(_) -> _));
            let response = Response::builder().header("content-type", "text/event-stream");
            return response
                .body(Either::Right(Either::Right(body)))
                .expect("a valid header");
        }
        // Answered before `respond`, with the request's upgrade.
        Route::WebSocket => Answer::not_found(),
        Route::Job { jobs, ms } => job(shutdown, jobs, ms, body)
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
    jobs: Jobs,
    ms: u64,
    body: Incoming,
) -> Result<Answer, BadRequest> {
    let body = body.collect().await;
    let body = body.map_err(|_| BadRequest("unreadable body".into()))?;
    let id = target::job_id(&body.to_bytes())?;
    let queue = tokio::task::spawn_blocking({
        let id = id.clone();
        move || jobs.queue(&id)
    });
    let queued = match queue.await.unwrap_or(Err(Insert::Failed)) {
        Ok(queued) => queued,
        Err(why) => return Ok(Answer::not_queued(why, &id)),
    };
    let work = async move {
        sleep(Duration::from_millis(ms)).await;
        let id = queued.id().to_owned();
        let commit = tokio::task::spawn_blocking(move || queued.commit());
        if let Err(why) = commit.await.unwrap_or(Err(Insert::Failed)) {
            target::log(format_args!("job {id} not committed: {why:?}"));
        }
    };
    match graceful_tokio::spawn_job(shutdown, work) {
        Ok(_) => Ok(Answer::queued(&id)),
        Err(_) => Ok(Answer::refused()),
    }
}

/// `GET /ws`: a WebSocket echoing every text message, going away at
/// `closed` (`graceful_tokio::websocket`).
fn websocket(shutdown: &Shutdown, mut request: Request<Incoming>) -> Reply {
    let echo =
        graceful_tokio::websocket::upgrade(shutdown, &mut request, |mut socket| async move {
            while let Some(Ok(message)) = socket.next().await {
                if message.is_text() && socket.send(message).await.is_err() {
                    break;
                }
            }
        });
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
    sleep_until(started + Duration::from_millis(ms / 2)).await;
    let insert = tokio::task::spawn_blocking({
        let id = id.clone();
        move || store.insert(&id)
    });
    let committed = insert.await.unwrap_or(Err(Insert::Failed));
    sleep_until(started + Duration::from_millis(ms)).await;
    Ok(Answer::stored(committed, &id))
}

/// The `/stream` body: its lines, on tokio's timer.
struct Chunks {
    lines: ChunkLines,
    wait: Pin<Box<Sleep>>,
}

impl Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let Chunks { lines, wait } = &mut *self;
        let line = ready!(lines.poll_line(cx, wait.as_mut(), |wait, every| {
            wait.reset(Instant::now() + every);
        }));
        Poll::Ready(line.map(|line| Ok(Frame::data(Bytes::from(line)))))
    }

    fn is_end_stream(&self) -> bool {
        self.lines.is_done()
    }
}
