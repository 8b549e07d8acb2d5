//! `websocket::upgrade` (async-tungstenite, on smol): an open WebSocket echoes until `closed`, is sent
//! Close 1001 there, echoes nothing after it, and holds the drain until the
//! client answers with its Close, or for one second when it never does.

use futures_util::{SinkExt, StreamExt};
use graceful_smol::{Global, websocket};
use graceful_smol::{Report, Shutdown};
use graceful_test_support::ws;
use http_body_util::Empty;
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use smol::Async;
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
    let listener = Async::<std::net::TcpListener>::bind(([127, 0, 0, 1], 0)).expect("bind");
    let addr = listener.get_ref().local_addr().expect("addr");
    let (done, report) = mpsc::channel();
    let handle = shutdown.clone();
    std::thread::spawn(move || {
        smol::block_on(async move {
            let routes = handle.clone();
            let service = service_fn(move |mut request: Request<Incoming>| {
                let echo =
                    websocket::upgrade(&Global, &routes, &mut request, |mut socket| async move {
                        while let Some(Ok(message)) = socket.next().await {
                            if message.is_text() && socket.send(message).await.is_err() {
                                break;
                            }
                        }
                    });
                let response: Response<Empty<Bytes>> = echo.expect("a websocket handshake");
                async move { Ok::<_, Infallible>(response) }
            });
            smol::spawn(graceful_smol::serve(listener, service, &handle, Global)).detach();
            let drained = handle.drained();
            let run = smol::spawn(graceful_smol::run(driver));
            drained.await;
            let at = Instant::now();
            let report = run.await;
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
