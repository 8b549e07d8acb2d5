//! SIGTERM and SIGINT, forwarded to the shutdown.

use futures_lite::Stream;
use graceful_core::{Cause, Request, Shutdown, Signal};
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

/// The signals listened for: SIGTERM and SIGINT on Unix, Ctrl+C elsewhere
/// (async-signal's only signal on Windows).
#[cfg(unix)]
const LISTENED: &[async_signal::Signal] = &[async_signal::Signal::Term, async_signal::Signal::Int];
#[cfg(not(unix))]
const LISTENED: &[async_signal::Signal] = &[async_signal::Signal::Int];

/// Listens for SIGTERM and SIGINT (Ctrl+C) and forwards every arrival to
/// [`Shutdown::request`].
///
/// The first one starts the shutdown; the next one forces it, and the
/// returned [`Signals`] future resolves with the exit code that calls for
/// (`128 + N`: 143 for SIGTERM, 130 for SIGINT), so that the program can
/// exit at once, even while a cleanup step blocks the driver.
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
/// use graceful_core::{Phase, Shutdown};
/// use futures_lite::future;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let driver = Shutdown::builder().build()?;
/// let shutdown = driver.handle();
/// let signals = graceful_smol::signals(&shutdown)?;
/// # let signals = async move {
/// #     let _ = shutdown.request(graceful_core::Signal::TERM);
/// #     signals.await
/// # };
///
/// let exit_code = smol::block_on(future::or(
///     async { graceful_smol::run(driver).await.exit_code() },
///     // A second signal: exit now, whatever the driver is doing.
///     signals,
/// ));
/// # assert_eq!(exit_code, 0);
/// # Ok(())
/// # }
/// ```
pub fn signals(shutdown: &Shutdown) -> io::Result<Signals> {
    Ok(Signals {
        shutdown: shutdown.clone(),
        listeners: async_signal::Signals::new(LISTENED)?,
    })
}

/// Forwards SIGTERM and SIGINT to a shutdown; resolves with the exit code
/// when one of them forced it. See [`signals`].
///
/// # Cancel safety
///
/// Cancel safe: a signal that arrives while it is not being polled waits in
/// its pipe and is forwarded at the next poll. Once it is dropped, signals
/// are still caught but no longer forwarded.
#[must_use = "signals are forwarded only while the future is polled"]
pub struct Signals {
    shutdown: Shutdown,
    listeners: async_signal::Signals,
}

impl Future for Signals {
    type Output = u8;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u8> {
        let this = self.get_mut();
        loop {
            let signal = match Pin::new(&mut this.listeners).poll_next(cx) {
                Poll::Ready(Some(Ok(signal))) => signal,
                // A message that names no signal listened for: skip it.
                Poll::Ready(Some(Err(error))) if is_transient(&error) => continue,
                // The pipe failed, which its owning the write end rules
                // out: nothing more can arrive, so stay pending.
                Poll::Ready(Some(Err(_)) | None) | Poll::Pending => return Poll::Pending,
            };
            let signal = match signal {
                async_signal::Signal::Int => Signal::INT,
                async_signal::Signal::Term => Signal::TERM,
                _ => continue,
            };
            match this.shutdown.request(signal) {
                Request::Forced => return Poll::Ready(Cause::from(signal).forced_exit_code()),
                // The first signal, or one after the end: nothing to do
                // here, the driver carries on.
                Request::Started | Request::AlreadyFinished => {}
            }
        }
    }
}

fn is_transient(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::InvalidData | io::ErrorKind::Interrupted
    )
}

impl fmt::Debug for Signals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signals")
            .field("shutdown", &self.shutdown)
            .finish_non_exhaustive()
    }
}
