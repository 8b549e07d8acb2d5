//! Where connections run: smol's global executor, or the program's own.
//!
//! tokio has one ambient runtime to spawn on; smol programs choose. Most
//! run their own [`Executor`] on threads of their choosing, some use smol's
//! global one ([`smol::spawn`]). [`serve`](crate::serve) takes the choice
//! as a parameter: anything that implements [`Spawn`].

use async_executor::Executor;
use std::future::Future;
use std::sync::Arc;

/// An executor that [`serve`](crate::serve) spawns its connection tasks on.
///
/// One method: run a `Send` future to completion in the background. A
/// connection task must not be dropped before it ends: detach it, or keep
/// it, but do not drop its handle (smol cancels a [`Task`] that is
/// dropped).
///
/// Implemented for:
///
/// - [`Global`]: smol's global executor;
/// - `Arc<Executor<'static>>` and `&'static Executor<'static>`: an
///   [`Executor`] of the program's own, run on threads of its choosing.
///
/// For another executor, implement it on a type of your own: one line that
/// spawns and detaches.
///
/// [`Task`]: async_executor::Task
///
/// # Examples
///
/// ```
/// use graceful_smol::Spawn;
/// use smol::Executor;
/// use std::sync::Arc;
///
/// let executor = Arc::new(Executor::new());
/// let (done, finished) = smol::channel::bounded(1);
/// executor.spawn_detached(async move {
///     let _ = done.send(()).await;
/// });
/// smol::block_on(executor.run(finished.recv())).unwrap();
/// ```
pub trait Spawn: Send + Sync + 'static {
    /// Runs `future` to completion in the background.
    fn spawn_detached<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static;
}

/// smol's global executor: [`smol::spawn`].
///
/// It starts on first use, on one thread (`SMOL_THREADS` sets more), and
/// runs for the life of the process.
///
/// # Examples
///
/// ```
/// use graceful_smol::{Global, Spawn};
///
/// let (done, finished) = smol::channel::bounded(1);
/// Global.spawn_detached(async move {
///     let _ = done.send(()).await;
/// });
/// smol::block_on(finished.recv()).unwrap();
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Global;

impl Spawn for Global {
    fn spawn_detached<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        smol::spawn(future).detach();
    }
}

impl Spawn for Arc<Executor<'static>> {
    fn spawn_detached<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        Executor::spawn(self, future).detach();
    }
}

impl Spawn for &'static Executor<'static> {
    fn spawn_detached<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        Executor::spawn(self, future).detach();
    }
}
