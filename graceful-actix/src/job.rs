//! Background jobs the drain waits for, spawned on actix's runtime.
//!
//! The whole of it is [`Shutdown::track_job`] and [`actix_rt::spawn`]: the
//! core counts the job in flight and catches its panic, the worker's
//! runtime runs it. See [`spawn_job`].

use graceful_core::{JobPanicked, Refused, Shutdown};
use std::future::Future;
use tokio::task::JoinHandle;

/// Spawns `job` on the current actix-rt worker (it need not be `Send`),
/// counted in flight until it ends: the drain waits for it, and the drain
/// deadline abandons it (counted in `abandoned N`). Call it in the handler,
/// before answering `202 Accepted`.
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
/// Outside an actix-rt system or worker, as [`actix_rt::spawn`] does.
///
/// # Examples
///
/// ```
/// actix_rt::System::new().block_on(async {
///     let driver = graceful_actix::Shutdown::builder().quiet().build().unwrap();
///     let shutdown = driver.handle();
///     let job = graceful_actix::spawn_job(&shutdown, async { 6 * 7 }).unwrap();
///     assert_eq!(job.await.unwrap(), Ok(42));
/// });
/// ```
pub fn spawn_job<F>(
    shutdown: &Shutdown,
    job: F,
) -> Result<JoinHandle<Result<F::Output, JobPanicked>>, Refused>
where
    F: Future + 'static,
    F::Output: 'static,
{
    let job = shutdown.track_job(job)?;
    Ok(actix_rt::spawn(job))
}
