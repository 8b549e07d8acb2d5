//! tokio's signal handling behind the core's [`SignalSource`]: SIGTERM
//! and SIGINT forwarded to the shutdown by the core's
//! [`graceful_core::signal::Signals`], and (feature `upgrade`) SIGHUP for
//! the upgrades of [`upgrade_on_sighup`](crate::upgrade_on_sighup). One
//! listener type for both: only the signals it listens for differ.

use graceful_core::Shutdown;
use graceful_core::signal::SignalSource;
use std::fmt;
use std::io;
use std::task::{Context, Poll};

/// Forwards SIGTERM and SIGINT to a shutdown; resolves with the exit code
/// when one of them forced it. See [`signals`].
pub type Signals = graceful_core::signal::Signals<Listeners>;

/// Listens for SIGTERM and SIGINT (Ctrl+C) and forwards every arrival to
/// [`Shutdown::request`].
///
/// The first one starts the shutdown; the next one forces it, and the
/// returned [`Signals`] future resolves with the exit code that calls for
/// (`128 + N`: 143 for SIGTERM, 130 for SIGINT). Await it with the driver,
/// through [`Run::with_signals`](graceful_core::Run::with_signals), which
/// then resolves to the forced report at once.
///
/// Both handlers are installed before this returns, so a signal that
/// arrives from then on is never lost, and never kills the process: call it
/// early, before binding a listener. A handler, once installed, stays for
/// the life of the process (that is how tokio's signal handling works): keep
/// the future polled until the process exits, or a second signal goes
/// unheard.
///
/// Call it once per shutdown: every [`Signals`] sees every signal, so two of
/// them would count each signal twice, and the first one would force the
/// shutdown.
///
/// On platforms other than Unix it listens for Ctrl+C only, reported as
/// [`Signal::INT`](graceful_core::Signal::INT), and the handler is
/// installed when the future is first polled.
///
/// # Errors
///
/// When a handler cannot be installed, or when called outside a tokio
/// runtime with signal handling enabled.
///
/// # Examples
///
/// ```
/// use graceful_tokio::Shutdown;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let driver = Shutdown::builder().build()?;
/// let shutdown = driver.handle();
/// let signals = graceful_tokio::signals(&shutdown)?;
/// # let _ = shutdown.request(graceful_tokio::Signal::TERM);
///
/// // The report, whether the drain finished or a second signal forced it.
/// let report = graceful_tokio::run(driver).with_signals(signals).await;
/// # assert_eq!(report.exit_code(), 0);
/// # Ok(())
/// # }
/// ```
pub fn signals(shutdown: &Shutdown) -> io::Result<Signals> {
    Ok(Signals::new(
        shutdown,
        Listeners(imp::Listeners::shutdown()?),
    ))
}

/// tokio's signal listeners: the source of [`Signals`] (SIGTERM and
/// SIGINT) and of [`Upgrades`](crate::upgrade::Upgrades) (SIGHUP).
///
/// `None` from tokio means the runtime is shutting down: nothing more will
/// arrive, so the source stays pending.
pub struct Listeners(imp::Listeners);

impl Listeners {
    /// Listens for SIGHUP, the upgrade's signal.
    #[cfg(all(unix, feature = "upgrade"))]
    pub(crate) fn hangups() -> io::Result<Listeners> {
        use tokio::signal::unix::SignalKind;
        Ok(Listeners(imp::Listeners::new(&[(
            SignalKind::hangup,
            graceful_core::Signal::HUP,
        )])?))
    }
}

impl SignalSource for Listeners {
    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<graceful_core::Signal> {
        self.0.poll_recv(cx)
    }
}

impl fmt::Debug for Listeners {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Listeners").finish_non_exhaustive()
    }
}

#[cfg(unix)]
mod imp {
    use graceful_core::Signal;
    use std::io;
    use std::task::{Context, Poll};
    use tokio::signal::unix::SignalKind;

    /// How to make a listener's kind: `SignalKind`'s constructors.
    pub(crate) type Kind = fn() -> SignalKind;

    /// One listener per signal, in the order they are polled.
    pub(crate) struct Listeners(Vec<(tokio::signal::unix::Signal, Signal)>);

    impl Listeners {
        pub(crate) fn shutdown() -> io::Result<Listeners> {
            Listeners::new(&[
                (SignalKind::terminate, Signal::TERM),
                (SignalKind::interrupt, Signal::INT),
            ])
        }

        pub(crate) fn new(listened: &[(Kind, Signal)]) -> io::Result<Listeners> {
            listened
                .iter()
                .map(|&(kind, signal)| Ok((tokio::signal::unix::signal(kind())?, signal)))
                .collect::<io::Result<_>>()
                .map(Listeners)
        }

        pub(crate) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Signal> {
            self.0
                .iter_mut()
                .find_map(|(listener, signal)| {
                    matches!(listener.poll_recv(cx), Poll::Ready(Some(()))).then_some(*signal)
                })
                .map_or(Poll::Pending, Poll::Ready)
        }
    }
}

#[cfg(not(unix))]
mod imp {
    use graceful_core::Signal;
    use std::future::Future;
    use std::io;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    type CtrlC = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

    pub(crate) struct Listeners {
        ctrl_c: CtrlC,
    }

    impl Listeners {
        pub(crate) fn shutdown() -> io::Result<Listeners> {
            Ok(Listeners {
                ctrl_c: Box::pin(tokio::signal::ctrl_c()),
            })
        }

        pub(crate) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Signal> {
            match self.ctrl_c.as_mut().poll(cx) {
                Poll::Ready(Ok(())) => {
                    // Listen again for the next one.
                    self.ctrl_c = Box::pin(tokio::signal::ctrl_c());
                    Poll::Ready(Signal::INT)
                }
                Poll::Ready(Err(_)) | Poll::Pending => Poll::Pending,
            }
        }
    }
}
