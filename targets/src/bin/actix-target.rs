//! The actix conformance target: an HTTP/1.1 server that implements the
//! conformance contract (see the `graceful-conformance` crate) with
//! actix-web and `graceful-actix`, and so the fullest example of that
//! adapter.
//!
//! ```text
//! cargo run -p graceful-targets --bin actix-target -- --store orders.sqlite --cleanup cache,queue
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

use actix_web::body::{BodySize, MessageBody};
use actix_web::http::StatusCode;
use actix_web::rt::time::{Instant, Sleep, sleep, sleep_until};
use actix_web::web::{self, Bytes};
use actix_web::{App, HttpRequest, HttpResponse, Resource};
use futures_lite::StreamExt;
use graceful_core::Shutdown;
use graceful_targets::{
    self as target, Answer, BadRequest, ChunkLines, Handover, Jobs, Journal, Options, Store, Ticks,
    param,
};
use std::convert::Infallible;
use std::io;
use std::net::TcpListener;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

fn main() {
    let options = Options::parse("actix-target");
    // Before any thread: the listener an upgrade passed down, if any.
    let handover = target::inherit(&options);
    let driver = options.driver();
    actix_web::rt::System::new().block_on(serve(options, driver, handover))
}

async fn serve(options: Options, driver: graceful_actix::Driver, mut handover: Handover) -> ! {
    let shutdown = driver.handle();
    // Signals and the driver first: a signal from here on ends the process
    // cleanly, whatever start-up is doing.
    let signals = graceful_actix::signals(&shutdown).unwrap_or_else(|error| {
        target::fail(format_args!("cannot install signal handlers: {error}"))
    });
    actix_web::rt::spawn(target::exit_on_signals(signals));
    let run = actix_web::rt::spawn(graceful_actix::run(driver));

    // Resources register their cleanup as they are acquired; the steps run
    // in reverse, so the store, registered first, closes last. WAL: orders
    // are committed on the runtime's thread (see `order`), so a commit must
    // not wait for an fsync.
    let store = options.open_store(Journal::Wal);
    options.register_cleanup(&shutdown, store.as_ref(), sleep, |store| async move {
        let closed = web::block(move || store.close()).await;
        closed.unwrap_or_else(|error| Err(io::Error::other(error)))
    });

    let listener: TcpListener = handover.listener(options.addr);
    let addr = listener.local_addr().unwrap_or(options.addr);
    let jobs = store.clone().map(Jobs::new);
    let events_every = EventsEvery(options.events_every);
    let app = {
        let shutdown = shutdown.clone();
        move || {
            App::new()
                .app_data(web::Data::new(store.clone()))
                .app_data(web::Data::new(jobs.clone()))
                .app_data(web::Data::new(shutdown.clone()))
                .app_data(web::Data::new(events_every))
                .service(resource("/sleep").route(web::get().to(sleep_for)))
                .service(resource("/stream").route(web::get().to(stream)))
                .service(resource("/health/ready").route(graceful_actix::readiness(&shutdown)))
                .service(resource("/health/live").route(web::get().to(|| async { "live" })))
                .service(resource("/orders").route(web::post().to(order)))
                .service(resource("/events").route(web::get().to(events)))
                .service(resource("/jobs").route(web::post().to(job)))
                .service(resource("/ws").route(web::get().to(websocket)))
                .default_service(web::to(not_found))
        }
    };
    // Under the start-up gate: a signal comes before (nothing is served)
    // or after `listening`.
    let served = target::start_serving(&shutdown, addr, || {
        // Rules 23 to 27: SIGHUP upgrades, with this listener.
        match graceful_actix::upgrade_on_sighup(&shutdown, &listener, target::print_progress) {
            Ok(upgrades) => drop(actix_web::rt::spawn(upgrades)),
            Err(error) => target::log(format_args!("no upgrades: {error}")),
        }
        let server = match options.tls.clone() {
            Some(tls) => graceful_actix::tls::serve_tls(listener, tls, app, &shutdown),
            None => graceful_actix::serve(listener, app, &shutdown),
        };
        actix_web::rt::spawn(async move {
            if let Err(error) = server.await {
                target::fail(format_args!("cannot serve: {error}"));
            }
        });
    });
    if served {
        handover.serving();
    }

    match run.await {
        Ok(report) => {
            // The HTTP/2 streams reset at the deadline: their frames first.
            if report.abandoned() > 0 {
                graceful_actix::resets_sent().await;
            }
            target::exit_with(&report)
        }
        Err(error) => target::fail(format_args!("the shutdown driver failed: {error}")),
    }
}

/// A resource that answers `404`, not actix's `405`, to other methods: the
/// contract has `404` for anything it does not name.
fn resource(path: &str) -> Resource {
    web::resource(path).default_service(web::to(not_found))
}

fn reply(answer: Result<Answer, BadRequest>) -> HttpResponse {
    let Answer { status, body } = answer.unwrap_or_else(Answer::from);
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    HttpResponse::build(status).body(body)
}

async fn not_found() -> HttpResponse {
    reply(Ok(Answer::not_found()))
}

async fn sleep_for(request: HttpRequest) -> HttpResponse {
    let slept = async {
        let ms = param(request.query_string(), "ms")?.unwrap_or(0);
        sleep(Duration::from_millis(ms)).await;
        Ok(Answer::slept(ms))
    };
    reply(slept.await)
}

async fn stream(request: HttpRequest) -> HttpResponse {
    match ChunkLines::from_query(request.query_string()) {
        Ok(lines) => HttpResponse::Ok().body(Chunks {
            lines,
            wait: Box::pin(sleep(Duration::ZERO)),
        }),
        Err(bad) => reply(Err(bad)),
    }
}

async fn order(request: HttpRequest, body: Bytes, store: web::Data<Option<Store>>) -> HttpResponse {
    reply(commit(request, body, store).await)
}

/// Commits the order at half the time, answers at the full time.
async fn commit(
    request: HttpRequest,
    body: Bytes,
    store: web::Data<Option<Store>>,
) -> Result<Answer, BadRequest> {
    let Some(store) = store.get_ref().clone() else {
        return Ok(Answer::no_store());
    };
    let ms = param(request.query_string(), "ms")?.unwrap_or(0);
    let id = target::order_id(&body)?;
    let started = Instant::now();
    sleep_until(started + Duration::from_millis(ms / 2)).await;
    // On this thread, not a blocking pool: if the request is cut off (the
    // drain deadline closes its connection), no insert is left running to
    // store an order whose answer can no longer be sent.
    let committed = store.insert(&id);
    sleep_until(started + Duration::from_millis(ms)).await;
    Ok(Answer::stored(committed, &id))
}

/// `--events-ms`, for the `/events` route.
#[derive(Clone, Copy)]
struct EventsEvery(Duration);

async fn events(
    request: HttpRequest,
    shutdown: web::Data<Shutdown>,
    default: web::Data<EventsEvery>,
) -> HttpResponse {
    match target::events_every(request.query_string(), default.0) {
        Ok(every) => {
            let ticks = Ticks::new(Arc::new(graceful_actix::ActixTimer), every);
            let ticks = ticks.map(|event| Ok::<_, Infallible>(Bytes::from(event)));
            graceful_actix::sse::sse(&shutdown, ticks)
        }
        Err(bad) => reply(Err(bad)),
    }
}

/// `GET /ws`: a WebSocket echoing every text message, going away at
/// `closed` (`graceful_actix::websocket`).
async fn websocket(
    request: HttpRequest,
    body: web::Payload,
    shutdown: web::Data<Shutdown>,
) -> actix_web::Result<HttpResponse> {
    let handled = graceful_actix::websocket::handle(&shutdown, &request, body)?;
    let (response, mut session, mut messages) = handled;
    actix_web::rt::spawn(async move {
        while let Some(Ok(message)) = messages.next().await {
            if let graceful_actix::websocket::Message::Text(text) = message
                && session.text(text).await.is_err()
            {
                break;
            }
        }
    });
    Ok(response)
}

async fn job(
    request: HttpRequest,
    body: Bytes,
    jobs: web::Data<Option<Jobs>>,
    shutdown: web::Data<Shutdown>,
) -> HttpResponse {
    reply(queue(request, body, jobs, &shutdown).await)
}

/// Queues the job, spawns it (in flight from here), answers `202` at once;
/// the job commits its row after `ms`.
async fn queue(
    request: HttpRequest,
    body: Bytes,
    jobs: web::Data<Option<Jobs>>,
    shutdown: &Shutdown,
) -> Result<Answer, BadRequest> {
    let Some(jobs) = jobs.get_ref().clone() else {
        return Ok(Answer::no_store());
    };
    let ms = param(request.query_string(), "ms")?.unwrap_or(0);
    let id = target::job_id(&body)?;
    // On this thread, as the orders' commits (the store is in WAL mode).
    let queued = match jobs.queue(&id) {
        Ok(queued) => queued,
        Err(why) => return Ok(Answer::not_queued(why, &id)),
    };
    let work = async move {
        sleep(Duration::from_millis(ms)).await;
        let id = queued.id().to_owned();
        if let Err(why) = queued.commit() {
            target::log(format_args!("job {id} not committed: {why:?}"));
        }
    };
    match graceful_actix::spawn_job(shutdown, work) {
        Ok(_) => Ok(Answer::queued(&id)),
        Err(_) => Ok(Answer::refused()),
    }
}

/// The `/stream` body: its lines, on actix's timer.
struct Chunks {
    lines: ChunkLines,
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
        let Chunks { lines, wait } = &mut *self;
        let line = ready!(lines.poll_line(cx, wait.as_mut(), |wait, every| {
            wait.reset(Instant::now() + every);
        }));
        Poll::Ready(line.map(|line| Ok(Bytes::from(line))))
    }
}
