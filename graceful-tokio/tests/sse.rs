//! `sse::sse`: an open event stream keeps flowing during the unready delay,
//! then ends by itself at `closed` with `retry: 1000`, and the drain ends
//! with it (exit 0) long before the drain deadline.

use futures_lite::{StreamExt, stream};
use graceful_tokio::{DrainOutcome, Shutdown, Signal};
use std::convert::Infallible;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

#[test]
fn an_open_stream_flows_while_unready_then_ends_at_closed_and_the_exit_is_0() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let addr = listener.local_addr().expect("addr");
    let driver = Shutdown::builder()
        .quiet()
        .unready_delay(Duration::from_millis(600))
        .drain_timeout(Duration::from_secs(30))
        .build()
        .expect("build");
    let shutdown = driver.handle();
    let handle = shutdown.clone();
    let server = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let routes = handle.clone();
            let app = axum::Router::new().route(
                "/events",
                axum::routing::get(move || async move {
                    let ticks = stream::iter(0..).then(|i| async move {
                        if i > 0 {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        Ok::<_, Infallible>(
                            axum::response::sse::Event::default().data(format!("tick {i}")),
                        )
                    });
                    graceful_tokio::sse::sse(&routes, ticks)
                }),
            );
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            let serve = tokio::spawn(graceful_tokio::serve_tower(listener, app, &handle));
            let report = graceful_tokio::run(driver).await;
            let _ = serve.await;
            report
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
    let read = |client: &mut std::net::TcpStream, received: &mut Vec<u8>, buffer: &mut [u8]| {
        let n = client.read(buffer).expect("read");
        received.extend_from_slice(&buffer[..n]);
        n
    };
    while !String::from_utf8_lossy(&received).contains("tick 0") {
        assert!(
            read(&mut client, &mut received, &mut buffer) > 0,
            "ended early"
        );
    }
    let signalled = Instant::now();
    let _ = shutdown.request(Signal::TERM);
    let before = received.len();
    while signalled.elapsed() < Duration::from_millis(400) {
        assert!(
            read(&mut client, &mut received, &mut buffer) > 0,
            "ended while unready"
        );
    }
    assert!(
        received.len() > before,
        "ticks flow during the unready delay"
    );
    while read(&mut client, &mut received, &mut buffer) > 0 {}
    let ended = signalled.elapsed();
    let text = String::from_utf8_lossy(&received);
    assert!(text.contains("text/event-stream"), "{text}");
    assert!(
        text.ends_with("retry: 1000\n\n\r\n0\r\n\r\n"),
        "a last retry event, then the chunked terminator: {text:?}"
    );
    let report = server.join().expect("server");
    assert_eq!(report.drain(), DrainOutcome::Drained);
    assert_eq!(report.exit_code(), 0);
    assert!(
        ended >= Duration::from_millis(500) && ended < Duration::from_secs(10),
        "ended at closed, after the unready delay: {ended:?}"
    );
}
