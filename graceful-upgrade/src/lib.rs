//! Zero-downtime upgrade for graceful: on `SIGHUP`, a new process of the
//! same executable takes over the listening sockets, and the old one drains
//! only once the new one serves. No runtime in it; each adapter's
//! `upgrade_on_sighup` binds it to its runtime's signals.
//!
//! # How an upgrade goes
//!
//! 1. `SIGHUP`: [`Upgrades`] reports [`Progress::Upgrading`] and
//!    [`start`]s the current executable (`std::env::current_exe`) with the
//!    same arguments. The listening sockets are inherited as descriptors
//!    3, 4, ... in systemd's socket-activation form (`LISTEN_FDS`,
//!    `LISTEN_FDNAMES`), with one more, a Unix socket named [`READY_NAME`],
//!    to report on. The sockets are never closed in between: a connection
//!    made at any moment is accepted by one process or the other.
//! 2. The new process finds its listeners with [`Inherited::from_env`] (the
//!    same code path serves systemd's socket activation), serves, and calls
//!    [`Inherited::notify_ready`].
//! 3. The old process then [hands over](graceful_core::Shutdown::hand_over):
//!    its readiness turns false, its accept loop lets go of its copies of
//!    the sockets (no socket filter, no reading of the queue: the new
//!    process accepts from the same queue), and it drains what it accepted,
//!    runs its cleanup and exits, as in any shutdown.
//! 4. A new process that exits, or is not ready within [`READY_TIMEOUT`]
//!    (10 s), is killed (`SIGKILL`, then reaped), [`Progress::Failed`] says
//!    why ([`Failure::reason`]: `exited`, `timeout`), and the old process
//!    serves on. A `SIGHUP` during an upgrade is ignored; the first
//!    `SIGTERM`/`SIGINT` during one kills the new process and the shutdown
//!    goes on as usual.
//!
//! # Why these parts
//!
//! `unsafe` is forbidden here, as in every graceful crate, so the OS parts
//! come from maintained crates: `command-fds` maps the descriptors into the
//! child (`dup2` between fork and exec, close-on-exec cleared), and
//! `listenfd` takes them back as typed sockets (marked close-on-exec). The
//! ready report is a socket rather than the child's standard output, which
//! both processes share.
//!
//! # Example
//!
//! ```no_run
//! use graceful_upgrade::Inherited;
//! use std::net::TcpListener;
//!
//! # fn main() -> std::io::Result<()> {
//! // First thing in `main`, before any thread starts.
//! let mut inherited = Inherited::from_env()?;
//! let listener = match inherited.take_listener()? {
//!     Some(listener) => listener,
//!     None => TcpListener::bind("127.0.0.1:8080")?,
//! };
//! // ... serve `listener`, and spawn the adapter's
//! // `upgrade_on_sighup(&shutdown, &listener, ...)` ...
//! inherited.notify_ready()?;
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]
#![cfg(unix)]

mod inherited;
mod start;
mod upgrades;

pub use inherited::{Inherited, READY_NAME, SHARED_NAME};
pub use start::{Failure, Outcome, READY_TIMEOUT, Starting, kill, start};
pub use upgrades::{Progress, Upgrades};
