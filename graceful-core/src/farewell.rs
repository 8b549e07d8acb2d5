//! The going-away handshake of a WebSocket, written once for every
//! WebSocket library: [`Farewell`], driven through the [`CloseHandshake`]
//! seam the adapters implement (graceful-hyper for tungstenite's sockets,
//! graceful-actix for actix-ws).
//!
//! A WebSocket never ends by itself, and once upgraded it is no longer a
//! request, so a drain would neither wait for it nor end it. A socket read
//! through a [`Farewell`]:
//!
//! - while open, holds a guard: it is in progress, and the drain deadline
//!   bounds it;
//! - at the going-away moment (`closed`: see [`GoingAway`]) is sent a Close
//!   frame with code 1001 (going away), and from then on delivers no
//!   message that arrives (so a handler echoing what it reads echoes
//!   nothing after it);
//! - when the client answers with its Close frame, or [`CLOSE_BOUND`] after
//!   the server's, whichever comes first, is dropped (closing the TCP
//!   connection), gives its guard back, and ends.
//!
//! Design decision: the seam is four methods, not `Stream + Sink`, so the
//! core depends on no WebSocket library and on no sink trait, and a library
//! whose reading and writing halves are apart (actix-ws) fits as well as
//! one socket that is both (tungstenite).

use crate::going_away::GoingAway;
use crate::guard::OwnedGuard;
use crate::shutdown::Shutdown;
use crate::sync::Arc;
use crate::timer::{Sleep, Timer};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

/// How long after the server's Close frame the connection is closed when
/// the client has not answered it.
pub const CLOSE_BOUND: Duration = Duration::from_secs(1);

/// What a [`Farewell`] needs of a WebSocket: its next message, sending the
/// Close frame 1001, and telling a Close frame apart.
pub trait CloseHandshake {
    /// One message.
    type Message;
    /// What reading or writing fails with.
    type Error;

    /// The next message that arrived; `None` once the connection is over.
    fn poll_message(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Self::Message, Self::Error>>>;

    /// Queues a Close frame with code 1001 (going away), once the socket
    /// can take it.
    fn poll_send_going_away(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), Self::Error>>;

    /// Writes out what is queued.
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>>;

    /// Whether `message` is a Close frame.
    fn is_close(message: &Self::Message) -> bool;
}

/// Where a socket is in its going-away handshake.
enum State {
    /// Delivering messages.
    Open,
    /// The going-away moment came: the Close frame is to be sent.
    Closing,
    /// The Close frame is queued: waiting for the client's, or the bound.
    Closed(Sleep),
    /// The socket is dropped and the guard given back.
    Done,
}

/// A WebSocket's going-away handshake: see the [module's
/// documentation](self). The adapters' socket types hold one beside the
/// socket, and read the socket through [`Farewell::poll_next`].
pub struct Farewell {
    going_away: GoingAway,
    guard: Option<OwnedGuard>,
    timer: Arc<dyn Timer>,
    state: State,
}

impl fmt::Debug for Farewell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Open => "open",
            State::Closing => "closing",
            State::Closed(_) => "closed",
            State::Done => "done",
        };
        f.debug_struct("Farewell")
            .field("state", &state)
            .field("guarded", &self.guard.is_some())
            .finish_non_exhaustive()
    }
}

impl Farewell {
    /// The handshake of a socket of `shutdown` that holds `guard` while
    /// open (take it with [`Shutdown::enter_owned`] in the upgrade
    /// request's handler, before the `101`, so that the drain cannot end
    /// between the request and the socket); `timer` bounds the wait for the
    /// client's Close frame. Without a guard (the shutdown refused new
    /// work) the socket is sent its Close frame at once.
    pub fn new(shutdown: &Shutdown, timer: Arc<dyn Timer>, guard: Option<OwnedGuard>) -> Farewell {
        let state = if guard.is_some() {
            State::Open
        } else {
            State::Closing
        };
        Farewell {
            going_away: shutdown.going_away(),
            guard,
            timer,
            state,
        }
    }

    /// The handshake of a socket of `shutdown` that needs no guard of its
    /// own: its upgrade request's guard covers it, because the request's
    /// response lasts as long as the socket (actix-ws's streaming `101`).
    pub fn covered(shutdown: &Shutdown, timer: Arc<dyn Timer>) -> Farewell {
        Farewell {
            going_away: shutdown.going_away(),
            guard: None,
            timer,
            state: State::Open,
        }
    }

    /// Whether the socket still delivers messages, and takes the handler's:
    /// the going-away moment has not come.
    pub fn is_open(&self) -> bool {
        matches!(self.state, State::Open)
    }

    fn finish<S>(&mut self, socket: &mut Option<S>) {
        *socket = None;
        self.guard = None;
        self.state = State::Done;
    }

    /// The next message of `socket` for the handler, going away at the
    /// moment: the Close frame is queued and flushed, what arrives after it
    /// is not delivered, and once the client's Close frame arrives, or
    /// [`CLOSE_BOUND`] has passed, `socket` is set to `None` (dropped) and
    /// this returns `None`, as it does once the connection is over.
    pub fn poll_next<S: CloseHandshake + Unpin>(
        &mut self,
        socket: &mut Option<S>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<S::Message, S::Error>>> {
        loop {
            let Some(open) = socket.as_mut() else {
                self.finish(socket);
                return Poll::Ready(None);
            };
            let mut open = Pin::new(open);
            match &mut self.state {
                State::Open => {
                    if Pin::new(&mut self.going_away).poll(cx).is_ready() {
                        self.state = State::Closing;
                        continue;
                    }
                    match ready!(open.poll_message(cx)) {
                        Some(message) => return Poll::Ready(Some(message)),
                        // The client went first, and its Close is answered.
                        None => self.finish(socket),
                    }
                }
                State::Closing => match ready!(open.poll_send_going_away(cx)) {
                    Ok(()) => self.state = State::Closed(self.timer.sleep(CLOSE_BOUND)),
                    Err(_) => self.finish(socket),
                },
                State::Closed(bound) => {
                    if bound.as_mut().poll(cx).is_ready() {
                        self.finish(socket);
                        continue;
                    }
                    if let Poll::Ready(Err(_)) = open.as_mut().poll_flush(cx) {
                        self.finish(socket);
                        continue;
                    }
                    match ready!(open.poll_message(cx)) {
                        // Not delivered: the socket is going away.
                        Some(Ok(message)) if !S::is_close(&message) => {}
                        _ => self.finish(socket),
                    }
                }
                State::Done => return Poll::Ready(None),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ManualClock, Signal};
    use std::collections::VecDeque;
    use std::task::Waker;

    /// A socket of text messages (`"close"` is the Close frame) that
    /// records what was sent.
    #[derive(Default)]
    struct Fake {
        incoming: VecDeque<&'static str>,
        sent: Vec<&'static str>,
    }

    impl CloseHandshake for Fake {
        type Message = &'static str;
        type Error = ();

        fn poll_message(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<&'static str, ()>>> {
            match self.get_mut().incoming.pop_front() {
                Some(message) => Poll::Ready(Some(Ok(message))),
                None => Poll::Pending,
            }
        }

        fn poll_send_going_away(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), ()>> {
            self.get_mut().sent.push("close 1001");
            Poll::Ready(Ok(()))
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), ()>> {
            Poll::Ready(Ok(()))
        }

        fn is_close(message: &&'static str) -> bool {
            *message == "close"
        }
    }

    fn poll(farewell: &mut Farewell, socket: &mut Option<Fake>) -> Poll<Option<&'static str>> {
        let mut cx = Context::from_waker(Waker::noop());
        farewell
            .poll_next(socket, &mut cx)
            .map(|next| next.map(|message| message.unwrap()))
    }

    /// A shutdown, its driver's run on `clock`, and a guarded farewell.
    fn open(clock: &ManualClock) -> (Shutdown, crate::Run, Farewell) {
        let driver = Shutdown::builder().quiet().build().unwrap();
        let shutdown = driver.handle();
        let farewell = Farewell::new(
            &shutdown,
            Arc::new(clock.clone()),
            shutdown.enter_owned().ok(),
        );
        (shutdown, driver.run(clock.clone()), farewell)
    }

    fn step(run: &mut crate::Run) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        Pin::new(run).poll(&mut cx).is_ready()
    }

    #[test]
    fn messages_flow_until_closed_then_close_1001_and_the_clients_close_ends_it() {
        let clock = ManualClock::new();
        let (shutdown, mut run, mut farewell) = open(&clock);
        let mut socket = Some(Fake::default());
        socket.as_mut().unwrap().incoming.push_back("a");
        assert_eq!(poll(&mut farewell, &mut socket), Poll::Ready(Some("a")));
        assert_eq!(poll(&mut farewell, &mut socket), Poll::Pending);
        assert_eq!(shutdown.in_flight(), 1);

        let _ = shutdown.request(Signal::TERM);
        assert!(!step(&mut run), "the socket holds the drain");
        socket.as_mut().unwrap().incoming.extend(["late", "close"]);
        // The Close frame goes out; "late" is not delivered; the client's
        // Close ends it.
        assert_eq!(poll(&mut farewell, &mut socket), Poll::Ready(None));
        assert!(socket.is_none(), "the socket is dropped");
        assert!(!farewell.is_open());
        assert_eq!(shutdown.in_flight(), 0);
        assert!(step(&mut run), "drained");
    }

    #[test]
    fn a_client_that_never_answers_is_dropped_after_the_bound() {
        let clock = ManualClock::new();
        let (shutdown, mut run, mut farewell) = open(&clock);
        let mut socket = Some(Fake::default());
        let _ = shutdown.request(Signal::TERM);
        assert!(!step(&mut run));
        assert_eq!(poll(&mut farewell, &mut socket), Poll::Pending);
        assert_eq!(socket.as_ref().unwrap().sent, ["close 1001"]);
        clock.advance(CLOSE_BOUND - Duration::from_millis(1));
        assert_eq!(poll(&mut farewell, &mut socket), Poll::Pending);
        assert_eq!(shutdown.in_flight(), 1, "in progress until the bound");
        clock.advance(Duration::from_millis(1));
        assert_eq!(poll(&mut farewell, &mut socket), Poll::Ready(None));
        assert!(socket.is_none());
        assert!(step(&mut run), "drained");
    }

    #[test]
    fn without_a_guard_the_close_goes_out_at_once() {
        let clock = ManualClock::new();
        let driver = Shutdown::builder().quiet().build().unwrap();
        let shutdown = driver.handle();
        let mut farewell = Farewell::new(&shutdown, Arc::new(clock.clone()), None);
        let mut socket = Some(Fake::default());
        socket.as_mut().unwrap().incoming.push_back("a");
        assert_eq!(poll(&mut farewell, &mut socket), Poll::Pending);
        assert_eq!(socket.as_ref().unwrap().sent, ["close 1001"]);
    }
}
