//! systemd's notifications over the real protocol: a unix datagram socket
//! named by `NOTIFY_SOCKET`, read by the test, and a process of its own
//! (this test binary again) that sends to it, so that the variable is set
//! for that process alone.

#![cfg(feature = "systemd")]

use futures_lite::future::block_on;
use graceful_core::{ManualClock, Shutdown, Signal};
use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::Duration;

const CHILD: &str = "GRACEFUL_SYSTEMD_TEST_CHILD";

/// What the server does, in the child process: ready, then a shutdown
/// with one request in flight, one cleanup step, and the report.
fn serve() {
    let driver = Shutdown::builder()
        .unready_delay(Duration::from_secs(2))
        .drain_timeout(Duration::from_secs(15))
        .cleanup_timeout(Duration::from_secs(3))
        .notify_systemd()
        .quiet()
        .build()
        .unwrap();
    let shutdown = driver.handle();
    shutdown
        .on_cleanup("store", || async { Ok::<_, std::io::Error>(()) })
        .unwrap();
    let listener = shutdown.track_listener().unwrap();
    graceful_core::systemd::notify_ready().unwrap();
    let guard = shutdown.enter_owned().unwrap();
    let _ = shutdown.request(Signal::TERM);
    let clock = ManualClock::new();
    let mut run = std::pin::pin!(driver.run(clock.clone()));
    // The unready delay passes on the manual clock, then the listener
    // closes and the request ends.
    assert!(block_on(futures_lite::future::poll_once(&mut run)).is_none());
    clock.advance(Duration::from_secs(2));
    drop(listener);
    drop(guard);
    let report = block_on(run);
    assert_eq!(report.exit_code(), 0);
}

/// Runs this test binary's test `name` again in a process of its own, as
/// the child that serves, with `env` set; true when it succeeded. In that
/// process, [`is_child`] is true.
fn run_child(name: &str, env: &[(&str, &std::ffi::OsStr)], remove: &[&str]) -> bool {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command.args(["--exact", name, "--quiet"]).env(CHILD, "1");
    for (key, value) in env {
        command.env(key, value);
    }
    for key in remove {
        command.env_remove(key);
    }
    command.status().unwrap().success()
}

fn is_child() -> bool {
    std::env::var_os(CHILD).is_some()
}

fn messages(socket: &UnixDatagram) -> Vec<String> {
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = socket.recv(&mut buf) {
        out.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    out
}

/// Runs the test `name` again as the child, with `NOTIFY_SOCKET` naming a
/// datagram socket of this process, and returns what the child sent there.
fn notifications_of(name: &str) -> Vec<String> {
    let short = &name[..name.len().min(12)];
    let dir = std::env::temp_dir().join(format!("graceful-systemd-{}-{short}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    let served = run_child(name, &[("NOTIFY_SOCKET", path.as_os_str())], &[]);
    assert!(served, "the child failed");
    let got = messages(&socket);
    let _ = std::fs::remove_dir_all(&dir);
    got
}

#[test]
fn notifications_follow_the_shutdown() {
    if is_child() {
        return serve();
    }
    let got = notifications_of("notifications_follow_the_shutdown");
    let expected = [
        "READY=1\nSTATUS=serving\n",
        // 2 s unready + 15 s drain + 3 s cleanup + 1 s margin.
        "STOPPING=1\nSTATUS=stopping (SIGTERM)\nEXTEND_TIMEOUT_USEC=21000000\n",
        "STATUS=draining\nEXTEND_TIMEOUT_USEC=19000000\n",
        "STATUS=cleaning up\nEXTEND_TIMEOUT_USEC=4000000\n",
        "STATUS=cleaning up\nEXTEND_TIMEOUT_USEC=4000000\n",
        "STATUS=finished (exit 0)\n",
    ];
    assert_eq!(got, expected);
}

/// What an upgrade does, in the child process: ready, then the reload's
/// start, a failed attempt (ready again), a second start and the
/// hand-over to the new process 4242.
fn upgrade() {
    let driver = Shutdown::builder()
        .drain_timeout(Duration::from_secs(15))
        .cleanup_timeout(Duration::from_secs(3))
        .notify_systemd()
        .quiet()
        .build()
        .unwrap();
    let shutdown = driver.handle();
    graceful_core::systemd::notify_ready().unwrap();
    graceful_core::systemd::notify_reloading().unwrap();
    graceful_core::systemd::notify_ready().unwrap();
    graceful_core::systemd::notify_reloading().unwrap();
    assert!(shutdown.hand_over(4242));
    let report = block_on(driver.run(ManualClock::new()));
    assert_eq!(report.exit_code(), 0);
}

#[test]
fn an_upgrade_is_a_reload_that_ends_with_the_new_main_pid() {
    if is_child() {
        return upgrade();
    }
    let got = notifications_of("an_upgrade_is_a_reload_that_ends_with_the_new_main_pid");
    // RELOADING=1 carries the monotonic clock systemd matches it with.
    let reloading = |m: &String| {
        let lines: Vec<&str> = m.lines().collect();
        lines.len() == 3
            && lines[0] == "RELOADING=1"
            && lines[1]
                .strip_prefix("MONOTONIC_USEC=")
                .is_some_and(|n| n.parse::<u64>().is_ok_and(|n| n > 0))
            && lines[2] == "STATUS=upgrading"
    };
    assert_eq!(got.len(), 8, "{got:#?}");
    assert_eq!(got[0], "READY=1\nSTATUS=serving\n");
    assert!(reloading(&got[1]), "{got:#?}");
    assert_eq!(
        got[2], "READY=1\nSTATUS=serving\n",
        "a failed upgrade ends the reload"
    );
    assert!(reloading(&got[3]), "{got:#?}");
    assert_eq!(got[4], "MAINPID=4242\nREADY=1\nSTATUS=upgraded\n");
    // No STOPPING=1: the service goes on, in the new process.
    assert_eq!(got[5], "STATUS=draining\nEXTEND_TIMEOUT_USEC=19000000\n");
    assert_eq!(got[6], "STATUS=cleaning up\nEXTEND_TIMEOUT_USEC=4000000\n");
    assert_eq!(got[7], "STATUS=finished (exit 0)\n");
}

#[test]
fn without_notify_socket_nothing_is_sent_and_nothing_fails() {
    if is_child() {
        return serve();
    }
    // The child's own environment has no NOTIFY_SOCKET: every call is a
    // no-op that returns Ok.
    assert!(run_child(
        "without_notify_socket_nothing_is_sent_and_nothing_fails",
        &[],
        &["NOTIFY_SOCKET"],
    ));
}
