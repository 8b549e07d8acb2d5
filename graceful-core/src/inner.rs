//! The state every handle, guard and future of one shutdown shares.

use crate::cause::Cause;
use crate::cleanup::Step;
use crate::log::Log;
use crate::progress::{self, Progress};
use crate::report::{Event, Report};
use crate::state::{Flags, Phase, Snapshot, State};
use crate::sync::{AtomicUsize, Mutex, Ordering, lock};
use crate::waiters::WaitList;
use std::time::{Duration, Instant};

/// The observer set with [`Builder::on_event`](crate::Builder::on_event).
pub(crate) type Observer = Box<dyn Fn(&Event<'_>) + Send + Sync>;

/// The settings a shutdown runs with.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Config {
    pub(crate) unready_delay: Duration,
    pub(crate) drain_timeout: Duration,
    pub(crate) cleanup_timeout: Duration,
    /// The grace period less its margin, when one was set: the outcome is
    /// decided within it after the first request.
    pub(crate) budget: Option<Duration>,
}

/// One shutdown: behind the `Arc` that [`Shutdown`](crate::Shutdown), the
/// owned guards, the listener tokens and the waiting futures hold.
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
    pub(crate) log: Log,
    /// Background jobs that panicked (see [`crate::job`]).
    pub(crate) job_panics: AtomicUsize,
}

/// What is written rarely and read under the lock: causes, registrations.
#[derive(Default)]
pub(crate) struct Shared {
    pub(crate) cause: Option<Cause>,
    /// Registered cleanup steps, in registration order.
    pub(crate) steps: Vec<Step>,
    /// Whether a listener was ever registered.
    pub(crate) listened: bool,
    /// Whether one was when the first request came: without one, nothing
    /// can be routing to this process and the unready delay is skipped.
    pub(crate) listened_at_request: bool,
    /// The run so far, once the driver has seen the first request.
    pub(crate) progress: Option<Progress>,
    /// The forced outcome, written under this lock by the request that set
    /// the `FORCED` flag, in the same critical section: whoever sees the
    /// flag and then takes the lock finds it.
    pub(crate) forced: Option<Report>,
}

impl Shared {
    /// Writes the forced outcome (see [`progress::forced`]) and returns it.
    /// Called under the lock, by the request that has just set `FORCED`.
    pub(crate) fn force(
        &mut self,
        forced_by: Cause,
        now: Option<Instant>,
        in_flight: usize,
    ) -> Report {
        let cause = self
            .cause
            .as_ref()
            .expect("the first request records its cause before any other can force");
        let report = progress::forced(
            self.progress.as_mut(),
            cause,
            forced_by,
            now,
            in_flight,
            &self.steps,
        );
        self.forced = Some(report.clone());
        report
    }
}

impl Inner {
    pub(crate) fn new(config: Config, observer: Option<Observer>, log: Log) -> Inner {
        Inner {
            state: State::new(),
            waiters: WaitList::default(),
            listeners: AtomicUsize::new(0),
            shared: Mutex::new(Shared::default()),
            config,
            observer,
            log,
            job_panics: AtomicUsize::new(0),
        }
    }

    /// Whether every listener is closed: every `ListenerToken` dropped.
    pub(crate) fn listeners_closed(&self) -> bool {
        // Acquire: pairs with the Release of the last token's drop, so the
        // listener's close happens-before what the caller does next.
        self.listeners.load(Ordering::Acquire) == 0
    }

    /// Logs `event` and hands it to the observer, with no lock held.
    pub(crate) fn emit(&self, event: Event<'_>) {
        self.log.event(&event);
        if let Some(observer) = &self.observer {
            observer(&event);
        }
    }

    /// One request in flight ended; the last one while draining wakes the
    /// waiters (state invariant 4).
    ///
    /// Inlined into every guard's drop: the common path is the one
    /// decrement and one test, and only the wake-up, taken once per
    /// shutdown, is a call ([`Inner::wake_drained`]).
    #[inline]
    pub(crate) fn leave(&self) {
        if self.state.leave() {
            self.wake_drained();
        }
    }

    /// `n` requests in flight ended at once; as [`Inner::leave`].
    #[inline]
    pub(crate) fn leave_many(&self, n: usize) {
        if self.state.leave_many(n) {
            self.wake_drained();
        }
    }

    /// Wakes the waiters once the last request in flight left while
    /// draining; out of line, so that it does not weigh on every leave.
    #[cold]
    #[inline(never)]
    fn wake_drained(&self) {
        self.waiters.notify_all();
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
