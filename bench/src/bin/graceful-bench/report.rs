//! The results of a run, as the markdown of `BENCHMARKS.md` (also printed
//! at the end of a run).

use crate::callgrind::Protocol;
use crate::machine::Machine;
use crate::server::{Kind, Spec};
use crate::stats::Summary;
use crate::{callgrind, exit, grpc, guards, h2load, load, rollout, scale, serving, upgrades};
use std::fmt::Write;
use std::time::Duration;

/// The goals the issue sets.
pub(crate) const GUARD_VS_BARE: f64 = 1.5;
pub(crate) const GUARD_VS_TRACKER: f64 = 1.0;
pub(crate) const SERVING_RATIO: f64 = 0.97;
/// Instructions per request with the adapter over the same server without
/// it: at most 3 % more.
pub(crate) const SERVING_INSTRUCTIONS: f64 = 1.03;
pub(crate) const EXIT_AFTER_LAST_MS: f64 = 5.0;
pub(crate) const EXIT_IDLE_MS: f64 = 10.0;
/// Figure 8's goal for ours: the stream ends at `closed`, then the exit.
pub(crate) const EXIT_SSE_MS: f64 = 50.0;

/// How a run was set up.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    pub(crate) quick: bool,
    pub(crate) load: load::Config,
    pub(crate) rounds: usize,
    pub(crate) busy: exit::Config,
    pub(crate) idle: exit::Config,
    pub(crate) scale: scale::Config,
    pub(crate) counts: callgrind::Config,
}

impl Settings {
    pub(crate) fn new(quick: bool) -> Settings {
        let ms = Duration::from_millis;
        Settings {
            quick,
            load: load::Config {
                connections: 64,
                warm_up: if quick { ms(300) } else { ms(500) },
                duration: if quick { ms(1_500) } else { ms(3_000) },
            },
            rounds: if quick { 3 } else { 12 },
            busy: exit::Config {
                repetitions: if quick { 5 } else { 20 },
                in_flight: 4,
                sleep: ms(300),
                signal_after: ms(50),
            },
            idle: exit::Config {
                repetitions: if quick { 5 } else { 20 },
                in_flight: 0,
                sleep: Duration::ZERO,
                signal_after: ms(50),
            },
            scale: scale::Config {
                connections: if quick { 1_000 } else { 10_000 },
                repetitions: if quick { 1 } else { 3 },
            },
            counts: callgrind::Config {
                guard_ops: 100_000,
                requests: if quick { 200 } else { 1_000 },
                connections: 4,
                repeats: if quick { 1 } else { 2 },
            },
        }
    }
}

/// Figure 11's runs, one per protocol, each with its configuration; or why
/// none ran.
pub(crate) type TlsFigures = Result<Vec<(h2load::Config, Result<h2load::Figure, String>)>, String>;

/// The time each part of a run took: a part runs from its [`mark`] to the
/// next mark (or [`end`]), so that what comes between two figures counts
/// for the one before.
///
/// [`mark`]: Laps::mark
/// [`end`]: Laps::end
#[derive(Debug, Default)]
pub(crate) struct Laps {
    current: Option<(&'static str, std::time::Instant)>,
    spans: Vec<(&'static str, Duration)>,
}

impl Laps {
    pub(crate) fn new() -> Laps {
        Laps::default()
    }

    /// Ends the current part, if any, and starts `what`.
    pub(crate) fn mark(&mut self, what: &'static str) {
        self.end();
        self.current = Some((what, std::time::Instant::now()));
    }

    /// Ends the current part.
    pub(crate) fn end(&mut self) {
        if let Some((what, since)) = self.current.take() {
            self.spans.push((what, since.elapsed()));
        }
    }

    pub(crate) fn into_spans(self) -> Vec<(&'static str, Duration)> {
        self.spans
    }
}

/// Everything a run found.
#[derive(Debug, Clone)]
pub(crate) struct Results {
    pub(crate) settings: Settings,
    pub(crate) date: String,
    pub(crate) machine: Machine,
    pub(crate) load_before: String,
    pub(crate) load_after: String,
    pub(crate) took: Duration,
    /// How long each part of the run took, in the order they ran.
    pub(crate) laps: Vec<(&'static str, Duration)>,
    /// Every server of the run: ours, the peers, the baselines.
    pub(crate) servers: Vec<Spec>,
    /// Where the targets came from, and which are missing.
    pub(crate) targets: Vec<String>,
    pub(crate) guards: Option<Result<Vec<guards::Row>, String>>,
    pub(crate) guard_counts: Option<Result<Vec<callgrind::GuardCount>, String>>,
    pub(crate) serving: Option<Vec<serving::Row>>,
    pub(crate) serving_counts: Option<Result<Vec<callgrind::ServingCount>, String>>,
    pub(crate) busy: Option<Vec<exit::Row>>,
    pub(crate) idle: Option<Vec<exit::Row>>,
    pub(crate) idle_keep_alive: Option<Vec<exit::Row>>,
    pub(crate) scale: Option<Vec<scale::Row>>,
    pub(crate) rollout: Option<Result<rollout::Figure, String>>,
    pub(crate) grpc: Option<Result<grpc::Figure, String>>,
    pub(crate) sse: Option<Vec<exit::Row>>,
    pub(crate) h2load: Option<Result<h2load::Figure, String>>,
    /// Figure 11: h2load over TLS, one figure per protocol.
    pub(crate) tls: Option<TlsFigures>,
    pub(crate) upgrades: Option<upgrades::Figure>,
    /// `bench/NOTES.md`: the profiles' diagnoses, written by hand, copied
    /// at the end of the report.
    pub(crate) notes: Option<String>,
}

impl Results {
    pub(crate) fn kind_of(&self, server: &str) -> Option<Kind> {
        self.servers
            .iter()
            .find(|s| s.name == server)
            .map(|s| s.kind)
    }

    fn is_ours(&self, server: &str) -> bool {
        self.kind_of(server) == Some(Kind::Target)
    }

    /// A baseline with only the adapter added: figure 2's goal rows.
    fn is_minimal(&self, server: &str) -> bool {
        self.kind_of(server) == Some(Kind::Minimal)
    }
}

/// A number of milliseconds, with the precision it deserves.
pub(crate) fn ms(value: f64) -> String {
    if value.is_nan() {
        "-".to_owned()
    } else if value.abs() < 10.0 {
        format!("{value:.2}")
    } else if value.abs() < 100.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.0}")
    }
}

/// `median (min – max)` with `f` for each.
fn spread(s: &Summary, f: impl Fn(f64) -> String) -> String {
    format!("{} ({} – {})", f(s.median), f(s.min), f(s.max))
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "**missed**" }
}

/// "once", "twice", "N times": how many times a count was measured.
fn times(n: usize) -> String {
    match n {
        1 => "once (a quick run; a full run measures twice)".to_owned(),
        2 => "twice".to_owned(),
        n => format!("{n} times"),
    }
}

/// A thousands-separated count, `10 000`.
pub(crate) fn count(n: usize) -> String {
    let digits = n.to_string();
    let (head, rest) = digits.split_at(digits.len() % 3);
    let mut out = head.to_owned();
    for group in rest.as_bytes().chunks(3) {
        if !out.is_empty() {
            out.push('\u{202f}');
        }
        out.extend(group.iter().map(|&b| char::from(b)));
    }
    out
}

/// The whole of `BENCHMARKS.md`; `chart` is the chart's path relative to
/// it, if one was drawn.
pub(crate) fn markdown(results: &Results, chart: Option<&str>) -> String {
    let mut md = String::new();
    let s = &results.settings;
    let m = &results.machine;
    let _ = writeln!(md, "# Benchmarks\n");
    let _ = writeln!(
        md,
        "graceful's shutdown against what a user would pick instead, measured side by side \
         in one run: what it costs while serving, and how soon the process exits once its \
         work is done. Every ratio is against a baseline measured in the same run. \
         Generated by `cargo xtask bench{}`.\n",
        if s.quick { " --quick" } else { "" }
    );
    if let Some(chart) = chart {
        let _ = writeln!(md, "![The figures at a glance]({chart})\n");
    }
    let _ = writeln!(
        md,
        "- **When**: {}, a {} run, which took {:.1} min with its builds.",
        results.date,
        if s.quick {
            "quick (`--quick`: shorter rounds, fewer repetitions, 1 000 requests in flight at scale instead of 10 000)"
        } else {
            "full"
        },
        results.took.as_secs_f64() / 60.0
    );
    if !results.laps.is_empty() {
        let laps: Vec<String> = results
            .laps
            .iter()
            .map(|(what, took)| format!("{what} {:.0} s", took.as_secs_f64()))
            .collect();
        let _ = writeln!(md, "- **Where the time went**: {}.", laps.join(", "));
    }
    let _ = writeln!(
        md,
        "- **Machine**: {} cores ({}), {} of memory, {}; load average {} before the run, {} after.",
        m.cores, m.cpu, m.memory, m.kernel, results.load_before, results.load_after
    );
    let _ = writeln!(md, "- **Toolchain**: {}, release profile.", m.rustc);
    for line in &results.targets {
        let _ = writeln!(md, "- **Targets**: {line}");
    }
    let _ = writeln!(md, "\nTo rerun (from the workspace root):\n");
    let _ = writeln!(md, "```sh");
    let _ = writeln!(
        md,
        "cargo xtask bench           # the full run: writes BENCHMARKS.md and BENCHMARKS.svg"
    );
    let _ = writeln!(md, "cargo xtask bench --quick   # a few minutes");
    let _ = writeln!(
        md,
        "# the same without xtask; --figures 1,3 runs some figures only:"
    );
    let _ = writeln!(
        md,
        "cargo run --release -p graceful-bench --bin graceful-bench -- [--quick] [--figures 1,2,3,4,5,6,7,8,9,10,11]"
    );
    let _ = writeln!(md, "{}   # figure 1 alone", guards::command(s.quick));
    let _ = writeln!(md, "```\n");

    goals(&mut md, results);
    servers(&mut md, results);
    figure_guards(&mut md, results);
    figure_serving(&mut md, results);
    figure_exit(&mut md, results);
    figure_idle(&mut md, results);
    figure_scale(&mut md, results);
    figure_rollout(&mut md, results);
    figure_grpc(&mut md, results);
    figure_sse(&mut md, results);
    figure_h2load(&mut md, results);
    figure_upgrades(&mut md, results);
    figure_tls(&mut md, results);
    if let Some(notes) = &results.notes {
        let _ = writeln!(md, "{}", notes.trim_end());
    }
    md
}

fn goals(md: &mut String, r: &Results) {
    let _ = writeln!(md, "## Goals\n");
    let _ = writeln!(md, "| figure | goal | measured (median) | |");
    let _ = writeln!(md, "| --- | --- | --- | --- |");
    guard_goals(md, r);
    serving_goals(md, r);
    for (figure, what, bound, rows) in [
        (
            "3. exit after the last response",
            "",
            EXIT_AFTER_LAST_MS,
            &r.busy,
        ),
        ("4. idle exit", ", no connection", EXIT_IDLE_MS, &r.idle),
        (
            "4. idle exit",
            ", an idle keep-alive connection",
            EXIT_IDLE_MS,
            &r.idle_keep_alive,
        ),
    ] {
        for row in rows.iter().flatten().filter(|row| r.is_ours(&row.server)) {
            let measured = Summary::of(&row.latencies).map(|l| {
                (
                    format!("{} ms", ms(l.median)),
                    l.median <= bound && row.failures.is_empty(),
                )
            });
            goal_line(
                md,
                figure,
                &format!("{}{what}: ≤ {bound} ms", row.server),
                measured,
            );
        }
    }
    for row in r
        .scale
        .iter()
        .flatten()
        .filter(|row| r.is_ours(&row.server))
    {
        let n = r.settings.scale.connections;
        let complete = row.samples.iter().filter(|s| s.ok == n).count();
        let measured = (!row.samples.is_empty() || !row.failures.is_empty()).then(|| {
            (
                format!(
                    "{complete} of {} runs with all {} in flight answered 200",
                    row.samples.len() + row.failures.len(),
                    count(n)
                ),
                row.failures.is_empty() && complete == row.samples.len(),
            )
        });
        goal_line(
            md,
            "5. scale",
            &format!(
                "{}: every one of {} requests in flight completes",
                row.server,
                count(n)
            ),
            measured,
        );
        scale_goals(md, r, row);
    }
    rollout_goals(md, r);
    grpc_goals(md, r);
    for row in r.sse.iter().flatten().filter(|row| r.is_ours(&row.server)) {
        let measured = Summary::of(&row.latencies).map(|l| {
            (
                format!("{} ms", ms(l.median)),
                l.median <= EXIT_SSE_MS && row.failures.is_empty(),
            )
        });
        goal_line(
            md,
            "8. exit with a stream open",
            &format!(
                "{}, one server-sent events stream open: ≤ {EXIT_SSE_MS} ms",
                row.server
            ),
            measured,
        );
    }
    h2load_goals(md, r);
    upgrade_goals(md, r);
    let _ = writeln!(md);
}

/// Figure 9's row for each of our targets: informational, as the wall
/// clock on a shared machine is too noisy for a goal (figure 2's
/// instruction counts hold the serving goal); ≥ [`SERVING_RATIO`]× the
/// baseline's rate is what figure 2 asked of the wall clock.
fn h2load_goals(md: &mut String, r: &Results) {
    let Some(figure) = &r.h2load else { return };
    let what = |server: &str, baseline: &str| {
        format!(
            "{server}, HTTP/2 (h2c) under h2load: ≥ {SERVING_RATIO}× {baseline}'s req/s \
             (informational: wall clock, noisy)"
        )
    };
    let rows: Vec<&h2load::Row> = match figure {
        Ok(figure) => figure
            .rows
            .iter()
            .filter(|row| r.is_ours(&row.server))
            .collect(),
        Err(_) => Vec::new(),
    };
    if rows.is_empty() {
        goal_line(md, "9. HTTP/2", &what("every target", "the baseline"), None);
    }
    for row in rows {
        let measured = if row.no_h2 {
            Some(("no HTTP/2 (no answer over h2c)".to_owned(), false))
        } else {
            Summary::of(&row.ratios).map(|ratio| {
                (
                    format!(
                        "{:.3}× {} ({} failed, {} errored)",
                        ratio.median, row.baseline, row.failed, row.errored
                    ),
                    ratio.median >= SERVING_RATIO && row.failed == 0 && row.failures.is_empty(),
                )
            })
        };
        goal_line(md, "9. HTTP/2", &what(&row.server, &row.baseline), measured);
    }
}

/// Figure 10's goal for each of our targets: every upgrade hands over, and
/// no request fails; the same target's stop-then-start restarts must show
/// failures, or the count would be blind and the goal is not met either.
fn upgrade_goals(md: &mut String, r: &Results) {
    let Some(figure) = &r.upgrades else { return };
    let n = figure.config.restarts;
    let ours = figure
        .rows
        .iter()
        .filter(|row| row.how == upgrades::How::Upgrade && r.is_ours(&row.server));
    let mut any = false;
    for row in ours {
        any = true;
        let control = figure
            .rows
            .iter()
            .find(|c| c.server == row.server && c.how == upgrades::How::StopThenStart);
        let control_failed = control.map_or(0, upgrades::Row::failed);
        goal_line(
            md,
            "10. upgrades",
            &format!(
                "{}: {n} SIGHUP upgrades under load, 0 failed requests",
                row.server
            ),
            Some((
                format!(
                    "{} of {n} upgrades, {} failed of {}; {n} stop-then-start restarts: {} failed",
                    row.done,
                    row.failed(),
                    count(row.requests() as usize),
                    control_failed
                ),
                row.done == n && row.failed() == 0 && row.failures.is_empty() && control_failed > 0,
            )),
        );
    }
    if !any {
        goal_line(
            md,
            "10. upgrades",
            &format!("every target: {n} SIGHUP upgrades under load, 0 failed requests"),
            None,
        );
    }
}

/// Figure 7's goal for ours: exits within the idle bound with idle gRPC
/// clients connected, a PING-less one among them or not.
fn grpc_goals(md: &mut String, r: &Results) {
    let Some(figure) = &r.grpc else { return };
    let rows: Vec<&grpc::ExitRow> = match figure {
        Ok(figure) => figure
            .exits
            .iter()
            .filter(|row| r.is_ours(&row.server))
            .collect(),
        Err(_) => Vec::new(),
    };
    if rows.is_empty() {
        goal_line(
            md,
            "7. gRPC",
            "graceful-tokio: SIGTERM to exit with idle gRPC clients",
            None,
        );
    }
    for row in rows {
        let measured = Summary::of(&row.latencies).map(|l| {
            (
                format!("{} ms", ms(l.median)),
                l.median <= EXIT_IDLE_MS && row.stuck == 0 && row.failures.is_empty(),
            )
        });
        goal_line(
            md,
            "7. gRPC",
            &format!(
                "{}, SIGTERM to exit with idle gRPC clients{}: ≤ {EXIT_IDLE_MS} ms",
                row.server,
                if row.ping_less {
                    " and a PING-less one"
                } else {
                    ""
                }
            ),
            measured,
        );
    }
}

/// Figure 6's goal for each of our targets behind each balancer: no failed
/// request and no lost work.
fn rollout_goals(md: &mut String, r: &Results) {
    let Some(figure) = &r.rollout else { return };
    let rows = match figure {
        Ok(figure) => figure.rows.iter().filter(|row| row.ours).collect(),
        Err(_) => Vec::new(),
    };
    if rows.is_empty() {
        goal_line(
            md,
            "6. rolling restart",
            "every target: 0 failed, 0 lost",
            None,
        );
    }
    for row in rows {
        let clean = row.exits.iter().all(|e| e == "code 0");
        let lost = row.lost.unwrap_or(0) + row.unanswered.unwrap_or(0);
        goal_line(
            md,
            "6. rolling restart",
            &format!(
                "{} behind {}: 0 failed requests, 0 lost work, exits 0",
                row.server, row.balancer
            ),
            Some((
                format!(
                    "{} failed of {}, {lost} lost, {}",
                    row.failed(),
                    count(row.requests as usize),
                    if clean { "exits 0" } else { "an unclean exit" }
                ),
                row.failed() == 0 && lost == 0 && clean,
            )),
        );
    }
}

/// `variant`'s ratios to bare and to `TaskTracker::token` in `of`.
fn guard_ratios(of: impl Fn(&str) -> Option<f64>, variant: &str) -> Option<(f64, f64)> {
    let v = of(variant)?;
    Some((v / of("bare")?, v / of("task-tracker")?))
}

fn guard_goals(md: &mut String, r: &Results) {
    let counts = match &r.guard_counts {
        Some(Ok(rows)) => Some(rows.as_slice()),
        _ => None,
    };
    let wall = match &r.guards {
        Some(Ok(rows)) => Some(rows.as_slice()),
        _ => None,
    };
    if counts.is_none() && wall.is_none() {
        return;
    }
    let met = |(bare, tracker): (f64, f64)| bare <= GUARD_VS_BARE && tracker <= GUARD_VS_TRACKER;
    for threads in [1, 2] {
        for (variant, call) in [("guard", "enter"), ("owned-guard", "enter_owned")] {
            let counted = counts.and_then(|rows| {
                guard_ratios(|v| callgrind::guard_count(rows, threads, v), variant)
            });
            let timed =
                wall.and_then(|rows| guard_ratios(|v| guards::median(rows, threads, v), variant));
            let measured = match (counted, timed) {
                (Some(c), timed) => Some((
                    format!(
                        "{:.2}× bare, {:.2}× TaskTracker in instructions{}",
                        c.0,
                        c.1,
                        timed.map_or(String::new(), |t| format!(
                            "; wall clock (noisy): {:.2}×, {:.2}×",
                            t.0, t.1
                        ))
                    ),
                    met(c),
                )),
                (None, Some(t)) => Some((
                    format!(
                        "wall clock only (noisy): {:.2}× bare, {:.2}× TaskTracker",
                        t.0, t.1
                    ),
                    met(t),
                )),
                (None, None) => None,
            };
            goal_line(
                md,
                "1. guard cost",
                &format!(
                    "`Shutdown::{call}`, {threads} thread{}: ≤ {GUARD_VS_BARE}× bare `Arc<AtomicUsize>`, ≤ {GUARD_VS_TRACKER}× `TaskTracker::token`",
                    if threads == 1 { "" } else { "s" },
                ),
                measured,
            );
        }
    }
}

fn serving_goals(md: &mut String, r: &Results) {
    let wall = |server: &str| {
        r.serving
            .iter()
            .flatten()
            .find(|row| row.server == server)
            .and_then(|row| Some((row.ratio()?.median, row.cpu_ratio().map(|c| c.median))))
    };
    let wall_text = |(rps, cpu): (f64, Option<f64>)| {
        format!(
            "req/s {rps:.3}×{}",
            cpu.map_or(String::new(), |c| format!(
                ", server CPU per request {c:.3}×"
            ))
        )
    };
    // The goal is judged on the baselines with only the adapter added: a
    // target's routes, store and event lines are not shutdown code (its
    // rows are in the figure, not here).
    // One goal per adapter and protocol; the wall clock (HTTP/1.1 only)
    // beside the HTTP/1.1 count.
    let mut ours: Vec<(&str, &str, Protocol)> = Vec::new();
    for row in r
        .serving
        .iter()
        .flatten()
        .filter(|row| row.kind == Kind::Minimal)
    {
        ours.push((&row.server, &row.baseline, Protocol::Http1));
    }
    if let Some(Ok(counts)) = &r.serving_counts {
        for row in counts.iter().filter(|row| r.is_minimal(&row.server)) {
            if !ours
                .iter()
                .any(|(s, _, p)| *s == row.server && *p == row.protocol)
            {
                ours.push((&row.server, &row.baseline, row.protocol));
            }
        }
    }
    // Grouped by adapter, HTTP/1.1 first (a stable sort keeps that order).
    ours.sort_by_key(|(server, _, _)| *server);
    let percent = (SERVING_INSTRUCTIONS - 1.0) * 100.0;
    for (server, baseline, protocol) in ours {
        let counted = match &r.serving_counts {
            Some(Ok(counts)) => counts
                .iter()
                .find(|row| row.server == server && row.protocol == protocol),
            _ => None,
        };
        let timed = if protocol == Protocol::Http1 {
            wall(server)
        } else {
            None
        };
        let measured = match (counted.and_then(|c| Some((c.ratio()?, c.value()?))), timed) {
            (Some((ratio, per_request)), timed) => Some((
                format!(
                    "{ratio:.3}× {baseline} in instructions per request ({per_request:.0}){}",
                    timed.map_or(String::new(), |t| format!(
                        "; wall clock (noisy): {}",
                        wall_text(t)
                    ))
                ),
                ratio <= SERVING_INSTRUCTIONS,
            )),
            (None, Some(t)) => Some((
                format!("wall clock only (noisy): {} {baseline}", wall_text(t)),
                t.0 >= SERVING_RATIO,
            )),
            (None, None) => None,
        };
        goal_line(
            md,
            "2. serving",
            &format!(
                "{server}, {}: ≤ {percent:.0} % more instructions per request than the same server without it",
                protocol.label()
            ),
            measured,
        );
    }
}

fn goal_line(md: &mut String, figure: &str, goal: &str, measured: Option<(String, bool)>) {
    let (text, mark) = match measured {
        Some((text, met)) => (text, verdict(met)),
        None => ("no figure".to_owned(), "**missed**"),
    };
    let _ = writeln!(md, "| {figure} | {goal} | {text} | {mark} |");
}

fn servers(md: &mut String, r: &Results) {
    let _ = writeln!(md, "## The servers\n");
    let _ = writeln!(md, "| server | | runtime | what it is |");
    let _ = writeln!(md, "| --- | --- | --- | --- |");
    for spec in &r.servers {
        let kind = match spec.kind {
            Kind::Target => "ours (conformance target)",
            Kind::Minimal => "ours (baseline + adapter)",
            Kind::Peer => "peer",
            Kind::Plain => "baseline",
        };
        let _ = writeln!(
            md,
            "| {} | {kind} | {} | {} |",
            spec.name, spec.runtime, spec.about
        );
    }
    let _ = writeln!(
        md,
        "\nThe peers are written the way each crate's documentation teaches, not improved; \
         their sources are in `bench/src/bin/`. Every server listens on 127.0.0.1.\n"
    );
    let _ = writeln!(
        md,
        "Versions, as the workspace's `Cargo.lock` resolved them for this build: {}.\n",
        versions(LOCKFILE, PEER_CRATES)
    );
}

/// The lockfile the bench was built with (the workspace's).
const LOCKFILE: &str = include_str!("../../../../Cargo.lock");

/// The crates whose versions the servers' table names: the peers' and the
/// baselines' own, and the guard variants' of figure 1.
const PEER_CRATES: &[&str] = &[
    "axum",
    "tokio-graceful-shutdown",
    "actix-web",
    "actix-http",
    "tonic",
    "hyper",
    "tokio",
    "smol",
    "tokio-util",
    "tokio-graceful",
];

/// `name version` for each of `crates` in `lockfile` (every version it
/// holds, in its order), joined by commas; `name (not in the lockfile)`
/// for one it does not hold.
fn versions(lockfile: &str, crates: &[&str]) -> String {
    let mut found: Vec<(&str, Vec<&str>)> = crates.iter().map(|c| (*c, Vec::new())).collect();
    let mut name = None;
    for line in lockfile.lines() {
        if let Some(n) = line.strip_prefix("name = \"") {
            name = n.strip_suffix('"');
        } else if let Some(v) = line.strip_prefix("version = \"")
            && let (Some(n), Some(v)) = (name.take(), v.strip_suffix('"'))
            && let Some((_, vs)) = found.iter_mut().find(|(c, _)| *c == n)
        {
            vs.push(v);
        }
    }
    found
        .iter()
        .map(|(c, vs)| {
            if vs.is_empty() {
                format!("{c} (not in the lockfile)")
            } else {
                format!("{c} {}", vs.join(" and "))
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn figure_guards(md: &mut String, r: &Results) {
    if r.guards.is_none() && r.guard_counts.is_none() {
        return;
    }
    let _ = writeln!(md, "## 1. Guard cost\n");
    let _ = writeln!(
        md,
        "Entering and leaving one in-flight guard, against a bare `Arc<AtomicUsize>` increment \
         and decrement, tokio-util's `TaskTracker::token()` and tokio-graceful's \
         `Shutdown::guard()`, each in a loop of its own (`bench/src/guard.rs`, shared by both \
         measurements below).\n"
    );
    guard_counts(md, r);
    let Some(guards) = &r.guards else { return };
    let _ = writeln!(md, "### Wall clock (noisy)\n");
    let _ = writeln!(
        md,
        "In nanoseconds. With 2 threads, both enter and leave on the same \
         shared state at once (the slower thread's time counts). Measured with criterion \
         (`{}`); median, min and max over its samples, each the mean of many iterations. On a \
         shared machine these move by tens of percent from run to run; the instruction counts \
         above decide the goals.\n",
        guards::command(r.settings.quick)
    );
    let rows = match guards {
        Ok(rows) => rows,
        Err(error) => {
            let _ = writeln!(md, "Not measured: {error}\n");
            return;
        }
    };
    let _ = writeln!(
        md,
        "| threads | variant | median ns | min | max | × bare | × TaskTracker |"
    );
    let _ = writeln!(md, "| ---: | --- | ---: | ---: | ---: | ---: | ---: |");
    for row in rows {
        let ratio = |base: Option<f64>| {
            base.map_or("-".to_owned(), |b| format!("{:.2}×", row.ns.median / b))
        };
        let _ = writeln!(
            md,
            "| {} | {} | {:.2} | {:.2} | {:.2} | {} | {} |",
            row.threads,
            guard_label(&row.variant),
            row.ns.median,
            row.ns.min,
            row.ns.max,
            ratio(guards::median(rows, row.threads, "bare")),
            ratio(guards::median(rows, row.threads, "task-tracker")),
        );
    }
    let _ = writeln!(md);
}

/// The repeats of a count, `a, b`, and how far apart they are (`-` for a
/// count measured once: there is nothing to be apart from).
fn repeats(values: &[f64], digits: usize) -> (String, String) {
    let shown = values
        .iter()
        .map(|v| format!("{v:.digits$}"))
        .collect::<Vec<_>>()
        .join(", ");
    let spread = callgrind::spread(values)
        .filter(|_| values.len() > 1)
        .map_or("-".to_owned(), |d| format!("{:.3} %", d * 100.0));
    (shown, spread)
}

fn guard_counts(md: &mut String, r: &Results) {
    let Some(counts) = &r.guard_counts else {
        return;
    };
    let c = &r.settings.counts;
    let _ = writeln!(md, "### Instructions (these decide the goals)\n");
    let _ = writeln!(
        md,
        "Instructions executed per iteration (the loop and one enter+leave), counted by \
         `valgrind --tool=callgrind` running `guard-ops VARIANT THREADS N` (this crate's \
         binary) with N = {} and N = {} on each thread: the difference of the two totals over \
         the extra iterations, which cancels start-up, thread creation and exit. Measured \
         {}; each count is shown, and how far apart they are. valgrind runs one \
         thread at a time, so the 2-thread counts include the compare-and-swap retries that \
         a switch between threads causes, but not what contention costs in time (a cache \
         line moving between cores): that shows in the wall clock only. A locked \
         read-modify-write counts as one instruction, however long it takes.\n",
        c.guard_ops,
        2 * c.guard_ops,
        times(c.repeats)
    );
    let rows = match counts {
        Ok(rows) => rows,
        Err(error) => {
            let _ = writeln!(md, "Not measured: {error}\n");
            return;
        }
    };
    let _ = writeln!(
        md,
        "| threads | variant | instructions per iteration | repeats | apart | × bare | × TaskTracker |"
    );
    let _ = writeln!(md, "| ---: | --- | ---: | --- | ---: | ---: | ---: |");
    for row in rows {
        let Some(value) = row.value() else { continue };
        let ratio = |base: &str| {
            callgrind::guard_count(rows, row.threads, base)
                .filter(|_| row.variant != "loop")
                .map_or("-".to_owned(), |b| format!("{:.2}×", value / b))
        };
        let (shown, apart) = repeats(&row.per_op, 2);
        let _ = writeln!(
            md,
            "| {} | {} | {value:.2} | {shown} | {apart} | {} | {} |",
            row.threads,
            guard_label(row.variant),
            ratio("bare"),
            ratio("task-tracker"),
        );
    }
    let _ = writeln!(md);
}

/// What a guard variant is, for a reader.
pub(crate) fn guard_label(variant: &str) -> &str {
    match variant {
        "bare" => "bare `Arc<AtomicUsize>`",
        "guard" => "graceful `Shutdown::enter`",
        "owned-guard" => "graceful `Shutdown::enter_owned`",
        "task-tracker" => "tokio-util `TaskTracker::token`",
        "loop" => "the loop alone",
        "tokio-graceful" => "tokio-graceful `Shutdown::guard`",
        other => other,
    }
}

fn serving_counts(md: &mut String, r: &Results) {
    let Some(counts) = &r.serving_counts else {
        return;
    };
    let c = &r.settings.counts;
    let _ = writeln!(
        md,
        "### Instructions per request (these decide the goals)\n"
    );
    let _ = writeln!(
        md,
        "Each server runs under `valgrind --tool=callgrind`, pinned to one CPU (so that it sizes \
         its runtime to one worker thread; valgrind runs one thread at a time anyway), and \
         serves `GET /health/live` to a client outside valgrind on another CPU: {} keep-alive \
         connections taking turns, one request in flight at a time, then a SIGTERM. Run once \
         with {} requests and once with {}: the difference of the two totals over the {} extra \
         requests is the count of one request, with start-up, the connections' opening and \
         closing, and the shutdown cancelled out. Measured {}; each ratio is against the \
         baseline of the same repeat, and the figure is the mean of the repeats. The profiles \
         of the last repeat are kept in `target/release/callgrind/` for `callgrind_annotate`. \
         Goal: ≤ {SERVING_INSTRUCTIONS}× the baseline for each `-min` server, the baseline \
         with the adapter added as its README teaches and nothing else. The conformance \
         targets are shown too, as extra rows: their routes, store and event lines are not \
         shutdown code, and are not in the baseline. The h2c rows are the same measurement \
         over HTTP/2 with prior knowledge (the `h2` crate's client, the same number of \
         connections, one stream in flight at a time, the connections closed by the client \
         before the SIGTERM), for each baseline and its `-min` server. \
         The `HTTP/1.1 over TLS` rows are the HTTP/1.1 measurement over rustls (ALPN \
         `http/1.1`, one self-signed certificate per run, the servers started with `--tls \
         CERT KEY`; the handshakes are per connection and cancel out), for each baseline \
         and its `-min` server.\n",
        c.connections,
        c.requests,
        2 * c.requests,
        c.requests,
        times(c.repeats),
    );
    let rows = match counts {
        Ok(rows) => rows,
        Err(error) => {
            let _ = writeln!(md, "Not measured: {error}\n");
            return;
        }
    };
    let _ = writeln!(
        md,
        "| server | runtime | protocol | instructions per request | repeats | apart | ratio to baseline | repeats |"
    );
    let _ = writeln!(md, "| --- | --- | --- | ---: | --- | ---: | --- | --- |");
    for row in rows {
        let runtime = r
            .servers
            .iter()
            .find(|spec| spec.name == row.server)
            .map_or("", |spec| spec.runtime);
        let Some(value) = row.value() else {
            let _ = writeln!(
                md,
                "| {} | {runtime} | {} | - | | | not measured: {} | |",
                row.server,
                row.protocol.label(),
                row.failure.as_deref().unwrap_or("no repeat")
            );
            continue;
        };
        let (shown, apart) = repeats(&row.per_request, 0);
        let (ratio, ratios) = if row.server == row.baseline {
            ("baseline".to_owned(), String::new())
        } else {
            (
                row.ratio()
                    .map_or("-".to_owned(), |q| format!("{q:.4}× {}", row.baseline)),
                repeats(&row.ratios, 4).0,
            )
        };
        let _ = writeln!(
            md,
            "| {}{}{} | {runtime} | {} | {value:.0} | {shown} | {apart} | {ratio} | {ratios} |",
            row.server,
            if r.is_ours(&row.server) {
                " (conformance target)"
            } else {
                ""
            },
            if row.failure.is_some() {
                " (failed later)"
            } else {
                ""
            },
            row.protocol.label(),
        );
    }
    let failed: Vec<&callgrind::ServingCount> =
        rows.iter().filter(|r| r.failure.is_some()).collect();
    if !failed.is_empty() {
        let _ = writeln!(md);
        for row in failed {
            let _ = writeln!(
                md,
                "- {} ({}): {}",
                row.server,
                row.protocol.label(),
                row.failure.as_deref().unwrap_or("")
            );
        }
    }
    let _ = writeln!(md);
}

fn figure_serving(md: &mut String, r: &Results) {
    if r.serving.is_none() && r.serving_counts.is_none() {
        return;
    }
    let _ = writeln!(md, "## 2. Serving overhead\n");
    serving_counts(md, r);
    let Some(rows) = &r.serving else { return };
    let s = &r.settings;
    let _ = writeln!(md, "### Wall clock (noisy)\n");
    let placement = if r.machine.cores > 1 {
        format!(
            "The load generator runs on the machine's last CPU and the server on the others \
             ({} here), so that neither takes CPU time from the other and the server's own cost \
             sets the rate; the servers size their runtimes to the CPUs they are given.",
            r.machine.cores - 1
        )
    } else {
        "The load generator and the server share the machine's one CPU.".to_owned()
    };
    let _ = writeln!(
        md,
        "Requests per second of `GET /health/live` over {} keep-alive connections from the \
         bench's load generator (one thread, a request sent as soon as the last response is \
         in), {} rounds of {:.1} s each after {:.1} s of warm-up. In each round every server \
         of a runtime is started afresh and measured in turn (in an order rotated from round \
         to round), and each ratio is taken against the baseline's figure of the same round \
         (median, min – max over the rounds). {placement} The server's CPU time per request (from \
         `/proc/PID/task/*/schedstat` over the same window) is shown beside it (lower is \
         better). Anything else running on the machine still moves both figures, by tens of \
         percent on a shared machine; the rounds share that out, and the instruction counts \
         above decide the goal. Shown for comparison: ≥ {SERVING_RATIO}× the baseline's request \
         rate was the goal on the wall clock.\n",
        s.load.connections,
        s.rounds,
        s.load.duration.as_secs_f64(),
        s.load.warm_up.as_secs_f64(),
    );
    let _ = writeln!(
        md,
        "| server | runtime | req/s median | min | max | req/s ratio to baseline | CPU µs per request | CPU ratio to baseline | non-200 | failed connections |"
    );
    let _ = writeln!(
        md,
        "| --- | --- | ---: | ---: | ---: | --- | ---: | --- | ---: | ---: |"
    );
    for row in rows {
        let runtime = r
            .servers
            .iter()
            .find(|spec| spec.name == row.server)
            .map_or("", |spec| spec.runtime);
        let Some(rps) = row.rps() else {
            let _ = writeln!(
                md,
                "| {} | {runtime} | - | - | - | not measured: {} | | | | |",
                row.server,
                row.failure.as_deref().unwrap_or("no round")
            );
            continue;
        };
        let three = |v: f64| format!("{v:.3}");
        let (ratio, cpu_ratio) = if row.server == row.baseline {
            ("baseline".to_owned(), "baseline".to_owned())
        } else {
            (
                row.ratio().map_or("-".to_owned(), |q| {
                    format!("{} × {}", spread(&q, three), row.baseline)
                }),
                row.cpu_ratio()
                    .map_or("-".to_owned(), |q| spread(&q, three)),
            )
        };
        let cpu = row
            .cpu_us()
            .map_or("-".to_owned(), |c| format!("{:.2}", c.median));
        let _ = writeln!(
            md,
            "| {}{} | {runtime} | {:.0} | {:.0} | {:.0} | {ratio} | {cpu} | {cpu_ratio} | {} | {} |",
            row.server,
            if row.failure.is_some() {
                " (failed later)"
            } else {
                ""
            },
            rps.median,
            rps.min,
            rps.max,
            row.other,
            row.errors
        );
    }
    let failed: Vec<&serving::Row> = rows.iter().filter(|r| r.failure.is_some()).collect();
    if !failed.is_empty() {
        let _ = writeln!(md);
        for row in failed {
            let _ = writeln!(
                md,
                "- {}: {}",
                row.server,
                row.failure.as_deref().unwrap_or("")
            );
        }
    }
    let _ = writeln!(md);
}

fn figure_exit(md: &mut String, r: &Results) {
    let Some(rows) = &r.busy else { return };
    let c = &r.settings.busy;
    let _ = writeln!(md, "## 3. Exit latency after the last response\n");
    let _ = writeln!(
        md,
        "{} requests `GET /sleep?ms={}` on their own connections, a SIGTERM {} ms after they \
         are sent; the time from the instant the client has read the last whole response \
         to the instant the process has exited (`wait` returning, in a thread blocked on \
         it). A fresh process for each of {} runs; a run in which any of the requests did \
         not get its whole `200` counts as failed. Both instants are taken in the bench's \
         process, so a value at or just below 0 means the exit was seen before the client's \
         thread had woken to read the response. Goal for ours: ≤ {EXIT_AFTER_LAST_MS} ms \
         median, with no polling (a poll would show as latencies spread over its period).\n",
        c.in_flight,
        c.sleep.as_millis(),
        c.signal_after.as_millis(),
        c.repetitions
    );
    let _ = writeln!(
        md,
        "| server | median ms | min | max | runs | failed | ended with |"
    );
    let _ = writeln!(md, "| --- | ---: | ---: | ---: | ---: | ---: | --- |");
    for row in rows {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} |",
            row.server,
            latency_cells(row),
            row.failures.len(),
            endings(row)
        );
    }
    failures(md, rows.iter().map(|row| (&row.server, &row.failures)));
}

/// `median | min | max | runs` of a row's latencies.
fn latency_cells(row: &exit::Row) -> String {
    match Summary::of(&row.latencies) {
        Some(l) => format!(
            "{} | {} | {} | {}",
            ms(l.median),
            ms(l.min),
            ms(l.max),
            l.count
        ),
        None => "- | - | - | 0".to_owned(),
    }
}

fn endings(row: &exit::Row) -> String {
    row.endings.iter().cloned().collect::<Vec<_>>().join(", ")
}

fn figure_idle(md: &mut String, r: &Results) {
    if r.idle.is_none() && r.idle_keep_alive.is_none() {
        return;
    }
    let c = &r.settings.idle;
    let _ = writeln!(md, "## 4. Idle exit latency\n");
    let _ = writeln!(
        md,
        "Nothing in flight: the time from a SIGTERM to the exit, {} ms after one \
         `GET /health/live` was served. Measured with its connection closed (no connection \
         open at the signal), and with it left open and idle, as a load balancer's pooled \
         keep-alive connection would be. A fresh process for each of {} runs of each. Goal \
         for ours: ≤ {EXIT_IDLE_MS} ms median.\n",
        c.signal_after.as_millis(),
        c.repetitions
    );
    let _ = writeln!(
        md,
        "| server | open at the signal | median ms | min | max | runs | failed | ended with |"
    );
    let _ = writeln!(md, "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |");
    let mut all = Vec::new();
    for (what, rows) in [
        ("nothing", &r.idle),
        ("an idle keep-alive connection", &r.idle_keep_alive),
    ] {
        for row in rows.iter().flatten() {
            all.push((what, row));
        }
    }
    // Each server's two lines together.
    let order: Vec<&String> = r.servers.iter().map(|s| &s.name).collect();
    all.sort_by_key(|(_, row)| order.iter().position(|name| **name == row.server));
    for (what, row) in &all {
        let _ = writeln!(
            md,
            "| {} | {what} | {} | {} | {} |",
            row.server,
            latency_cells(row),
            row.failures.len(),
            endings(row)
        );
    }
    failures(md, all.iter().map(|(_, row)| (&row.server, &row.failures)));
}

fn failures<'a>(md: &mut String, rows: impl Iterator<Item = (&'a String, &'a Vec<String>)>) {
    let mut any = false;
    for (server, failures) in rows {
        if let Some(first) = failures.first() {
            if !any {
                let _ = writeln!(md, "\nFailed runs:\n");
                any = true;
            }
            let _ = writeln!(
                md,
                "- {server}, {} failed; the first: {first}",
                failures.len()
            );
        }
    }
    let _ = writeln!(md);
}

/// Figure 5's goals for `row`, one of ours: the exit ≤ 5 ms after the last
/// response (median over the runs in which every request got its `200`),
/// and a peak RSS (median) no higher than the lowest peer's.
fn scale_goals(md: &mut String, r: &Results, row: &scale::Row) {
    let n = r.settings.scale.connections;
    let median = |row: &scale::Row, f: fn(&scale::Sample) -> f64, complete: bool| {
        let values: Vec<f64> = row
            .samples
            .iter()
            .filter(|s| !complete || s.ok == n)
            .map(f)
            .filter(|v| !v.is_nan())
            .collect();
        Summary::of(&values).map(|s| s.median)
    };
    let measured = median(row, |s| s.latency_ms, true).map(|latency| {
        let line = median(row, |s| s.exit_line_ms, true)
            .map(|line| format!(" ({} ms to its `exit` line)", ms(line)))
            .unwrap_or_default();
        (
            format!("{} ms{line}", ms(latency)),
            latency <= EXIT_AFTER_LAST_MS,
        )
    });
    goal_line(
        md,
        "5. scale",
        &format!(
            "{}: exit ≤ {EXIT_AFTER_LAST_MS} ms after the last of {} responses",
            row.server,
            count(n)
        ),
        measured,
    );
    let rss = |row: &scale::Row| median(row, |s| s.peak_rss_kib as f64 / 1024.0, false);
    let lowest_peer = r
        .scale
        .iter()
        .flatten()
        .filter(|peer| r.kind_of(&peer.server) == Some(Kind::Peer))
        .filter_map(|peer| rss(peer).map(|v| (v, peer.server.as_str())))
        .min_by(|a, b| a.0.total_cmp(&b.0));
    let measured = rss(row).zip(lowest_peer).map(|(ours, (peer, name))| {
        (
            format!(
                "{ours:.1} MiB; the lowest peer, {name}: {peer:.1} MiB ({:.2}×)",
                ours / peer
            ),
            ours <= peer,
        )
    });
    goal_line(
        md,
        "5. scale",
        &format!(
            "{}: peak RSS with {} in flight ≤ the lowest peer's",
            row.server,
            count(n)
        ),
        measured,
    );
}

fn figure_scale(md: &mut String, r: &Results) {
    let Some(rows) = &r.scale else { return };
    let c = &r.settings.scale;
    let _ = writeln!(md, "## 5. Scale\n");
    let _ = writeln!(
        md,
        "{} connections, each with one `GET /sleep?ms={}` in flight at the SIGTERM (opened 64 \
         at a time, each batch accepted by the server before the next, so that the listen \
         backlog never overflows; the signal follows the last request written by {} ms; the \
         open-file limit is raised to its hard limit); {} run{} per server, each in a fresh \
         process. *Exit after the last*, over the runs in which every request got its \
         `200`, is from \
         the client reading the last response to the exit: the client reads {} responses that \
         arrive together, so this one is bounded by the client, and is negative when the \
         process exited before the client had read them all. *To its `exit` line* is the \
         same for ours up to the contract's last line, printed just before the exit: what \
         comes after it is the process's teardown (the runtime dropped, then the kernel \
         closing every socket the process still holds and freeing its memory), which grows \
         with the connections whatever the server. *Peak RSS* is the server's \
         `ru_maxrss` (`getrusage(RUSAGE_CHILDREN)` in a process whose only child it is). \
         Goals for ours: the exit ≤ 5 ms after the last response, and a peak RSS no \
         higher than the lowest peer's.\n",
        count(c.connections),
        c.sleep().as_millis(),
        c.settle().as_millis(),
        c.repetitions,
        if c.repetitions == 1 { "" } else { "s" },
        count(c.connections)
    );
    let _ = writeln!(
        md,
        "| server | answered 200 | other status | failed | answered before the signal | exit after the last, ms | to its `exit` line, ms | peak RSS, MiB | ended with |"
    );
    let _ = writeln!(
        md,
        "| --- | ---: | ---: | ---: | ---: | --- | --- | --- | --- |"
    );
    for row in rows {
        if row.samples.is_empty() {
            let _ = writeln!(md, "| {} | - | - | - | - | - | - | - | |", row.server);
            continue;
        }
        let sum = |f: fn(&scale::Sample) -> usize| -> String {
            let values: Vec<usize> = row.samples.iter().map(f).collect();
            let (lo, hi) = (
                values.iter().min().copied().unwrap_or(0),
                values.iter().max().copied().unwrap_or(0),
            );
            if lo == hi {
                count(lo)
            } else {
                format!("{} – {}", count(lo), count(hi))
            }
        };
        // Over the runs in which every request got its 200, as for figure 3.
        let latencies: Vec<f64> = row
            .samples
            .iter()
            .filter(|s| s.ok == c.connections)
            .map(|s| s.latency_ms)
            .filter(|l| !l.is_nan())
            .collect();
        let exit_lines: Vec<f64> = row
            .samples
            .iter()
            .filter(|s| s.ok == c.connections)
            .map(|s| s.exit_line_ms)
            .filter(|l| !l.is_nan())
            .collect();
        let rss: Vec<f64> = row
            .samples
            .iter()
            .map(|s| s.peak_rss_kib as f64 / 1024.0)
            .collect();
        let mut endings: Vec<&str> = row.samples.iter().map(|s| s.ending.as_str()).collect();
        endings.sort_unstable();
        endings.dedup();
        let show = |values: &[f64], f: fn(f64) -> String| {
            Summary::of(values).map_or("-".to_owned(), |s| {
                if s.count == 1 {
                    f(s.median)
                } else {
                    spread(&s, f)
                }
            })
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            row.server,
            sum(|s| s.ok),
            sum(|s| s.other),
            sum(|s| s.errors),
            sum(|s| s.before_signal),
            show(&latencies, ms),
            show(&exit_lines, ms),
            show(&rss, |v| format!("{v:.1}")),
            endings.join(", ")
        );
    }
    failures(md, rows.iter().map(|row| (&row.server, &row.failures)));
}

fn figure_rollout(md: &mut String, r: &Results) {
    let Some(figure) = &r.rollout else { return };
    let _ = writeln!(
        md,
        "## 6. Rolling restart
"
    );
    let figure = match figure {
        Ok(figure) => figure,
        Err(error) => {
            let _ = writeln!(md, "Not measured: {error}.\n");
            return;
        }
    };
    let _ = writeln!(
        md,
        "`{}`: \
         {} instances of each server behind each balancer, {} keep-alive clients sending reads and \
         `POST /orders` of {} ms (and `POST /jobs` to a target that serves them), every instance \
         restarted in turn: `SIGTERM`, its exit, its replacement on the same address {} s later \
         (a pod scheduled elsewhere takes a while, and the balancer keeps the old address \
         meanwhile). `haproxy` is `deploy/haproxy/haproxy.cfg`, health checks on \
         `/health/ready` every second, down after 2, with `retry-on` and `option redispatch`; \
         `haproxy-no-retries` is the same file without those two lines{}. Our targets run with a \
         {} ms unready delay; a peer has no readiness endpoint, so it is checked on \
         `/health/live`, and no store, so its lost work cannot be counted (`-`). *Failed* is \
         every request that did not get its expected answer, by what the client saw; *lost* \
         counts orders and jobs answered but not stored, and stored but never answered. Goal \
         for ours: 0 of both behind either balancer.\n",
        rollout::command(r.settings.quick),
        figure.instances,
        figure.clients,
        figure.work_ms,
        rollout::REPLACE_DELAY_MS / 1000,
        if r.settings.quick {
            ""
        } else {
            "; `nginx` is `deploy/nginx/nginx.conf`: no active health checks, so what moves \
             traffic off a draining instance is `proxy_next_upstream error http_503 \
             non_idempotent` (a refused connect, an idle connection closed at the exit, or a \
             `503` goes to the next instance)"
        },
        figure.unready_delay_ms
    );
    let _ = writeln!(
        md,
        "| server | balancer | requests | failed | by kind | lost | drain, s | exits |"
    );
    let _ = writeln!(md, "| --- | --- | ---: | ---: | --- | ---: | --- | --- |");
    for row in &figure.rows {
        let kinds: Vec<String> = row
            .failures
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        let lost = match (row.lost, row.unanswered) {
            (Some(lost), Some(unanswered)) => (lost + unanswered).to_string(),
            _ => "-".to_owned(),
        };
        let drains: Vec<String> = row.drains.iter().map(|d| format!("{d:.2}")).collect();
        let mut exits = row.exits.clone();
        exits.dedup();
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {lost} | {} | {} |",
            row.server,
            row.balancer,
            count(row.requests as usize),
            row.failed(),
            if kinds.is_empty() {
                "-".to_owned()
            } else {
                kinds.join(", ")
            },
            drains.join(", "),
            exits.join(", ")
        );
    }
    let _ = writeln!(md);
}

fn figure_grpc(md: &mut String, r: &Results) {
    let Some(figure) = &r.grpc else { return };
    let _ = writeln!(md, "## 7. gRPC\n");
    let figure = match figure {
        Ok(figure) => figure,
        Err(error) => {
            let _ = writeln!(md, "Not measured: {error}.\n");
            return;
        }
    };
    let c = grpc::Config::new(r.settings.quick);
    let _ = writeln!(
        md,
        "**Unary rate** (wall clock, noisy): `grpc.health.v1.Health/Check` calls per second \
         from {} callers on {} HTTP/2 connections (tonic channels), {} ms after a {} ms \
         warm-up, {} rounds, the servers in a rotating order within each round; graceful's \
         tokio target serves gRPC through `graceful_tokio::tonic`, `plain-tonic` is tonic's \
         own server with no shutdown code (the baseline), `tonic` is the same with \
         `serve_with_incoming_shutdown`.\n",
        c.callers,
        c.channels,
        c.duration.as_millis(),
        c.warm_up.as_millis(),
        c.rounds
    );
    let _ = writeln!(
        md,
        "| server | calls/s (median) | min – max | ratio to plain-tonic (median) | failed rounds |"
    );
    let _ = writeln!(md, "| --- | ---: | --- | ---: | ---: |");
    for row in &figure.rates {
        let rate = Summary::of(&row.rates);
        let ratio = Summary::of(&row.ratios);
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} |",
            row.server,
            rate.as_ref()
                .map_or("-".to_owned(), |s| format!("{:.0}", s.median)),
            rate.as_ref()
                .map_or("-".to_owned(), |s| format!("{:.0} – {:.0}", s.min, s.max)),
            ratio.map_or("-".to_owned(), |s| format!("{:.3}×", s.median)),
            row.failures.len()
        );
    }
    let _ = writeln!(
        md,
        "\n**SIGTERM to exit** with {} idle tonic channels connected (each made one call), \
         and with one more client that sent the HTTP/2 preface and then reads nothing, so it \
         never answers the server's PING (hyperium/hyper#4170); a fresh process for each of \
         {} runs. A server still running {} s after the signal is killed and counted as \
         stuck (one such run is enough). Goal for ours: ≤ {EXIT_IDLE_MS} ms, as for figure 4.\n",
        c.idle_channels,
        c.exit_repetitions,
        grpc::EXIT_BOUND.as_secs()
    );
    let _ = writeln!(
        md,
        "| server | clients | exit, ms (median) | min – max | stuck | failed |"
    );
    let _ = writeln!(md, "| --- | --- | ---: | --- | ---: | ---: |");
    for row in &figure.exits {
        let l = Summary::of(&row.latencies);
        let _ = writeln!(
            md,
            "| {} | {} idle{} | {} | {} | {} | {} |",
            row.server,
            c.idle_channels,
            if row.ping_less { " + 1 PING-less" } else { "" },
            l.as_ref().map_or("-".to_owned(), |s| ms(s.median)),
            l.as_ref()
                .map_or("-".to_owned(), |s| format!("{} – {}", ms(s.min), ms(s.max))),
            row.stuck,
            row.failures.len()
        );
    }
    let _ = writeln!(md);
}

fn figure_sse(md: &mut String, r: &Results) {
    let Some(rows) = &r.sse else { return };
    let c = &r.settings.idle;
    let _ = writeln!(md, "## 8. Exit with a server-sent events stream open\n");
    let _ = writeln!(
        md,
        "One `GET /events?ms=100` stream open, its first event read, then a SIGTERM {} ms \
         later: the time from the signal to the exit. Ours end the stream at `closed` with a \
         last `retry: 1000` event and exit; axum's `with_graceful_shutdown` waits for every \
         connection, and an event stream never ends by itself. A server still running {} s \
         after the signal is killed (once is enough). A fresh process for each of {} runs. \
         Goal for ours: ≤ {EXIT_SSE_MS} ms median.\n",
        c.signal_after.as_millis(),
        exit::SSE_BOUND.as_secs(),
        c.repetitions
    );
    let _ = writeln!(
        md,
        "| server | median ms | min | max | runs | failed | ended with |"
    );
    let _ = writeln!(md, "| --- | ---: | ---: | ---: | ---: | ---: | --- |");
    for row in rows {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} |",
            row.server,
            latency_cells(row),
            row.failures.len(),
            endings(row)
        );
    }
    failures(md, rows.iter().map(|row| (&row.server, &row.failures)));
}

/// One h2load row's cells from the server on, as figures 9 and 11 show
/// them: rate (median, min – max), ratio to the baseline, requests, failed,
/// errored, non-2xx.
fn h2load_cells(row: &h2load::Row) -> String {
    let rate = Summary::of(&row.rates);
    let ratio = if row.server == row.baseline {
        "baseline".to_owned()
    } else {
        Summary::of(&row.ratios).map_or("-".to_owned(), |s| {
            format!("{:.3}× {}", s.median, row.baseline)
        })
    };
    format!(
        "{} | {} | {} | {ratio} | {} | {} | {} | {}",
        row.server,
        rate.as_ref()
            .map_or("-".to_owned(), |s| format!("{:.0}", s.median)),
        rate.as_ref()
            .map_or("-".to_owned(), |s| format!("{:.0} – {:.0}", s.min, s.max)),
        count(row.requests as usize),
        row.failed,
        row.errored,
        row.not_2xx
    )
}

fn figure_h2load(md: &mut String, r: &Results) {
    let Some(figure) = &r.h2load else { return };
    let _ = writeln!(md, "## 9. HTTP/2 under h2load\n");
    let figure = match figure {
        Ok(figure) => figure,
        Err(error) => {
            let _ = writeln!(md, "Not measured: {error}.\n");
            return;
        }
    };
    let c = h2load::Config::new(r.settings.quick);
    let _ = writeln!(
        md,
        "Wall clock, noisy. `h2load -c {} -m {} -D {} --warm-up-time={}ms \
         http://ADDR/health/live` ({}): {} h2c connections with prior knowledge, up to {} \
         concurrent streams each, for {} s after a {} ms warm-up, {} rounds. Each runtime's \
         servers are started afresh in each round, in a rotated order, and each ratio is \
         taken against the baseline's rate of the same round: `plain-tokio` and \
         `plain-smol` serve h2c on their one port as the targets do (a `peek` at the \
         preface, then hyper's `http2::Builder`). *Failed* and *errored* are h2load's own \
         counts over every round. A server that answers no request of a one-request h2c \
         probe does not serve HTTP/2 and is not measured.\n",
        c.clients,
        c.streams,
        c.duration.as_secs_f64(),
        c.warm_up.as_millis(),
        figure.version,
        c.clients,
        c.streams,
        c.duration.as_secs_f64(),
        c.warm_up.as_millis(),
        c.rounds
    );
    let _ = writeln!(
        md,
        "| server | req/s (median) | min – max | ratio to baseline (median) | requests | failed | errored | non-2xx |"
    );
    let _ = writeln!(
        md,
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |"
    );
    for row in &figure.rows {
        if row.no_h2 {
            let _ = writeln!(md, "| {} | no HTTP/2 | | | | | | |", row.server);
            continue;
        }
        let _ = writeln!(md, "| {} |", h2load_cells(row));
    }
    failures(
        md,
        figure.rows.iter().map(|row| (&row.server, &row.failures)),
    );
}

/// `kind: n, ...`, or `-`.
fn figure_tls(md: &mut String, r: &Results) {
    let Some(figures) = &r.tls else { return };
    let _ = writeln!(md, "## 11. TLS under h2load\n");
    let figures = match figures {
        Ok(figures) => figures,
        Err(error) => {
            let _ = writeln!(md, "Not measured: {error}.\n");
            return;
        }
    };
    let _ = writeln!(
        md,
        "Wall clock, noisy. `h2load` over `https://ADDR/health/live` against each `-min` \
         server and its baseline, both started with `--tls CERT KEY` (one self-signed \
         certificate made for the run with rcgen; h2load does not verify it): HTTP/2 by ALPN \
         `h2`, and HTTP/1.1 (`--h1`, one request in flight per connection). The baselines \
         serve TLS as tokio-rustls and futures-rustls teach (a `TlsAcceptor` around each \
         stream, then hyper's HTTP/2 or HTTP/1.1 by the negotiated ALPN), and plain-actix by \
         actix-web's own `bind_rustls_0_23`; the `-min` servers through their adapter's \
         `tls::serve_tls` and `tls::load_config`. Rounds as in figure 9: each server started \
         afresh in each round, in a rotated order, each ratio against the baseline's rate of \
         the same round. The instruction counts per request over TLS are figure 2's \
         `HTTP/1.1 over TLS` rows.\n"
    );
    let _ = writeln!(
        md,
        "| protocol | server | req/s (median) | min – max | ratio to baseline (median) | requests | failed | errored | non-2xx |"
    );
    let _ = writeln!(
        md,
        "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |"
    );
    // Below the table: each protocol's command line, and what failed.
    let mut notes = Vec::new();
    for (config, figure) in figures {
        let label = config.scheme.label();
        let anywhere = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        let run = format!(
            "`h2load {}`",
            config
                .args(anywhere)
                .join(" ")
                .replace(&anywhere.to_string(), "ADDR")
        );
        let figure = match figure {
            Ok(figure) => figure,
            Err(error) => {
                let _ = writeln!(md, "| {label} | not measured: {error} | | | | | | | |");
                continue;
            }
        };
        for row in &figure.rows {
            if row.no_h2 {
                let _ = writeln!(md, "| {label} | {} | no answer | | | | | | |", row.server);
                continue;
            }
            let _ = writeln!(md, "| {label} | {} |", h2load_cells(row));
            if !row.failures.is_empty() {
                notes.push((format!("{} ({label})", row.server), row.failures.clone()));
            }
        }
        notes.push((format!("{label} ({})", figure.version), vec![run]));
    }
    let _ = writeln!(md);
    for (what, lines) in notes {
        let _ = writeln!(md, "- {what}: {}", lines.join("; "));
    }
    let _ = writeln!(md);
}

fn by_kind(failures: &std::collections::BTreeMap<String, u64>) -> String {
    if failures.is_empty() {
        return "-".to_owned();
    }
    failures
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn figure_upgrades(md: &mut String, r: &Results) {
    let Some(figure) = &r.upgrades else { return };
    let c = &figure.config;
    let _ = writeln!(
        md,
        "## 10. Requests failed during {} upgrades\n",
        c.restarts
    );
    let _ = writeln!(
        md,
        "Each target restarted {n} times in a row under steady load, two ways in the same \
         run: `SIGHUP` upgrades (contract rules 23-27: a new process inherits the listening \
         socket, the old one hands over at its `listening`, drains and exits; the next \
         `SIGHUP` goes to the new pid once the old one printed `exit`), and {n} \
         stop-then-start restarts (`SIGTERM`, wait for the exit, start again on the same \
         port). {} clients send `GET /sleep?ms={}` each on a new connection, {} on \
         keep-alive connections, from {} ms before the first restart, with {} ms between \
         two. A request fails unless it gets its `200`, counted by what the client saw \
         (`refused`, `reset`, `EOF` before any byte, another status by its code, ...). Two \
         answers are retried once on a new connection instead, as the kit's upgrade \
         scenario and HTTP clients do, and counted under *retried* by why: a `503` with \
         `Retry-After` (rule 4's answer to new work on a kept-alive connection once the \
         process drains) and a kept-alive connection closed before any byte (RFC 9112 \
         9.3.1); the retry's own outcome counts. *To listening* is \
         from the signal to the new process's `listening` line, *to exit* to the old \
         process's exit (its `exit` line for an upgrade). Goal for ours: every upgrade \
         hands over and no request fails, while the restarts show failures (else the count \
         would be blind).\n",
        c.fresh_clients,
        c.work_ms,
        c.kept_clients,
        c.pause.as_millis(),
        c.pause.as_millis(),
        n = c.restarts,
    );
    let _ = writeln!(
        md,
        "| server | restarted by | done | requests | failed | new connections | keep-alive | retried | to listening, ms (median, max) | to exit, ms (median, max) |"
    );
    let _ = writeln!(
        md,
        "| --- | --- | ---: | ---: | ---: | --- | --- | ---: | --- | --- |"
    );
    let timing = |values: &[f64]| {
        Summary::of(values).map_or("-".to_owned(), |s| {
            format!("{}, {}", ms(s.median), ms(s.max))
        })
    };
    for row in &figure.rows {
        let _ = writeln!(
            md,
            "| {} | {} | {}/{} | {} | {} | {} | {} | {} | {} | {} |",
            row.server,
            row.how.label(),
            row.done,
            c.restarts,
            count(row.requests() as usize),
            row.failed(),
            by_kind(&row.fresh.failures),
            by_kind(&row.kept.failures),
            by_kind(&row.all().retried),
            timing(&row.listening_ms),
            timing(&row.exit_ms)
        );
    }
    failures(
        md,
        figure.rows.iter().map(|row| (&row.server, &row.failures)),
    );
}

/// Results of every kind, for the tests of the report and the chart.
#[cfg(test)]
pub(crate) fn example() -> Results {
    use std::collections::BTreeMap;
    use std::path::PathBuf;
    let spec = |name: &str, kind| Spec {
        name: name.to_owned(),
        about: String::new(),
        kind,
        runtime: "tokio",
        program: PathBuf::new(),
        args: Vec::new(),
    };
    let scale_sample = |latency_ms: f64, exit_line_ms: f64, peak_rss_kib: u64| scale::Sample {
        ok: 1_000,
        other: 0,
        errors: 0,
        before_signal: 0,
        latency_ms,
        exit_line_ms,
        peak_rss_kib,
        ramp_ms: 100.0,
        ending: "exit 0".to_owned(),
    };
    let exit_row = |server: &str, latencies: Vec<f64>| exit::Row {
        server: server.to_owned(),
        latencies,
        failures: Vec::new(),
        endings: ["exit 0".to_owned()].into(),
    };
    Results {
        settings: Settings::new(true),
        date: "2026-01-01 00:00 UTC".to_owned(),
        machine: Machine {
            cores: 2,
            cpu: "CPU".to_owned(),
            memory: "1 GiB".to_owned(),
            kernel: "Linux".to_owned(),
            rustc: "rustc".to_owned(),
        },
        load_before: "0 0 0".to_owned(),
        load_after: "0 0 0".to_owned(),
        took: Duration::from_secs(90),
        laps: vec![
            ("builds", Duration::from_secs(30)),
            ("figure 1", Duration::from_millis(61_500)),
        ],
        servers: vec![
            spec("graceful-tokio", Kind::Target),
            spec("graceful-tokio-min", Kind::Minimal),
            spec("graceful-actix", Kind::Target),
            spec("axum", Kind::Peer),
            spec("plain-tokio", Kind::Plain),
        ],
        targets: vec!["graceful-tokio (given on the command line).".to_owned()],
        guards: Some(Err("the guards bench failed".to_owned())),
        guard_counts: Some(Ok(vec![
            callgrind::GuardCount {
                threads: 1,
                variant: "bare",
                per_op: vec![10.0, 10.0],
            },
            callgrind::GuardCount {
                threads: 1,
                variant: "guard",
                per_op: vec![14.0, 14.0],
            },
            callgrind::GuardCount {
                threads: 1,
                variant: "owned-guard",
                per_op: vec![20.0, 20.0],
            },
            callgrind::GuardCount {
                threads: 1,
                variant: "task-tracker",
                per_op: vec![17.0, 17.0],
            },
        ])),
        serving_counts: Some(Ok(vec![
            callgrind::ServingCount {
                server: "plain-tokio".to_owned(),
                protocol: Protocol::Http1,
                baseline: "plain-tokio".to_owned(),
                per_request: vec![20_000.0, 20_010.0],
                ratios: vec![1.0, 1.0],
                failure: None,
            },
            callgrind::ServingCount {
                server: "graceful-tokio-min".to_owned(),
                protocol: Protocol::Http1,
                baseline: "plain-tokio".to_owned(),
                per_request: vec![20_500.0, 20_500.0],
                ratios: vec![1.025, 1.025],
                failure: None,
            },
            callgrind::ServingCount {
                server: "graceful-tokio".to_owned(),
                protocol: Protocol::Http1,
                baseline: "plain-tokio".to_owned(),
                per_request: vec![21_000.0, 21_000.0],
                ratios: vec![1.05, 1.0496],
                failure: None,
            },
        ])),
        serving: Some(vec![
            serving::Row {
                server: "graceful-tokio-min".to_owned(),
                baseline: "plain-tokio".to_owned(),
                kind: Kind::Minimal,
                rps: vec![100.0, 96.0],
                ratios: vec![0.99, 0.95],
                cpu_us: vec![8.0],
                cpu_ratios: vec![1.05],
                other: 0,
                errors: 0,
                failure: None,
            },
            serving::Row {
                server: "graceful-tokio".to_owned(),
                baseline: "plain-tokio".to_owned(),
                kind: Kind::Target,
                rps: vec![100.0, 96.0],
                ratios: vec![0.99, 0.95],
                cpu_us: vec![8.0],
                cpu_ratios: vec![1.05],
                other: 0,
                errors: 0,
                failure: None,
            },
        ]),
        busy: Some(vec![
            exit_row("graceful-tokio", vec![0.5, 0.7, 0.6]),
            exit_row("axum", Vec::new()),
        ]),
        idle: Some(vec![exit_row("graceful-tokio", vec![12.0])]),
        idle_keep_alive: None,
        scale: Some(vec![
            scale::Row {
                server: "graceful-tokio".to_owned(),
                samples: Vec::new(),
                failures: vec!["graceful-tokio: it broke".to_owned()],
            },
            scale::Row {
                server: "graceful-actix".to_owned(),
                samples: vec![scale_sample(4.5, 1.25, 20_480)],
                failures: Vec::new(),
            },
            scale::Row {
                server: "axum".to_owned(),
                samples: vec![scale_sample(3.0, f64::NAN, 18_432)],
                failures: Vec::new(),
            },
        ]),
        rollout: Some(Ok(rollout::Figure {
            instances: 2,
            clients: 8,
            unready_delay_ms: 3000,
            work_ms: 20,
            rows: vec![
                rollout::Row {
                    server: "graceful-tokio".to_owned(),
                    ours: true,
                    balancer: "haproxy-no-retries".to_owned(),
                    requests: 7475,
                    failures: BTreeMap::new(),
                    lost: Some(0),
                    unanswered: Some(0),
                    drains: vec![3.0, 3.01],
                    exits: vec!["code 0".to_owned(), "code 0".to_owned()],
                },
                rollout::Row {
                    server: "axum".to_owned(),
                    ours: false,
                    balancer: "haproxy-no-retries".to_owned(),
                    requests: 3796,
                    failures: [("503".to_owned(), 16)].into(),
                    lost: None,
                    unanswered: None,
                    drains: vec![0.01, 0.01],
                    exits: vec!["code 0".to_owned(), "code 0".to_owned()],
                },
            ],
        })),
        sse: Some(vec![exit_row("graceful-tokio", vec![2.0, 3.0])]),
        grpc: Some(Ok(grpc::Figure {
            rates: vec![grpc::RateRow {
                server: "graceful-tokio".to_owned(),
                rates: vec![30_000.0, 32_000.0],
                ratios: vec![0.95, 1.01],
                failures: Vec::new(),
            }],
            exits: vec![
                grpc::ExitRow {
                    server: "graceful-tokio".to_owned(),
                    ping_less: true,
                    latencies: vec![2.0, 3.0],
                    stuck: 0,
                    failures: Vec::new(),
                },
                grpc::ExitRow {
                    server: "axum".to_owned(),
                    ping_less: true,
                    latencies: Vec::new(),
                    stuck: 1,
                    failures: Vec::new(),
                },
            ],
        })),
        h2load: Some(Ok(h2load::Figure {
            version: "nghttp2/1.52.0".to_owned(),
            rows: vec![
                h2load::Row {
                    server: "plain-tokio".to_owned(),
                    baseline: "plain-tokio".to_owned(),
                    rates: vec![40_000.0, 42_000.0],
                    ratios: vec![1.0, 1.0],
                    requests: 164_000,
                    failed: 0,
                    errored: 0,
                    not_2xx: 0,
                    no_h2: false,
                    failures: Vec::new(),
                },
                h2load::Row {
                    server: "graceful-tokio".to_owned(),
                    baseline: "plain-tokio".to_owned(),
                    rates: vec![39_000.0, 40_000.0, 39_500.0],
                    ratios: vec![0.98, 0.95, 0.964],
                    requests: 158_000,
                    failed: 0,
                    errored: 0,
                    not_2xx: 0,
                    no_h2: false,
                    failures: Vec::new(),
                },
                h2load::Row {
                    server: "graceful-actix".to_owned(),
                    baseline: "plain-actix".to_owned(),
                    rates: Vec::new(),
                    ratios: Vec::new(),
                    requests: 0,
                    failed: 0,
                    errored: 0,
                    not_2xx: 0,
                    no_h2: true,
                    failures: Vec::new(),
                },
            ],
        })),
        tls: None,
        upgrades: Some(upgrades::Figure {
            config: upgrades::Config::new(true),
            rows: vec![
                upgrades::Row {
                    server: "graceful-tokio".to_owned(),
                    how: upgrades::How::Upgrade,
                    done: 10,
                    fresh: upgrades::Tally {
                        requests: 2_000,
                        ..upgrades::Tally::default()
                    },
                    kept: upgrades::Tally {
                        requests: 2_100,
                        retried: [("503".to_owned(), 3)].into(),
                        ..upgrades::Tally::default()
                    },
                    listening_ms: vec![40.0, 45.0, 60.0],
                    exit_ms: vec![70.0, 75.0, 90.0],
                    failures: Vec::new(),
                },
                upgrades::Row {
                    server: "graceful-tokio".to_owned(),
                    how: upgrades::How::StopThenStart,
                    done: 10,
                    fresh: upgrades::Tally {
                        requests: 1_900,
                        failures: [("refused".to_owned(), 40)].into(),
                        retried: BTreeMap::new(),
                    },
                    kept: upgrades::Tally {
                        requests: 1_950,
                        failures: [("refused".to_owned(), 30), ("EOF".to_owned(), 2)].into(),
                        retried: [("EOF".to_owned(), 5)].into(),
                    },
                    listening_ms: vec![30.0, 35.0],
                    exit_ms: vec![5.0, 6.0],
                    failures: Vec::new(),
                },
            ],
        }),
        notes: Some("## Notes\n\nWhere the instructions go.\n".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn versions_come_from_the_lockfile() {
        let lock = "[[package]]\nname = \"axum\"\nversion = \"0.8.9\"\n\n[[package]]\nname = \"hyper\"\nversion = \"0.14.1\"\n\n[[package]]\nname = \"hyper\"\nversion = \"1.8.1\"\n";
        assert_eq!(
            super::versions(lock, &["axum", "hyper", "tonic"]),
            "axum 0.8.9, hyper 0.14.1 and 1.8.1, tonic (not in the lockfile)"
        );
        // The real lockfile names the peers.
        let real = super::versions(super::LOCKFILE, super::PEER_CRATES);
        assert!(
            real.contains("actix-web 4.") && !real.contains("axum (not"),
            "{real}"
        );
    }

    use super::*;

    /// Figure 10's goal is missed when the restarts beside the upgrades
    /// show no failure: the count could not have seen one.
    #[test]
    fn an_upgrade_goal_needs_restarts_that_fail() {
        let mut results = example();
        let upgrades = results.upgrades.as_mut().unwrap();
        for row in &mut upgrades.rows {
            row.fresh.failures.clear();
            row.kept.failures.clear();
        }
        let md = markdown(&results, None);
        assert!(md.contains("10 of 10 upgrades, 0 failed of 4\u{202f}100; 10 stop-then-start restarts: 0 failed | **missed** |"));
        upgrades_row(&mut results, |row| row.done = 9);
        let md = markdown(&results, None);
        assert!(md.contains("9 of 10 upgrades"));
        assert!(md.contains("| **missed** |"));
    }

    fn upgrades_row(results: &mut Results, change: impl Fn(&mut upgrades::Row)) {
        let rows = &mut results.upgrades.as_mut().unwrap().rows;
        change(&mut rows[0]);
    }

    #[test]
    fn formats_counts_and_milliseconds() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_000), "1\u{202f}000");
        assert_eq!(count(10_000), "10\u{202f}000");
        assert_eq!(count(1_234_567), "1\u{202f}234\u{202f}567");
        assert_eq!(ms(0.6441), "0.64");
        assert_eq!(ms(-0.012), "-0.01");
        assert_eq!(ms(52.44), "52.4");
        assert_eq!(ms(1052.4), "1052");
        assert_eq!(ms(f64::NAN), "-");
    }

    #[test]
    fn reports_goals_met_and_missed() {
        let md = markdown(&example(), Some("BENCHMARKS.svg"));
        assert!(md.starts_with("# Benchmarks\n"));
        assert!(md.contains("![The figures at a glance](BENCHMARKS.svg)"));
        // The goal is judged on the minimal server; the target is a row.
        assert!(md.contains("| 2. serving | graceful-tokio-min, HTTP/1.1: ≤ 3 % more instructions per request than the same server without it | 1.025× plain-tokio in instructions per request (20500); wall clock (noisy): req/s 0.970×, server CPU per request 1.050× | met |"));
        assert!(!md.contains("| 2. serving | graceful-tokio: "));
        assert!(md.contains("| 1. guard cost | `Shutdown::enter`, 1 thread: ≤ 1.5× bare `Arc<AtomicUsize>`, ≤ 1× `TaskTracker::token` | 1.40× bare, 0.82× TaskTracker in instructions | met |"));
        assert!(md.contains("| 1. guard cost | `Shutdown::enter_owned`, 1 thread: ≤ 1.5× bare `Arc<AtomicUsize>`, ≤ 1× `TaskTracker::token` | 2.00× bare, 1.18× TaskTracker in instructions | **missed** |"));
        assert!(md.contains("| graceful-tokio (conformance target) | tokio | HTTP/1.1 | 21000 | 21000, 21000 | 0.000 % | 1.0498× plain-tokio | 1.0500, 1.0496 |"));
        assert!(md.contains(
            "| plain-tokio | tokio | HTTP/1.1 | 20005 | 20000, 20010 | 0.050 % | baseline |  |"
        ));
        assert!(md.contains(
            "| 3. exit after the last response | graceful-tokio: ≤ 5 ms | 0.60 ms | met |"
        ));
        assert!(md.contains(
            "| 4. idle exit | graceful-tokio, no connection: ≤ 10 ms | 12.0 ms | **missed** |"
        ));
        assert!(
            md.contains("- **Where the time went**: builds 30 s, figure 1 62 s."),
            "{md}"
        );
        assert!(md.contains("5. scale | graceful-tokio: every one of 1\u{202f}000 requests in flight completes | 0 of 1 runs"));
        assert!(md.contains("| 5. scale | graceful-actix: exit ≤ 5 ms after the last of 1\u{202f}000 responses | 4.50 ms (1.25 ms to its `exit` line) | met |"), "{md}");
        assert!(md.contains("| 5. scale | graceful-actix: peak RSS with 1\u{202f}000 in flight ≤ the lowest peer's | 20.0 MiB; the lowest peer, axum: 18.0 MiB (1.11×) | **missed** |"), "{md}");
        assert!(
            md.contains(
                "| graceful-actix | 1\u{202f}000 | 0 | 0 | 0 | 4.50 | 1.25 | 20.0 | exit 0 |"
            ),
            "{md}"
        );
        assert!(
            md.contains("| axum | 1\u{202f}000 | 0 | 0 | 0 | 3.00 | - | 18.0 | exit 0 |"),
            "{md}"
        );
        assert!(md.contains("Not measured: the guards bench failed"));
        assert!(md.contains("| axum | - | - | - | 0 | 0 | exit 0 |"));
        assert!(md.contains("| 6. rolling restart | graceful-tokio behind haproxy-no-retries: 0 failed requests, 0 lost work, exits 0 | 0 failed of 7\u{202f}475, 0 lost, exits 0 | met |"));
        assert!(md.contains(
            "| axum | haproxy-no-retries | 3\u{202f}796 | 16 | 503: 16 | - | 0.01, 0.01 | code 0 |"
        ));
        assert!(md.contains("| 7. gRPC | graceful-tokio, SIGTERM to exit with idle gRPC clients and a PING-less one: ≤ 10 ms | 2.50 ms | met |"));
        assert!(md.contains("| graceful-tokio | 31000 | 30000 – 32000 | 0.980× | 0 |"));
        assert!(md.contains("| axum | 50 idle + 1 PING-less | - | - | 1 | 0 |"));
        assert!(md.contains("| 8. exit with a stream open | graceful-tokio, one server-sent events stream open: ≤ 50 ms | 2.50 ms | met |"));
        assert!(md.contains("## 8. Exit with a server-sent events stream open"));
        assert!(md.contains("| 9. HTTP/2 | graceful-tokio, HTTP/2 (h2c) under h2load: ≥ 0.97× plain-tokio's req/s (informational: wall clock, noisy) | 0.964× plain-tokio (0 failed, 0 errored) | **missed** |"));
        assert!(md.contains("| 9. HTTP/2 | graceful-actix, HTTP/2 (h2c) under h2load: ≥ 0.97× plain-actix's req/s (informational: wall clock, noisy) | no HTTP/2 (no answer over h2c) | **missed** |"));
        assert!(md.contains("| graceful-tokio | 39500 | 39000 – 40000 | 0.964× plain-tokio | 158\u{202f}000 | 0 | 0 | 0 |"));
        assert!(md.contains("| plain-tokio | 41000 | 40000 – 42000 | baseline |"));
        assert!(md.contains("| graceful-actix | no HTTP/2 |"));
        assert!(md.contains("| 10. upgrades | graceful-tokio: 10 SIGHUP upgrades under load, 0 failed requests | 10 of 10 upgrades, 0 failed of 4\u{202f}100; 10 stop-then-start restarts: 72 failed | met |"));
        assert!(md.contains("| graceful-tokio | stop, then start | 10/10 | 3\u{202f}850 | 72 | refused: 40 | EOF: 2, refused: 30 | EOF: 5 | 32.5, 35.0 | 5.50, 6.00 |"));
        assert!(md.contains("| graceful-tokio | SIGHUP upgrade | 10/10 | 4\u{202f}100 | 0 | - | - | 503: 3 | 45.0, 60.0 | 75.0, 90.0 |"));
        assert!(md.contains("cargo xtask bench --quick"));
        assert!(md.ends_with("## Notes\n\nWhere the instructions go.\n"));
    }
}
