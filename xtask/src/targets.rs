//! `cargo xtask targets`: build the conformance targets, print where they are.
//!
//! The targets are the executables of the `graceful-targets` crate, one per
//! adapter. They are built in release mode by one cargo invocation: the
//! three share most of their dependency graph, and one build compiles it
//! once, with every core busy, where three builds in a row would compile
//! the shared part three times over (features unify differently per
//! invocation) and leave cores idle at each one's tail.
//!
//! Standard output carries only the `NAME PATH` lines (the contract's way
//! of finding the targets); cargo's own output, a line per phase and a line
//! naming each target that also serves gRPC go to standard error.

use std::path::PathBuf;
use std::time::Instant;

use crate::{Failure, cargo};

/// An executable the workspace builds for the kit to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Known {
    /// The name used in reports and `--adapter`.
    pub(crate) name: &'static str,
    /// The package that ships it.
    pub(crate) package: &'static str,
    /// The executable's name.
    pub(crate) bin: &'static str,
    /// Whether it also serves the contract's gRPC section (rules 28-29):
    /// the kit's gRPC scenarios run against it too.
    pub(crate) grpc: bool,
}

/// The package of the adapters' targets.
const TARGETS: &str = "graceful-targets";

/// Every adapter's target, in reporting order.
pub(crate) const KNOWN: &[Known] = &[
    Known {
        name: "tokio",
        package: TARGETS,
        bin: "tokio-target",
        grpc: true,
    },
    Known {
        name: "smol",
        package: TARGETS,
        bin: "smol-target",
        grpc: false,
    },
    Known {
        name: "actix",
        package: TARGETS,
        bin: "actix-target",
        grpc: false,
    },
];

/// The kit's own fake target, its independent control: built with the
/// adapters' targets when asked for, never listed by `cargo xtask targets`.
pub(crate) const FAKE: Known = Known {
    name: "fake",
    package: "graceful-conformance",
    bin: "graceful-conformance-fake",
    grpc: false,
};

/// A built target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Built {
    pub(crate) name: String,
    pub(crate) path: PathBuf,
}

/// The arguments of the one `cargo build` that builds every one of `known`.
fn build_args(known: &[Known]) -> Vec<&'static str> {
    let mut args = vec!["build", "--release"];
    let mut packages: Vec<&str> = Vec::new();
    for k in known {
        if !packages.contains(&k.package) {
            packages.push(k.package);
            args.extend(["--package", k.package]);
        }
    }
    for k in known {
        args.extend(["--bin", k.bin]);
    }
    args
}

/// Builds `known` in release mode, in one cargo invocation, and returns
/// where the executables are. Progress goes to standard error.
pub(crate) fn build(known: &[Known]) -> Result<Vec<Built>, Failure> {
    if known.is_empty() {
        return Ok(Vec::new());
    }
    let target_dir = cargo::target_dir()?;
    let names: Vec<&str> = known.iter().map(|k| k.bin).collect();
    eprintln!(
        "xtask: building {} (release, one cargo build)...",
        names.join(", ")
    );
    let started = Instant::now();
    cargo::run(&build_args(known))?;
    eprintln!(
        "xtask: built {} executable(s) in {:.0} s",
        known.len(),
        started.elapsed().as_secs_f64()
    );
    known
        .iter()
        .map(|k| {
            let path = target_dir.join("release").join(format!(
                "{}{}",
                k.bin,
                std::env::consts::EXE_SUFFIX
            ));
            if path.is_file() {
                Ok(Built {
                    name: k.name.to_owned(),
                    path,
                })
            } else {
                Err(Failure::failed(format!(
                    "built {} but found no executable at {}",
                    k.bin,
                    path.display()
                )))
            }
        })
        .collect()
}

#[allow(clippy::print_stdout)]
pub(crate) fn run(args: &[String]) -> Result<(), Failure> {
    if let Some(arg) = args.first() {
        return Err(Failure::usage(format!(
            "`cargo xtask targets` takes no arguments (got {arg:?})"
        )));
    }
    for b in build(KNOWN)? {
        println!("{} {}", b.name, b.path.display());
    }
    // Standard output is the contract's `NAME PATH` lines only.
    for k in KNOWN.iter().filter(|k| k.grpc) {
        eprintln!(
            "xtask: {} also serves gRPC (contract v2, rules 28-29)",
            k.name
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_targets_are_the_bins_of_graceful_targets() {
        let names: Vec<&str> = KNOWN.iter().map(|k| k.name).collect();
        assert_eq!(names, ["tokio", "smol", "actix"]);
        let root = cargo::workspace_root();
        for k in KNOWN {
            let source = root.join("targets/src/bin").join(format!("{}.rs", k.bin));
            assert!(source.is_file(), "{} has no source", k.bin);
        }
    }

    #[test]
    fn only_the_tokio_target_serves_grpc() {
        let grpc: Vec<&str> = KNOWN.iter().filter(|k| k.grpc).map(|k| k.name).collect();
        assert_eq!(grpc, ["tokio"]);
        const { assert!(!FAKE.grpc) };
    }

    #[test]
    fn one_cargo_build_builds_them_all() {
        assert_eq!(
            build_args(KNOWN).join(" "),
            "build --release --package graceful-targets \
             --bin tokio-target --bin smol-target --bin actix-target"
        );
        let fake = Known {
            name: "fake",
            package: "graceful-conformance",
            bin: "graceful-conformance-fake",
            grpc: false,
        };
        assert_eq!(
            build_args(&[KNOWN[1], fake]).join(" "),
            "build --release --package graceful-targets --package graceful-conformance \
             --bin smol-target --bin graceful-conformance-fake"
        );
    }

    #[test]
    fn takes_no_arguments() {
        assert_eq!(run(&["x".to_owned()]).unwrap_err().code, 2);
    }
}
