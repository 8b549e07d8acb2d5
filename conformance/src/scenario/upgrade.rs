//! The zero-downtime upgrade (contract version 2, rules 23 to 27).
//!
//! `SIGHUP` makes the target start a new process of itself that inherits
//! the listening socket; once the new one prints `listening`, the old one
//! prints `upgrade PID`, closes (its own copy only) and drains. The kit
//! follows the processes through their shared standard output: after
//! `upgrading`, the first `listening` is the new process's; `closed`,
//! `drained`, `abandoned`, `cleanup` and `exit` are the old one's until its
//! `exit` line, and what follows is the new one's. Only the first process
//! is the kit's child; the others are signalled by the pid their `upgrade
//! PID` line gave, and their exit is read from their `exit` line (and the
//! end of standard output, once the last one is gone).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{self, Signal as Nix};
use nix::unistd::Pid;

use super::orders::stored_ids;
use super::{Ctx, PATIENCE, REQUEST_TIMEOUT, Running, expect_response};
use crate::contract::{Event, check_grammar};
use crate::http::{self, Conn, Outcome, Request};
use crate::process::Process;
use crate::tmp::TempDir;

/// Rule 25's bound for a new process to come up, plus slack.
const READY_BOUND: Duration = Duration::from_secs(13);
/// Upgrades in a row under load.
const UPGRADES: usize = 10;
/// Concurrent clients of the load.
const CLIENTS: usize = 8;
/// How long each order takes on the server: long enough to be in flight
/// at a hand-over.
const ORDER_MS: u64 = 40;

/// An upgrade line of standard output.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Upgrade {
    Upgrading,
    HandedOver(u32),
    Failed(String),
}

fn upgrade_line(line: &str) -> Option<Upgrade> {
    match line.split(' ').collect::<Vec<_>>().as_slice() {
        ["upgrading"] => Some(Upgrade::Upgrading),
        ["upgrade", pid] => pid.parse().ok().map(Upgrade::HandedOver),
        ["upgrade-failed", reason] if !reason.is_empty() => {
            Some(Upgrade::Failed((*reason).to_owned()))
        }
        _ => None,
    }
}

/// Sends `sig` to the process `pid` (not to its group).
fn send(pid: u32, sig: Nix) -> Result<(), String> {
    let raw = i32::try_from(pid).map_err(|_| format!("bad pid {pid}"))?;
    signal::kill(Pid::from_raw(raw), sig).map_err(|e| format!("could not send {sig} to {pid}: {e}"))
}

fn texts(process: &Process, from: usize, to: usize) -> Vec<String> {
    process
        .lines()
        .into_iter()
        .skip(from)
        .take(to.saturating_sub(from))
        .map(|l| l.text)
        .collect()
}

/// One hand-over, from the `SIGHUP` to the old process's `exit` line.
struct HandOver {
    new_pid: u32,
    /// The old process's exit code, from its `exit` line.
    code: i32,
    /// The index of the line after the old process's `exit`.
    next: usize,
}

/// Sends `SIGHUP` to `pid` and follows the upgrade to the old process's
/// exit, checking rule 24's lines on the way.
fn upgrade(
    ctx: &mut Ctx<'_>,
    process: &Process,
    pid: u32,
    from: usize,
) -> Result<HandOver, String> {
    send(pid, Nix::SIGHUP)?;
    let (u, _) = process
        .wait_line_from(from, Duration::from_secs(5), |l| l == "upgrading")
        .ok_or("no `upgrading` line within 5 s of SIGHUP")?;
    let (p, line) = process
        .wait_line_from(u + 1, READY_BOUND, |l| {
            matches!(
                upgrade_line(l),
                Some(Upgrade::HandedOver(_) | Upgrade::Failed(_))
            )
        })
        .ok_or("no `upgrade PID` line after `upgrading`")?;
    let new_pid = match upgrade_line(&line.text) {
        Some(Upgrade::HandedOver(new_pid)) => new_pid,
        _ => return Err(format!("the upgrade failed: `{}`", line.text)),
    };
    let between = texts(process, u + 1, p);
    ctx.check(between.iter().any(|l| l.starts_with("listening ")), || {
        format!("`upgrade {new_pid}` came before the new process's `listening` line")
    });
    ctx.check(
        !between
            .iter()
            .any(|l| l == "closed" || l.starts_with("draining ")),
        || format!("the old process closed before `upgrade {new_pid}`: {between:?}"),
    );
    let (e, exit) = process
        .wait_line_from(p + 1, Duration::from_secs(10), |l| l.starts_with("exit "))
        .ok_or_else(|| {
            format!("the old process printed no `exit` line after `upgrade {new_pid}`")
        })?;
    let drain = texts(process, p + 1, e);
    ctx.check(drain.first().is_some_and(|l| l == "closed"), || {
        format!("`closed` does not follow `upgrade {new_pid}`: {drain:?}")
    });
    ctx.check(drain.iter().any(|l| l == "drained"), || {
        format!("the old process did not print `drained`: {drain:?}")
    });
    let code = match Event::parse(&exit.text) {
        Ok(Event::Exit(code)) => code,
        _ => return Err(format!("bad exit line {:?}", exit.text)),
    };
    Ok(HandOver {
        new_pid,
        code,
        next: e + 1,
    })
}

/// What the load's clients saw.
#[derive(Debug, Default)]
struct Seen {
    created: Vec<String>,
    refused: usize,
    /// Connects with no answer within 2 s: the handshake was dropped (a
    /// socket filter on the listening socket drops them all).
    unanswered: usize,
    reset: usize,
    failed: Vec<String>,
    /// `503` from a draining process: retried on a new connection.
    retried_503: usize,
    /// A kept-alive connection closed before any byte (rule 5's race at
    /// the old process's exit): retried on a new connection.
    retried_closed: usize,
    /// A retry told `409`: the order had been stored, its answer lost.
    lost: Vec<String>,
}

/// One client: orders with unique ids until `stop`, half the clients on
/// kept-alive connections. A `503` or a kept-alive connection closed before
/// any byte is retried with the same id on a new connection, as a load
/// balancer or a client following `Retry-After` would.
fn client(addr: SocketAddr, index: usize, run: &str, stop: &AtomicBool) -> Seen {
    let keepalive = index.is_multiple_of(2);
    let mut seen = Seen::default();
    let mut conn: Option<Conn> = None;
    let mut seq = 0;
    while !stop.load(Ordering::Relaxed) {
        let id = format!("{run}-{index}-{seq}");
        seq += 1;
        let mut retried = false;
        for _attempt in 0..5 {
            let (mut open, reused) = match conn.take() {
                Some(open) => (open, true),
                None => match http::connect(addr, Duration::from_secs(2)) {
                    Ok(open) => (open, false),
                    Err(Outcome::Refused) => {
                        seen.refused += 1;
                        break;
                    }
                    Err(Outcome::TimedOut { .. }) => {
                        seen.unanswered += 1;
                        break;
                    }
                    Err(other) => {
                        seen.failed.push(format!("{id}: connect: {other}"));
                        break;
                    }
                },
            };
            let mut req = Request::post(format!("/orders?ms={ORDER_MS}"), id.clone());
            if !keepalive {
                req = req.header("Connection", "close");
            }
            match open.exchange(&req, Duration::from_secs(10)) {
                Outcome::Response(r) if r.status() == 201 => {
                    seen.created.push(id.clone());
                    if keepalive && !r.head.connection_close() {
                        conn = Some(open);
                    }
                    break;
                }
                Outcome::Response(r) if r.status() == 503 => {
                    seen.retried_503 += 1;
                    retried = true;
                }
                Outcome::Response(r) if r.status() == 409 && retried => {
                    seen.lost.push(id.clone());
                    break;
                }
                Outcome::Closed { reset: false } if reused => {
                    seen.retried_closed += 1;
                    retried = true;
                }
                Outcome::Closed { reset: true } => {
                    seen.reset += 1;
                    break;
                }
                other => {
                    seen.failed.push(format!("{id}: {other}"));
                    break;
                }
            }
        }
    }
    seen
}

/// Runs the clients until the returned flag is set; join the handles.
fn start_load(addr: SocketAddr) -> (Arc<AtomicBool>, Vec<thread::JoinHandle<Seen>>) {
    let stop = Arc::new(AtomicBool::new(false));
    // The store is fresh for each run; the ids only have to differ
    // between clients.
    let run = format!("u{}", std::process::id());
    let handles = (0..CLIENTS)
        .map(|index| {
            let stop = Arc::clone(&stop);
            let run = run.clone();
            thread::spawn(move || client(addr, index, &run, &stop))
        })
        .collect();
    (stop, handles)
}

/// Rules 23, 24 and 27: ten upgrades in a row under steady load.
pub(crate) fn upgrade_under_load(ctx: &mut Ctx<'_>) -> Result<(), String> {
    let dir = TempDir::new("upgrade-load").map_err(|e| format!("scratch directory: {e}"))?;
    let store = dir.file("orders.sqlite");
    let mut run = ctx.start(&["--store", &store])?;
    let (stop, handles) = start_load(run.addr);
    thread::sleep(Duration::from_millis(300));
    let mut pid = run.process.pid();
    let mut from = 0;
    let mut done = 0;
    let mut failure = None;
    for i in 0..UPGRADES {
        match upgrade(ctx, &run.process, pid, from) {
            Ok(handed) => {
                ctx.check(handed.code == 0, || {
                    format!(
                        "upgrade {}: the old process exited {}, expected 0",
                        i + 1,
                        handed.code
                    )
                });
                if i == 0 {
                    match run.process.wait_exit(PATIENCE) {
                        Some(exit) => {
                            ctx.check(exit.code() == Some(0), || {
                                format!("the first process ended with {}", exit.describe())
                            });
                        }
                        None => ctx.fail("the first process printed `exit` but did not exit"),
                    }
                }
                pid = handed.new_pid;
                from = handed.next;
                done += 1;
                thread::sleep(Duration::from_millis(150));
            }
            Err(why) => {
                failure = Some(format!("upgrade {}: {why}", i + 1));
                break;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let seen: Vec<Seen> = handles
        .into_iter()
        .map(|h| h.join().unwrap_or_default())
        .collect();
    ctx.figure("upgrades", done);
    if let Some(why) = failure {
        run.process.kill();
        return Err(why);
    }
    // The last new process serves, and shuts down on SIGTERM.
    let ready = run.get("/health/ready");
    expect_response(
        ctx,
        "/health/ready of the last new process",
        &ready,
        200,
        Some("ready"),
    );
    send(pid, Nix::SIGTERM)?;
    let last = run
        .process
        .wait_line_from(from, Duration::from_secs(10), |l| l.starts_with("exit "));
    match last.as_ref().map(|(_, l)| Event::parse(&l.text)) {
        Some(Ok(Event::Exit(0))) => {}
        Some(_) => ctx.fail(format!(
            "the last process ended with {:?}",
            last.map(|l| l.1.text)
        )),
        None => ctx.fail("the last process printed no `exit` line after SIGTERM"),
    }
    if !run.process.wait_stdout_end(Duration::from_secs(5)) {
        ctx.fail("standard output stayed open after the last process's `exit`");
    }
    let tail = texts(&run.process, from, usize::MAX);
    ctx.check(
        tail.first().is_some_and(|l| l == "draining SIGTERM"),
        || format!("the last process's shutdown: {tail:?}"),
    );
    check_load(ctx, &seen, std::path::Path::new(&store))
}

/// Rule 27's books: nothing refused, reset or lost, every `201` has its
/// row, every row its `201`.
fn check_load(ctx: &mut Ctx<'_>, seen: &[Seen], store: &std::path::Path) -> Result<(), String> {
    let created: HashSet<&String> = seen.iter().flat_map(|s| &s.created).collect();
    let refused: usize = seen.iter().map(|s| s.refused).sum();
    let unanswered: usize = seen.iter().map(|s| s.unanswered).sum();
    let reset: usize = seen.iter().map(|s| s.reset).sum();
    let failed: Vec<&String> = seen.iter().flat_map(|s| &s.failed).collect();
    let lost: Vec<&String> = seen.iter().flat_map(|s| &s.lost).collect();
    ctx.figure("orders-201", created.len());
    ctx.figure("refused", refused);
    ctx.figure("unanswered", unanswered);
    ctx.figure("reset", reset);
    ctx.figure("failed", failed.len());
    ctx.figure(
        "retried-503",
        seen.iter().map(|s| s.retried_503).sum::<usize>(),
    );
    ctx.figure(
        "retried-closed",
        seen.iter().map(|s| s.retried_closed).sum::<usize>(),
    );
    ctx.promote("failed");
    ctx.check(!created.is_empty(), || "no order was created".to_owned());
    ctx.check(refused == 0, || {
        format!("{refused} connects refused during the upgrades")
    });
    ctx.check(unanswered == 0, || {
        format!(
            "{unanswered} connects had no answer within 2 s during the upgrades: \
             the listening socket drops handshakes (a socket filter on the shared socket?)"
        )
    });
    ctx.check(reset == 0, || {
        format!("{reset} connections reset during the upgrades")
    });
    ctx.check(failed.is_empty(), || {
        format!(
            "{} requests failed, e.g. {:?}",
            failed.len(),
            &failed[..failed.len().min(3)]
        )
    });
    ctx.check(lost.is_empty(), || {
        format!(
            "{} orders stored but answered 503 or not at all: {lost:?}",
            lost.len()
        )
    });
    let rows = stored_ids(store)?;
    let missing: Vec<&&String> = created.iter().filter(|id| !rows.contains(**id)).collect();
    ctx.check(missing.is_empty(), || {
        format!(
            "{} orders answered 201 have no row, e.g. {:?}",
            missing.len(),
            missing.first()
        )
    });
    let unanswered: Vec<&String> = rows.iter().filter(|id| !created.contains(id)).collect();
    ctx.check(unanswered.is_empty(), || {
        format!(
            "{} rows never had their 201, e.g. {:?}",
            unanswered.len(),
            unanswered.first()
        )
    });
    Ok(())
}

/// Checks the lines of a process that never handed over, once it exited,
/// without its upgrade lines, against the version 1 grammar.
fn check_rest(ctx: &mut Ctx<'_>, run: &Running, exit_code: Option<i32>) {
    if !run.process.wait_stdout_end(Duration::from_secs(3)) {
        ctx.fail("standard output stayed open after the exit (a new process lives on)");
    }
    let lines: Vec<String> = run.process.lines().into_iter().map(|l| l.text).collect();
    let rest: Vec<&str> = lines
        .iter()
        .map(String::as_str)
        .filter(|l| upgrade_line(l).is_none())
        .collect();
    let (_, problems) = check_grammar(&rest, exit_code);
    for problem in problems {
        ctx.fail(problem);
    }
}

/// Rule 25: a new process that exits before `listening` leaves the old one
/// serving; a later `SIGHUP` tries again.
pub(crate) fn upgrade_child_fails(ctx: &mut Ctx<'_>) -> Result<(), String> {
    let mut run = ctx.start(&["--upgrade-child-fails"])?;
    let pid = run.process.pid();
    let mut from = 0;
    for attempt in 1..=2 {
        send(pid, Nix::SIGHUP)?;
        let (u, _) = run
            .process
            .wait_line_from(from, Duration::from_secs(5), |l| l == "upgrading")
            .ok_or_else(|| {
                format!("attempt {attempt}: no `upgrading` line within 5 s of SIGHUP")
            })?;
        let (f, line) = run
            .process
            .wait_line_from(u + 1, READY_BOUND, |l| {
                upgrade_line(l).is_some() || l.starts_with("exit ")
            })
            .ok_or_else(|| format!("attempt {attempt}: no `upgrade-failed` line"))?;
        match upgrade_line(&line.text) {
            Some(Upgrade::Failed(reason)) => {
                ctx.figure(&format!("reason-{attempt}"), &reason);
                ctx.check(reason == "exited", || {
                    format!("`upgrade-failed {reason}`, expected `upgrade-failed exited`")
                });
            }
            _ => {
                return Err(format!(
                    "attempt {attempt}: `{}` instead of `upgrade-failed exited`",
                    line.text
                ));
            }
        }
        let between = texts(&run.process, u + 1, f);
        ctx.check(between.is_empty(), || {
            format!(
                "attempt {attempt}: lines between `upgrading` and `upgrade-failed`: {between:?}"
            )
        });
        from = f + 1;
        // The old process serves on as before.
        expect_response(
            ctx,
            "/health/ready after the failed upgrade",
            &run.get("/health/ready"),
            200,
            Some("ready"),
        );
        expect_response(
            ctx,
            "/sleep after the failed upgrade",
            &run.get("/sleep?ms=10"),
            200,
            Some("slept 10"),
        );
        ctx.check(run.process.try_exit().is_none(), || {
            "the old process exited".to_owned()
        });
    }
    run.signal(crate::process::Signal::Term)?;
    let exit = run
        .process
        .wait_exit(PATIENCE)
        .ok_or("no exit within 3 s of SIGTERM")?;
    ctx.check(exit.code() == Some(0), || {
        format!("exit {}, expected 0", exit.describe())
    });
    check_rest(ctx, &run, exit.code());
    Ok(())
}

/// Rule 26: a `SIGHUP` during an upgrade is ignored (one new process, one
/// hand-over), and so is a `SIGHUP` after the first `SIGTERM`.
pub(crate) fn sighup_ignored(ctx: &mut Ctx<'_>) -> Result<(), String> {
    // During an upgrade: a second SIGHUP right after `upgrading`.
    let run = ctx.start(&[])?;
    let pid = run.process.pid();
    send(pid, Nix::SIGHUP)?;
    run.process
        .wait_line_from(0, Duration::from_secs(5), |l| l == "upgrading")
        .ok_or("no `upgrading` line within 5 s of SIGHUP")?;
    send(pid, Nix::SIGHUP)?;
    let handed = upgrade_after(ctx, &run.process)?;
    thread::sleep(Duration::from_millis(300));
    let lines: Vec<String> = run.process.lines().into_iter().map(|l| l.text).collect();
    let upgrading = lines.iter().filter(|l| *l == "upgrading").count();
    let listening = lines.iter().filter(|l| l.starts_with("listening ")).count();
    ctx.check(upgrading == 1 && listening == 2, || {
        format!("the second SIGHUP was not ignored: {lines:?}")
    });
    send(handed, Nix::SIGTERM)?;
    if !run.process.wait_stdout_end(Duration::from_secs(5)) {
        ctx.fail("the new process did not exit on SIGTERM");
    }
    drop(run);

    // After the first SIGTERM: ignored, the drain goes on.
    let mut run = ctx.start(&[])?;
    let addr = run.addr;
    let inflight =
        thread::spawn(move || http::request(addr, &Request::get("/sleep?ms=600"), REQUEST_TIMEOUT));
    thread::sleep(Duration::from_millis(150));
    run.signal(crate::process::Signal::Term)?;
    run.wait_event("closed", Duration::from_secs(2))?;
    let pid = run.process.pid();
    send(pid, Nix::SIGHUP)?;
    let answer = inflight.join().map_err(|_| "the client panicked")?;
    expect_response(
        ctx,
        "the request in flight",
        &answer,
        200,
        Some("slept 600"),
    );
    let exit = run
        .process
        .wait_exit(PATIENCE)
        .ok_or("no exit within 3 s")?;
    ctx.check(exit.code() == Some(0), || {
        format!(
            "SIGHUP during the drain: {}, expected exit 0",
            exit.describe()
        )
    });
    let lines: Vec<String> = run.process.lines().into_iter().map(|l| l.text).collect();
    ctx.check(!lines.iter().any(|l| l == "upgrading"), || {
        format!("an upgrade started after SIGTERM: {lines:?}")
    });
    check_rest(ctx, &run, exit.code());
    Ok(())
}

/// Follows an upgrade already begun to its `upgrade PID`; the new pid.
fn upgrade_after(ctx: &mut Ctx<'_>, process: &Process) -> Result<u32, String> {
    let (_, line) = process
        .wait_line_from(0, READY_BOUND, |l| {
            matches!(
                upgrade_line(l),
                Some(Upgrade::HandedOver(_) | Upgrade::Failed(_))
            )
        })
        .ok_or("no `upgrade PID` line after `upgrading`")?;
    match upgrade_line(&line.text) {
        Some(Upgrade::HandedOver(pid)) => Ok(pid),
        _ => {
            ctx.fail(format!("the upgrade failed: `{}`", line.text));
            Err(format!("`{}`", line.text))
        }
    }
}

/// The new process being started by `parent`: a child of one of its
/// threads (`/proc/PARENT/task/*/children`) that has run its own
/// executable, within `timeout`. Until the exec, a forked child holds a
/// copy of every descriptor of its parent; the exec closes the
/// close-on-exec ones (a runtime's reactor, its wake-up pipes), so the
/// child then holds fewer. The kit must not hold a child before its exec:
/// the parent's spawn waits for the exec.
///
/// Fewer descriptors alone is not proof: between fork and exec the child
/// may be moving descriptors into place (`dup2` closes the one it
/// replaces), and was seen with one fewer than its parent there. So the
/// stack must have moved too: a forked child has its parent's until the
/// exec maps a new one, at a random address (unless the kernel's address
/// randomisation is off: then descriptors are all there is to go by).
fn child_of(parent: u32, timeout: Duration) -> Option<u32> {
    let deadline = Instant::now() + timeout;
    let fds = |pid: u32| std::fs::read_dir(format!("/proc/{pid}/fd")).map(Iterator::count);
    let randomized = std::fs::read_to_string("/proc/sys/kernel/randomize_va_space")
        .is_ok_and(|v| v.trim() != "0");
    let parent_stack = start_stack(parent);
    while Instant::now() < deadline {
        let tasks = std::fs::read_dir(format!("/proc/{parent}/task")).ok()?;
        for task in tasks.flatten() {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            for pid in children.split_whitespace().filter_map(|p| p.parse().ok()) {
                let execed =
                    !randomized || start_stack(pid).is_some_and(|s| Some(s) != parent_stack);
                if let (Ok(theirs), Ok(ours)) = (fds(pid), fds(parent))
                    && theirs < ours
                    && execed
                {
                    return Some(pid);
                }
            }
        }
        thread::yield_now();
    }
    None
}

/// Where the process's stack starts (`/proc/PID/stat`, field 28).
fn start_stack(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command's closing parenthesis, field 3 comes first.
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(25)?.parse().ok()
}

/// Starts the target, sends `SIGHUP` and stops the new process
/// (`SIGSTOP`) before it comes up; the run and the new process's pid. The
/// kit may lose the race to a fast new process: it tries three times.
fn hold_new_process(ctx: &mut Ctx<'_>) -> Result<(Running, u32), String> {
    let mut why = String::new();
    for _ in 0..3 {
        let mut run = ctx.start(&[])?;
        let pid = run.process.pid();
        send(pid, Nix::SIGHUP)?;
        let Some(new) = child_of(pid, Duration::from_secs(5)) else {
            why = "no new process started within 5 s of SIGHUP".to_owned();
            run.process.kill();
            continue;
        };
        send(new, Nix::SIGSTOP)?;
        // Came up before it was held: the new process's `listening`.
        let up = texts(&run.process, 1, usize::MAX).iter().any(|l| {
            l.starts_with("listening ") || upgrade_line(l).is_some_and(|u| u != Upgrade::Upgrading)
        });
        if up {
            why = "the kit could not hold the new process before it came up".to_owned();
            run.process.kill();
            continue;
        }
        run.process
            .wait_line_from(0, Duration::from_secs(5), |l| l == "upgrading")
            .ok_or("no `upgrading` line within 5 s of SIGHUP")?;
        return Ok((run, new));
    }
    Err(why)
}

/// Rule 26: `SIGTERM` before `upgrade PID` ends the new process and shuts
/// down as in rule 1. The kit holds the new process still (`SIGSTOP`) so
/// that the upgrade is surely under way when `SIGTERM` comes; and rule 25's
/// timeout: a new process that does not come up within 10 s is ended and
/// the old one serves on.
pub(crate) fn sigterm_during_upgrade(ctx: &mut Ctx<'_>) -> Result<(), String> {
    let (mut run, new) = hold_new_process(ctx)?;
    run.signal(crate::process::Signal::Term)?;
    let exit = run
        .process
        .wait_exit(PATIENCE)
        .ok_or("no exit within 3 s of SIGTERM")?;
    ctx.check(exit.code() == Some(0), || {
        format!("exit {}, expected 0", exit.describe())
    });
    let lines = texts(&run.process, 0, usize::MAX);
    ctx.check(lines.iter().any(|l| l == "draining SIGTERM"), || {
        format!("no `draining SIGTERM` line: {lines:?}")
    });
    ctx.check(
        !lines
            .iter()
            .any(|l| matches!(upgrade_line(l), Some(Upgrade::HandedOver(_)))),
        || format!("handed over after SIGTERM: {lines:?}"),
    );
    thread::sleep(Duration::from_millis(200));
    ctx.check(is_gone(new), || {
        format!("the new process {new} outlived the old one")
    });
    check_rest(ctx, &run, exit.code());
    drop(run);

    // Rule 25's timeout: the new process held still past 10 s.
    let (mut run, new) = hold_new_process(ctx)?;
    let started = Instant::now();
    let (_, line) = run
        .process
        .wait_line_from(0, READY_BOUND, |l| {
            matches!(
                upgrade_line(l),
                Some(Upgrade::HandedOver(_) | Upgrade::Failed(_))
            )
        })
        .ok_or("no `upgrade-failed` line within 13 s of a new process that never came up")?;
    ctx.ms("timeout-ms", started.elapsed().as_secs_f64() * 1000.0);
    ctx.check(line.text == "upgrade-failed timeout", || {
        format!("`{}`, expected `upgrade-failed timeout`", line.text)
    });
    thread::sleep(Duration::from_millis(200));
    ctx.check(is_gone(new), || {
        format!("the new process {new} that timed out is still there")
    });
    expect_response(
        ctx,
        "/health/ready after the timeout",
        &run.get("/health/ready"),
        200,
        Some("ready"),
    );
    run.signal(crate::process::Signal::Term)?;
    let exit = run
        .process
        .wait_exit(PATIENCE)
        .ok_or("no exit within 3 s of SIGTERM")?;
    ctx.check(exit.code() == Some(0), || {
        format!("exit {}, expected 0", exit.describe())
    });
    check_rest(ctx, &run, exit.code());
    Ok(())
}

/// Whether the process `pid` is gone (or a zombie nobody reaped yet).
fn is_gone(pid: u32) -> bool {
    !std::path::Path::new(&format!("/proc/{pid}")).exists() || is_zombie(pid)
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next().map(|s| s == "Z"))
        })
        .unwrap_or(true)
}
