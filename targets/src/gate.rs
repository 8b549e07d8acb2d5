//! The start-up gate: the first signal against the `listening` line.
//!
//! A signal can land while the target starts serving: after the adapter's
//! `serve` has registered the listener with the shutdown but before the
//! `listening` line is out. The shutdown then sees a listener and keeps its
//! unready delay, although the process never said it listened; and
//! `draining` can come before `listening`. The gate closes that window. The
//! signal future is polled under it ([`exit_on_signals`]), and the listener
//! is handed to the adapter and announced under it ([`start_serving`]), so a
//! signal comes either before (the listener is never registered, and the
//! shutdown, having no listener, skips the unready delay) or after
//! `listening`.
//!
//! The gate is a plain `Mutex<()>`, held only for a poll of the signal
//! future or for the synchronous hand-over; never across an `.await`.

use crate::events::{exit, log, say};
use graceful_core::Shutdown;
use std::future::{Future, poll_fn};
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::{Mutex, MutexGuard};

static GATE: Mutex<()> = Mutex::new(());

/// Takes the gate; a panic under it does not poison it for the rest.
fn gate() -> MutexGuard<'static, ()> {
    GATE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Polls the adapter's signal future under the start-up gate, and
/// [`exit`]s with its code once a signal forced the exit.
///
/// Spawn it as soon as the signals are installed.
///
/// # Cancel safety
///
/// Dropping it drops the signal future, and with it the adapter's signal
/// handling; a target keeps it running for the life of the process.
pub async fn exit_on_signals<S: Future<Output = u8>>(signals: S) {
    let mut signals = pin!(signals);
    let code = poll_fn(|cx| {
        let _gate = gate();
        signals.as_mut().poll(cx)
    })
    .await;
    exit(code)
}

/// Starts serving under the start-up gate: unless a signal came first,
/// calls `serve` (which hands the listener to the adapter: its `serve`
/// registers it) and prints `listening ADDR`. Returns whether it did.
///
/// When a signal came first, `serve` is dropped unused, and the listener it
/// holds with it: the process stops without ever listening.
pub fn start_serving(shutdown: &Shutdown, addr: SocketAddr, serve: impl FnOnce()) -> bool {
    start_serving_then(shutdown, serve, || {
        say(format_args!("listening {addr}"));
        log(format_args!("serving on {addr}"));
    })
}

fn start_serving_then(shutdown: &Shutdown, serve: impl FnOnce(), announce: impl FnOnce()) -> bool {
    let _gate = gate();
    if !shutdown.is_ready() {
        log("stopped while starting up, never listened");
        return false;
    }
    serve();
    announce();
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use graceful_core::Signal;
    use std::task::{Context, Poll, Waker};

    /// Whether the gate is held (by this thread or another).
    fn gate_is_held() -> bool {
        GATE.try_lock().is_err()
    }

    #[test]
    fn the_gate_orders_the_start_against_signals() {
        let driver = Shutdown::builder().build().unwrap();
        let shutdown = driver.handle();
        let (mut served, mut announced) = (false, false);
        let started = start_serving_then(
            &shutdown,
            || served = gate_is_held(),
            || announced = gate_is_held(),
        );
        assert!(
            started && served && announced,
            "served and announced under the gate"
        );

        let _ = shutdown.request(Signal::TERM);
        let started = start_serving_then(
            &shutdown,
            || panic!("served after a signal"),
            || panic!("announced after a signal"),
        );
        assert!(!started);
    }

    #[test]
    fn signals_are_polled_under_the_gate() {
        let polled = std::cell::Cell::new(0);
        let probe = std::future::poll_fn(|_| {
            assert!(gate_is_held(), "polled outside the gate");
            polled.set(polled.get() + 1);
            Poll::<u8>::Pending
        });
        let mut future = pin!(exit_on_signals(probe));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(future.as_mut().poll(&mut cx).is_pending());
        assert_eq!(polled.get(), 1);
    }
}
