//! `sse::sse`: an open event stream keeps flowing during the unready delay,
//! then ends by itself at `closed` with `retry: 1000` and the chunked
//! terminator, within 500 ms, and the drain ends with it (exit 0) long
//! before the drain deadline.

use actix_web::{App, HttpResponse, web};
use futures_lite::{StreamExt, stream};
use graceful_actix::{DrainOutcome, Server, Shutdown, Signal};
use std::convert::Infallible;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

async fn events(shutdown: web::Data<Shutdown>) -> HttpResponse {
    let ticks = stream::iter(0..).then(|i| async move {
        if i > 0 {
            actix_rt::time::sleep(Duration::from_millis(100)).await;
        }
        Ok::<_, Infallible>(web::Bytes::from(format!("data: tick {i}\n\n")))
    });
    graceful_actix::sse::sse(&shutdown, ticks)
}

#[test]
fn an_open_stream_flows_while_unready_then_ends_at_closed_and_the_exit_is_0() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
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
        actix_rt::System::new().block_on(async move {
            let data = web::Data::new(handle.clone());
            let app = move || {
                App::new()
                    .app_data(data.clone())
                    .route("/events", web::get().to(events))
            };
            let serve = actix_rt::spawn(Server::new(app).workers(1).serve(listener, &handle));
            let report = graceful_actix::run(driver).await;
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
    // The end of the response, not of the connection: the connection
    // stays open as an idle keep-alive one (rule 5) until the process
    // exits, which here, with the server on actix's worker threads
    // outliving the test's `System`, is actix's keep-alive timeout (5 s).
    while !received.ends_with(b"\r\n0\r\n\r\n") {
        assert!(
            read(&mut client, &mut received, &mut buffer) > 0,
            "the connection closed before the end of the response"
        );
    }
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
        ended >= Duration::from_millis(600) && ended < Duration::from_millis(1100),
        "the last event within 500 ms of closed (600 ms after the signal): {ended:?}"
    );
}
