//! The serving rules, checked with real sockets on 127.0.0.1: an actix-web
//! app served by `graceful_actix::Server` under a shutdown driven by
//! `graceful_actix::run`.

mod common;

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::rt::time::{Instant as TokioInstant, Sleep, sleep};
use actix_web::web::{self, Bytes};
use actix_web::{App, HttpRequest, HttpResponse};
use common::{Conn, Events, NoResponse, PATIENCE, Peer, Running, get, ms, refused};
use graceful_actix::{Phase, Server, Shutdown, Signal};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

/// What the test app's handlers share with the test.
#[derive(Clone)]
struct State {
    shutdown: Shutdown,
    /// How many times `/count` was called.
    counted: Arc<AtomicUsize>,
    /// How many `/sleep` handlers have finished.
    slept: Arc<AtomicUsize>,
}

fn param(request: &HttpRequest, name: &str) -> u64 {
    request
        .query_string()
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0)
}

fn test_app(
    state: State,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<BoxBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let counted = state.counted.clone();
    let slept = state.slept.clone();
    App::new()
        .route(
            "/sleep",
            web::get().to(move |request: HttpRequest| {
                let slept = slept.clone();
                async move {
                    let ms = param(&request, "ms");
                    sleep(Duration::from_millis(ms)).await;
                    slept.fetch_add(1, Ordering::SeqCst);
                    format!("slept {ms}")
                }
            }),
        )
        .route(
            "/stream",
            web::get().to(|request: HttpRequest| async move {
                HttpResponse::Ok().body(Chunks {
                    next: 0,
                    count: param(&request, "chunks"),
                    every: Duration::from_millis(param(&request, "ms")),
                    wait: Box::pin(sleep(Duration::ZERO)),
                })
            }),
        )
        .route(
            "/count",
            web::get().to(move || {
                counted.fetch_add(1, Ordering::SeqCst);
                async { "counted" }
            }),
        )
        .route("/live", web::get().to(|| async { "live" }))
        .route("/ready", graceful_actix::readiness(&state.shutdown))
        .service(
            // Inner middleware that fails after a while, for the error path.
            web::scope("/fail")
                .wrap_fn(|_, _| async {
                    sleep(Duration::from_millis(300)).await;
                    Err::<ServiceResponse, _>(actix_web::error::ErrorBadRequest("failed"))
                })
                .route("", web::get().to(|| async { "unreachable" })),
        )
}

/// `K` lines, the first at once, then one every `every`.
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
        let due = TokioInstant::now() + self.every;
        self.wait.as_mut().reset(due);
        Poll::Ready(Some(Ok(Bytes::from(line))))
    }
}

/// A served test app and its running shutdown.
struct Served {
    running: Running,
    addr: SocketAddr,
    counted: Arc<AtomicUsize>,
    slept: Arc<AtomicUsize>,
}

impl Served {
    fn shutdown(&self) -> &Shutdown {
        &self.running.shutdown
    }

    fn events(&self) -> &Events {
        &self.running.events
    }

    fn request(&self) {
        let _ = self.shutdown().request(Signal::TERM);
    }

    async fn report(self) -> graceful_actix::Report {
        actix_web::rt::time::timeout(PATIENCE, self.running.report)
            .await
            .expect("the shutdown did not finish in time")
            .expect("the driver task")
    }
}

/// Serves the test app under a shutdown set up by `configure`.
fn serve_with(configure: impl FnOnce(graceful_core::Builder) -> graceful_core::Builder) -> Served {
    let events = Events::default();
    let driver = configure(common::builder(&events)).build().expect("build");
    let running = common::start_driver(driver, events);
    let (listener, addr) = common::listener();
    let state = State {
        shutdown: running.shutdown.clone(),
        counted: Arc::default(),
        slept: Arc::default(),
    };
    let (counted, slept) = (state.counted.clone(), state.slept.clone());
    let serve = Server::new(move || test_app(state.clone()))
        .workers(2)
        .serve(listener, &running.shutdown);
    actix_web::rt::spawn(serve);
    Served {
        running,
        addr,
        counted,
        slept,
    }
}

fn serve() -> Served {
    serve_with(|builder| builder)
}

#[actix_web::test]
async fn request_in_progress_completes_and_closes_its_connection() {
    let served = serve();
    let mut busy = Conn::open(served.addr).await;
    busy.send(&get("/sleep?ms=400")).await;
    common::eventually("the request is in progress", || {
        served.shutdown().in_flight() == 1
    })
    .await;

    served.request();
    let closed = served.events().wait("closed").await;
    let response = busy
        .response()
        .await
        .expect("the request in progress is answered");
    assert_eq!(response.status, 200);
    assert_eq!(response.text(), "slept 400");
    assert!(response.done_at > closed);
    assert!(
        response.closes(),
        "a head sent after `closed` must say Connection: close"
    );
    assert_eq!(busy.peer(Duration::from_secs(2)).await, Peer::Closed);

    let drained = served.events().wait("drained").await;
    let after = ms(response.done_at, drained);
    assert!(
        after < 500.0,
        "`drained` came {after:.1} ms after the last response"
    );
    let report = served.report().await;
    assert_eq!(report.exit_code(), 0);
}

#[actix_web::test]
async fn a_connect_after_closed_is_refused() {
    let served = serve();
    let mut busy = Conn::open(served.addr).await;
    busy.send(&get("/sleep?ms=600")).await;
    common::eventually("the request is in progress", || {
        served.shutdown().in_flight() == 1
    })
    .await;
    served.request();
    served.events().wait("closed").await;
    for _ in 0..3 {
        assert!(
            refused(served.addr).await,
            "a connect after `closed` was not refused"
        );
    }
    assert_eq!(busy.response().await.expect("answered").status, 200);
    assert_eq!(served.report().await.exit_code(), 0);
}

#[actix_web::test]
async fn idle_keep_alive_connection_gets_503_then_closes() {
    let served = serve();
    let mut idle = Conn::open(served.addr).await;
    let first = idle.exchange(&get("/live")).await.expect("answered");
    assert_eq!(first.status, 200);
    assert!(!first.closes(), "keep-alive before any signal");
    // Its guard goes at the flush that follows the write the client read.
    common::eventually("the first request ends", || {
        served.shutdown().in_flight() == 0
    })
    .await;
    let mut busy = Conn::open(served.addr).await;
    busy.send(&get("/sleep?ms=800")).await;
    common::eventually("the request is in progress", || {
        served.shutdown().in_flight() == 1
    })
    .await;

    served.request();
    served.events().wait("closed").await;
    // Not closed by the shutdown: the next request gets a clean refusal.
    let refusal = idle
        .exchange(&get("/live"))
        .await
        .expect("answered, not reset");
    assert_eq!(refusal.status, 503);
    assert!(refusal.closes());
    assert_eq!(refusal.header("retry-after"), Some("1"));
    assert_eq!(idle.peer(Duration::from_secs(2)).await, Peer::Closed);

    assert_eq!(busy.response().await.expect("answered").status, 200);
    assert_eq!(served.report().await.exit_code(), 0);
}

#[actix_web::test]
async fn idle_and_half_sent_connections_do_not_delay_the_drain() {
    let served = serve();
    let mut idle = Vec::new();
    for _ in 0..3 {
        let mut conn = Conn::open(served.addr).await;
        assert_eq!(
            conn.exchange(&get("/live")).await.expect("answered").status,
            200
        );
        idle.push(conn);
    }
    let mut half = Conn::open(served.addr).await;
    half.send("GET /sleep?ms=10 HTTP/1.1\r\nHost: te").await;
    let _silent = Conn::open(served.addr).await;
    sleep(Duration::from_millis(100)).await;

    let asked = Instant::now();
    served.request();
    let drained = served.events().wait("drained").await;
    let took = ms(asked, drained);
    assert!(
        took < 500.0,
        "`drained` came {took:.1} ms after the request"
    );
    assert_eq!(served.report().await.exit_code(), 0);
    // And they are still open: nothing closed them.
    for conn in &mut idle {
        assert_eq!(conn.peer(Duration::from_millis(100)).await, Peer::Open);
    }
}

#[actix_web::test]
async fn a_streamed_body_keeps_its_request_in_progress_to_the_end() {
    let served = serve();
    let mut conn = Conn::open(served.addr).await;
    conn.send(&get("/stream?chunks=6&ms=150")).await;
    common::eventually("the stream is in progress", || {
        served.shutdown().in_flight() == 1
    })
    .await;
    served.request();
    served.events().wait("closed").await;
    // Half-way through the stream: still in progress.
    sleep(Duration::from_millis(300)).await;
    assert_eq!(served.shutdown().in_flight(), 1);
    assert_eq!(
        served.events().at("drained"),
        None,
        "drained while the body was still being sent"
    );

    let response = conn.response().await.expect("the whole stream");
    let want: String = (0..6).map(|i| format!("chunk {i}\n")).collect();
    assert_eq!(response.text(), want);
    let drained = served.events().wait("drained").await;
    let after = ms(response.done_at, drained);
    assert!(
        after < 500.0,
        "`drained` came {after:.1} ms after the stream's end"
    );
    // Its head went out before `closed`: the connection stays open, and the
    // next request on it is refused cleanly.
    assert!(!response.closes());
    let next = conn.exchange(&get("/live")).await.expect("answered");
    assert_eq!(next.status, 503);
    assert_eq!(served.report().await.exit_code(), 0);
}

#[actix_web::test]
async fn a_request_pipelined_behind_a_client_close_is_not_begun() {
    let served = serve();
    let mut conn = Conn::open(served.addr).await;
    conn.send(&format!(
        "GET /count HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n{}",
        get("/count")
    ))
    .await;
    let first = conn
        .response()
        .await
        .expect("the first request is answered");
    assert_eq!(first.status, 200);
    assert_eq!(conn.peer(Duration::from_secs(2)).await, Peer::Closed);
    assert_eq!(
        served.counted.load(Ordering::SeqCst),
        1,
        "the pipelined request was begun"
    );
    assert_eq!(served.shutdown().in_flight(), 0);
    served.request();
    assert_eq!(served.report().await.exit_code(), 0);
}

#[actix_web::test]
async fn a_request_pipelined_behind_a_drain_close_is_not_begun() {
    let served = serve();
    let mut conn = Conn::open(served.addr).await;
    conn.send(&format!("{}{}", get("/sleep?ms=400"), get("/count")))
        .await;
    common::eventually("the request is in progress", || {
        served.shutdown().in_flight() == 1
    })
    .await;
    served.request();
    served.events().wait("closed").await;

    let first = conn
        .response()
        .await
        .expect("the request in progress is answered");
    assert_eq!(first.text(), "slept 400");
    assert!(first.closes());
    // Neither answered nor begun: the connection closes after the first.
    assert_eq!(conn.peer(Duration::from_secs(2)).await, Peer::Closed);
    assert_eq!(served.counted.load(Ordering::SeqCst), 0);
    served.events().wait("drained").await;
    assert_eq!(served.report().await.exit_code(), 0);
}

#[actix_web::test]
async fn the_drain_deadline_closes_busy_connections_only() {
    let served = serve_with(|builder| builder.drain_timeout(Duration::from_millis(300)));
    let mut idle = Conn::open(served.addr).await;
    assert_eq!(
        idle.exchange(&get("/live")).await.expect("answered").status,
        200
    );
    common::eventually("the first request ends", || {
        served.shutdown().in_flight() == 0
    })
    .await;
    let mut busy = Conn::open(served.addr).await;
    busy.send(&get("/sleep?ms=10000")).await;
    let mut stream = Conn::open(served.addr).await;
    stream.send(&get("/stream?chunks=100&ms=100")).await;
    common::eventually("two requests in progress", || {
        served.shutdown().in_flight() == 2
    })
    .await;

    served.request();
    let abandoned = served.events().wait("abandoned 2").await;
    for (what, conn) in [("sleep", &mut busy), ("stream", &mut stream)] {
        let cut = conn.response_within(Duration::from_secs(2)).await;
        assert!(
            matches!(cut, Err(NoResponse::Closed { .. } | NoResponse::Reset)),
            "the abandoned {what} was not cut off: {cut:?}"
        );
    }
    let cut_after = ms(abandoned, Instant::now());
    assert!(cut_after < 2000.0);
    // The idle one was left alone, and still answers cleanly.
    let refusal = idle
        .exchange(&get("/live"))
        .await
        .expect("answered, not reset");
    assert_eq!(refusal.status, 503);
    let report = served.report().await;
    assert_eq!(
        report.exit_code(),
        1,
        "cut-off requests are never a silent success"
    );
    assert_eq!(report.abandoned(), 2);
}

#[actix_web::test]
async fn an_error_answered_during_the_drain_closes_its_connection() {
    let served = serve();
    let mut conn = Conn::open(served.addr).await;
    conn.send(&get("/fail")).await;
    common::eventually("the request is in progress", || {
        served.shutdown().in_flight() == 1
    })
    .await;
    served.request();
    served.events().wait("closed").await;
    let response = conn.response().await.expect("the error is answered");
    assert_eq!(response.status, 400);
    assert!(
        response.closes(),
        "an error response after `closed` must say Connection: close"
    );
    assert_eq!(conn.peer(Duration::from_secs(2)).await, Peer::Closed);
    assert_eq!(served.report().await.exit_code(), 0);
}

#[actix_web::test]
async fn cleanup_runs_after_the_requests_last_registered_first() {
    let served = serve();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    for name in ["first", "second", "third"] {
        let seen = seen.clone();
        let slept = served.slept.clone();
        served
            .shutdown()
            .on_cleanup(name, move || async move {
                seen.lock()
                    .unwrap()
                    .push((name, slept.load(Ordering::SeqCst)));
                Ok::<_, std::io::Error>(())
            })
            .expect("register");
    }
    let mut conn = Conn::open(served.addr).await;
    conn.send(&get("/sleep?ms=300")).await;
    common::eventually("the request is in progress", || {
        served.shutdown().in_flight() == 1
    })
    .await;
    served.request();
    let response = conn.response().await.expect("answered");
    assert_eq!(response.status, 200);
    let report = served.report().await;
    assert_eq!(report.exit_code(), 0);
    let seen = seen.lock().unwrap().clone();
    // Each step saw the request's handler finished: cleanup waited for it.
    assert_eq!(seen, [("third", 1), ("second", 1), ("first", 1)]);
}

#[actix_web::test]
async fn the_unready_delay_serves_everything_but_readiness() {
    let served = serve_with(|builder| builder.unready_delay(Duration::from_millis(800)));
    let mut kept = Conn::open(served.addr).await;
    assert_eq!(
        kept.exchange(&get("/ready"))
            .await
            .expect("answered")
            .status,
        200
    );
    served.request();
    served.events().wait("requested").await;

    let mut fresh = Conn::open(served.addr).await;
    let ready = fresh.exchange(&get("/ready")).await.expect("answered");
    assert_eq!(ready.status, 503);
    assert_eq!(ready.text(), "not ready");
    let slept = Conn::open(served.addr)
        .await
        .exchange(&get("/sleep?ms=10"))
        .await
        .expect("a new connection is served");
    assert_eq!(slept.status, 200);
    let again = kept.exchange(&get("/live")).await.expect("answered");
    assert_eq!(again.status, 200);
    assert!(!again.closes(), "served as before during the unready delay");
    assert_eq!(
        served.events().at("closed"),
        None,
        "closed before the unready delay ended"
    );

    served.events().wait("closed").await;
    assert!(refused(served.addr).await);
    assert_eq!(served.report().await.exit_code(), 0);
}

#[actix_web::test]
async fn a_listener_served_once_draining_is_closed_at_once() {
    let events = Events::default();
    let driver = common::builder(&events).build().expect("build");
    let running = common::start_driver(driver, events);
    let _ = running.shutdown.request(Signal::TERM);
    common::eventually("draining", || running.shutdown.phase() >= Phase::Draining).await;

    let (listener, addr) = common::listener();
    let shutdown = running.shutdown.clone();
    let serve = Server::new(move || {
        test_app(State {
            shutdown: shutdown.clone(),
            counted: Arc::default(),
            slept: Arc::default(),
        })
    })
    .serve(listener, &running.shutdown);
    serve.await.expect("nothing to serve is not an error");
    assert!(
        refused(addr).await,
        "a listener served too late must be closed"
    );
}

#[actix_web::test]
async fn applied_again_inside_serve_each_request_counts_once() {
    let events = Events::default();
    let driver = common::builder(&events).build().expect("build");
    let running = common::start_driver(driver, events);
    let (listener, addr) = common::listener();
    let shutdown = running.shutdown.clone();
    // What the handler saw: the in-flight count while it ran, per request.
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let serve = Server::new({
        let (shutdown, seen) = (shutdown.clone(), seen.clone());
        move || {
            let (inner, seen) = (shutdown.clone(), seen.clone());
            App::new()
                .wrap(graceful_actix::Graceful::new(&inner))
                .service(
                    web::scope("/scoped")
                        // Inside a scope too: called only once routed.
                        .wrap(graceful_actix::Graceful::new(&inner))
                        .route(
                            "",
                            web::get().to(move || {
                                let (inner, seen) = (inner.clone(), seen.clone());
                                async move {
                                    seen.lock().expect("seen").push(inner.in_flight());
                                    "scoped"
                                }
                            }),
                        ),
                )
        }
    })
    .workers(1)
    .serve(listener, &running.shutdown);
    actix_web::rt::spawn(serve);

    // Several requests on one keep-alive connection: each is counted by
    // the outermost middleware alone, and none passes for the one counted
    // before it (the mark's clearing itself is checked in `conn`'s tests).
    let mut conn = Conn::open(addr).await;
    for _ in 0..3 {
        let response = conn.exchange(&get("/scoped")).await.expect("answered");
        assert_eq!(response.status, 200);
        assert_eq!(response.text(), "scoped");
    }
    assert_eq!(*seen.lock().expect("seen"), vec![1, 1, 1]);
    common::eventually("the requests have ended", || shutdown.in_flight() == 0).await;
    let _ = shutdown.request(Signal::TERM);
    let report = actix_web::rt::time::timeout(PATIENCE, running.report)
        .await
        .expect("the shutdown did not finish in time")
        .expect("the driver task");
    assert_eq!(report.exit_code(), 0);
}
