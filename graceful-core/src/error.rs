//! The crate's error types.

use crate::Phase;
use std::borrow::Cow;
use std::error::Error;
use std::fmt;
use std::time::Duration;

/// An error that a cleanup step returned, boxed.
pub type BoxError = Box<dyn Error + Send + Sync + 'static>;

/// New work was refused because the shutdown has gone past accepting it.
///
/// Adapters answer it with `503 Service Unavailable`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused {
    pub(crate) phase: Phase,
}

impl Refused {
    /// The phase the shutdown was in when the work was refused.
    pub fn phase(&self) -> Phase {
        self.phase
    }
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "shutting down ({}): new work is refused", self.phase)
    }
}

impl Error for Refused {}

/// A cleanup step could not be registered.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegisterError {
    /// Cleanup has already started (or the shutdown was forced): the step
    /// would never run.
    CleanupStarted {
        /// The step's name.
        name: Cow<'static, str>,
    },
    /// A step of that name is already registered; names identify steps in
    /// the report.
    Duplicate {
        /// The step's name.
        name: Cow<'static, str>,
    },
    /// The name is empty, or holds white space (it is printed as one word).
    BadName {
        /// The step's name.
        name: Cow<'static, str>,
    },
}

impl fmt::Display for RegisterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegisterError::CleanupStarted { name } => write!(
                f,
                "cleanup step `{name}` registered after cleanup started: it would never run"
            ),
            RegisterError::Duplicate { name } => {
                write!(f, "a cleanup step named `{name}` is already registered")
            }
            RegisterError::BadName { name } => write!(
                f,
                "cleanup step name `{name}` must be one word: not empty, no white space"
            ),
        }
    }
}

impl Error for RegisterError {}

/// A shutdown configuration that makes no sense, found when it is built.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The per-step cleanup timeout is zero: every step would time out.
    ZeroCleanupTimeout,
    /// A duration is longer than the largest one accepted.
    TooLong {
        /// Which setting.
        setting: Setting,
        /// Its value.
        value: Duration,
        /// The largest accepted value.
        max: Duration,
    },
    /// Unready delay, drain timeout and one cleanup step's timeout do not
    /// fit in the grace period given with [`Builder::grace_period`], less
    /// [`Builder::GRACE_MARGIN`].
    ///
    /// [`Builder::grace_period`]: crate::Builder::grace_period
    /// [`Builder::GRACE_MARGIN`]: crate::Builder::GRACE_MARGIN
    OverBudget {
        /// Unready delay + drain timeout + cleanup timeout.
        needed: Duration,
        /// The grace period.
        grace_period: Duration,
        /// What the grace period keeps back for the exit,
        /// [`Builder::GRACE_MARGIN`].
        ///
        /// [`Builder::GRACE_MARGIN`]: crate::Builder::GRACE_MARGIN
        margin: Duration,
    },
}

impl ConfigError {
    /// The setting at fault, so that a program can name its own option for
    /// it.
    pub fn setting(&self) -> Setting {
        match self {
            ConfigError::ZeroCleanupTimeout => Setting::CleanupTimeout,
            ConfigError::TooLong { setting, .. } => *setting,
            ConfigError::OverBudget { .. } => Setting::GracePeriod,
        }
    }
}

/// One setting of the [`Builder`](crate::Builder), as a [`ConfigError`]
/// names it.
///
/// Exhaustive on purpose: a program maps each setting to its own option
/// with a `match` that has no catch-all, so that a setting added here is a
/// compile error there, not a silent fallback. Adding one is a breaking
/// change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Setting {
    /// [`Builder::unready_delay`](crate::Builder::unready_delay).
    UnreadyDelay,
    /// [`Builder::drain_timeout`](crate::Builder::drain_timeout).
    DrainTimeout,
    /// [`Builder::cleanup_timeout`](crate::Builder::cleanup_timeout).
    CleanupTimeout,
    /// [`Builder::grace_period`](crate::Builder::grace_period).
    GracePeriod,
}

impl Setting {
    /// Its name in lowercase words: `unready delay`, `drain timeout`,
    /// `cleanup timeout`, `grace period`.
    pub fn as_str(self) -> &'static str {
        match self {
            Setting::UnreadyDelay => "unready delay",
            Setting::DrainTimeout => "drain timeout",
            Setting::CleanupTimeout => "cleanup timeout",
            Setting::GracePeriod => "grace period",
        }
    }
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::ZeroCleanupTimeout => {
                f.write_str("cleanup timeout is zero: every cleanup step would time out")
            }
            ConfigError::TooLong {
                setting,
                value,
                max,
            } => write!(
                f,
                "{setting} of {value:?} is longer than the maximum of {max:?}"
            ),
            ConfigError::OverBudget {
                needed,
                grace_period,
                margin,
            } => write!(
                f,
                "unready delay + drain timeout + cleanup timeout ({needed:?}) exceed the grace period ({grace_period:?}) less its {margin:?} margin"
            ),
        }
    }
}

impl Error for ConfigError {}
