//! `guard-ops VARIANT THREADS N`: enters and leaves one in-flight guard
//! `N` times on each of `THREADS` threads, on one shared state, and exits.
//!
//! The program that the instruction-count figure runs under
//! `valgrind --tool=callgrind`: it has no markers and no client requests,
//! so the runner runs it twice, with `N` and `2N`, and takes the
//! difference of the two totals, which cancels everything but the loop
//! (start-up, thread creation, building the state, exit). The variants are
//! those of the criterion bench `benches/guards.rs`, with the same bodies:
//!
//! | variant | enter | leave |
//! | --- | --- | --- |
//! | `bare` | `Arc<AtomicUsize>::fetch_add` | `fetch_sub` |
//! | `guard` | graceful-core's `Shutdown::enter` | dropping the `Guard` |
//! | `owned-guard` | `Shutdown::enter_owned` | dropping the `OwnedGuard` |
//! | `task-tracker` | tokio-util's `TaskTracker::token` | dropping the token |
//! | `tokio-graceful` | tokio-graceful's `Shutdown::guard` | dropping the guard |
//! | `loop` | nothing: the loop alone | |
//!
//! A usage error is reported on standard error with exit status 2.

use graceful_bench::guard::Variant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match graceful_bench::guard::parse_args(&args) {
        Ok((variant, threads, n)) => variant.run(threads, n),
        Err(error) => {
            eprintln!(
                "guard-ops: {error}\nusage: guard-ops VARIANT THREADS N\n  variants: {}",
                Variant::ALL.map(Variant::name).join(", ")
            );
            std::process::exit(2);
        }
    }
}
