//! `sse::sse`: an open event stream keeps flowing during the unready delay,
//! then ends by itself at `closed` with `retry: 1000`, and the drain ends
//! with it (exit 0) long before the drain deadline.

use futures_lite::{StreamExt, stream};
use graceful_test_support::sse::{self, End};
use graceful_tokio::{DrainOutcome, Shutdown};
use std::convert::Infallible;
use std::time::Duration;

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
    let ended = sse::flows_while_unready_then_ends(addr, &shutdown, End::Connection);
    let report = server.join().expect("server");
    assert_eq!(report.drain(), DrainOutcome::Drained);
    assert_eq!(report.exit_code(), 0);
    assert!(
        ended >= Duration::from_millis(500) && ended < Duration::from_secs(10),
        "ended at closed, after the unready delay: {ended:?}"
    );
}
