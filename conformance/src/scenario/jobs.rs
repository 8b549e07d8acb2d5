//! Background jobs (contract v2, rules 21 and 22): `POST /jobs?ms=N` answers
//! `202` at once, and the job commits its row to the `jobs` table N ms
//! later. A job is in progress from its `202` until that commit: `drained`
//! waits for it, the deadline abandons and counts it, and after an exit 0
//! every `202` a client received has its row. After `closed` a new job is
//! refused like any new work.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use super::orders::ids_in;
use super::{
    BOUND_MS, Ctx, Ending, Expect, PATIENCE, REQUEST_TIMEOUT, SLACK_MS, expect_response, finish,
    ms_between,
};
use crate::contract::{CleanupResult, Event};
use crate::http::{self, Conn, Outcome, Request};
use crate::process::Signal;
use crate::tmp::TempDir;

/// What a target that does not serve `/jobs` is told.
pub(crate) const JOBS_404: &str =
    "POST /jobs answered 404: the target does not serve background jobs (contract v2, rule 21)";
/// Concurrent clients of the load.
const CLIENTS: usize = 8;
/// Jobs one client posts at most.
const MAX_PER_CLIENT: usize = 200;
/// No client posts a job later than this after the load began.
const LOAD_LIMIT: Duration = Duration::from_secs(8);

fn job(ms: u64, id: &str) -> Request {
    Request::post(format!("/jobs?ms={ms}"), id)
}

/// Posts a job on a fresh connection and checks its `202 queued ID`;
/// returns when the answer arrived. A `404` is the clear failure of a
/// target that does not serve jobs.
fn queue(addr: SocketAddr, id: &str, ms: u64) -> Result<Instant, String> {
    let sent = Instant::now();
    let out = http::request(addr, &job(ms, id), REQUEST_TIMEOUT);
    match &out {
        Outcome::Response(r) if r.status() == 404 => Err(JOBS_404.to_owned()),
        Outcome::Response(r) if r.status() == 202 => {
            let want = format!("queued {id}");
            if r.text() != want {
                return Err(format!("job {id}: body {:?}, expected {want:?}", r.text()));
            }
            let ms = ms_between(sent, r.done_at);
            if ms > BOUND_MS {
                return Err(format!(
                    "job {id}: the 202 came {ms:.1} ms after the request (it is sent at once, the job runs after it)"
                ));
            }
            Ok(r.done_at)
        }
        other => Err(format!("job {id}: {other}, expected 202")),
    }
}

fn stored_jobs(path: &str) -> Result<HashSet<String>, String> {
    ids_in(Path::new(path), "jobs")
}

fn store_dir(name: &str) -> Result<(TempDir, String), String> {
    let dir = TempDir::new(name).map_err(|e| format!("temporary directory: {e}"))?;
    let db = dir.file("jobs.sqlite");
    Ok((dir, db))
}

fn with_store() -> Expect {
    Expect::clean().cleanup(&[("store", CleanupResult::Ok)])
}

/// Records a failure for every id in `ids` without its row.
fn expect_rows(ctx: &mut Ctx<'_>, db: &str, ids: &[&str]) {
    match stored_jobs(db) {
        Ok(rows) => {
            let missing: Vec<&str> = ids
                .iter()
                .copied()
                .filter(|id| !rows.contains(*id))
                .collect();
            ctx.check(missing.is_empty(), || {
                format!(
                    "{} jobs got their 202 but have no row after the exit (first: {})",
                    missing.len(),
                    missing[0]
                )
            });
        }
        Err(why) => ctx.fail(why),
    }
}

pub(super) fn jobs_complete(ctx: &mut Ctx<'_>) -> Result<(), String> {
    let (_dir, db) = store_dir("jobs-complete")?;
    let mut run = ctx.start(&["--store", &db, "--drain-timeout-ms", "10000"])?;
    let jobs = [
        ("job-complete-0", 600),
        ("job-complete-1", 900),
        ("job-complete-2", 1200),
    ];
    let mut ends = Vec::new();
    for (id, ms) in jobs {
        let answered = queue(run.addr, id, ms)?;
        ends.push(answered + Duration::from_millis(ms));
    }
    let signalled = run.signal(Signal::Term)?;
    let closed = run.wait_event("closed", Duration::from_secs(2));
    if let Err(why) = &closed {
        ctx.fail(why.clone());
    }
    let last_end = ends.iter().max().copied().unwrap_or(signalled);
    let wait = PATIENCE + Duration::from_millis(1200);
    if let Some(done) = finish(ctx, &mut run, wait, &with_store()) {
        if let Some(drained) = done.at(|e| *e == Event::Drained) {
            // The last job ends N ms after its 202, give or take the commit.
            let ms = ms_between(last_end, drained);
            ctx.ms("drained-after-last-job-ms", ms);
            ctx.promote("drained-after-last-job-ms");
            ctx.check(ms >= -SLACK_MS, || {
                format!(
                    "`drained` came {:.1} ms before the last job could have ended (a job is in progress until its commit)",
                    -ms
                )
            });
            ctx.check(ms <= BOUND_MS, || {
                format!(
                    "`drained` came {ms:.1} ms after the last job's end (the contract allows {BOUND_MS:.0} ms)"
                )
            });
        }
        let ids: Vec<&str> = jobs.iter().map(|(id, _)| *id).collect();
        expect_rows(ctx, &db, &ids);
    }
    Ok(())
}

pub(super) fn jobs_deadline_abandons(ctx: &mut Ctx<'_>) -> Result<(), String> {
    let (_dir, db) = store_dir("jobs-deadline")?;
    let mut run = ctx.start(&["--store", &db, "--drain-timeout-ms", "1000"])?;
    queue(run.addr, "job-short", 300)?;
    queue(run.addr, "job-long", 8000)?;
    run.signal(Signal::Term)?;
    let closed = run.wait_event("closed", Duration::from_secs(2));
    if let Err(why) = &closed {
        ctx.fail(why.clone());
    }
    let expect = Expect {
        ending: Ending::Abandoned(1),
        code: 1,
        ..with_store()
    };
    let wait = PATIENCE + Duration::from_millis(1000);
    if let Some(done) = finish(ctx, &mut run, wait, &expect) {
        if let (Ok(closed), Some(at)) = (closed, done.at(|e| matches!(e, Event::Abandoned(_)))) {
            let ms = ms_between(closed + Duration::from_millis(1000), at);
            ctx.ms("abandoned-after-deadline-ms", ms);
            ctx.promote("abandoned-after-deadline-ms");
            ctx.check(ms >= -SLACK_MS, || {
                format!("`abandoned` came {:.1} ms before the deadline", -ms)
            });
            ctx.check(ms <= BOUND_MS, || {
                format!(
                    "`abandoned` came {ms:.1} ms after the deadline (the contract allows {BOUND_MS:.0} ms)"
                )
            });
        }
        expect_rows(ctx, &db, &["job-short"]);
    }
    Ok(())
}

/// What one load client was told about its jobs: the ids that got a 202,
/// and how many requests ended otherwise, by kind.
#[derive(Debug, Default)]
struct Told {
    queued: Vec<String>,
    refused: usize,
    unanswered: usize,
    other: Vec<String>,
}

fn load_client(addr: SocketAddr, index: usize) -> Told {
    let keepalive = index.is_multiple_of(2);
    let started = Instant::now();
    let mut told = Told::default();
    let mut conn: Option<Conn> = None;
    for seq in 0..MAX_PER_CLIENT {
        if started.elapsed() >= LOAD_LIMIT {
            break;
        }
        let mut open = match conn.take() {
            Some(open) => open,
            None => match http::connect(addr, Duration::from_secs(2)) {
                Ok(open) => open,
                // The listener is closed: this client is done.
                Err(_) => break,
            },
        };
        let id = format!("load-{index}-{seq}");
        let ms = 20 + ((index * 37 + seq * 11) % 280) as u64;
        let mut req = job(ms, &id);
        if !keepalive {
            req = req.header("Connection", "close");
        }
        match open.exchange(&req, REQUEST_TIMEOUT) {
            Outcome::Response(r) if r.status() == 202 => {
                told.queued.push(id);
                if keepalive && !r.head.connection_close() {
                    conn = Some(open);
                }
            }
            Outcome::Response(r) if r.status() == 503 => {
                told.refused += 1;
                break;
            }
            Outcome::Closed { .. } => {
                told.unanswered += 1;
                break;
            }
            other => {
                told.other.push(format!("job {id}: {other}"));
                break;
            }
        }
        // Pace the load a little: the point is the moment of the signal.
        thread::sleep(Duration::from_millis(5));
    }
    told
}

pub(super) fn jobs_under_sigterm(ctx: &mut Ctx<'_>) -> Result<(), String> {
    let (_dir, db) = store_dir("jobs-load")?;
    let mut run = ctx.start(&["--store", &db, "--drain-timeout-ms", "10000"])?;
    // An idle keep-alive connection, for a new job after `closed`.
    let mut idle = http::connect(run.addr, REQUEST_TIMEOUT).map_err(|o| format!("connect: {o}"))?;
    let first = idle.exchange(&Request::get("/health/live"), REQUEST_TIMEOUT);
    if !expect_response(ctx, "GET /health/live before the signal", &first, 200, None) {
        return Ok(());
    }
    // A long job keeps the drain open after `closed`.
    queue(run.addr, "job-hold", 1500)?;
    let addr = run.addr;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|index| {
            thread::Builder::new()
                .name(format!("job-client-{index}"))
                .spawn(move || load_client(addr, index))
                .map_err(|e| format!("starting a client thread: {e}"))
        })
        .collect::<Result<_, _>>()?;
    thread::sleep(Duration::from_millis(500));
    let signalled = run.signal(Signal::Term);
    let closed = run.wait_event("closed", Duration::from_secs(2));
    let mut late_id = None;
    match &closed {
        Ok(_) => {
            let out = idle.exchange(&job(10, "job-after-closed"), REQUEST_TIMEOUT);
            let what = "a new job on an open keep-alive connection after `closed`";
            if expect_response(ctx, what, &out, 503, None)
                && let Some(r) = out.response()
            {
                ctx.check(r.head.connection_close(), || {
                    format!("{what}: 503 without `Connection: close`")
                });
                ctx.check(r.head.header("retry-after").is_some(), || {
                    format!("{what}: 503 without `Retry-After`")
                });
            } else if out.status() == Some(202) {
                late_id = Some("job-after-closed");
            }
        }
        Err(why) => ctx.fail(why.clone()),
    }
    let mut told = Told::default();
    for client in clients {
        match client.join() {
            Ok(mut t) => {
                told.queued.append(&mut t.queued);
                told.refused += t.refused;
                told.unanswered += t.unanswered;
                told.other.append(&mut t.other);
            }
            Err(_) => ctx.fail("a client thread panicked"),
        }
    }
    signalled?;
    let sent = told.queued.len() + told.refused + told.unanswered + told.other.len();
    ctx.figure("sent", sent);
    ctx.figure("202", told.queued.len());
    ctx.figure("503", told.refused);
    ctx.figure("unanswered", told.unanswered);
    ctx.check(!told.queued.is_empty(), || {
        "no job got its 202: the load never ran".to_owned()
    });
    ctx.check(told.unanswered * 200 <= sent.max(1), || {
        format!(
            "{} of {sent} jobs met a closed connection (at most 0.5 % tolerated)",
            told.unanswered
        )
    });
    if let Some(first) = told.other.first() {
        ctx.fail(format!(
            "{} jobs ended otherwise (first: {first})",
            told.other.len()
        ));
    }
    let wait = PATIENCE + Duration::from_millis(1500);
    if finish(ctx, &mut run, wait, &with_store()).is_some() {
        let mut ids: Vec<&str> = told.queued.iter().map(String::as_str).collect();
        ids.push("job-hold");
        ids.extend(late_id);
        match stored_jobs(&db) {
            Ok(rows) => {
                ctx.figure("rows", rows.len());
                let missing: Vec<&&str> = ids.iter().filter(|id| !rows.contains(**id)).collect();
                ctx.figure("202-without-row", missing.len());
                ctx.promote("202-without-row");
                ctx.check(missing.is_empty(), || {
                    format!(
                        "{} jobs got a 202 but have no row after exit 0 (first: {})",
                        missing.len(),
                        missing[0]
                    )
                });
            }
            Err(why) => ctx.fail(why),
        }
    }
    Ok(())
}

pub(super) fn jobs_no_store(ctx: &mut Ctx<'_>) -> Result<(), String> {
    // First with a store, to tell "no jobs at all" from "no store".
    let (_dir, db) = store_dir("jobs-no-store")?;
    let mut run = ctx.start(&["--store", &db])?;
    queue(run.addr, "job-probe", 10)?;
    thread::sleep(Duration::from_millis(100));
    run.signal(Signal::Term)?;
    finish(ctx, &mut run, PATIENCE, &with_store());
    let mut run = ctx.start(&[])?;
    let out = http::request(run.addr, &job(10, "job-nowhere"), REQUEST_TIMEOUT);
    expect_response(ctx, "POST /jobs without --store", &out, 404, None);
    run.signal(Signal::Term)?;
    finish(ctx, &mut run, PATIENCE, &Expect::clean());
    Ok(())
}

pub(super) fn jobs_duplicate(ctx: &mut Ctx<'_>) -> Result<(), String> {
    let (_dir, db) = store_dir("jobs-duplicate")?;
    let mut run = ctx.start(&["--store", &db, "--drain-timeout-ms", "10000"])?;
    let id = "job-twice";
    let answered = queue(run.addr, id, 600)?;
    let again = http::request(run.addr, &job(10, id), REQUEST_TIMEOUT);
    expect_response(
        ctx,
        "the same job id again while it is queued",
        &again,
        409,
        None,
    );
    let committed = answered + Duration::from_millis(600 + 400);
    thread::sleep(committed.saturating_duration_since(Instant::now()));
    let third = http::request(run.addr, &job(10, id), REQUEST_TIMEOUT);
    expect_response(
        ctx,
        "the same job id again once it is stored",
        &third,
        409,
        None,
    );
    run.signal(Signal::Term)?;
    if finish(ctx, &mut run, PATIENCE, &with_store()).is_some() {
        expect_rows(ctx, &db, &[id]);
    }
    Ok(())
}
