//! A driver polled by hand on a manual clock, shared by the driver tests
//! and the model test. The run future is polled again only after its waker
//! was called, so a lost wake-up shows up as a shutdown that never ends.

#![allow(dead_code, unreachable_pub)]

use graceful_core::{Builder, Driver, Event, ManualClock, Report, Request, Run, Shutdown, Signal};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

#[derive(Default)]
pub struct Flag(pub AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A driver under test: its run future, the clock, and the events it sent.
/// Quiet: what it logs is tested in the crate's `log` module, and the log
/// would go to the terminal past the test harness's capture.
pub struct Harness {
    pub shutdown: Shutdown,
    pub clock: ManualClock,
    run: Option<Run>,
    woken: Arc<Flag>,
    events: Arc<Mutex<Vec<String>>>,
    pub report: Option<Report>,
}

pub fn describe(event: &Event<'_>) -> String {
    match event {
        Event::Requested { cause } => format!("draining {cause}"),
        Event::Draining => "unready-over".into(),
        Event::Closed => "closed".into(),
        Event::Drained => "drained".into(),
        Event::Abandoned { in_flight } => format!("abandoned {in_flight}"),
        Event::StepFinished { step } => {
            format!("cleanup {} {}", step.name(), step.outcome().as_str())
        }
        Event::Forced { exit_code, .. } => format!("forced {exit_code}"),
        Event::Finished { exit_code } => format!("exit {exit_code}"),
        _ => "unknown".into(),
    }
}

impl Harness {
    pub fn new(build: impl FnOnce(Builder) -> Builder) -> Harness {
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
        let driver: Driver = build(Shutdown::builder().quiet())
            .on_event(move |event| sink.lock().unwrap().push(describe(event)))
            .build()
            .unwrap();
        let shutdown = driver.handle();
        let clock = ManualClock::new();
        let run = Some(driver.run(clock.clone()));
        let mut harness = Harness {
            shutdown,
            clock,
            run,
            woken: Arc::new(Flag::default()),
            events,
            report: None,
        };
        harness.woken.0.store(true, Ordering::SeqCst);
        harness.settle();
        harness
    }

    /// Polls the run future if, and only if, it was woken.
    pub fn settle(&mut self) {
        if !self.woken.0.swap(false, Ordering::SeqCst) {
            return;
        }
        let Some(run) = self.run.as_mut() else { return };
        let waker = Waker::from(self.woken.clone());
        if let Poll::Ready(report) = Pin::new(run).poll(&mut Context::from_waker(&waker)) {
            self.run = None;
            self.report = Some(report);
        }
    }

    pub fn advance(&mut self, by: Duration) {
        self.clock.advance(by);
        self.settle();
    }

    pub fn request(&mut self, signal: Signal) -> Request {
        let outcome = self.shutdown.request(signal);
        self.settle();
        outcome
    }

    pub fn events(&self) -> Vec<String> {
        self.events.lock().unwrap().clone()
    }

    pub fn report(&self) -> &Report {
        self.report.as_ref().expect("the shutdown has finished")
    }
}

pub fn poll_once<F: Future + Unpin>(future: &mut F) -> Poll<F::Output> {
    let waker = Waker::noop();
    Pin::new(future).poll(&mut Context::from_waker(waker))
}
