//! The default log as a process shows it: this test runs its own binary
//! again as a child, which shuts down three times (normally, forced, and
//! quiet), and reads the child's standard error.
//!
//! With the `tracing` feature the lines go out as `tracing` events, so the
//! child installs a subscriber that writes each event's message on standard
//! error the way the crate does without the feature.

use futures_lite::future::{block_on, poll_once};
use graceful_core::{ManualClock, Request, Shutdown, Signal};
use std::process::Command;

/// Set in the child's environment.
const CHILD: &str = "GRACEFUL_CORE_LOGS_CHILD";

/// What the child does: three shutdowns on default logging, then exits.
fn child() {
    #[cfg(feature = "tracing")]
    tracing::subscriber::set_global_default(subscriber::Stderr).unwrap();

    let driver = Shutdown::builder().build().unwrap();
    let shutdown = driver.handle();
    shutdown
        .on_cleanup_sync("db", || Ok::<_, String>(()))
        .unwrap();
    let _ = shutdown.request(Signal::TERM);
    let report = block_on(driver.run(ManualClock::new()));
    assert_eq!(report.exit_code(), 0);

    // Forced, and the run never polled again: the process would exit here.
    let driver = Shutdown::builder().build().unwrap();
    let shutdown = driver.handle();
    let _guard = shutdown.enter().unwrap();
    let mut run = driver.run(ManualClock::new());
    let _ = shutdown.request(Signal::TERM);
    assert!(block_on(poll_once(&mut run)).is_none());
    assert_eq!(shutdown.request(Signal::INT), Request::Forced);

    let driver = Shutdown::builder().quiet().build().unwrap();
    let shutdown = driver.handle();
    let _ = shutdown.request(Signal::HUP);
    block_on(driver.run(ManualClock::new()));
}

#[test]
fn a_shutdown_is_logged_on_standard_error_by_default() {
    if std::env::var_os(CHILD).is_some() {
        return child();
    }
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_shutdown_is_logged_on_standard_error_by_default",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(output.status.success(), "the child failed:\n{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    let report = lines
        .iter()
        .find(|line| line.starts_with("graceful: report: shutdown on SIGTERM, drained"))
        .expect("the report of the first shutdown");
    assert!(report.ends_with("; db ok in 0ns; exit code 0"), "{report}");
    for expected in [
        "graceful: shutdown requested (SIGTERM)",
        "graceful: draining: new work refused, listeners closing",
        "graceful: listeners closed",
        "graceful: drained",
        "graceful: cleanup db ok in 0ns",
        "graceful: finished: exit 0",
        "graceful: forced (SIGINT): exit 130",
    ] {
        assert!(lines.contains(&expected), "no {expected:?} in:\n{stderr}");
    }
    assert!(
        lines.iter().any(|line| line.starts_with(
            "graceful: report: shutdown on SIGTERM, forced by SIGINT, drain interrupted with 1 in flight"
        )),
        "no forced report in:\n{stderr}"
    );
    assert!(
        !stderr.contains("SIGHUP"),
        "the quiet one logged:\n{stderr}"
    );
    let requested = lines
        .iter()
        .filter(|line| line.starts_with("graceful: shutdown requested"))
        .count();
    assert_eq!(requested, 2, "{stderr}");
}

#[cfg(feature = "tracing")]
mod subscriber {
    use std::fmt;
    use std::io::Write;
    use tracing::field::{Field, Visit};
    use tracing::{Event, Metadata, Subscriber, span};

    /// Writes every event's message on standard error, after `graceful: `.
    pub(crate) struct Stderr;

    struct Message(String);

    impl Visit for Message {
        fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
            if field.name() == "message" {
                self.0 = format!("{value:?}");
            }
        }
    }

    impl Subscriber for Stderr {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }

        fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
            span::Id::from_u64(1)
        }

        fn record(&self, _: &span::Id, _: &span::Record<'_>) {}

        fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}

        fn event(&self, event: &Event<'_>) {
            let mut message = Message(String::new());
            event.record(&mut message);
            let line = format!("graceful: {}\n", message.0);
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
        }

        fn enter(&self, _: &span::Id) {}

        fn exit(&self, _: &span::Id) {}
    }
}
