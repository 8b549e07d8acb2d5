//! Rules 23 to 27, the half that does not depend on a runtime: the
//! listener a process inherits from an upgrade (or binds), the word that it
//! serves, `--upgrade-child-fails`, and the upgrade's lines.
//!
//! The lines: `upgrading` and `upgrade-failed REASON` come from the
//! adapter's `upgrade_on_sighup` ([`print_progress`]); `upgrade PID` is the
//! shutdown's `Requested` event with an upgrade's cause
//! ([`event_line`](crate::event_line)), followed by `closed` and the rest of
//! the drain. A process started by an upgrade prints `listening` (the first
//! one after `upgrading`) and only then reports that it serves, so the old
//! process's `upgrade PID` always follows it.

use crate::events::{log, say};
use crate::options::Options;
use graceful_upgrade::{Inherited, Progress};
use std::net::{SocketAddr, TcpListener};

/// The exit code of a process started by an upgrade under
/// `--upgrade-child-fails`.
pub const CHILD_FAILS_CODE: i32 = 3;

/// What this process inherited: an upgrade's listener, or nothing.
#[derive(Debug)]
pub struct Handover(Inherited);

/// Reads what this process inherited; call it first in `main`, before any
/// thread starts. Under `--upgrade-child-fails`, a process started by an
/// upgrade exits here with code 3, before `listening` (and without an
/// `exit` line: on the shared standard output that line would read as the
/// old process's).
pub fn inherit(options: &Options) -> Handover {
    let inherited = Inherited::from_env()
        .unwrap_or_else(|error| crate::fail(format_args!("bad inherited socket: {error}")));
    if options.upgrade_child_fails && inherited.is_upgrade() {
        log("started by an upgrade under --upgrade-child-fails: exit 3");
        std::process::exit(CHILD_FAILS_CODE);
    }
    Handover(inherited)
}

impl Handover {
    /// The listener to serve, in non-blocking mode: the inherited one, or
    /// one bound on `addr`; a failure ends the process (`exit 1`).
    pub fn listener(&mut self, addr: SocketAddr) -> TcpListener {
        let inherited = self
            .0
            .take_listener()
            .unwrap_or_else(|error| crate::fail(format_args!("bad inherited listener: {error}")));
        if let Some(listener) = inherited {
            return listener;
        }
        TcpListener::bind(addr)
            .and_then(|listener| listener.set_nonblocking(true).map(|()| listener))
            .unwrap_or_else(|error| crate::fail(format_args!("cannot listen on {addr}: {error}")))
    }

    /// Tells the process that started this one, if an upgrade did, that
    /// this one serves: call it after `listening`.
    pub fn serving(&mut self) {
        if let Err(error) = self.0.notify_ready() {
            log(format_args!("cannot report to the old process: {error}"));
        }
    }
}

/// The observer of the adapter's `upgrade_on_sighup`: prints `upgrading`
/// and `upgrade-failed REASON`, and logs why.
pub fn print_progress(progress: Progress<'_>) {
    match progress {
        Progress::Upgrading => say(format_args!("upgrading")),
        Progress::Failed(failure) => {
            log(format_args!("upgrade failed: {failure}"));
            say(format_args!("upgrade-failed {}", failure.reason()));
        }
        Progress::Ignored => log("SIGHUP ignored: an upgrade or a shutdown is under way"),
        _ => {}
    }
}
