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
#[test]
#[ignore = "run by notifications_follow_the_shutdown, in a process of its own"]
fn child() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
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

#[test]
fn notifications_follow_the_shutdown() {
    let dir = std::env::temp_dir().join(format!("graceful-systemd-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    let status = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child", "--ignored", "--quiet"])
        .env(CHILD, "1")
        .env("NOTIFY_SOCKET", &path)
        .status()
        .unwrap();
    assert!(status.success(), "the child failed: {status}");
    let got = messages(&socket);
    let _ = std::fs::remove_dir_all(&dir);
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

#[test]
fn without_notify_socket_nothing_is_sent_and_nothing_fails() {
    // The child's own environment has no NOTIFY_SOCKET: every call is a
    // no-op that returns Ok.
    let status = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child", "--ignored", "--quiet"])
        .env(CHILD, "1")
        .env_remove("NOTIFY_SOCKET")
        .status()
        .unwrap();
    assert!(status.success());
}
