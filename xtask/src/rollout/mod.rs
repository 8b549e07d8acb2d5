//! `cargo xtask rollout`: a rolling restart of a target's instances behind
//! a real load balancer, under steady load, and what the clients saw.
//!
//! For each adapter and each load balancer: N instances of the adapter's
//! conformance target (each with its own SQLite store), HAProxy or nginx
//! in front of them with the configuration of `deploy/`, keep-alive clients
//! through the balancer (reads, `POST /orders` and, when the target serves
//! them, `POST /jobs`), then every instance restarted in turn: `SIGTERM`,
//! wait for its exit, start its replacement on the same port, wait until
//! the balancer routes to it again. The report counts the requests, the
//! failures by what the client saw (reset, EOF, a proxy's `502`/`503`/
//! `504`, ...), the orders and jobs whose rows are missing although their
//! answer came (lost work), those committed whose answer never came (lost
//! answers), and each restarted instance's exit code and drain time.
//!
//! The goal is zero of every kind of failure; the exit status is 1 when any
//! count is not zero or an instance did not exit with 0.
//!
//! `--peers` runs the same rollout, after the adapters' targets, with the
//! benchmark's peers (axum's `with_graceful_shutdown`,
//! tokio-graceful-shutdown, actix-web's built-in shutdown, each written the
//! way its documentation teaches): the comparison a user makes. A peer has
//! no readiness endpoint, no store and no unready delay, so the balancer
//! checks `/health/live`, its clients send reads and orders (which a peer
//! answers `201` with no store behind it: the failures count, lost work
//! cannot be told), and its figures are reported, never making the exit
//! status 1.

mod balancer;
mod load;

use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use graceful_conformance::process::Process;
use graceful_conformance::{Signal, Target};

use crate::targets::{self, FAKE, KNOWN, Known};
use crate::{Failure, cargo};
use balancer::{Balancer, Kind};
use load::{Load, Mix, Tally};

const USAGE: &str = "usage: cargo xtask rollout [--adapter NAME]... \
[--lb haproxy|nginx|haproxy-no-retries]... \
[--instances N] [--clients N] [--unready-delay-ms N] [--replace-delay-ms N] [--controls] [--peers] \
[--json PATH]";

/// The unready delay of the instances: longer than HAProxy's detection
/// time with `deploy/haproxy/haproxy.cfg` (`inter 1s fall 2`: 2 s), with
/// 1 s of margin. The file explains the numbers.
const UNREADY_DELAY_MS: u64 = 3_000;

/// How long one read or order takes on the server.
const WORK_MS: u64 = 20;

/// How long an order takes in the controls that cut work off: long enough
/// that every instance has several orders past their commit (at half the
/// time) and before their answer when it is stopped.
const CONTROL_WORK_MS: u64 = 400;

#[derive(Debug)]
struct Options {
    adapters: Vec<Known>,
    balancers: Vec<Kind>,
    instances: usize,
    clients: usize,
    unready_delay_ms: u64,
    /// How long after an instance's exit its replacement starts: 0 for a
    /// process restarted in place, more for a replacement that takes time
    /// to come (a pod scheduled elsewhere), while the balancer still has
    /// the old address in its pool.
    replace_delay_ms: u64,
    controls: bool,
    peers: bool,
    /// Where to write the outcomes as JSON, besides the table.
    json: Option<PathBuf>,
}

/// The benchmark's peers (`bench/src/bin/`), run by `--peers`.
const PEERS: &[Known] = &[
    Known {
        name: "axum",
        package: "graceful-bench",
        bin: "peer-axum",
        grpc: false,
    },
    Known {
        name: "tokio-graceful-shutdown",
        package: "graceful-bench",
        bin: "peer-tokio-graceful-shutdown",
        grpc: false,
    },
    Known {
        name: "actix-web",
        package: "graceful-bench",
        bin: "peer-actix",
        grpc: false,
    },
];

/// What a rollout runs: a target of the contract, or a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// A target of the contract (an adapter's, or the fake): readiness,
    /// a store, the unready delay, the whole mix.
    Target,
    /// A peer: `--addr` only, checked on `/health/live`, reads and orders
    /// with no store.
    Peer,
}

impl Role {
    /// The path the balancer's health checks ask for.
    fn health(self) -> &'static str {
        match self {
            Role::Target => "/health/ready",
            Role::Peer => "/health/live",
        }
    }
}

fn number(flag: &str, value: Option<&String>, min: usize) -> Result<usize, Failure> {
    let value = value.ok_or_else(|| Failure::usage(format!("{flag} needs a value\n{USAGE}")))?;
    match value.parse::<usize>() {
        Ok(n) if n >= min => Ok(n),
        _ => Err(Failure::usage(format!(
            "{flag} takes a whole number of at least {min} (got {value:?})\n{USAGE}"
        ))),
    }
}

fn parse(args: &[String]) -> Result<Options, Failure> {
    let mut options = Options {
        adapters: Vec::new(),
        balancers: Vec::new(),
        instances: 2,
        clients: 8,
        unready_delay_ms: UNREADY_DELAY_MS,
        replace_delay_ms: 0,
        controls: false,
        peers: false,
        json: None,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--adapter" => {
                let name = args.next().ok_or_else(|| Failure::usage(USAGE))?;
                let known = KNOWN.iter().find(|k| k.name == name).ok_or_else(|| {
                    let names: Vec<&str> = KNOWN.iter().map(|k| k.name).collect();
                    Failure::usage(format!(
                        "unknown adapter {name:?}; known: {}",
                        names.join(", ")
                    ))
                })?;
                if !options.adapters.contains(known) {
                    options.adapters.push(*known);
                }
            }
            "--lb" => {
                let name = args.next().ok_or_else(|| Failure::usage(USAGE))?;
                let kind = Kind::parse(name).ok_or_else(|| {
                    Failure::usage(format!(
                        "unknown load balancer {name:?}; known: haproxy, nginx, haproxy-no-retries"
                    ))
                })?;
                if !options.balancers.contains(&kind) {
                    options.balancers.push(kind);
                }
            }
            "--instances" => options.instances = number(arg, args.next(), 2)?,
            "--clients" => options.clients = number(arg, args.next(), 1)?,
            "--controls" => options.controls = true,
            "--peers" => options.peers = true,
            "--json" => {
                let path = args
                    .next()
                    .ok_or_else(|| Failure::usage(format!("--json needs a file path\n{USAGE}")))?;
                options.json = Some(PathBuf::from(path));
            }
            "--unready-delay-ms" => {
                options.unready_delay_ms = number(arg, args.next(), 0)? as u64;
            }
            "--replace-delay-ms" => {
                options.replace_delay_ms = number(arg, args.next(), 0)? as u64;
            }
            other => {
                return Err(Failure::usage(format!(
                    "unknown argument {other:?}\n{USAGE}"
                )));
            }
        }
    }
    if options.controls && options.peers {
        return Err(Failure::usage(format!(
            "--controls and --peers do not go together\n{USAGE}"
        )));
    }
    if options.adapters.is_empty() {
        options.adapters = KNOWN.to_vec();
    }
    if options.balancers.is_empty() {
        options.balancers = Kind::ALL.to_vec();
    }
    Ok(options)
}

/// One instance's restart.
#[derive(Debug)]
struct Restart {
    /// How it exited.
    exit: String,
    /// Whether it exited with 0.
    clean: bool,
    /// From its `SIGTERM` to its exit.
    drain: Duration,
    /// From its replacement's start to the balancer routing to it.
    back_in: Duration,
}

/// One rollout's results.
#[derive(Debug)]
struct Outcome {
    adapter: String,
    role: Role,
    balancer: Kind,
    tally: Tally,
    jobs: bool,
    orders_lost: usize,
    order_answers_lost: usize,
    /// Orders or jobs stored by two instances: processed twice.
    duplicated: usize,
    jobs_lost: usize,
    job_answers_lost: usize,
    restarts: Vec<Restart>,
    final_exits_clean: bool,
    /// What the balancer wrote on standard error.
    balancer_log: String,
    took: Duration,
}

impl Outcome {
    fn passed(&self) -> bool {
        self.tally.failures() == 0
            && self.orders_lost == 0
            && self.order_answers_lost == 0
            && self.duplicated == 0
            && self.jobs_lost == 0
            && self.job_answers_lost == 0
            && self.restarts.iter().all(|r| r.clean)
            && self.final_exits_clean
    }
}

/// Free ports on 127.0.0.1, bound at once and released together so that
/// they differ. Another program could take one in between; on loopback of
/// a build box that does not happen in practice, and the start would then
/// fail with the target's own "address in use" error.
fn free_addrs(n: usize) -> Result<Vec<SocketAddr>, Failure> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<_, _>>()
        .map_err(|e| Failure::failed(format!("cannot find a free port: {e}")))?;
    listeners
        .iter()
        .map(|l| l.local_addr())
        .collect::<Result<_, _>>()
        .map_err(|e| Failure::failed(format!("cannot read a port: {e}")))
}

/// An instance of the target, on `addr`, writing to `store` (a peer: on
/// `addr`, with no other option).
fn start_instance(
    target: &Target,
    role: Role,
    addr: SocketAddr,
    store: &Path,
    unready_delay_ms: u64,
) -> Result<Process, Failure> {
    let mut args = vec!["--addr".to_owned(), addr.to_string()];
    if role == Role::Target {
        args.extend([
            "--unready-delay-ms".to_owned(),
            unready_delay_ms.to_string(),
            "--drain-timeout-ms".to_owned(),
            "20000".to_owned(),
            "--store".to_owned(),
            store.display().to_string(),
        ]);
    }
    let mut process = Process::spawn(target, &args)
        .map_err(|e| Failure::failed(format!("cannot start {}: {e}", target.name)))?;
    process
        .wait_listening(Duration::from_secs(15))
        .map_err(|e| Failure::failed(format!("{} on {addr} did not start: {e}", target.name)))?;
    Ok(process)
}

/// Whether the target serves `POST /jobs` (contract v2): a probe job sent
/// straight to one instance.
fn serves_jobs(addr: SocketAddr) -> bool {
    let req = graceful_conformance::http::Request::post("/jobs?ms=1", "rollout-probe");
    graceful_conformance::http::request(addr, &req, Duration::from_secs(5)).status() == Some(202)
}

/// The ids in `table` of every store, and how many of them more than one
/// store holds (work done twice: a retry of work that had been done).
fn stored(stores: &[PathBuf], table: &str) -> Result<(BTreeSet<String>, usize), Failure> {
    let mut ids = BTreeSet::new();
    let mut twice = 0;
    for path in stores {
        let db = rusqlite::Connection::open(path)
            .map_err(|e| Failure::failed(format!("cannot open {}: {e}", path.display())))?;
        let mut stmt = db
            .prepare(&format!("SELECT id FROM {table}"))
            .map_err(|e| Failure::failed(format!("{}: {e}", path.display())))?;
        let rows = stmt
            .query_map([], |row| row.get::<_, String>(0))
            .map_err(|e| Failure::failed(format!("{}: {e}", path.display())))?;
        for id in rows {
            let id = id.map_err(|e| Failure::failed(format!("{}: {e}", path.display())))?;
            if id != "rollout-probe" && !ids.insert(id) {
                twice += 1;
            }
        }
    }
    Ok((ids, twice))
}

/// (answered but not stored, stored but not answered).
fn compare(answered: &[String], stored: &BTreeSet<String>) -> (usize, usize) {
    let answered: BTreeSet<&str> = answered.iter().map(String::as_str).collect();
    let lost = answered.iter().filter(|id| !stored.contains(**id)).count();
    let unanswered = stored
        .iter()
        .filter(|id| !answered.contains(id.as_str()))
        .count();
    (lost, unanswered)
}

fn rollout(
    target: &Target,
    role: Role,
    kind: Kind,
    lb: &Path,
    options: &Options,
    orders_only: bool,
) -> Result<Outcome, Failure> {
    let started = Instant::now();
    let name = target.name.as_str();
    let dir = cargo::target_dir()?
        .join("rollout")
        .join(format!("{name}-{}", kind.name()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .map_err(|e| Failure::failed(format!("cannot clear {}: {e}", dir.display())))?;
    }
    std::fs::create_dir_all(&dir)
        .map_err(|e| Failure::failed(format!("cannot create {}: {e}", dir.display())))?;
    let addrs = free_addrs(options.instances + 1)?;
    let (listen, backends) = (addrs[0], &addrs[1..]);
    let stores: Vec<PathBuf> = (1..=options.instances)
        .map(|n| dir.join(format!("store-{n}.db")))
        .collect();
    let mut instances = Vec::new();
    for (addr, store) in backends.iter().zip(&stores) {
        instances.push(start_instance(
            target,
            role,
            *addr,
            store,
            options.unready_delay_ms,
        )?);
    }
    let jobs = role == Role::Target && serves_jobs(backends[0]);
    let balancer = Balancer::start(
        kind,
        lb,
        listen,
        backends,
        role.health(),
        &dir.join(kind.name()),
    )?;
    for n in 1..=options.instances {
        balancer.wait_routes_to(n, Duration::from_secs(15))?;
    }
    eprintln!(
        "xtask: {name} x{} behind {} on {listen}, {} clients{}",
        options.instances,
        kind.name(),
        options.clients,
        match (role, jobs) {
            (Role::Peer, _) => " (a peer: reads and orders, no store)",
            (Role::Target, true) => "",
            (Role::Target, false) => " (no /jobs: not served)",
        }
    );
    let mix = Mix {
        work_ms: if orders_only {
            CONTROL_WORK_MS
        } else {
            WORK_MS
        },
        jobs,
        orders_only,
        no_jobs: role == Role::Peer,
    };
    let load = Load::start(listen, options.clients, mix);
    std::thread::sleep(Duration::from_secs(2));
    let mut restarts = Vec::new();
    let exit_within = Duration::from_millis(options.unready_delay_ms) + Duration::from_secs(30);
    for n in 1..=options.instances {
        let i = n - 1;
        let signalled = instances[i]
            .send(Signal::Term)
            .map_err(|e| Failure::failed(format!("cannot signal instance {n}: {e}")))?;
        let exit = instances[i].wait_exit(exit_within).ok_or_else(|| {
            Failure::failed(format!("instance {n} did not exit within {exit_within:?}"))
        })?;
        std::thread::sleep(Duration::from_millis(options.replace_delay_ms));
        let replaced = Instant::now();
        instances[i] = start_instance(
            target,
            role,
            backends[i],
            &stores[i],
            options.unready_delay_ms,
        )?;
        balancer.wait_routes_to(n, Duration::from_secs(15))?;
        let restart = Restart {
            exit: exit.describe(),
            clean: exit.status.code() == Some(0),
            drain: exit.at.saturating_duration_since(signalled),
            back_in: replaced.elapsed(),
        };
        eprintln!(
            "xtask:   instance {n}: {} after {:.2} s; replacement routed to after {:.2} s",
            restart.exit,
            restart.drain.as_secs_f64(),
            restart.back_in.as_secs_f64()
        );
        restarts.push(restart);
        std::thread::sleep(Duration::from_secs(1));
    }
    std::thread::sleep(Duration::from_secs(2));
    let tally = load.finish();
    let balancer_log = balancer.stderr();
    drop(balancer);
    let mut final_exits_clean = true;
    for (n, instance) in instances.iter_mut().enumerate() {
        let _ = instance.send(Signal::Term);
        let exit = instance.wait_exit(exit_within);
        if exit.and_then(|e| e.status.code()) != Some(0) {
            eprintln!(
                "xtask:   instance {} at the end: {}",
                n + 1,
                exit.map_or("did not exit".to_owned(), |e| e.describe())
            );
            final_exits_clean = false;
        }
    }
    // A peer has no store: its lost work cannot be counted (shown as `-`).
    let lost = match role {
        Role::Target => lost_work(&stores, &tally, jobs)?,
        Role::Peer => Lost::default(),
    };
    Ok(Outcome {
        adapter: name.to_owned(),
        role,
        balancer: kind,
        tally,
        jobs,
        orders_lost: lost.orders,
        order_answers_lost: lost.order_answers,
        duplicated: lost.duplicated,
        jobs_lost: lost.jobs,
        job_answers_lost: lost.job_answers,
        restarts,
        final_exits_clean,
        balancer_log,
        took: started.elapsed(),
    })
}

/// What the stores say of the work the clients were answered for.
#[derive(Debug, Default)]
struct Lost {
    /// Orders answered `201` with no row.
    orders: usize,
    /// Order rows whose answer never came.
    order_answers: usize,
    /// Jobs answered `202` with no row.
    jobs: usize,
    /// Job rows whose answer never came.
    job_answers: usize,
    /// Ids stored by two instances.
    duplicated: usize,
}

/// Reads `stores` against what `tally` was answered (jobs only when the
/// target serves them).
fn lost_work(stores: &[PathBuf], tally: &Tally, jobs: bool) -> Result<Lost, Failure> {
    let (orders, mut duplicated) = stored(stores, "orders")?;
    let (orders_lost, order_answers) = compare(&tally.orders_answered, &orders);
    let (jobs_lost, job_answers) = if jobs {
        let (jobs, twice) = stored(stores, "jobs")?;
        duplicated += twice;
        compare(&tally.jobs_answered, &jobs)
    } else {
        (0, 0)
    };
    Ok(Lost {
        orders: orders_lost,
        order_answers,
        jobs: jobs_lost,
        job_answers,
        duplicated,
    })
}

#[allow(clippy::print_stdout)]
fn print(outcomes: &[Outcome]) {
    println!(
        "{:<12} {:<8} {:>8} {:>7} {:>7} {:>5} {:>6} {:>9} {:>5}  failures by kind; restarts",
        "adapter", "lb", "requests", "failed", "orders", "jobs", "lost", "no answer", "twice"
    );
    for o in outcomes {
        let failures: Vec<String> = o
            .tally
            .failed
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        let restarts: Vec<String> = o
            .restarts
            .iter()
            .map(|r| format!("{} in {:.1} s", r.exit, r.drain.as_secs_f64()))
            .collect();
        let orders = o.tally.orders_answered.len();
        let jobs = if o.jobs {
            o.tally.jobs_answered.len().to_string()
        } else {
            "-".to_owned()
        };
        // A peer has no store: its lost work cannot be counted.
        let (name, lost, unanswered, twice) = match o.role {
            Role::Target => (
                o.adapter.clone(),
                (o.orders_lost + o.jobs_lost).to_string(),
                (o.order_answers_lost + o.job_answers_lost).to_string(),
                o.duplicated.to_string(),
            ),
            Role::Peer => (
                format!("{} (peer)", o.adapter),
                "-".to_owned(),
                "-".to_owned(),
                "-".to_owned(),
            ),
        };
        let verdict = match (o.role, o.passed()) {
            (Role::Peer, _) => "",
            (Role::Target, true) => "PASS",
            (Role::Target, false) => "FAIL",
        };
        println!(
            "{:<12} {:<8} {:>8} {:>7} {:>7} {:>5} {:>6} {:>9} {:>5}  {}; {} ({:.0} s) {}",
            name,
            o.balancer.name(),
            o.tally.requests(),
            o.tally.failures(),
            orders,
            jobs,
            lost,
            unanswered,
            twice,
            if failures.is_empty() {
                "none".to_owned()
            } else {
                failures.join(", ")
            },
            restarts.join(", "),
            o.took.as_secs_f64(),
            verdict
        );
        for example in o.tally.examples.values() {
            println!("        e.g. {example}");
        }
        if o.role == Role::Target && !o.passed() {
            let log: Vec<&str> = o.balancer_log.lines().rev().take(10).collect();
            for line in log.into_iter().rev() {
                println!("        {}: {line}", o.balancer.name());
            }
        }
    }
}

/// The outcomes as JSON, for the benchmark's report: the settings, then one
/// object per rollout (`null` where a peer's lost work cannot be counted).
fn to_json(options: &Options, outcomes: &[Outcome]) -> serde_json::Value {
    use serde_json::json;
    let rows: Vec<serde_json::Value> = outcomes
        .iter()
        .map(|o| {
            let counted = |n: usize| match o.role {
                Role::Target => json!(n),
                Role::Peer => serde_json::Value::Null,
            };
            json!({
                "server": o.adapter,
                "role": match o.role { Role::Target => "target", Role::Peer => "peer" },
                "lb": o.balancer.name(),
                "requests": o.tally.requests(),
                "failed": o.tally.failures(),
                "failures": o.tally.failed,
                "orders": o.tally.orders_answered.len(),
                "jobs": o.jobs.then_some(o.tally.jobs_answered.len()),
                "lost": counted(o.orders_lost + o.jobs_lost),
                "unanswered": counted(o.order_answers_lost + o.job_answers_lost),
                "twice": counted(o.duplicated),
                "restarts": o.restarts.iter().map(|r| json!({
                    "exit": r.exit,
                    "clean": r.clean,
                    "drain_s": r.drain.as_secs_f64(),
                })).collect::<Vec<_>>(),
                "passed": o.role == Role::Target && o.passed(),
                "took_s": o.took.as_secs_f64(),
            })
        })
        .collect();
    json!({
        "instances": options.instances,
        "clients": options.clients,
        "unready_delay_ms": options.unready_delay_ms,
        "replace_delay_ms": options.replace_delay_ms,
        "work_ms": WORK_MS,
        "rollouts": rows,
    })
}

/// A control: the fake target with `fault` (none: it follows the rules),
/// and what its rollout must show.
struct Control {
    fault: Option<&'static str>,
    /// Orders only, slow ones: see [`Mix::orders_only`].
    orders_only: bool,
    /// Whether the outcome shows what the control is for.
    shows: fn(&Outcome) -> bool,
    expected: &'static str,
}

/// The rollout's own controls: it passes a server that follows the rules,
/// and it catches one that cuts requests off or loses orders.
const CONTROLS: &[Control] = &[
    Control {
        fault: None,
        orders_only: false,
        shows: Outcome::passed,
        expected: "to pass",
    },
    Control {
        fault: Some("exit-at-once"),
        orders_only: true,
        shows: |o| o.tally.failures() + o.order_answers_lost + o.duplicated > 0,
        expected: "failed requests, lost answers or work done twice",
    },
    Control {
        fault: Some("skip-commit"),
        orders_only: false,
        shows: |o| o.orders_lost > 0,
        expected: "lost orders",
    },
];

pub(crate) fn run(args: &[String]) -> Result<(), Failure> {
    let options = parse(args)?;
    let mut programs = Vec::new();
    for kind in &options.balancers {
        programs.push((*kind, balancer::ensure_installed(*kind)?));
    }
    let mut runs: Vec<(Target, Role, Option<&Control>)> = Vec::new();
    if options.controls {
        let fake = targets::build(&[FAKE])?.remove(0);
        for control in CONTROLS {
            let mut target = Target::new("fake", &fake.path);
            if let Some(fault) = control.fault {
                target = Target::new(fault, &fake.path).arg("--fault").arg(fault);
            }
            runs.push((target, Role::Target, Some(control)));
        }
    } else {
        let mut known = options.adapters.clone();
        if options.peers {
            known.extend_from_slice(PEERS);
        }
        for (built, k) in targets::build(&known)?.into_iter().zip(&known) {
            let role = if PEERS.contains(k) {
                Role::Peer
            } else {
                Role::Target
            };
            runs.push((Target::new(built.name, built.path), role, None));
        }
    }
    let mut outcomes = Vec::new();
    let mut broken = Vec::new();
    for (target, role, control) in &runs {
        for (kind, program) in &programs {
            let orders_only = control.is_some_and(|c| c.orders_only);
            let outcome = rollout(target, *role, *kind, program, &options, orders_only)?;
            match control {
                None if *role == Role::Target && !outcome.passed() => broken.push(format!(
                    "{} behind {}: failed requests, lost work or an unclean exit",
                    outcome.adapter,
                    kind.name()
                )),
                Some(c) if !(c.shows)(&outcome) => broken.push(format!(
                    "control {} behind {}: expected {}",
                    outcome.adapter,
                    kind.name(),
                    c.expected
                )),
                _ => {}
            }
            outcomes.push(outcome);
        }
    }
    print(&outcomes);
    if let Some(path) = &options.json {
        let text = serde_json::to_string_pretty(&to_json(&options, &outcomes))
            .map_err(|e| Failure::failed(format!("cannot encode the outcomes: {e}")))?;
        std::fs::write(path, text + "\n")
            .map_err(|e| Failure::failed(format!("cannot write {}: {e}", path.display())))?;
    }
    if broken.is_empty() {
        Ok(())
    } else {
        Err(Failure::failed(broken.join("; ")))
    }
}
