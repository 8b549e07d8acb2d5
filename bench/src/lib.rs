//! The benchmark suite of graceful: `cargo xtask bench [--quick]`.
//!
//! The runner (`graceful-bench`) measures, side by side in one run, what
//! graceful's shutdown costs while serving and how fast it exits, against
//! what a user would pick instead, and writes `BENCHMARKS.md` and
//! `BENCHMARKS.svg` at the workspace root. The other binaries of this crate
//! are the servers it compares against:
//!
//! | binary | what it is |
//! | --- | --- |
//! | `peer-axum` | axum 0.8, `serve(..).with_graceful_shutdown(signal)` |
//! | `peer-tokio-graceful-shutdown` | tokio-graceful-shutdown's `Toplevel` with a hyper server subsystem |
//! | `peer-actix` | actix-web 4, its built-in signal handling and `shutdown_timeout` |
//! | `plain-tokio` | hyper 1 on tokio, no shutdown machinery (HTTP/1.1, and h2c after a peek at the preface) |
//! | `plain-smol` | hyper 1 on smol, no shutdown machinery (HTTP/1.1, and h2c after a peek at the preface) |
//! | `plain-actix` | actix-web 4 as it comes |
//! | `guard-ops` | enters and leaves a guard N times, for callgrind |
//!
//! Every server takes `--addr HOST:PORT` (default `127.0.0.1:0`); the
//! plain and `-min` servers also take `--tls CERT KEY`
//! (PEM files), to serve TLS instead, HTTP/2 or HTTP/1.1 by ALPN. Each prints
//! `listening HOST:PORT` on standard output once bound, and answers
//! `GET /health/live` with `200 live`; the peers also answer
//! `GET /sleep?ms=N` with `200 slept N` after N ms. This library holds the
//! little they share: the command line and the `listening` line; and the
//! guard variants of figure 1 ([`guard`]), shared by the criterion bench
//! and `guard-ops`.

pub mod guard;

use std::net::{SocketAddr, ToSocketAddrs};
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::Arc;

/// A server's command line: `[--addr HOST:PORT] [--threads N] [--tls CERT KEY]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerArgs {
    /// Where to listen; port 0 picks a free port.
    pub addr: SocketAddr,
    /// How many executor threads, for the servers that choose their own.
    pub threads: Option<NonZeroUsize>,
    /// Serve TLS with this certificate chain and key, for the servers that
    /// can.
    pub tls: Option<Tls>,
}

/// `--tls CERT KEY`: PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    /// The certificate chain's PEM file.
    pub cert: PathBuf,
    /// The private key's PEM file.
    pub key: PathBuf,
}

/// The plain servers' rustls config for `tls`, built as rustls and
/// tokio-rustls teach it (PEM through `rustls-pki-types`, no client
/// authentication), with ALPN `h2` and `http/1.1` as graceful's
/// `load_config` offers, so that both sides of a comparison negotiate the
/// same protocol.
pub fn tls_config(tls: &Tls) -> std::io::Result<Arc<rustls::ServerConfig>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let invalid = |what: &PathBuf, error: &dyn std::fmt::Display| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{}: {error}", what.display()),
        )
    };
    let certs = CertificateDer::pem_file_iter(&tls.cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| invalid(&tls.cert, &e))?;
    let key = PrivateKeyDer::from_pem_file(&tls.key).map_err(|e| invalid(&tls.key, &e))?;
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| invalid(&tls.cert, &e))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

impl ServerArgs {
    /// Parses the process's arguments; on a usage error prints it to
    /// standard error and exits with status 2.
    pub fn from_env() -> ServerArgs {
        let program = std::env::args().next().unwrap_or_default();
        ServerArgs::parse(std::env::args().skip(1)).unwrap_or_else(|error| {
            eprintln!("{program}: {error}\nusage: {program} [--addr HOST:PORT] [--threads N] [--tls CERT KEY]");
            std::process::exit(2)
        })
    }

    /// Parses `args` (without the program name).
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<ServerArgs, String> {
        let mut parsed = ServerArgs {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            threads: None,
            tls: None,
        };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let (name, inline) = match arg.split_once('=') {
                Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
                None => (arg, None),
            };
            let mut value = || {
                inline
                    .clone()
                    .or_else(|| args.next())
                    .ok_or_else(|| format!("{name} needs a value"))
            };
            match name.as_str() {
                "--addr" => {
                    let text = value()?;
                    parsed.addr = text
                        .to_socket_addrs()
                        .map_err(|error| format!("--addr {text}: not HOST:PORT ({error})"))?
                        .next()
                        .ok_or_else(|| format!("--addr {text}: no address"))?;
                }
                "--threads" => {
                    let text = value()?;
                    parsed.threads = Some(
                        text.parse()
                            .map_err(|_| format!("--threads {text}: not a positive number"))?,
                    );
                }
                "--tls" => {
                    let cert = PathBuf::from(value()?);
                    let key = args
                        .next()
                        .ok_or_else(|| "--tls needs a certificate and a key".to_owned())?;
                    parsed.tls = Some(Tls {
                        cert,
                        key: PathBuf::from(key),
                    });
                }
                _ => return Err(format!("unknown argument {name:?}")),
            }
        }
        Ok(parsed)
    }
}

/// Prints `listening HOST:PORT` on standard output, flushed.
pub fn announce(addr: SocketAddr) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    // A runner that went away is no reason to stop serving.
    let _ = writeln!(out, "listening {addr}").and_then(|()| out.flush());
}

/// The value of `name` in a query string such as `ms=300&x=1`, as a number.
pub fn query_number(query: Option<&str>, name: &str) -> Option<u64> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .and_then(|(_, value)| value.parse().ok())
}

/// The HTTP/2 connection preface a client with prior knowledge starts with
/// (RFC 9113, section 3.4).
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// How many first bytes of a connection [`h2_preface`] decides on: the
/// whole preface.
pub const H2_SNIFF: usize = H2_PREFACE.len();

/// Whether a connection whose first bytes are `first` speaks HTTP/2 with
/// prior knowledge (the plain baselines serve h2c on their one port, as the
/// targets do): `Some(false)` as soon as a byte differs from the preface,
/// `Some(true)` once all of it is there, `None` while `first` is a shorter
/// part of it.
pub fn h2_preface(first: &[u8]) -> Option<bool> {
    let n = first.len().min(H2_SNIFF);
    if first[..n] != H2_PREFACE[..n] {
        Some(false)
    } else if n == H2_SNIFF {
        Some(true)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<ServerArgs, String> {
        ServerArgs::parse(args.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn defaults_to_a_free_loopback_port() {
        let args = parse(&[]).unwrap();
        assert_eq!(args.addr, SocketAddr::from(([127, 0, 0, 1], 0)));
        assert_eq!(args.threads, None);
    }

    #[test]
    fn takes_addr_and_threads_in_both_spellings() {
        let args = parse(&["--addr", "127.0.0.1:8080", "--threads=3"]).unwrap();
        assert_eq!(args.addr, SocketAddr::from(([127, 0, 0, 1], 8080)));
        assert_eq!(args.threads, NonZeroUsize::new(3));
        assert!(parse(&["--threads", "0"]).is_err());
        assert!(parse(&["--addr"]).is_err());
        assert!(parse(&["--port", "1"]).is_err());
    }

    #[test]
    fn takes_a_certificate_and_a_key() {
        let args = parse(&["--tls", "c.pem", "k.pem", "--addr", "127.0.0.1:1"]).unwrap();
        assert_eq!(
            args.tls,
            Some(Tls {
                cert: PathBuf::from("c.pem"),
                key: PathBuf::from("k.pem"),
            })
        );
        assert_eq!(args.addr, SocketAddr::from(([127, 0, 0, 1], 1)));
        assert!(parse(&["--tls", "c.pem"]).is_err());
        assert_eq!(parse(&[]).unwrap().tls, None);
    }

    #[test]
    fn tells_the_http2_preface_from_http1() {
        assert_eq!(h2_preface(b"GET / HTTP/1.1\r\n"), Some(false));
        assert_eq!(h2_preface(b"PRI * HTTP/1.1\r\n\r\nSM\r\n\r\n"), Some(false));
        assert_eq!(
            h2_preface(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\x12"),
            Some(true)
        );
        assert_eq!(h2_preface(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), Some(true));
        assert_eq!(h2_preface(b"PRI * HT"), None);
        assert_eq!(h2_preface(b"P"), None);
        assert_eq!(h2_preface(b"POST"), Some(false));
    }

    #[test]
    fn reads_numbers_from_queries() {
        assert_eq!(query_number(Some("ms=300"), "ms"), Some(300));
        assert_eq!(query_number(Some("a=1&ms=7"), "ms"), Some(7));
        assert_eq!(query_number(Some("ms=x"), "ms"), None);
        assert_eq!(query_number(None, "ms"), None);
    }
}
