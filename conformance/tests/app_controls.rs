//! Positive and negative controls for app mode, on the fake target run as
//! a plain command: app mode reads none of its event lines and passes it
//! none of the contract's options it does not choose itself.
//!
//! Positive: the fake in its default mode passes every check. Negative:
//! each fault the fake has that can be seen from outside makes the check
//! meant to catch it fail, for the reason it is about; together they show
//! every check failing on a control. (Faults about event lines, cleanup
//! order, the store or the command line are invisible to a check that
//! does not read them; the contract mode catches those.)

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use graceful_conformance::app::{self, Check, CheckReport, Options, Reach, SlowRequest, Verdict};

const FAKE: &str = env!("CARGO_BIN_EXE_graceful-conformance-fake");

/// One server at a time: the checks measure time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

fn fake(args: &[&str], slow: &str) -> Options {
    let mut command = vec![FAKE.into(), "--addr".into(), "{addr}".into()];
    command.extend(args.iter().map(Into::into));
    let mut options = Options::new(
        "fake",
        command,
        Reach::Placeholder,
        SlowRequest::parse(slow).unwrap(),
    );
    options.slow_ms = 600;
    options.probe = "/health/live".into();
    options
}

fn run(options: &Options, checks: &[Check]) -> Vec<CheckReport> {
    let reports = app::run(options, checks, |_| {});
    eprintln!("{}", app::report::table(&options.name, &reports));
    reports
}

fn report(reports: &[CheckReport], check: Check) -> &CheckReport {
    reports
        .iter()
        .find(|r| r.check == check)
        .unwrap_or_else(|| panic!("{check} did not run"))
}

/// `fault` (with `args`) makes `check` fail with a finding containing
/// `needle`.
fn caught(options: Options, check: Check, needle: &str) {
    let _one = serial();
    let reports = run(&options, &[check]);
    assert_eq!(report(&reports, Check::Start).verdict, Verdict::Pass);
    let r = report(&reports, check);
    assert_eq!(r.verdict, Verdict::Fail, "{check} missed the fault: {r:#?}");
    assert!(
        r.findings.iter().any(|f| f.contains(needle)),
        "{check} failed, but not with {needle:?}: {:#?}",
        r.findings
    );
}

#[test]
fn the_fake_passes_every_check() {
    let _one = serial();
    let mut options = fake(&["--unready-delay-ms", "300"], "/sleep?ms={ms}");
    options.ready = Some("/health/ready".into());
    options.unready_delay = Duration::from_millis(300);
    let reports = run(&options, Check::all());
    assert_eq!(reports.len(), Check::all().len());
    for r in &reports {
        assert_eq!(r.verdict, Verdict::Pass, "{}: {:#?}", r.check, r.findings);
    }
}

#[test]
fn exit_at_once_fails_inflight_sigterm() {
    caught(
        fake(&["--fault", "exit-at-once"], "/sleep?ms={ms}"),
        Check::InflightSigterm,
        "in flight at SIGTERM, got",
    );
}

#[test]
fn sigint_immediate_fails_inflight_sigint() {
    caught(
        fake(&["--fault", "sigint-immediate"], "/sleep?ms={ms}"),
        Check::InflightSigint,
        "in flight at SIGINT, got",
    );
}

#[test]
fn truncate_stream_fails_inflight_on_a_short_body() {
    caught(
        fake(&["--fault", "truncate-stream"], "/stream?chunks=8&ms=100"),
        Check::InflightSigterm,
        "where the same request got",
    );
}

#[test]
fn stop_accept_at_signal_fails_refused_not_reset() {
    let mut options = fake(
        &[
            "--fault",
            "stop-accept-at-signal",
            "--unready-delay-ms",
            "300",
        ],
        "/sleep?ms={ms}",
    );
    options.unready_delay = Duration::from_millis(300);
    caught(options, Check::RefusedNotReset, "got reset before any byte");
}

#[test]
fn close_idle_fails_keepalive_during_drain() {
    caught(
        fake(&["--fault", "close-idle"], "/sleep?ms={ms}"),
        Check::KeepaliveDuringDrain,
        "the idle keep-alive connection",
    );
}

#[test]
fn wait_idle_fails_idle_keepalive_exit() {
    caught(
        fake(&["--fault", "wait-idle"], "/sleep?ms={ms}"),
        Check::IdleKeepaliveExit,
        "idle keep-alive connections open",
    );
}

#[test]
fn wait_partial_head_fails_half_sent_exit() {
    caught(
        fake(&["--fault", "wait-partial-head"], "/sleep?ms={ms}"),
        Check::HalfSentExit,
        "half a request head",
    );
}

#[test]
fn ready_200_fails_readiness_first() {
    let mut options = fake(
        &["--fault", "ready-200", "--unready-delay-ms", "300"],
        "/sleep?ms={ms}",
    );
    options.ready = Some("/health/ready".into());
    options.unready_delay = Duration::from_millis(300);
    caught(options, Check::ReadinessFirst, "still answered 2xx");
}

#[test]
fn stop_accept_at_signal_fails_readiness_first_on_the_unready_delay() {
    let mut options = fake(
        &[
            "--fault",
            "stop-accept-at-signal",
            "--unready-delay-ms",
            "300",
        ],
        "/sleep?ms={ms}",
    );
    options.ready = Some("/health/ready".into());
    options.unready_delay = Duration::from_millis(300);
    caught(options, Check::ReadinessFirst, "before the unready delay");
}

#[test]
fn a_failing_cleanup_step_fails_clean_exit() {
    caught(
        fake(
            &["--cleanup", "db", "--cleanup-fail", "db"],
            "/sleep?ms={ms}",
        ),
        Check::CleanExit,
        "exited with code 1",
    );
}

#[test]
fn ignore_sigterm_fails_clean_exit() {
    caught(
        fake(&["--fault", "ignore-sigterm"], "/sleep?ms={ms}"),
        Check::CleanExit,
        "still running",
    );
}

#[test]
fn silent_deadline_fails_clean_exit() {
    caught(
        fake(
            &["--fault", "silent-deadline", "--drain-timeout-ms", "200"],
            "/sleep?ms={ms}",
        ),
        Check::CleanExit,
        "the drain was not clean",
    );
}

#[test]
fn ignore_second_signal_fails_second_signal() {
    caught(
        fake(&["--fault", "ignore-second-signal"], "/sleep?ms={ms}"),
        Check::SecondSignal,
        "after the second SIGTERM",
    );
}

#[test]
fn stop_accept_at_signal_fails_load_at_sigterm() {
    let mut options = fake(
        &[
            "--fault",
            "stop-accept-at-signal",
            "--unready-delay-ms",
            "300",
        ],
        "/sleep?ms={ms}",
    );
    options.unready_delay = Duration::from_millis(300);
    caught(options, Check::LoadAtSigterm, "got reset before any byte");
}

#[test]
fn a_server_that_does_not_come_up_fails_start() {
    let _one = serial();
    let mut options = fake(&[], "/sleep?ms={ms}");
    // A stray word on its command line: it exits with a usage error.
    options.command = vec![
        FAKE.into(),
        "--addr".into(),
        "127.0.0.1:0".into(),
        "{port}".into(),
    ];
    options.bounds.start = Duration::from_millis(1500);
    let reports = run(&options, Check::all());
    assert_eq!(reports.len(), 1, "checks ran after a failed start");
    assert_eq!(reports[0].verdict, Verdict::Fail);
    assert!(
        reports[0].findings[0].contains("the server did not start"),
        "{:#?}",
        reports[0]
    );
}

#[test]
fn a_slow_request_that_ignores_ms_fails_start() {
    let _one = serial();
    // `/health/live` answers at once, whatever `ms` says.
    let options = fake(&[], "/health/live?ms={ms}");
    let reports = run(&options, Check::all());
    assert_eq!(reports.len(), 1);
    assert!(
        reports[0]
            .findings
            .iter()
            .any(|f| f.contains("does not honour {ms}")),
        "{:#?}",
        reports[0]
    );
}
