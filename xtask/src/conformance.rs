//! `cargo xtask conformance`: run the conformance kit against the targets.
//!
//! ```text
//! cargo xtask conformance [--adapter NAME]... [--scenario NAME]... [--json FILE]
//! ```
//!
//! Without `--adapter`, the targets of the three adapters are checked. The
//! adapter `fake` is the kit's own fake target (`graceful-conformance-fake`),
//! a thread-based server that follows the contract: `--adapter fake` shows
//! the kit working end to end on its own control.
//!
//! Everything selected is built first, by one release `cargo build` (see
//! [`targets`]); then each target runs every scenario in
//! turn, and a target that serves gRPC (the tokio target) the kit's gRPC
//! scenarios after them (`--scenario` takes their names too). Progress goes to standard error from the first second: a line
//! before the build, cargo's own output, a line per target, and a line per
//! scenario, its number and name when it starts and its verdict and time
//! when it ends. Standard output gets the table of scenarios × targets.
//! Exit code 0 when everything passed, 1 when something failed, 2 on a
//! usage error.
//!
//! A few scenarios are known to fail on one target ([`KNOWN_FAILURES`]),
//! each for a reason written beside it and tracked by an open issue: they
//! are shown in the table as failed, listed with their reason, and do not
//! fail the run. One of them that passes does, so that the list is
//! emptied as the gaps close and never hides a regression.

use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use graceful_conformance::{
    GrpcScenario, Scenario, ScenarioReport, Target, report, run_grpc_scenario, run_scenario,
};

use crate::Failure;
use crate::targets::{self, FAKE, KNOWN, Known};

/// A scenario a target is known to fail, and why.
#[derive(Debug, Clone, Copy)]
struct KnownFailure {
    target: &'static str,
    scenario: &'static str,
    why: &'static str,
}

/// The scenarios a target is known to fail (see the module's
/// documentation): none today. HTTP/2 on actix, the last entries, is
/// served by graceful-actix's own driver on the `h2` crate (issue 11).
const KNOWN_FAILURES: &[KnownFailure] = &[];

fn known_failure(target: &str, scenario: &str) -> Option<&'static KnownFailure> {
    KNOWN_FAILURES
        .iter()
        .find(|k| k.target == target && k.scenario == scenario)
}

#[derive(Debug, Default)]
struct Options {
    adapters: Vec<String>,
    scenarios: Vec<Scenario>,
    grpc_scenarios: Vec<GrpcScenario>,
    json: Option<PathBuf>,
}

/// One scenario of either table.
#[derive(Debug, Clone, Copy)]
enum Any {
    Http(Scenario),
    Grpc(GrpcScenario),
}

impl Any {
    fn name(self) -> &'static str {
        match self {
            Any::Http(s) => s.name(),
            Any::Grpc(s) => s.name(),
        }
    }

    fn run(self, target: &Target) -> ScenarioReport {
        match self {
            Any::Http(s) => run_scenario(target, s),
            Any::Grpc(s) => run_grpc_scenario(target, s),
        }
    }
}

fn parse(args: &[String]) -> Result<Options, Failure> {
    let mut options = Options::default();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f, Some(v.to_owned())),
            None => (arg.as_str(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next().cloned())
                .ok_or_else(|| Failure::usage(format!("{flag} needs a value")))
        };
        match flag {
            "--adapter" => options.adapters.push(value()?),
            "--scenario" => {
                let name = value()?;
                if let Some(scenario) = Scenario::from_name(&name) {
                    options.scenarios.push(scenario);
                } else if let Some(scenario) = GrpcScenario::all().iter().find(|s| s.name() == name)
                {
                    options.grpc_scenarios.push(*scenario);
                } else {
                    return Err(Failure::usage(format!(
                        "unknown scenario {name:?}; known: {}",
                        Scenario::all()
                            .iter()
                            .map(|s| s.name())
                            .chain(GrpcScenario::all().iter().map(|s| s.name()))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
            }
            "--json" => options.json = Some(PathBuf::from(value()?)),
            _ => {
                return Err(Failure::usage(format!(
                    "unknown argument {arg:?}; usage: cargo xtask conformance [--adapter NAME]... [--scenario NAME]... [--json FILE]"
                )));
            }
        }
    }
    Ok(options)
}

fn adapter_names() -> String {
    let mut names: Vec<&str> = KNOWN.iter().map(|k| k.name).collect();
    names.push(FAKE.name);
    names.join(", ")
}

/// What `adapters` names (every adapter's target when it names none), in
/// the order given, each once.
fn select(adapters: &[String]) -> Result<Vec<Known>, Failure> {
    if adapters.is_empty() {
        return Ok(KNOWN.to_vec());
    }
    let mut selected: Vec<Known> = Vec::new();
    for name in adapters {
        let k = KNOWN
            .iter()
            .chain([&FAKE])
            .find(|k| k.name == name)
            .ok_or_else(|| {
                Failure::usage(format!(
                    "unknown adapter {name:?}; known: {}",
                    adapter_names()
                ))
            })?;
        if !selected.contains(k) {
            selected.push(*k);
        }
    }
    Ok(selected)
}

/// Runs `scenarios` against `target`, with a line per scenario on standard
/// error: its number and name when it starts, its verdict and time when it
/// ends.
fn check(target: &Target, scenarios: &[Any]) -> Vec<ScenarioReport> {
    let width = scenarios.len().to_string().len();
    scenarios
        .iter()
        .enumerate()
        .map(|(i, scenario)| {
            eprint!(
                "  [{:>width$}/{}] {:<44} ",
                i + 1,
                scenarios.len(),
                scenario.name()
            );
            let _ = std::io::stderr().flush();
            let report = scenario.run(target);
            eprintln!(
                "{} ({:.1} s)",
                report.verdict(),
                report.elapsed.as_secs_f64()
            );
            report
        })
        .collect()
}

#[allow(clippy::print_stdout)]
pub(crate) fn run(args: &[String]) -> Result<(), Failure> {
    let started = Instant::now();
    let options = parse(args)?;
    let everything = options.scenarios.is_empty() && options.grpc_scenarios.is_empty();
    let scenarios: Vec<Any> = if everything {
        Scenario::all().iter().copied().map(Any::Http).collect()
    } else {
        options.scenarios.iter().copied().map(Any::Http).collect()
    };
    let grpc: Vec<Any> = if everything {
        GrpcScenario::all().iter().copied().map(Any::Grpc).collect()
    } else {
        options
            .grpc_scenarios
            .iter()
            .copied()
            .map(Any::Grpc)
            .collect()
    };
    let selected = select(&options.adapters)?;
    let names: Vec<&str> = selected.iter().map(|k| k.name).collect();
    eprintln!(
        "xtask: conformance: {} scenario(s) on {}{}; building first",
        scenarios.len(),
        names.join(", "),
        if grpc.is_empty() {
            String::new()
        } else {
            format!(
                ", and {} gRPC scenario(s) on those that serve gRPC",
                grpc.len()
            )
        }
    );
    let built = targets::build(&selected)?;
    let mut runs: Vec<(String, Vec<ScenarioReport>)> = Vec::new();
    for (i, (b, k)) in built.iter().zip(&selected).enumerate() {
        let target = Target::new(b.name.clone(), &b.path);
        let mut scenarios = scenarios.clone();
        if k.grpc {
            scenarios.extend(&grpc);
        }
        eprintln!(
            "xtask: checking {} ({}/{}): {}",
            b.name,
            i + 1,
            built.len(),
            b.path.display()
        );
        runs.push((b.name.clone(), check(&target, &scenarios)));
    }
    print!("{}", report::matrix(&runs));
    if let Some(path) = &options.json {
        let text = serde_json::to_string_pretty(&report::to_json(&runs))
            .map_err(|e| Failure::failed(format!("JSON: {e}")))?;
        fs::write(path, text + "\n")
            .map_err(|e| Failure::failed(format!("writing {}: {e}", path.display())))?;
    }
    let mut failed = 0;
    let mut known = Vec::new();
    let mut fixed = Vec::new();
    for (target, reports) in &runs {
        for r in reports {
            match (r.passed, known_failure(target, r.name)) {
                (false, Some(k)) => known.push(k),
                (false, None) => failed += 1,
                (true, Some(k)) => fixed.push(k),
                (true, None) => {}
            }
        }
    }
    if !known.is_empty() {
        println!(
            "\nknown failures, which do not fail the run ({}):",
            known.len()
        );
        for k in &known {
            println!("  {} {}: {}", k.target, k.scenario, k.why);
        }
    }
    for k in &fixed {
        println!(
            "\n{} {} passed but is listed as a known failure ({}): take it off the list",
            k.target, k.scenario, k.why
        );
    }
    eprintln!(
        "xtask: conformance done in {:.0} s, {failed} scenario run(s) failed, {} known failure(s), {} known failure(s) passed",
        started.elapsed().as_secs_f64(),
        known.len(),
        fixed.len()
    );
    if failed == 0 && fixed.is_empty() {
        Ok(())
    } else {
        Err(Failure::failed(format!(
            "{failed} scenario run(s) failed, {} known failure(s) passed",
            fixed.len()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn every_known_failure_names_a_target_and_a_scenario() {
        for k in KNOWN_FAILURES {
            assert!(KNOWN.iter().any(|t| t.name == k.target), "{k:?}");
            let exists = Scenario::from_name(k.scenario).is_some()
                || GrpcScenario::all().iter().any(|s| s.name() == k.scenario);
            assert!(exists, "{k:?}");
            assert!(!k.why.is_empty(), "{k:?}");
        }
        assert!(known_failure("actix", "h2c-served").is_none());
        assert!(known_failure("tokio", "h2c-served").is_none());
    }

    #[test]
    fn parses_repeated_options() {
        let o = parse(&strings(&[
            "--adapter",
            "fake",
            "--adapter=tokio",
            "--scenario",
            "idle-exit-fast",
            "--json",
            "out.json",
        ]))
        .unwrap();
        assert_eq!(o.adapters, ["fake", "tokio"]);
        assert_eq!(o.scenarios, [Scenario::IdleExitFast]);
        assert_eq!(o.json, Some(PathBuf::from("out.json")));
    }

    #[test]
    fn usage_errors_are_code_2() {
        for args in [
            &["--scenario", "nope"][..],
            &["--adapter"][..],
            &["--frobnicate"][..],
        ] {
            let err = parse(&strings(args)).unwrap_err();
            assert_eq!(err.code, 2, "{args:?}: {}", err.message);
        }
    }

    #[test]
    fn unknown_adapter_is_code_2_and_builds_nothing() {
        let err = run(&strings(&["--adapter", "nope"])).unwrap_err();
        assert_eq!(err.code, 2);
        assert!(err.message.contains("unknown adapter"), "{}", err.message);
        assert!(err.message.contains("fake"), "{}", err.message);
    }

    #[test]
    fn adapters_are_selected_in_order_once() {
        let all: Vec<&str> = select(&[]).unwrap().iter().map(|k| k.name).collect();
        assert_eq!(all, ["tokio", "smol", "actix"]);
        let some = select(&strings(&["fake", "actix", "fake"])).unwrap();
        assert_eq!(some, [FAKE, KNOWN[2]]);
    }
}
