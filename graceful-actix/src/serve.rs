//! The accept loop and the workers: an actix-web `App` served on a listener
//! until the shutdown closes it, without resetting a connection the kernel
//! had already completed.
//!
//! # Design
//!
//! **Why not actix-server.** actix-web's `HttpServer` runs on actix-server,
//! whose `ServerHandle` offers two ways to stop accepting, and neither closes
//! a listener the way the shutdown needs. `pause()` stops calling `accept`
//! but keeps the socket open: new connects still complete in the kernel and
//! then hang, unanswered. `stop()` drops the socket without taking the
//! connections waiting in its accept queue (the kernel resets them), and at
//! the same time stops the workers, which then poll their connection count
//! once a second before they let go. So this module owns the accept loop,
//! and serves the app with the same pieces `HttpServer` uses: the app
//! factory is called once per worker thread (an actix-rt `Arbiter`), and
//! each connection is driven by actix-http's HTTP/1 dispatcher.
//!
//! **Closing without resets, "closed" means closed.** The accept loop is
//! the core's ([`graceful_core::accept`]), as on every runtime: the
//! connections the kernel had completed are taken before the socket
//! closes (they go to the workers like any other, and are answered `503`),
//! and the listener's [`ListenerToken`](graceful_core::ListenerToken) is
//! dropped only after the socket is closed, on every path out of the loop,
//! including a failure to hand a connection to a worker.
//!
//! **Idle connections stay.** Accepted connections are not closed when the
//! shutdown begins: an idle keep-alive connection answers its next request
//! with `503` and `Connection: close`, and closes with the process. Only at
//! the drain deadline are the connections still busy with a request closed.

use crate::conn::{Abandon, Acceptor, Io, Services, serve_connection};
use crate::middleware::Graceful;
use crate::timer::ActixTimer;
use actix_http::{HttpServiceBuilder, KeepAlive};
use actix_rt::Arbiter;
use actix_rt::net::{TcpListener, TcpStream};
use actix_service::{IntoServiceFactory, ServiceFactory, fn_factory, map_config};
use actix_web::body::MessageBody;
use actix_web::dev::{AppConfig, ServiceRequest, ServiceResponse};
use actix_web::{App, Error};
use graceful_core::Shutdown;
use graceful_core::accept::{Accept, accept};
use std::fmt;
use std::future::Future;
use std::io;
use std::net::{self, SocketAddr};
use std::num::NonZeroUsize;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

/// Serves `listener` with the actix-web `App` that `factory` makes, until
/// the shutdown closes it. [`Server::new(factory).serve(listener, shutdown)`](Server::serve),
/// with [`Server`]'s defaults, which are `HttpServer`'s.
///
/// # Panics
///
/// Outside an actix [`System`](actix_rt::System) (`#[actix_web::main]`,
/// `actix_web::rt::System::new().block_on(..)`): the workers are actix-rt
/// arbiters.
///
/// # Examples
///
/// ```
/// use actix_web::{App, web};
/// use graceful_actix::{Cause, Shutdown};
/// use std::net::TcpListener;
///
/// # actix_web::rt::System::new().block_on(async {
/// let driver = Shutdown::builder().build()?;
/// let shutdown = driver.handle();
/// let listener = TcpListener::bind("127.0.0.1:0")?;
/// let server = actix_web::rt::spawn(graceful_actix::serve(
///     listener,
///     || App::new().route("/", web::get().to(|| async { "hello" })),
///     &shutdown,
/// ));
///
/// let _ = shutdown.request(Cause::reason("example"));
/// let report = graceful_actix::run(driver).await;
/// server.await??; // closed
/// assert_eq!(report.exit_code(), 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
pub fn serve<F, T, B>(listener: net::TcpListener, factory: F, shutdown: &Shutdown) -> Serve
where
    F: Fn() -> App<T> + Send + Clone + 'static,
    T: ServiceFactory<
            ServiceRequest,
            Config = (),
            Response = ServiceResponse<B>,
            Error = Error,
            InitError = (),
        > + 'static,
    B: MessageBody + 'static,
{
    Server::new(factory).serve(listener, shutdown)
}

/// An actix-web app, served under a [`Shutdown`]: the settings of
/// [`serve`], named after `HttpServer`'s.
///
/// Like `HttpServer::new`, it takes a factory that makes the `App`; the
/// factory is called once on each worker thread. It applies [`Graceful`] to
/// the app, outermost, so every request is counted: do not add it yourself.
///
/// It serves HTTP/1.1 and, with the `http2` feature (on by default),
/// HTTP/2: h2c with prior knowledge on the same plaintext port, and `h2` by
/// ALPN under TLS ([`Server::tls`], feature `tls`). HTTP/2 is driven by the
/// `h2` crate rather than actix-http's dispatcher, which cannot be drained
/// (it never sends GOAWAY).
///
/// What it does not do, compared to `HttpServer`: several listeners per
/// call (call [`serve`](Server::serve) once per listener, on a clone),
/// actix-http's HTTP/2 settings, and actix's own signal handling (use
/// [`signals`](crate::signals)).
///
/// # Examples
///
/// ```
/// use actix_web::{App, web};
/// use graceful_actix::{Server, Shutdown};
/// use std::time::Duration;
///
/// # actix_web::rt::System::new().block_on(async {
/// let shutdown = Shutdown::builder().build()?.handle();
/// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
/// let serve = Server::new(|| App::new().route("/", web::get().to(|| async { "hello" })))
///     .workers(2)
///     .keep_alive(Duration::from_secs(30))
///     .serve(listener, &shutdown);
/// actix_web::rt::spawn(serve);
/// # let _ = shutdown.request(graceful_actix::Cause::reason("example"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
#[must_use = "a server does nothing until it serves a listener"]
pub struct Server<F> {
    factory: F,
    workers: NonZeroUsize,
    settings: Settings,
    acceptor: Acceptor,
}

/// The connection settings, as `HttpServer` names them.
#[derive(Clone, Copy, Debug)]
struct Settings {
    keep_alive: KeepAlive,
    client_request_timeout: Duration,
    client_disconnect_timeout: Duration,
}

impl<F> fmt::Debug for Server<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("workers", &self.workers)
            .field("keep_alive", &self.settings.keep_alive)
            .field(
                "client_request_timeout",
                &self.settings.client_request_timeout,
            )
            .field(
                "client_disconnect_timeout",
                &self.settings.client_disconnect_timeout,
            )
            .finish_non_exhaustive()
    }
}

impl<F, T, B> Server<F>
where
    F: Fn() -> App<T> + Send + Clone + 'static,
    T: ServiceFactory<
            ServiceRequest,
            Config = (),
            Response = ServiceResponse<B>,
            Error = Error,
            InitError = (),
        > + 'static,
    B: MessageBody + 'static,
{
    /// A server for the apps `factory` makes, with `HttpServer`'s defaults:
    /// one worker per available CPU, 5 s keep-alive, 5 s to receive a
    /// request head, 1 s to close a connection.
    pub fn new(factory: F) -> Server<F> {
        Server {
            factory,
            workers: std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN),
            settings: Settings {
                keep_alive: KeepAlive::default(),
                client_request_timeout: Duration::from_secs(5),
                client_disconnect_timeout: Duration::from_secs(1),
            },
            acceptor: None,
        }
    }

    /// Serves TLS with `config` (feature `tls`): each connection's handshake
    /// runs first, under
    /// [`HANDSHAKE_TIMEOUT`](crate::tls::HANDSHAKE_TIMEOUT), and holds
    /// nothing, so it never delays the drain; every connection the server
    /// closes gets `close_notify`.
    ///
    /// The protocol is the one the handshake's ALPN chose: HTTP/2 for `h2`
    /// (feature `http2`), HTTP/1.1 otherwise. A config whose ALPN list is
    /// empty is given `h2` and `http/1.1` (only `http/1.1` without
    /// `http2`); a list the config already has is kept as it is. The
    /// helpers of [`tls`](crate::tls) set that list already.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, config: std::sync::Arc<crate::tls::rustls::ServerConfig>) -> Server<F> {
        let mut config = (*config).clone();
        if config.alpn_protocols.is_empty() || !cfg!(feature = "http2") {
            config.alpn_protocols = if cfg!(feature = "http2") {
                vec![b"h2".to_vec(), b"http/1.1".to_vec()]
            } else {
                vec![b"http/1.1".to_vec()]
            };
        }
        self.acceptor = Some(tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config)));
        self
    }

    /// How many worker threads serve connections, each with its own `App`.
    ///
    /// # Panics
    ///
    /// When `workers` is 0, like `HttpServer::workers`.
    pub fn workers(mut self, workers: usize) -> Server<F> {
        self.workers = NonZeroUsize::new(workers).expect("workers must be at least 1");
        self
    }

    /// How long an idle connection is kept open between requests
    /// (`HttpServer::keep_alive`). Default: 5 s.
    ///
    /// The shutdown does not close idle connections: this timeout still
    /// does, while the process lives.
    pub fn keep_alive(mut self, keep_alive: impl Into<KeepAlive>) -> Server<F> {
        self.settings.keep_alive = keep_alive.into();
        self
    }

    /// How long a new connection may take to send its first request head
    /// before it is answered `408` (`HttpServer::client_request_timeout`);
    /// zero disables it. Default: 5 s.
    pub fn client_request_timeout(mut self, timeout: Duration) -> Server<F> {
        self.settings.client_request_timeout = timeout;
        self
    }

    /// How long the closing of a connection may take before it is dropped
    /// (`HttpServer::client_disconnect_timeout`); zero disables it.
    /// Default: 1 s.
    pub fn client_disconnect_timeout(mut self, timeout: Duration) -> Server<F> {
        self.settings.client_disconnect_timeout = timeout;
        self
    }

    /// Serves `listener` until the shutdown closes it.
    ///
    /// - The listener is registered with [`Shutdown::track_listener`] at
    ///   once, when `serve` is called. If the shutdown is already draining
    ///   that is refused: the listener is closed, nothing is served, and the
    ///   returned future resolves at once with `Ok(())`.
    /// - The worker threads start at once, each making its `App` with the
    ///   factory, wrapped in [`Graceful`].
    /// - Accepted connections (with `TCP_NODELAY` set) go to the workers in
    ///   turn. HTTP/1.1 ones are served by actix-http's HTTP/1 dispatcher:
    ///   requests are counted in flight until their response is flushed,
    ///   refused with `503` once the shutdown drains, and a connection is
    ///   closed by the server only when the drain deadline finds it busy (or
    ///   after a response with `Connection: close`).
    /// - HTTP/2 ones (feature `http2`: the connection preface on plaintext,
    ///   ALPN `h2` under TLS) are served stream by stream, each a request
    ///   counted until its END_STREAM is flushed; once the shutdown drains
    ///   they get GOAWAY, the final one at most
    ///   [`GOAWAY_BOUND`](graceful_core::goaway::GOAWAY_BOUND) after the
    ///   first, streams opened before it are served (never `503`), and a
    ///   connection with no stream left is closed; at the drain deadline
    ///   the streams in progress are reset with `RST_STREAM(CANCEL)`.
    /// - When the shutdown reaches [`Phase::Draining`](graceful_core::Phase::Draining),
    ///   the connections the kernel has already completed are accepted, then
    ///   the listener is closed, then its token is dropped, and the future
    ///   resolves. See the module's design notes.
    ///
    /// The workers outlive the future: idle keep-alive connections stay
    /// open until the process exits (or their keep-alive ends), so that a
    /// client using one gets a clean `503` rather than a reset. They stop
    /// with the actix `System`.
    ///
    /// # Panics
    ///
    /// Outside an actix [`System`](actix_rt::System).
    pub fn serve(self, listener: net::TcpListener, shutdown: &Shutdown) -> Serve {
        let Ok(token) = shutdown.track_listener() else {
            drop(listener);
            return Serve::ready(Ok(()));
        };
        let start = || -> io::Result<(TcpListener, SocketAddr)> {
            listener.set_nonblocking(true)?;
            let addr = listener.local_addr()?;
            Ok((TcpListener::from_std(listener)?, addr))
        };
        let (listener, addr) = match start() {
            Ok(started) => started,
            Err(error) => return Serve::ready(Err(error)),
        };
        let workers = (0..self.workers.get())
            .map(|_| {
                let (sender, receiver) = unbounded_channel();
                let factory = self.factory.clone();
                let shutdown = shutdown.clone();
                let settings = self.settings;
                #[cfg_attr(not(feature = "tls"), allow(clippy::clone_on_copy))]
                let acceptor = self.acceptor.clone();
                let arbiter = Arbiter::new();
                arbiter.spawn_fn(move || {
                    actix_rt::spawn(worker(
                        receiver, factory, shutdown, settings, addr, acceptor,
                    ));
                });
                sender
            })
            .collect();
        let mut workers = Workers {
            senders: workers,
            next: 0,
        };
        let serve = move |stream| workers.dispatch(stream);
        Serve {
            future: Box::pin(accept(Listening(listener), token, ActixTimer, serve)),
        }
    }
}

/// A listener being served. See [`Server::serve`].
///
/// Resolves once the listener is closed and its token dropped; `Err` when
/// no worker could start its `App`, or the listener could not be set up.
///
/// # Cancel safety
///
/// Dropping it closes the listener at once, without taking the connections
/// waiting in its accept queue (the kernel resets them), and drops its token.
/// Connections already accepted go on being served. To stop serving
/// cleanly, let the shutdown close the listener instead.
#[must_use = "futures do nothing unless polled"]
pub struct Serve {
    future: Pin<Box<dyn Future<Output = io::Result<()>> + Send>>,
}

impl Serve {
    fn ready(result: io::Result<()>) -> Serve {
        Serve {
            future: Box::pin(std::future::ready(result)),
        }
    }
}

impl Future for Serve {
    type Output = io::Result<()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.future.as_mut().poll(cx)
    }
}

impl fmt::Debug for Serve {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Serve").finish_non_exhaustive()
    }
}

/// The workers' inboxes, served in turn.
struct Workers {
    senders: Vec<UnboundedSender<net::TcpStream>>,
    next: usize,
}

impl Workers {
    /// Hands `stream` to the next worker; `Err` when none is left (every
    /// worker failed to start its `App`).
    fn dispatch(&mut self, stream: net::TcpStream) -> io::Result<()> {
        let mut stream = stream;
        while !self.senders.is_empty() {
            let index = self.next % self.senders.len();
            match self.senders[index].send(stream) {
                Ok(()) => {
                    self.next = index + 1;
                    return Ok(());
                }
                Err(returned) => {
                    // That worker is gone: its app failed to start.
                    stream = returned.0;
                    self.senders.swap_remove(index);
                }
            }
        }
        Err(io::Error::other("no worker could start the app"))
    }
}

/// actix-rt's listener, as the core's accept loop uses it. Connections go
/// to the workers as std sockets: each worker registers them with its own
/// reactor.
struct Listening(TcpListener);

impl Accept for Listening {
    type Conn = net::TcpStream;

    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<net::TcpStream>> {
        loop {
            let (stream, _) = std::task::ready!(self.0.poll_accept(cx))?;
            // Leaving this thread's reactor fails only if the connection
            // is already unusable: it is gone, accepting goes on.
            if let Ok(stream) = stream.into_std() {
                return Poll::Ready(Ok(stream));
            }
        }
    }

    fn into_std(self) -> io::Result<net::TcpListener> {
        // Out of the reactor, to call `accept` directly until it would
        // block. The socket stays non-blocking.
        self.0.into_std()
    }

    fn adopt(stream: net::TcpStream) -> io::Result<net::TcpStream> {
        // The worker that takes it makes it non-blocking.
        Ok(stream)
    }
}

/// One worker thread: makes its app, then serves the connections it is
/// handed, each on a task of its own.
async fn worker<F, T, B>(
    mut inbox: UnboundedReceiver<net::TcpStream>,
    factory: F,
    shutdown: Shutdown,
    settings: Settings,
    addr: SocketAddr,
    acceptor: Acceptor,
) where
    F: Fn() -> App<T> + Send + Clone + 'static,
    T: ServiceFactory<
            ServiceRequest,
            Config = (),
            Response = ServiceResponse<B>,
            Error = Error,
            InitError = (),
        > + 'static,
    B: MessageBody + 'static,
{
    let app = factory().wrap(Graceful::new(&shutdown)).into_factory();
    // What `HttpServer` gives the app: its host name (here the listening
    // address, `HttpServer`'s default) and local address.
    // `AppConfig` has no public constructor besides this hidden one, which
    // actix's own test server uses; `AppConfig::default()` would report
    // 127.0.0.1:8080 whatever the real address.
    let app = map_config(app, move |()| {
        AppConfig::__priv_test_new(false, addr.to_string(), addr)
    });
    // One app per worker, shared by both protocols: HTTP/1.1 connections
    // reach it through actix-http's dispatcher, HTTP/2 streams directly.
    let Ok(app) = app.new_service(()).await else {
        log::app_failed();
        return;
    };
    let app = Rc::new(app);
    let h1_app = app.clone();
    let h1_app = fn_factory(move || std::future::ready(Ok::<_, ()>(h1_app.clone())));
    let http = HttpServiceBuilder::<Io, _>::default()
        .keep_alive(settings.keep_alive)
        .client_request_timeout(settings.client_request_timeout)
        .client_disconnect_timeout(settings.client_disconnect_timeout)
        .local_addr(addr)
        .on_connect_ext(|io: &Io, data: &mut actix_http::Extensions| {
            data.insert(io.data());
        })
        .h1(h1_app);
    let Ok(h1) = ServiceFactory::<(Io, Option<SocketAddr>)>::new_service(&http, ()).await else {
        // actix-http has logged why; dropping the inbox tells the accept
        // loop to use the other workers.
        log::app_failed();
        return;
    };
    let services = Rc::new(Services {
        h1,
        app,
        acceptor,
        first_bytes_timeout: settings.client_request_timeout,
    });
    let abandon = Rc::new(Abandon::default());
    actix_rt::spawn({
        let abandon = abandon.clone();
        let abandoned = shutdown.abandoned();
        async move {
            abandoned.await;
            abandon.fire();
        }
    });
    while let Some(stream) = inbox.recv().await {
        // Sockets taken from the queue by `close` come from std's `accept`,
        // which makes them blocking.
        let Ok(stream) = stream
            .set_nonblocking(true)
            .and_then(|()| TcpStream::from_std(stream))
        else {
            continue;
        };
        // Small responses go out at once rather than waiting on Nagle.
        let _ = stream.set_nodelay(true);
        actix_rt::spawn(serve_connection(
            stream,
            services.clone(),
            shutdown.clone(),
            abandon.clone(),
        ));
    }
}

/// Logging through `tracing` with the `tracing` feature, nothing without.
mod log {
    #[cfg(feature = "tracing")]
    pub(super) fn app_failed() {
        tracing::error!("a worker could not start the app");
    }

    #[cfg(not(feature = "tracing"))]
    pub(super) fn app_failed() {}
}
