//! Connection-level tests on an in-memory socket, polled step by step.

mod mock;

use crate::{GracefulBody, GracefulService, serve_connection};
use bytes::Bytes;
use graceful_core::{DrainOutcome, ManualClock, Phase, Report, Run, Shutdown, Signal};
use http::{Request, Response};
use http_body::{Body, Frame};
use http_body_util::{Empty, Full};
use hyper::body::Incoming;
use hyper::service::{Service, service_fn};
use mock::{connection, turn};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

const GET: &str = "GET / HTTP/1.1\r\nhost: test\r\n\r\n";
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// A response body the test feeds chunk by chunk.
#[derive(Clone, Default)]
struct Feed(Arc<Mutex<(VecDeque<Bytes>, bool)>>);

impl Feed {
    fn push(&self, chunk: &'static str) {
        self.0
            .lock()
            .unwrap()
            .0
            .push_back(Bytes::from_static(chunk.as_bytes()));
    }

    fn end(&self) {
        self.0.lock().unwrap().1 = true;
    }
}

impl Body for Feed {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let mut state = self.0.lock().unwrap();
        match state.0.pop_front() {
            Some(chunk) => Poll::Ready(Some(Ok(Frame::data(chunk)))),
            None if state.1 => Poll::Ready(None),
            None => Poll::Pending,
        }
    }
}

/// A handler's answer, held back until the test opens the gate.
#[derive(Clone, Default)]
struct Gate(Arc<Mutex<bool>>);

impl Gate {
    fn open(&self) {
        *self.0.lock().unwrap() = true;
    }

    fn wait(&self) -> impl Future<Output = ()> + use<> {
        let gate = self.0.clone();
        std::future::poll_fn(move |_| {
            if *gate.lock().unwrap() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    }
}

type Handler = Box<
    dyn Fn(
            Request<Incoming>,
        )
            -> Pin<Box<dyn Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send>>
        + Send,
>;

/// HTTP/1.1 only here: no task is ever spawned, no timer ever runs.
fn spawner() -> crate::Spawner {
    crate::Spawner::new(|_| unreachable!("HTTP/1.1 spawns nothing"))
}

fn timer() -> std::sync::Arc<dyn graceful_core::Timer> {
    std::sync::Arc::new(graceful_core::ManualClock::new())
}

/// Answers `hello` once the gate is open.
fn gated(
    gate: &Gate,
) -> impl Service<
    Request<Incoming>,
    Response = Response<Full<Bytes>>,
    Error = Infallible,
    Future: Send + 'static,
>
+ Send
+ 'static
+ use<> {
    let gate = gate.clone();
    let handler: Handler = Box::new(move |_| {
        let wait = gate.wait();
        Box::pin(async move {
            wait.await;
            Ok(Response::new(Full::new(Bytes::from_static(b"hello"))))
        })
    });
    service_fn(handler)
}

fn open_gate() -> Gate {
    let gate = Gate::default();
    gate.open();
    gate
}

/// A shutdown with its driver running on a manual clock.
fn shutdown() -> (Shutdown, Run, ManualClock) {
    let driver = Shutdown::builder()
        .drain_timeout(DRAIN_TIMEOUT)
        .build()
        .unwrap();
    let shutdown = driver.handle();
    let clock = ManualClock::new();
    let run = driver.run(clock.clone());
    (shutdown, run, clock)
}

/// Requests the shutdown and lets the driver reach `Draining`.
fn drain(shutdown: &Shutdown, run: &mut Run) -> Option<Report> {
    let _ = shutdown.request(Signal::TERM);
    let report = turn(run);
    assert!(shutdown.phase() >= Phase::Draining);
    report
}

#[test]
fn a_request_is_in_progress_until_its_response_is_flushed() {
    let (shutdown, _run, _) = shutdown();
    let (io, client) = connection();
    let mut conn = serve_connection(io, gated(&open_gate()), &shutdown, spawner(), timer());
    client.hold_flush(true);
    client.send(GET);
    assert!(turn(&mut conn).is_none());
    let written = client.received();
    assert!(written.starts_with("HTTP/1.1 200 OK\r\n"), "{written}");
    assert!(written.ends_with("hello"), "{written}");
    // Written, not flushed: still in progress.
    assert_eq!(shutdown.in_flight(), 1);
    assert!(conn.is_busy());
    client.hold_flush(false);
    assert!(turn(&mut conn).is_none());
    assert_eq!(shutdown.in_flight(), 0);
    assert!(!conn.is_busy());
    // Served normally: the connection is kept alive.
    assert!(!written.contains("connection: close"), "{written}");
    assert!(!client.server_closed());
}

#[test]
fn a_request_after_draining_began_is_refused_and_its_connection_closed() {
    let (shutdown, mut run, _) = shutdown();
    let (io, client) = connection();
    let mut conn = serve_connection(io, gated(&open_gate()), &shutdown, spawner(), timer());
    client.send(GET);
    assert!(turn(&mut conn).is_none());
    assert!(client.received().starts_with("HTTP/1.1 200 OK\r\n"));

    // Idle and kept open through the whole drain.
    let report = drain(&shutdown, &mut run).expect("nothing in flight: the drain ends at once");
    assert_eq!(report.drain(), DrainOutcome::Drained);
    assert!(turn(&mut conn).is_none());
    assert!(!client.server_closed());

    client.send(GET);
    let ended = turn(&mut conn).expect("hyper closes after `Connection: close`");
    assert!(ended.is_ok());
    let answer = client.received();
    assert!(
        answer.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
        "{answer}"
    );
    assert!(answer.contains("\r\nconnection: close\r\n"), "{answer}");
    assert!(answer.contains("\r\nretry-after: 1\r\n"), "{answer}");
    assert!(answer.contains("\r\ncontent-length: 0\r\n"), "{answer}");
    assert!(client.server_closed());
    assert_eq!(shutdown.in_flight(), 0);
}

#[test]
fn a_response_whose_head_is_produced_while_draining_closes_its_connection() {
    let (shutdown, mut run, _) = shutdown();
    let (io, client) = connection();
    let gate = Gate::default();
    let mut conn = serve_connection(io, gated(&gate), &shutdown, spawner(), timer());
    client.send(GET);
    assert!(turn(&mut conn).is_none());
    assert_eq!(shutdown.in_flight(), 1);

    assert!(
        drain(&shutdown, &mut run).is_none(),
        "waits for the request"
    );
    gate.open();
    let ended = turn(&mut conn).expect("closed after the response");
    assert!(ended.is_ok());
    let answer = client.received();
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.contains("\r\nconnection: close\r\n"), "{answer}");
    assert!(answer.ends_with("hello"), "{answer}");
    let report = turn(&mut run).expect("drained");
    assert_eq!(report.drain(), DrainOutcome::Drained);
}

#[test]
fn a_partial_head_holds_nothing() {
    let (shutdown, mut run, _) = shutdown();
    let (io, client) = connection();
    let mut conn = serve_connection(io, gated(&open_gate()), &shutdown, spawner(), timer());
    client.send("GET / HTTP/1.1\r\nhost: te");
    assert!(turn(&mut conn).is_none());
    assert_eq!(shutdown.in_flight(), 0);
    let report = drain(&shutdown, &mut run).expect("nothing in flight");
    assert_eq!(report.drain(), DrainOutcome::Drained);
    // Still open: it closes with the process.
    assert!(turn(&mut conn).is_none());
    assert!(!client.server_closed());
}

#[test]
fn at_the_deadline_busy_connections_close_and_idle_ones_stay() {
    let (shutdown, mut run, clock) = shutdown();
    let (busy_io, busy_client) = connection();
    let (idle_io, idle_client) = connection();
    let mut busy = serve_connection(
        busy_io,
        gated(&Gate::default()),
        &shutdown,
        spawner(),
        timer(),
    );
    let mut idle = serve_connection(idle_io, gated(&open_gate()), &shutdown, spawner(), timer());
    busy_client.send(GET);
    idle_client.send(GET);
    assert!(turn(&mut busy).is_none());
    assert!(turn(&mut idle).is_none());
    assert!(idle_client.received().starts_with("HTTP/1.1 200 OK\r\n"));
    assert_eq!(shutdown.in_flight(), 1);

    assert!(drain(&shutdown, &mut run).is_none());
    assert!(turn(&mut busy).is_none(), "not closed before the deadline");
    clock.advance(DRAIN_TIMEOUT);
    let report = turn(&mut run).expect("abandoned at the deadline");
    assert_eq!(report.drain(), DrainOutcome::Abandoned(1));

    let ended = turn(&mut busy).expect("the busy connection is closed");
    assert!(ended.is_ok());
    drop(busy);
    assert!(busy_client.server_closed());
    assert_eq!(busy_client.received(), "", "no response was started");
    assert_eq!(shutdown.in_flight(), 0);

    assert!(turn(&mut idle).is_none(), "the idle connection stays open");
    assert!(!idle_client.server_closed());
    idle_client.send(GET);
    assert!(turn(&mut idle).is_some());
    assert!(
        idle_client
            .received()
            .starts_with("HTTP/1.1 503 Service Unavailable\r\n")
    );
}

#[test]
fn a_streamed_response_is_in_progress_until_its_last_chunk() {
    let (shutdown, mut run, _) = shutdown();
    let (io, client) = connection();
    let feed = Feed::default();
    let body = feed.clone();
    let service = service_fn(move |_: Request<Incoming>| {
        let body = body.clone();
        async move { Ok::<_, Infallible>(Response::new(body)) }
    });
    let mut conn = serve_connection(io, service, &shutdown, spawner(), timer());
    client.send(GET);
    feed.push("first\n");
    assert!(turn(&mut conn).is_none());
    let head = client.received();
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
    assert!(head.contains("first\n"), "{head}");

    assert!(drain(&shutdown, &mut run).is_none());
    feed.push("second\n");
    assert!(turn(&mut conn).is_none());
    assert!(client.received().contains("second\n"));
    assert!(turn(&mut run).is_none(), "the body is still open");
    assert_eq!(shutdown.in_flight(), 1);

    feed.end();
    // Its head went out before draining began, without `Connection: close`:
    // the connection is idle now, and stays open.
    assert!(turn(&mut conn).is_none());
    assert!(!client.server_closed());
    assert!(client.received().ends_with("0\r\n\r\n"));
    let report = turn(&mut run).expect("drained");
    assert_eq!(report.drain(), DrainOutcome::Drained);
}

#[test]
fn the_body_lets_go_at_its_last_frame_or_when_dropped() {
    let shutdown = Shutdown::builder().build().unwrap().handle();
    let hello = GracefulService::new(
        service_fn(|_: Request<Empty<Bytes>>| async {
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"hello"))))
        }),
        shutdown.clone(),
    );

    // Last frame: `Full` reports its end with the frame, and is never polled
    // again by hyper.
    let mut response = turn(&mut Box::pin(hello.call(Request::new(Empty::new()))))
        .unwrap()
        .unwrap();
    assert_eq!(shutdown.in_flight(), 1);
    let body: &mut GracefulBody<_> = response.body_mut();
    assert!(body.is_in_flight());
    let mut cx = Context::from_waker(std::task::Waker::noop());
    let frame = Pin::new(&mut *body).poll_frame(&mut cx);
    assert!(matches!(frame, Poll::Ready(Some(Ok(_)))));
    assert!(body.is_end_stream());
    assert_eq!(shutdown.in_flight(), 0);

    // Dropped unfinished.
    let response = turn(&mut Box::pin(hello.call(Request::new(Empty::new()))))
        .unwrap()
        .unwrap();
    assert_eq!(shutdown.in_flight(), 1);
    drop(response);
    assert_eq!(shutdown.in_flight(), 0);

    // The future dropped before the inner service answered.
    let pending = GracefulService::new(
        service_fn(|_: Request<Empty<Bytes>>| {
            std::future::pending::<Result<Response<Full<Bytes>>, Infallible>>()
        }),
        shutdown.clone(),
    );
    let mut future = pending.call(Request::new(Empty::new()));
    assert!(turn(&mut future).is_none());
    assert_eq!(shutdown.in_flight(), 1);
    drop(future);
    assert_eq!(shutdown.in_flight(), 0);
}

#[cfg(feature = "tower")]
#[test]
fn the_layer_counts_and_refuses() {
    use tower_layer::Layer;
    use tower_service::Service as TowerService;

    let (shutdown, mut run, _) = shutdown();
    let hello = tower::service_fn(|_: Request<Empty<Bytes>>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"hello"))))
    });
    let mut service = crate::GracefulLayer::new(shutdown.clone()).layer(hello);
    let mut cx = Context::from_waker(std::task::Waker::noop());
    assert!(TowerService::poll_ready(&mut service, &mut cx).is_ready());
    let response = turn(&mut Box::pin(TowerService::call(
        &mut service,
        Request::new(Empty::new()),
    )))
    .unwrap()
    .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(shutdown.in_flight(), 1);
    assert!(drain(&shutdown, &mut run).is_none());
    drop(response);
    assert!(turn(&mut run).is_some());

    let refused = turn(&mut Box::pin(TowerService::call(
        &mut service,
        Request::new(Empty::new()),
    )))
    .unwrap()
    .unwrap();
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["connection"], "close");
    assert_eq!(refused.headers()["retry-after"], "1");
}
