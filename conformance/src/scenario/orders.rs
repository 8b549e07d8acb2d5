//! Orders under load, and the store check.
//!
//! Many clients post orders with unique ids while a signal arrives. Half of
//! them keep their connection alive, half open one per order. Afterwards the
//! kit opens the SQLite file and compares it with what the clients saw: a
//! `201` without its row, or a row without its `201`, is an order whose fate
//! the client was told wrong.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::{Ctx, Expect, PATIENCE, finish, ms_between};
use crate::contract::CleanupResult;
use crate::http::{self, Conn, Outcome, Request};
use crate::process::Signal;
use crate::tmp::TempDir;

/// Concurrent clients.
const CLIENTS: usize = 12;
/// Orders one client sends at most.
const MAX_PER_CLIENT: usize = 300;
/// No client starts an order later than this after the load began.
const LOAD_LIMIT: Duration = Duration::from_secs(10);
/// How long a client waits for one answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// Every id in the `orders` table of the SQLite file at `path`.
pub(crate) fn stored_ids(path: &Path) -> Result<HashSet<String>, String> {
    ids_in(path, "orders")
}

/// Every id in `table` (`orders` or `jobs`) of the SQLite file at `path`.
pub(crate) fn ids_in(path: &Path, table: &str) -> Result<HashSet<String>, String> {
    if !path.exists() {
        return Err(format!("the store file {} does not exist", path.display()));
    }
    let db = rusqlite::Connection::open(path)
        .map_err(|e| format!("opening the store {}: {e}", path.display()))?;
    let mut stmt = db
        .prepare(&format!("SELECT id FROM {table}"))
        .map_err(|e| format!("reading the store: {e}"))?;
    let ids = stmt
        .query_map([], |row| row.get::<_, String>(0))
        .and_then(|rows| rows.collect::<Result<HashSet<_>, _>>())
        .map_err(|e| format!("reading the store: {e}"))?;
    Ok(ids)
}

/// What a client was told about one order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Created,
    Conflict,
    Unavailable,
    Status(u16),
    /// The connection ended before any byte of the answer.
    Unanswered,
    Truncated,
    TimedOut,
    /// The answer was not HTTP/1.1.
    Malformed,
    Failed,
}

#[derive(Debug)]
struct Order {
    id: String,
    answer: Answer,
}

fn client(
    addr: SocketAddr,
    index: usize,
    run: &str,
    order_ms: fn(usize, usize) -> u64,
) -> Vec<Order> {
    let keepalive = index.is_multiple_of(2);
    let started = Instant::now();
    let mut orders = Vec::new();
    let mut conn: Option<Conn> = None;
    for seq in 0..MAX_PER_CLIENT {
        if started.elapsed() >= LOAD_LIMIT {
            break;
        }
        let mut open = match conn.take() {
            Some(open) => open,
            None => match http::connect(addr, Duration::from_secs(2)) {
                Ok(open) => open,
                // Refused: the listener is closed, this client is done.
                Err(_) => break,
            },
        };
        let id = format!("{run}-{index}-{seq}");
        let mut req = Request::post(format!("/orders?ms={}", order_ms(index, seq)), id.clone());
        if !keepalive {
            req = req.header("Connection", "close");
        }
        let (answer, reuse) = match open.exchange(&req, ANSWER_TIMEOUT) {
            Outcome::Response(r) => {
                let answer = match r.status() {
                    201 => Answer::Created,
                    409 => Answer::Conflict,
                    503 => Answer::Unavailable,
                    other => Answer::Status(other),
                };
                (answer, keepalive && !r.head.connection_close())
            }
            Outcome::Closed { .. } => (Answer::Unanswered, false),
            Outcome::Truncated { .. } => (Answer::Truncated, false),
            Outcome::TimedOut { .. } => (Answer::TimedOut, false),
            Outcome::Malformed(_) => (Answer::Malformed, false),
            Outcome::Refused | Outcome::Failed(_) => (Answer::Failed, false),
        };
        orders.push(Order { id, answer });
        if reuse {
            conn = Some(open);
        }
    }
    orders
}

fn run_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("o{}-{nanos}", std::process::id())
}

/// Runs the clients, sends `signal` after `signal_after`, and returns every
/// order with its answer, and when the signal was sent.
fn load(
    ctx: &mut Ctx<'_>,
    run: &mut crate::scenario::Running,
    signal: Signal,
    signal_after: Duration,
    order_ms: fn(usize, usize) -> u64,
) -> Result<(Vec<Order>, Instant), String> {
    let id = run_id();
    let addr = run.addr;
    let handles: Vec<_> = (0..CLIENTS)
        .map(|index| {
            let id = id.clone();
            thread::Builder::new()
                .name(format!("order-client-{index}"))
                .spawn(move || client(addr, index, &id, order_ms))
                .map_err(|e| format!("starting a client thread: {e}"))
        })
        .collect::<Result<_, _>>()?;
    thread::sleep(signal_after);
    let signalled = run.signal(signal);
    let mut orders = Vec::new();
    for handle in handles {
        match handle.join() {
            Ok(mut some) => orders.append(&mut some),
            Err(_) => ctx.fail("a client thread panicked"),
        }
    }
    Ok((orders, signalled?))
}

struct Tally {
    sent: usize,
    count: HashMap<&'static str, usize>,
    missing_rows: Vec<String>,
    lost: Vec<String>,
    unknown_rows: usize,
    rows: usize,
}

fn tally(orders: &[Order], ids: &HashSet<String>) -> Tally {
    let mut count: HashMap<&'static str, usize> = HashMap::new();
    let mut by_id = HashMap::new();
    let mut missing_rows = Vec::new();
    for o in orders {
        let key = match o.answer {
            Answer::Created => "201",
            Answer::Conflict => "409",
            Answer::Unavailable => "503",
            Answer::Status(_) => "other-status",
            Answer::Unanswered => "unanswered",
            Answer::Truncated => "truncated",
            Answer::TimedOut => "timed-out",
            Answer::Malformed => "malformed",
            Answer::Failed => "failed",
        };
        *count.entry(key).or_default() += 1;
        if o.answer == Answer::Created && !ids.contains(&o.id) {
            missing_rows.push(o.id.clone());
        }
        by_id.insert(o.id.as_str(), o.answer);
    }
    let mut lost = Vec::new();
    let mut unknown_rows = 0;
    for id in ids {
        match by_id.get(id.as_str()) {
            Some(Answer::Created) => {}
            Some(answer) => lost.push(format!("{id} ({answer:?})")),
            None => unknown_rows += 1,
        }
    }
    lost.sort();
    Tally {
        sent: orders.len(),
        count,
        missing_rows,
        lost,
        unknown_rows,
        rows: ids.len(),
    }
}

impl Tally {
    fn get(&self, key: &str) -> usize {
        self.count.get(key).copied().unwrap_or(0)
    }

    fn figures(&self, ctx: &mut Ctx<'_>) {
        ctx.figure("sent", self.sent);
        for key in [
            "201",
            "503",
            "unanswered",
            "truncated",
            "timed-out",
            "409",
            "other-status",
            "malformed",
            "failed",
        ] {
            let n = self.get(key);
            if n > 0 || matches!(key, "201" | "503" | "unanswered") {
                ctx.figure(key, n);
            }
        }
        ctx.figure("rows", self.rows);
        ctx.figure("rows-without-201", self.lost.len());
        ctx.figure("201-without-row", self.missing_rows.len());
    }
}

fn varied_ms(client: usize, seq: usize) -> u64 {
    20 + ((client * 13 + seq * 7) % 61) as u64
}

/// Long orders (160-279 ms) whose phases differ from client to client, so
/// that at any instant some orders are between their commit and their
/// answer.
fn slow_ms(client: usize, seq: usize) -> u64 {
    160 + ((client * 37 + seq * 11) % 120) as u64
}

pub(crate) fn orders_under_load(ctx: &mut Ctx<'_>) -> Result<(), String> {
    let dir = TempDir::new("orders").map_err(|e| format!("temporary directory: {e}"))?;
    let db = dir.file("orders.sqlite");
    let mut run = ctx.start(&["--store", &db, "--drain-timeout-ms", "10000"])?;
    let (orders, signalled) = load(
        ctx,
        &mut run,
        Signal::Term,
        Duration::from_millis(600),
        varied_ms,
    )?;
    let expect = Expect::clean().cleanup(&[("store", CleanupResult::Ok)]);
    let Some(done) = finish(ctx, &mut run, PATIENCE, &expect) else {
        return Ok(());
    };
    ctx.ms("exit-after-signal-ms", ms_between(signalled, done.exit.at));
    let ids = stored_ids(Path::new(&db))?;
    let t = tally(&orders, &ids);
    t.figures(ctx);
    ctx.promote("rows-without-201");
    ctx.check(t.get("201") > 0, || {
        "no order got its 201: the load never ran".to_owned()
    });
    ctx.check(t.missing_rows.is_empty(), || {
        format!(
            "{} orders got a 201 but have no row (first: {})",
            t.missing_rows.len(),
            t.missing_rows[0]
        )
    });
    ctx.check(t.lost.is_empty(), || {
        format!(
            "{} stored orders never got their 201 (first: {})",
            t.lost.len(),
            t.lost[0]
        )
    });
    ctx.check(t.unknown_rows == 0, || {
        format!("{} rows for orders no client sent", t.unknown_rows)
    });
    let unanswered = t.get("unanswered");
    ctx.check(unanswered * 200 <= t.sent, || {
        format!(
            "{unanswered} of {} orders met a closed connection (at most 0.5 % tolerated)",
            t.sent
        )
    });
    for key in [
        "truncated",
        "timed-out",
        "409",
        "other-status",
        "malformed",
        "failed",
    ] {
        let n = t.get(key);
        ctx.check(n == 0, || format!("{n} orders ended {key}"));
    }
    Ok(())
}

pub(crate) fn orders_under_sigkill(ctx: &mut Ctx<'_>) -> Result<(), String> {
    let dir = TempDir::new("sigkill").map_err(|e| format!("temporary directory: {e}"))?;
    let db = dir.file("orders.sqlite");
    let mut run = ctx.start(&["--store", &db])?;
    let (orders, _) = load(
        ctx,
        &mut run,
        Signal::Kill,
        Duration::from_millis(700),
        slow_ms,
    )?;
    let Some(exit) = run.process.wait_exit(PATIENCE) else {
        return Err("the process survived SIGKILL".to_owned());
    };
    ctx.check(exit.signal() == Some(Signal::Kill.number()), || {
        format!("after SIGKILL: {}", exit.describe())
    });
    let ids = stored_ids(Path::new(&db))?;
    let t = tally(&orders, &ids);
    t.figures(ctx);
    ctx.promote("rows-without-201");
    ctx.check(!t.lost.is_empty(), || {
        format!(
            "SIGKILL during {} orders of 160-280 ms lost no answer: nothing to show (is the row really committed halfway?)",
            t.sent
        )
    });
    ctx.check(t.missing_rows.is_empty(), || {
        format!(
            "{} orders got a 201 but have no row, even though a 201 comes after the commit",
            t.missing_rows.len()
        )
    });
    ctx.check(t.unknown_rows == 0, || {
        format!("{} rows for orders no client sent", t.unknown_rows)
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(id: &str, answer: Answer) -> Order {
        Order {
            id: id.to_owned(),
            answer,
        }
    }

    #[test]
    fn tally_finds_lost_answers_missing_rows_and_strangers() {
        let orders = [
            order("a", Answer::Created),
            order("b", Answer::Created),
            order("c", Answer::Unanswered),
            order("d", Answer::Unavailable),
            order("e", Answer::Truncated),
        ];
        let ids: HashSet<String> = ["a", "c", "e", "z"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let t = tally(&orders, &ids);
        assert_eq!(t.sent, 5);
        assert_eq!(t.get("201"), 2);
        assert_eq!(t.missing_rows, ["b"]);
        assert_eq!(t.lost, ["c (Unanswered)", "e (Truncated)"]);
        assert_eq!(t.unknown_rows, 1);
        assert_eq!(t.rows, 4);
    }

    #[test]
    fn stored_ids_reads_the_table_and_reports_a_missing_file() {
        let dir = TempDir::new("unit").unwrap();
        let path = dir.path().join("s.sqlite");
        assert!(stored_ids(&path).unwrap_err().contains("does not exist"));
        let db = rusqlite::Connection::open(&path).unwrap();
        db.execute_batch(
            "CREATE TABLE orders (id TEXT PRIMARY KEY); INSERT INTO orders VALUES ('x'), ('y');",
        )
        .unwrap();
        drop(db);
        let ids = stored_ids(&path).unwrap();
        assert_eq!(ids.len(), 2);
        assert!(ids.contains("x") && ids.contains("y"));
    }
}
