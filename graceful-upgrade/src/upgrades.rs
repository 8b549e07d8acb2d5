//! What a `SIGHUP` does: the upgrade's steps, as one future the adapters
//! spawn.

use crate::start::{self, Failure, Outcome, READY_TIMEOUT, Starting};
use graceful_core::signal::SignalSource;
use graceful_core::{ListenerToken, Phase, Reached, Shutdown, Signal};
use std::fmt;
use std::future::Future;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// A step of an upgrade, for the program to report (the contract's lines).
///
/// The hand-over itself is the shutdown's [`Event::Requested`] with
/// [`Cause::Upgrade`]: the line `upgrade PID` belongs to the shutdown's
/// observer, which then prints `closed` and the rest of the drain.
///
/// [`Event::Requested`]: graceful_core::Event::Requested
/// [`Cause::Upgrade`]: graceful_core::Cause::Upgrade
#[derive(Debug)]
#[non_exhaustive]
pub enum Progress<'a> {
    /// A `SIGHUP` came: the new process is being started (`upgrading`).
    Upgrading,
    /// It did not come up, and is gone; this process serves on as before
    /// (`upgrade-failed REASON`, with [`Failure::reason`]).
    Failed(&'a Failure),
    /// A `SIGHUP` came while an upgrade was under way, or once the shutdown
    /// had begun: ignored.
    Ignored,
}

type Observe = Box<dyn FnMut(Progress<'_>) + Send>;

/// Upgrades on `SIGHUP`: the future an adapter's `upgrade_on_sighup`
/// returns, to spawn next to the server. See [`Upgrades::new`].
///
/// Resolves once this process has let go of the listeners: the shutdown
/// began (an upgrade's hand-over, or a signal).
///
/// # Cancel safety
///
/// Dropping it releases this process's copies of the listeners and
/// stops upgrading; a new process being started is killed (`SIGKILL`) and
/// left to be reaped when this process exits.
#[must_use = "upgrades happen only while the future is polled"]
pub struct Upgrades<S> {
    shutdown: Shutdown,
    hangups: S,
    /// This process's copies of the listeners, for the next new process;
    /// counted as an open listener, so that `closed` waits for them.
    held: Option<(Vec<OwnedFd>, ListenerToken)>,
    /// The first signal (or the hand-over): an upgrade under way ends.
    stopping: Reached,
    /// The listeners are to close: let go of the copies.
    closing: Reached,
    starting: Option<Starting>,
    cancelled: bool,
    timeout: Duration,
    observe: Observe,
}

impl<S> Unpin for Upgrades<S> {}

impl<S: SignalSource> Upgrades<S> {
    /// Upgrades on each `SIGHUP` from `hangups` (other signals are
    /// ignored): starts a new process of this executable with `listeners`
    /// ([`start`](crate::start)), and when it reports that it serves,
    /// [hands over](Shutdown::hand_over): this process then drains as in
    /// any shutdown, with cause [`Cause::Upgrade`](graceful_core::Cause::Upgrade).
    ///
    /// A new process that exits or is not ready within [`READY_TIMEOUT`] is
    /// killed, and this process serves on; a later `SIGHUP` tries again. A
    /// `SIGHUP` during an upgrade, or once the shutdown has begun, is
    /// ignored. The first signal during an upgrade kills the new process
    /// (before the hand-over, or right after it if its report crossed the
    /// signal), and the shutdown goes on as usual.
    ///
    /// `listeners` are duplicated; the copies count as an open listener of
    /// `shutdown` until it closes its listeners, so `closed` still means
    /// that this process holds none.
    ///
    /// # Errors
    ///
    /// A listener cannot be duplicated, or the shutdown has begun.
    pub fn new<L: AsFd>(
        shutdown: &Shutdown,
        listeners: &[L],
        hangups: S,
        observe: impl FnMut(Progress<'_>) + Send + 'static,
    ) -> io::Result<Upgrades<S>> {
        let fds = listeners
            .iter()
            .map(|listener| listener.as_fd().try_clone_to_owned())
            .collect::<io::Result<Vec<_>>>()?;
        let token = shutdown.track_listener().map_err(io::Error::other)?;
        Ok(Upgrades {
            shutdown: shutdown.clone(),
            hangups,
            closing: token.closing(),
            held: Some((fds, token)),
            stopping: shutdown.reached(Phase::Unready),
            starting: None,
            cancelled: false,
            timeout: READY_TIMEOUT,
            observe: Box::new(observe),
        })
    }

    /// How long a new process has to report that it serves
    /// ([`READY_TIMEOUT`] unless set).
    pub fn ready_timeout(mut self, timeout: Duration) -> Upgrades<S> {
        self.timeout = timeout;
        self
    }

    fn begin(&mut self) {
        let Some((fds, _)) = &self.held else { return };
        (self.observe)(Progress::Upgrading);
        // Best effort, as every notification: outside systemd it does
        // nothing, and a lost one costs only `systemctl`'s view.
        #[cfg(feature = "systemd")]
        let _ = graceful_core::systemd::notify_reloading();
        let fds: Vec<_> = fds.iter().map(AsFd::as_fd).collect();
        match start::start(&fds, self.timeout) {
            Ok(starting) => self.starting = Some(starting),
            Err(failure) => self.failed(&failure),
        }
    }

    /// The attempt failed: this process serves on, as it tells systemd
    /// (the reload is over) and the program.
    fn failed(&mut self, failure: &Failure) {
        #[cfg(feature = "systemd")]
        let _ = graceful_core::systemd::notify_ready();
        (self.observe)(Progress::Failed(failure));
    }

    /// The attempt's outcome, once known: hand over, or report the failure.
    fn settle(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Ready(child) => {
                // A signal that came first wins: that process goes.
                if self.cancelled || !self.shutdown.hand_over(child.id()) {
                    start::kill(child);
                }
            }
            // Cancelled: the shutdown is under way, nothing to report.
            Outcome::Failed(_) if self.cancelled => {}
            Outcome::Failed(failure) => self.failed(&failure),
        }
    }
}

impl<S: SignalSource> Future for Upgrades<S> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        loop {
            if !this.cancelled && Pin::new(&mut this.stopping).poll(cx).is_ready() {
                this.cancelled = true;
                if let Some(starting) = &this.starting {
                    starting.cancel();
                }
            }
            if let Some(starting) = &mut this.starting {
                match starting.poll_outcome(cx) {
                    Poll::Ready(outcome) => {
                        this.starting = None;
                        this.settle(outcome);
                        continue;
                    }
                    // The listeners are not let go while a new process may
                    // still hold them: wait for it to be gone.
                    Poll::Pending if this.cancelled => return Poll::Pending,
                    Poll::Pending => {}
                }
            }
            if Pin::new(&mut this.closing).poll(cx).is_ready() {
                this.held = None;
                return Poll::Ready(());
            }
            let Poll::Ready(signal) = this.hangups.poll_recv(cx) else {
                return Poll::Pending;
            };
            if signal != Signal::HUP {
                continue;
            }
            if this.starting.is_some() || !this.shutdown.is_ready() {
                (this.observe)(Progress::Ignored);
            } else {
                this.begin();
            }
        }
    }
}

impl<S> Drop for Upgrades<S> {
    fn drop(&mut self) {
        if let Some(starting) = &self.starting {
            starting.cancel();
        }
    }
}

impl<S> fmt::Debug for Upgrades<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upgrades")
            .field("holding", &self.held.is_some())
            .field("starting", &self.starting.as_ref().and_then(Starting::pid))
            .finish_non_exhaustive()
    }
}
