//! `Graceful` on its own, as under actix-web's `HttpServer`: driven through
//! actix-web's test service, without this crate's server.

use actix_web::body::MessageBody;
use actix_web::http::ConnectionType;
use actix_web::{App, test, web};
use graceful_actix::{Graceful, Phase, Shutdown, Signal};
use std::time::Duration;

#[actix_web::test]
async fn a_request_is_in_flight_until_its_body_is_sent() {
    let shutdown = Shutdown::builder().build().expect("build").handle();
    let app = test::init_service(
        App::new()
            .wrap(Graceful::new(&shutdown))
            .route("/", web::get().to(|| async { "hello" })),
    )
    .await;
    let response = test::call_service(&app, test::TestRequest::get().uri("/").to_request()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(shutdown.in_flight(), 1, "the body is not sent yet");
    let body = actix_web::body::to_bytes(response.into_body())
        .await
        .unwrap_or_else(|_| panic!("body"));
    assert_eq!(&body[..], b"hello");
    assert_eq!(shutdown.in_flight(), 0, "the body's end ends the request");
}

#[actix_web::test]
async fn a_dropped_response_ends_its_request() {
    let shutdown = Shutdown::builder().build().expect("build").handle();
    let app = test::init_service(
        App::new()
            .wrap(Graceful::new(&shutdown))
            .route("/", web::get().to(|| async { "hello" })),
    )
    .await;
    let response = test::call_service(&app, test::TestRequest::get().uri("/").to_request()).await;
    assert!(response.response().body().size() == actix_web::body::BodySize::Sized(5));
    assert_eq!(shutdown.in_flight(), 1);
    drop(response);
    assert_eq!(shutdown.in_flight(), 0);
}

#[actix_web::test]
async fn once_draining_requests_are_refused_and_answers_close() {
    let driver = Shutdown::builder().build().expect("build");
    let shutdown = driver.handle();
    let app = test::init_service(App::new().wrap(Graceful::new(&shutdown)).route(
        "/slow",
        web::get().to(|| async {
            actix_web::rt::time::sleep(Duration::from_millis(300)).await;
            "slow"
        }),
    ))
    .await;
    // Entered while serving normally, answered once draining.
    let slow = test::call_service(&app, test::TestRequest::get().uri("/slow").to_request());
    let report = actix_web::rt::spawn(async move {
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        let _ = shutdown.request(Signal::TERM);
        graceful_actix::run(driver).await
    });
    let response = slow.await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.response().head().connection_type(),
        ConnectionType::Close,
        "an answer produced while draining closes its connection"
    );
    drop(response);
    let report = report.await.expect("the driver task");
    assert_eq!(report.exit_code(), 0);

    let refused =
        test::call_service(&app, test::TestRequest::get().uri("/slow").to_request()).await;
    assert_eq!(refused.status(), 503);
    assert_eq!(
        refused.response().head().connection_type(),
        ConnectionType::Close
    );
    assert_eq!(
        refused.headers().get("retry-after").map(|v| v.as_bytes()),
        Some(&b"1"[..])
    );
}

#[actix_web::test]
async fn applied_twice_a_request_counts_once() {
    let driver = Shutdown::builder().build().expect("build");
    let shutdown = driver.handle();
    let app = test::init_service(
        App::new()
            .wrap(Graceful::new(&shutdown))
            .wrap(Graceful::new(&shutdown))
            .route("/", web::get().to(|| async { "hello" })),
    )
    .await;
    let response = test::call_service(&app, test::TestRequest::get().uri("/").to_request()).await;
    assert_eq!(shutdown.in_flight(), 1);
    drop(response);
    assert_eq!(shutdown.in_flight(), 0);
    let _ = shutdown.request(Signal::TERM);
    let report = graceful_actix::run(driver).await;
    assert_eq!(report.exit_code(), 0);
    assert!(shutdown.phase() >= Phase::Finished);
}
