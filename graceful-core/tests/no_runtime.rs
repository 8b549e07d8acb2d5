//! Architecture invariant: no async runtime is in graceful-core's normal
//! dependency tree, whatever features are enabled.

use std::process::Command;

/// Crates that are, or bring, an async runtime.
const RUNTIMES: &[&str] = &[
    "tokio",
    "async-std",
    "smol",
    "async-io",
    "async-executor",
    "async-global-executor",
    "actix-rt",
    "actix-web",
    "glommio",
    "monoio",
    "futures-executor",
];

/// The runtimes named in `cargo tree --prefix none --format {p}` output.
fn runtimes_in(tree: &str) -> Vec<String> {
    let mut found: Vec<String> = tree
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| RUNTIMES.contains(name))
        .map(str::to_owned)
        .collect();
    found.sort();
    found.dedup();
    found
}

#[test]
fn the_check_finds_a_runtime_when_there_is_one() {
    let tree = "graceful-core v0.1.0 (/src/graceful-core)\n\
                tracing v0.1.44\n\
                tokio v1.54.1\n\
                tokio-macros v2.6.0\n\
                pin-project-lite v0.2.18\n";
    assert_eq!(runtimes_in(tree), ["tokio"]);
    assert!(runtimes_in("graceful-core v0.1.0\ntracing v0.1.44\n").is_empty());
}

#[test]
fn graceful_core_depends_on_no_runtime() {
    let output = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--package",
            "graceful-core",
            "--edges",
            "normal",
            "--all-features",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "cargo tree failed: {stderr}");
    let tree = String::from_utf8(output.stdout).expect("utf-8");
    assert!(
        tree.starts_with("graceful-core "),
        "unexpected cargo tree output: {tree}"
    );
    let found = runtimes_in(&tree);
    assert!(
        found.is_empty(),
        "graceful-core depends on {found:?}:\n{tree}"
    );
}
