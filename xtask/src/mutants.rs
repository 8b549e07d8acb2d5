//! `cargo xtask mutants`: mutation testing of graceful-core.
//!
//! ```text
//! cargo xtask mutants [--list] [--timeout SECS] [--jobs N] [--file GLOB]... [-- ARGS...]
//! ```
//!
//! Runs [cargo-mutants](https://mutants.rs) on graceful-core, installing it
//! from crates.io first when it is missing. Each mutant is a small change
//! to the crate's code (a function returning a default, `<` turned into
//! `<=`, a `!` deleted...); the crate's tests must fail on every one. A
//! mutant they do not catch ("missed") is a behaviour no test pins down: a
//! test for it goes in `graceful-core/tests/mutants.rs`, or, when the
//! mutant cannot change any behaviour, the reason goes beside the code.
//!
//! Too slow for every CI run (every mutant is a build and a test run), so
//! it is not part of `.ci/run`: run it after changing graceful-core's
//! logic, or its tests. The results are in `target/mutants.out/`
//! (`missed.txt`, `timeout.txt`, `caught.txt`, `unviable.txt`, the log of
//! each mutant).
//!
//! Design decisions:
//!
//! - Every feature on (`--all-features`), so that the code behind `net` and
//!   `tracing` is built and tested too: a mutant in code that is not
//!   compiled would count as missed.
//! - Debug info off (`CARGO_PROFILE_DEV_DEBUG=0`): each mutant relinks the
//!   test binaries, and that is most of the time per mutant.
//! - One job by default: the box it runs on has few cores, and a test that
//!   involves time gets slow when starved. `--jobs` overrides it.
//! - Exit code 0 when every mutant was caught (or unviable: it did not
//!   build), 1 when some were missed or timed out, or the tests failed
//!   without any mutation, 2 on a usage error.

use crate::{Failure, cargo};

/// The cargo-mutants release this task installs when none is found: the
/// output layout and the exit codes below are those of this release.
const VERSION: &str = "27.1.0";

/// The per-mutant test timeout when none is given: generous, because a
/// mutant that turns a loop into an endless one runs until it.
const DEFAULT_TIMEOUT_SECS: u32 = 120;

const USAGE: &str =
    "usage: cargo xtask mutants [--list] [--timeout SECS] [--jobs N] [--file GLOB]... [-- ARGS...]";

/// The arguments for `cargo mutants`, from ours.
fn parse(args: &[String], output: &str) -> Result<Vec<String>, Failure> {
    let mut list = false;
    let mut timeout = DEFAULT_TIMEOUT_SECS;
    let mut jobs = 1;
    let mut files = Vec::new();
    let mut extra: &[String] = &[];
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        if arg == "--" {
            extra = &args[i..];
            break;
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag, Some(value.to_owned())),
            None => (arg.as_str(), None),
        };
        let mut value = || match inline.clone() {
            Some(value) => Ok(value),
            None => {
                let value = args
                    .get(i)
                    .cloned()
                    .ok_or_else(|| Failure::usage(format!("{flag} needs a value\n{USAGE}")))?;
                i += 1;
                Ok(value)
            }
        };
        match flag {
            "--list" if inline.is_none() => list = true,
            "--timeout" => timeout = positive(flag, &value()?)?,
            "--jobs" | "-j" => jobs = positive(flag, &value()?)?,
            "--file" | "-f" => files.push(value()?),
            _ => {
                return Err(Failure::usage(format!("unknown argument {arg:?}\n{USAGE}")));
            }
        }
    }
    let mut command: Vec<String> = [
        "mutants",
        "--package",
        "graceful-core",
        "--all-features",
        "--output",
        output,
    ]
    .map(str::to_owned)
    .into();
    if list {
        command.push("--list".to_owned());
    } else {
        command.extend([
            "--timeout".to_owned(),
            timeout.to_string(),
            "--jobs".to_owned(),
            jobs.to_string(),
        ]);
    }
    for file in files {
        command.extend(["--file".to_owned(), file]);
    }
    command.extend(extra.iter().cloned());
    Ok(command)
}

/// A whole number above zero, or a usage error naming `flag`.
fn positive(flag: &str, value: &str) -> Result<u32, Failure> {
    match value.parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(Failure::usage(format!(
            "{flag} takes a whole number above zero (got {value:?})"
        ))),
    }
}

/// Installs cargo-mutants from crates.io unless `cargo mutants` already
/// runs.
fn ensure_installed() -> Result<(), Failure> {
    let present = cargo::cargo()
        .args(["mutants", "--version"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if present {
        return Ok(());
    }
    eprintln!("cargo-mutants is missing: installing {VERSION} from crates.io");
    cargo::run(&["install", "--locked", "cargo-mutants", "--version", VERSION])
}

pub(crate) fn run(args: &[String]) -> Result<(), Failure> {
    let target = cargo::target_dir()?;
    let output = target.to_str().ok_or_else(|| {
        Failure::failed(format!(
            "the target directory {} is not UTF-8",
            target.display()
        ))
    })?;
    let command = parse(args, output)?;
    ensure_installed()?;
    let status = cargo::cargo()
        .args(&command)
        .env("CARGO_PROFILE_DEV_DEBUG", "0")
        .status()
        .map_err(|e| Failure::failed(format!("cannot run cargo mutants: {e}")))?;
    let results = target.join("mutants.out");
    // cargo-mutants' exit codes (https://mutants.rs/exit-codes.html).
    match status.code() {
        Some(0) => Ok(()),
        // Its own usage error: it has said why.
        Some(1) => Err(Failure::usage("")),
        Some(2) => Err(Failure::failed(format!(
            "some mutants survived: see {}",
            results.join("missed.txt").display()
        ))),
        Some(3) => Err(Failure::failed(format!(
            "some mutants timed out: see {}",
            results.join("timeout.txt").display()
        ))),
        Some(4) => Err(Failure::failed(
            "graceful-core's tests fail without any mutation",
        )),
        _ => Err(Failure::failed(format!("cargo mutants failed ({status})"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn defaults_test_every_feature_with_one_job() {
        assert_eq!(
            parse(&[], "/t").unwrap(),
            strings(&[
                "mutants",
                "--package",
                "graceful-core",
                "--all-features",
                "--output",
                "/t",
                "--timeout",
                "120",
                "--jobs",
                "1",
            ])
        );
    }

    #[test]
    fn options_and_pass_through_arguments() {
        let command = parse(
            &strings(&[
                "--timeout=30",
                "-j",
                "2",
                "--file",
                "src/state.rs",
                "-f=src/driver.rs",
                "--",
                "--re",
                "leave",
            ]),
            "/t",
        )
        .unwrap();
        assert_eq!(
            command[6..],
            strings(&[
                "--timeout",
                "30",
                "--jobs",
                "2",
                "--file",
                "src/state.rs",
                "--file",
                "src/driver.rs",
                "--re",
                "leave",
            ])
        );
        let listed = parse(&strings(&["--list"]), "/t").unwrap();
        assert_eq!(listed[6..], strings(&["--list"]));
    }

    #[test]
    fn usage_errors_are_code_2() {
        for bad in [
            &["--timeout"][..],
            &["--timeout", "0"],
            &["--jobs", "many"],
            &["--list=yes"],
            &["--frobnicate"],
        ] {
            let failure = parse(&strings(bad), "/t").unwrap_err();
            assert_eq!(failure.code, 2, "{bad:?}: {}", failure.message);
        }
    }
}
