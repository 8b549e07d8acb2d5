//! The cost of an in-flight guard, against a bare `Arc<AtomicUsize>`
//! increment and decrement measured in the same run.
//!
//! Run with `cargo bench -p graceful-core --bench guard`. After criterion's
//! own output it prints each variant's median per enter+leave and its ratio
//! to the bare counter (goal: guard ≤ 1.5×).

#![allow(missing_docs, clippy::print_stdout)]

use criterion::Criterion;
use graceful_core::Shutdown;
use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Nanoseconds per iteration of every sample criterion took, by variant.
static SAMPLES: Mutex<BTreeMap<String, Vec<f64>>> = Mutex::new(BTreeMap::new());

fn record(name: &str, iters: u64, elapsed: Duration) -> Duration {
    let per_iter = elapsed.as_nanos() as f64 / iters as f64;
    SAMPLES
        .lock()
        .unwrap()
        .entry(name.to_owned())
        .or_default()
        .push(per_iter);
    elapsed
}

/// Runs `body` `iters` times on each of `threads` threads at once and
/// returns the slowest thread's time.
fn timed<S: Sync>(threads: usize, iters: u64, state: &S, body: impl Fn(&S) + Sync) -> Duration {
    let barrier = Barrier::new(threads);
    thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    let start = Instant::now();
                    for _ in 0..iters {
                        body(state);
                    }
                    start.elapsed()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .max()
            .unwrap()
    })
}

fn bare(counter: &Arc<AtomicUsize>) {
    black_box(counter).fetch_add(1, Ordering::SeqCst);
    black_box(counter).fetch_sub(1, Ordering::SeqCst);
}

fn guard(shutdown: &Shutdown) {
    drop(black_box(black_box(shutdown).enter().unwrap()));
}

fn owned_guard(shutdown: &Shutdown) {
    drop(black_box(black_box(shutdown).enter_owned().unwrap()));
}

fn bench(c: &mut Criterion) {
    let shutdown = Shutdown::builder().build().unwrap().handle();
    let counter = Arc::new(AtomicUsize::new(0));
    for threads in [1, 2] {
        let mut group = c.benchmark_group(format!("enter-leave/{threads}-thread"));
        let name = |variant: &str| format!("{variant}/{threads}");
        group.bench_function("bare-arc-atomic", |b| {
            let n = name("bare");
            b.iter_custom(|iters| record(&n, iters, timed(threads, iters, &counter, bare)))
        });
        group.bench_function("guard", |b| {
            let n = name("guard");
            b.iter_custom(|iters| record(&n, iters, timed(threads, iters, &shutdown, guard)))
        });
        group.bench_function("owned-guard", |b| {
            let n = name("owned-guard");
            b.iter_custom(|iters| record(&n, iters, timed(threads, iters, &shutdown, owned_guard)))
        });
        group.finish();
    }
}

fn median(samples: &mut [f64]) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    bench(&mut criterion);
    criterion.final_summary();

    let mut samples = SAMPLES.lock().unwrap();
    println!("\nenter+leave, median ns per iteration, ratio to bare Arc<AtomicUsize> in this run:");
    for threads in [1, 2] {
        let Some(bare) = samples
            .get_mut(&format!("bare/{threads}"))
            .map(|s| median(s))
        else {
            continue;
        };
        for variant in ["bare", "guard", "owned-guard"] {
            if let Some(s) = samples.get_mut(&format!("{variant}/{threads}")) {
                let m = median(s);
                println!(
                    "  {threads} thread(s)  {variant:<12} {m:>8.2} ns  {:>5.2}x",
                    m / bare
                );
            }
        }
    }
}
