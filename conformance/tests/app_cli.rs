//! `graceful-conformance app`: its usage errors, its output and its exit
//! codes, run against the fake target as a plain command.

use std::fs;
use std::process::Command;

const CLI: &str = env!("CARGO_BIN_EXE_graceful-conformance");
const FAKE: &str = env!("CARGO_BIN_EXE_graceful-conformance-fake");

fn app(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(CLI).arg("app").args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn list_names_every_check() {
    let (code, stdout, _) = app(&["--list"]);
    assert_eq!(code, Some(0));
    for check in graceful_conformance::app::Check::all() {
        assert!(stdout.contains(check.name()), "{} missing", check.name());
    }
}

#[test]
fn usage_errors_exit_2_with_one_clear_message() {
    let cases: &[(&[&str], &str)] = &[
        (&["--slow", "/sleep?ms={ms}"], "no server command"),
        (&["--", FAKE, "--addr", "{addr}"], "no slow request"),
        (
            &["--slow", "/sleep?ms={ms}", "--", FAKE],
            "no way to reach the server",
        ),
        (
            &["--slow", "sleep", "--", FAKE, "--addr", "{addr}"],
            "--slow \"sleep\"",
        ),
        (
            &[
                "--slow", "/x", "--check", "nope", "--", FAKE, "--addr", "{addr}",
            ],
            "unknown check \"nope\"",
        ),
        (
            &["--slow", "/x", "--addr", "10.0.0.1:80", "--", FAKE],
            "--addr \"10.0.0.1:80\"",
        ),
        (
            &["--slow", "/x", "--addr", "nowhere", "--", FAKE],
            "--addr \"nowhere\"",
        ),
        (&["--slow", "/x", "--bogus", "--", FAKE], "--bogus"),
        (
            &["--slow", "/x", "--slow-ms", "ten", "--", FAKE, "{addr}"],
            "ten",
        ),
    ];
    for (args, needle) in cases {
        let (code, stdout, stderr) = app(args);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(needle),
            "{args:?}: {needle:?} not in {stderr}"
        );
        assert!(stdout.is_empty(), "{args:?} printed {stdout}");
    }
}

#[test]
fn a_passing_run_exits_0_with_table_summary_and_json() {
    let json = std::env::temp_dir().join(format!("gc-app-{}.json", std::process::id()));
    let json_arg = json.to_string_lossy().into_owned();
    let (code, stdout, stderr) = app(&[
        "--slow",
        "/sleep?ms={ms}",
        "--slow-ms",
        "300",
        "--check",
        "inflight-sigterm",
        "--check",
        "second-signal",
        "--json",
        &json_arg,
        "--name",
        "fake",
        "--",
        FAKE,
        "--addr",
        "{addr}",
    ]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(stdout.starts_with("server: fake\n"), "{stdout}");
    assert!(stdout.contains("inflight-sigterm"), "{stdout}");
    let last = stdout.trim_end().lines().last().unwrap();
    assert_eq!(
        last,
        "graceful-conformance app: fake: ok: 3 passed, 0 failed, 0 not applicable"
    );
    let value: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&json).unwrap()).unwrap();
    let _ = fs::remove_file(&json);
    assert_eq!(value["mode"], "app");
    assert_eq!(value["passed"], true);
    assert_eq!(value["checks"][1]["check"], "inflight-sigterm");
    assert_eq!(value["checks"][1]["verdict"], "pass");
    assert_eq!(value["checks"][1]["figures"]["whole"], "3/3");
}

#[test]
fn a_failing_run_exits_1_and_names_the_failure() {
    let (code, stdout, _) = app(&[
        "--port-env",
        "UNUSED_PORT",
        "--slow",
        "/sleep?ms={ms}",
        "--slow-ms",
        "300",
        "--check",
        "inflight-sigint",
        "--",
        FAKE,
        "--addr",
        "{addr}",
        "--fault",
        "sigint-immediate",
    ]);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains("inflight-sigint: FAIL"), "{stdout}");
    assert!(
        stdout
            .trim_end()
            .ends_with("FAIL: 1 passed, 1 failed (inflight-sigint), 0 not applicable"),
        "{stdout}"
    );
}

#[test]
fn contract_mode_is_unchanged_and_points_to_app_mode() {
    let out = Command::new(CLI).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0));
    assert!(help.contains("--scenario"), "{help}");
    assert!(help.contains("graceful-conformance app --help"), "{help}");
}
