//! Background jobs the drain waits for, spawned on tokio.
//!
//! The whole of it is [`Shutdown::track_job`] and [`tokio::spawn`]: the
//! core counts the job in flight and catches its panic, tokio runs it. See
//! [`spawn_job`].

use graceful_core::{Job, JobPanicked, Refused, Shutdown};
use std::future::Future;
use tokio::task::JoinHandle;

/// Spawns `job` on the current tokio runtime, counted in flight until it
/// ends: the drain waits for it, and the drain deadline abandons it
/// (counted in `abandoned N`). Call it before answering `202 Accepted`.
///
/// A panic in the job is caught, logged and counted
/// ([`Shutdown::job_panics`]); the handle then resolves to
/// `Ok(Err(JobPanicked))`, and the drain does not wait for the dead job.
///
/// # Errors
///
/// Refused once the shutdown is draining: answer `503`, like any new work.
///
/// # Panics
///
/// Outside a tokio runtime, as [`tokio::spawn`] does.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let driver = graceful_tokio::Shutdown::builder().quiet().build().unwrap();
/// let shutdown = driver.handle();
/// let job = graceful_tokio::spawn_job(&shutdown, async { 6 * 7 }).unwrap();
/// assert_eq!(job.await.unwrap(), Ok(42));
/// # }
/// ```
pub fn spawn_job<F>(
    shutdown: &Shutdown,
    job: F,
) -> Result<JoinHandle<Result<F::Output, JobPanicked>>, Refused>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let job: Job<F> = shutdown.track_job(job)?;
    Ok(tokio::spawn(job))
}
