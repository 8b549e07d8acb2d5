//! `graceful-bench`: the benchmark runner behind `cargo xtask bench`.
//!
//! ```text
//! graceful-bench [--quick] [--figures 1,2,3,4,5,6,7,8,9,10,11] [--counts-only]
//!                [--target NAME=PATH]... [--targets-from FILE]
//!                [--markdown PATH] [--svg PATH]
//! ```
//!
//! It builds the peers and baselines of this crate, finds graceful's
//! conformance targets with `cargo xtask targets` (or takes them from
//! `--target` / `--targets-from`, in the same `NAME PATH` form), measures
//! the eleven figures side by side, prints the tables, and writes
//! `BENCHMARKS.md` and `BENCHMARKS.svg` at the workspace root.
//!
//! 1. Guard cost: instruction counts of `guard-ops` under callgrind, and
//!    the criterion bench `benches/guards.rs` (wall clock).
//! 2. Serving overhead: instructions per request under callgrind, adapter
//!    against none; and requests per second (wall clock).
//! 3. Exit latency after the last in-flight response.
//! 4. Idle exit latency: SIGTERM to exit with nothing in flight.
//! 5. Scale: 10 000 requests in flight at SIGTERM (1 000 with `--quick`).
//! 6. Rolling restart: failed requests and lost work while every instance
//!    is restarted behind HAProxy (`cargo xtask rollout --peers`).
//! 7. gRPC: unary calls per second through graceful's tokio target against
//!    tonic alone, and SIGTERM to exit with idle gRPC clients, against
//!    tonic's own `serve_with_incoming_shutdown`.
//! 8. SIGTERM to exit with one server-sent events stream open: ours and
//!    axum's `with_graceful_shutdown`.
//! 9. HTTP/2 under `h2load`: requests per second over h2c, each target
//!    against the same server without graceful.
//! 10. Requests failed during 10 `SIGHUP` upgrades under load, against 10
//!     stop-then-start restarts of the same target.
//! 11. TLS under `h2load`: requests per second over `https://`, HTTP/2 by
//!     ALPN and HTTP/1.1 (`--h1`), each `-min` server against the same
//!     server without graceful.
//!
//! Every load goes to 127.0.0.1 and every step is bounded in count and
//! time. Progress goes to standard error; the tables to standard output.

// Printing the tables is the point.
#![allow(clippy::print_stdout)]

mod callgrind;
mod cargo;
mod chart;
mod exit;
mod grpc;
mod guards;
mod h2load;
mod http;
mod load;
mod machine;
mod report;
mod rollout;
mod scale;
mod server;
mod serving;
mod stats;
mod tls;
mod upgrades;

use report::{Results, Settings};
use server::{Kind, Spec};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

const USAGE: &str = "\
usage: graceful-bench [--quick] [--figures 1,2,3,4,5,6,7,8,9,10,11] [--counts-only] [--target NAME=PATH]...
                      [--targets-from FILE] [--markdown PATH] [--svg PATH]

  --quick              shorter rounds, fewer repetitions, 1 000 requests at scale (a few minutes)
  --figures LIST       run only these figures (default: all)
  --counts-only        figures 1 and 2: the instruction counts only, not the wall clock
  --target NAME=PATH   a conformance target (tokio, smol, actix); repeatable; skips `cargo xtask targets`
  --targets-from FILE  `NAME PATH` lines, as `cargo xtask targets` prints them
  --markdown PATH      where to write the report (default: BENCHMARKS.md at the workspace root)
  --svg PATH           where to write the chart (default: BENCHMARKS.svg at the workspace root)";

/// The conformance targets graceful ships, by the name `cargo xtask
/// targets` gives them.
const TARGETS: [(&str, &str, &str); 3] = [
    (
        "tokio",
        "graceful-tokio",
        "graceful-tokio's conformance target: hyper 1 on tokio",
    ),
    (
        "smol",
        "graceful-smol",
        "graceful-smol's conformance target: hyper 1 on smol",
    ),
    (
        "actix",
        "graceful-actix",
        "graceful-actix's conformance target: an actix-web 4 app",
    ),
];

/// Figure 7's servers, which speak gRPC only (so no other figure runs
/// them): binary, name, kind, runtime, what it is.
const GRPC_SERVERS: [(&str, &str, Kind, &str, &str); 2] = [
    (
        "peer-tonic",
        "tonic",
        Kind::Peer,
        "tokio",
        "tonic 0.14's `Server::serve_with_incoming_shutdown` with tonic-health (gRPC only; figure 7)",
    ),
    (
        "plain-tonic",
        "plain-tonic",
        Kind::Plain,
        "tokio",
        "tonic 0.14's `Server` with tonic-health, no shutdown code (gRPC only; figure 7)",
    ),
];

/// The runtimes whose baseline serves TLS (`--tls CERT KEY`).
const TLS_RUNTIMES: [&str; 3] = ["tokio", "smol", "actix"];

/// The binary whose guard loops figure 1 counts the instructions of.
const GUARD_OPS: &str = "guard-ops";

/// This crate's servers: binary, name, kind, runtime, what it is.
const SERVERS: [(&str, &str, Kind, &str, &str); 9] = [
    (
        "peer-axum",
        "axum",
        Kind::Peer,
        "tokio",
        "axum 0.8, `serve(..).with_graceful_shutdown(signal)`",
    ),
    (
        "peer-tokio-graceful-shutdown",
        "tokio-graceful-shutdown",
        Kind::Peer,
        "tokio",
        "tokio-graceful-shutdown's `Toplevel` with a hyper 1 server subsystem",
    ),
    (
        "peer-actix",
        "actix-web",
        Kind::Peer,
        "actix",
        "actix-web 4, its built-in signal handling and `shutdown_timeout(30)`",
    ),
    (
        "plain-tokio",
        "plain-tokio",
        Kind::Plain,
        "tokio",
        "hyper 1 on tokio, no shutdown code (HTTP/1.1 and h2c on one port; TLS by tokio-rustls, ALPN h2 or HTTP/1.1)",
    ),
    (
        "plain-smol",
        "plain-smol",
        Kind::Plain,
        "smol",
        "hyper 1 on smol (smol-hyper), one executor thread per core, no shutdown code (HTTP/1.1 and h2c on one port; TLS by futures-rustls, ALPN h2 or HTTP/1.1)",
    ),
    (
        "plain-actix",
        "plain-actix",
        Kind::Plain,
        "actix",
        "actix-web 4 as it comes, no shutdown code of its own (HTTP/1.1 and h2c by `bind_auto_h2c`; TLS by `bind_rustls_0_23`, ALPN h2 or HTTP/1.1)",
    ),
    (
        "graceful-tokio-min",
        "graceful-tokio-min",
        Kind::Minimal,
        "tokio",
        "plain-tokio with graceful-tokio added as its README teaches (`serve`, `signals`, `run`)",
    ),
    (
        "graceful-smol-min",
        "graceful-smol-min",
        Kind::Minimal,
        "smol",
        "plain-smol with graceful-smol added as its README teaches (`serve`, `signals`, `run`)",
    ),
    (
        "graceful-actix-min",
        "graceful-actix-min",
        Kind::Minimal,
        "actix",
        "plain-actix with graceful-actix added as its README teaches (`Server`, `signals`, `run`)",
    ),
];

#[derive(Debug, Default)]
struct Options {
    quick: bool,
    figures: BTreeSet<u8>,
    counts_only: bool,
    targets: Vec<(String, PathBuf)>,
    targets_given: bool,
    markdown: Option<PathBuf>,
    svg: Option<PathBuf>,
    help: bool,
}

fn parse_options(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        figures: (1..=11).collect(),
        ..Options::default()
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => (name, Some(value.to_owned())),
            _ => (arg.as_str(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next().cloned())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match name {
            "--quick" => options.quick = true,
            "--counts-only" => options.counts_only = true,
            "--figures" => {
                let list = value()?;
                options.figures = list
                    .split(',')
                    .map(|f| match f.trim().parse::<u8>() {
                        Ok(n @ 1..=11) => Ok(n),
                        _ => Err(format!("--figures {list}: figures are 1 to 11")),
                    })
                    .collect::<Result<_, _>>()?;
            }
            "--target" => {
                let given = value()?;
                let (target, path) = given
                    .split_once('=')
                    .ok_or_else(|| format!("--target {given}: expected NAME=PATH"))?;
                options
                    .targets
                    .push((target.to_owned(), PathBuf::from(path)));
                options.targets_given = true;
            }
            "--targets-from" => {
                let file = value()?;
                let text = std::fs::read_to_string(&file)
                    .map_err(|e| format!("--targets-from {file}: {e}"))?;
                options.targets.extend(cargo::parse_targets(&text)?);
                options.targets_given = true;
            }
            "--markdown" => options.markdown = Some(PathBuf::from(value()?)),
            "--svg" => options.svg = Some(PathBuf::from(value()?)),
            "--help" | "-h" => options.help = true,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(options)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(error) = server::end_children_on_signals() {
        eprintln!("graceful-bench: {error}");
        return ExitCode::FAILURE;
    }
    if args.first().map(String::as_str) == Some("scale-one") {
        return match scale::one(&args[1..]) {
            Ok(line) => {
                println!("{line}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("{error}");
                ExitCode::FAILURE
            }
        };
    }
    let options = match parse_options(&args) {
        Ok(options) if options.help => {
            eprintln!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(options) => options,
        Err(error) => {
            eprintln!("graceful-bench: {error}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("graceful-bench: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run(options: &Options) -> Result<(), String> {
    let started = Instant::now();
    let settings = Settings::new(options.quick);
    let load_before = machine::load_average();
    let date = machine::now_utc();
    let root = cargo::workspace_root();
    let markdown_path = options
        .markdown
        .clone()
        .unwrap_or_else(|| root.join("BENCHMARKS.md"));
    let svg_path = options
        .svg
        .clone()
        .unwrap_or_else(|| root.join("BENCHMARKS.svg"));

    let mut laps = report::Laps::new();
    laps.mark("builds");
    eprintln!("graceful-bench: building the peers and baselines");
    let bins: Vec<&str> = SERVERS
        .iter()
        .chain(&GRPC_SERVERS)
        .map(|s| s.0)
        .chain([GUARD_OPS])
        .collect();
    let built = cargo::build_bins(&bins)?;

    let (found, source) = if options.targets_given {
        (
            options.targets.clone(),
            "given on the command line".to_owned(),
        )
    } else {
        eprintln!("graceful-bench: building the conformance targets (cargo xtask targets)");
        // A target that does not build is not a missing one: a report
        // without it would mislead.
        let found = cargo::xtask_targets().map_err(|error| {
            format!("{error}; fix the build, or name the targets with --target NAME=PATH")
        })?;
        (found, "built by `cargo xtask targets`".to_owned())
    };
    let mut servers = Vec::new();
    let mut target_notes = Vec::new();
    let mut present = Vec::new();
    let mut missing = Vec::new();
    for (key, name, about) in TARGETS {
        match found.iter().find(|(k, _)| k == key) {
            Some((_, path)) => {
                present.push(name);
                servers.push(Spec {
                    name: name.to_owned(),
                    about: about.to_owned(),
                    kind: Kind::Target,
                    runtime: key,
                    program: path.clone(),
                    args: Vec::new(),
                });
            }
            None => missing.push(name),
        }
    }
    for (key, _) in &found {
        if !TARGETS.iter().any(|t| t.0 == key) {
            return Err(format!(
                "unknown target {key:?} (known: tokio, smol, actix)"
            ));
        }
    }
    target_notes.push(if present.is_empty() {
        format!("none found ({source}), so only the peers and baselines were measured.")
    } else {
        format!("{} ({source}).", present.join(", "))
    });
    if !missing.is_empty() {
        let note = format!(
            "no target yet for {}: skipped, with their baselines still measured.",
            missing.join(", ")
        );
        eprintln!("graceful-bench: {note}");
        target_notes.push(note);
    }
    for (bin, name, kind, runtime, about) in SERVERS {
        servers.push(Spec {
            name: name.to_owned(),
            about: about.to_owned(),
            kind,
            runtime,
            program: built[bin].clone(),
            args: Vec::new(),
        });
    }

    if let Err(error) = scale::raise_open_files() {
        eprintln!("graceful-bench: {error}");
    }
    let runner = std::env::current_exe().map_err(|e| format!("cannot find myself: {e}"))?;
    let mut results = Results {
        settings,
        date,
        machine: machine::Machine::probe(),
        load_before,
        load_after: String::new(),
        took: started.elapsed(),
        laps: Vec::new(),
        servers: servers.clone(),
        targets: target_notes,
        guards: None,
        guard_counts: None,
        serving: None,
        serving_counts: None,
        busy: None,
        idle: None,
        idle_keep_alive: None,
        scale: None,
        rollout: None,
        grpc: None,
        sse: None,
        h2load: None,
        tls: None,
        upgrades: None,
        notes: None,
    };
    let by_kind = |kinds: &[Kind]| -> Vec<&Spec> {
        servers.iter().filter(|s| kinds.contains(&s.kind)).collect()
    };
    let contenders = by_kind(&[Kind::Target, Kind::Peer]);
    // The TLS measurements' baselines: every plain server serves TLS with
    // `--tls CERT KEY`, each as its runtime's documentation teaches.
    let tls_baselines = || {
        by_kind(&[Kind::Plain])
            .into_iter()
            .filter(|s| TLS_RUNTIMES.contains(&s.runtime))
    };
    // One self-signed certificate for the run's TLS measurements.
    let material = if options.figures.contains(&2) || options.figures.contains(&11) {
        tls::Material::generate()
    } else {
        Err("not needed".to_owned())
    };

    // The instruction counts of figures 1 and 2 need valgrind.
    let valgrind = if options.figures.contains(&1) || options.figures.contains(&2) {
        callgrind::ensure_valgrind()
    } else {
        Ok(())
    };
    if let Err(error) = &valgrind {
        eprintln!("graceful-bench: {error}");
    }
    if options.figures.contains(&1) {
        laps.mark("figure 1");
        eprintln!(
            "graceful-bench: figure 1, guard cost in instructions (guard-ops under callgrind)"
        );
        results.guard_counts = Some(
            valgrind
                .clone()
                .and_then(|()| callgrind::guards(&built[GUARD_OPS], &settings.counts)),
        );
        if let Some(Err(error)) = &results.guard_counts {
            eprintln!("graceful-bench: {error}");
        }
        if !options.counts_only {
            eprintln!(
                "graceful-bench: figure 1, guard cost on the wall clock ({})",
                guards::command(options.quick)
            );
            results.guards = Some(guards::measure(options.quick));
            if let Some(Err(error)) = &results.guards {
                eprintln!("graceful-bench: {error}");
            }
        }
    }
    if options.figures.contains(&2) && !options.counts_only {
        laps.mark("figure 2, wall clock");
        eprintln!("graceful-bench: figure 2, serving overhead on the wall clock");
        let mut rows = Vec::new();
        // The minimal servers (the goal) first, then the targets and peers.
        let mut serving = by_kind(&[Kind::Minimal]);
        serving.extend(&contenders);
        for baseline in by_kind(&[Kind::Plain]) {
            let others: Vec<&Spec> = serving
                .iter()
                .copied()
                .filter(|s| s.runtime == baseline.runtime)
                .collect();
            rows.extend(serving::measure(
                baseline,
                &others,
                settings.rounds,
                &settings.load,
            ));
        }
        results.serving = Some(rows);
    }
    if options.figures.contains(&2) {
        laps.mark("figure 2, instructions");
        eprintln!("graceful-bench: figure 2, instructions per request under callgrind");
        results.serving_counts = Some(valgrind.clone().map(|()| {
            let mut rows = Vec::new();
            for baseline in by_kind(&[Kind::Plain]) {
                // The minimal server (the goal), then the target.
                let ours: Vec<&Spec> = [Kind::Minimal, Kind::Target]
                    .iter()
                    .flat_map(|kind| servers.iter().filter(move |s| s.kind == *kind))
                    .filter(|s| s.runtime == baseline.runtime)
                    .collect();
                rows.extend(callgrind::serving(
                    baseline,
                    &ours,
                    callgrind::Protocol::Http1,
                    &settings.counts,
                    None,
                ));
            }
            // h2c: each baseline against its -min server only (the pair the
            // goal is judged on), which keeps the quick run short.
            for baseline in by_kind(&[Kind::Plain]) {
                let ours: Vec<&Spec> = servers
                    .iter()
                    .filter(|s| s.kind == Kind::Minimal && s.runtime == baseline.runtime)
                    .collect();
                rows.extend(callgrind::serving(
                    baseline,
                    &ours,
                    callgrind::Protocol::H2c,
                    &settings.counts,
                    None,
                ));
            }
            // HTTP/1.1 over TLS: the same pairs, started with `--tls`, on
            // the runtimes whose baselines serve TLS.
            match &material {
                Ok(material) => {
                    for baseline in tls_baselines() {
                        let ours: Vec<Spec> = servers
                            .iter()
                            .filter(|s| s.kind == Kind::Minimal && s.runtime == baseline.runtime)
                            .map(|s| material.serving(s))
                            .collect();
                        let ours: Vec<&Spec> = ours.iter().collect();
                        rows.extend(callgrind::serving(
                            &material.serving(baseline),
                            &ours,
                            callgrind::Protocol::Tls,
                            &settings.counts,
                            Some(&material.http1),
                        ));
                    }
                }
                Err(error) => eprintln!("graceful-bench: no TLS rows: {error}"),
            }
            rows
        }));
    }
    if options.figures.contains(&3) {
        laps.mark("figure 3");
        eprintln!("graceful-bench: figure 3, exit latency after the last response");
        results.busy = Some(
            contenders
                .iter()
                .map(|spec| {
                    eprintln!("  {}", spec.name);
                    exit::after_last_response(spec, &settings.busy)
                })
                .collect(),
        );
    }
    if options.figures.contains(&4) {
        laps.mark("figure 4");
        eprintln!("graceful-bench: figure 4, idle exit latency");
        for keep_alive in [false, true] {
            let rows = contenders
                .iter()
                .map(|spec| {
                    eprintln!(
                        "  {}{}",
                        spec.name,
                        if keep_alive {
                            ", an idle keep-alive connection open"
                        } else {
                            ""
                        }
                    );
                    exit::idle(spec, &settings.idle, keep_alive)
                })
                .collect();
            if keep_alive {
                results.idle_keep_alive = Some(rows);
            } else {
                results.idle = Some(rows);
            }
        }
    }
    if options.figures.contains(&5) {
        laps.mark("figure 5");
        eprintln!(
            "graceful-bench: figure 5, scale ({} requests in flight)",
            settings.scale.connections
        );
        results.scale = Some(
            contenders
                .iter()
                .map(|spec| scale::measure(&runner, spec, &settings.scale))
                .collect(),
        );
    }
    if options.figures.contains(&6) {
        laps.mark("figure 6");
        eprintln!(
            "graceful-bench: figure 6, a rolling restart behind HAProxy (cargo xtask rollout --peers)"
        );
        results.rollout = Some(rollout::measure(options.quick));
        if let Some(Err(error)) = &results.rollout {
            eprintln!("graceful-bench: {error}");
        }
    }

    if options.figures.contains(&8) {
        laps.mark("figure 8");
        eprintln!(
            "graceful-bench: figure 8, SIGTERM to exit with a server-sent events stream open"
        );
        // Of the peers, axum's serves `/events` (its SSE example's stream).
        results.sse = Some(
            contenders
                .iter()
                .filter(|s| s.kind == Kind::Target || s.name == "axum")
                .map(|spec| {
                    eprintln!("  {}", spec.name);
                    exit::with_sse(spec, &settings.idle)
                })
                .collect(),
        );
    }
    if options.figures.contains(&7) {
        laps.mark("figure 7");
        eprintln!("graceful-bench: figure 7, gRPC against tonic alone");
        let grpc_specs: Vec<Spec> = GRPC_SERVERS
            .iter()
            .map(|(bin, name, kind, runtime, about)| Spec {
                name: (*name).to_owned(),
                about: (*about).to_owned(),
                kind: *kind,
                runtime,
                program: built[*bin].clone(),
                args: Vec::new(),
            })
            .collect();
        let ours = servers.iter().find(|s| s.name == "graceful-tokio");
        results.grpc = Some(match ours {
            Some(ours) => grpc::measure(
                ours,
                &grpc_specs[0],
                &grpc_specs[1],
                &grpc::Config::new(options.quick),
            ),
            None => Err("no tokio target, the one that serves gRPC".to_owned()),
        });
        if let Some(Err(error)) = &results.grpc {
            eprintln!("graceful-bench: {error}");
        }
        results.servers.extend(grpc_specs);
    }

    if options.figures.contains(&9) {
        laps.mark("figure 9");
        eprintln!("graceful-bench: figure 9, HTTP/2 under h2load against the same server alone");
        // Each runtime's baseline with graceful's target of that runtime,
        // as in figure 2: the peers are not in it.
        let groups: Vec<(&Spec, Vec<&Spec>)> = by_kind(&[Kind::Plain])
            .into_iter()
            .map(|baseline| {
                let ours = servers
                    .iter()
                    .filter(|s| s.kind == Kind::Target && s.runtime == baseline.runtime)
                    .collect();
                (baseline, ours)
            })
            .collect();
        results.h2load = Some(h2load::figure(&groups, &h2load::Config::new(options.quick)));
        if let Some(Err(error)) = &results.h2load {
            eprintln!("graceful-bench: {error}");
        }
    }
    if options.figures.contains(&11) {
        laps.mark("figure 11");
        eprintln!("graceful-bench: figure 11, TLS under h2load against the same server alone");
        results.tls = Some(match &material {
            Ok(material) => {
                let specs: Vec<(Spec, Vec<Spec>)> = tls_baselines()
                    .map(|baseline| {
                        let ours = servers
                            .iter()
                            .filter(|s| s.kind == Kind::Minimal && s.runtime == baseline.runtime)
                            .map(|s| material.serving(s))
                            .collect();
                        (material.serving(baseline), ours)
                    })
                    .collect();
                let groups: Vec<(&Spec, Vec<&Spec>)> = specs
                    .iter()
                    .map(|(baseline, ours)| (baseline, ours.iter().collect()))
                    .collect();
                Ok([h2load::Scheme::H2Tls, h2load::Scheme::H1Tls]
                    .into_iter()
                    .map(|scheme| {
                        let config = h2load::Config::tls(options.quick, scheme);
                        let figure = h2load::figure(&groups, &config);
                        if let Err(error) = &figure {
                            eprintln!("graceful-bench: {error}");
                        }
                        (config, figure)
                    })
                    .collect())
            }
            Err(error) => Err(error.clone()),
        });
    }
    if options.figures.contains(&10) {
        laps.mark("figure 10");
        eprintln!(
            "graceful-bench: figure 10, requests failed during 10 upgrades against 10 restarts"
        );
        results.upgrades = Some(upgrades::measure(
            &by_kind(&[Kind::Target]),
            &upgrades::Config::new(options.quick),
        ));
    }

    laps.end();
    results.laps = laps.into_spans();
    results.took = started.elapsed();
    results.load_after = machine::load_average();
    // Read at the end, so that the diagnoses are those beside this source.
    results.notes = std::fs::read_to_string(root.join("bench").join("NOTES.md")).ok();
    let chart = match chart::draw(&results, &svg_path) {
        Ok(()) => Some(relative_to(&svg_path, &markdown_path)),
        Err(error) => {
            eprintln!("graceful-bench: {error}");
            None
        }
    };
    let markdown = report::markdown(&results, chart.as_deref());
    std::fs::write(&markdown_path, &markdown)
        .map_err(|e| format!("cannot write {}: {e}", markdown_path.display()))?;
    println!("{markdown}");
    eprintln!(
        "graceful-bench: wrote {} and {} in {:.1} min",
        markdown_path.display(),
        svg_path.display(),
        results.took.as_secs_f64() / 60.0
    );
    Ok(())
}

/// How the markdown at `markdown` links to `file`: by name when they share
/// a directory.
fn relative_to(file: &Path, markdown: &Path) -> String {
    let same_dir = file.parent().map(Path::to_path_buf).unwrap_or_default()
        == markdown.parent().map(Path::to_path_buf).unwrap_or_default();
    match file.file_name() {
        Some(name) if same_dir => name.to_string_lossy().into_owned(),
        _ => file.display().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, String> {
        parse_options(&args.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn parses_the_command_line() {
        let o = parse(&[]).unwrap();
        assert!(!o.quick && !o.targets_given);
        assert_eq!(o.figures.len(), 11);
        let o = parse(&["--quick", "--figures", "1,3", "--target=tokio=/x/t"]).unwrap();
        assert!(o.quick && o.targets_given && !o.counts_only);
        assert!(parse(&["--counts-only"]).unwrap().counts_only);
        assert_eq!(o.figures.into_iter().collect::<Vec<_>>(), [1, 3]);
        assert_eq!(o.targets, [("tokio".to_owned(), PathBuf::from("/x/t"))]);
        assert_eq!(
            parse(&["--figures", "9,10"])
                .unwrap()
                .figures
                .into_iter()
                .collect::<Vec<_>>(),
            [9, 10]
        );
        assert!(parse(&["--figures", "12"]).is_err());
        assert!(parse(&["--figures", "0"]).is_err());
        assert!(parse(&["--target", "tokio"]).is_err());
        assert!(parse(&["--fast"]).is_err());
    }

    #[test]
    fn links_the_chart_by_name_beside_the_report() {
        assert_eq!(
            relative_to(Path::new("a/B.svg"), Path::new("a/B.md")),
            "B.svg"
        );
        assert_eq!(
            relative_to(Path::new("c/B.svg"), Path::new("a/B.md")),
            "c/B.svg"
        );
    }
}
