//! Zero-downtime upgrade on `SIGHUP` (feature `upgrade`, Unix), on
//! tokio's signal handling: the adapter's half of [`graceful_upgrade`].
//!
//! [`upgrade_on_sighup`] is the one call: spawn the future it returns next
//! to the server. On `SIGHUP` a new process of this executable inherits the
//! listener; once it reports that it serves, this process hands over and
//! drains. In the new process (and under systemd's socket activation),
//! [`Inherited::from_env`] finds the listener to serve instead of binding
//! one, and [`Inherited::notify_ready`] reports that it serves.

use graceful_core::signal::SignalSource;
use graceful_core::{Shutdown, Signal};
use std::fmt;
use std::io;
use std::os::fd::AsFd;
use std::task::{Context, Poll};

pub use graceful_upgrade::{Failure, Inherited, Progress, READY_TIMEOUT};

/// The upgrades of one shutdown, on `SIGHUP`. See [`upgrade_on_sighup`].
pub type Upgrades = graceful_upgrade::Upgrades<Hangups>;

/// Listens for `SIGHUP` and upgrades on each one: starts a new process of
/// this executable with the same arguments, which inherits `listener`, and
/// once it serves, [hands over](Shutdown::hand_over): this process's
/// readiness turns false, it stops accepting (without closing the socket,
/// which the new process accepts from) and drains as in any shutdown, with
/// cause [`Cause::Upgrade`](graceful_core::Cause::Upgrade).
///
/// `observe` hears [`Progress::Upgrading`], [`Progress::Failed`] (the new
/// process exited, or did not serve within [`READY_TIMEOUT`]: it is killed
/// and this process serves on) and [`Progress::Ignored`] (a `SIGHUP` during
/// an upgrade, or after the first `SIGTERM`/`SIGINT`). The first
/// `SIGTERM`/`SIGINT` during an upgrade ends the new process.
///
/// Call it once the listener is bound, in the runtime, and spawn the
/// returned future: its handler stays installed for the life of the
/// process, so a `SIGHUP` no longer ends it.
///
/// # Errors
///
/// When the handler cannot be installed, the listener cannot be
/// duplicated, or the shutdown has begun.
///
/// # Examples
///
/// ```no_run
/// use graceful_tokio::upgrade::{Inherited, Progress};
/// use graceful_tokio::{Cause, Event, Shutdown};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // First in `main`: the listener an upgrade (or systemd) passed down.
/// let mut inherited = Inherited::from_env()?;
/// let runtime = tokio::runtime::Runtime::new()?;
/// runtime.block_on(async {
///     let driver = Shutdown::builder()
///         .on_event(|event| {
///             if let Event::Requested { cause: Cause::Upgrade { pid } } = event {
///                 eprintln!("upgraded: {pid} serves now");
///             }
///         })
///         .build()?;
///     let shutdown = driver.handle();
///     let signals = graceful_tokio::signals(&shutdown)?;
///     let listener = match inherited.take_listener()? {
///         Some(listener) => tokio::net::TcpListener::from_std(listener)?,
///         None => tokio::net::TcpListener::bind("127.0.0.1:8080").await?,
///     };
///     tokio::spawn(graceful_tokio::upgrade_on_sighup(&shutdown, &listener, |progress| {
///         if let Progress::Failed(failure) = progress {
///             eprintln!("upgrade failed: {failure}");
///         }
///     })?);
///     # let service = hyper::service::service_fn(|_| async {
///     #     Ok::<_, std::convert::Infallible>(hyper::Response::new(http_body_util::Empty::<bytes::Bytes>::new()))
///     # });
///     tokio::spawn(graceful_tokio::serve(listener, service, &shutdown));
///     inherited.notify_ready()?;
///     let report = graceful_tokio::run(driver).with_signals(signals).await;
///     std::process::exit(report.exit_code().into())
/// })
/// # }
/// ```
pub fn upgrade_on_sighup<L: AsFd>(
    shutdown: &Shutdown,
    listener: &L,
    observe: impl FnMut(Progress<'_>) + Send + 'static,
) -> io::Result<Upgrades> {
    let hangups = Hangups::new()?;
    graceful_upgrade::Upgrades::new(shutdown, std::slice::from_ref(listener), hangups, observe)
}

/// tokio's listener for `SIGHUP`: the source of [`Upgrades`].
pub struct Hangups(tokio::signal::unix::Signal);

impl Hangups {
    fn new() -> io::Result<Hangups> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Hangups(signal(SignalKind::hangup())?))
    }
}

impl SignalSource for Hangups {
    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Signal> {
        // `None`: the runtime is shutting down, nothing more arrives.
        match self.0.poll_recv(cx) {
            Poll::Ready(Some(())) => Poll::Ready(Signal::HUP),
            Poll::Ready(None) | Poll::Pending => Poll::Pending,
        }
    }
}

impl fmt::Debug for Hangups {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hangups").finish_non_exhaustive()
    }
}
