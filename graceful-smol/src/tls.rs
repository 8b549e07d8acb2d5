//! TLS with rustls (feature `tls`): [`serve_tls`], and the config helpers
//! of [`graceful_hyper::tls`].
//!
//! The handshake is futures-rustls's; everything else (its bound, the
//! protocol chosen by ALPN, `close_notify` on close, a handshake never
//! delaying the exit) is `graceful_hyper`'s, the same on every runtime.

use crate::serve::Listening;
use crate::spawn::Spawn;
use crate::timer::SmolTimer;
use async_io::Async;
use futures_rustls::TlsAcceptor;
use graceful_core::Shutdown;
use graceful_hyper::{Serve, SpawnBody, SpawnService};
use smol_hyper::rt::FuturesIo;
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

pub use graceful_hyper::tls::{HANDSHAKE_TIMEOUT, TlsError, load_config, rustls, server_config};

/// Serves `listener` over TLS with `config` and a hyper `service` until the
/// shutdown closes it, running each connection on `executor`:
/// [`serve`](crate::serve), with each connection's TLS handshake first.
///
/// - The protocol is the client's ALPN choice: `h2` is HTTP/2 (drained
///   with GOAWAY), anything else HTTP/1.1. A config with no ALPN protocol
///   gets `h2` and `http/1.1` ([`server_config`]).
/// - A connection still handshaking is not in progress: it never delays the
///   drain or the exit, and is dropped after [`HANDSHAKE_TIMEOUT`].
/// - Every connection the server closes gets `close_notify`.
///
/// # Examples
///
/// ```no_run
/// use graceful_smol::{Global, Shutdown, tls};
/// use http_body_util::Full;
/// use hyper::body::{Bytes, Incoming};
/// use hyper::service::service_fn;
/// use hyper::{Request, Response};
/// use smol::Async;
/// use std::convert::Infallible;
/// use std::net::TcpListener;
/// use std::path::Path;
///
/// async fn hello(_: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
///     Ok(Response::new(Full::new(Bytes::from_static(b"hello"))))
/// }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// smol::block_on(async {
///     let driver = Shutdown::builder().build()?;
///     let shutdown = driver.handle();
///     let config = tls::load_config(Path::new("cert.pem"), Path::new("key.pem"))?;
///     let listener = Async::<TcpListener>::bind(([127, 0, 0, 1], 8443))?;
///     smol::spawn(tls::serve_tls(listener, config, service_fn(hello), &shutdown, Global)).detach();
///     let report = graceful_smol::run(driver).await;
///     # drop(report);
///     Ok(())
/// })
/// # }
/// ```
pub fn serve_tls<S, B, E>(
    listener: Async<TcpListener>,
    config: Arc<rustls::ServerConfig>,
    service: S,
    shutdown: &Shutdown,
    executor: E,
) -> Serve
where
    S: SpawnService<B> + Clone,
    B: SpawnBody,
    E: Spawn,
{
    let acceptor = TlsAcceptor::from(config);
    graceful_hyper::serve_tls_listener(
        Listening(listener),
        shutdown,
        SmolTimer,
        move |_| service.clone(),
        move |task| executor.spawn_detached(task),
        move |io: FuturesIo<Async<TcpStream>>| {
            let accept = acceptor.accept(io.into_inner());
            Box::pin(async move {
                let stream = accept.await?;
                let alpn = stream.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
                Ok((FuturesIo::new(stream), alpn))
            })
        },
    )
}
