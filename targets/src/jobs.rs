//! The bookkeeping of `POST /jobs`: which ids are queued, and the commit of
//! a job's row, without a runtime.
//!
//! A job id is refused (`409`) while it is *queued or stored*: queued from
//! [`Jobs::queue`] until its [`Queued`] is committed or dropped, stored once
//! its row is in the table `jobs`. The target carries a job out on its
//! runtime in this order:
//!
//! 1. [`Jobs::queue`] the body's [`job_id`](crate::job_id) (blocks on
//!    SQLite): a `409` when it is already queued or stored;
//! 2. spawn the job with the adapter's `spawn_job`, which counts it in
//!    flight from now on, before the `202` goes out (refused once draining:
//!    answer `503`, like any new work; the [`Queued`] is dropped with it);
//! 3. answer [`Answer::queued`](crate::Answer::queued) at once;
//! 4. in the job: wait N ms, then [`Queued::commit`] (blocks on SQLite).
//!
//! The drain waits for the job as for a request, so the store, which closes
//! last, is still open for the commit; a `202` delivered under SIGTERM
//! always has its row.

use crate::store::{Insert, Store};
use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

/// The jobs of one store: the ids queued in this process, and the table
/// `jobs`. A cheap handle, cloned into every route that queues jobs.
#[derive(Clone)]
pub struct Jobs {
    store: Store,
    queued: Arc<Mutex<HashSet<String>>>,
}

impl fmt::Debug for Jobs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jobs")
            .field("queued", &self.lock().len())
            .finish_non_exhaustive()
    }
}

impl Jobs {
    /// The jobs of `store`, none queued yet.
    pub fn new(store: Store) -> Jobs {
        Jobs {
            store,
            queued: Arc::default(),
        }
    }

    /// The queued ids; a panic elsewhere does not poison them for the rest.
    fn lock(&self) -> MutexGuard<'_, HashSet<String>> {
        self.queued.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues the job `id`, unless it is already queued or stored. Blocks
    /// on SQLite.
    ///
    /// # Errors
    ///
    /// [`Insert::Duplicate`] when `id` is queued or stored, [`Insert::Failed`]
    /// when the store failed or is closed.
    pub fn queue(&self, id: &str) -> Result<Queued, Insert> {
        // The lock is held across the look-up, so that two requests for one
        // id cannot both find it free.
        let mut queued = self.lock();
        if queued.contains(id) || self.store.has_job(id)? {
            return Err(Insert::Duplicate);
        }
        queued.insert(id.to_owned());
        Ok(Queued {
            jobs: self.clone(),
            id: id.to_owned(),
        })
    }
}

/// A queued job: its id stays taken until this is committed or dropped.
#[must_use = "a queued job is given back when dropped"]
pub struct Queued {
    jobs: Jobs,
    id: String,
}

impl fmt::Debug for Queued {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queued").field("id", &self.id).finish()
    }
}

impl Queued {
    /// The job's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Commits the job's row to the table `jobs`: its work is done. Blocks
    /// on SQLite.
    ///
    /// # Errors
    ///
    /// As [`Store::insert_job`] (a `Duplicate` here means another process
    /// sharing the store committed the same id first).
    pub fn commit(self) -> Result<(), Insert> {
        self.jobs.store.insert_job(&self.id)
        // Dropped here: from now on the row, not the set, refuses the id.
    }
}

impl Drop for Queued {
    fn drop(&mut self) {
        self.jobs.lock().remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Journal;
    use crate::testing::Scratch;

    #[test]
    fn an_id_is_refused_while_queued_or_stored() {
        let dir = Scratch::new("jobs");
        let store = Store::open(&dir.path().join("j.sqlite"), Journal::Rollback).unwrap();
        let jobs = Jobs::new(store.clone());

        let a = jobs.queue("a").unwrap();
        assert_eq!(a.id(), "a");
        assert_eq!(jobs.queue("a").unwrap_err(), Insert::Duplicate);
        let b = jobs.queue("b").unwrap();
        // Given back: a job refused after it was queued frees its id.
        drop(b);
        let b = jobs.queue("b").unwrap();

        assert_eq!(a.commit(), Ok(()));
        assert_eq!(store.has_job("a"), Ok(true));
        assert_eq!(jobs.queue("a").unwrap_err(), Insert::Duplicate);
        assert_eq!(b.commit(), Ok(()));

        // Another process's handle (a fresh set) still finds the rows.
        let other = Jobs::new(store.clone());
        assert_eq!(other.queue("a").unwrap_err(), Insert::Duplicate);
        assert_eq!(store.insert("a"), Ok(()), "orders and jobs are apart");

        store.close().unwrap();
        assert_eq!(jobs.queue("c").unwrap_err(), Insert::Failed);
    }
}
