//! Why a shutdown was requested.

use std::borrow::Cow;
use std::fmt;

/// A Unix signal, by number and name.
///
/// The core never installs a handler: the adapters listen for signals with
/// their runtime's tools and pass what arrived to [`Shutdown::request`].
///
/// [`Shutdown::request`]: crate::Shutdown::request
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Signal {
    number: u8,
    name: &'static str,
}

impl Signal {
    /// `SIGHUP`, number 1.
    pub const HUP: Signal = Signal::new(1, "SIGHUP");
    /// `SIGINT`, number 2: Ctrl+C.
    pub const INT: Signal = Signal::new(2, "SIGINT");
    /// `SIGQUIT`, number 3.
    pub const QUIT: Signal = Signal::new(3, "SIGQUIT");
    /// `SIGTERM`, number 15: what orchestrators send.
    pub const TERM: Signal = Signal::new(15, "SIGTERM");

    /// A signal by number and name.
    ///
    /// # Panics
    ///
    /// When `number` is 0 or above 127: the forced exit code `128 + number`
    /// must fit in an exit status.
    pub const fn new(number: u8, name: &'static str) -> Signal {
        assert!(
            number > 0 && number < 128,
            "signal numbers run from 1 to 127"
        );
        Signal { number, name }
    }

    /// The signal's number.
    pub const fn number(self) -> u8 {
        self.number
    }

    /// The signal's name, such as `SIGTERM`.
    pub const fn name(self) -> &'static str {
        self.name
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

/// What asked for the shutdown.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Cause {
    /// A signal arrived.
    Signal(Signal),
    /// The program asked, for the reason given.
    Reason(Cow<'static, str>),
    /// A zero-downtime upgrade handed the listeners over: the new process
    /// `pid` serves on them, and this one drains what it already accepted
    /// (see [`Shutdown::hand_over`]). The unready delay is skipped, and
    /// the listeners are released rather than closed: the socket stays
    /// open in the new process.
    ///
    /// [`Shutdown::hand_over`]: crate::Shutdown::hand_over
    Upgrade {
        /// The process that took the listeners over.
        pid: u32,
    },
}

impl Cause {
    /// A cause given by the program.
    pub fn reason(reason: impl Into<Cow<'static, str>>) -> Cause {
        Cause::Reason(reason.into())
    }

    /// The exit code when a second request of this cause forces the
    /// shutdown: `128 + N` for signal `N` (the shell's convention, 143 for
    /// `SIGTERM`, 130 for `SIGINT`), 1 for a reason given by the program
    /// (an upgrade never forces a shutdown, but would be 1 too).
    pub fn forced_exit_code(&self) -> u8 {
        match self {
            Cause::Signal(signal) => 128 + signal.number(),
            Cause::Reason(_) | Cause::Upgrade { .. } => 1,
        }
    }

    /// Whether this is an upgrade's hand-over ([`Cause::Upgrade`]).
    pub fn is_upgrade(&self) -> bool {
        matches!(self, Cause::Upgrade { .. })
    }
}

impl From<Signal> for Cause {
    fn from(signal: Signal) -> Cause {
        Cause::Signal(signal)
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::Signal(signal) => signal.fmt(f),
            Cause::Reason(reason) => f.write_str(reason),
            Cause::Upgrade { pid } => write!(f, "upgrade to process {pid}"),
        }
    }
}
