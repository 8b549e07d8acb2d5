//! Background jobs the drain waits for.
//!
//! A handler that answers `202 Accepted` has promised work it has not done
//! yet. [`Shutdown::track_job`](crate::Shutdown::track_job) takes the
//! promise's guard at that moment, before the answer is sent: refused once
//! the shutdown is draining (answer `503` then, like any new work), counted
//! in flight from then on, so that `drained` waits for the job as it waits
//! for a request, and the drain deadline abandons it and counts it in
//! `abandoned N` like one. Each adapter spawns the returned [`Job`] on its
//! runtime in one call.
//!
//! Design decisions:
//!
//! - The guard is taken when the job is made, not when it first runs: the
//!   `202` must not go out for a job the shutdown would refuse, and a job
//!   spawned just before the drain must not slip past it before its task is
//!   first polled.
//! - A panic in the job is caught here, not left to the runtime: the guard
//!   leaves at once (the drain never waits on a dead job), the panic is
//!   written to the shutdown's log and counted
//!   ([`Shutdown::job_panics`](crate::Shutdown::job_panics)), and the
//!   runtime's worker is not unwound (an executor such as smol's would
//!   otherwise pass the panic on to whatever runs it).
//! - A job that is dropped before it ends (its runtime stopped at the
//!   exit) gives its guard back too; it is not reported, since the process
//!   is ending anyway and the drain outcome already says what was left.

use crate::guard::OwnedGuard;
use crate::inner::Inner;
use crate::sync::{Arc, Ordering};
use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

/// A background job, counted in flight until it ends. See
/// [`Shutdown::track_job`](crate::Shutdown::track_job).
///
/// Resolves to the job's output, or to [`JobPanicked`] when the job
/// panicked (already logged and counted).
///
/// # Cancel safety
///
/// Dropping it drops the job where it stands and gives back its guard: the
/// job's work is lost. Spawn it and let it run; the drain waits for it.
#[must_use = "a job does nothing unless it is spawned or polled"]
pub struct Job<F> {
    future: Pin<Box<F>>,
    /// `None` once the job has ended: the guard leaves the moment the job's
    /// last poll returns, not when the task is freed.
    guard: Option<OwnedGuard>,
    inner: Arc<Inner>,
}

impl<F: Future> Job<F> {
    pub(crate) fn new(inner: Arc<Inner>, guard: OwnedGuard, future: F) -> Job<F> {
        Job {
            future: Box::pin(future),
            guard: Some(guard),
            inner,
        }
    }
}

// `Unpin` whatever `F` is: the job's future is boxed.
impl<F> Unpin for Job<F> {}

impl<F: Future> Future for Job<F> {
    type Output = Result<F::Output, JobPanicked>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if this.guard.is_none() {
            panic!("a job polled after it ended");
        }
        let polled = catch_unwind(AssertUnwindSafe(|| this.future.as_mut().poll(cx)));
        let ended = match polled {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(output)) => Ok(output),
            Err(payload) => {
                let panicked = JobPanicked {
                    message: crate::cleanup::panic_message(&*payload),
                };
                // Relaxed: a statistic, read on its own; nothing is ordered
                // by it.
                this.inner.job_panics.fetch_add(1, Ordering::Relaxed);
                this.inner.log.job_panicked(&panicked.message);
                Err(panicked)
            }
        };
        this.guard = None;
        Poll::Ready(ended)
    }
}

impl<F> fmt::Debug for Job<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Job")
            .field("ended", &self.guard.is_none())
            .finish_non_exhaustive()
    }
}

/// A job panicked; what [`Job`] resolves to then.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobPanicked {
    message: String,
}

impl JobPanicked {
    /// The panic's message, or a note that its payload was not a string.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for JobPanicked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "background job panicked: {}", self.message)
    }
}

impl std::error::Error for JobPanicked {}
