//! TLS for the kit: a self-signed certificate for the target, and a
//! blocking rustls client over a std `TcpStream` that trusts it.
//!
//! The kit tests a server it started itself with a certificate it made, so
//! its client accepts any certificate (the signatures of the handshake are
//! still checked); what it looks at is the protocol: ALPN, the handshake,
//! and whether the server's close comes with a `close_notify`.

use std::fs;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme, StreamOwned};

/// ALPN protocol id of HTTP/2.
pub const ALPN_H2: &[u8] = b"h2";
/// ALPN protocol id of HTTP/1.1.
pub const ALPN_HTTP1: &[u8] = b"http/1.1";

/// A TLS connection of the kit.
pub type TlsStream = StreamOwned<ClientConnection, TcpStream>;

/// Writes a fresh self-signed certificate for `localhost` and `127.0.0.1`
/// and its private key, both PEM, to `cert` and `key`.
pub fn write_self_signed(cert: &Path, key: &Path) -> Result<(), String> {
    let made =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .map_err(|e| format!("generating a certificate: {e}"))?;
    fs::write(cert, made.cert.pem()).map_err(|e| format!("writing {}: {e}", cert.display()))?;
    fs::write(key, made.key_pair.serialize_pem())
        .map_err(|e| format!("writing {}: {e}", key.display()))?;
    Ok(())
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Accepts the server's certificate as it is; checks the handshake's
/// signatures with it.
#[derive(Debug)]
struct AnyCertificate(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// A client configuration offering `alpn` that trusts any certificate.
pub fn client_config(alpn: &[&[u8]]) -> Result<Arc<ClientConfig>, String> {
    let provider = provider();
    let algorithms = provider.signature_verification_algorithms;
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS client configuration: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(algorithms)))
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// Connects and completes the handshake, offering `alpn`. The error names
/// rule 12 when the target does not speak TLS.
pub fn connect(addr: SocketAddr, alpn: &[&[u8]], timeout: Duration) -> Result<TlsStream, String> {
    let config = client_config(alpn)?;
    let name = ServerName::try_from("localhost").map_err(|e| format!("server name: {e}"))?;
    let mut conn = ClientConnection::new(config, name).map_err(|e| format!("TLS client: {e}"))?;
    let mut sock = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| format!("TLS connect to {addr}: {e}"))?;
    let _ = sock.set_nodelay(true);
    let _ = sock.set_read_timeout(Some(timeout));
    let _ = sock.set_write_timeout(Some(timeout));
    while conn.is_handshaking() {
        conn.complete_io(&mut sock).map_err(|e| {
            format!("the TLS handshake failed ({e}): the target does not serve TLS with --tls-cert/--tls-key (rule 12)")
        })?;
    }
    Ok(StreamOwned::new(conn, sock))
}

/// The ALPN protocol the server chose, as text (`none` when it chose none).
pub fn alpn_of(stream: &TlsStream) -> String {
    stream
        .conn
        .alpn_protocol()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .unwrap_or_else(|| "none".to_owned())
}

/// How a server ended a TLS connection, as the client reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// A `close_notify`, then the end of the stream.
    CloseNotify,
    /// The end of the TCP stream with no `close_notify`.
    Truncated,
    /// Still open when the client stopped waiting.
    Open,
    /// Another error.
    Failed(String),
}

/// A whole HTTP/1.1 response read over TLS.
#[derive(Debug, Clone)]
pub struct H1Response {
    /// The status code.
    pub status: u16,
    /// Whether the head carries `Connection: close`.
    pub close: bool,
    /// The body (by `Content-Length`, or to the end of the stream).
    pub body: String,
}

/// Reads one response; then, if it closes the connection, reads on to the
/// end and says how the connection ended.
pub fn read_h1(stream: &mut TlsStream) -> Result<(H1Response, Option<Ending>), String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let (status, close, length, at) = loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut parsed = httparse::Response::new(&mut headers);
        if let Ok(httparse::Status::Complete(at)) = parsed.parse(&buf) {
            let header = |name: &str| {
                parsed
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case(name))
                    .map(|h| String::from_utf8_lossy(h.value).to_ascii_lowercase())
            };
            let close = header("connection").is_some_and(|v| v.contains("close"));
            let length = header("content-length").and_then(|v| v.trim().parse::<usize>().ok());
            break (parsed.code.unwrap_or(0), close, length, at);
        }
        match stream.read(&mut chunk) {
            Ok(0) => return Err("the TLS connection ended before a whole response head".into()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(format!("reading a response over TLS: {e}")),
        }
    };
    let mut body = buf.split_off(at);
    let mut ending = None;
    match length {
        Some(len) => {
            while body.len() < len {
                match stream.read(&mut chunk) {
                    Ok(0) => return Err("the TLS connection ended inside a response body".into()),
                    Ok(n) => body.extend_from_slice(&chunk[..n]),
                    Err(e) => return Err(format!("reading a response body over TLS: {e}")),
                }
            }
            if close {
                ending = Some(read_to_end(stream, &mut Vec::new()));
            }
        }
        None => ending = Some(read_to_end(stream, &mut body)),
    }
    let response = H1Response {
        status,
        close,
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    Ok((response, ending))
}

/// Reads to the end of the connection and says how it ended.
pub fn read_to_end(stream: &mut TlsStream, into: &mut Vec<u8>) -> Ending {
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return Ending::CloseNotify,
            Ok(n) => into.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ending::Truncated,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Ending::Open;
            }
            Err(e) => return Ending::Failed(e.to_string()),
        }
    }
}

/// Sends `GET target` with keep-alive.
pub fn send_get(stream: &mut TlsStream, target: &str) -> Result<(), String> {
    let req = format!("GET {target} HTTP/1.1\r\nHost: localhost\r\n\r\n");
    stream
        .write_all(req.as_bytes())
        .and_then(|()| stream.flush())
        .map_err(|e| format!("sending GET {target} over TLS: {e}"))
}
