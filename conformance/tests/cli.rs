//! The `graceful-conformance` command line, run against the fake target.

use std::fs;
use std::process::Command;

const CLI: &str = env!("CARGO_BIN_EXE_graceful-conformance");
const FAKE: &str = env!("CARGO_BIN_EXE_graceful-conformance-fake");

fn cli(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(CLI).args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn list_names_every_scenario() {
    let (code, stdout, _) = cli(&["--list"]);
    assert_eq!(code, Some(0));
    for s in graceful_conformance::Scenario::all() {
        assert!(
            stdout.contains(s.name()),
            "{} missing from --list",
            s.name()
        );
    }
}

#[test]
fn passing_run_exits_0_and_writes_json() {
    let json = std::env::temp_dir().join(format!("gc-cli-{}.json", std::process::id()));
    let json_arg = json.to_string_lossy().into_owned();
    let (code, stdout, stderr) = cli(&[
        "--scenario",
        "idle-exit-fast",
        "--scenario",
        "health-live",
        "--json",
        &json_arg,
        "--",
        FAKE,
    ]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("idle-exit-fast") && stdout.contains("2 passed, 0 failed"));
    let value: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&json).unwrap()).unwrap();
    let _ = fs::remove_file(&json);
    let scenarios = value["targets"][0]["scenarios"].as_array().unwrap();
    assert_eq!(scenarios.len(), 2);
    assert_eq!(scenarios[0]["scenario"], "idle-exit-fast");
    assert_eq!(scenarios[0]["passed"], true);
}

#[test]
fn failing_run_exits_1_with_details() {
    let (code, stdout, _) = cli(&[
        "--scenario",
        "idle-exit-fast",
        "--",
        FAKE,
        "--fault",
        "ignore-sigterm",
    ]);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.contains("FAIL") && stdout.contains("did not exit within"),
        "{stdout}"
    );
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(
        cli(&["--scenario", "no-such-scenario", "--", FAKE]).0,
        Some(2)
    );
    assert_eq!(cli(&["--scenario", "health-live"]).0, Some(2));
    assert_eq!(cli(&["--bogus", "--", FAKE]).0, Some(2));
}
