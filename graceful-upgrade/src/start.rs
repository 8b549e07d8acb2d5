//! The old process's side: a new process of the same executable, started
//! with the listeners, and the wait for its word that it serves.

use crate::inherited::READY_NAME;
use command_fds::{CommandFdExt, FdMapping};
use std::env;
use std::fmt;
use std::io::{self, Read};
use std::os::fd::{BorrowedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, ExitStatus};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::{Duration, Instant};

/// How long a new process has to report that it serves: 10 s.
pub const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// The first descriptor of systemd's socket-activation form.
const FIRST_FD: RawFd = 3;

/// Why an upgrade's new process did not take over.
#[derive(Debug)]
#[non_exhaustive]
pub enum Failure {
    /// It exited (or closed its ready socket) before it reported that it
    /// serves; its status, when it could be read.
    Exited(Option<ExitStatus>),
    /// It did not report within the timeout; it was killed.
    Timeout,
    /// It could not be started.
    Spawn(io::Error),
    /// Its report could not be read; it was killed.
    Io(io::Error),
}

impl Failure {
    /// One word for it: `exited`, `timeout`, `spawn` or `error` (the
    /// contract's `upgrade-failed REASON`).
    pub fn reason(&self) -> &'static str {
        match self {
            Failure::Exited(_) => "exited",
            Failure::Timeout => "timeout",
            Failure::Spawn(_) => "spawn",
            Failure::Io(_) => "error",
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Exited(Some(status)) => {
                write!(f, "the new process exited before serving ({status})")
            }
            Failure::Exited(None) => f.write_str("the new process exited before serving"),
            Failure::Timeout => f.write_str("the new process did not serve in time"),
            Failure::Spawn(error) => write!(f, "cannot start the new process: {error}"),
            Failure::Io(error) => write!(f, "cannot read the new process's report: {error}"),
        }
    }
}

impl std::error::Error for Failure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Failure::Spawn(error) | Failure::Io(error) => Some(error),
            Failure::Exited(_) | Failure::Timeout => None,
        }
    }
}

/// How a start ended.
#[derive(Debug)]
pub enum Outcome {
    /// The new process serves on the listeners.
    Ready(Child),
    /// It did not come up, and is gone.
    Failed(Failure),
}

/// A new process being started. See [`start`].
#[derive(Debug)]
pub struct Starting {
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    /// The child, from its spawn until it is reaped, or handed out as
    /// ready.
    child: Mutex<Spawned>,
    /// The outcome once known, and who waits for it.
    slot: Mutex<(Option<Outcome>, Option<Waker>)>,
}

#[derive(Debug, Default)]
struct Spawned {
    child: Option<Child>,
    pid: Option<u32>,
    /// [`Starting::cancel`] was called: a child spawned after it is killed
    /// at once.
    cancelled: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts a new process of the current executable, with the same
/// arguments, that inherits `listeners` as descriptors 3, 4, ... in
/// systemd's form (`LISTEN_FDS`, `LISTEN_FDNAMES`; see
/// [`Inherited`](crate::Inherited)), plus a socket to report on, and waits
/// for that report, for at most `timeout`: both on a thread of its own, so
/// that this returns at once.
///
/// Standard input, output and error are inherited. A process that exits,
/// closes its report socket, or stays silent past `timeout` is killed
/// (`SIGKILL`) and reaped, and the outcome says why; one that cannot be
/// started is [`Failure::Spawn`] in the outcome.
///
/// # Why the spawn is off the caller's thread
///
/// The caller is a runtime's thread ([`Upgrades`](crate::Upgrades) is
/// polled there), and a spawn blocks until the exec: `command-fds` maps the
/// descriptors between fork and exec, so std forks, and a fork copies the
/// page tables of the whole process. Measured on this project's 2-core
/// box, 20 spawns each: a median of 0.6 ms for a process of a few MB, 9.5
/// ms at 64 MB resident, 54 ms at 512 MB (up to 84 ms). That is a stalled
/// runtime thread in proportion to the server's memory, so the fork and
/// exec happen on the waiting thread.
///
/// # Errors
///
/// [`Failure::Spawn`]: the executable cannot be found, a descriptor cannot
/// be duplicated, or the waiting thread cannot be started.
pub fn start(listeners: &[BorrowedFd<'_>], timeout: Duration) -> Result<Starting, Failure> {
    let exe = env::current_exe().map_err(Failure::Spawn)?;
    let (ours, theirs) = UnixStream::pair().map_err(Failure::Spawn)?;
    let mut mappings = Vec::with_capacity(listeners.len() + 1);
    let mut names = Vec::with_capacity(listeners.len() + 1);
    for (fd, child_fd) in listeners.iter().zip(FIRST_FD..) {
        let parent_fd = fd.try_clone_to_owned().map_err(Failure::Spawn)?;
        mappings.push(FdMapping {
            parent_fd,
            child_fd,
        });
        // A socket systemd shares stays marked in the new process.
        names.push(if graceful_core::listener::is_shared(fd) {
            crate::inherited::SHARED_NAME
        } else {
            "listener"
        });
    }
    mappings.push(FdMapping {
        parent_fd: theirs.into(),
        child_fd: FIRST_FD + RawFd::try_from(listeners.len()).unwrap_or(RawFd::MAX - FIRST_FD),
    });
    names.push(READY_NAME);
    let mut command = Command::new(exe);
    command
        .args(env::args_os().skip(1))
        .env("LISTEN_FDS", mappings.len().to_string())
        .env("LISTEN_FDNAMES", names.join(":"))
        .env_remove("LISTEN_PID")
        .env_remove("LISTEN_FDS_FIRST_FD");
    command
        .fd_mappings(mappings)
        .map_err(|_| Failure::Spawn(io::Error::other("two listeners on one descriptor")))?;
    let shared = Arc::new(Shared::default());
    let waiter = thread::Builder::new()
        .name("graceful-upgrade".to_owned())
        .spawn({
            let shared = shared.clone();
            move || {
                let outcome = spawn_and_wait(&shared, command, ours, timeout);
                let waker = {
                    let mut slot = lock(&shared.slot);
                    slot.0 = Some(outcome);
                    slot.1.take()
                };
                if let Some(waker) = waker {
                    waker.wake();
                }
            }
        });
    waiter.map_err(Failure::Spawn)?;
    Ok(Starting { shared })
}

/// On the waiting thread: the spawn, then the report.
fn spawn_and_wait(
    shared: &Shared,
    mut command: Command,
    ours: UnixStream,
    timeout: Duration,
) -> Outcome {
    let spawned = command.spawn();
    // The command holds this process's copies of what the child inherited:
    // dropped here, so that the report socket reads end-of-file as soon as
    // the child is gone.
    drop(command);
    let child = match spawned {
        Ok(child) => child,
        Err(error) => return Outcome::Failed(Failure::Spawn(error)),
    };
    {
        let mut spawned = lock(&shared.child);
        spawned.pid = Some(child.id());
        let cancelled = spawned.cancelled;
        let child = spawned.child.insert(child);
        if cancelled {
            let _ = child.kill();
        }
    }
    match wait_ready(ours, timeout) {
        Ok(()) => {
            let mut spawned = lock(&shared.child);
            // A cancel that came before the report was read ends the
            // process whatever it managed to write first: on a busy
            // machine the new process can report before this thread has
            // sent the kill of a cancel that came before the spawn.
            if spawned.cancelled {
                drop(spawned);
                return Outcome::Failed(Failure::Exited(end(shared)));
            }
            match spawned.child.take() {
                Some(child) => Outcome::Ready(child),
                None => Outcome::Failed(Failure::Exited(None)),
            }
        }
        Err(failure) => {
            let status = end(shared);
            Outcome::Failed(match failure {
                Failure::Exited(_) => Failure::Exited(status),
                other => other,
            })
        }
    }
}

/// Reads the one-byte report, within `timeout`.
fn wait_ready(mut ours: UnixStream, timeout: Duration) -> Result<(), Failure> {
    let until = Instant::now() + timeout;
    let mut byte = [0];
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Failure::Timeout);
        }
        ours.set_read_timeout(Some(left)).map_err(Failure::Io)?;
        return match ours.read(&mut byte) {
            Ok(0) => Err(Failure::Exited(None)),
            Ok(_) => Ok(()),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Err(Failure::Timeout)
            }
            Err(error) => Err(Failure::Io(error)),
        };
    }
}

/// Kills the child (`SIGKILL`) and reaps it; its status, if it was there.
fn end(shared: &Shared) -> Option<ExitStatus> {
    let mut child = lock(&shared.child).child.take()?;
    let _ = child.kill();
    child.wait().ok()
}

impl Starting {
    /// The new process's pid, once it is started (the spawn happens on the
    /// waiting thread).
    pub fn pid(&self) -> Option<u32> {
        lock(&self.shared.child).pid
    }

    /// The outcome, once the new process reported, exited or timed out.
    pub fn poll_outcome(&mut self, cx: &mut Context<'_>) -> Poll<Outcome> {
        let mut slot = lock(&self.shared.slot);
        match slot.0.take() {
            Some(outcome) => Poll::Ready(outcome),
            None => {
                slot.1 = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    /// Ends the new process now (`SIGKILL`); the outcome follows, as
    /// [`Failure::Exited`] (or [`Outcome::Ready`] if the outcome was
    /// already out: end that process too, with [`kill`]).
    pub fn cancel(&self) {
        let mut spawned = lock(&self.shared.child);
        spawned.cancelled = true;
        if let Some(child) = spawned.child.as_mut() {
            let _ = child.kill();
        }
    }
}

/// Kills a ready new process that is not to take over, and reaps it.
pub fn kill(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}
