//! TLS for figure 2's TLS rows and figure 11: one self-signed certificate
//! per run, the servers started with `--tls CERT KEY`, and the runner's
//! rustls client that trusts that certificate.
//!
//! The certificate is made once per run with rcgen (as the conformance kit
//! and the adapters' tests make theirs) for `localhost`, and written as PEM
//! files in a directory of its own, removed when the [`Material`] is
//! dropped.

use crate::server::Spec;
use std::ffi::OsString;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The name the certificate is for, and the clients ask for.
const SERVER_NAME: &str = "localhost";

/// A run's certificate, its files, and the client config that trusts it.
pub(crate) struct Material {
    dir: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    /// ALPN `http/1.1`.
    pub(crate) http1: Arc<rustls::ClientConfig>,
}

impl Material {
    /// Makes the certificate and writes its files.
    pub(crate) fn generate() -> Result<Material, String> {
        let certified = rcgen::generate_simple_self_signed(vec![SERVER_NAME.to_owned()])
            .map_err(|e| format!("cannot make a certificate: {e}"))?;
        let dir = std::env::temp_dir().join(format!("graceful-bench-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        let write = |path: &PathBuf, pem: String| {
            std::fs::write(path, pem).map_err(|e| format!("cannot write {}: {e}", path.display()))
        };
        write(&cert, certified.cert.pem())?;
        write(&key, certified.key_pair.serialize_pem())?;
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(certified.cert.der().clone())
            .map_err(|e| format!("cannot trust the certificate: {e}"))?;
        let client = |alpn: &[u8]| {
            let mut config = rustls::ClientConfig::builder()
                .with_root_certificates(roots.clone())
                .with_no_client_auth();
            config.alpn_protocols = vec![alpn.to_vec()];
            Arc::new(config)
        };
        Ok(Material {
            http1: client(b"http/1.1"),
            dir,
            cert,
            key,
        })
    }

    /// `spec` serving TLS with this certificate: the same program and name,
    /// started with `--tls CERT KEY`.
    pub(crate) fn serving(&self, spec: &Spec) -> Spec {
        let mut spec = spec.clone();
        spec.args = vec![
            OsString::from("--tls"),
            self.cert.clone().into_os_string(),
            self.key.clone().into_os_string(),
        ];
        spec
    }
}

impl Drop for Material {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A blocking TLS connection to `addr` with `client`'s config, its reads
/// and writes bounded by `timeout`; the handshake happens on the first
/// write.
pub(crate) fn connect(
    addr: SocketAddr,
    client: &Arc<rustls::ClientConfig>,
    timeout: Duration,
) -> io::Result<rustls::StreamOwned<rustls::ClientConnection, TcpStream>> {
    let tcp = crate::http::connect(addr, timeout)?;
    let name = rustls::pki_types::ServerName::try_from(SERVER_NAME).map_err(io::Error::other)?;
    let session = rustls::ClientConnection::new(client.clone(), name).map_err(io::Error::other)?;
    Ok(rustls::StreamOwned::new(session, tcp))
}
