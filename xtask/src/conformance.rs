//! `cargo xtask conformance`: run the conformance kit against the targets.
//!
//! ```text
//! cargo xtask conformance [--adapter NAME]... [--scenario NAME]... [--json FILE]
//! ```
//!
//! Without `--adapter`, every adapter that ships a target is checked. The
//! adapter `fake` is the kit's own fake target (`graceful-conformance-fake`),
//! a thread-based server that follows the contract: `--adapter fake` shows
//! the kit working end to end, before any adapter ships a target. Prints a
//! table of scenarios × targets; exit code 0 when everything passed, 1 when
//! something failed, 2 on a usage error or when there is nothing to check.

use std::fs;
use std::path::PathBuf;

use graceful_conformance::{Scenario, ScenarioReport, Target, report, run_scenarios};

use crate::targets::{self, Built, KNOWN};
use crate::{Failure, cargo};

const FAKE: &str = "fake";

#[derive(Debug, Default)]
struct Options {
    adapters: Vec<String>,
    scenarios: Vec<Scenario>,
    json: Option<PathBuf>,
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
                let scenario = Scenario::from_name(&name).ok_or_else(|| {
                    Failure::usage(format!(
                        "unknown scenario {name:?}; known: {}",
                        Scenario::all()
                            .iter()
                            .map(|s| s.name())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })?;
                options.scenarios.push(scenario);
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
    names.push(FAKE);
    names.join(", ")
}

/// Builds what `adapters` names (or every existing target).
fn build(adapters: &[String]) -> Result<Vec<Built>, Failure> {
    if adapters.is_empty() {
        let existing = targets::existing();
        if existing.is_empty() {
            return Err(Failure::usage(format!(
                "no conformance target exists yet (looked for {}); \
                 `cargo xtask conformance --adapter fake` runs the kit against its fake target",
                KNOWN
                    .iter()
                    .map(targets::Known::source)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        return targets::build(&existing);
    }
    let mut known = Vec::new();
    let mut fake = false;
    for name in adapters {
        if name == FAKE {
            fake = true;
            continue;
        }
        let k = KNOWN.iter().find(|k| k.name == name).ok_or_else(|| {
            Failure::usage(format!(
                "unknown adapter {name:?}; known: {}",
                adapter_names()
            ))
        })?;
        if !k.exists() {
            return Err(Failure::usage(format!(
                "adapter {name} has no conformance target yet ({} is missing)",
                k.source()
            )));
        }
        if !known.contains(k) {
            known.push(*k);
        }
    }
    let mut built = targets::build(&known)?;
    if fake {
        built.push(build_fake()?);
    }
    Ok(built)
}

fn build_fake() -> Result<Built, Failure> {
    let bin = "graceful-conformance-fake";
    cargo::run(&[
        "build",
        "--release",
        "--package",
        "graceful-conformance",
        "--bin",
        bin,
    ])?;
    let path = cargo::target_dir()?
        .join("release")
        .join(format!("{bin}{}", std::env::consts::EXE_SUFFIX));
    if !path.is_file() {
        return Err(Failure::failed(format!(
            "built {bin} but found no executable at {}",
            path.display()
        )));
    }
    Ok(Built {
        name: FAKE.to_owned(),
        path,
    })
}

#[allow(clippy::print_stdout)]
pub(crate) fn run(args: &[String]) -> Result<(), Failure> {
    let options = parse(args)?;
    let scenarios = if options.scenarios.is_empty() {
        Scenario::all().to_vec()
    } else {
        options.scenarios.clone()
    };
    let built = build(&options.adapters)?;
    let mut runs: Vec<(String, Vec<ScenarioReport>)> = Vec::new();
    for b in &built {
        let target = Target::new(b.name.clone(), &b.path);
        eprintln!("checking {} ({})", b.name, b.path.display());
        let reports = run_scenarios(&target, &scenarios, |r| {
            eprintln!("  {:<44} {}", r.name, r.verdict());
        });
        runs.push((b.name.clone(), reports));
    }
    print!("{}", report::matrix(&runs));
    if let Some(path) = &options.json {
        let text = serde_json::to_string_pretty(&report::to_json(&runs))
            .map_err(|e| Failure::failed(format!("JSON: {e}")))?;
        fs::write(path, text + "\n")
            .map_err(|e| Failure::failed(format!("writing {}: {e}", path.display())))?;
    }
    let failed = runs
        .iter()
        .flat_map(|(_, reports)| reports)
        .filter(|r| !r.passed)
        .count();
    if failed == 0 {
        Ok(())
    } else {
        Err(Failure::failed(format!("{failed} scenario run(s) failed")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| (*s).to_owned()).collect()
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
        let err = build(&strings(&["nope"])).unwrap_err();
        assert_eq!(err.code, 2);
        assert!(err.message.contains("unknown adapter"), "{}", err.message);
        assert!(err.message.contains("fake"), "{}", err.message);
    }
}
