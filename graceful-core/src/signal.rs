//! Signals forwarded to the shutdown, and the one way to wait for either
//! the report or a forced exit.
//!
//! Every adapter forwards SIGTERM and SIGINT the same way: each arrival is
//! a [`Shutdown::request`]; the first starts the shutdown, the next forces
//! it, and the program then exits with `128 + N`. The loop lives here once,
//! behind [`SignalSource`], the one thing a runtime provides: "the next
//! signal that arrived". The adapters' `signals(&shutdown)` wrap their
//! runtime's listeners in a [`Signals`].
//!
//! [`Run::with_signals`] is the idiom the adapters' documentation teaches,
//! the same on every runtime:
//!
//! ```text
//! let report = graceful_tokio::run(driver).with_signals(signals).await;
//! std::process::ExitCode::from(report.exit_code())
//! ```
//!
//! It resolves to the [`Report`] whether the drain finished or a second
//! signal forced it (the driver resolves at once when forced, with exit
//! code `128 + N`), so no program needs a `select!` of its own.

use crate::{Cause, Report, Request, Run, Shutdown, Signal};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Where a runtime's signals come from: the adapters implement it on
/// their runtime's listeners (tokio's, async-signal's, actix-rt's).
pub trait SignalSource {
    /// The next signal that arrived, registering `cx`'s waker when none
    /// has. A source that can receive nothing more stays pending.
    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Signal>;
}

/// Forwards every signal of its source to [`Shutdown::request`]; resolves
/// with the exit code (`128 + N`) when one of them forced the shutdown.
///
/// Made by the adapters' `signals(&shutdown)`, or by [`Signals::new`] for
/// a source of your own. Await it next to the driver with
/// [`Run::with_signals`].
///
/// # Cancel safety
///
/// Cancel safe, as far as its source is: a signal that arrives while it is
/// not polled is forwarded at the next poll. Once it is dropped, signals
/// are no longer forwarded.
///
/// # Examples
///
/// ```
/// use graceful_core::signal::{SignalSource, Signals};
/// use graceful_core::{Shutdown, Signal};
/// use std::collections::VecDeque;
/// use std::task::{Context, Poll};
///
/// struct Queue(VecDeque<Signal>);
///
/// impl SignalSource for Queue {
///     fn poll_recv(&mut self, _: &mut Context<'_>) -> Poll<Signal> {
///         self.0.pop_front().map_or(Poll::Pending, Poll::Ready)
///     }
/// }
///
/// let shutdown = Shutdown::builder().build()?.handle();
/// let signals = Signals::new(&shutdown, Queue(VecDeque::from([Signal::TERM, Signal::INT])));
/// // The first starts the shutdown, the second forces it: exit with 130.
/// assert_eq!(futures_lite::future::block_on(signals), 130);
/// assert!(shutdown.is_forced());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "signals are forwarded only while the future is polled"]
pub struct Signals<S> {
    shutdown: Shutdown,
    source: S,
}

impl<S: SignalSource> Signals<S> {
    /// Forwards `source`'s signals to `shutdown`.
    pub fn new(shutdown: &Shutdown, source: S) -> Signals<S> {
        Signals {
            shutdown: shutdown.clone(),
            source,
        }
    }

    /// The shutdown the signals go to.
    pub fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }
}

impl<S: SignalSource + Unpin> Future for Signals<S> {
    type Output = u8;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u8> {
        let this = self.get_mut();
        loop {
            let Poll::Ready(signal) = this.source.poll_recv(cx) else {
                return Poll::Pending;
            };
            match this.shutdown.request(signal) {
                Request::Forced => return Poll::Ready(Cause::from(signal).forced_exit_code()),
                // The first signal, or one after the end: the driver
                // carries on.
                Request::Started | Request::AlreadyFinished => {}
            }
        }
    }
}

impl<S> fmt::Debug for Signals<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signals")
            .field("shutdown", &self.shutdown)
            .finish_non_exhaustive()
    }
}

impl Run {
    /// Runs the shutdown while forwarding `signals` to it: resolves to the
    /// [`Report`] when the drain and cleanup finished, or at once when a
    /// second signal forced the shutdown (the report's exit code is then
    /// `128 + N`).
    ///
    /// `signals` is any future that forwards signals and resolves when one
    /// forced the shutdown: an adapter's `signals(&shutdown)?`, a
    /// [`Signals`], or [`std::future::pending`] for none.
    pub fn with_signals<F>(self, signals: F) -> WithSignals<F>
    where
        F: Future<Output = u8> + Unpin,
    {
        WithSignals {
            run: self,
            signals: Some(signals),
        }
    }
}

/// The shutdown run with its signals forwarded. See [`Run::with_signals`].
///
/// # Cancel safety
///
/// Not cancel safe, like [`Run`]: dropping it stops the shutdown where it
/// stands, and stops forwarding signals.
#[must_use = "futures do nothing unless polled"]
pub struct WithSignals<F> {
    run: Run,
    /// `None` once a signal forced the shutdown: the driver resolves at
    /// its next poll, and nothing is left to forward.
    signals: Option<F>,
}

impl<F: Future<Output = u8> + Unpin> Future for WithSignals<F> {
    type Output = Report;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Report> {
        let this = self.get_mut();
        // Signals first, so that a forcing signal that arrived with the
        // driver's last wake-up is in the report.
        if let Some(signals) = &mut this.signals
            && Pin::new(signals).poll(cx).is_ready()
        {
            this.signals = None;
        }
        Pin::new(&mut this.run).poll(cx)
    }
}

impl<F> fmt::Debug for WithSignals<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WithSignals")
            .field("forced", &self.signals.is_none())
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::{DrainOutcome, ManualClock};
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};

    /// Signals pushed by the test, woken like a runtime's.
    #[derive(Clone, Default)]
    struct Pushed(Arc<Mutex<(VecDeque<Signal>, Option<std::task::Waker>)>>);

    impl Pushed {
        fn push(&self, signal: Signal) {
            let mut queue = self.0.lock().unwrap();
            queue.0.push_back(signal);
            if let Some(waker) = queue.1.take() {
                waker.wake();
            }
        }
    }

    impl SignalSource for Pushed {
        fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Signal> {
            let mut queue = self.0.lock().unwrap();
            match queue.0.pop_front() {
                Some(signal) => Poll::Ready(signal),
                None => {
                    queue.1 = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        }
    }

    fn poll_once<F: Future + Unpin>(future: &mut F) -> Option<F::Output> {
        futures_lite::future::block_on(futures_lite::future::poll_once(future))
    }

    #[test]
    fn a_second_signal_resolves_with_the_forced_report() {
        let driver = Shutdown::builder().build().expect("build");
        let shutdown = driver.handle();
        let _guard = shutdown.enter().expect("enter"); // never finishes
        let source = Pushed::default();
        let mut run = driver
            .run(ManualClock::new())
            .with_signals(Signals::new(&shutdown, source.clone()));
        assert!(poll_once(&mut run).is_none());
        source.push(Signal::TERM);
        assert!(poll_once(&mut run).is_none(), "draining, one in flight");
        assert!(!shutdown.is_ready());
        source.push(Signal::INT);
        let report = poll_once(&mut run).expect("forced: resolved at once");
        assert_eq!(report.exit_code(), 130);
        assert_eq!(report.drain(), DrainOutcome::Interrupted(1));
    }

    #[test]
    fn a_finished_drain_resolves_with_its_report() {
        let driver = Shutdown::builder().build().expect("build");
        let shutdown = driver.handle();
        let source = Pushed::default();
        let run = driver
            .run(ManualClock::new())
            .with_signals(Signals::new(&shutdown, source.clone()));
        source.push(Signal::TERM);
        let report = futures_lite::future::block_on(run);
        assert_eq!(report.exit_code(), 0);
        assert_eq!(report.cause(), &Cause::from(Signal::TERM));
    }
}
