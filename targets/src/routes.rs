//! The contract's routes, decided without a runtime.
//!
//! [`Routes::route`] reads a request's method, path and query and says what
//! it asks: an [`Answer`] at once (the health checks, a bad request, a
//! `404`), or a [`Route`] for the target to carry out on its runtime
//! (sleeping, streaming, committing an order, sending events, echoing a
//! WebSocket, queueing a job). A target with a router of its own (actix's `App`) uses the pieces
//! instead: [`param`], [`order_id`], [`job_id`], [`ChunkLines`],
//! [`events_every`] and the answers.
//!
//! The readiness route answers from [`Shutdown::is_ready`]: `503` from the
//! first signal on, while every other route is still served as before.

use crate::jobs::Jobs;
use crate::store::{Insert, Store};
use graceful_core::Shutdown;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

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

    /// `POST /jobs`, once the job is spawned: `202 queued ID`.
    pub fn queued(id: &str) -> Answer {
        Answer::new(202, format!("queued {id}"))
    }

    /// `POST /jobs` for an id already queued or stored (`409`), or when the
    /// store failed (`500`).
    pub fn not_queued(why: Insert, id: &str) -> Answer {
        match why {
            Insert::Duplicate => Answer::new(409, format!("duplicate {id}")),
            Insert::Failed => Answer::new(500, "store failed"),
        }
    }

    /// New work refused because the shutdown is draining: `503` (a job
    /// whose request began before `closed`).
    pub fn refused() -> Answer {
        Answer::new(503, "shutting down")
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

/// The routes of the contract: what a request asks, as a [`Route`] for the
/// target to carry out. A cheap handle, cloned into the target's service.
#[derive(Clone, Debug)]
pub struct Routes {
    shutdown: Shutdown,
    store: Option<Store>,
    jobs: Option<Jobs>,
    events_every: Duration,
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
    /// `GET /events?ms=N`: the [`events`](crate::ticks::events) every N ms.
    Events {
        /// N, or `--events-ms`.
        every: Duration,
    },
    /// `GET /ws`: a WebSocket echoing every text message, going away at
    /// `closed` (the adapter's `websocket` helper).
    WebSocket,
    /// `POST /jobs?ms=N`: take the body's [`job_id`], [`Jobs::queue`] it,
    /// spawn the job that commits it ([`Queued::commit`](crate::Queued::commit))
    /// after N ms, and answer [`Answer::queued`] at once.
    Job {
        /// Where the job goes.
        jobs: Jobs,
        /// N.
        ms: u64,
    },
}

impl Routes {
    /// Routes that answer readiness from `shutdown`, take orders and jobs
    /// into `store`, and send `/events` every `events_every` by default.
    pub fn new(shutdown: Shutdown, store: Option<Store>, events_every: Duration) -> Routes {
        let jobs = store.clone().map(Jobs::new);
        Routes {
            shutdown,
            store,
            jobs,
            events_every,
        }
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
            ("GET", "/events") => {
                events_every(query, self.events_every).map(|every| Route::Events { every })
            }
            ("GET", "/ws") => Ok(Route::WebSocket),
            ("POST", "/jobs") => match &self.jobs {
                None => Ok(Route::Answer(Answer::no_store())),
                Some(jobs) => param(query, "ms").map(|ms| Route::Job {
                    jobs: jobs.clone(),
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

/// The interval of `GET /events?ms=N`: N ms, or `default` when absent.
///
/// # Errors
///
/// When `ms` is not a whole number.
pub fn events_every(query: &str, default: Duration) -> Result<Duration, BadRequest> {
    Ok(param(query, "ms")?.map_or(default, Duration::from_millis))
}

/// The order id in a `POST /orders` body, trimmed.
///
/// # Errors
///
/// When the body holds no id (empty, blank, or not UTF-8).
pub fn order_id(body: &[u8]) -> Result<String, BadRequest> {
    body_id(body, "the body must be an order id")
}

/// The job id in a `POST /jobs` body, trimmed.
///
/// # Errors
///
/// When the body holds no id (empty, blank, or not UTF-8).
pub fn job_id(body: &[u8]) -> Result<String, BadRequest> {
    body_id(body, "the body must be a job id")
}

fn body_id(body: &[u8], missing: &str) -> Result<String, BadRequest> {
    let id = std::str::from_utf8(body)
        .map(|id| id.trim().to_owned())
        .unwrap_or_default();
    if id.is_empty() {
        return Err(BadRequest(missing.into()));
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
    use crate::store::Journal;
    use crate::testing::Scratch;
    use graceful_core::Signal;
    use std::task::Waker;

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
        assert_eq!(job_id(b"j-1\n"), Ok("j-1".to_owned()));
        assert!(job_id(b"").is_err());
    }

    /// A timer that fires when told to.
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
        let dir = Scratch::new("routes");
        let store = Store::open(&dir.path().join("o.sqlite"), Journal::Rollback).unwrap();
        let every = Duration::from_millis(1000);
        let without = Routes::new(shutdown.clone(), None, every);
        let with = Routes::new(shutdown.clone(), Some(store), every);

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

        assert!(matches!(
            without.route("GET", "/events", None),
            Route::Events { every: e } if e == every
        ));
        assert!(matches!(
            without.route("GET", "/events", Some("ms=20")),
            Route::Events { every } if every == Duration::from_millis(20)
        ));
        assert_eq!(
            answer(without.route("GET", "/events", Some("ms=x"))).status,
            400
        );
        assert!(matches!(
            without.route("GET", "/ws", None),
            Route::WebSocket
        ));
        assert_eq!(
            answer(without.route("POST", "/jobs", Some("ms=5"))),
            Answer::no_store()
        );
        assert!(matches!(
            with.route("POST", "/jobs", Some("ms=5")),
            Route::Job { ms: 5, .. }
        ));
        assert_eq!(
            answer(with.route("POST", "/jobs", Some("ms=x"))).status,
            400
        );
        assert_eq!(answer(with.route("GET", "/jobs", None)).status, 404);

        assert_eq!(
            answer(with.route("GET", "/health/ready", None)),
            Answer::ready(true)
        );
        let _ = shutdown.request(Signal::TERM);
        assert_eq!(answer(with.route("GET", "/health/ready", None)).status, 503);
    }

    #[test]
    fn answers_are_the_contracts() {
        assert_eq!(Answer::slept(5), Answer::new(200, "slept 5"));
        assert_eq!(Answer::ready(true), Answer::new(200, "ready"));
        assert_eq!(Answer::ready(false).status, 503);
        assert_eq!(Answer::stored(Ok(()), "a"), Answer::new(201, "stored a"));
        assert_eq!(Answer::stored(Err(Insert::Duplicate), "a").status, 409);
        assert_eq!(Answer::stored(Err(Insert::Failed), "a").status, 500);
        assert_eq!(Answer::queued("j"), Answer::new(202, "queued j"));
        assert_eq!(Answer::not_queued(Insert::Duplicate, "j").status, 409);
        assert_eq!(Answer::not_queued(Insert::Failed, "j").status, 500);
        assert_eq!(Answer::refused().status, 503);
    }
}
