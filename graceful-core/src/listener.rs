//! Closing a listening socket without resetting the connections in its
//! accept queue (feature `net`).
//!
//! Closing a listener resets every connection the kernel has completed but
//! nobody has accepted yet: their clients see a reset for a request they
//! may already have sent. [`close`] hands those connections over first.
//! The adapters call it when the shutdown starts draining, with the socket
//! taken out of their runtime's reactor, and drop their
//! [`ListenerToken`](crate::ListenerToken) only once it has returned, so
//! that `Closed` is reported only when a new connection would be refused.

use std::io;
use std::net::{TcpListener, TcpStream};

/// Accepts every connection in `listener`'s queue, hands each to
/// `accepted`, then closes the listener.
///
/// `listener` must be in non-blocking mode (as every runtime leaves it): the
/// queue is read with `accept` until it would block. On Linux a socket
/// filter that drops every packet is attached first, so no handshake
/// completes while the queue is read and no connection slips in between
/// the last `accept` and the close; a new connection is refused from then
/// on. Accepted sockets are blocking, as `accept` returns them: set them
/// non-blocking before handing them to a runtime.
///
/// Errors that concern one incoming connection ([`is_per_connection`]) are
/// skipped. Another error from `accept`, or an error `accepted` returns,
/// stops the reading and is returned; the listener is closed either way.
pub fn close(
    listener: TcpListener,
    mut accepted: impl FnMut(TcpStream) -> io::Result<()>,
) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    stop_handshakes(&listener);
    loop {
        match listener.accept() {
            Ok((stream, _)) => accepted(stream)?,
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(error) if is_per_connection(&error) => {}
            Err(error) => return Err(error),
        }
    }
}

/// Lets go of this process's copy of a listening socket that another
/// process shares (an upgrade handed it over, or it was inherited): no
/// socket filter, no reading of the queue. The socket stays open, and its
/// queue served, in the other process.
///
/// [`close`]'s drop-all filter must never reach such a socket: a filter
/// belongs to the socket, not to the file descriptor, so the other process
/// would stop completing handshakes too.
pub fn release(listener: TcpListener) {
    drop(listener);
}

/// The sockets [`mark_shared`] was told of, by device and inode (a
/// socket's identity, whatever descriptor refers to it).
#[cfg(unix)]
static SHARED: std::sync::Mutex<Vec<(u64, u64)>> = std::sync::Mutex::new(Vec::new());

/// A socket's device and inode, read through a descriptor of its own.
#[cfg(unix)]
fn identity(socket: std::os::fd::BorrowedFd<'_>) -> io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::File::from(socket.try_clone_to_owned()?).metadata()?;
    Ok((meta.dev(), meta.ino()))
}

/// Marks `listener`'s socket as shared with a process that keeps it after
/// this one stops (systemd, which passed it by socket activation and
/// queues the connections for the next instance): the accept loop then
/// [releases](release) it at the drain, with no socket filter and no
/// reading of its queue, as at an upgrade's hand-over. The mark belongs to
/// the socket, so every descriptor of it in this process is marked.
///
/// # Errors
///
/// The socket's identity cannot be read (`fstat`).
#[cfg(unix)]
pub fn mark_shared(listener: &impl std::os::fd::AsFd) -> io::Result<()> {
    let id = identity(listener.as_fd())?;
    let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if !shared.contains(&id) {
        shared.push(id);
    }
    Ok(())
}

/// Whether [`mark_shared`] marked `listener`'s socket. A socket whose
/// identity cannot be read counts as not shared.
#[cfg(unix)]
pub fn is_shared(listener: &impl std::os::fd::AsFd) -> bool {
    identity(listener.as_fd()).is_ok_and(|id| {
        SHARED
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&id)
    })
}

/// True for `accept` errors that concern one incoming connection, not the
/// listener: the connection is gone, accepting goes on.
pub fn is_per_connection(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
    )
}

/// Makes the kernel drop every packet that reaches the listening socket, so
/// that no handshake completes any more. Connections already in the queue
/// have sockets of their own and are not affected.
///
/// (`shutdown(SHUT_RD)` on a listening socket is no substitute: Linux resets
/// the queued connections then, as on close.)
#[cfg(target_os = "linux")]
fn stop_handshakes(listener: &TcpListener) {
    use socket2::{SockFilter, SockRef};
    // One classic BPF instruction: `ret #0`, keep no byte of the packet.
    const BPF_RET_K: u16 = 0x06;
    let drop_all = [SockFilter::new(BPF_RET_K, 0, 0, 0)];
    if let Err(_error) = SockRef::from(listener).attach_filter(&drop_all) {
        // Not fatal: the race it closes is microseconds wide.
        #[cfg(feature = "tracing")]
        tracing::warn!(error = %_error, "could not stop handshakes before closing the listener");
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::Shutdown;

    #[test]
    fn queued_connections_are_handed_over_and_later_ones_refused() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        // Completed by the kernel, never accepted by the program.
        let mut queued: Vec<TcpStream> =
            (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
        for (i, client) in queued.iter_mut().enumerate() {
            client.write_all(&[b'a' + i as u8]).unwrap();
        }
        let mut served = Vec::new();
        close(listener, |mut stream| {
            stream.set_nonblocking(false)?;
            let mut byte = [0];
            stream.read_exact(&mut byte)?;
            stream.write_all(&byte)?;
            served.push(stream);
            Ok(())
        })
        .unwrap();
        assert_eq!(served.len(), 3);
        // Each queued client is answered, not reset.
        for (i, client) in queued.iter_mut().enumerate() {
            let mut byte = [0];
            client.read_exact(&mut byte).unwrap();
            assert_eq!(byte[0], b'a' + i as u8);
            client.shutdown(Shutdown::Both).unwrap();
        }
        assert_eq!(
            TcpStream::connect(addr).unwrap_err().kind(),
            io::ErrorKind::ConnectionRefused
        );
    }

    /// Whether a connect to `addr` is accepted on `other` within 2 s.
    #[cfg(target_os = "linux")]
    fn served_by(other: &TcpListener, addr: std::net::SocketAddr) -> bool {
        use std::time::{Duration, Instant};
        // A SYN the filter drops leaves the connect pending: give up on it
        // with a bound, and look for it on the other copy meanwhile.
        let client = std::thread::spawn(move || {
            TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok()
        });
        let until = Instant::now() + Duration::from_secs(3);
        while Instant::now() < until {
            match other.accept() {
                Ok(_) => return client.join().unwrap(),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(error) => panic!("accept: {error}"),
            }
        }
        let _ = client.join();
        false
    }

    #[test]
    #[cfg(unix)]
    fn a_mark_belongs_to_the_socket_not_to_the_descriptor() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let copy = listener.try_clone().unwrap();
        let other = TcpListener::bind("127.0.0.1:0").unwrap();
        assert!(!is_shared(&listener));
        mark_shared(&listener).unwrap();
        assert!(is_shared(&listener) && is_shared(&copy));
        assert!(!is_shared(&other));
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn a_released_shared_socket_goes_on_serving_its_other_copy() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        // The copy another process would hold after an upgrade.
        let other = listener.try_clone().unwrap();
        release(listener);
        assert!(served_by(&other, addr), "a connect after the release");
    }

    /// The control of the test above: `close`'s filter reaches every copy
    /// of the socket, which is why it must never be used on a shared one.
    #[test]
    #[cfg(target_os = "linux")]
    fn the_drop_all_filter_would_stop_the_other_copy_too() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let other = listener.try_clone().unwrap();
        close(listener, |_| Ok(())).unwrap();
        assert!(!served_by(&other, addr), "the filter outlived its copy");
    }

    #[test]
    fn an_error_from_the_handler_stops_the_reading_and_still_closes() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let _queued: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(addr).unwrap()).collect();
        let mut calls = 0;
        let result = close(listener, |_| {
            calls += 1;
            Err(io::Error::other("no worker"))
        });
        assert_eq!(result.unwrap_err().to_string(), "no worker");
        assert_eq!(calls, 1);
        assert!(TcpStream::connect(addr).is_err());
    }
}
