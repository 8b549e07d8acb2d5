//! Background jobs the drain waits for, spawned on the program's executor.
//!
//! The whole of it is [`Shutdown::track_job`] and the [`Spawn`] seam that
//! [`serve`](crate::serve) uses: the core counts the job in flight and
//! catches its panic (smol's executors would otherwise pass it on to the
//! thread that runs them), the executor runs it. See [`spawn_job`].

use crate::Spawn;
use graceful_core::{Refused, Shutdown};
use std::future::Future;

/// Spawns `job` on `spawner` (smol's [`Global`](crate::Global) executor, or
/// the program's own), detached and counted in flight until it ends: the
/// drain waits for it, and the drain deadline abandons it (counted in
/// `abandoned N`). Call it before answering `202 Accepted`.
///
/// A panic in the job is caught, logged and counted
/// ([`Shutdown::job_panics`]); the drain does not wait for the dead job.
///
/// # Errors
///
/// Refused once the shutdown is draining: answer `503`, like any new work.
///
/// # Examples
///
/// ```
/// let driver = graceful_smol::Shutdown::builder().quiet().build().unwrap();
/// let shutdown = driver.handle();
/// let (done, finished) = smol::channel::bounded(1);
/// graceful_smol::spawn_job(&graceful_smol::Global, &shutdown, async move {
///     let _ = done.send(42).await;
/// })
/// .unwrap();
/// assert_eq!(smol::block_on(finished.recv()), Ok(42));
/// ```
pub fn spawn_job<F>(spawner: &impl Spawn, shutdown: &Shutdown, job: F) -> Result<(), Refused>
where
    F: Future<Output = ()> + Send + 'static,
{
    let job = shutdown.track_job(job)?;
    spawner.spawn_detached(async move {
        // A panic was already logged and counted by the job itself.
        let _ = job.await;
    });
    Ok(())
}
