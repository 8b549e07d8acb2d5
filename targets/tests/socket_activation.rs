//! Socket activation as systemd does it, against the three targets: the
//! listening socket is created by the parent and passed as descriptor 3,
//! with `LISTEN_FDS=1` and `LISTEN_PID` set to the served process's own pid
//! (the parent here is `sh`, which sets `LISTEN_PID=$$` and then `exec`s
//! the target, so the pid is the target's, as systemd's fork-then-exec
//! gives it).
//!
//! What must hold: the target serves on the socket it was given (it binds
//! nothing of its own), and at its exit the socket stays open and
//! accepting for the parent, which keeps it for the next instance, as
//! systemd does. A drop-all socket filter or a `shutdown(2)` on it would
//! stop the parent's copy too: the connection made after the exit must
//! reach the parent with its bytes. And `LISTEN_PID` naming another
//! process means the descriptors are not this one's: the target binds its
//! own `--addr` instead.

use command_fds::{CommandFdExt, FdMapping};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// A target started under `sh`, with `listener` as descriptor 3 and
/// `LISTEN_PID` set by `pid_expr` (`$$`: the target's own pid).
fn activated(
    program: &str,
    listener: &TcpListener,
    pid_expr: &str,
) -> (Running, BufReader<ChildStdout>) {
    let script = format!(
        "LISTEN_FDS=1 LISTEN_PID={pid_expr} LISTEN_FDNAMES=http; export LISTEN_FDS LISTEN_PID LISTEN_FDNAMES; exec \"$0\" \"$@\""
    );
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(script)
        .arg(program)
        .args(["--addr", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    command
        .fd_mappings(vec![FdMapping {
            parent_fd: listener.try_clone().expect("a copy of the listener").into(),
            child_fd: 3,
        }])
        .expect("descriptor 3 for the target");
    let mut child = command.spawn().expect("start the target under sh");
    let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    (Running(Some(child)), stdout)
}

/// A started target, killed if a failed assertion leaves it running.
struct Running(Option<Child>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The address of the first `listening ADDR` line.
fn listening(stdout: &mut BufReader<ChildStdout>) -> SocketAddr {
    let mut line = String::new();
    loop {
        line.clear();
        let read = stdout.read_line(&mut line).expect("the target's output");
        assert!(read > 0, "the target ended before `listening`");
        if let Some(addr) = line.trim_end().strip_prefix("listening ") {
            return addr.parse().expect("an address after `listening`");
        }
    }
}

/// `GET /health/live` on a connection of its own answers `200`.
fn live(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(5)) else {
        return false;
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let request = b"GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    if stream.write_all(request).is_err() {
        return false;
    }
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    answer.starts_with(b"HTTP/1.1 200")
}

/// Sends SIGTERM and waits (bounded) for the exit; its code.
fn terminate(mut running: Running) -> Option<i32> {
    let child = running.0.as_mut().expect("a running target");
    let pid = child.id().to_string();
    let term = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(term.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            running.0 = None;
            return status.code();
        }
        // Dropping `running` kills it.
        assert!(
            Instant::now() < deadline,
            "the target did not exit within 15 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn serves_the_activated_socket_and_leaves_it_open(program: &str) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (running, mut stdout) = activated(program, &listener, "$$");
    assert_eq!(
        listening(&mut stdout),
        addr,
        "the target did not serve the socket it was given"
    );
    assert!(live(addr), "no 200 on the activated socket");
    assert_eq!(terminate(running), Some(0), "exit code on SIGTERM");

    // The instance is gone; the socket is still the parent's, and open.
    let mut client = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .expect("a connect after the exit: the parent's socket must still listen");
    client.write_all(b"after the exit").unwrap();
    listener.set_nonblocking(false).unwrap();
    let (mut accepted, _) = listener
        .accept()
        .expect("the parent accepts what came after the exit");
    accepted
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut bytes = [0u8; 14];
    accepted
        .read_exact(&mut bytes)
        .expect("the bytes of a connection made after the exit reach the parent");
    assert_eq!(&bytes, b"after the exit");
}

fn ignores_descriptors_meant_for_another_process(program: &str) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let given = listener.local_addr().unwrap();
    // pid 1 is never the target.
    let (running, mut stdout) = activated(program, &listener, "1");
    let bound = listening(&mut stdout);
    assert_ne!(
        bound, given,
        "the target took descriptors meant for another process"
    );
    assert!(live(bound));
    assert_eq!(terminate(running), Some(0));
}

macro_rules! targets {
    ($($name:ident: $bin:literal;)*) => {
        mod activated_socket {
            $( #[test] fn $name() { super::serves_the_activated_socket_and_leaves_it_open(env!($bin)); } )*
        }
        mod other_process {
            $( #[test] fn $name() { super::ignores_descriptors_meant_for_another_process(env!($bin)); } )*
        }
    };
}

targets! {
    tokio: "CARGO_BIN_EXE_tokio-target";
    smol: "CARGO_BIN_EXE_smol-target";
    actix: "CARGO_BIN_EXE_actix-target";
}
