//! HTTP/2 under actix (feature `http2`): one connection driven by the `h2`
//! crate, the actix app's service called once per stream, drained the
//! HTTP/2 way.
//!
//! # Design
//!
//! **Why not actix-http's HTTP/2.** actix-http's HTTP/2 dispatcher never
//! sends GOAWAY: a connection it serves can only be dropped, which resets
//! the streams in progress. So this module drives `h2::server` itself, as
//! actix-http does (the same crate, the same per-stream tasks on the
//! worker's thread: actix apps are `!Send`), and keeps what the shutdown
//! needs in its own hands: when the GOAWAY goes out, which streams are
//! counted, and what happens at the drain deadline.
//!
//! **A stream is a request.** Each stream the connection accepts is
//! entered with [`Connection::enter_stream`] (it may join a drain that is
//! not over; never `503`: HTTP/2 refuses new work with its final GOAWAY,
//! and a stream refused once the drain is over gets `REFUSED_STREAM`, which
//! a client retries). Its [`InFlight`] is handed back when its last frame
//! (END_STREAM, or the `RST_STREAM` of a cancelled one) has been given to
//! h2, and released by the core at the connection's next successful flush:
//! the flush-release rule of [`graceful_core::conn`], which `Io` reports. The
//! app's [`Graceful`](crate::Graceful) middleware finds the request marked
//! as counted and lets it through, without `Connection: close` (an HTTP/1.1
//! header that HTTP/2 forbids).
//!
//! **The GOAWAY, bounded.** When the shutdown drains (the same moment
//! graceful-hyper's driver uses, [`Phase::Draining`]), h2's
//! `graceful_shutdown` sends GOAWAY with the last stream id 2^31-1 and a
//! PING, and h2 sends the final GOAWAY (the last stream it processed) when
//! the PING is answered. h2 has no timer for that answer, and its
//! `abrupt_shutdown` fails every stream still open, so at
//! [`GOAWAY_BOUND`] the inbound bytes get the ACK the client did not send
//! ([`graceful_core::goaway`], the policy graceful-hyper's driver uses too):
//! h2 then sends its final GOAWAY as if the client had answered, streams
//! opened before it are served, streams above it are not processed, and
//! nothing is reset. From then on a connection with no stream in progress
//! is closed. A connection that has not finished its preface when the drain
//! begins is closed at once: it has no stream, and h2 cannot send it a
//! GOAWAY before its preface.
//!
//! **The drain deadline.** When [`Shutdown::abandoned`] resolves, every
//! stream still in progress (its handler running, or its body being sent)
//! sends `RST_STREAM(CANCEL)` and ends; the report counts it abandoned.
//! Its connection closes once h2 has no stream left, or [`RESET_BOUND`]
//! after the deadline, whatever h2 still waits for (a client that stopped
//! reading). A process that exits at once awaits [`resets_sent`] first.

use crate::conn::{Abandon, AppService, Io};
use crate::middleware::Counted;
use actix_http::body::{BodySize, BoxBody, MessageBody};
use actix_http::error::PayloadError;
use actix_http::header::{self as actix_header, HeaderName, HeaderValue};
use actix_http::{HttpMessage, Method, Payload, Request, Response, ResponseHead, Uri, Version};
use actix_service::Service;
use actix_web::http::header::HttpDate;
use bytes::Bytes;
use futures_core::Stream;
use graceful_core::conn::{Connection, InFlight};
use graceful_core::goaway::{AckRequest, GOAWAY_BOUND, InboundFrames};
use graceful_core::{Abandoned, Phase, Shutdown};
use h2::server::SendResponse;
use h2::{Reason, RecvStream, SendStream};
use std::cell::RefCell;
use std::fmt;
use std::future::{Future, poll_fn};
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

/// How long after the drain deadline a connection whose streams were reset
/// is closed even if h2 has not closed it: 1 s.
const RESET_BOUND: Duration = Duration::from_secs(1);

/// The largest DATA payload asked of h2 at once (h2's default frame size).
const CHUNK: usize = 16 * 1024;

/// HTTP/2 streams of this process in progress: their task has started and
/// not ended. [`resets_sent`] waits for none to be left.
static STREAMS: AtomicUsize = AtomicUsize::new(0);

/// One stream counted in [`STREAMS`] while alive.
struct Live;

impl Live {
    fn new() -> Live {
        // Relaxed: a count; `resets_sent` reads it with Acquire and only
        // needs the decrement's Release to see the stream's work done.
        STREAMS.fetch_add(1, Ordering::Relaxed);
        Live
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        // Release: pairs with the Acquire in `resets_sent`.
        STREAMS.fetch_sub(1, Ordering::Release);
    }
}

/// Where a connection stands with its GOAWAY.
enum GoAway {
    /// Not sent: waiting for the drain.
    Waiting(graceful_core::Reached),
    /// The first one sent; the final one by this sleep at the latest.
    Sent(Pin<Box<tokio::time::Sleep>>),
    /// The final one sent (or asked of h2): an idle connection closes.
    Bounded,
}

/// Serves one HTTP/2 connection (its preface replayed by `io` if it was
/// sniffed) until the client leaves, the drain closes it, or the deadline
/// resets its streams. Each stream runs on a task of the worker's thread.
pub(crate) async fn serve<S, B>(
    mut io: Io,
    app: Rc<S>,
    peer: Option<SocketAddr>,
    shutdown: Shutdown,
    abandon: Rc<Abandon>,
) where
    S: AppService<B>,
    B: MessageBody + 'static,
{
    let ack = AckRequest::default();
    io.follow_frames(InboundFrames::new(ack.clone()));
    let state = io.data().conn;
    let mut draining = shutdown.reached(Phase::Draining);
    let mut handshake = pin!(h2::server::handshake(io));
    // Before its preface a connection has no stream and cannot be sent a
    // GOAWAY: the drain closes it. (A sniffed preface is replayed at once.)
    let handshake = poll_fn(|cx| {
        if let Poll::Ready(conn) = handshake.as_mut().poll(cx) {
            return Poll::Ready(conn.ok());
        }
        if Pin::new(&mut draining).poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        Poll::Pending
    });
    let Some(mut conn) = handshake.await else {
        return;
    };
    let mut goaway = GoAway::Waiting(shutdown.reached(Phase::Draining));
    let mut deadline = pin!(abandon.deadline());
    let mut watching = true;
    let mut resetting: Option<Pin<Box<tokio::time::Sleep>>> = None;
    poll_fn(|cx| {
        if let GoAway::Waiting(draining) = &mut goaway
            && Pin::new(draining).poll(cx).is_ready()
        {
            conn.graceful_shutdown();
            goaway = GoAway::Sent(Box::pin(tokio::time::sleep(GOAWAY_BOUND)));
        }
        if let GoAway::Sent(bound) = &mut goaway
            && bound.as_mut().poll(cx).is_ready()
        {
            goaway = GoAway::Bounded;
            ack.request();
        }
        if watching && deadline.as_mut().poll_come(cx) {
            watching = false;
            if state.is_busy() {
                // The streams reset themselves with CANCEL; h2 sends the
                // frames, then closes with no stream left after its GOAWAY.
                resetting = Some(Box::pin(tokio::time::sleep(RESET_BOUND)));
            }
        }
        if let Some(bound) = &mut resetting
            && bound.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(());
        }
        loop {
            match conn.poll_accept(cx) {
                Poll::Ready(Some(Ok((request, respond)))) => {
                    accept(request, respond, &state, &app, peer);
                }
                Poll::Ready(Some(Err(error))) => {
                    log::connection_error(&error);
                    return Poll::Ready(());
                }
                Poll::Ready(None) => return Poll::Ready(()),
                Poll::Pending => break,
            }
        }
        // A flush during that poll may have ended the last stream.
        let bounded = matches!(goaway, GoAway::Bounded) || resetting.is_some();
        if bounded && !state.is_busy() {
            return Poll::Ready(());
        }
        Poll::Pending
    })
    .await;
}

/// Counts a new stream and starts its task, or refuses it once the drain is
/// over (`REFUSED_STREAM`: the client retries it elsewhere).
fn accept<S, B>(
    request: http::Request<RecvStream>,
    mut respond: SendResponse<Bytes>,
    state: &Connection,
    app: &Rc<S>,
    peer: Option<SocketAddr>,
) where
    S: AppService<B>,
    B: MessageBody + 'static,
{
    let Ok(in_flight) = state.enter_stream() else {
        respond.send_reset(Reason::REFUSED_STREAM);
        return;
    };
    let stream = StreamTask {
        respond,
        in_flight,
        abandoned: state.shutdown().abandoned(),
        _live: Live::new(),
    };
    actix_rt::spawn(stream.run(request, app.clone(), peer));
}

/// One stream being served: how it answers, its share of the shutdown,
/// and its deadline.
struct StreamTask {
    respond: SendResponse<Bytes>,
    in_flight: InFlight,
    abandoned: Abandoned,
    _live: Live,
}

impl StreamTask {
    /// Calls the app, sends its response, and hands the stream back once its
    /// last frame is with h2; at the deadline, resets it with CANCEL.
    async fn run<S, B>(
        mut self,
        request: http::Request<RecvStream>,
        app: Rc<S>,
        peer: Option<SocketAddr>,
    ) where
        S: AppService<B>,
        B: MessageBody + 'static,
    {
        let head_request = request.method() == http::Method::HEAD;
        let Some(request) = to_actix(request, peer) else {
            self.respond.send_reset(Reason::PROTOCOL_ERROR);
            return;
        };
        let called = app.call(request);
        let Some(result) = until(&mut self.abandoned, called).await else {
            self.respond.send_reset(Reason::CANCEL);
            return;
        };
        let response: Response<BoxBody> = match result {
            Ok(response) => Response::from(response).map_body(|_, body| body.boxed()),
            Err(error) => Response::from(error),
        };
        let (response, body) = response.into_parts();
        let mut size = body.size();
        let head = to_h2(response.head(), &mut size);
        let eof = head_request || size.is_eof();
        let Ok(mut send) = self.respond.send_response(head, eof) else {
            return; // the client reset the stream: nothing more to send
        };
        if eof {
            self.in_flight.finish();
            return;
        }
        match until(&mut self.abandoned, send_body(&mut send, body)).await {
            Some(Ok(())) => self.in_flight.finish(),
            Some(Err(error)) => {
                log::stream_error(&error);
                send.send_reset(Reason::INTERNAL_ERROR);
            }
            None => send.send_reset(Reason::CANCEL),
        }
    }
}

/// `future`'s output, or `None` once the drain deadline has come.
async fn until<F: Future>(abandoned: &mut Abandoned, future: F) -> Option<F::Output> {
    let mut future = pin!(future);
    poll_fn(|cx| {
        if Pin::new(&mut *abandoned).poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        future.as_mut().poll(cx).map(Some)
    })
    .await
}

/// Sends `body` on `send` within h2's flow control, then END_STREAM.
async fn send_body(send: &mut SendStream<Bytes>, body: BoxBody) -> Result<(), BodyError> {
    let mut body = pin!(body);
    while let Some(chunk) = poll_fn(|cx| body.as_mut().poll_next(cx)).await {
        let mut chunk = chunk.map_err(|error| BodyError(error.to_string()))?;
        while !chunk.is_empty() {
            send.reserve_capacity(chunk.len().min(CHUNK));
            match poll_fn(|cx| send.poll_capacity(cx)).await {
                // The stream is gone (reset by the client): stop sending.
                None => return Ok(()),
                Some(Err(error)) => return Err(BodyError(error.to_string())),
                Some(Ok(capacity)) => {
                    let part = chunk.split_to(capacity.min(chunk.len()));
                    send.send_data(part, false)
                        .map_err(|error| BodyError(error.to_string()))?;
                }
            }
        }
    }
    send.send_data(Bytes::new(), true)
        .map_err(|error| BodyError(error.to_string()))
}

/// Why a stream's body could not be sent.
#[derive(Debug)]
struct BodyError(String);

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The stream's head as an actix request (actix-http speaks `http` 0.2, h2
/// `http` 1), its body streamed from h2 with the window released as the
/// app reads it; `None` if the head cannot be expressed (never for a head
/// h2 accepted).
fn to_actix(request: http::Request<RecvStream>, peer: Option<SocketAddr>) -> Option<Request> {
    let (parts, body) = request.into_parts();
    let payload: actix_http::BoxedPayloadStream = Box::pin(H2Payload(body));
    let mut request = Request::with_payload(Payload::Stream { payload });
    let head = request.head_mut();
    head.method = Method::from_bytes(parts.method.as_str().as_bytes()).ok()?;
    head.uri = to_actix_uri(&parts.uri)?;
    head.version = Version::HTTP_2;
    head.peer_addr = peer;
    for (name, value) in &parts.headers {
        let name = HeaderName::from_bytes(name.as_str().as_bytes()).ok()?;
        let value = HeaderValue::from_bytes(value.as_bytes()).ok()?;
        head.headers.append(name, value);
    }
    // Counted here, per stream: the middleware lets it through.
    request.extensions_mut().insert(Counted);
    Some(request)
}

/// `uri` (`http` 1's) as actix's (`http` 0.2's): the same text, written
/// as `uri`'s `Display` writes it into a `String` of the right size (the
/// formatting machinery and the `String`'s growth cost about 300
/// instructions per stream), and parsed again.
fn to_actix_uri(uri: &http::Uri) -> Option<Uri> {
    let scheme = uri.scheme_str();
    let authority = uri.authority().map(|a| a.as_str());
    let query = uri.query();
    let len = scheme.map_or(0, |s| s.len() + 3)
        + authority.map_or(0, str::len)
        + uri.path().len()
        + query.map_or(0, |q| q.len() + 1);
    let mut text = String::with_capacity(len);
    if let Some(scheme) = scheme {
        text.push_str(scheme);
        text.push_str("://");
    }
    if let Some(authority) = authority {
        text.push_str(authority);
    }
    text.push_str(uri.path());
    if let Some(query) = query {
        text.push('?');
        text.push_str(query);
    }
    Uri::try_from(text).ok()
}

/// An actix response head as h2's, without the HTTP/1.1-only headers
/// (RFC 9113, section 8.2.2), with `content-length` from the body's size
/// and a `date`.
fn to_h2(head: &ResponseHead, size: &mut BodySize) -> http::Response<()> {
    let mut response = http::Response::new(());
    let status = head.status.as_u16();
    *response.status_mut() =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    if matches!(status, 204 | 304) || (100..200).contains(&status) {
        *size = BodySize::None;
    }
    let headers = response.headers_mut();
    let sized = match *size {
        BodySize::Sized(len) => {
            headers.insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(len));
            true
        }
        BodySize::None => true,
        BodySize::Stream => false,
    };
    let mut dated = false;
    for (name, value) in head.headers.iter() {
        match *name {
            actix_header::CONNECTION | actix_header::TRANSFER_ENCODING | actix_header::UPGRADE => {
                continue;
            }
            actix_header::CONTENT_LENGTH if sized => continue,
            actix_header::DATE => dated = true,
            _ if name == "keep-alive" || name == "proxy-connection" => continue,
            _ => {}
        }
        let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.as_str().as_bytes()),
            http::HeaderValue::from_bytes(value.as_bytes()),
        ) else {
            continue;
        };
        headers.append(name, value);
    }
    if !dated && let Some(date) = date() {
        headers.insert(http::header::DATE, date);
    }
    response
}

/// The `date` of a response sent now: formatted once a second on each
/// worker's thread, as actix-http's own dispatchers do (formatting and
/// parsing it for every response cost about 400 instructions).
fn date() -> Option<http::HeaderValue> {
    thread_local! {
        static DATE: RefCell<Option<(u64, http::HeaderValue)>> = const { RefCell::new(None) };
    }
    let now = SystemTime::now();
    let second = now.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_secs();
    DATE.with_borrow_mut(|cached| {
        if let Some((at, value)) = cached
            && *at == second
        {
            return Some(value.clone());
        }
        let value: http::HeaderValue = HttpDate::from(now).to_string().parse().ok()?;
        *cached = Some((second, value.clone()));
        Some(value)
    })
}

/// A stream's request body, for actix: each chunk's window is released to
/// the client as the app takes it.
struct H2Payload(RecvStream);

impl Stream for H2Payload {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let body = &mut self.get_mut().0;
        let chunk = match std::task::ready!(body.poll_data(cx)) {
            None => return Poll::Ready(None),
            Some(chunk) => chunk,
        };
        let chunk = chunk.and_then(|chunk| {
            body.flow_control()
                .release_capacity(chunk.len())
                .map(|()| chunk)
        });
        Poll::Ready(Some(chunk.map_err(|error| {
            PayloadError::Incomplete(Some(io::Error::other(error)))
        })))
    }
}

/// Resolves once the HTTP/2 streams reset at the drain deadline have been
/// sent their `RST_STREAM(CANCEL)`: once no HTTP/2 stream of the process is
/// left and the connections have had a few milliseconds to flush, or after
/// 1 s at the latest.
///
/// A process that exits as soon as the shutdown's report is out awaits it
/// first when the report counts abandoned work: the resets are sent by the
/// streams' tasks, which may not have run yet. When no HTTP/2 stream is
/// left it resolves within about 10 ms.
///
/// # Cancel safety
///
/// Dropping it only stops the waiting: the resets go on being sent.
///
/// # Examples
///
/// ```
/// # actix_web::rt::System::new().block_on(async {
/// // No HTTP/2 stream in this process: resolves at once, or nearly.
/// graceful_actix::resets_sent().await;
/// # });
/// ```
pub fn resets_sent() -> ResetsSent {
    ResetsSent {
        future: Box::pin(async {
            let settle = Duration::from_millis(5);
            let settled = async {
                loop {
                    tokio::time::sleep(settle).await;
                    // Acquire: pairs with the Release in `Live::drop`.
                    if STREAMS.load(Ordering::Acquire) == 0 {
                        break;
                    }
                }
                // The connections' tasks flush the last frames.
                tokio::time::sleep(settle).await;
            };
            let _ = tokio::time::timeout(RESET_BOUND, settled).await;
        }),
    }
}

/// The future of [`resets_sent`].
///
/// # Cancel safety
///
/// Dropping it only stops the waiting.
#[must_use = "futures do nothing unless polled"]
pub struct ResetsSent {
    future: Pin<Box<dyn Future<Output = ()>>>,
}

impl Future for ResetsSent {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.future.as_mut().poll(cx)
    }
}

impl fmt::Debug for ResetsSent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResetsSent").finish_non_exhaustive()
    }
}

/// Logging through `tracing` with the `tracing` feature, nothing without.
mod log {
    use std::fmt::Display;

    #[cfg(feature = "tracing")]
    pub(super) fn connection_error(error: &dyn Display) {
        tracing::debug!(%error, "HTTP/2 connection ended with an error");
    }

    #[cfg(not(feature = "tracing"))]
    pub(super) fn connection_error(_: &dyn Display) {}

    #[cfg(feature = "tracing")]
    pub(super) fn stream_error(error: &dyn Display) {
        tracing::debug!(%error, "HTTP/2 response body failed");
    }

    #[cfg(not(feature = "tracing"))]
    pub(super) fn stream_error(_: &dyn Display) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `date` of the current second, formatted afresh.
    fn formatted_now() -> String {
        HttpDate::from(SystemTime::now()).to_string()
    }

    #[test]
    fn a_uri_is_carried_over_as_its_text() {
        for text in [
            "/",
            "/health/live",
            "/sleep?ms=20&x=%20y",
            "https://example.com/a/b?c",
            "http://127.0.0.1:8080/",
            "http://[::1]:80/x",
            "example.com:443",
            "*",
        ] {
            let uri: http::Uri = text.parse().expect("a valid uri");
            let carried = to_actix_uri(&uri).expect("carried over");
            assert_eq!(carried.to_string(), uri.to_string(), "{text}");
        }
    }

    #[test]
    fn the_cached_date_is_the_current_seconds() {
        for _ in 0..3 {
            let before = formatted_now();
            let date = date().expect("a date");
            let after = formatted_now();
            let date = date.to_str().expect("ascii");
            assert!(
                date == before || date == after,
                "{date} is not {before} or {after}"
            );
            // Into the next second: the cache must follow it.
            std::thread::sleep(Duration::from_millis(600));
        }
    }
}
