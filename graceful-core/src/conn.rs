//! One connection's requests: in progress until the flush after their last
//! byte, and what a server closes at the drain deadline.
//!
//! Every HTTP server built on the core applies the same two rules to a
//! connection, whatever its runtime, its HTTP library or (later) its
//! protocol:
//!
//! 1. **A request stays in progress until the flush after its last byte.**
//!    A response body knows when it has handed its last frame to the HTTP
//!    library, but the library then still has to encode that frame and
//!    write it to the socket. Ending the request at the body's end leaves a
//!    window in which the drain completes, cleanup runs and the process
//!    exits with the response's tail still buffered: the client sees a
//!    truncated response for a request the server counted as done (an order
//!    committed, its `201` lost). So the body hands its [`InFlight`] back to
//!    the connection, and the connection lets go of it at the next
//!    successful flush of its io ([`ConnIo::flushed`]), which HTTP/1
//!    libraries attempt only once everything they had buffered is written.
//!    HTTP/2 interleaves streams, and a flush can come before a stream's
//!    last frame is even queued: there the flush releases only as many of
//!    the requests handed back as are no longer open on the wire
//!    ([`ConnIo::flushed_streams`], with the open streams counted by
//!    [`crate::wire::WireStreams`]). When the io is gone ([`ConnIo`]
//!    dropped), nothing will be flushed again and every request still
//!    waiting ends.
//! 2. **A busy connection is closed at the deadline, an idle one never.**
//!    When [`Shutdown::abandoned`] resolves, a connection with a request in
//!    progress ([`Connection::is_busy`]) is closed: its responses cannot
//!    complete any more, and the report counts them as abandoned. An idle
//!    keep-alive connection stays open: a request on it gets a clean `503`
//!    with `Connection: close` ([`RETRY_AFTER_SECONDS`]), where closing it
//!    would give a pooled client that had just picked it a reset or an EOF
//!    it cannot tell from a crash.
//!
//! This module holds both rules with nothing but "a flush succeeded" and
//! "the io is gone" as input, so that hyper's and actix's glue only report
//! those two facts from their own io wrappers.
//!
//! # Design: what a request costs
//!
//! A connection owns one handle on the shutdown ([`Connection`], one `Arc`
//! made when the connection is accepted), and its requests are counted on
//! that handle: a request costs one compare-and-swap on the shutdown's
//! state word (counting it in flight, which the drain and the report
//! need), one increment of the connection's `busy`, and one clone of the
//! connection's own `Arc`, which only that connection's task touches, so it
//! stays in that core's cache. No request takes an `Arc` of the shutdown of
//! its own (an [`OwnedGuard`] would: the connection's handle outlives its
//! requests, so they need none), and none takes a lock or allocates:
//! handing a request back is one atomic add on the connection's `waiting`
//! word, and the flush after it takes every request handed back so far in
//! one swap and ends them with one subtraction on the state word
//! (`State::leave_many`). A flush with nothing handed back is one atomic
//! load more than the flush itself.
//!
//! The `waiting` word is a count and a flag: the requests handed back and
//! not yet flushed (its top bits), and whether the io is gone (its lowest
//! bit). Only the io side clears the count (a flush) or sets the flag (its
//! drop), and the two never run at once ([`ConnIo`] is not `Clone`); a
//! request handed back after the flag is set sees it in the value its add
//! returns and ends at once, as nothing will flush it.
//!
//! The same shape serves HTTP/2: a connection with many streams is one
//! [`Connection`] with one [`InFlight`] per stream, each ending at a
//! flush after its stream's last frame; [`Connection::is_busy`] is true
//! while any stream is. An upgraded connection (a WebSocket) is one
//! request whose body is the session.
//!
//! # Design: which HTTP/2 streams a flush releases
//!
//! A flush knows how many streams are open on the wire (`open`: opened by
//! the client, last frame not yet written whole), not which requests they
//! are: a handed-back request does not know its stream id, and the io
//! wrapper sees frames, not requests. It does know how many requests are
//! waiting (`W`, handed back) and how many are running (`A`, entered and
//! not handed back: `busy - W`). A running request's stream is open on the
//! wire, so of the `open` streams at most `open - A` are waiting ones whose
//! last frame is still unwritten: [`ConnIo::flushed_streams`] keeps
//! `min(W, open - A)` of the waiting requests and releases the rest. Which
//! requests those are does not matter, only how many: they are counted,
//! not named. Invariants:
//!
//! 1. The last request of a connection is released only by a flush that
//!    saw no stream open on the wire, or by the io's end: for `busy` to
//!    reach 0, `A` is 0 and all `W` are released, so `min(W, open)` is 0.
//!    So the drain cannot complete while a stream of a connection that is
//!    still up has a frame left to write.
//! 2. A running request whose stream is no longer open (the client reset
//!    it, or an empty body's `END_STREAM` went out before the request was
//!    handed back) makes `open - A` an undercount, and a waiting request
//!    may be released before its last frame is written. That request's
//!    connection then still has the running one in progress, which by 1
//!    is released only once nothing is open: the drain still waits for
//!    the frame.
//! 3. A stream open on the wire that no request holds (refused, or not yet
//!    handed to the service) only keeps requests in progress longer, until
//!    h2 resets or answers it.

use crate::sync::{Arc, AtomicUsize, Ordering};
use crate::{OwnedGuard, Phase, Refused, Shutdown};
use std::fmt;

/// The `Retry-After` of a request refused because the shutdown drains, in
/// seconds: 1. Every adapter answers with this value.
///
/// A request is refused only once the shutdown drains, when this process's
/// listeners are closing, so the retry goes out on a new connection, which
/// reaches another instance (the load balancer has had the unready delay to
/// take this one out of rotation) or this service's replacement: there is
/// nothing to wait for here. One second is short enough that a client
/// honouring it hardly notices the shutdown, and not zero, which some
/// clients take as "at once", in a tight loop.
pub const RETRY_AFTER_SECONDS: u32 = 1;

/// One connection's share of a [`Shutdown`]: the requests it serves, and
/// whether one of them is still in progress.
///
/// Made with [`Connection::new`], together with the [`ConnIo`] that the
/// connection's io wrapper keeps. Cloning is cheap (one `Arc` of the
/// connection's own); the clones see the same connection.
///
/// # Examples
///
/// ```
/// use graceful_core::Shutdown;
/// use graceful_core::conn::Connection;
///
/// let shutdown = Shutdown::builder().build()?.handle();
/// let (conn, io) = Connection::new(&shutdown);
///
/// let request = conn.enter()?; // a request head was read
/// assert!(conn.is_busy());
/// drop(request); // its body's last frame was handed to the library...
/// assert_eq!(shutdown.in_flight(), 1, "...but not written yet");
/// io.flushed(); // the library flushed the socket
/// assert_eq!(shutdown.in_flight(), 0);
/// assert!(!conn.is_busy());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Connection {
    inner: Arc<ConnInner>,
}

struct ConnInner {
    shutdown: Shutdown,
    /// Requests of this connection whose guard is alive: entered and not
    /// yet released by a flush or the io's end.
    busy: AtomicUsize,
    /// Requests whose last byte was handed to the library and that wait
    /// for a flush, in units of [`WAITING`], and [`CLOSED`] once the io is
    /// gone (see the module's design notes).
    waiting: AtomicUsize,
    /// Successful flushes so far.
    flushes: AtomicUsize,
}

/// The `waiting` flag: the io is gone, nothing will be flushed again.
const CLOSED: usize = 1;
/// One request waiting for a flush, in units of the `waiting` word.
const WAITING: usize = 2;

impl Connection {
    /// A connection of `shutdown`, and the handle its io wrapper keeps to
    /// report flushes (and, when dropped, that the io is gone).
    pub fn new(shutdown: &Shutdown) -> (Connection, ConnIo) {
        let inner = Arc::new(ConnInner {
            shutdown: shutdown.clone(),
            busy: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            flushes: AtomicUsize::new(0),
        });
        let io = ConnIo {
            inner: inner.clone(),
        };
        (Connection { inner }, io)
    }

    /// The shutdown the connection's requests are counted in.
    pub fn shutdown(&self) -> &Shutdown {
        &self.inner.shutdown
    }

    /// Counts one request of this connection in flight, until the flush
    /// that follows the drop of the returned [`InFlight`].
    ///
    /// # Errors
    ///
    /// Refused once the shutdown drains ([`Shutdown::enter`]): answer `503`.
    #[inline]
    pub fn enter(&self) -> Result<InFlight, Refused> {
        // Counted on the connection's handle: the connection ends the
        // request (`ConnInner::release`), so it needs no handle of its own.
        self.inner
            .shutdown
            .inner
            .state
            .try_enter()
            .map_err(|phase| Refused { phase })?;
        Ok(self.counted())
    }

    /// The [`InFlight`] of a request just counted in the state word.
    #[inline]
    fn counted(&self) -> InFlight {
        // Relaxed: `busy` is only a count; the decision that reads it
        // (`is_busy`) is ordered by its own Acquire against the release.
        self.inner.busy.fetch_add(1, Ordering::Relaxed);
        InFlight {
            held: Some(Held::OnConnection(self.inner.clone())),
        }
    }

    /// Counts one HTTP/2 stream of this connection in flight: like
    /// [`enter`](Connection::enter) before the drain, and during the drain
    /// as long as it is not over (some request is still in progress, and
    /// the deadline has not passed).
    ///
    /// HTTP/2 refuses new streams with its final GOAWAY, not with `503`: a
    /// stream the client opened before that GOAWAY reached it must be
    /// served, and this lets it be counted. Once the drain is over nothing
    /// is in progress and the process is about to leave: such a stream is
    /// refused (its server answers `REFUSED_STREAM`, which a client retries).
    ///
    /// # Errors
    ///
    /// Refused once the drain is over.
    pub fn enter_stream(&self) -> Result<InFlight, Refused> {
        self.inner
            .shutdown
            .inner
            .state
            .try_join()
            .map_err(|phase| Refused { phase })?;
        Ok(self.counted())
    }

    /// True while a request of this connection is in progress: entered, and
    /// not yet released by a flush after its end or by the io's end.
    ///
    /// Once the shutdown refuses new work, this can only go from true to
    /// false: which is why one look at the drain deadline decides whether
    /// the connection is closed.
    pub fn is_busy(&self) -> bool {
        // Acquire: pairs with the Release of the decrement, so a connection
        // seen idle has finished with everything its requests did.
        self.inner.busy.load(Ordering::Acquire) > 0
    }

    /// How many successful flushes the io has reported.
    pub fn flushes(&self) -> usize {
        // Relaxed: see `ConnIo::flushed`.
        self.inner.flushes.load(Ordering::Relaxed)
    }
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("busy", &self.inner.busy.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// The io side of a [`Connection`]: reports each successful flush, and that
/// the io is gone when dropped.
///
/// Keep it in the io wrapper the HTTP library owns, so that it drops
/// exactly when the socket does. Not `Clone`: there is one io.
#[must_use = "dropping it tells the connection that its io is gone"]
pub struct ConnIo {
    inner: Arc<ConnInner>,
}

impl ConnIo {
    /// A flush of the io succeeded: every request handed back before it has
    /// had its last byte written, and ends now.
    ///
    /// Call it when the io's `poll_flush` returns `Ready(Ok(()))`, and only
    /// if the library flushes after writing everything it had buffered
    /// (hyper's and actix-http's HTTP/1 do).
    #[inline]
    pub fn flushed(&self) {
        // Relaxed: a count, read back only by the connection's own task.
        self.inner.flushes.fetch_add(1, Ordering::Relaxed);
        // Relaxed: a stale zero only leaves a request that is being handed
        // back right now to the next flush, as if it came after this one;
        // the swap below orders what it takes.
        if self.inner.waiting.load(Ordering::Relaxed) == 0 {
            return;
        }
        // Acquire: pairs with the Release of `hand_back`, so whatever a
        // request did happens-before its release. Only the io side clears
        // the count or sets `CLOSED`, and not at once (one `ConnIo`), so
        // the word holds no flag here and zero is what it goes back to.
        let waiting = self.inner.waiting.swap(0, Ordering::Acquire);
        self.inner.release(waiting / WAITING);
    }

    /// A flush of an HTTP/2 connection's io succeeded, with `open` streams
    /// still open on the wire ([`WireStreams::open`]): the requests handed
    /// back before it end, except as many as may be among those streams
    /// (see the module's design notes).
    ///
    /// Call it instead of [`flushed`](ConnIo::flushed) when the io's
    /// `poll_flush` returns `Ready(Ok(()))` on an HTTP/2 connection.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::Shutdown;
    /// use graceful_core::conn::Connection;
    ///
    /// let shutdown = Shutdown::builder().build()?.handle();
    /// let (conn, io) = Connection::new(&shutdown);
    /// drop(conn.enter_stream()?); // its trailers were handed to h2...
    /// io.flushed_streams(1); // ...and are not written yet
    /// assert_eq!(shutdown.in_flight(), 1);
    /// io.flushed_streams(0); // now they are
    /// assert_eq!(shutdown.in_flight(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// [`WireStreams::open`]: crate::wire::WireStreams::open
    #[inline]
    pub fn flushed_streams(&self, open: usize) {
        // Relaxed: as in `flushed`.
        self.inner.flushes.fetch_add(1, Ordering::Relaxed);
        if self.inner.waiting.load(Ordering::Relaxed) == 0 {
            return;
        }
        // Acquire: pairs with the Release of `hand_back`, as the swap of
        // `flushed` does. The word holds no flag here (see `flushed`).
        let waiting = self.inner.waiting.load(Ordering::Acquire) / WAITING;
        // Relaxed: `busy` only grows under us (entries; releases are this
        // io's), and it counts every request of `waiting` (handed back,
        // not released), so a later, larger value only counts more running
        // requests, which `open` already covers: their streams were read
        // before this flush, on this io.
        let running = self
            .inner
            .busy
            .load(Ordering::Relaxed)
            .saturating_sub(waiting);
        let held = waiting.min(open.saturating_sub(running));
        let released = waiting - held;
        if released == 0 {
            return;
        }
        // AcqRel: takes exactly the requests counted above; those handed
        // back since stay for the next flush.
        self.inner
            .waiting
            .fetch_sub(released * WAITING, Ordering::AcqRel);
        self.inner.release(released);
    }

    /// The connection this io belongs to.
    pub fn connection(&self) -> Connection {
        Connection {
            inner: self.inner.clone(),
        }
    }
}

impl Drop for ConnIo {
    fn drop(&mut self) {
        // Acquire: as in `flushed`. From here on a request handed back sees
        // `CLOSED` and ends at once.
        let waiting = self.inner.waiting.swap(CLOSED, Ordering::Acquire);
        self.inner.release(waiting / WAITING);
    }
}

impl fmt::Debug for ConnIo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnIo").finish_non_exhaustive()
    }
}

impl ConnInner {
    /// A request's last byte was handed to the library: it waits for the
    /// next flush, or ends now if the io is gone.
    #[inline]
    fn hand_back(&self) {
        // Release: pairs with the Acquire of the swap that takes it (a
        // flush, or the io's end). AcqRel, not Release: when the io is
        // gone, this request ends here and must see that end's effects.
        let before = self.waiting.fetch_add(WAITING, Ordering::AcqRel);
        if before & CLOSED != 0 {
            // The count after `CLOSED` is read by no one.
            self.release(1);
        }
    }

    /// Ends `released` requests of this connection: one subtraction on the
    /// shutdown's state word, which wakes the driver if they were the last
    /// in flight while draining.
    #[inline]
    fn release(&self, released: usize) {
        if released == 0 {
            return;
        }
        self.shutdown.inner.leave_many(released);
        // Release: pairs with `is_busy`'s Acquire.
        self.busy.fetch_sub(released, Ordering::Release);
    }
}

/// One request in progress: the shutdown counts it until this is dropped
/// (for a request of a [`Connection`], until the flush after that).
///
/// A response body keeps it and drops it (or calls
/// [`finish`](InFlight::finish)) when it has handed its last frame over,
/// failed, or been dropped.
#[must_use = "the request is counted only while this is alive"]
pub struct InFlight {
    held: Option<Held>,
}

enum Held {
    /// Outside any connection: ends when dropped.
    Detached(OwnedGuard),
    /// Counted on the connection's handle; ends at the connection's next
    /// flush after the drop.
    OnConnection(Arc<ConnInner>),
}

impl InFlight {
    /// Counts a request that no [`Connection`] serves (a middleware under a
    /// server that is not the adapter's own): it ends when dropped, at the
    /// body's end rather than at the flush after it.
    ///
    /// # Errors
    ///
    /// Refused once the shutdown drains.
    pub fn detached(shutdown: &Shutdown) -> Result<InFlight, Refused> {
        Ok(InFlight {
            held: Some(Held::Detached(shutdown.enter_owned()?)),
        })
    }

    /// Holds nothing: a request counted elsewhere, or a refused one.
    pub fn none() -> InFlight {
        InFlight { held: None }
    }

    /// True until the request has been handed back.
    pub fn is_active(&self) -> bool {
        self.held.is_some()
    }

    /// Whether the shutdown the request is counted in has reached
    /// [`Phase::Draining`] (false once handed back, or for
    /// [`none`](InFlight::none)): a response head produced then gets
    /// `Connection: close`. One load, without a handle of the caller's own.
    #[inline]
    pub fn draining(&self) -> bool {
        let state = match &self.held {
            None => return false,
            Some(Held::Detached(guard)) => &guard.inner.state,
            Some(Held::OnConnection(conn)) => &conn.shutdown.inner.state,
        };
        state.load().reached(Phase::Draining)
    }

    /// The request's last byte has been handed to the library: hand it back
    /// now (the same as dropping it). Later calls do nothing.
    #[inline]
    pub fn finish(&mut self) {
        // The test alone is inlined: a request ends once, and its
        // `InFlight` is finished and dropped more than once on the way
        // (the body's last frame, the body's drop, the emptied response
        // future's drop), so every later call is this one branch.
        if let Some(held) = self.held.take() {
            held.end();
        }
    }

    /// Hands the request back if `last` says the frame just handed over
    /// was its body's last (its end, an error, or a frame after which the
    /// body reports its end): the one rule every response body applies.
    #[inline]
    pub fn finish_if(&mut self, last: bool) {
        if last {
            self.finish();
        }
    }
}

impl Held {
    /// Ends the request: at once if detached, at the connection's next
    /// flush otherwise.
    fn end(self) {
        match self {
            Held::Detached(guard) => drop(guard),
            Held::OnConnection(conn) => conn.hand_back(),
        }
    }
}

impl Drop for InFlight {
    #[inline]
    fn drop(&mut self) {
        self.finish();
    }
}

impl fmt::Debug for InFlight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let held = match self.held {
            None => "nothing",
            Some(Held::Detached(_)) => "detached",
            Some(Held::OnConnection(_)) => "connection",
        };
        f.debug_struct("InFlight").field("held", &held).finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::Signal;

    fn shutdown() -> Shutdown {
        Shutdown::builder().build().expect("build").handle()
    }

    #[test]
    fn a_request_ends_at_the_first_flush_after_its_end() {
        let shutdown = shutdown();
        let (conn, io) = Connection::new(&shutdown);
        io.flushed(); // a flush before the request: irrelevant
        let mut request = conn.enter().expect("enter");
        io.flushed(); // its head went out, the body has not ended
        assert_eq!(shutdown.in_flight(), 1);
        request.finish_if(false);
        assert!(request.is_active());
        request.finish_if(true);
        assert!(!request.is_active());
        assert_eq!(shutdown.in_flight(), 1, "handed back, not flushed");
        assert!(conn.is_busy());
        io.flushed();
        assert_eq!(shutdown.in_flight(), 0);
        assert!(!conn.is_busy());
        assert_eq!(conn.flushes(), 3);
    }

    #[test]
    fn the_io_s_end_releases_what_waits_and_what_comes_after() {
        let shutdown = shutdown();
        let (conn, io) = Connection::new(&shutdown);
        drop(conn.enter().expect("enter"));
        let later = conn.enter().expect("enter");
        assert_eq!(shutdown.in_flight(), 2);
        drop(io);
        assert_eq!(shutdown.in_flight(), 1, "the waiting one ended");
        assert!(conn.is_busy());
        drop(later);
        assert_eq!(shutdown.in_flight(), 0, "nothing will flush it");
        assert!(!conn.is_busy());
    }

    #[test]
    fn streams_of_one_connection_end_one_by_one() {
        let shutdown = shutdown();
        let (conn, io) = Connection::new(&shutdown);
        let first = conn.enter().expect("enter");
        let second = conn.enter().expect("enter");
        drop(first);
        io.flushed();
        assert_eq!(shutdown.in_flight(), 1);
        assert!(conn.is_busy(), "the second stream is still in progress");
        drop(second);
        io.flushed();
        assert!(!conn.is_busy());
    }

    #[test]
    fn an_http2_stream_ends_at_a_flush_with_its_last_frame_written() {
        let shutdown = shutdown();
        let (conn, io) = Connection::new(&shutdown);
        let running = conn.enter_stream().expect("enter");
        let ended = conn.enter_stream().expect("enter");
        drop(ended); // handed back, its trailers not yet queued
        io.flushed_streams(2);
        assert_eq!(shutdown.in_flight(), 2, "both streams are open");
        io.flushed_streams(1);
        assert_eq!(shutdown.in_flight(), 1, "the open one is the running one");
        drop(running);
        io.flushed_streams(1);
        assert_eq!(shutdown.in_flight(), 1, "its last frame is not written");
        assert!(conn.is_busy());
        io.flushed_streams(0);
        assert_eq!(shutdown.in_flight(), 0);
        assert!(!conn.is_busy());
        assert_eq!(conn.flushes(), 4);
    }

    #[test]
    fn an_early_release_leaves_the_connection_busy_until_nothing_is_open() {
        // Invariant 2: the running stream's client reset it (not open),
        // so a waiting one whose frame is unwritten is released early...
        let shutdown = shutdown();
        let (conn, io) = Connection::new(&shutdown);
        let reset = conn.enter_stream().expect("enter");
        drop(conn.enter_stream().expect("enter"));
        io.flushed_streams(1);
        assert_eq!(shutdown.in_flight(), 1);
        // ...and the connection's last is held until that frame is written.
        drop(reset);
        io.flushed_streams(1);
        assert_eq!(shutdown.in_flight(), 1);
        io.flushed_streams(0);
        assert_eq!(shutdown.in_flight(), 0);
    }

    #[test]
    fn a_stream_joins_a_drain_that_is_not_over() {
        let driver = Shutdown::builder().build().expect("build");
        let shutdown = driver.handle();
        let (conn, io) = Connection::new(&shutdown);
        let running = conn.enter().expect("enter");
        let _ = shutdown.request(Signal::TERM);
        let clock = crate::ManualClock::new();
        let mut run = std::pin::pin!(driver.run(clock));
        assert!(
            futures_lite::future::block_on(futures_lite::future::poll_once(&mut run)).is_none()
        );
        assert!(shutdown.phase() >= crate::Phase::Draining);
        assert!(conn.enter().is_err(), "HTTP/1 is refused");
        let late = conn.enter_stream().expect("a stream joins");
        drop(running);
        io.flushed();
        assert_eq!(shutdown.in_flight(), 1);
        drop(late);
        io.flushed();
        assert_eq!(shutdown.in_flight(), 0);
        assert!(conn.enter_stream().is_err(), "the drain is over");
    }

    #[test]
    fn detached_requests_end_when_dropped_and_entering_is_refused_once_draining() {
        let driver = Shutdown::builder().build().expect("build");
        let shutdown = driver.handle();
        let request = InFlight::detached(&shutdown).expect("enter");
        assert_eq!(shutdown.in_flight(), 1);
        drop(request);
        assert_eq!(shutdown.in_flight(), 0);
        assert!(!InFlight::none().is_active());

        let _ = shutdown.request(Signal::TERM);
        futures_lite::future::block_on(driver.run(crate::ManualClock::new()));
        let (conn, _io) = Connection::new(&shutdown);
        assert!(conn.enter().is_err());
        assert!(InFlight::detached(&shutdown).is_err());
        assert!(!conn.is_busy());
    }
}
