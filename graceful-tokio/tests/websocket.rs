//! `websocket::upgrade`: an open WebSocket echoes until `closed`, is sent
//! Close 1001 there, echoes nothing after it, and holds the drain until the
//! client answers with its Close, or for one second when it never does.

use futures_util::{SinkExt, StreamExt};
use graceful_test_support::ws;
use graceful_tokio::websocket;
use graceful_tokio::{Report, Shutdown};
use http_body_util::Empty;
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A server whose every request is an echo WebSocket; the report, and when
/// `drained` came, are sent on the channel at the end.
fn start() -> (Shutdown, SocketAddr, mpsc::Receiver<(Report, Instant)>) {
    let driver = Shutdown::builder()
        .quiet()
        .drain_timeout(Duration::from_secs(30))
        .build()
        .expect("build");
    let shutdown = driver.handle();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let addr = listener.local_addr().expect("addr");
    let (done, report) = mpsc::channel();
    let handle = shutdown.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            let routes = handle.clone();
            let service = service_fn(move |mut request: Request<Incoming>| {
                let echo = websocket::upgrade(&routes, &mut request, |mut socket| async move {
                    while let Some(Ok(message)) = socket.next().await {
                        if message.is_text() && socket.send(message).await.is_err() {
                            break;
                        }
                    }
                });
                let response: Response<Empty<Bytes>> = echo.expect("a websocket handshake");
                async move { Ok::<_, Infallible>(response) }
            });
            tokio::spawn(graceful_tokio::serve(listener, service, &handle));
            let drained = handle.drained();
            let run = tokio::spawn(graceful_tokio::run(driver));
            drained.await;
            let at = Instant::now();
            let report = run.await.expect("run");
            let _ = done.send((report, at));
        });
    });
    (shutdown, addr, report)
}

#[test]
fn a_socket_is_told_to_go_away_at_closed_and_drained_follows_the_clients_close() {
    ws::told_to_go_away_then_drained_at_the_clients_close(start());
}

#[test]
fn a_client_that_never_answers_is_closed_one_second_after_the_servers_close() {
    ws::closed_one_second_after_the_servers_close(start());
}
