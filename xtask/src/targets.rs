//! `cargo xtask targets`: build the conformance targets, print where they are.
//!
//! Every adapter crate ships its conformance target as an example. A target
//! is listed once its example source exists, so adapters join as they land.

use std::path::PathBuf;

use crate::{Failure, cargo};

/// A conformance target known to the workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Known {
    /// The name used in reports and `--adapter`.
    pub(crate) name: &'static str,
    /// The package that ships it.
    pub(crate) package: &'static str,
    /// The example's name.
    pub(crate) example: &'static str,
}

/// Every adapter's target, in reporting order.
pub(crate) const KNOWN: &[Known] = &[
    Known {
        name: "tokio",
        package: "graceful-tokio",
        example: "tokio-target",
    },
    Known {
        name: "smol",
        package: "graceful-smol",
        example: "smol-target",
    },
    Known {
        name: "actix",
        package: "graceful-actix",
        example: "actix-target",
    },
];

impl Known {
    /// The example's source, relative to the workspace root.
    pub(crate) fn source(&self) -> String {
        format!("{}/examples/{}.rs", self.package, self.example)
    }

    /// Whether the adapter ships its target yet.
    pub(crate) fn exists(&self) -> bool {
        cargo::workspace_root().join(self.source()).is_file()
    }
}

/// A built target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Built {
    pub(crate) name: String,
    pub(crate) path: PathBuf,
}

/// Builds `known` in release mode and returns where the executables are.
pub(crate) fn build(known: &[Known]) -> Result<Vec<Built>, Failure> {
    let target_dir = cargo::target_dir()?;
    let mut built = Vec::new();
    for k in known {
        cargo::run(&[
            "build",
            "--release",
            "--package",
            k.package,
            "--example",
            k.example,
        ])?;
        let path = target_dir.join("release").join("examples").join(format!(
            "{}{}",
            k.example,
            std::env::consts::EXE_SUFFIX
        ));
        if !path.is_file() {
            return Err(Failure::failed(format!(
                "built {} but found no executable at {}",
                k.example,
                path.display()
            )));
        }
        built.push(Built {
            name: k.name.to_owned(),
            path,
        });
    }
    Ok(built)
}

/// The targets whose sources exist.
pub(crate) fn existing() -> Vec<Known> {
    KNOWN.iter().copied().filter(Known::exists).collect()
}

#[allow(clippy::print_stdout)]
pub(crate) fn run(args: &[String]) -> Result<(), Failure> {
    if let Some(arg) = args.first() {
        return Err(Failure::usage(format!(
            "`cargo xtask targets` takes no arguments (got {arg:?})"
        )));
    }
    let present = existing();
    if present.is_empty() {
        eprintln!(
            "no conformance target exists yet (looked for {})",
            KNOWN
                .iter()
                .map(Known::source)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    for b in build(&present)? {
        println!("{} {}", b.name, b.path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_targets_are_examples_of_their_adapters() {
        let names: Vec<&str> = KNOWN.iter().map(|k| k.name).collect();
        assert_eq!(names, ["tokio", "smol", "actix"]);
        assert_eq!(KNOWN[0].source(), "graceful-tokio/examples/tokio-target.rs");
        assert_eq!(KNOWN[1].source(), "graceful-smol/examples/smol-target.rs");
        assert_eq!(KNOWN[2].source(), "graceful-actix/examples/actix-target.rs");
    }

    #[test]
    fn takes_no_arguments() {
        assert_eq!(run(&["x".to_owned()]).unwrap_err().code, 2);
    }
}
