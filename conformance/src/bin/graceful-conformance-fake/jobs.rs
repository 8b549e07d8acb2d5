//! `POST /jobs`: background jobs, in progress from their `202` until their
//! row is committed to the `jobs` table of the store.

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crate::config::Fault;
use crate::server::{Conn, Head, number, respond};
use crate::{Shared, lock};

/// Answers `POST /jobs?ms=N` with body ID; returns whether the connection
/// stays open.
pub(crate) fn post(shared: &Arc<Shared>, conn: &mut Conn, head: &Head, body: &[u8]) -> bool {
    let config = &shared.config;
    let Some(ms) = number(head, "ms") else {
        return respond(shared, conn, head, 400, "ms expected");
    };
    let id = String::from_utf8_lossy(body).trim().to_owned();
    if id.is_empty() {
        return respond(shared, conn, head, 400, "job id expected");
    }
    if config.store.is_none() {
        if config.has(Fault::JobsWithoutStore) {
            return respond(shared, conn, head, 202, &format!("queued {id}"));
        }
        return respond(shared, conn, head, 404, "no store");
    }
    let stored = match is_stored(shared, &id) {
        Ok(stored) => stored,
        Err(e) => {
            eprintln!("looking up job {id}: {e}");
            return respond(shared, conn, head, 500, "store failed");
        }
    };
    {
        // The job is counted before its 202 goes out.
        let mut st = lock(&shared.state);
        let queued = st.queued.contains(&id) && !config.has(Fault::JobsDuplicateQueued);
        if stored || queued {
            drop(st);
            return respond(shared, conn, head, 409, &format!("already queued {id}"));
        }
        st.queued.insert(id.clone());
        st.jobs += 1;
    }
    if config.has(Fault::JobsSync202) {
        run(shared, &id, Duration::from_millis(ms));
        return respond(shared, conn, head, 202, &format!("queued {id}"));
    }
    let job_id = id.clone();
    let job_shared = Arc::clone(shared);
    let spawned = thread::Builder::new()
        .name("job".into())
        .spawn(move || run(&job_shared, &job_id, Duration::from_millis(ms)));
    if let Err(e) = spawned {
        eprintln!("cannot start a job thread: {e}");
        finished(shared, &id);
        return respond(shared, conn, head, 500, "no job thread");
    }
    respond(shared, conn, head, 202, &format!("queued {id}"))
}

/// The job itself: N ms of work, then the commit.
fn run(shared: &Shared, id: &str, time: Duration) {
    thread::sleep(time);
    if let Err(e) = commit(shared, id) {
        eprintln!("committing job {id}: {e}");
    }
    finished(shared, id);
}

/// The job is no longer in progress.
fn finished(shared: &Shared, id: &str) {
    let mut st = lock(&shared.state);
    st.jobs -= 1;
    st.queued.remove(id);
    shared.changed.notify_all();
}

fn is_stored(shared: &Shared, id: &str) -> Result<bool, String> {
    let store = lock(&shared.store);
    let db = store.as_ref().ok_or("the store is closed")?;
    db.query_row("SELECT COUNT(*) FROM jobs WHERE id = ?1", [id], |row| {
        row.get::<_, i64>(0)
    })
    .map(|n| n > 0)
    .map_err(|e| e.to_string())
}

fn commit(shared: &Shared, id: &str) -> Result<(), String> {
    let store = lock(&shared.store);
    let db = store.as_ref().ok_or("the store is closed")?;
    db.execute("INSERT INTO jobs (id) VALUES (?1)", [id])
        .map(|_| ())
        .map_err(|e| e.to_string())
}
