//! Zero-downtime upgrade on `SIGHUP` (feature `upgrade`, Unix), on
//! async-signal: the adapter's half of [`graceful_upgrade`].
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
/// The whole program is [graceful-tokio's example][whole], written once
/// for the three adapters; below are smol's lines of it.
///
/// Call it once the listener is bound, and spawn the returned future on any
/// executor: from then on, a `SIGHUP` no longer ends the process.
///
/// # Errors
///
/// When the handler cannot be installed, the listener cannot be
/// duplicated, or the shutdown has begun.
///
/// [whole]: https://docs.rs/graceful-tokio/latest/graceful_tokio/upgrade/fn.upgrade_on_sighup.html#examples
///
/// # Examples
///
/// ```no_run
/// use graceful_smol::upgrade::{Inherited, Progress};
/// use graceful_smol::Shutdown;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // First in `main`: the listener an upgrade (or systemd) passed down.
/// let mut inherited = Inherited::from_env()?;
/// smol::block_on(async {
///     let driver = Shutdown::builder().build()?;
///     let shutdown = driver.handle();
///     let listener = match inherited.take_listener()? {
///         Some(listener) => smol::net::TcpListener::try_from(listener)?,
///         None => smol::net::TcpListener::bind("127.0.0.1:8080").await?,
///     };
///     smol::spawn(graceful_smol::upgrade_on_sighup(&shutdown, &listener, |progress| {
///         if let Progress::Failed(failure) = progress {
///             eprintln!("upgrade failed: {failure}");
///         }
///     })?)
///     .detach();
///     // ... serve `listener` with `graceful_smol::serve`, then:
///     inherited.notify_ready()?;
///     let report = graceful_smol::run(driver).await;
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
