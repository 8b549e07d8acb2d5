//! The settings of a shutdown, and their validation.

use crate::driver::Driver;
use crate::error::{ConfigError, Setting};
use crate::inner::{Config, Inner, Observer};
use crate::log::Log;
use crate::report::Event;
use crate::shutdown::Shutdown;
use crate::sync::Arc;
use std::fmt;
use std::time::Duration;

/// The longest unready delay, drain timeout, cleanup timeout or grace
/// period accepted.
const MAX_DURATION: Duration = Duration::from_secs(24 * 60 * 60);

// `Shutdown::builder` is defined here, beside what it makes, so that the
// handle's module does not depend on the builder (and through it on the
// driver, which holds a handle): the modules form no cycle.
impl Shutdown {
    /// A builder with the default settings: no unready delay, a 20 s drain
    /// timeout and a 3 s timeout per cleanup step.
    ///
    /// The defaults fit Kubernetes' 30 s grace period with room to spare:
    /// 20 s of drain plus two cleanup steps at their full 3 s leaves 4 s
    /// before the `SIGKILL`. Docker's default is 10 s and systemd's 90 s:
    /// set [`Builder::grace_period`] to have the budget checked and kept.
    pub fn builder() -> Builder {
        Builder::default()
    }
}

/// Settings for a shutdown, checked when built. See [`Shutdown::builder`].
#[must_use = "a builder does nothing until built"]
pub struct Builder {
    config: Config,
    grace_period: Option<Duration>,
    observer: Option<Observer>,
    #[cfg(feature = "systemd")]
    systemd: bool,
    pub(crate) log: Log,
}

impl Default for Builder {
    fn default() -> Builder {
        Builder {
            config: Config {
                unready_delay: Duration::ZERO,
                drain_timeout: Duration::from_secs(20),
                cleanup_timeout: Duration::from_secs(3),
                budget: None,
            },
            grace_period: None,
            observer: None,
            #[cfg(feature = "systemd")]
            systemd: false,
            log: Log::default(),
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

    /// What the [grace period](Builder::grace_period) keeps back for the
    /// process to exit once the outcome is decided: 1 s.
    ///
    /// Once the outcome is decided, what is left is to print the report,
    /// return from `main`, drop what is still alive and flush the output,
    /// which takes milliseconds; and before the driver sees the signal, its
    /// delivery and a wake-up on a busy machine. One second covers both with
    /// a wide margin even on an overloaded node. A fixed time rather than a
    /// share of the grace period, because none of that grows with it: a
    /// percentage would keep back too little of Docker's 10 s and too much of
    /// a long one.
    pub const GRACE_MARGIN: Duration = Duration::from_secs(1);

    /// The grace period an orchestrator must give this configuration so
    /// that every wait can run to its full length: the unready delay, the
    /// drain timeout, `steps` cleanup steps at their full timeout (at least
    /// one), and [`Builder::GRACE_MARGIN`].
    ///
    /// Set the manifest's or unit's value (Kubernetes'
    /// `terminationGracePeriodSeconds`, systemd's `TimeoutStopSec`) to at
    /// least this, and [`Builder::grace_period`] to that value: with one
    /// step this is the least grace period [`Builder::build`] accepts, and
    /// with every registered step counted, no wait is ever cut short.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::Shutdown;
    /// use std::time::Duration;
    ///
    /// let builder = Shutdown::builder()
    ///     .unready_delay(Duration::from_secs(10))
    ///     .drain_timeout(Duration::from_secs(15))
    ///     .cleanup_timeout(Duration::from_secs(3));
    /// // 10 + 15 + 1 step x 3 + 1 s of margin
    /// assert_eq!(builder.grace_period_needed(1), Duration::from_secs(29));
    /// ```
    #[must_use]
    pub fn grace_period_needed(&self, steps: usize) -> Duration {
        let steps = u32::try_from(steps.max(1)).unwrap_or(u32::MAX);
        self.config
            .unready_delay
            .saturating_add(self.config.drain_timeout)
            .saturating_add(self.config.cleanup_timeout.saturating_mul(steps))
            .saturating_add(Builder::GRACE_MARGIN)
    }

    /// The orchestrator's grace period, from its first signal to its
    /// `SIGKILL` (30 s in Kubernetes, 10 s in Docker, 90 s in systemd), and
    /// the promise that the outcome is decided before it.
    ///
    /// The budget is the grace period less [`Builder::GRACE_MARGIN`],
    /// counted from the moment the [`Run`](crate::Run) sees the first
    /// request (at once, when it is being polled):
    ///
    /// - at build time, the unready delay, the drain timeout and one cleanup
    ///   step's timeout must fit in it, or building fails: a configuration
    ///   whose every wait cannot have its full length at least once;
    /// - at run time, whatever the listeners, the requests and the steps do,
    ///   the outcome is decided within it. The drain, waiting for the
    ///   listeners to close included, ends in time to leave one full cleanup
    ///   timeout (so it is never shorter than the drain timeout), and each
    ///   cleanup step runs under the lesser of the cleanup timeout and what
    ///   is left of the budget. What the budget cuts short is marked in the
    ///   [`Report`](crate::Report): requests abandoned early
    ///   ([`Report::drain_cut_by_grace_period`]), a step ended as
    ///   [`StepOutcome::Timeout`] early
    ///   ([`StepReport::cut_by_grace_period`]).
    ///
    /// A synchronous step cannot be cut while it blocks (see
    /// [`Shutdown::on_cleanup_sync`]).
    ///
    /// [`Report::drain_cut_by_grace_period`]: crate::Report::drain_cut_by_grace_period
    /// [`StepOutcome::Timeout`]: crate::StepOutcome::Timeout
    /// [`StepReport::cut_by_grace_period`]: crate::StepReport::cut_by_grace_period
    pub fn grace_period(mut self, grace_period: Duration) -> Builder {
        self.grace_period = Some(grace_period);
        self
    }

    /// Writes nothing to the logs.
    ///
    /// By default a shutdown is visible in them: one short line per phase
    /// and per cleanup step on standard error, each prefixed `graceful: `,
    /// such as `graceful: shutdown requested (SIGTERM)` or
    /// `graceful: cleanup db ok in 2ms`, then `graceful: report: ...`, the
    /// [`Report`](crate::Report). A forced shutdown logs
    /// `graceful: forced (SIGINT): exit 130` and the report at once, from
    /// the request that forced it. With the `tracing` feature the same go out
    /// as `tracing` events instead.
    ///
    /// The observer set with [`on_event`](Builder::on_event) gets every
    /// event either way.
    pub fn quiet(mut self) -> Builder {
        self.log.quiet = true;
        self
    }

    /// Sends the log to `sink` instead (the tests of [`crate::log`]).
    #[cfg(test)]
    pub(crate) fn log_to(mut self, sink: crate::log::Sink) -> Builder {
        self.log.sink = sink;
        self
    }

    /// Notifies systemd of the shutdown (feature `systemd`): `STOPPING=1`
    /// at the first signal, then at each phase its status and the stop
    /// timeout extended to what the rest may still take; see
    /// [`systemd`](crate::systemd). Also calls the [`Builder::on_event`]
    /// observer, if any. Does nothing outside systemd.
    #[cfg(feature = "systemd")]
    pub fn notify_systemd(mut self) -> Builder {
        self.systemd = true;
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
    /// do not fit in the [grace period](Builder::grace_period) less its
    /// margin.
    pub fn build(mut self) -> Result<Driver, ConfigError> {
        let Config {
            unready_delay,
            drain_timeout,
            cleanup_timeout,
            budget: _,
        } = self.config;
        for (setting, value) in [
            (Setting::UnreadyDelay, unready_delay),
            (Setting::DrainTimeout, drain_timeout),
            (Setting::CleanupTimeout, cleanup_timeout),
            (
                Setting::GracePeriod,
                self.grace_period.unwrap_or(Duration::ZERO),
            ),
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
            let budget = grace_period.saturating_sub(Builder::GRACE_MARGIN);
            let needed = unready_delay + drain_timeout + cleanup_timeout;
            if needed > budget {
                return Err(ConfigError::OverBudget {
                    needed,
                    grace_period,
                    margin: Builder::GRACE_MARGIN,
                });
            }
            self.config.budget = Some(budget);
        }
        #[cfg(feature = "systemd")]
        if self.systemd {
            self.observer = Some(crate::systemd::observer(&self.config, self.observer.take()));
        }
        let inner = Arc::new(Inner::new(self.config, self.observer, self.log));
        Ok(Driver::new(Shutdown { inner }))
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
            .field("quiet", &self.log.quiet)
            .finish()
    }
}
