//! The settings of a shutdown, and their validation.

use crate::driver::Driver;
use crate::error::{ConfigError, Setting};
use crate::inner::{Config, Inner, Observer};
use crate::report::Event;
use crate::shutdown::Shutdown;
use crate::sync::Arc;
use std::fmt;
use std::time::Duration;

/// The longest unready delay, drain timeout or cleanup timeout accepted.
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
    /// set [`Builder::grace_period`] to have the budget checked.
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
            (Setting::UnreadyDelay, unready_delay),
            (Setting::DrainTimeout, drain_timeout),
            (Setting::CleanupTimeout, cleanup_timeout),
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
        let inner = Arc::new(Inner::new(self.config, self.observer));
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
            .finish()
    }
}
