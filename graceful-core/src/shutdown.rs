//! The shutdown handle, what [`Shutdown::request`] did, and the listener
//! token it hands out.

use crate::cause::Cause;
use crate::cleanup::Step;
use crate::error::{BoxError, Refused, RegisterError};
use crate::going_away::{GoingAway, UntilGoingAway};
use crate::guard::{Guard, OwnedGuard};
use crate::inner::Inner;
use crate::job::Job;
use crate::state::{Flags, Phase};
use crate::sync::{Arc, Ordering, lock};
use crate::wait::{Abandoned, Drained, Reached};
use futures_core::Stream;
use std::borrow::Cow;
use std::fmt;
use std::future::Future;

/// A handle on a shutdown: request it, track work in flight, register
/// cleanup, wait for its phases.
///
/// Cloning is cheap (one `Arc`); every clone sees the same shutdown. The
/// [`Driver`](crate::Driver) that runs the shutdown is separate and not `Clone`, because
/// exactly one place may run it.
///
/// # Examples
///
/// ```
/// use graceful_core::{ManualClock, Phase, Request, Shutdown, Signal};
/// use futures_lite::future::block_on;
///
/// let driver = Shutdown::builder().build().unwrap();
/// let shutdown = driver.handle();
/// shutdown.on_cleanup_sync("flush-logs", || Ok::<_, std::io::Error>(())).unwrap();
///
/// let guard = shutdown.enter().expect("accepting work");
/// assert_eq!(shutdown.request(Signal::TERM), Request::Started);
/// assert!(!shutdown.is_ready());
/// drop(guard); // the request in flight finishes
///
/// let report = block_on(driver.run(ManualClock::new()));
/// assert_eq!(report.exit_code(), 0);
/// assert_eq!(shutdown.phase(), Phase::Finished);
/// ```
#[derive(Clone)]
pub struct Shutdown {
    pub(crate) inner: Arc<Inner>,
}

impl Shutdown {
    /// Asks for the shutdown to begin, or forces it if it already has.
    ///
    /// The first request moves the phase to [`Phase::Unready`] at once
    /// (readiness reports false) and lets the [`Driver`](crate::Driver) go
    /// on. A request while the shutdown is under way forces it: the outcome
    /// is decided there and then (exit code `128 + N` for signal `N`), work
    /// in flight is abandoned and whatever drain or cleanup is left is
    /// skipped. The forcing request writes the [`Report`](crate::Report)
    /// itself, and logs it (unless [quiet](crate::Builder::quiet)), so that
    /// the program may exit at once; the [`Run`](crate::Run), if it is
    /// polled again, resolves to that same report.
    pub fn request(&self, cause: impl Into<Cause>) -> Request {
        let cause = cause.into();
        // The driver's clock, for the forced report's durations, read with
        // no lock held: the timer is the adapter's code.
        let timer = lock(&self.inner.shared)
            .progress
            .as_ref()
            .map(|progress| progress.timer.clone());
        let now = timer.map(|timer| timer.now());
        let (outcome, forced) = {
            let mut shared = lock(&self.inner.shared);
            if self
                .inner
                .state
                .advance(Phase::Unready, Flags::NONE)
                .is_some()
            {
                shared.cause = Some(cause);
                shared.listened_at_request = shared.listened;
                (Request::Started, None)
            } else if self
                .inner
                .state
                .advance(Phase::Finished, Flags::FORCED)
                .is_some()
            {
                let in_flight = self.inner.state.load().in_flight();
                (Request::Forced, Some(shared.force(cause, now, in_flight)))
            } else {
                (Request::AlreadyFinished, None)
            }
        };
        if outcome != Request::AlreadyFinished {
            self.inner.waiters.notify_all();
        }
        if let Some(report) = forced {
            self.inner.log.forced(&report);
        }
        outcome
    }

    /// Starts the drain of an upgrade: the new process `pid` now serves on
    /// this process's listeners. Returns `false`, and does nothing, when
    /// the shutdown has already begun (a signal came first: the caller
    /// should end the new process then).
    ///
    /// Unlike [`Shutdown::request`], it never forces a shutdown. The cause
    /// is [`Cause::Upgrade`]: the driver skips the unready delay (the
    /// socket stays open, in the new process, so no load balancer has to
    /// look elsewhere), and the accept loop releases each listener without
    /// reading its queue or stopping its handshakes, which the new process
    /// accepts from the same queue. The rest is the normal drain.
    pub fn hand_over(&self, pid: u32) -> bool {
        let started = {
            let mut shared = lock(&self.inner.shared);
            let started = self
                .inner
                .state
                .advance(Phase::Unready, Flags::NONE)
                .is_some();
            if started {
                shared.cause = Some(Cause::Upgrade { pid });
                shared.listened_at_request = shared.listened;
            }
            started
        };
        if started {
            self.inner.waiters.notify_all();
        }
        started
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.inner.state.load().phase()
    }

    /// True while no shutdown was requested: what a readiness probe reports.
    pub fn is_ready(&self) -> bool {
        self.phase() == Phase::Running
    }

    /// True once a second request forced the shutdown.
    pub fn is_forced(&self) -> bool {
        self.inner.state.load().forced()
    }

    /// What asked for the shutdown, once it was asked for.
    pub fn cause(&self) -> Option<Cause> {
        lock(&self.inner.shared).cause.clone()
    }

    /// How many requests are in flight (guards alive).
    pub fn in_flight(&self) -> usize {
        self.inner.state.load().in_flight()
    }

    /// Counts one request in flight until the guard drops.
    ///
    /// Refused once the phase has reached [`Phase::Draining`]: adapters
    /// answer that with `503`. The guard leaves on drop, also when the
    /// request panics and unwinds. No allocation; one compare-and-swap to
    /// enter and one atomic decrement to leave.
    #[inline]
    pub fn enter(&self) -> Result<Guard<'_>, Refused> {
        Guard::enter(&self.inner).map_err(|phase| Refused { phase })
    }

    /// Like [`enter`](Shutdown::enter), with a guard that owns a handle, for
    /// work that moves to another task. Costs one `Arc` clone more.
    #[inline]
    pub fn enter_owned(&self) -> Result<OwnedGuard, Refused> {
        OwnedGuard::enter(&self.inner).map_err(|phase| Refused { phase })
    }

    /// Registers an open listener. Dropping the token tells the shutdown
    /// that the listener is closed; the driver reports [`Event::Closed`](crate::Event::Closed) once
    /// every token is gone, and counts the drain deadline from there.
    ///
    /// Refused once the phase has reached [`Phase::Draining`]: a server
    /// started that late must not serve.
    pub fn track_listener(&self) -> Result<ListenerToken, Refused> {
        let mut shared = lock(&self.inner.shared);
        let phase = self.phase();
        if phase >= Phase::Draining {
            return Err(Refused { phase });
        }
        shared.listened = true;
        // Relaxed: the lock orders this with the move to `Draining`.
        self.inner.listeners.fetch_add(1, Ordering::Relaxed);
        Ok(ListenerToken {
            shutdown: self.clone(),
        })
    }

    /// Registers a cleanup step. Steps run one at a time during
    /// [`Phase::CleaningUp`], the last registered first, each under the
    /// cleanup timeout. An error, a panic or a timeout is recorded under the
    /// step's name and the steps after it still run.
    ///
    /// # Errors
    ///
    /// When cleanup has already started, when the name is taken, or when it
    /// is not one word.
    pub fn on_cleanup<F, Fut, E>(
        &self,
        name: impl Into<Cow<'static, str>>,
        step: F,
    ) -> Result<(), RegisterError>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<BoxError>,
    {
        self.register(Step::new_async(name.into(), step))
    }

    /// Registers a synchronous cleanup step: a convenience for quick work
    /// such as flushing a buffer. It runs on the task that drives the
    /// shutdown, so it cannot be timed out while it blocks: keep it short,
    /// or use [`on_cleanup`](Shutdown::on_cleanup).
    ///
    /// # Errors
    ///
    /// As for [`on_cleanup`](Shutdown::on_cleanup).
    pub fn on_cleanup_sync<F, E>(
        &self,
        name: impl Into<Cow<'static, str>>,
        step: F,
    ) -> Result<(), RegisterError>
    where
        F: FnOnce() -> Result<(), E> + Send + 'static,
        E: Into<BoxError>,
    {
        self.register(Step::new_sync(name.into(), step))
    }

    fn register(&self, step: Step) -> Result<(), RegisterError> {
        let name = &step.name;
        if name.is_empty() || name.chars().any(char::is_whitespace) {
            return Err(RegisterError::BadName { name: name.clone() });
        }
        let mut shared = lock(&self.inner.shared);
        if self.phase() >= Phase::CleaningUp {
            return Err(RegisterError::CleanupStarted { name: name.clone() });
        }
        if shared.steps.iter().any(|other| other.name == *name) {
            return Err(RegisterError::Duplicate { name: name.clone() });
        }
        shared.steps.push(step);
        Ok(())
    }

    /// Resolves once the phase has reached `phase` (at once if it has).
    pub fn reached(&self, phase: Phase) -> Reached {
        Reached::new(self.inner.clone(), phase)
    }

    /// Resolves the moment nothing is in flight after draining began: woken
    /// by the last guard's drop, never by polling.
    pub fn drained(&self) -> Drained {
        Drained::new(self.inner.clone())
    }

    /// Resolves when the shutdown gives up on the work still in flight: the
    /// drain deadline passed, or a second request forced the shutdown.
    /// Servers close the connections still busy at that point.
    pub fn abandoned(&self) -> Abandoned {
        Abandoned::new(self.inner.clone())
    }

    /// Resolves at the going-away moment: when a handler that never ends by
    /// itself (server-sent events, a WebSocket) should wrap up. That is at
    /// `closed`: the unready delay is over and every listener is closed
    /// (see [`GoingAway`] for why then), or
    /// earlier if the shutdown gives up on its work.
    pub fn going_away(&self) -> GoingAway {
        GoingAway::new(self.inner.clone())
    }

    /// Ends `stream` at the going-away moment, after the item set with
    /// [`UntilGoingAway::last`], if any: an SSE stream's last `retry:`
    /// event, a WebSocket's Close frame.
    ///
    /// # Examples
    ///
    /// ```
    /// use futures_lite::{StreamExt, future, stream};
    /// use graceful_core::{ManualClock, Shutdown, Signal};
    ///
    /// let driver = Shutdown::builder().quiet().build().unwrap();
    /// let shutdown = driver.handle();
    /// let mut ticks = shutdown.until_going_away(stream::iter(0..)).last(-1);
    /// assert_eq!(future::block_on(ticks.next()), Some(0));
    /// let _ = shutdown.request(Signal::TERM);
    /// // No listener and nothing in flight: the driver runs to the end, and
    /// // the moment has come.
    /// let report = future::block_on(driver.run(ManualClock::new()));
    /// assert_eq!(report.exit_code(), 0);
    /// let rest: Vec<i32> = future::block_on(ticks.collect());
    /// assert_eq!(rest, [-1]);
    /// ```
    pub fn until_going_away<S: Stream>(&self, stream: S) -> UntilGoingAway<S> {
        UntilGoingAway::new(self.inner.clone(), stream)
    }

    /// Tracks a background job: counts it in flight from now until it ends,
    /// so that the drain waits for it and the drain deadline abandons it
    /// (counted in `abandoned N`). Take it before answering `202 Accepted`,
    /// then spawn the [`Job`] on the runtime (the adapters' `spawn_job` do
    /// both in one call). A panic in the job is caught, logged and counted
    /// ([`job_panics`](Shutdown::job_panics)); its guard leaves at once.
    ///
    /// # Errors
    ///
    /// Refused once the phase has reached [`Phase::Draining`], like
    /// [`enter`](Shutdown::enter): answer the request with `503`.
    pub fn track_job<F: Future>(&self, job: F) -> Result<Job<F>, Refused> {
        let guard = self.enter_owned()?;
        Ok(Job::new(self.inner.clone(), guard, job))
    }

    /// How many background jobs of [`track_job`](Shutdown::track_job) have
    /// panicked so far.
    pub fn job_panics(&self) -> usize {
        // Relaxed: a statistic, read on its own.
        self.inner.job_panics.load(Ordering::Relaxed)
    }
}

// Unwind safety: a panic never leaves the shutdown inconsistent. The state
// is one atomic word, every lock is taken for a few lines of this crate's own
// code (and poisoning is ignored, see `sync::lock`), and user code (steps,
// the observer) runs with no lock held. So a handle or a guard may cross a
// `catch_unwind`, which is exactly where a request's guard must still leave.
impl std::panic::UnwindSafe for Shutdown {}
impl std::panic::RefUnwindSafe for Shutdown {}

impl fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let snapshot = self.inner.state.load();
        f.debug_struct("Shutdown")
            .field("phase", &snapshot.phase())
            .field("in_flight", &snapshot.in_flight())
            .field("forced", &snapshot.forced())
            .finish_non_exhaustive()
    }
}

/// What [`Shutdown::request`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use = "a forced shutdown is for the caller to act on"]
pub enum Request {
    /// The shutdown began.
    Started,
    /// The shutdown was already under way; this request forced it.
    Forced,
    /// The shutdown had already finished (or was forced before); nothing
    /// changed.
    AlreadyFinished,
}

/// An open listener, until dropped. See [`Shutdown::track_listener`].
///
/// Not `Clone`, for the same reason as [`OwnedGuard`](crate::OwnedGuard):
/// a clone would keep a closed listener counted as open.
///
/// It lives beside [`Shutdown`] rather than with the guards because it holds
/// a handle and gives it back ([`ListenerToken::shutdown`]): the guards know
/// only the shared state, and the modules form no cycle.
#[must_use = "the listener is counted as open only while the token is alive"]
pub struct ListenerToken {
    shutdown: Shutdown,
}

impl ListenerToken {
    /// Resolves when the listener should stop accepting: the unready delay
    /// is over and the phase has reached [`Phase::Draining`].
    pub fn closing(&self) -> Reached {
        self.shutdown.reached(Phase::Draining)
    }

    /// The shutdown this listener belongs to.
    pub fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }
}

impl Drop for ListenerToken {
    fn drop(&mut self) {
        // Release: pairs with the driver's Acquire load that sees zero, so
        // the listener's close happens-before `Event::Closed`.
        if self
            .shutdown
            .inner
            .listeners
            .fetch_sub(1, Ordering::Release)
            == 1
        {
            self.shutdown.inner.waiters.notify_all();
        }
    }
}

impl fmt::Debug for ListenerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ListenerToken").finish_non_exhaustive()
    }
}
