//! hyper 1 depends on tokio with its `sync` feature (no runtime, no I/O, no
//! timer), and its HTTP/2 (the `h2` crate) on tokio's io traits (`io-util`,
//! `bytes`) and tokio-util's frame codec (`codec`, `io`): no runtime, no
//! reactor, no timer. That is the only tokio graceful-smol may have in its
//! normal dependency tree, with every feature of its own enabled and on every
//! target: no tokio runtime feature, and no other tokio-based crate.

use std::process::Command;

/// The only tokio features allowed: what hyper asks for.
const TOKIO_FEATURES_ALLOWED: &[&str] = &["default", "sync", "io-util", "bytes"];

/// The only tokio-util features allowed: what `h2` asks for.
const TOKIO_UTIL_FEATURES_ALLOWED: &[&str] = &["default", "codec", "io", "libc"];

/// Crates that bring tokio's runtime, or another runtime, with them.
const FORBIDDEN_CRATES: &[&str] = &[
    "async-std",
    "actix-rt",
    "actix-web",
    "async-global-executor",
];

/// What is wrong in `cargo tree --edges normal,features --prefix none`
/// output: one line per tokio feature beyond `sync`, tokio-based crate or
/// hyper-util `tokio` feature.
fn tokio_runtime_in(tree: &str) -> Vec<String> {
    let mut found: Vec<String> = tree
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let name = words.next()?;
            let feature = match (words.next(), words.next()) {
                (Some("feature"), Some(feature)) => Some(feature.trim_matches('"')),
                _ => None,
            };
            let wrong = match (name, feature) {
                ("tokio", Some(feature)) => !TOKIO_FEATURES_ALLOWED.contains(&feature),
                ("hyper-util", Some(feature)) => feature == "tokio",
                ("tokio-util", Some(feature)) => !TOKIO_UTIL_FEATURES_ALLOWED.contains(&feature),
                ("tokio-util", None) => false,
                (name, _) => name.starts_with("tokio-") || FORBIDDEN_CRATES.contains(&name),
            };
            wrong.then(|| match feature {
                Some(feature) => format!("{name} feature {feature}"),
                None => name.to_owned(),
            })
        })
        .collect();
    found.sort();
    found.dedup();
    found
}

#[test]
fn the_check_finds_a_tokio_runtime_when_there_is_one() {
    let clean = "graceful-smol v0.1.0 (/src/graceful-smol)\n\
                 hyper v1.12.0\n\
                 tokio feature \"default\"\n\
                 tokio v1.54.1\n\
                 tokio feature \"sync\"\n\
                 hyper-util feature \"service\"\n\
                 hyper-util v0.1.21\n";
    assert!(tokio_runtime_in(clean).is_empty());

    let with_runtime = format!(
        "{clean}tokio feature \"rt\"\n\
         tokio feature \"net\"\n\
         tokio feature \"rt\"\n\
         hyper-util feature \"tokio\"\n\
         tokio-util feature \"rt\"\n\
         async-std v1.13.0\n"
    );
    assert_eq!(
        tokio_runtime_in(&with_runtime),
        [
            "async-std",
            "hyper-util feature tokio",
            "tokio feature net",
            "tokio feature rt",
            "tokio-util feature rt",
        ]
    );
}

#[test]
fn graceful_smol_depends_on_no_tokio_runtime() {
    let output = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--package",
            "graceful-smol",
            "--edges",
            "normal,features",
            "--all-features",
            "--target",
            "all",
            "--prefix",
            "none",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "cargo tree failed: {stderr}");
    let tree = String::from_utf8(output.stdout).expect("utf-8");
    assert!(
        tree.starts_with("graceful-smol "),
        "unexpected cargo tree output: {tree}"
    );
    // The check looks at the right tree: hyper's tokio is in it.
    assert!(
        tree.lines()
            .any(|line| line.starts_with("tokio feature \"sync\"")),
        "hyper's tokio is missing from the tree:\n{tree}"
    );
    let found = tokio_runtime_in(&tree);
    assert!(
        found.is_empty(),
        "graceful-smol depends on a tokio runtime: {found:?}\n{tree}"
    );
}
