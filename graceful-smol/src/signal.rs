//! `async-signal` behind the core's [`SignalSource`]: SIGTERM and SIGINT
//! forwarded to the shutdown by the core's
//! [`graceful_core::signal::Signals`], and (feature `upgrade`) SIGHUP for
//! the upgrades of [`upgrade_on_sighup`](crate::upgrade_on_sighup). One
//! listener type for both: only the signals it listens for differ.

use futures_lite::Stream;
use graceful_core::signal::SignalSource;
use graceful_core::{Shutdown, Signal};
use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

/// The signals listened for: SIGTERM and SIGINT on Unix, Ctrl+C elsewhere
/// (async-signal's only signal on Windows).
#[cfg(unix)]
const LISTENED: &[async_signal::Signal] = &[async_signal::Signal::Term, async_signal::Signal::Int];
#[cfg(not(unix))]
const LISTENED: &[async_signal::Signal] = &[async_signal::Signal::Int];

/// Forwards SIGTERM and SIGINT to a shutdown; resolves with the exit code
/// when one of them forced it. See [`signals`].
pub type Signals = graceful_core::signal::Signals<Listeners>;

/// Listens for SIGTERM and SIGINT (Ctrl+C) and forwards every arrival to
/// [`Shutdown::request`].
///
/// The first one starts the shutdown; the next one forces it, and the
/// returned [`Signals`] future resolves with the exit code that calls for
/// (`128 + N`: 143 for SIGTERM, 130 for SIGINT), so that the program can
/// exit at once. Await it with the driver, through
/// [`Run::with_signals`](graceful_core::Run::with_signals), which then
/// resolves to the forced report at once.
///
/// Both handlers are installed (through `async-signal`, on
/// `signal-hook-registry`) before this returns, so a signal that arrives
/// from then on is never lost, and never kills the process: call it early,
/// before binding a listener. No executor is needed for that; the future
/// is woken through async-io's reactor, so it runs on any executor. While
/// the [`Signals`] lives, SIGTERM and SIGINT no longer end the process by
/// themselves: keep it polled until the process exits, or a second signal
/// goes unheard. Dropping it removes the handlers' actions, but the
/// handlers stay installed, so the signals are then caught and ignored.
///
/// Call it once per shutdown: every [`Signals`] sees every signal, so two of
/// them would count each signal twice, and the first one would force the
/// shutdown.
///
/// On platforms other than Unix it listens for Ctrl+C only, reported as
/// [`Signal::INT`].
///
/// # Errors
///
/// When a handler cannot be installed, or the pipe it writes to cannot be
/// made.
///
/// # Examples
///
/// ```
/// use graceful_smol::Shutdown;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let driver = Shutdown::builder().build()?;
/// let shutdown = driver.handle();
/// let signals = graceful_smol::signals(&shutdown)?;
/// # let _ = shutdown.request(graceful_smol::Signal::TERM);
///
/// // The report, whether the drain finished or a second signal forced it.
/// let report = smol::block_on(graceful_smol::run(driver).with_signals(signals));
/// # assert_eq!(report.exit_code(), 0);
/// # Ok(())
/// # }
/// ```
pub fn signals(shutdown: &Shutdown) -> io::Result<Signals> {
    let pipe = async_signal::Signals::new(LISTENED)?;
    Ok(Signals::new(shutdown, Listeners(pipe)))
}

/// async-signal's listeners: the source of [`Signals`] (SIGTERM and
/// SIGINT) and of [`Upgrades`](crate::upgrade::Upgrades) (SIGHUP). Signals
/// that arrive while it is not polled wait in its pipe.
pub struct Listeners(async_signal::Signals);

impl Listeners {
    /// Listens for SIGHUP, the upgrade's signal.
    #[cfg(all(unix, feature = "upgrade"))]
    pub(crate) fn hangups() -> io::Result<Listeners> {
        Ok(Listeners(async_signal::Signals::new([
            async_signal::Signal::Hup,
        ])?))
    }
}

impl SignalSource for Listeners {
    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Signal> {
        loop {
            return match Pin::new(&mut self.0).poll_next(cx) {
                Poll::Ready(Some(Ok(async_signal::Signal::Int))) => Poll::Ready(Signal::INT),
                Poll::Ready(Some(Ok(async_signal::Signal::Term))) => Poll::Ready(Signal::TERM),
                #[cfg(unix)]
                Poll::Ready(Some(Ok(async_signal::Signal::Hup))) => Poll::Ready(Signal::HUP),
                // A signal not listened for, or a message that names none.
                Poll::Ready(Some(Ok(_))) => continue,
                Poll::Ready(Some(Err(error))) if is_transient(&error) => continue,
                // The pipe failed, which its owning the write end rules
                // out: nothing more can arrive, so stay pending.
                Poll::Ready(Some(Err(_)) | None) | Poll::Pending => Poll::Pending,
            };
        }
    }
}

fn is_transient(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::InvalidData | io::ErrorKind::Interrupted
    )
}

impl fmt::Debug for Listeners {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Listeners").finish_non_exhaustive()
    }
}
