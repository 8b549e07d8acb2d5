//! Keep-alive connections under load-balancer health checks (HTTP/1.0
//! requests on fresh connections between the requests of a keep-alive
//! HTTP/1.1 connection), and axum's `ConnectInfo` under `serve_tower`.

use graceful_conformance::http::{self, Request};
use graceful_tokio::Shutdown;
use std::net::SocketAddr;
use std::time::Duration;

const PATIENCE: Duration = Duration::from_secs(10);

/// Serves an axum app that answers `/` and `/peer` (its `ConnectInfo`),
/// on a current-thread runtime of its own: one worker.
fn start() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            use axum::extract::ConnectInfo;
            let shutdown = Shutdown::builder().build().expect("build").handle();
            let app = axum::Router::new()
                .route("/", axum::routing::get(|| async { "ok" }))
                .route(
                    "/peer",
                    axum::routing::get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move {
                        peer.to_string()
                    }),
                );
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            graceful_tokio::serve_tower(listener, app, &shutdown).await;
        });
    });
    addr
}

#[test]
fn http_1_0_health_checks_do_not_close_keep_alive_connections() {
    let addr = start();
    let mut keep_alive = http::connect(addr, PATIENCE).expect("connect");
    for round in 0..20 {
        let outcome = keep_alive.exchange(&Request::get("/"), PATIENCE);
        let response = outcome
            .response()
            .unwrap_or_else(|| panic!("{round}: {outcome}"));
        assert_eq!(response.status(), 200);
        assert!(!response.head.connection_close(), "{round}: told to close");
        let mut check = http::connect(addr, PATIENCE).expect("connect");
        check.send_raw(b"GET / HTTP/1.0\r\n\r\n").expect("send");
        let outcome = check.read_response(PATIENCE);
        assert_eq!(
            outcome.status(),
            Some(200),
            "health check {round}: {outcome}"
        );
    }
}

#[test]
fn axum_handlers_get_the_peer_s_connect_info() {
    let addr = start();
    let mut conn = http::connect(addr, PATIENCE).expect("connect");
    let local = conn.stream().local_addr().expect("local addr");
    let outcome = conn.exchange(&Request::get("/peer"), PATIENCE);
    assert_eq!(outcome.status(), Some(200), "{outcome}");
    assert_eq!(
        outcome.response().expect("response").text(),
        local.to_string()
    );
}
