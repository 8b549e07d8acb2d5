//! The accept loop every adapter runs (feature `net`): accept until the
//! shutdown closes the listener, read the kernel's queue to the end, close
//! the socket, and only then let the shutdown know it is closed.
//!
//! # Design
//!
//! **One loop, a tiny seam.** The rules of a listener's life are the same
//! on every runtime, so they are written once, in [`AcceptLoop`]; a runtime
//! provides only [`Accept`]: "poll for the next connection", "give back the
//! std socket, out of the reactor" and "adopt a connection std's `accept`
//! returned", plus a callback that starts serving a connection.
//!
//! **"Closed" means closed.** The listener's [`ListenerToken`] is dropped
//! only after the socket is closed, on every path out of the loop: the
//! shutdown closing it, the callback failing, the socket failing to leave
//! the reactor. The loop owns both, and [`AcceptLoop`] has exactly one
//! place that drops the token, right after the close. So the shutdown's
//! [`Event::Closed`](crate::Event::Closed) is never reported while a
//! connect could still succeed.
//!
//! **Nothing in the queue is reset.** Closing a listener resets the
//! connections the kernel completed and nobody accepted. So on closing the
//! loop takes the socket out of the reactor and hands it to
//! [`listener::close`], which accepts until the
//! call would block (the reactor's readiness may not have seen the last
//! arrivals yet) with new handshakes stopped, and the callback serves those
//! connections like any other: the shutdown is draining, so they are
//! answered `503`.
//!
//! **Errors that are not about one connection back off.** Running out of
//! file descriptors (`EMFILE`, `ENFILE`) and the like would otherwise spin:
//! the loop sleeps [`ACCEPT_BACKOFF`] on the core's [`Timer`], still
//! watching for the shutdown to close the listener.
//!
//! **What the seam will take.** TLS: the handshake belongs in the
//! connection task the callback starts (a slow or hostile client must
//! never hold the accept loop), so the loop stays as it is. Unix sockets:
//! an [`Accept`] whose std socket is a `UnixListener`, with the queue read
//! the same way. Inherited or shared sockets (systemd, a supervisor's
//! `SO_REUSEPORT` group): another process may still accept on them, so they
//! must not get the drop-all socket filter. An upgrade's hand-over
//! ([`Shutdown::hand_over`](crate::Shutdown::hand_over)) is such a case: the
//! loop then [releases](listener::release) its copy of the socket, without
//! the filter and without reading the queue, which the new process accepts
//! from.

use crate::listener::{self, is_per_connection};
use crate::{ListenerToken, Reached, Sleep, Timer};
use std::fmt;
use std::future::Future;
use std::io;
use std::net::{TcpListener, TcpStream};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// How long the loop waits after an accept error that is not about one
/// connection (running out of file descriptors, typically) before trying
/// again: long enough for connections to end and give some back, short
/// enough not to be noticed when the error was transient.
pub const ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// A runtime's listening socket, as [`AcceptLoop`] uses it.
pub trait Accept: Sized {
    /// An accepted connection, as the runtime serves it.
    type Conn;

    /// The next connection, registering `cx`'s waker when none is ready.
    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Self::Conn>>;

    /// The socket, out of the runtime's reactor and still non-blocking, for
    /// its queue to be read with std's `accept` and then closed.
    ///
    /// # Errors
    ///
    /// When it cannot leave the reactor; the socket must be closed then.
    fn into_std(self) -> io::Result<TcpListener>;

    /// A connection taken from the queue by std's `accept`, which returns
    /// blocking sockets, made one of the runtime's.
    ///
    /// # Errors
    ///
    /// When the runtime cannot take it: it is dropped, and the rest of the
    /// queue is still read.
    fn adopt(stream: TcpStream) -> io::Result<Self::Conn>;
}

/// Runs the accept loop on `listener` until the shutdown closes it,
/// starting each connection with `serve`. See the module's design notes.
///
/// `serve` starts serving one connection (spawns its task, or hands it to a
/// worker). An error from it means no connection can be served any more
/// (every worker is gone): the loop stops accepting, closes the listener
/// and resolves with that error.
pub fn accept<L, T, F>(listener: L, token: ListenerToken, timer: T, serve: F) -> AcceptLoop<L, T, F>
where
    L: Accept,
    T: Timer,
    F: FnMut(L::Conn) -> io::Result<()>,
{
    AcceptLoop {
        closing: token.closing(),
        listener: Some(listener),
        token: Some(token),
        timer,
        backoff: None,
        serve,
    }
}

/// A listener being served. See [`accept`].
///
/// Resolves once the listener is closed and its token dropped: `Ok` when
/// the shutdown closed it, `Err` when `serve` failed or the socket could
/// not leave the reactor (closed either way).
///
/// # Cancel safety
///
/// Dropping it before it resolves closes the listener at once, without
/// reading its queue (the kernel resets those connections), and then drops
/// the token: still in that order. Connections already accepted go on
/// being served. To stop serving cleanly, let the shutdown close it.
#[must_use = "futures do nothing unless polled"]
pub struct AcceptLoop<L, T, F> {
    // Declared before `token`: on a drop before the end, the socket closes
    // first (fields drop in declaration order).
    listener: Option<L>,
    token: Option<ListenerToken>,
    closing: Reached,
    timer: T,
    backoff: Option<Sleep>,
    serve: F,
}

// Nothing in it is ever pinned: the listener is polled through `&mut`, and
// the futures it holds (`Reached`, the boxed `Sleep`) are `Unpin`.
impl<L, T, F> Unpin for AcceptLoop<L, T, F> {}

impl<L, T, F> AcceptLoop<L, T, F>
where
    L: Accept,
    F: FnMut(L::Conn) -> io::Result<()>,
{
    /// Accepts until the listener is to close (`Ok`) or `serve` failed.
    fn poll_accepting(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>
    where
        T: Timer,
    {
        let Some(listener) = &mut self.listener else {
            return Poll::Ready(Ok(()));
        };
        loop {
            // Closing first: once the shutdown drains, nothing more is
            // accepted here; the queue is read by `close` instead.
            if Pin::new(&mut self.closing).poll(cx).is_ready() {
                return Poll::Ready(Ok(()));
            }
            if let Some(sleep) = &mut self.backoff {
                if sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                self.backoff = None;
            }
            match listener.poll_accept(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(conn)) => (self.serve)(conn)?,
                Poll::Ready(Err(error)) if is_per_connection(&error) => {}
                Poll::Ready(Err(error)) => {
                    log::accept_error(&error);
                    self.backoff = Some(self.timer.sleep(ACCEPT_BACKOFF));
                }
            }
        }
    }

    /// Reads the queue to the end and closes the socket, then drops the
    /// token: the one place it is dropped before the loop is.
    fn close(&mut self, accepting: io::Result<()>) -> io::Result<()> {
        let closed = match self.listener.take().map(Accept::into_std) {
            None => Ok(()),
            Some(Err(error)) => Err(error),
            // `serve` failed: nothing more can be served, close at once.
            Some(Ok(std)) if accepting.is_err() => {
                drop(std);
                Ok(())
            }
            // An upgrade handed the socket over, or it is shared with a
            // process that keeps it (systemd's socket activation): the
            // other process accepts from the same queue, so this process
            // only lets go of its copy.
            Some(Ok(std)) if self.token.as_ref().is_some_and(is_handed_over) || is_shared(&std) => {
                listener::release(std);
                Ok(())
            }
            Some(Ok(std)) => {
                let serve = &mut self.serve;
                let mut failed = None;
                let read = listener::close(std, |stream| match L::adopt(stream) {
                    Ok(conn) => serve(conn).map_err(|error| {
                        failed = Some(error);
                        io::Error::other("serve failed")
                    }),
                    Err(error) => {
                        log::accept_error(&error);
                        Ok(())
                    }
                });
                match (failed, read) {
                    (Some(error), _) => Err(error),
                    // An accept error cut the reading short: the rest of
                    // the queue is reset, as on any close, and the
                    // listener is closed all the same.
                    (None, Err(error)) => {
                        log::accept_error(&error);
                        Ok(())
                    }
                    (None, Ok(())) => Ok(()),
                }
            }
        };
        // Only now: `Closed` is reported once every token is gone.
        drop(self.token.take());
        accepting.and(closed)
    }
}

/// Whether [`listener::mark_shared`] marked the socket.
#[cfg(unix)]
fn is_shared(std: &std::net::TcpListener) -> bool {
    listener::is_shared(std)
}

#[cfg(not(unix))]
fn is_shared(_: &std::net::TcpListener) -> bool {
    false
}

/// Whether the shutdown is an upgrade's: the socket lives on in the new
/// process.
fn is_handed_over(token: &ListenerToken) -> bool {
    token
        .shutdown()
        .cause()
        .is_some_and(|cause| cause.is_upgrade())
}

impl<L, T, F> Future for AcceptLoop<L, T, F>
where
    L: Accept,
    T: Timer,
    F: FnMut(L::Conn) -> io::Result<()>,
{
    type Output = io::Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let accepting = std::task::ready!(this.poll_accepting(cx));
        Poll::Ready(this.close(accepting))
    }
}

impl<L, T, F> fmt::Debug for AcceptLoop<L, T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AcceptLoop")
            .field("open", &self.listener.is_some())
            .field("backing_off", &self.backoff.is_some())
            .finish_non_exhaustive()
    }
}

/// Logging through `tracing` with the `tracing` feature, nothing without.
mod log {
    #[cfg(feature = "tracing")]
    pub(super) fn accept_error(error: &std::io::Error) {
        tracing::warn!(%error, "accept failed");
    }

    #[cfg(not(feature = "tracing"))]
    pub(super) fn accept_error(_: &std::io::Error) {}
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::{ManualClock, Phase, Shutdown, Signal};
    use std::cell::Cell;
    use std::rc::Rc;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::task::{Wake, Waker};

    /// A std listener polled directly (non-blocking), as a reactor would.
    struct Plain(TcpListener);

    impl Accept for Plain {
        type Conn = TcpStream;

        fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<TcpStream>> {
            match self.0.accept() {
                Ok((stream, _)) => Poll::Ready(Ok(stream)),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
                Err(error) => Poll::Ready(Err(error)),
            }
        }

        fn into_std(self) -> io::Result<TcpListener> {
            Ok(self.0)
        }

        fn adopt(stream: TcpStream) -> io::Result<TcpStream> {
            Ok(stream)
        }
    }

    fn bound() -> (Plain, std::net::SocketAddr) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        (Plain(listener), addr)
    }

    /// A waker that, when woken, checks whether `addr` still takes
    /// connections: the token's drop wakes the shutdown's waiters, so this
    /// sees what a `Closed` observer would see at that instant.
    struct OpenAtWake {
        addr: std::net::SocketAddr,
        woken: AtomicBool,
        open: AtomicBool,
    }

    impl Wake for OpenAtWake {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }

        fn wake_by_ref(self: &Arc<Self>) {
            self.woken.store(true, Ordering::SeqCst);
            if TcpStream::connect(self.addr).is_ok() {
                self.open.store(true, Ordering::SeqCst);
            }
        }
    }

    #[test]
    fn a_failing_serve_closes_the_socket_before_the_token_goes() {
        let shutdown = Shutdown::builder().build().expect("build").handle();
        let (listener, addr) = bound();
        let token = shutdown.track_listener().expect("track");
        let watcher = Arc::new(OpenAtWake {
            addr,
            woken: AtomicBool::new(false),
            open: AtomicBool::new(false),
        });
        // Registered on the shutdown's wait list, woken by the token's drop.
        let mut finished = shutdown.reached(Phase::Finished);
        let waker = Waker::from(watcher.clone());
        let mut cx = Context::from_waker(&waker);
        assert!(Pin::new(&mut finished).poll(&mut cx).is_pending());

        let _client = TcpStream::connect(addr).expect("connect");
        let mut accept = accept(listener, token, ManualClock::new(), |_| {
            Err(io::Error::other("no worker"))
        });
        let mut noop = Context::from_waker(Waker::noop());
        let result = loop {
            if let Poll::Ready(result) = Pin::new(&mut accept).poll(&mut noop) {
                break result;
            }
        };
        assert_eq!(result.unwrap_err().to_string(), "no worker");
        assert!(
            watcher.woken.load(Ordering::SeqCst),
            "the token was dropped"
        );
        assert!(
            !watcher.open.load(Ordering::SeqCst),
            "the token went while the socket still took connections"
        );
    }

    #[test]
    fn closing_serves_the_queue_then_refuses() {
        let driver = Shutdown::builder().build().expect("build");
        let shutdown = driver.handle();
        let (listener, addr) = bound();
        let token = shutdown.track_listener().expect("track");
        let served = Rc::new(Cell::new(0));
        let mut accept = accept(listener, token, ManualClock::new(), {
            let served = served.clone();
            move |_| {
                served.set(served.get() + 1);
                Ok(())
            }
        });
        let mut cx = Context::from_waker(Waker::noop());
        let _first = TcpStream::connect(addr).expect("connect");
        while served.get() == 0 {
            assert!(Pin::new(&mut accept).poll(&mut cx).is_pending());
        }
        // Completed by the kernel while the shutdown starts, never accepted
        // by the loop: the close takes them.
        let _queued: Vec<TcpStream> = (0..3)
            .map(|_| TcpStream::connect(addr).expect("connect"))
            .collect();
        let _ = shutdown.request(Signal::TERM);
        let mut run = driver.run(ManualClock::new());
        assert!(
            Pin::new(&mut run).poll(&mut cx).is_pending(),
            "not closed yet"
        );
        assert_eq!(shutdown.phase(), Phase::Draining);
        let Poll::Ready(result) = Pin::new(&mut accept).poll(&mut cx) else {
            panic!("the loop did not close on draining");
        };
        result.expect("closed");
        assert_eq!(served.get(), 4);
        assert!(TcpStream::connect(addr).is_err());
        assert!(
            Pin::new(&mut run).poll(&mut cx).is_ready(),
            "closed, drained"
        );
    }

    #[test]
    #[cfg(unix)]
    fn a_shared_socket_is_released_and_its_other_copy_serves_on() {
        let driver = Shutdown::builder().build().expect("build");
        let shutdown = driver.handle();
        let (listener, addr) = bound();
        // systemd's copy, which outlives this process's.
        let systemd = listener.0.try_clone().expect("clone");
        listener::mark_shared(&listener.0).expect("mark");
        let token = shutdown.track_listener().expect("track");
        let served = Rc::new(Cell::new(0));
        let mut accept = accept(listener, token, ManualClock::new(), {
            let served = served.clone();
            move |_| {
                served.set(served.get() + 1);
                Ok(())
            }
        });
        let mut cx = Context::from_waker(Waker::noop());
        assert!(Pin::new(&mut accept).poll(&mut cx).is_pending());
        // Queued for the next instance: not this process's to take.
        let _queued = TcpStream::connect(addr).expect("connect");
        let _ = shutdown.request(Signal::TERM);
        let mut run = driver.run(ManualClock::new());
        assert!(Pin::new(&mut run).poll(&mut cx).is_pending());
        let Poll::Ready(result) = Pin::new(&mut accept).poll(&mut cx) else {
            panic!("the loop did not let go on draining");
        };
        result.expect("released");
        assert_eq!(served.get(), 0, "the queue is left to the other copy");
        // No drop-all filter: the other copy takes the queued connection
        // and new ones.
        systemd.set_nonblocking(false).expect("blocking");
        let _later = TcpStream::connect(addr).expect("a connect after the release");
        assert!(systemd.accept().is_ok() && systemd.accept().is_ok());
    }
}
