//! The guard variants that figure 1 compares, one body each, shared by the
//! criterion bench (`benches/guards.rs`, wall time) and the `guard-ops`
//! binary (instruction counts under callgrind), so that both measure the
//! same code.
//!
//! Every body enters and leaves once, behind `black_box` on both sides so
//! that the compiler can neither see through the state nor drop the guard
//! early.

use std::hint::black_box;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio_util::task::TaskTracker;

/// One way of counting a request in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// `Arc<AtomicUsize>`: `fetch_add`, then `fetch_sub`.
    Bare,
    /// graceful-core's `Shutdown::enter`, then dropping the `Guard`.
    Guard,
    /// `Shutdown::enter_owned`, then dropping the `OwnedGuard`.
    OwnedGuard,
    /// tokio-util's `TaskTracker::token`, then dropping the token.
    TaskTracker,
    /// tokio-graceful's `Shutdown::guard`, then dropping the guard.
    TokioGraceful,
    /// Nothing: the loop alone, to show what every other count includes.
    Loop,
}

impl Variant {
    /// Every variant, in reporting order.
    pub const ALL: [Variant; 6] = [
        Variant::Bare,
        Variant::Guard,
        Variant::OwnedGuard,
        Variant::TaskTracker,
        Variant::TokioGraceful,
        Variant::Loop,
    ];

    /// Its name on the command line and in the figures' files.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Bare => "bare",
            Variant::Guard => "guard",
            Variant::OwnedGuard => "owned-guard",
            Variant::TaskTracker => "task-tracker",
            Variant::TokioGraceful => "tokio-graceful",
            Variant::Loop => "loop",
        }
    }

    /// The variant called `name`.
    pub fn parse(name: &str) -> Option<Variant> {
        Variant::ALL.into_iter().find(|v| v.name() == name)
    }

    /// Enters and leaves `n` times on each of `threads` threads at once, on
    /// one state shared by all of them.
    pub fn run(self, threads: NonZeroUsize, n: u64) {
        let state = State::new();
        match self {
            Variant::Bare => spin(threads, n, &state.counter, bare),
            Variant::Guard => spin(threads, n, &state.shutdown, guard),
            Variant::OwnedGuard => spin(threads, n, &state.shutdown, owned_guard),
            Variant::TaskTracker => spin(threads, n, &state.tracker, task_tracker),
            Variant::TokioGraceful => spin(threads, n, &state.tokio_graceful, tokio_graceful),
            Variant::Loop => spin(threads, n, &(), |unit| {
                black_box(unit);
            }),
        }
    }
}

/// Runs `body` `n` times on each of `threads` threads at once. Generic, so
/// that each variant's body is inlined into a loop of its own, as in the
/// criterion bench.
fn spin<S: Sync>(threads: NonZeroUsize, n: u64, state: &S, body: impl Fn(&S) + Sync) {
    std::thread::scope(|scope| {
        for _ in 0..threads.get() {
            scope.spawn(|| {
                for _ in 0..n {
                    body(state);
                }
            });
        }
    });
}

/// The shared state of every variant.
pub struct State {
    /// For [`Variant::Bare`].
    pub counter: Arc<AtomicUsize>,
    /// For [`Variant::Guard`] and [`Variant::OwnedGuard`].
    pub shutdown: graceful_core::Shutdown,
    /// For [`Variant::TaskTracker`].
    pub tracker: TaskTracker,
    /// For [`Variant::TokioGraceful`].
    pub tokio_graceful: tokio_graceful::Shutdown,
    /// tokio-graceful spawns the task that waits for its signal when it is
    /// built, so it needs a runtime; the signal never comes.
    _runtime: tokio::runtime::Runtime,
}

impl State {
    /// Builds every variant's state.
    ///
    /// # Panics
    ///
    /// When the current-thread tokio runtime cannot be built (it needs
    /// nothing from the system but memory), or graceful-core's default
    /// builder is refused (it is valid by construction).
    pub fn new() -> State {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime");
        let tokio_graceful = {
            let _entered = runtime.enter();
            tokio_graceful::Shutdown::new(std::future::pending::<()>())
        };
        State {
            counter: Arc::new(AtomicUsize::new(0)),
            shutdown: graceful_core::Shutdown::builder()
                .build()
                .expect("the default configuration is valid")
                .handle(),
            tracker: TaskTracker::new(),
            tokio_graceful,
            _runtime: runtime,
        }
    }

    /// One enter and leave of `variant`.
    #[inline]
    pub fn once(&self, variant: Variant) {
        match variant {
            Variant::Bare => bare(&self.counter),
            Variant::Guard => guard(&self.shutdown),
            Variant::OwnedGuard => owned_guard(&self.shutdown),
            Variant::TaskTracker => task_tracker(&self.tracker),
            Variant::TokioGraceful => tokio_graceful(&self.tokio_graceful),
            Variant::Loop => {
                black_box(self);
            }
        }
    }
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // tokio-graceful's `Shutdown` has no `Debug`.
        f.debug_struct("State")
            .field("counter", &self.counter)
            .field("shutdown", &self.shutdown)
            .field("tracker", &self.tracker)
            .finish_non_exhaustive()
    }
}

impl Default for State {
    fn default() -> State {
        State::new()
    }
}

/// [`Variant::Bare`].
#[inline]
pub fn bare(counter: &Arc<AtomicUsize>) {
    // SeqCst, as a user who reaches for a bare counter usually writes it;
    // on x86 every read-modify-write is one locked instruction whatever
    // the ordering.
    black_box(counter).fetch_add(1, Ordering::SeqCst);
    black_box(counter).fetch_sub(1, Ordering::SeqCst);
}

/// [`Variant::Guard`].
///
/// # Panics
///
/// When the shutdown has begun draining (never, here).
#[inline]
pub fn guard(shutdown: &graceful_core::Shutdown) {
    drop(black_box(black_box(shutdown).enter().expect("running")));
}

/// [`Variant::OwnedGuard`].
///
/// # Panics
///
/// When the shutdown has begun draining (never, here).
#[inline]
pub fn owned_guard(shutdown: &graceful_core::Shutdown) {
    drop(black_box(
        black_box(shutdown).enter_owned().expect("running"),
    ));
}

/// [`Variant::TaskTracker`].
#[inline]
pub fn task_tracker(tracker: &TaskTracker) {
    drop(black_box(black_box(tracker).token()));
}

/// [`Variant::TokioGraceful`].
#[inline]
pub fn tokio_graceful(shutdown: &tokio_graceful::Shutdown) {
    drop(black_box(black_box(shutdown).guard()));
}

/// Parses `VARIANT THREADS N`, the arguments of `guard-ops`.
pub fn parse_args(args: &[String]) -> Result<(Variant, NonZeroUsize, u64), String> {
    let [variant, threads, n] = args else {
        return Err(format!("expected 3 arguments, got {}", args.len()));
    };
    let variant = Variant::parse(variant).ok_or_else(|| format!("unknown variant {variant:?}"))?;
    let threads = threads
        .parse()
        .map_err(|_| format!("THREADS {threads:?}: not a positive number"))?;
    let n = n
        .parse()
        .map_err(|_| format!("N {n:?}: not a number of iterations"))?;
    Ok((variant, threads, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn names_round_trip() {
        for v in Variant::ALL {
            assert_eq!(Variant::parse(v.name()), Some(v));
        }
        assert_eq!(Variant::parse("guards"), None);
    }

    #[test]
    fn parses_the_command_line() {
        let (v, threads, n) = parse_args(&args(&["owned-guard", "2", "1000"])).unwrap();
        assert_eq!((v, threads.get(), n), (Variant::OwnedGuard, 2, 1000));
        assert!(parse_args(&args(&["owned-guard", "0", "1"])).is_err());
        assert!(parse_args(&args(&["owned-guard", "1", "-1"])).is_err());
        assert!(parse_args(&args(&["nope", "1", "1"])).is_err());
        assert!(parse_args(&args(&["bare", "1"])).is_err());
    }

    #[test]
    fn every_variant_leaves_what_it_enters() {
        let state = State::new();
        for v in Variant::ALL {
            for _ in 0..3 {
                state.once(v);
            }
        }
        assert_eq!(state.counter.load(Ordering::SeqCst), 0);
        assert_eq!(state.tracker.len(), 0);
        Variant::Guard.run(NonZeroUsize::new(2).unwrap(), 100);
    }
}
