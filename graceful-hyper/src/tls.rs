//! TLS (feature `tls`): what every adapter's TLS listener shares, whatever
//! rustls io wrapper its runtime uses (tokio-rustls, futures-rustls).
//!
//! # Design
//!
//! - The user brings a [`rustls::ServerConfig`]; [`server_config`] offers
//!   ALPN `h2` and `http/1.1` on it if it offers nothing, and
//!   [`load_config`] builds one from PEM files, with one error naming the
//!   file that could not be read or parsed.
//! - The handshake runs on the connection's task before anything is
//!   served, under [`HANDSHAKE_TIMEOUT`], holding no guard: a connection
//!   that is still handshaking is not in progress, so it never delays the
//!   drain or the exit (like a connection that has not sent a whole request
//!   head). [`serve_tls_listener`](crate::serve_tls_listener) does that.
//! - The protocol is the one the client chose by ALPN ([`Protocol::from_alpn`]):
//!   `h2` means HTTP/2, anything else (or nothing) HTTP/1.1.
//! - Every connection the server closes gets `close_notify`: hyper shuts its
//!   io down when it closes a connection itself, and when the connection is
//!   closed here instead (the drain deadline, the GOAWAY's bound) the io is
//!   shut down afterwards; a rustls stream sends `close_notify`
//!   on shutdown.

use crate::conn::Protocol;
use hyper::rt::{Read, ReadBufCursor, Write};
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

/// How long a TLS handshake may take before the connection is dropped:
/// 10 s. It never delays the drain either way (a handshake holds nothing).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the `close_notify` of a connection closed by the server may
/// take to be written (a client that reads nothing): 1 s.
pub(crate) const CLOSE_BOUND: Duration = Duration::from_secs(1);

/// `config`, offering ALPN `h2` and `http/1.1` if it offers no protocol,
/// ready to hand to a rustls acceptor.
///
/// A config that already lists ALPN protocols is kept as it is: the
/// connection then speaks HTTP/2 when the client chose `h2`, HTTP/1.1
/// otherwise.
///
/// # Examples
///
/// ```
/// let config = graceful_hyper::tls::rustls::ServerConfig::builder()
///     .with_no_client_auth()
///     .with_cert_resolver(std::sync::Arc::new(
///         graceful_hyper::tls::rustls::server::ResolvesServerCertUsingSni::new(),
///     ));
/// let config = graceful_hyper::tls::server_config(config);
/// assert_eq!(config.alpn_protocols, [b"h2".to_vec(), b"http/1.1".to_vec()]);
/// ```
pub fn server_config(mut config: ServerConfig) -> Arc<ServerConfig> {
    if config.alpn_protocols.is_empty() {
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    }
    Arc::new(config)
}

/// A server config from a PEM certificate chain (the server's certificate
/// first) and a PEM private key (PKCS #8, PKCS #1 or SEC1), with no client
/// authentication and ALPN `h2` and `http/1.1` ([`server_config`]).
///
/// # Errors
///
/// A file that cannot be read, holds no certificate or key, or whose key
/// does not suit the certificate: one [`TlsError`] naming the file.
pub fn load_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let error = |path: &Path, what: &'static str, reason: String| TlsError {
        path: path.to_path_buf(),
        what,
        reason,
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| error(cert, "certificate chain", e.to_string()))?;
    if chain.is_empty() {
        return Err(error(
            cert,
            "certificate chain",
            "no certificate in it".into(),
        ));
    }
    let private =
        PrivateKeyDer::from_pem_file(key).map_err(|e| error(key, "private key", e.to_string()))?;
    let config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| error(key, "private key", e.to_string()))?;
    Ok(server_config(config))
}

/// A certificate chain or private key that could not be loaded.
#[derive(Debug, Clone)]
pub struct TlsError {
    path: PathBuf,
    what: &'static str,
    reason: String,
}

impl TlsError {
    /// The file that could not be loaded.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether that file is the private key's (else the certificate
    /// chain's).
    pub fn is_private_key(&self) -> bool {
        self.what == "private key"
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot load the {} {}: {}",
            self.what,
            self.path.display(),
            self.reason.to_lowercase()
        )
    }
}

impl std::error::Error for TlsError {}

impl Protocol {
    /// The protocol of a TLS connection whose client chose `alpn`: `h2` is
    /// HTTP/2, anything else (or no choice) HTTP/1.1.
    pub fn from_alpn(alpn: Option<&[u8]>) -> Protocol {
        match alpn {
            Some(b"h2") => Protocol::Http2,
            _ => Protocol::Http1,
        }
    }
}

/// A hyper io shared with the connection's task, so that the io can be
/// shut down (a TLS stream's `close_notify` sent) after hyper has let go
/// of the connection without doing it.
pub(crate) struct Closing<I> {
    io: Arc<Mutex<I>>,
}

impl<I> Closing<I> {
    /// `io`, and the handle that shuts it down later.
    pub(crate) fn new(io: I) -> (Closing<I>, Closing<I>) {
        let io = Arc::new(Mutex::new(io));
        (Closing { io: io.clone() }, Closing { io })
    }

    /// The io, if no other handle to it is left (none is once hyper has
    /// let go of the connection, unless an upgraded session holds it).
    pub(crate) fn into_only(self) -> Option<Closing<I>> {
        (Arc::strong_count(&self.io) == 1).then_some(self)
    }

    fn with<T>(&self, f: impl FnOnce(Pin<&mut I>) -> T) -> T
    where
        I: Unpin,
    {
        let mut io = self.io.lock().unwrap_or_else(PoisonError::into_inner);
        f(Pin::new(&mut *io))
    }
}

impl<I: Read + Unpin> Read for Closing<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        self.with(|io| io.poll_read(cx, buf))
    }
}

impl<I: Write + Unpin> Write for Closing<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.with(|io| io.poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.with(|io| io.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.with(|io| io.poll_shutdown(cx))
    }

    fn is_write_vectored(&self) -> bool {
        self.io
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.with(|io| io.poll_write_vectored(cx, bufs))
    }
}

/// The rustls crate these functions take, for a config of the same version.
pub use rustls;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_protocol_is_the_alpn_choice() {
        assert_eq!(Protocol::from_alpn(Some(b"h2")), Protocol::Http2);
        assert_eq!(Protocol::from_alpn(Some(b"http/1.1")), Protocol::Http1);
        assert_eq!(Protocol::from_alpn(None), Protocol::Http1);
    }

    #[test]
    fn a_config_that_lists_alpn_protocols_is_kept() {
        let mut config = ServerConfig::builder()
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(rustls::server::ResolvesServerCertUsingSni::new()));
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        assert_eq!(server_config(config).alpn_protocols, [b"http/1.1".to_vec()]);
    }

    #[test]
    fn a_missing_file_is_named() {
        let missing = Path::new("/nonexistent/graceful-cert.pem");
        let error = load_config(missing, missing).expect_err("no such file");
        assert_eq!(error.path(), missing);
        assert!(!error.is_private_key());
        let text = error.to_string();
        assert!(
            text.starts_with("cannot load the certificate chain /nonexistent/graceful-cert.pem: "),
            "{text}"
        );
    }
}
