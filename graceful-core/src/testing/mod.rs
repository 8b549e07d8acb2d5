//! Property-test your own shutdown races (feature `testing`).
//!
//! A deterministic, single-threaded simulation in which your own async
//! handlers run under a real [`Shutdown`](crate::Shutdown) and
//! [`Driver`](crate::Driver), on virtual time, with every choice that a real
//! run leaves to chance drawn from a [`Schedule`]: when the signal comes and
//! whether a second one follows, when requests arrive and how much work each
//! brings, whether a cleanup step fails, panics or hangs, and which ready
//! task is polled next. The schedules come from a `proptest` strategy
//! ([`Schedules`], or `any::<Schedule>()`), so a failure shrinks to the
//! smallest schedule that still fails, and it prints that schedule as one
//! line that replays it exactly.
//!
//! Your code runs unchanged: it takes the same `Shutdown`, guards and
//! futures as in production. Only time (the [`SimClock`], a
//! [`Timer`](crate::Timer)) and spawning ([`Cx::spawn`]) come from the
//! simulation. There is no runtime in here, so the same test serves the
//! tokio, smol and actix adapters alike.
//!
//! # Examples
//!
//! ```
//! use graceful_core::testing::{Schedule, Sim};
//! use graceful_core::Timer;
//! use proptest::prelude::*;
//! use std::sync::{Arc, Mutex};
//! use std::time::Duration;
//!
//! proptest! {
//!     // In your own tests, `#[test]` goes here.
//!     fn every_answer_is_sent(schedule in any::<Schedule>()) {
//!         let answered = Arc::new(Mutex::new(0));
//!         let count = answered.clone();
//!         Sim::new(schedule)
//!             .drain_timeout(Duration::from_secs(5))
//!             .handler(move |cx, req| {
//!                 let count = count.clone();
//!                 async move {
//!                     cx.clock().sleep(req.work()).await;
//!                     *count.lock().unwrap() += 1;
//!                 }
//!             })
//!             .invariant("every admitted request is answered", move |outcome| {
//!                 *answered.lock().unwrap() == outcome.admitted() - outcome.report().abandoned()
//!             })
//!             .run()?;
//!     }
//! }
//! every_answer_is_sent();
//! ```
//!
//! # What it checks
//!
//! On every schedule, whatever the code under test, held against what the
//! simulation saw for itself rather than what the driver reports:
//!
//! - [`NO_GUARD_AFTER_DRAINING`]: no request is admitted, and no guard is
//!   granted, once draining began;
//! - [`NO_LOST_WORK`]: every admitted request and every task spawned with
//!   [`Cx::spawn`] finishes before the exit or is counted abandoned, and
//!   none panics;
//! - [`CLEANUP_AFTER_DRAIN`]: each step registered with [`Cx::on_cleanup`]
//!   runs once, the last registered first, only after the drain ended (and
//!   an abandoned drain waited its full timeout), and every one of them
//!   runs unless a second signal forced the exit;
//! - [`EXIT_POLICY`]: the exit code is `128 + N` after a second signal `N`,
//!   else 0 when everything drained and every step succeeded, else 1;
//! - [`FINISHES`]: the shutdown finishes, with no task waking itself
//!   forever.
//!
//! Add your own over your state at the exit with [`Sim::invariant`]: "every
//! order that was committed got its answer", "no write after the database
//! step closed it".
//!
//! # Replaying a failure
//!
//! A [`Failure`] prints the invariants broken, the schedule, and the trace
//! of what happened in virtual time. The schedule's one-line form replays it
//! exactly, outside proptest:
//!
//! ```
//! # use graceful_core::testing::{Schedule, Sim};
//! let schedule: Schedule = "term@120ms req@0ms+300ms steps=hang picks=1".parse()?;
//! let again = Sim::new(schedule.clone()).run();
//! # assert!(again.is_ok());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The going-away signal
//!
//! A handler that must end early once the shutdown begins (a stream, a long
//! poll) waits for it with the same future it uses in production, today
//! [`Shutdown::reached`](crate::Shutdown::reached)`(Phase::Draining)`; the
//! simulation needs nothing more, and checks the result through the drain:
//! an ignored signal shows as an abandoned drain.
//!
//! # The pieces
//!
//! [`Sim`] is built from parts that also serve on their own, as the crate's
//! own model test uses them: the [`Executor`] (polls a task only once woken,
//! chooses among the ready ones with [`Picks`]) and the [`SimClock`] (knows
//! its next deadline, so the simulation jumps to it).

mod clock;
mod executor;
mod invariants;
mod outcome;
mod schedule;
mod sim;
mod strategy;
mod trace;

pub use clock::SimClock;
pub use executor::{Executor, Livelock, Picks, Spawner, TaskId, TaskState};
pub use invariants::{CLEANUP_AFTER_DRAIN, EXIT_POLICY, NO_GUARD_AFTER_DRAINING, NO_LOST_WORK};
pub use outcome::{Failure, Outcome, Violation};
pub use schedule::{Arrival, Fate, ParseScheduleError, Schedule, SignalAt};
pub use sim::{Admission, Cx, FINISHES, Req, Sim};
pub use strategy::Schedules;
pub use trace::{Entry, Trace};
