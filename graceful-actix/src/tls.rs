//! TLS with rustls (feature `tls`): [`serve_tls`] and [`Server::tls`], and
//! the config helpers of `graceful_hyper::tls`, the same under every
//! adapter.
//!
//! The handshake is tokio-rustls's, on the worker's connection task before
//! the protocol is served; it holds nothing, so a connection still
//! handshaking never delays the drain. The protocol is the one ALPN chose:
//! HTTP/2 for `h2` (feature `http2`), HTTP/1.1 otherwise; see
//! [`Server::tls`].

use crate::serve::{Serve, Server};
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::{App, Error};
use graceful_core::Shutdown;
use std::net;
use std::sync::Arc;

pub use graceful_hyper::tls::{HANDSHAKE_TIMEOUT, TlsError, load_config, rustls, server_config};

/// Serves `listener` over TLS with `config` and the `App` that `factory`
/// makes, until the shutdown closes it:
/// [`Server::new(factory).tls(config).serve(listener, shutdown)`](Server::tls).
///
/// # Examples
///
/// ```no_run
/// use actix_web::{App, web};
/// use graceful_actix::{Shutdown, tls};
/// use std::path::Path;
///
/// # actix_web::rt::System::new().block_on(async {
/// let shutdown = Shutdown::builder().build()?.handle();
/// let config = tls::load_config(Path::new("cert.pem"), Path::new("key.pem"))?;
/// let listener = std::net::TcpListener::bind("127.0.0.1:8443")?;
/// let app = || App::new().route("/", web::get().to(|| async { "hello" }));
/// actix_web::rt::spawn(tls::serve_tls(listener, config, app, &shutdown));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
///
/// # Panics
///
/// Outside an actix [`System`](actix_rt::System).
pub fn serve_tls<F, T, B>(
    listener: net::TcpListener,
    config: Arc<rustls::ServerConfig>,
    factory: F,
    shutdown: &Shutdown,
) -> Serve
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
    Server::new(factory).tls(config).serve(listener, shutdown)
}
