//! The new process's side: the listeners it inherited, and the word that
//! it serves.

use std::collections::VecDeque;
use std::env;
use std::io::{self, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixStream;

/// The name, in `LISTEN_FDNAMES`, of the socket a new process reports on
/// that it serves: one byte, written by [`Inherited::notify_ready`].
pub const READY_NAME: &str = "graceful-upgrade-ready";

/// The `LISTEN_FDNAMES` name of a listener shared with systemd (socket
/// activation), which a new process must release, never close, at its own
/// drain ([`graceful_core::listener::mark_shared`]).
pub const SHARED_NAME: &str = "graceful-shared";

/// The sockets this process inherited, in systemd's socket-activation form:
/// `LISTEN_FDS` descriptors from 3 on, named by `LISTEN_FDNAMES`.
///
/// They come from systemd (socket activation), or from the process that
/// started this one for an upgrade ([`start`](crate::start)), which adds a
/// socket named [`READY_NAME`] to report on. The same code path serves
/// both: take the listeners with [`Inherited::take_listener`], bind only
/// when there is none, and call [`Inherited::notify_ready`] once serving.
///
/// # `LISTEN_PID`
///
/// systemd sets `LISTEN_PID` to the pid the descriptors are meant for. An
/// upgrade cannot: the new process's pid is known only after the fork, and
/// setting a variable between the fork and the exec needs code that is not
/// safe Rust. So an upgrade leaves `LISTEN_PID` unset, and an unset
/// `LISTEN_PID` is accepted (a set one must be this process's pid). What
/// keeps a stray `LISTEN_FDS` from being taken by the wrong process is that
/// [`Inherited::from_env`] removes `LISTEN_FDS` and `LISTEN_PID` once read,
/// and that an upgrade sets all three variables itself.
#[derive(Debug, Default)]
pub struct Inherited {
    listeners: VecDeque<TcpListener>,
    ready: Option<UnixStream>,
}

impl Inherited {
    /// Reads `LISTEN_FDS`, `LISTEN_PID` and `LISTEN_FDNAMES`, and takes
    /// the descriptors they name: TCP listeners, and the upgrade's ready
    /// socket. Each is made close-on-exec. With no `LISTEN_FDS` (or one for
    /// another process), nothing is inherited.
    ///
    /// Call it once, early in `main`, before any other thread starts: it
    /// removes `LISTEN_FDS` and `LISTEN_PID` from the environment.
    ///
    /// # Errors
    ///
    /// A descriptor named in `LISTEN_FDS` is not a TCP listener (or, for
    /// the one named [`READY_NAME`], not a Unix stream socket).
    pub fn from_env() -> io::Result<Inherited> {
        let names: Vec<String> = env::var("LISTEN_FDNAMES")
            .map(|names| names.split(':').map(str::to_owned).collect())
            .unwrap_or_default();
        // systemd sets LISTEN_PID (an upgrade does not): its sockets stay
        // systemd's, which queues connections for the next instance.
        let activated = env::var_os("LISTEN_PID").is_some();
        let mut fds = listenfd::ListenFd::from_env();
        let mut inherited = Inherited::default();
        for index in 0..fds.len() {
            if names.get(index).map(String::as_str) == Some(READY_NAME) {
                inherited.ready = fds.take_custom::<UnixStream>(
                    index,
                    libc::AF_UNIX,
                    libc::SOCK_STREAM,
                    "unix stream socket",
                )?;
            } else if let Some(listener) = fds.take_tcp_listener(index)? {
                // Shared with systemd: released, never closed, at the drain
                // (and passed on as such by an upgrade).
                if activated || names.get(index).map(String::as_str) == Some(SHARED_NAME) {
                    graceful_core::listener::mark_shared(&listener)?;
                }
                inherited.listeners.push_back(listener);
            }
        }
        Ok(inherited)
    }

    /// Whether an upgrade started this process: its parent waits for
    /// [`Inherited::notify_ready`].
    pub fn is_upgrade(&self) -> bool {
        self.ready.is_some()
    }

    /// The next inherited listener, in `LISTEN_FDS` order, in non-blocking
    /// mode (as every runtime wants it; the mode belongs to the socket's
    /// open file, which the process that passed it shares).
    ///
    /// # Errors
    ///
    /// When the socket cannot be made non-blocking.
    pub fn take_listener(&mut self) -> io::Result<Option<TcpListener>> {
        let Some(listener) = self.listeners.pop_front() else {
            return Ok(None);
        };
        listener.set_nonblocking(true)?;
        Ok(Some(listener))
    }

    /// Tells the process that started this one that this one serves: call
    /// it once the listeners are served (after the `listening` line). The
    /// old process then hands over and drains. Does nothing the second
    /// time, or when no upgrade started this process.
    ///
    /// # Errors
    ///
    /// The report could not be written (the old process is gone, or gave
    /// up on this one).
    pub fn notify_ready(&mut self) -> io::Result<()> {
        match self.ready.take() {
            Some(mut ready) => ready.write_all(b"R"),
            None => Ok(()),
        }
    }
}
