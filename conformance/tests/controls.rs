//! Positive and negative controls for the kit, run against the fake target.
//!
//! Positive: the fake in its default mode follows the contract, so every
//! scenario must pass against it. Negative: with `--fault NAME` the fake
//! breaks exactly one rule, and the scenario meant to catch that fault must
//! fail, for the reason it is about. Together they show that every scenario
//! can pass and can fail.

use std::process::Command;

use graceful_conformance::{Kind, Scenario, ScenarioReport, Target, run_scenario};

const FAKE: &str = env!("CARGO_BIN_EXE_graceful-conformance-fake");

fn fake() -> Target {
    Target::new("fake", FAKE)
}

fn faulty(fault: &str) -> Target {
    fake().arg("--fault").arg(fault)
}

fn scenario(name: &str) -> Scenario {
    Scenario::from_name(name).unwrap_or_else(|| panic!("no scenario named {name}"))
}

fn describe(r: &ScenarioReport) -> String {
    format!(
        "{} {}\nfigures: {:?}\nfailures: {:#?}\nstderr:\n{}",
        r.name,
        r.verdict(),
        r.figures,
        r.failures,
        r.stderr_tail
    )
}

fn assert_passes(name: &str) {
    let report = run_scenario(&fake(), scenario(name));
    assert!(report.passed, "{}", describe(&report));
    assert!(report.failures.is_empty());
}

fn assert_caught(fault: &str, name: &str, needle: &str) {
    let report = run_scenario(&faulty(fault), scenario(name));
    assert!(
        !report.passed,
        "fault {fault} went unnoticed by {name}\n{}",
        describe(&report)
    );
    assert!(
        report.failures.iter().any(|f| f.contains(needle)),
        "fault {fault} failed {name}, but not with {needle:?}\n{}",
        describe(&report)
    );
}

macro_rules! positive {
    ($( $test:ident: $name:literal; )*) => {
        $( #[test] fn $test() { assert_passes($name); } )*

        const POSITIVE: &[&str] = &[ $( $name, )* ];
    };
}

positive! {
    passes_health_live: "health-live";
    passes_bad_command_line: "bad-command-line";
    passes_idle_exit_fast: "idle-exit-fast";
    passes_stops_accepting_after_closed: "stops-accepting-after-closed";
    passes_inflight_sleep_completes: "inflight-sleep-completes";
    passes_inflight_stream_completes: "inflight-stream-completes";
    passes_slow_body_completes: "slow-body-completes";
    passes_pipelined_after_close_not_begun: "pipelined-after-close-not-begun";
    passes_keepalive_503_during_drain: "keepalive-503-during-drain";
    passes_idle_keepalive_does_not_delay_exit: "idle-keepalive-does-not-delay-exit";
    passes_partial_head_does_not_delay_exit: "partial-head-does-not-delay-exit";
    passes_cleanup_reverse_order_after_last_response: "cleanup-reverse-order-after-last-response";
    passes_drain_deadline_abandons: "drain-deadline-abandons";
    passes_cleanup_error: "cleanup-error";
    passes_cleanup_panic: "cleanup-panic";
    passes_cleanup_timeout: "cleanup-timeout";
    passes_sigint_like_sigterm: "sigint-like-sigterm";
    passes_second_signal_forces: "second-signal-forces";
    passes_unready_delay_serves: "unready-delay-serves";
    passes_backlog_accepted_not_reset: "backlog-accepted-not-reset";
    passes_signal_before_listening: "signal-before-listening";
    passes_stdout_events_only_and_ordered: "stdout-events-only-and-ordered";
    passes_orders_under_load: "orders-under-load";
    // Contract v2: long-lived streams and background jobs (rules 17-22).
    passes_streams_served_during_unready_delay: "streams-served-during-unready-delay";
    passes_events_end_with_retry: "events-end-with-retry";
    passes_ws_close_1001: "ws-close-1001";
    passes_ws_close_bound: "ws-close-bound";
    passes_streams_exit_clean: "streams-exit-clean";
    passes_jobs_complete: "jobs-complete";
    passes_jobs_deadline_abandons: "jobs-deadline-abandons";
    passes_jobs_under_sigterm: "jobs-under-sigterm";
    passes_jobs_no_store: "jobs-no-store";
    passes_jobs_duplicate: "jobs-duplicate";
    // HTTP/2 (rules 11, 13 to 16).
    passes_h2c_served: "h2c-served";
    passes_h2_unready_delay_serves: "h2-unready-delay-serves";
    passes_h2_goaway_at_closed: "h2-goaway-at-closed";
    passes_h2_inflight_completes: "h2-inflight-completes";
    passes_h2_idle_closed: "h2-idle-closed";
    passes_h2_no_ping_answer: "h2-no-ping-answer";
    passes_h2_no_preface: "h2-no-preface";
    passes_h2_deadline_resets: "h2-deadline-resets";
    // TLS (rules 11, 12).
    passes_tls_served: "tls-served";
    passes_tls_handshake_does_not_delay_exit: "tls-handshake-does-not-delay-exit";
    passes_tls_close_notify: "tls-close-notify";
    passes_tls_bad_files: "tls-bad-files";
    // The zero-downtime upgrade (rules 23 to 27).
    passes_upgrade_under_load: "upgrade-under-load";
    passes_upgrade_child_fails: "upgrade-child-fails";
    passes_sighup_ignored: "sighup-ignored";
    passes_sigterm_during_upgrade: "sigterm-during-upgrade";
}

macro_rules! negative {
    ($( $test:ident: $fault:literal => $name:literal, $needle:literal; )*) => {
        $( #[test] fn $test() { assert_caught($fault, $name, $needle); } )*

        const NEGATIVE: &[(&str, &str)] = &[ $( ($fault, $name), )* ];
    };
}

negative! {
    catches_exit_at_once: "exit-at-once" => "inflight-sleep-completes", "in-flight request";
    catches_exit_at_once_in_the_store: "exit-at-once" => "orders-under-load", "never got their 201";
    catches_ignore_sigterm: "ignore-sigterm" => "idle-exit-fast", "did not exit within";
    catches_sigint_immediate: "sigint-immediate" => "sigint-like-sigterm", "in progress at SIGINT";
    catches_ignore_second_signal: "ignore-second-signal" => "second-signal-forces", "did not exit within";
    catches_die_on_second_signal: "die-on-second-signal" => "second-signal-forces", "died";
    catches_cleanup_in_order: "cleanup-in-order" => "cleanup-reverse-order-after-last-response", "cleanup lines";
    catches_cleanup_stop_on_error: "cleanup-stop-on-error" => "cleanup-error", "cleanup lines";
    catches_cleanup_panic_aborts: "cleanup-panic-aborts" => "cleanup-panic", "exit code 101";
    catches_cleanup_no_timeout: "cleanup-no-timeout" => "cleanup-timeout", "did not exit within";
    catches_no_503: "no-503" => "keepalive-503-during-drain", "expected 503";
    catches_close_idle: "close-idle" => "keepalive-503-during-drain", "before any byte";
    catches_wait_idle: "wait-idle" => "idle-keepalive-does-not-delay-exit", "did not exit within";
    catches_wait_partial_head: "wait-partial-head" => "partial-head-does-not-delay-exit", "did not exit within";
    catches_no_connection_close: "no-connection-close" => "inflight-sleep-completes", "without `Connection: close`";
    catches_late_close: "late-close" => "stops-accepting-after-closed", "was accepted";
    catches_early_drained: "early-drained" => "cleanup-reverse-order-after-last-response", "before the last in-flight response";
    catches_silent_deadline: "silent-deadline" => "drain-deadline-abandons", "no `abandoned 3` line";
    catches_ready_200: "ready-200" => "unready-delay-serves", "/health/ready during the unready delay";
    catches_stop_accept_at_signal: "stop-accept-at-signal" => "unready-delay-serves", "on a new connection during the unready delay";
    catches_stop_accept_at_signal_backlog: "stop-accept-at-signal" => "backlog-accepted-not-reset", "made during the unready delay";
    catches_defer_early_signal: "defer-early-signal" => "signal-before-listening", "ms after SIGTERM (the contract allows 1000 ms)";
    catches_lenient_args: "lenient-args" => "bad-command-line", "kept running";
    catches_stdout_noise: "stdout-noise" => "stdout-events-only-and-ordered", "not a contract event";
    catches_truncate_stream: "truncate-stream" => "inflight-stream-completes", "the stream in progress";
    catches_ignore_slow_body: "ignore-slow-body" => "slow-body-completes", "still arriving";
    catches_serve_pipelined: "serve-pipelined" => "pipelined-after-close-not-begun", "pipelined behind `Connection: close` was answered";
    catches_skip_commit: "skip-commit" => "orders-under-load", "got a 201 but have no row";
    catches_no_live: "no-live" => "health-live", "GET /health/live";
    // Contract v2: long-lived streams and background jobs (rules 17-22).
    catches_v1_only_events: "v1-only" => "events-end-with-retry", "GET /events answered 404: the target does not serve long-lived streams";
    catches_v1_only_ws: "v1-only" => "ws-close-1001", "GET /ws answered 404: the target does not serve WebSockets";
    catches_v1_only_jobs: "v1-only" => "jobs-complete", "POST /jobs answered 404: the target does not serve background jobs";
    catches_v1_only_jobs_no_store: "v1-only" => "jobs-no-store", "POST /jobs answered 404";
    catches_streams_end_at_signal: "streams-end-at-signal" => "streams-served-during-unready-delay", "during the unready delay";
    catches_events_no_retry: "events-no-retry" => "events-end-with-retry", "expected `retry: 1000`";
    catches_events_hold: "events-hold" => "events-end-with-retry", "still open";
    catches_events_hold_exit: "events-hold" => "streams-exit-clean", "no `drained` line";
    catches_ws_no_close: "ws-no-close" => "ws-close-1001", "no Close frame";
    catches_ws_close_1000: "ws-close-1000" => "ws-close-1001", "expected code 1001";
    catches_ws_echo_after_close: "ws-echo-after-close" => "ws-close-1001", "after its Close frame";
    catches_ws_hang: "ws-hang" => "ws-close-bound", "still open";
    catches_ws_hang_after_answer: "ws-hang" => "ws-close-1001", "not closed";
    catches_jobs_not_awaited: "jobs-not-awaited" => "jobs-complete", "have no row";
    catches_jobs_not_awaited_under_load: "jobs-not-awaited" => "jobs-under-sigterm", "have no row";
    catches_jobs_not_awaited_at_deadline: "jobs-not-awaited" => "jobs-deadline-abandons", "no `abandoned 1` line";
    catches_jobs_deadline_uncounted: "jobs-deadline-uncounted" => "jobs-deadline-abandons", "expected `abandoned 1`";
    catches_jobs_after_close: "jobs-after-close" => "jobs-under-sigterm", "expected 503";
    catches_jobs_without_store: "jobs-without-store" => "jobs-no-store", "expected 404";
    catches_jobs_duplicate_queued: "jobs-duplicate-queued" => "jobs-duplicate", "while it is queued";
    catches_events_ignore_ms: "events-ignore-ms" => "events-end-with-retry", "the stream at ?ms=400: 7 events in 1 s";
    catches_ws_close_early: "ws-close-early" => "ws-close-bound", "before the 1000 ms the client has to answer";
    catches_ws_close_early_before_answer: "ws-close-early" => "ws-close-1001", "before our answer";
    catches_jobs_sync_202: "jobs-sync-202" => "jobs-complete", "the 202 came";
    // HTTP/2 (rules 11, 13 to 16).
    catches_no_h2: "no-h2" => "h2c-served", "(rule 11)";
    catches_h2_goaway_at_signal: "h2-goaway-at-signal" => "h2-unready-delay-serves", "during the unready delay";
    catches_h2_no_goaway: "h2-no-goaway" => "h2-goaway-at-closed", "no GOAWAY";
    catches_h2_no_goaway_idle: "h2-no-goaway" => "h2-idle-closed", "no GOAWAY";
    catches_h2_serve_after_goaway: "h2-serve-after-goaway" => "h2-goaway-at-closed", "was processed";
    catches_h2_503: "h2-503" => "h2-goaway-at-closed", "got 503";
    catches_h2_reset_at_closed: "h2-reset-at-closed" => "h2-inflight-completes", "reset with CANCEL";
    catches_h2_wait_ping: "h2-wait-ping" => "h2-no-ping-answer", "did not exit within";
    catches_h2_wait_preface: "h2-wait-preface" => "h2-no-preface", "did not exit within";
    catches_h2_deadline_eof: "h2-deadline-eof" => "h2-deadline-resets", "no RST_STREAM CANCEL";
    // TLS (rules 11, 12).
    catches_tls_no_alpn: "tls-no-alpn" => "tls-served", "not h2 (rule 11)";
    catches_tls_wait_handshake: "tls-wait-handshake" => "tls-handshake-does-not-delay-exit", "did not exit within";
    catches_tls_no_close_notify: "tls-no-close-notify" => "tls-close-notify", "without a close_notify";
    catches_tls_lenient_files: "tls-lenient-files" => "tls-bad-files", "kept running";
    // The zero-downtime upgrade (rules 23 to 27).
    catches_no_upgrade_under_load: "no-upgrade" => "upgrade-under-load", "no `upgrading` line";
    catches_no_upgrade_child_fails: "no-upgrade" => "upgrade-child-fails", "no `listening` line";
    catches_no_upgrade_sighup_ignored: "no-upgrade" => "sighup-ignored", "no `upgrading` line";
    catches_no_upgrade_sigterm_during_upgrade: "no-upgrade" => "sigterm-during-upgrade", "no new process started";
    catches_upgrade_rebinds: "upgrade-rebinds" => "upgrade-under-load", "connects refused during the upgrades";
    catches_upgrade_drains_early: "upgrade-drains-early" => "upgrade-under-load", "came before the new process's `listening` line";
    catches_upgrade_drains_early_child_fails: "upgrade-drains-early" => "upgrade-child-fails", "instead of `upgrade-failed exited`";
    catches_upgrade_filters_shared_socket: "upgrade-filters-shared-socket" => "upgrade-under-load", "the listening socket drops handshakes";
}

#[test]
fn every_check_scenario_has_a_positive_control() {
    for s in Scenario::all().iter().filter(|s| s.kind() == Kind::Check) {
        assert!(
            POSITIVE.contains(&s.name()),
            "{} has no positive control",
            s.name()
        );
    }
}

#[test]
fn every_check_scenario_is_seen_failing() {
    for s in Scenario::all().iter().filter(|s| s.kind() == Kind::Check) {
        assert!(
            NEGATIVE.iter().any(|(_, name)| *name == s.name()),
            "{} is never seen failing",
            s.name()
        );
    }
}

#[test]
fn every_fault_of_the_fake_is_caught() {
    let out = Command::new(FAKE).arg("--list-faults").output().unwrap();
    assert!(out.status.success());
    let listing = String::from_utf8(out.stdout).unwrap();
    let faults: Vec<&str> = listing
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(faults.len() >= 20, "{listing}");
    for fault in faults {
        assert!(
            NEGATIVE.iter().any(|(f, _)| *f == fault),
            "fault {fault} has no negative control"
        );
    }
}

/// SIGKILL under load loses the answers of orders already stored: the store
/// check sees them. This is the store check failing on real damage.
#[test]
fn sigkill_under_load_shows_lost_answers() {
    let report = run_scenario(&fake(), scenario("orders-under-sigkill"));
    assert_eq!(report.kind, Kind::Demonstration);
    assert!(report.passed, "{}", describe(&report));
    let lost: usize = report
        .figure("rows-without-201")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(lost > 0, "{}", describe(&report));
    assert_eq!(report.figure("201-without-row"), Some("0"));
}

/// A target that commits nothing cannot lose answers to SIGKILL, so the
/// demonstration has nothing to show and says so.
#[test]
fn sigkill_demonstration_fails_without_stored_orders() {
    let report = run_scenario(&faulty("skip-commit"), scenario("orders-under-sigkill"));
    assert!(!report.passed, "{}", describe(&report));
    assert!(
        report.failures.iter().any(|f| f.contains("lost no answer")),
        "{}",
        describe(&report)
    );
}

/// A program that does not exist fails every scenario cleanly.
#[test]
fn missing_program_fails_without_panicking() {
    let target = Target::new("nothing", "/nonexistent/graceful-target");
    for s in [Scenario::HealthLive, Scenario::BadCommandLine] {
        let report = run_scenario(&target, s);
        assert!(!report.passed);
        assert!(report.failures[0].contains("could not start"), "{report:?}");
    }
}

/// A version 1 target: it refuses `--events-ms` (a usage error, exit 2)
/// and answers 404 to the routes of version 2. The fake plays it behind a
/// shell that refuses the option; every scenario of rules 17 to 22 says
/// what the target lacks.
#[test]
fn a_version_1_target_is_told_what_it_lacks() {
    let script = r#"for a in "$@"; do
        if [ "$a" = --events-ms ]; then echo "error: unexpected argument '--events-ms' found" >&2; exit 2; fi
    done
    exec "$0" "$@""#;
    let v1 = Target::new("v1", "/bin/sh")
        .arg("-c")
        .arg(script)
        .arg(FAKE)
        .arg("--fault")
        .arg("v1-only");
    for (name, needle) in [
        ("streams-served-during-unready-delay", "refuses --events-ms"),
        ("events-end-with-retry", "refuses --events-ms"),
        ("streams-exit-clean", "refuses --events-ms"),
        ("ws-close-1001", "GET /ws answered 404"),
        ("ws-close-bound", "GET /ws answered 404"),
        ("jobs-complete", "POST /jobs answered 404"),
        ("jobs-deadline-abandons", "POST /jobs answered 404"),
        ("jobs-under-sigterm", "POST /jobs answered 404"),
        ("jobs-no-store", "POST /jobs answered 404"),
        ("jobs-duplicate", "POST /jobs answered 404"),
    ] {
        let report = run_scenario(&v1, scenario(name));
        assert!(!report.passed, "{}", describe(&report));
        assert!(
            report.failures.iter().any(|f| f.contains(needle)),
            "{name} failed, but not with {needle:?}\n{}",
            describe(&report)
        );
    }
}
