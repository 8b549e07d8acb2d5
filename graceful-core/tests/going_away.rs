//! The going-away moment and background jobs, on the manual clock: the
//! moment comes at `closed` (after the unready delay and the listeners'
//! close), not before; a stream ends there after its last item; a job is in
//! flight until it ends, refused once draining, abandoned at the deadline,
//! and a panic in it is caught without holding the drain.

mod common;

use common::{Harness, poll_once};
use futures_lite::{StreamExt, future, stream};
use graceful_core::{DrainOutcome, Phase, Signal};
use std::future::pending;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

const MS: Duration = Duration::from_millis(1);

#[test]
fn going_away_comes_at_closed_not_at_the_signal() {
    let mut h = Harness::new(|b| b.unready_delay(100 * MS));
    let listener = h.shutdown.track_listener().unwrap();
    let mut going_away = h.shutdown.going_away();
    assert!(poll_once(&mut going_away).is_pending(), "running");
    let _ = h.request(Signal::TERM);
    assert!(
        poll_once(&mut going_away).is_pending(),
        "the unready delay: the load balancer still routes here"
    );
    h.advance(100 * MS);
    assert_eq!(h.shutdown.phase(), Phase::Draining);
    assert!(
        poll_once(&mut going_away).is_pending(),
        "draining, but the listener is still open"
    );
    drop(listener);
    h.settle();
    assert!(poll_once(&mut going_away).is_ready(), "closed");
    assert_eq!(
        h.events()[..3],
        ["draining SIGTERM", "unready-over", "closed"]
    );
}

#[test]
fn going_away_wakes_its_waiter_when_the_last_listener_closes() {
    let mut h = Harness::new(|b| b);
    let listener = h.shutdown.track_listener().unwrap();
    let mut going_away = h.shutdown.going_away();
    let woken = std::sync::Arc::new(common::Flag::default());
    let waker = Waker::from(woken.clone());
    let mut cx = Context::from_waker(&waker);
    assert!(Pin::new(&mut going_away).poll(&mut cx).is_pending());
    let _ = h.request(Signal::TERM);
    drop(listener);
    h.settle();
    assert!(
        woken.0.load(std::sync::atomic::Ordering::SeqCst),
        "woken by the close"
    );
    assert_eq!(Pin::new(&mut going_away).poll(&mut cx), Poll::Ready(()));
}

#[test]
fn going_away_comes_when_a_listener_that_never_closes_is_given_up_on() {
    let mut h = Harness::new(|b| b.drain_timeout(Duration::from_secs(2)));
    let _listener = h.shutdown.track_listener().unwrap();
    let mut going_away = h.shutdown.going_away();
    let _ = h.request(Signal::TERM);
    h.advance(Duration::from_secs(1));
    assert!(poll_once(&mut going_away).is_pending());
    h.advance(Duration::from_secs(1));
    assert!(poll_once(&mut going_away).is_ready(), "abandoned");
}

#[test]
fn a_stream_flows_until_the_moment_then_yields_its_last_item_and_ends() {
    let mut h = Harness::new(|b| b.unready_delay(100 * MS));
    let listener = h.shutdown.track_listener().unwrap();
    let guard = h.shutdown.enter_owned().unwrap();
    let mut ticks = h.shutdown.until_going_away(stream::iter(0..)).last(-1);
    assert_eq!(future::block_on(ticks.next()), Some(0));
    let _ = h.request(Signal::TERM);
    assert_eq!(
        future::block_on(ticks.next()),
        Some(1),
        "still flowing in the unready delay"
    );
    h.advance(100 * MS);
    drop(listener);
    h.settle();
    assert_eq!(future::block_on(ticks.next()), Some(-1), "the last item");
    assert_eq!(future::block_on(ticks.next()), None);
    assert_eq!(future::block_on(ticks.next()), None, "and stays ended");
    assert!(
        h.report.is_none(),
        "the stream's request is still in flight"
    );
    drop(guard);
    h.settle();
    assert_eq!(h.report().drain(), DrainOutcome::Drained);
    assert_eq!(h.report().exit_code(), 0);
}

#[test]
fn a_stream_that_ends_first_ends_without_the_last_item() {
    let h = Harness::new(|b| b);
    let items: Vec<i32> = future::block_on(
        h.shutdown
            .until_going_away(stream::iter(0..2))
            .last(-1)
            .collect(),
    );
    assert_eq!(items, [0, 1]);
}

#[test]
fn a_job_is_in_flight_until_it_ends_and_the_drain_waits_for_it() {
    let mut h = Harness::new(|b| b);
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let mut job = h
        .shutdown
        .track_job(async move {
            future::poll_fn(|_| match finished.try_recv() {
                Ok(()) => Poll::Ready(7),
                Err(_) => Poll::Pending,
            })
            .await
        })
        .unwrap();
    assert_eq!(
        h.shutdown.in_flight(),
        1,
        "counted from the moment it is made"
    );
    let _ = h.request(Signal::TERM);
    assert!(poll_once(&mut job).is_pending());
    h.advance(Duration::from_secs(5));
    assert!(h.report.is_none(), "the drain waits for the job");
    done.send(()).unwrap();
    assert_eq!(poll_once(&mut job), Poll::Ready(Ok(7)));
    assert_eq!(
        h.shutdown.in_flight(),
        0,
        "the guard leaves as the job ends"
    );
    h.settle();
    assert_eq!(h.report().drain(), DrainOutcome::Drained);
}

#[test]
fn a_job_is_refused_once_draining() {
    let mut h = Harness::new(|b| b);
    let guard = h.shutdown.enter_owned().unwrap();
    let _ = h.request(Signal::TERM);
    assert_eq!(h.shutdown.phase(), Phase::Draining);
    assert!(h.shutdown.track_job(async {}).is_err());
    assert_eq!(h.shutdown.in_flight(), 1);
    drop(guard);
}

#[test]
fn a_job_that_never_ends_is_abandoned_and_counted() {
    let mut h = Harness::new(|b| b.drain_timeout(Duration::from_secs(3)));
    let mut job = h.shutdown.track_job(pending::<()>()).unwrap();
    assert!(poll_once(&mut job).is_pending());
    let _ = h.request(Signal::TERM);
    h.advance(Duration::from_secs(3));
    assert_eq!(h.report().drain(), DrainOutcome::Abandoned(1));
    assert_eq!(h.events()[3], "abandoned 1");
    drop(job);
    assert_eq!(
        h.shutdown.in_flight(),
        0,
        "a dropped job gives its guard back"
    );
}

#[test]
fn a_panic_in_a_job_is_caught_counted_and_does_not_hold_the_drain() {
    let mut h = Harness::new(|b| b);
    let mut job = h
        .shutdown
        .track_job(async {
            future::yield_now().await;
            panic!("the job broke");
        })
        .unwrap();
    let _ = h.request(Signal::TERM);
    assert!(poll_once(&mut job).is_pending());
    let Poll::Ready(Err(panicked)) = poll_once(&mut job) else {
        panic!("the panic comes out as an error");
    };
    assert_eq!(panicked.message(), "the job broke");
    assert_eq!(
        panicked.to_string(),
        "background job panicked: the job broke"
    );
    assert_eq!(h.shutdown.job_panics(), 1);
    assert_eq!(h.shutdown.in_flight(), 0);
    h.settle();
    assert_eq!(h.report().drain(), DrainOutcome::Drained);
    assert_eq!(h.report().exit_code(), 0);
}
