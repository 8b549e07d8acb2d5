//! Keep-alive connections under load-balancer health checks: HTTP/1.0
//! requests on fresh connections, served on the same one-thread executor
//! between the requests of a keep-alive HTTP/1.1 connection, must not close
//! it.

use graceful_conformance::http::{Request as ClientRequest, connect};
use graceful_smol::{Shutdown, Spawn};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use smol::{Async, Executor};
use std::convert::Infallible;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

const PATIENCE: Duration = Duration::from_secs(10);

async fn ok(_: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(b"ok"))))
}

#[test]
fn http_1_0_health_checks_do_not_close_keep_alive_connections() {
    let listener = Async::<TcpListener>::bind(([127, 0, 0, 1], 0)).expect("bind");
    let addr = listener.get_ref().local_addr().expect("addr");
    std::thread::spawn(move || {
        let executor = Arc::new(Executor::new());
        let shutdown = Shutdown::builder().build().expect("build").handle();
        let serve = graceful_smol::serve(listener, service_fn(ok), &shutdown, executor.clone());
        executor.spawn_detached(serve);
        smol::block_on(executor.run(std::future::pending::<()>()));
    });
    let mut keep_alive = connect(addr, PATIENCE).expect("connect");
    for round in 0..20 {
        let outcome = keep_alive.exchange(&ClientRequest::get("/"), PATIENCE);
        let Some(response) = outcome.response() else {
            panic!("keep-alive request {round}: {outcome}");
        };
        assert_eq!(response.status(), 200);
        assert!(!response.head.connection_close(), "{round}: told to close");
        let mut check = connect(addr, PATIENCE).expect("connect");
        check.send_raw(b"GET / HTTP/1.0\r\n\r\n").expect("send");
        let outcome = check.read_response(PATIENCE);
        assert_eq!(
            outcome.status(),
            Some(200),
            "health check {round}: {outcome}"
        );
    }
}
