//! `sse::sse` on smol: an open event stream keeps flowing during the
//! unready delay, then ends by itself at `closed` with `retry: 1000` and
//! the chunked terminator, and the drain ends with it (exit 0).

use futures_lite::{StreamExt, stream};
use graceful_smol::{DrainOutcome, Global, Shutdown};
use graceful_test_support::sse::{self, End};
use hyper::body::Incoming;
use hyper::service::service_fn;
use smol::Async;
use std::convert::Infallible;
use std::time::Duration;

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

    let ended = sse::flows_while_unready_then_ends(addr, &shutdown, End::Response);
    assert!(
        ended >= UNREADY && ended < UNREADY + Duration::from_millis(500),
        "the last event within 500 ms of closed: {ended:?}"
    );
    let report = server.join().expect("server");
    assert_eq!(report.drain(), DrainOutcome::Drained);
    assert_eq!(report.exit_code(), 0);
}
