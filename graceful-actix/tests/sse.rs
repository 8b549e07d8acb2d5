//! `sse::sse`: an open event stream keeps flowing during the unready delay,
//! then ends by itself at `closed` with `retry: 1000` and the chunked
//! terminator, within 500 ms, and the drain ends with it (exit 0) long
//! before the drain deadline.

use actix_web::{App, HttpResponse, web};
use futures_lite::{StreamExt, stream};
use graceful_actix::{DrainOutcome, Server, Shutdown};
use graceful_test_support::sse::{self, End};
use std::convert::Infallible;
use std::time::Duration;

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
    // The end of the response, not of the connection: the connection
    // stays open as an idle keep-alive one (rule 5) until the process
    // exits, which here, with the server on actix's worker threads
    // outliving the test's `System`, is actix's keep-alive timeout (5 s).
    let ended = sse::flows_while_unready_then_ends(addr, &shutdown, End::Response);
    let report = server.join().expect("server");
    assert_eq!(report.drain(), DrainOutcome::Drained);
    assert_eq!(report.exit_code(), 0);
    assert!(
        ended >= Duration::from_millis(600) && ended < Duration::from_millis(1100),
        "the last event within 500 ms of closed (600 ms after the signal): {ended:?}"
    );
}
