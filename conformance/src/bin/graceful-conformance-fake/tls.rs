//! TLS in front of the plaintext server: each TLS connection is
//! handshaken on its own thread, then joined to a fresh loopback TCP
//! connection that `server::serve` answers as any other, with the bytes
//! pumped between the two. The protocol inside (HTTP/1.1 or h2, chosen by
//! ALPN) is told apart by the preface, as on the plaintext port.

use std::fs;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

use crate::config::{Config, Fault};
use crate::{ConnEntry, ConnState, Shared, lock};

/// The TLS configuration the command line asks for: `None` for plaintext;
/// an error (a usage error) for one option without the other or a file
/// that cannot be read or parsed.
pub(crate) fn load(config: &Config) -> Result<Option<Arc<ServerConfig>>, String> {
    let (cert, key) = match (&config.tls_cert, &config.tls_key) {
        (None, None) => return Ok(None),
        (Some(_), None) => return Err("'--tls-cert' needs '--tls-key'".into()),
        (None, Some(_)) => return Err("'--tls-key' needs '--tls-cert'".into()),
        (Some(c), Some(k)) => (c, k),
    };
    let read = |option: &str, path: &Path| {
        fs::read(path)
            .map_err(|e| format!("invalid value '{}' for '{option}': {e}", path.display()))
    };
    let cert_pem = read("--tls-cert", cert)?;
    let key_pem = read("--tls-key", key)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("invalid value '{}' for '--tls-cert': {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "invalid value '{}' for '--tls-cert': no PEM certificate in it",
            cert.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| format!("invalid value '{}' for '--tls-key': {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS configuration: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("'--tls-cert' and '--tls-key' do not make a TLS identity: {e}"))?;
    if !config.has(Fault::TlsNoAlpn) {
        server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    }
    Ok(Some(Arc::new(server)))
}

/// Registers a handshaking connection as in progress (the
/// `tls-wait-handshake` fault); returns its id.
fn register_busy(shared: &Shared, stream: &TcpStream) -> Option<u64> {
    let copy = stream.try_clone().ok()?;
    let mut st = lock(&shared.state);
    let id = st.next_conn;
    st.next_conn += 1;
    st.conns.insert(
        id,
        ConnEntry {
            stream: copy,
            state: ConnState::Busy,
            h2: None,
        },
    );
    Some(id)
}

fn unregister(shared: &Shared, id: Option<u64>) {
    if let Some(id) = id {
        lock(&shared.state).conns.remove(&id);
        shared.changed.notify_all();
    }
}

/// What the drain sees of one TLS relay: a response is not delivered while
/// its bytes wait in the loopback socket or in the relay's hands.
#[derive(Debug)]
pub(crate) struct Relay {
    near: TcpStream,
    moving: Arc<AtomicBool>,
}

impl Relay {
    /// Whether nothing the server wrote is still on its way.
    pub(crate) fn is_empty(&self) -> bool {
        let mut one = [0u8; 1];
        !self.moving.load(Ordering::SeqCst)
            && match self.near.peek(&mut one) {
                Ok(n) => n == 0,
                Err(_) => true,
            }
    }
}

/// A connected loopback pair: (the end the pump uses, the end served).
fn loopback_pair() -> io::Result<(TcpStream, TcpStream)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let near = TcpStream::connect(listener.local_addr()?)?;
    let (far, _) = listener.accept()?;
    Ok((near, far))
}

/// Serves one accepted TLS connection.
pub(crate) fn serve(shared: &Arc<Shared>, config: Arc<ServerConfig>, mut sock: TcpStream) {
    let _ = sock.set_nodelay(true);
    let busy = if shared.config.has(Fault::TlsWaitHandshake) {
        register_busy(shared, &sock)
    } else {
        None
    };
    let Ok(mut conn) = ServerConnection::new(config) else {
        unregister(shared, busy);
        return;
    };
    while conn.is_handshaking() {
        if conn.complete_io(&mut sock).is_err() {
            unregister(shared, busy);
            return;
        }
    }
    unregister(shared, busy);
    let Ok((mut near, far)) = loopback_pair() else {
        return;
    };
    let _ = near.set_nonblocking(true);
    let moving = Arc::new(AtomicBool::new(false));
    let Ok(peek) = near.try_clone() else {
        return;
    };
    let relay = {
        let mut st = lock(&shared.state);
        let id = st.next_relay;
        st.next_relay += 1;
        st.relays.insert(
            id,
            Relay {
                near: peek,
                moving: Arc::clone(&moving),
            },
        );
        id
    };
    let inner = Arc::clone(shared);
    let spawned = thread::Builder::new()
        .name("conn".into())
        .spawn(move || crate::server::serve(&inner, far));
    if spawned.is_err() {
        lock(&shared.state).relays.remove(&relay);
        return;
    }
    pump(shared, StreamOwned::new(conn, sock), &mut near, &moving);
    lock(&shared.state).relays.remove(&relay);
    shared.poke();
}

fn waiting(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Moves bytes both ways until the served side closes; then closes the
/// TLS side with a `close_notify` (but for the `tls-no-close-notify`
/// fault).
fn pump(
    shared: &Shared,
    mut tls: StreamOwned<ServerConnection, TcpStream>,
    near: &mut TcpStream,
    moving: &AtomicBool,
) {
    let _ = tls.sock.set_read_timeout(Some(Duration::from_millis(1)));
    let mut buf = vec![0u8; 16 * 1024];
    let mut client_done = false;
    loop {
        if !client_done {
            match tls.read(&mut buf) {
                Ok(0) => {
                    client_done = true;
                    let _ = near.shutdown(Shutdown::Write);
                }
                Ok(n) => {
                    if near.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                Err(e) if waiting(&e) => {}
                Err(_) => {
                    client_done = true;
                    let _ = near.shutdown(Shutdown::Write);
                }
            }
        }
        moving.store(true, Ordering::SeqCst);
        let got = near.read(&mut buf);
        let moved = matches!(got, Ok(n) if n > 0);
        let done = match got {
            Ok(0) => {
                if !shared.config.has(Fault::TlsNoCloseNotify) {
                    tls.conn.send_close_notify();
                    let _ = tls.flush();
                }
                true
            }
            Ok(n) => tls.write_all(&buf[..n]).and_then(|()| tls.flush()).is_err(),
            Err(e) => !waiting(&e),
        };
        moving.store(false, Ordering::SeqCst);
        if moved {
            shared.poke();
        }
        if done {
            break;
        }
        if client_done && !moved {
            thread::sleep(Duration::from_millis(1));
        }
    }
    let _ = tls.sock.shutdown(Shutdown::Both);
}
