//! systemd's service notifications (feature `systemd`): `READY=1` when
//! serving, `STOPPING=1` at the first signal, and the stop timeout extended
//! to what each phase of the shutdown may still take.
//!
//! Under a unit with `Type=notify`, systemd waits for [`notify_ready`]
//! before it counts the service as started (and before it starts what is
//! ordered after it), and shows the shutdown's progress in
//! `systemctl status`. [`Builder::notify_systemd`] adds the notifications
//! of the shutdown itself:
//!
//! | event | notification |
//! | --- | --- |
//! | an upgrade's start ([`notify_reloading`], sent by `graceful-upgrade` with its `systemd` feature) | `RELOADING=1`, `MONOTONIC_USEC=` now, `STATUS=upgrading` |
//! | an upgrade that failed ([`notify_ready`] again: this process serves on) | `READY=1`, `STATUS=serving` |
//! | an upgrade's hand-over | `MAINPID=` the new process, `READY=1`, `STATUS=upgraded` |
//! | the first signal | `STOPPING=1`, `STATUS=stopping (SIGTERM)`, `EXTEND_TIMEOUT_USEC` = unready delay + drain timeout + one cleanup timeout + margin |
//! | `closed` | `STATUS=draining`, `EXTEND_TIMEOUT_USEC` = drain timeout + one cleanup timeout + margin |
//! | drained, abandoned, each cleanup step | `STATUS=cleaning up`, `EXTEND_TIMEOUT_USEC` = one cleanup timeout + margin |
//! | the end | `STATUS=finished (exit N)` or `STATUS=forced (exit N)` |
//!
//! # Design
//!
//! **Extend, not replace, `TimeoutStopSec`.** `EXTEND_TIMEOUT_USEC=N` asks
//! systemd not to kill the service for N µs from now; it never shortens a
//! longer `TimeoutStopSec`. Sending, at each phase, the longest that phase
//! and the rest may still take keeps a drain that stays within its own
//! settings from being killed by a unit whose timeout was set too short,
//! and a drain that hangs beyond them is still killed. Set
//! `TimeoutStopSec` to [`Builder::grace_period_needed`] anyway: it is the
//! bound when the notifications are lost.
//!
//! **Best effort.** Outside systemd (`NOTIFY_SOCKET` unset) every call does
//! nothing. A notification that cannot be sent is not an error of the
//! shutdown: the observer ignores it, and [`notify_ready`] returns it for
//! the caller to log.
//!
//! [`Builder::notify_systemd`]: crate::Builder::notify_systemd
//! [`Builder::grace_period_needed`]: crate::Builder::grace_period_needed

use crate::builder::Builder;
use crate::cause::Cause;
use crate::inner::{Config, Observer};
use crate::report::Event;
use sd_notify::NotifyState;
use std::io;
use std::time::Duration;

/// Tells systemd that the service is serving: `READY=1`. Call it once the
/// listeners are bound (a unit with `Type=notify` counts the service as
/// started only then). Does nothing outside systemd.
///
/// # Errors
///
/// The notification socket named by `NOTIFY_SOCKET` could not be written.
pub fn notify_ready() -> io::Result<()> {
    sd_notify::notify(false, &[NotifyState::Ready, NotifyState::Status("serving")])
}

/// Tells systemd that the service is reloading: `RELOADING=1` with the
/// `MONOTONIC_USEC` systemd needs to match it, and `STATUS=upgrading`. An
/// upgrade sends it when it starts the new process; systemd then counts
/// the reload (`systemctl reload`, `ExecReload=kill -HUP $MAINPID`) as
/// done at the next `READY=1`: the hand-over's (from the shutdown's
/// observer, with `MAINPID=` the new process), or [`notify_ready`] again
/// when the upgrade failed and this process serves on. Does nothing
/// outside systemd.
///
/// # Errors
///
/// The monotonic clock could not be read, or the notification socket
/// named by `NOTIFY_SOCKET` could not be written.
pub fn notify_reloading() -> io::Result<()> {
    sd_notify::notify(
        false,
        &[
            NotifyState::Reloading,
            NotifyState::monotonic_usec_now()?,
            NotifyState::Status("upgrading"),
        ],
    )
}

/// `EXTEND_TIMEOUT_USEC` for `time`: whole microseconds, saturated at
/// what the protocol's field holds.
fn extend(time: Duration) -> NotifyState<'static> {
    let usec = u32::try_from(time.as_micros()).unwrap_or(u32::MAX);
    NotifyState::ExtendTimeoutUsec(usec)
}

/// The observer that notifies systemd of `event`, then calls `next`.
pub(crate) fn observer(config: &Config, next: Option<Observer>) -> Observer {
    let margin = Builder::GRACE_MARGIN;
    let cleanup = config.cleanup_timeout + margin;
    let drain = config.drain_timeout + cleanup;
    let whole = config.unready_delay + drain;
    Box::new(move |event: &Event<'_>| {
        // Best effort: see the module's documentation.
        let _ = match event {
            // An upgrade: the new process is the service's main process
            // now, and serving, which ends the reload `notify_reloading`
            // began (the unit needs `NotifyAccess=all` for the new
            // process's own notifications to count).
            Event::Requested {
                cause: Cause::Upgrade { pid },
            } => sd_notify::notify(
                false,
                &[
                    NotifyState::MainPid(*pid),
                    NotifyState::Ready,
                    NotifyState::Status("upgraded"),
                ],
            ),
            Event::Requested { cause } => {
                let status = format!("STATUS=stopping ({cause})");
                sd_notify::notify(
                    false,
                    &[
                        NotifyState::Stopping,
                        NotifyState::Custom(&status),
                        extend(whole),
                    ],
                )
            }
            Event::Draining => Ok(()),
            Event::Closed => {
                sd_notify::notify(false, &[NotifyState::Status("draining"), extend(drain)])
            }
            Event::Drained | Event::Abandoned { .. } | Event::StepFinished { .. } => {
                sd_notify::notify(
                    false,
                    &[NotifyState::Status("cleaning up"), extend(cleanup)],
                )
            }
            Event::Forced { exit_code, .. } => {
                let status = format!("STATUS=forced (exit {exit_code})");
                sd_notify::notify(false, &[NotifyState::Custom(&status)])
            }
            Event::Finished { exit_code } => {
                let status = format!("STATUS=finished (exit {exit_code})");
                sd_notify::notify(false, &[NotifyState::Custom(&status)])
            }
        };
        if let Some(next) = &next {
            next(event);
        }
    })
}
