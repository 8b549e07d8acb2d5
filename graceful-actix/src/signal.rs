//! actix-rt's signal handling behind the core's [`SignalSource`]: SIGTERM
//! and SIGINT forwarded to the shutdown by the core's
//! [`graceful_core::signal::Signals`], and (feature `upgrade`) SIGHUP for
//! the upgrades of [`upgrade_on_sighup`](crate::upgrade_on_sighup). One
//! listener type for both: only the signals it listens for differ.

use graceful_core::signal::SignalSource;
use graceful_core::{Shutdown, Signal};
use std::fmt;
use std::io;
use std::task::{Context, Poll};

/// Forwards SIGTERM and SIGINT to a shutdown; resolves with the exit code
/// when one of them forced it. See [`signals`].
pub type Signals = graceful_core::signal::Signals<Listeners>;

/// Listens for SIGTERM and SIGINT (Ctrl+C) and forwards every arrival to
/// [`Shutdown::request`].
///
/// The first one starts the shutdown, whichever it is: unlike actix-web's
/// own handling (which this replaces: serve with [`serve`](crate::serve),
/// or disable `HttpServer`'s with `disable_signals`), SIGINT drains like
/// SIGTERM. The next one forces it, and the returned [`Signals`] future
/// resolves with the exit code that calls for (`128 + N`: 143 for SIGTERM,
/// 130 for SIGINT), so that the program can exit at once, even while a
/// cleanup step holds the driver. Await it with the driver, through
/// [`Run::with_signals`](graceful_core::Run::with_signals), which then
/// resolves to the forced report at once.
///
/// Both handlers are installed before this returns, so a signal that
/// arrives from then on is never lost, and never kills the process: call it
/// early, before binding a listener. A handler, once installed, stays for
/// the life of the process (that is how tokio's signal handling, which
/// actix-rt re-exports, works): keep the future polled until the process
/// exits, or a second signal goes unheard.
///
/// On platforms other than Unix it listens for Ctrl+C only, reported as
/// [`Signal::INT`](graceful_core::Signal::INT), and the handler is
/// installed when the future is first polled.
///
/// # Errors
///
/// When a handler cannot be installed, or when called outside an actix
/// `System` (or another tokio runtime with signal handling enabled).
///
/// # Examples
///
/// ```
/// use graceful_actix::Shutdown;
///
/// # actix_web::rt::System::new().block_on(async {
/// let driver = Shutdown::builder().build()?;
/// let shutdown = driver.handle();
/// let signals = graceful_actix::signals(&shutdown)?;
/// # let _ = shutdown.request(graceful_actix::Signal::TERM);
///
/// // The report, whether the drain finished or a second signal forced it.
/// let report = graceful_actix::run(driver).with_signals(signals).await;
/// # assert_eq!(report.exit_code(), 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
pub fn signals(shutdown: &Shutdown) -> io::Result<Signals> {
    Ok(Signals::new(shutdown, Listeners::new()?))
}

/// actix-rt's listeners, one per signal: the source of [`Signals`]
/// (SIGTERM and SIGINT) and of [`Upgrades`](crate::upgrade::Upgrades)
/// (SIGHUP).
///
/// A listener that reports the end (the runtime is shutting down) can
/// receive nothing more: the source then stays pending.
pub struct Listeners {
    listening: Vec<(imp::Listener, Signal)>,
}

impl Listeners {
    fn new() -> io::Result<Listeners> {
        Listeners::listen(imp::LISTENED)
    }

    /// Listens for SIGHUP, the upgrade's signal.
    #[cfg(all(unix, feature = "upgrade"))]
    pub(crate) fn hangups() -> io::Result<Listeners> {
        Listeners::listen(imp::HANGUP)
    }

    fn listen(listened: &[(imp::Kind, Signal)]) -> io::Result<Listeners> {
        let listening = listened
            .iter()
            .map(|&(kind, signal)| Ok((imp::listen(kind)?, signal)))
            .collect::<io::Result<_>>()?;
        Ok(Listeners { listening })
    }
}

impl SignalSource for Listeners {
    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Signal> {
        self.listening
            .iter_mut()
            .find_map(|(listener, signal)| imp::poll(listener, cx).then_some(*signal))
            .map_or(Poll::Pending, Poll::Ready)
    }
}

impl fmt::Debug for Listeners {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let signals: Vec<_> = self.listening.iter().map(|(_, signal)| signal).collect();
        f.debug_struct("Listeners")
            .field("signals", &signals)
            .finish()
    }
}

#[cfg(unix)]
mod imp {
    use actix_rt::signal::unix::{Signal as Unix, SignalKind, signal};
    use graceful_core::Signal;
    use std::io;
    use std::task::{Context, Poll};

    pub(crate) type Listener = Unix;

    /// How to make a listener's kind: `SignalKind`'s constructors.
    pub(crate) type Kind = fn() -> SignalKind;

    pub(crate) const LISTENED: &[(Kind, Signal)] = &[
        (SignalKind::terminate, Signal::TERM),
        (SignalKind::interrupt, Signal::INT),
    ];

    #[cfg(feature = "upgrade")]
    pub(crate) const HANGUP: &[(Kind, Signal)] = &[(SignalKind::hangup, Signal::HUP)];

    pub(crate) fn listen(kind: Kind) -> io::Result<Listener> {
        signal(kind())
    }

    pub(crate) fn poll(listener: &mut Listener, cx: &mut Context<'_>) -> bool {
        matches!(listener.poll_recv(cx), Poll::Ready(Some(())))
    }
}

#[cfg(not(unix))]
mod imp {
    use graceful_core::Signal;
    use std::future::Future;
    use std::io;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    /// Ctrl+C, made again after each arrival to hear the next one.
    pub(crate) type Listener = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

    /// Ctrl+C needs no kind.
    pub(crate) type Kind = ();

    pub(crate) const LISTENED: &[(Kind, Signal)] = &[((), Signal::INT)];

    pub(crate) fn listen((): ()) -> io::Result<Listener> {
        Ok(Box::pin(actix_rt::signal::ctrl_c()))
    }

    pub(crate) fn poll(listener: &mut Listener, cx: &mut Context<'_>) -> bool {
        let arrived = matches!(listener.as_mut().poll(cx), Poll::Ready(Ok(())));
        if arrived {
            *listener = Box::pin(actix_rt::signal::ctrl_c());
        }
        arrived
    }
}
