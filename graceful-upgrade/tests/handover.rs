//! `start` and `Inherited` with real processes: this executable starts
//! itself again as the new process, which tells from the listeners it
//! inherited what to do (one: serve; two: exit 3 before serving; none:
//! never report), and real sockets on 127.0.0.1.

use graceful_upgrade::{Failure, Inherited, Outcome, start};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::process::ExitCode;
use std::time::{Duration, Instant};

fn main() -> ExitCode {
    let mut inherited = Inherited::from_env().expect("inherited sockets");
    if inherited.is_upgrade() {
        new_process(inherited);
    }
    a_new_process_serves_on_the_same_socket();
    a_new_process_that_exits_is_reported_and_the_socket_stays();
    a_silent_new_process_times_out_and_is_killed();
    a_new_process_cancelled_at_once_is_ended();
    a_process_started_plainly_inherits_nothing(&mut inherited);
    eprintln!("handover: 5 passed");
    ExitCode::SUCCESS
}

/// The new process: what to do depends on how many listeners it got.
fn new_process(mut inherited: Inherited) -> ! {
    let mut listeners = Vec::new();
    while let Some(listener) = inherited.take_listener().expect("a TCP listener") {
        listeners.push(listener);
    }
    match listeners.len() {
        1 => {
            let listener = listeners.pop().unwrap();
            listener.set_nonblocking(false).unwrap();
            inherited.notify_ready().expect("report");
            // Answer `new PID` on each connection until one says `quit`.
            for stream in listener.incoming() {
                let mut stream = stream.unwrap();
                let mut line = String::new();
                BufReader::new(&stream).read_line(&mut line).unwrap();
                writeln!(stream, "new {}", std::process::id()).unwrap();
                if line.trim() == "quit" {
                    std::process::exit(0);
                }
            }
            std::process::exit(1)
        }
        2 => std::process::exit(3),
        _ => loop {
            std::thread::sleep(Duration::from_secs(60));
        },
    }
}

fn outcome(starting: &mut graceful_upgrade::Starting) -> Outcome {
    futures_lite::future::block_on(std::future::poll_fn(|cx| starting.poll_outcome(cx)))
}

fn ask(addr: std::net::SocketAddr, line: &str) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    writeln!(stream, "{line}").unwrap();
    let mut answer = String::new();
    BufReader::new(&stream).read_line(&mut answer).unwrap();
    answer.trim().to_owned()
}

fn a_new_process_serves_on_the_same_socket() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // Connected before the new process exists: queued, never refused.
    let mut early = TcpStream::connect(addr).unwrap();
    let mut starting = start(&[listener.as_fd()], Duration::from_secs(10)).expect("started");
    let Outcome::Ready(mut child) = outcome(&mut starting) else {
        panic!("the new process did not report");
    };
    let pid = child.id();
    assert_eq!(starting.pid(), Some(pid));
    // This process lets go of its copy; the socket stays open.
    drop(listener);
    early
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    writeln!(early, "hello").unwrap();
    let mut answer = String::new();
    BufReader::new(&early).read_line(&mut answer).unwrap();
    assert_eq!(answer.trim(), format!("new {pid}"), "the queued connection");
    assert_eq!(ask(addr, "hello"), format!("new {pid}"), "a later one");
    assert_eq!(ask(addr, "quit"), format!("new {pid}"));
    assert!(child.wait().unwrap().success());
}

fn a_new_process_that_exits_is_reported_and_the_socket_stays() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let second = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut starting = start(&[listener.as_fd(), second.as_fd()], Duration::from_secs(10)).unwrap();
    match outcome(&mut starting) {
        Outcome::Failed(failure @ Failure::Exited(Some(status))) => {
            assert_eq!(status.code(), Some(3));
            assert_eq!(failure.reason(), "exited");
        }
        other => panic!("expected an exit, got {other:?}"),
    }
    // This process still listens.
    let _client = TcpStream::connect(addr).expect("still listening");
    listener.accept().expect("and accepting");
}

fn a_silent_new_process_times_out_and_is_killed() {
    let started = Instant::now();
    let mut starting = start(&[], Duration::from_millis(500)).unwrap();
    match outcome(&mut starting) {
        Outcome::Failed(failure @ Failure::Timeout) => assert_eq!(failure.reason(), "timeout"),
        other => panic!("expected a timeout, got {other:?}"),
    }
    let pid = starting.pid().expect("it was started");
    assert!(started.elapsed() < Duration::from_secs(8), "bounded wait");
    // Killed and reaped: no such process any more.
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the silent process is gone"
    );
}

/// `start` returns before the fork (it happens on the waiting thread), so
/// a cancel at once comes before the process exists: it is ended as soon as
/// it does, never reported ready.
fn a_new_process_cancelled_at_once_is_ended() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut starting = start(&[listener.as_fd()], Duration::from_secs(10)).unwrap();
    starting.cancel();
    match outcome(&mut starting) {
        Outcome::Failed(failure @ Failure::Exited(_)) => assert_eq!(failure.reason(), "exited"),
        Outcome::Ready(child) => {
            graceful_upgrade::kill(child);
            panic!("a cancelled new process was reported ready");
        }
        other => panic!("expected the cancelled process to be ended, got {other:?}"),
    }
    let pid = starting.pid().expect("it was started");
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the cancelled process is gone"
    );
}

fn a_process_started_plainly_inherits_nothing(inherited: &mut Inherited) {
    assert!(!inherited.is_upgrade());
    assert!(inherited.take_listener().unwrap().is_none());
    inherited.notify_ready().expect("nothing to report to");
}
