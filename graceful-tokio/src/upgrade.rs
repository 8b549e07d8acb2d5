//! Zero-downtime upgrade on `SIGHUP` (feature `upgrade`, Unix), on
//! tokio's signal handling: the adapter's half of [`graceful_upgrade`].
//!
//! [`upgrade_on_sighup`] is the one call: spawn the future it returns next
//! to the server. On `SIGHUP` a new process of this executable inherits the
//! listener; once it reports that it serves, this process hands over and
//! drains. In the new process (and under systemd's socket activation),
//! [`Inherited::from_env`] finds the listener to serve instead of binding
//! one, and [`Inherited::notify_ready`] reports that it serves. How an
//! upgrade goes, step by step, is [`graceful_upgrade`]'s to tell.

use crate::Listeners;
use graceful_core::Shutdown;
use std::io;
use std::os::fd::AsFd;

pub use graceful_upgrade::{Failure, Inherited, Progress, READY_TIMEOUT};

/// The upgrades of one shutdown, on `SIGHUP`. See [`upgrade_on_sighup`].
pub type Upgrades = graceful_upgrade::Upgrades<Listeners>;

/// Upgrades on each `SIGHUP`: [`graceful_upgrade::Upgrades::new`] with
/// `listener`, on this crate's signal [`Listeners`] (the type
/// [`signals`](crate::signals) listens with, here for `SIGHUP` alone).
/// `Upgrades::new` says what an upgrade does and when a `SIGHUP` is
/// ignored; [`Progress`], what `observe` hears.
///
/// The example below is the whole program, written once for the three
/// adapters: the smol and actix adapters show only their runtime's lines of
/// it.
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
    let hangups = Listeners::hangups()?;
    graceful_upgrade::Upgrades::new(shutdown, std::slice::from_ref(listener), hangups, observe)
}
