//! Keep-alive connections under load-balancer health checks: HTTP/1.0
//! requests on fresh connections, served by the same worker between the
//! requests of a keep-alive HTTP/1.1 connection, must not close it.

use actix_web::{App, web};
use graceful_actix::{Server, Shutdown};
use graceful_conformance::http::{self, Request};
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

const PATIENCE: Duration = Duration::from_secs(10);

/// Serves a one-worker app on a thread of its own, for the life of the test
/// process.
fn start() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let shutdown = Shutdown::builder().build().expect("build").handle();
            let app = || App::new().route("/", web::get().to(|| async { "ok" }));
            Server::new(app)
                .workers(1)
                .serve(listener, &shutdown)
                .await
                .expect("serve");
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
        assert_eq!(
            outcome.status(),
            Some(200),
            "keep-alive request {round}: {outcome}"
        );
        assert!(
            !outcome
                .response()
                .expect("response")
                .head
                .connection_close(),
            "keep-alive request {round} was told the connection closes"
        );
        let mut check = http::connect(addr, PATIENCE).expect("connect");
        check
            .send_raw(b"GET / HTTP/1.0\r\n\r\n")
            .expect("send the health check");
        let outcome = check.read_response(PATIENCE);
        assert_eq!(
            outcome.status(),
            Some(200),
            "health check {round}: {outcome}"
        );
    }
}
