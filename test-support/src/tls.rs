//! A certificate made for the test and a rustls client that trusts it.

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A fresh self-signed certificate for `localhost`, written as PEM files
/// in a directory of its own; `load` is called with the certificate's and
/// the key's paths (the adapter's `load_config`), then the directory is
/// removed. Returns what `load` made and a client config that trusts the
/// certificate and offers `alpn`.
pub fn self_signed<T>(
    alpn: &[&[u8]],
    load: impl FnOnce(&Path, &Path) -> T,
) -> (T, Arc<rustls::ClientConfig>) {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("rcgen");
    let dir = std::env::temp_dir().join(format!(
        "graceful-test-support-tls-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("dir");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).expect("cert");
    std::fs::write(&key, certified.key_pair.serialize_pem()).expect("key");
    let loaded = load(&cert, &key);
    std::fs::remove_dir_all(&dir).expect("clean");

    let mut roots = rustls::RootCertStore::empty();
    roots.add(certified.cert.der().clone()).expect("root");
    let mut client = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    client.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    (loaded, Arc::new(client))
}

/// The server name the certificate is for.
pub fn localhost() -> rustls::pki_types::ServerName<'static> {
    rustls::pki_types::ServerName::try_from("localhost").expect("name")
}

/// A blocking TLS client on `addr` for `localhost` with `client`'s
/// config, its reads bounded by `read_timeout`; the handshake happens on
/// the first read or write.
pub fn connect(
    addr: SocketAddr,
    client: &Arc<rustls::ClientConfig>,
    read_timeout: Duration,
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(read_timeout)).expect("timeout");
    let session = rustls::ClientConnection::new(client.clone(), localhost()).expect("session");
    rustls::StreamOwned::new(session, tcp)
}
