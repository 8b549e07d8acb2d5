//! `--tls-cert PATH` and `--tls-key PATH`: the TLS config a target serves
//! with, loaded while the command line is read, so that a bad file is a
//! usage error before anything is bound.
//!
//! Loading is the adapters' own ([`graceful_tokio::tls::load_config`], the
//! same function under every adapter): a PEM certificate chain and a PEM
//! private key, ALPN `h2` and `http/1.1`. This module only ties its errors
//! to the options.

use graceful_tokio::tls::{TlsError, load_config, rustls::ServerConfig};
use std::path::Path;
use std::sync::Arc;

/// The TLS config of `--tls-cert` and `--tls-key`: `None` for plaintext
/// (neither given).
///
/// # Errors
///
/// The option to name and the message: one option without the other, or a
/// file that cannot be read or parsed (named by its option and its path).
pub fn config(
    cert: Option<&Path>,
    key: Option<&Path>,
) -> Result<Option<Arc<ServerConfig>>, (&'static str, String)> {
    match (cert, key) {
        (None, None) => Ok(None),
        (Some(_), None) => Err(("--tls-key", "required with --tls-cert".into())),
        (None, Some(_)) => Err(("--tls-cert", "required with --tls-key".into())),
        (Some(cert), Some(key)) => load_config(cert, key).map(Some).map_err(|error| {
            let option = option_of(&error);
            (option, error.to_string())
        }),
    }
}

/// The option whose file `error` is about.
fn option_of(error: &TlsError) -> &'static str {
    if error.is_private_key() {
        "--tls-key"
    } else {
        "--tls-cert"
    }
}
