//! SIGTERM and SIGINT, forwarded to the shutdown.

use graceful_core::{Cause, Request, Shutdown};
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

/// Listens for SIGTERM and SIGINT (Ctrl+C) and forwards every arrival to
/// [`Shutdown::request`].
///
/// The first one starts the shutdown, whichever it is: unlike actix-web's
/// own handling (which this replaces: serve with [`serve`](crate::serve),
/// or disable `HttpServer`'s with `disable_signals`), SIGINT drains like
/// SIGTERM. The next one forces it, and the returned [`Signals`] future
/// resolves with the exit code that calls for (`128 + N`: 143 for SIGTERM,
/// 130 for SIGINT), so that the program can exit at once, even while a
/// cleanup step holds the driver.
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
/// // A second signal: print what must be printed, and exit at once.
/// actix_web::rt::spawn(async move { std::process::exit(signals.await.into()) });
///
/// # let _ = shutdown.request(graceful_actix::Signal::TERM);
/// let report = graceful_actix::run(driver).await;
/// # assert_eq!(report.exit_code(), 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
pub fn signals(shutdown: &Shutdown) -> io::Result<Signals> {
    Ok(Signals {
        shutdown: shutdown.clone(),
        listeners: imp::Listeners::new()?,
    })
}

/// Forwards SIGTERM and SIGINT to a shutdown; resolves with the exit code
/// when one of them forced it. See [`signals`].
///
/// # Cancel safety
///
/// Cancel safe: a signal that arrives while it is not being polled is
/// forwarded at the next poll (of this future, or of a new one made by
/// [`signals`]). Once it is dropped for good, signals are still caught but
/// no longer forwarded.
#[must_use = "signals are forwarded only while the future is polled"]
pub struct Signals {
    shutdown: Shutdown,
    listeners: imp::Listeners,
}

impl Future for Signals {
    type Output = u8;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u8> {
        let this = self.get_mut();
        loop {
            let signal = ready!(this.listeners.poll_recv(cx));
            match this.shutdown.request(signal) {
                Request::Forced => return Poll::Ready(Cause::from(signal).forced_exit_code()),
                // The first signal, or one after the end: nothing to do
                // here, the driver carries on.
                Request::Started | Request::AlreadyFinished => {}
            }
        }
    }
}

impl fmt::Debug for Signals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signals")
            .field("shutdown", &self.shutdown)
            .finish_non_exhaustive()
    }
}

#[cfg(unix)]
mod imp {
    use actix_rt::signal::unix::{Signal as Listener, SignalKind, signal};
    use graceful_core::Signal;
    use std::io;
    use std::task::{Context, Poll};

    pub(super) struct Listeners {
        term: Listener,
        int: Listener,
    }

    impl Listeners {
        pub(super) fn new() -> io::Result<Listeners> {
            Ok(Listeners {
                term: signal(SignalKind::terminate())?,
                int: signal(SignalKind::interrupt())?,
            })
        }

        pub(super) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Signal> {
            // `None` means the runtime is shutting down: nothing more will
            // arrive, so stay pending.
            if let Poll::Ready(Some(())) = self.term.poll_recv(cx) {
                return Poll::Ready(Signal::TERM);
            }
            if let Poll::Ready(Some(())) = self.int.poll_recv(cx) {
                return Poll::Ready(Signal::INT);
            }
            Poll::Pending
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

    pub(super) struct Listeners {
        ctrl_c: CtrlC,
    }

    impl Listeners {
        pub(super) fn new() -> io::Result<Listeners> {
            Ok(Listeners {
                ctrl_c: Box::pin(actix_rt::signal::ctrl_c()),
            })
        }

        pub(super) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Signal> {
            match self.ctrl_c.as_mut().poll(cx) {
                Poll::Ready(Ok(())) => {
                    // Listen again for the next one.
                    self.ctrl_c = Box::pin(actix_rt::signal::ctrl_c());
                    Poll::Ready(Signal::INT)
                }
                Poll::Ready(Err(_)) | Poll::Pending => Poll::Pending,
            }
        }
    }
}
