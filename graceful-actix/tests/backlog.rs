//! Connections the kernel completed before the listener closed are
//! answered, not reset.
//!
//! To have connections sitting in the accept queue when the listener
//! closes, the server's `System` thread (where the accept loop runs) is held
//! still while clients connect and the shutdown starts draining; the driver
//! runs on a thread of its own. When the thread is let go, the accept loop
//! finds the shutdown draining and must take the queue before closing.

mod common;

use actix_web::{App, web};
use common::Events;
use graceful_actix::{Phase, Server, Signal};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

const CLIENTS: usize = 24;

fn wait_until(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + common::PATIENCE;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "{what}: not within {:?}",
            common::PATIENCE
        );
        thread::sleep(Duration::from_millis(2));
    }
}

/// Sends a request and reads until the server closes: the whole answer, or
/// how the connection ended.
fn ask(mut stream: TcpStream) -> Result<String, std::io::Error> {
    stream.set_read_timeout(Some(common::PATIENCE))?;
    stream.write_all(b"GET /live HTTP/1.1\r\nHost: test\r\n\r\n")?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

#[test]
fn connections_completed_before_the_close_are_answered_not_reset() {
    let events = Events::default();
    let driver = common::builder(&events).build().expect("build");
    let shutdown = driver.handle();
    let (report_sender, report) = mpsc::channel();
    thread::spawn(move || {
        let report = actix_web::rt::System::new().block_on(graceful_actix::run(driver));
        let _ = report_sender.send(report);
    });

    let (listener, addr) = common::listener();
    let (held_sender, held) = mpsc::channel();
    let (release, released) = mpsc::channel::<()>();
    let server_shutdown = shutdown.clone();
    thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let serve =
                Server::new(|| App::new().route("/live", web::get().to(|| async { "live" })))
                    .workers(2)
                    .serve(listener, &server_shutdown);
            let serving = actix_web::rt::spawn(serve);
            // Let the accept loop start, then hold this thread still: nothing
            // is accepted until it is released.
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
            let _ = held_sender.send(());
            let _ = released.recv();
            let _ = serving.await;
            // Keep the System, and so the workers, alive.
            std::future::pending::<()>().await;
        });
    });
    held.recv().expect("the server thread is held");

    // The listener is open but nobody accepts: the kernel completes these
    // handshakes and queues the connections.
    let clients: Vec<TcpStream> = (0..CLIENTS)
        .map(|_| TcpStream::connect(addr).expect("connect while the accept loop is held"))
        .collect();
    let _ = shutdown.request(Signal::TERM);
    wait_until("draining", || shutdown.phase() >= Phase::Draining);
    assert_eq!(
        events.at("closed"),
        None,
        "`closed` before the listener could close"
    );
    release.send(()).expect("release the server thread");

    wait_until("closed", || events.at("closed").is_some());
    match TcpStream::connect(addr) {
        Err(error) => assert_eq!(error.kind(), ErrorKind::ConnectionRefused),
        Ok(_) => panic!("a connect after `closed` was accepted"),
    }
    let answers: Vec<_> = clients.into_iter().map(ask).collect();
    for (i, answer) in answers.iter().enumerate() {
        match answer {
            Ok(text) => {
                assert!(
                    text.starts_with("HTTP/1.1 503"),
                    "client {i}: {text:?}, expected a 503"
                );
                assert!(text.contains("connection: close"), "client {i}: {text:?}");
                assert!(text.contains("retry-after: 1"), "client {i}: {text:?}");
            }
            Err(error) => panic!("client {i} in the accept queue was not answered: {error}"),
        }
    }
    let report = report
        .recv_timeout(common::PATIENCE)
        .expect("the shutdown finished");
    assert_eq!(report.exit_code(), 0);
}
