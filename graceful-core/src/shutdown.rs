//! The shutdown handle, its builder, guards and the futures that wait on it.

use crate::cleanup::Step;
use crate::error::{BoxError, ConfigError, Refused, RegisterError};
use crate::report::Event;
use crate::state::{Flags, Phase, Snapshot, State};
use crate::sync::{Arc, AtomicUsize, Mutex, Ordering, lock};
use crate::waiters::{Slot, WaitList};
use crate::{Cause, Driver};
use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

pub(crate) type Observer = Box<dyn Fn(&Event<'_>) + Send + Sync>;

/// The settings a shutdown runs with.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Config {
    pub(crate) unready_delay: Duration,
    pub(crate) drain_timeout: Duration,
    pub(crate) cleanup_timeout: Duration,
}

pub(crate) struct Inner {
    pub(crate) state: State,
    pub(crate) waiters: WaitList,
    /// Listeners still open. Incremented only under `shared`'s lock while the
    /// phase is below `Draining`; the phase moves to `Draining` under the
    /// same lock, so from then on the count only goes down.
    pub(crate) listeners: AtomicUsize,
    pub(crate) shared: Mutex<Shared>,
    pub(crate) config: Config,
    pub(crate) observer: Option<Observer>,
}

#[derive(Default)]
pub(crate) struct Shared {
    pub(crate) cause: Option<Cause>,
    pub(crate) forced_by: Option<Cause>,
    /// Registered cleanup steps, in registration order.
    pub(crate) steps: Vec<Step>,
    /// Whether a listener was ever registered.
    pub(crate) listened: bool,
    /// Whether one was when the first request came: without one, nothing
    /// can be routing to this process and the unready delay is skipped.
    pub(crate) listened_at_request: bool,
}

impl Inner {
    pub(crate) fn emit(&self, event: Event<'_>) {
        #[cfg(feature = "tracing")]
        crate::trace::event(&event);
        if let Some(observer) = &self.observer {
            observer(&event);
        }
    }

    pub(crate) fn leave(&self) {
        if self.state.leave() {
            self.waiters.notify_all();
        }
    }

    /// Moves the phase forward under the shared lock (so that listener and
    /// step registrations, which check the phase under that lock, are
    /// ordered with it), then notifies.
    pub(crate) fn advance(&self, to: Phase) -> Option<Snapshot> {
        let previous = {
            let _shared = lock(&self.shared);
            self.state.advance(to, Flags::NONE)
        };
        self.waiters.notify_all();
        previous
    }
}

/// A handle on a shutdown: request it, track work in flight, register
/// cleanup, wait for its phases.
///
/// Cloning is cheap (one `Arc`); every clone sees the same shutdown. The
/// [`Driver`] that runs the shutdown is separate and not `Clone`, because
/// exactly one place may run it.
///
/// # Examples
///
/// ```
/// use graceful_core::{ManualClock, Phase, Shutdown, Signal};
/// use futures_lite::future::block_on;
///
/// let driver = Shutdown::builder().build().unwrap();
/// let shutdown = driver.handle();
/// shutdown.on_cleanup_sync("flush-logs", || Ok::<_, std::io::Error>(())).unwrap();
///
/// let guard = shutdown.enter().expect("accepting work");
/// shutdown.request(Signal::TERM);
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
    /// A builder with the default settings: no unready delay, a 20 s drain
    /// timeout and a 3 s timeout per cleanup step.
    ///
    /// The defaults fit Kubernetes' 30 s grace period with room to spare:
    /// 20 s of drain plus two cleanup steps at their full 3 s leaves 4 s
    /// before the `SIGKILL`. Docker's default is 10 s and systemd's 90 s:
    /// set [`Builder::grace_period`] to have the budget checked.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// Asks for the shutdown to begin, or forces it if it already has.
    ///
    /// The first request moves the phase to [`Phase::Unready`] at once
    /// (readiness reports false) and lets the [`Driver`] go on. A request
    /// while the shutdown is under way forces it: the outcome is decided
    /// there and then (exit code `128 + N` for signal `N`), work in flight is
    /// abandoned and whatever drain or cleanup is left is skipped.
    pub fn request(&self, cause: impl Into<Cause>) -> Request {
        let cause = cause.into();
        let outcome = {
            let mut shared = lock(&self.inner.shared);
            if self
                .inner
                .state
                .advance(Phase::Unready, Flags::NONE)
                .is_some()
            {
                shared.cause = Some(cause);
                shared.listened_at_request = shared.listened;
                Request::Started
            } else if self
                .inner
                .state
                .advance(Phase::Finished, Flags::FORCED)
                .is_some()
            {
                shared.forced_by = Some(cause);
                Request::Forced
            } else {
                Request::AlreadyFinished
            }
        };
        if outcome != Request::AlreadyFinished {
            self.inner.waiters.notify_all();
        }
        outcome
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
        match self.inner.state.try_enter() {
            Ok(()) => Ok(Guard { inner: &self.inner }),
            Err(phase) => Err(Refused { phase }),
        }
    }

    /// Like [`enter`](Shutdown::enter), with a guard that owns a handle, for
    /// work that moves to another task. Costs one `Arc` clone more.
    #[inline]
    pub fn enter_owned(&self) -> Result<OwnedGuard, Refused> {
        match self.inner.state.try_enter() {
            Ok(()) => Ok(OwnedGuard {
                inner: self.inner.clone(),
            }),
            Err(phase) => Err(Refused { phase }),
        }
    }

    /// Registers an open listener. Dropping the token tells the shutdown
    /// that the listener is closed; the driver reports [`Event::Closed`] once
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
        Reached {
            wait: Wait::new(self.inner.clone()),
            phase,
        }
    }

    /// Resolves the moment nothing is in flight after draining began: woken
    /// by the last guard's drop, never by polling.
    pub fn drained(&self) -> Drained {
        Drained {
            wait: Wait::new(self.inner.clone()),
        }
    }

    /// Resolves when the shutdown gives up on the work still in flight: the
    /// drain deadline passed, or a second request forced the shutdown.
    /// Servers close the connections still busy at that point.
    pub fn abandoned(&self) -> Abandoned {
        Abandoned {
            wait: Wait::new(self.inner.clone()),
        }
    }
}

// Unwind safety: a panic never leaves the shutdown inconsistent. The state
// is one atomic word, every lock is taken for a few lines of this crate's own
// code (and poisoning is ignored, see `sync::lock`), and user code (steps,
// the observer) runs with no lock held. So a handle or a guard may cross a
// `catch_unwind`, which is exactly where a request's guard must still leave.
impl std::panic::UnwindSafe for Shutdown {}
impl std::panic::RefUnwindSafe for Shutdown {}
impl std::panic::UnwindSafe for OwnedGuard {}
impl std::panic::RefUnwindSafe for OwnedGuard {}
impl std::panic::UnwindSafe for Guard<'_> {}
impl std::panic::RefUnwindSafe for Guard<'_> {}

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

/// One request in flight, counted until dropped. See [`Shutdown::enter`].
#[must_use = "the request is counted only while the guard is alive"]
pub struct Guard<'a> {
    inner: &'a Inner,
}

impl Drop for Guard<'_> {
    #[inline]
    fn drop(&mut self) {
        self.inner.leave();
    }
}

impl fmt::Debug for Guard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard").finish_non_exhaustive()
    }
}

/// One request in flight that owns its handle. See
/// [`Shutdown::enter_owned`].
///
/// Not `Clone`: each guard counts one request, and a clone would count a
/// request that does not exist.
#[must_use = "the request is counted only while the guard is alive"]
pub struct OwnedGuard {
    inner: Arc<Inner>,
}

impl Drop for OwnedGuard {
    #[inline]
    fn drop(&mut self) {
        self.inner.leave();
    }
}

impl fmt::Debug for OwnedGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedGuard").finish_non_exhaustive()
    }
}

/// An open listener, until dropped. See [`Shutdown::track_listener`].
///
/// Not `Clone`, for the same reason as [`OwnedGuard`]: a clone would keep a
/// closed listener counted as open.
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

/// A registration in the wait list, given back on drop.
pub(crate) struct Wait {
    pub(crate) inner: Arc<Inner>,
    slot: Slot,
}

impl Wait {
    pub(crate) fn new(inner: Arc<Inner>) -> Wait {
        Wait {
            inner,
            slot: Slot::default(),
        }
    }

    pub(crate) fn poll<T>(
        &mut self,
        cx: &mut Context<'_>,
        mut ready: impl FnMut(&Inner, Snapshot) -> Option<T>,
    ) -> Poll<T> {
        let inner = &*self.inner;
        inner
            .waiters
            .poll_until(&mut self.slot, cx, || ready(inner, inner.state.load()))
    }
}

impl Drop for Wait {
    fn drop(&mut self) {
        self.inner.waiters.release(&mut self.slot);
    }
}

/// Resolves once the phase has reached a given phase. See
/// [`Shutdown::reached`].
///
/// # Cancel safety
///
/// Cancel safe: dropping it only gives back its place in the wait list;
/// nothing is consumed, and a new one can be made at any time.
#[must_use = "futures do nothing unless polled"]
pub struct Reached {
    wait: Wait,
    phase: Phase,
}

impl Future for Reached {
    type Output = Phase;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Phase> {
        let this = self.get_mut();
        let target = this.phase;
        this.wait
            .poll(cx, |_, s| (s.phase() >= target).then_some(s.phase()))
    }
}

/// Resolves when nothing is in flight after draining began. See
/// [`Shutdown::drained`].
///
/// # Cancel safety
///
/// Cancel safe: dropping it only gives back its place in the wait list;
/// nothing is consumed, and a new one can be made at any time.
#[must_use = "futures do nothing unless polled"]
pub struct Drained {
    wait: Wait,
}

impl Future for Drained {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.get_mut()
            .wait
            .poll(cx, |_, s| s.drained().then_some(()))
    }
}

/// Resolves when the shutdown gives up on the work in flight. See
/// [`Shutdown::abandoned`].
///
/// # Cancel safety
///
/// Cancel safe: dropping it only gives back its place in the wait list;
/// nothing is consumed, and a new one can be made at any time.
#[must_use = "futures do nothing unless polled"]
pub struct Abandoned {
    wait: Wait,
}

impl Future for Abandoned {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.get_mut()
            .wait
            .poll(cx, |_, s| s.abandoned().then_some(()))
    }
}

macro_rules! debug_future {
    ($($name:ident),*) => {$(
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name)).finish_non_exhaustive()
            }
        }
    )*};
}
debug_future!(Reached, Drained, Abandoned);

/// The longest unready delay, drain timeout or cleanup timeout accepted.
const MAX_DURATION: Duration = Duration::from_secs(24 * 60 * 60);

/// Settings for a shutdown, checked when built. See [`Shutdown::builder`].
#[must_use = "a builder does nothing until built"]
pub struct Builder {
    config: Config,
    grace_period: Option<Duration>,
    observer: Option<Observer>,
}

impl Default for Builder {
    fn default() -> Builder {
        Builder {
            config: Config {
                unready_delay: Duration::ZERO,
                drain_timeout: Duration::from_secs(20),
                cleanup_timeout: Duration::from_secs(3),
            },
            grace_period: None,
            observer: None,
        }
    }
}

impl Builder {
    /// After the first request, keep serving for this long with readiness
    /// reporting false, so a load balancer stops sending new work before
    /// the listener closes. Default: zero.
    ///
    /// The delay is skipped when the first request comes before any
    /// listener was registered with [`Shutdown::track_listener`]: nothing can be routing
    /// to a server that never listened, and a process told to stop while
    /// starting up should stop at once. A server with its own accept loop
    /// registers its listener too, or it gets no delay.
    pub fn unready_delay(mut self, delay: Duration) -> Builder {
        self.config.unready_delay = delay;
        self
    }

    /// How long requests in flight may run, counted from the listeners'
    /// closing, before they are abandoned. Zero abandons them at once.
    /// Default: 20 s.
    pub fn drain_timeout(mut self, timeout: Duration) -> Builder {
        self.config.drain_timeout = timeout;
        self
    }

    /// How long one cleanup step may run before it is abandoned.
    /// Default: 3 s.
    pub fn cleanup_timeout(mut self, timeout: Duration) -> Builder {
        self.config.cleanup_timeout = timeout;
        self
    }

    /// The orchestrator's grace period: building fails when the unready
    /// delay, the drain timeout and one cleanup step's timeout do not fit in
    /// it (30 s in Kubernetes, 10 s in Docker, 90 s in systemd).
    pub fn grace_period(mut self, grace_period: Duration) -> Builder {
        self.grace_period = Some(grace_period);
        self
    }

    /// Calls `observer` at every step of the shutdown, from the task that
    /// runs the [`Driver`], with no lock held. Keep it quick; a panic in it
    /// unwinds through [`Run`](crate::Run).
    pub fn on_event(mut self, observer: impl Fn(&Event<'_>) + Send + Sync + 'static) -> Builder {
        self.observer = Some(Box::new(observer));
        self
    }

    /// Checks the settings and makes the [`Driver`].
    ///
    /// # Errors
    ///
    /// A zero cleanup timeout, a duration over 24 hours, or settings that
    /// exceed the [grace period](Builder::grace_period).
    pub fn build(self) -> Result<Driver, ConfigError> {
        let Config {
            unready_delay,
            drain_timeout,
            cleanup_timeout,
        } = self.config;
        for (setting, value) in [
            ("unready delay", unready_delay),
            ("drain timeout", drain_timeout),
            ("cleanup timeout", cleanup_timeout),
        ] {
            if value > MAX_DURATION {
                return Err(ConfigError::TooLong {
                    setting,
                    value,
                    max: MAX_DURATION,
                });
            }
        }
        if cleanup_timeout.is_zero() {
            return Err(ConfigError::ZeroCleanupTimeout);
        }
        if let Some(grace_period) = self.grace_period {
            let needed = unready_delay + drain_timeout + cleanup_timeout;
            if needed > grace_period {
                return Err(ConfigError::OverBudget {
                    needed,
                    grace_period,
                });
            }
        }
        let inner = Arc::new(Inner {
            state: State::new(),
            waiters: WaitList::default(),
            listeners: AtomicUsize::new(0),
            shared: Mutex::new(Shared::default()),
            config: self.config,
            observer: self.observer,
        });
        Ok(Driver {
            shutdown: Shutdown { inner },
        })
    }
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("unready_delay", &self.config.unready_delay)
            .field("drain_timeout", &self.config.drain_timeout)
            .field("cleanup_timeout", &self.config.cleanup_timeout)
            .field("grace_period", &self.grace_period)
            .field("observer", &self.observer.is_some())
            .finish()
    }
}
