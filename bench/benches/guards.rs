//! Figure 1: the cost of entering and leaving an in-flight guard, against
//! what a user would pick instead, all measured in the same run.
//!
//! | variant | enter | leave |
//! | --- | --- | --- |
//! | `bare` | `Arc<AtomicUsize>::fetch_add` | `fetch_sub` |
//! | `guard` | graceful-core's `Shutdown::enter` | dropping the `Guard` |
//! | `owned-guard` | `Shutdown::enter_owned` | dropping the `OwnedGuard` |
//! | `task-tracker` | tokio-util's `TaskTracker::token` | dropping the token |
//! | `tokio-graceful` | tokio-graceful's `Shutdown::guard` | dropping the guard |
//!
//! Each runs on one thread (uncontended) and on two threads at once on the
//! same shared state (contended). After criterion's own output it prints
//! each variant's median, min and max nanoseconds per enter+leave over
//! criterion's samples, and the ratio of the medians to `bare` and to
//! `task-tracker` (goals: guard ≤ 1.5× bare, ≤ 1× TaskTracker).
//!
//! Run with `cargo bench -p graceful-bench --bench guards`; criterion's
//! options follow a `--`. When `GRACEFUL_BENCH_GUARDS_OUT` names a file,
//! the figures are also written there, one tab-separated line per variant:
//! `threads variant median min max samples` (nanoseconds), which is how
//! `graceful-bench` reads them.

#![allow(missing_docs, clippy::print_stdout)]

use criterion::Criterion;
use graceful_bench::guard::{State, bare, guard, owned_guard, task_tracker, tokio_graceful};
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// The variants, in reporting order.
const VARIANTS: [&str; 5] = [
    "bare",
    "guard",
    "owned-guard",
    "task-tracker",
    "tokio-graceful",
];

/// Nanoseconds per iteration of every sample criterion took, by variant.
static SAMPLES: Mutex<BTreeMap<(usize, &'static str), Vec<f64>>> = Mutex::new(BTreeMap::new());

fn record(threads: usize, variant: &'static str, iters: u64, elapsed: Duration) -> Duration {
    let per_iter = elapsed.as_nanos() as f64 / iters as f64;
    SAMPLES
        .lock()
        .unwrap()
        .entry((threads, variant))
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

fn bench(c: &mut Criterion) {
    // The bodies and their states are those of `guard-ops`, which the
    // runner counts instructions of under callgrind.
    let state = State::new();
    let (counter, shutdown, tracker, graceful) = (
        &state.counter,
        &state.shutdown,
        &state.tracker,
        &state.tokio_graceful,
    );
    for threads in [1, 2] {
        let mut group = c.benchmark_group(format!("enter-leave/{threads}-thread"));
        group.bench_function("bare-arc-atomic", |b| {
            b.iter_custom(|iters| {
                record(threads, "bare", iters, timed(threads, iters, counter, bare))
            })
        });
        group.bench_function("guard", |b| {
            b.iter_custom(|iters| {
                record(
                    threads,
                    "guard",
                    iters,
                    timed(threads, iters, shutdown, guard),
                )
            })
        });
        group.bench_function("owned-guard", |b| {
            b.iter_custom(|iters| {
                let elapsed = timed(threads, iters, shutdown, owned_guard);
                record(threads, "owned-guard", iters, elapsed)
            })
        });
        group.bench_function("task-tracker-token", |b| {
            b.iter_custom(|iters| {
                let elapsed = timed(threads, iters, tracker, task_tracker);
                record(threads, "task-tracker", iters, elapsed)
            })
        });
        group.bench_function("tokio-graceful-guard", |b| {
            b.iter_custom(|iters| {
                let elapsed = timed(threads, iters, graceful, tokio_graceful);
                record(threads, "tokio-graceful", iters, elapsed)
            })
        });
        group.finish();
    }
}

/// Samples criterion measures per benchmark unless told otherwise.
const SAMPLE_SIZE: usize = 100;

/// How many samples criterion measures per benchmark: its `--sample-size`,
/// or [`SAMPLE_SIZE`]. The calls before those are its warm-up.
fn sample_size() -> usize {
    let mut args = std::env::args();
    while let Some(arg) = args.next() {
        let value = match arg.strip_prefix("--sample-size=") {
            Some(value) => Some(value.to_owned()),
            None if arg == "--sample-size" => args.next(),
            None => None,
        };
        if let Some(n) = value.and_then(|v| v.parse().ok()) {
            return n;
        }
    }
    SAMPLE_SIZE
}

/// Median, min and max of `samples`.
fn summary(samples: &mut [f64]) -> (f64, f64, f64) {
    samples.sort_by(f64::total_cmp);
    let median = samples[samples.len() / 2];
    (median, samples[0], samples[samples.len() - 1])
}

fn main() {
    let mut criterion = Criterion::default()
        .sample_size(SAMPLE_SIZE)
        .configure_from_args();
    bench(&mut criterion);
    criterion.final_summary();

    // Keep the measured samples only: criterion's warm-up calls come first.
    let keep = sample_size();
    let mut samples = SAMPLES.lock().unwrap();
    for s in samples.values_mut() {
        s.drain(..s.len().saturating_sub(keep));
    }
    let mut lines = Vec::new();
    println!(
        "\nenter+leave, ns per iteration over criterion's samples; ratios of the medians, this run:"
    );
    println!(
        "  {:<8} {:<15} {:>8} {:>8} {:>8} {:>8} {:>13}",
        "threads", "variant", "median", "min", "max", "/ bare", "/ TaskTracker"
    );
    for threads in [1, 2] {
        let median_of = |samples: &mut BTreeMap<(usize, &'static str), Vec<f64>>, v| {
            samples.get_mut(&(threads, v)).map(|s| summary(s).0)
        };
        let bare = median_of(&mut samples, "bare");
        let tracker = median_of(&mut samples, "task-tracker");
        for variant in VARIANTS {
            let Some(s) = samples.get_mut(&(threads, variant)) else {
                continue;
            };
            let (median, min, max) = summary(s);
            let ratio =
                |base: Option<f64>| base.map_or("-".to_owned(), |b| format!("{:.2}x", median / b));
            println!(
                "  {threads:<8} {variant:<15} {median:>8.2} {min:>8.2} {max:>8.2} {:>8} {:>13}",
                ratio(bare),
                ratio(tracker)
            );
            lines.push(format!(
                "{threads}\t{variant}\t{median}\t{min}\t{max}\t{}",
                s.len()
            ));
        }
    }
    if let Some(path) = std::env::var_os("GRACEFUL_BENCH_GUARDS_OUT") {
        let written = std::fs::File::create(&path)
            .and_then(|mut file| file.write_all((lines.join("\n") + "\n").as_bytes()));
        if let Err(error) = written {
            eprintln!("cannot write {}: {error}", path.to_string_lossy());
            std::process::exit(1);
        }
    }
}
