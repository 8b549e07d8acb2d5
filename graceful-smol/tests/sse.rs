//! `sse::sse` on smol: an open event stream keeps flowing during the
//! unready delay, then ends by itself at `closed` with `retry: 1000` and
//! the chunked terminator, and the drain ends with it (exit 0).

use futures_lite::{StreamExt, stream};
use graceful_smol::{DrainOutcome, Global, Shutdown, Signal};
use hyper::body::Incoming;
use hyper::service::service_fn;
use smol::Async;
use std::convert::Infallible;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

const UNREADY: Duration = Duration::from_millis(600);

#[test]
fn an_open_stream_flows_while_unready_then_ends_at_closed_and_the_exit_is_0() {
    let driver = Shutdown::builder()
        .quiet()
        .unready_delay(UNREADY)
        .drain_timeout(Duration::from_secs(30))
        .build()
        .expect("build");
    let shutdown = driver.handle();
    let listener = Async::<std::net::TcpListener>::bind(([127, 0, 0, 1], 0)).expect("bind");
    let addr = listener.get_ref().local_addr().expect("addr");
    let handle = shutdown.clone();
    let server = std::thread::spawn(move || {
        smol::block_on(async move {
            let routes = handle.clone();
            let service = service_fn(move |_: hyper::Request<Incoming>| {
                let ticks = stream::iter(0..).then(|i| async move {
                    if i > 0 {
                        smol::Timer::after(Duration::from_millis(100)).await;
                    }
                    format!("data: tick {i}\n\n")
                });
                let response = graceful_smol::sse::sse(&routes, ticks);
                async move { Ok::<_, Infallible>(response) }
            });
            smol::spawn(graceful_smol::serve(listener, service, &handle, Global)).detach();
            graceful_smol::run(driver).await
        })
    });

    let mut client = std::net::TcpStream::connect(addr).expect("connect");
    client
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    client
        .write_all(b"GET /events HTTP/1.1\r\nHost: test\r\n\r\n")
        .expect("send");
    let mut received = Vec::new();
    let mut buffer = [0; 4096];
    let mut read = |received: &mut Vec<u8>| {
        let n = client.read(&mut buffer).expect("read");
        assert!(
            n > 0,
            "ended early: {:?}",
            String::from_utf8_lossy(received)
        );
        received.extend_from_slice(&buffer[..n]);
    };
    while !String::from_utf8_lossy(&received).contains("tick 0") {
        read(&mut received);
    }
    let signalled = Instant::now();
    let _ = shutdown.request(Signal::TERM);
    let before = received.len();
    while signalled.elapsed() < Duration::from_millis(400) {
        read(&mut received);
    }
    assert!(
        received.len() > before,
        "ticks flow during the unready delay"
    );
    while !received.ends_with(b"\r\n0\r\n\r\n") {
        read(&mut received);
    }
    let ended = signalled.elapsed();
    let text = String::from_utf8_lossy(&received);
    assert!(text.contains("text/event-stream"), "{text}");
    assert!(
        text.ends_with("retry: 1000\n\n\r\n0\r\n\r\n"),
        "a last retry event, then the chunked terminator: {text:?}"
    );
    assert!(
        ended >= UNREADY && ended < UNREADY + Duration::from_millis(500),
        "the last event within 500 ms of closed: {ended:?}"
    );
    let report = server.join().expect("server");
    assert_eq!(report.drain(), DrainOutcome::Drained);
    assert_eq!(report.exit_code(), 0);
}
