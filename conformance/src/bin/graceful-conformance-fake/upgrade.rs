//! The zero-downtime upgrade (rules 23 to 27), the way the targets do it:
//! graceful-upgrade starts the new process of this executable with the
//! listening socket inherited and waits for its report that it serves
//! (`main.rs` is the new process's side: `Inherited`), and only then does
//! this process hand over and drain. The shutdown around it stays the
//! fake's own (`main.rs`), so the kit's control stays independent of
//! graceful-core's.
//!
//! Three faults break it the ways the issue names: `upgrade-rebinds` (a
//! stop-then-start inside one process: the listener is closed and bound
//! again, and connects are refused in between), `upgrade-drains-early`
//! (hands over before the new process serves) and
//! `upgrade-filters-shared-socket` (`server.rs`: the drop-all socket filter
//! of a close put on the socket the new process accepts from).

use std::net::TcpListener;
use std::os::fd::AsFd;
use std::sync::mpsc::Sender;
use std::sync::{Arc, MutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::Duration;

use graceful_upgrade::{Failure, Outcome, READY_TIMEOUT};

use crate::config::Fault;
use crate::{Begin, Phase, Shared, State, lock};

/// How long `upgrade-rebinds` leaves the address unbound: about what a
/// restart takes to bind again, long enough for the load to run into it.
const REBIND_GAP: Duration = Duration::from_millis(200);

/// A `SIGHUP` (on the signal thread): starts an upgrade, or is ignored
/// while one is under way, before `listening` and once the shutdown began.
pub(crate) fn hangup(shared: &Arc<Shared>, begin: &Sender<Begin>) {
    {
        let mut st = lock(&shared.state);
        if st.phase != Phase::Serving || st.started || st.upgrading {
            eprintln!("SIGHUP ignored: an upgrade or a shutdown is under way");
            return;
        }
        st.upgrading = true;
        shared.event("upgrading");
    }
    // The signal thread is the only one to begin a shutdown by signal, so
    // the listener is still here: the accept thread lets go of it only
    // after a `Begin` this thread sent.
    let started = {
        let mut listener = lock(&shared.listener);
        if shared.config.has(Fault::UpgradeRebinds) {
            rebind(&mut listener);
        }
        listener
            .as_ref()
            .map(|listener| graceful_upgrade::start(&[listener.as_fd()], READY_TIMEOUT))
    };
    let starting = match started {
        Some(Ok(starting)) => starting,
        Some(Err(failure)) => return failed(shared, &failure),
        None => {
            eprintln!("upgrade failed: no listener to pass on");
            let mut st = lock(&shared.state);
            st.upgrading = false;
            shared.event("upgrade-failed error");
            shared.changed.notify_all();
            return;
        }
    };
    if shared.config.has(Fault::UpgradeDrainsEarly) {
        // Hands over once the new process exists (graceful-upgrade spawns
        // it on its own thread), and leaves it to come up, or fail, alone.
        let mut starting = starting;
        let pid = loop {
            if let Some(pid) = starting.pid() {
                break pid;
            }
            let mut cx = Context::from_waker(Waker::noop());
            if let Poll::Ready(Outcome::Failed(failure)) = starting.poll_outcome(&mut cx) {
                return failed(shared, &failure);
            }
            thread::sleep(Duration::from_millis(1));
        };
        drop(starting);
        hand_over(shared, lock(&shared.state), pid, begin);
        return;
    }
    *lock(&shared.starting) = Some(starting);
    let spawned = thread::Builder::new().name("upgrade".into()).spawn({
        let shared = Arc::clone(shared);
        let begin = begin.clone();
        move || settle(&shared, &begin)
    });
    if let Err(e) = spawned {
        eprintln!("upgrade failed: cannot start its thread: {e}");
        cancel(shared);
        let starting = lock(&shared.starting).take();
        if let Some(mut starting) = starting {
            // The new process is killed; wait for it to be reaped.
            let _ = wait(&mut starting);
        }
        let mut st = lock(&shared.state);
        st.upgrading = false;
        shared.event("upgrade-failed error");
        shared.changed.notify_all();
    }
}

/// The stop-then-start of `upgrade-rebinds`: the listener closed (its
/// queue reset), the address unbound for [`REBIND_GAP`], then bound again.
fn rebind(listener: &mut Option<TcpListener>) {
    let Some(old) = listener.take() else { return };
    let Ok(addr) = old.local_addr() else { return };
    drop(old);
    thread::sleep(REBIND_GAP);
    match TcpListener::bind(addr).and_then(|new| new.set_nonblocking(true).map(|()| new)) {
        Ok(new) => *listener = Some(new),
        Err(e) => eprintln!("cannot bind {addr} again: {e}"),
    }
}

/// Wakes the thread that waits for the new process's outcome.
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Blocks until the new process reported, exited or timed out.
fn wait(starting: &mut graceful_upgrade::Starting) -> Outcome {
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        match starting.poll_outcome(&mut cx) {
            Poll::Ready(outcome) => return outcome,
            // `poll_outcome` registered the waker under the lock the
            // outcome is set under, and an unpark before the park is kept:
            // no wake-up is lost.
            Poll::Pending => thread::park(),
        }
    }
}

/// On a thread of its own: the new process's outcome, then the hand-over,
/// or `upgrade-failed`, or (a signal came first) its end.
fn settle(shared: &Arc<Shared>, begin: &Sender<Begin>) {
    let outcome = loop {
        // Polled under the lock a signal cancels under, parked outside it.
        let polled = {
            let waker = Waker::from(Arc::new(Unpark(thread::current())));
            let mut cx = Context::from_waker(&waker);
            lock(&shared.starting)
                .as_mut()
                .map(|starting| starting.poll_outcome(&mut cx))
        };
        match polled {
            Some(Poll::Ready(outcome)) => break outcome,
            Some(Poll::Pending) => thread::park(),
            None => return,
        }
    };
    drop(lock(&shared.starting).take());
    let st = lock(&shared.state);
    match outcome {
        Outcome::Ready(child) if !st.started => hand_over(shared, st, child.id(), begin),
        Outcome::Ready(child) => {
            // A signal came first: that process goes, and only then may the
            // listener close.
            drop(st);
            graceful_upgrade::kill(child);
            settled(shared, lock(&shared.state));
        }
        // Cancelled by the shutdown: nothing to report.
        Outcome::Failed(_) if st.started => settled(shared, st),
        Outcome::Failed(failure) => {
            drop(st);
            failed(shared, &failure);
        }
    }
}

/// The upgrade is over, one way or the other.
fn settled(shared: &Shared, mut st: MutexGuard<'_, State>) {
    st.upgrading = false;
    shared.changed.notify_all();
}

/// `upgrade-failed REASON`: this process serves on.
fn failed(shared: &Shared, failure: &Failure) {
    eprintln!("upgrade failed: {failure}");
    let st = lock(&shared.state);
    if !st.started {
        shared.event(&format!("upgrade-failed {}", failure.reason()));
    }
    settled(shared, st);
}

/// `upgrade PID`: the shutdown begins, with readiness false from here on,
/// and the main thread drains (`Begin::HandOver`).
fn hand_over(shared: &Shared, mut st: MutexGuard<'_, State>, pid: u32, begin: &Sender<Begin>) {
    st.started = true;
    if st.phase == Phase::Serving {
        st.phase = Phase::Draining;
    }
    shared.event(&format!("upgrade {pid}"));
    settled(shared, st);
    let _ = begin.send(Begin::HandOver);
}

/// The first signal: a new process being started is killed (its outcome
/// follows on the upgrade thread).
pub(crate) fn cancel(shared: &Shared) {
    if let Some(starting) = lock(&shared.starting).as_ref() {
        starting.cancel();
    }
}

/// Waits until no upgrade is under way: a new process being started holds
/// a copy of the socket, which must be gone before `closed`.
pub(crate) fn wait_settled(shared: &Shared) {
    let mut st = lock(&shared.state);
    while st.upgrading {
        st = shared
            .changed
            .wait(st)
            .unwrap_or_else(PoisonError::into_inner);
    }
}
