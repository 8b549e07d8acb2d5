//! The `tonic` feature over real sockets with tonic's own client: the
//! health service follows the shutdown, `Watch` ends with `OK` at `closed`
//! and not before, and a server stream ends with `UNAVAILABLE`.

use futures_lite::{StreamExt, stream};
use graceful_tokio::{Cause, Phase, Shutdown};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tonic::Code;
use tonic::service::Routes;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const UNREADY: Duration = Duration::from_millis(400);

fn serving(status: i32) -> ServingStatus {
    ServingStatus::try_from(status).unwrap_or(ServingStatus::Unknown)
}

async fn check(client: &mut HealthClient<Channel>, service: &str) -> ServingStatus {
    let request = HealthCheckRequest {
        service: service.into(),
    };
    let response = client.check(request).await.expect("Check");
    serving(response.into_inner().status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_turns_not_serving_at_the_signal_and_watch_ends_at_closed() {
    let driver = Shutdown::builder()
        .unready_delay(UNREADY)
        .quiet()
        .build()
        .expect("valid settings");
    let shutdown = driver.handle();
    let (reporter, _) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("orders", tonic_health::ServingStatus::Serving)
        .await;
    let routes = Routes::new(graceful_tokio::tonic::health(&shutdown, &reporter));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let server = tokio::spawn(graceful_tokio::tonic::serve(listener, routes, &shutdown));

    let channel = Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let mut client = HealthClient::new(channel);
    assert_eq!(check(&mut client, "").await, ServingStatus::Serving);
    assert_eq!(check(&mut client, "orders").await, ServingStatus::Serving);
    let unknown = HealthCheckRequest {
        service: "nope".into(),
    };
    let status = client.check(unknown).await.expect_err("unknown service");
    assert_eq!(status.code(), Code::NotFound);

    let request = HealthCheckRequest {
        service: "orders".into(),
    };
    let mut watch = client.watch(request).await.expect("Watch").into_inner();
    let first = watch.message().await.expect("a status").expect("not ended");
    assert_eq!(serving(first.status), ServingStatus::Serving);

    let run = tokio::spawn(graceful_tokio::run(driver));
    let signalled = Instant::now();
    let _ = shutdown.request(Cause::reason("test"));
    let next = watch.message().await.expect("a status").expect("not ended");
    assert_eq!(serving(next.status), ServingStatus::NotServing);
    assert!(signalled.elapsed() < UNREADY, "NOT_SERVING at the signal");
    // The reporter's later word does not change it.
    reporter
        .set_service_status("orders", tonic_health::ServingStatus::Serving)
        .await;
    assert_eq!(
        check(&mut client, "orders").await,
        ServingStatus::NotServing
    );
    assert_eq!(check(&mut client, "").await, ServingStatus::NotServing);

    // The end, with status OK, once the listener is closed.
    let end = tokio::time::timeout(Duration::from_secs(10), watch.message())
        .await
        .expect("Watch ends");
    assert!(matches!(end, Ok(None)), "Watch ended with {end:?}");
    assert!(shutdown.phase() >= Phase::Draining);
    assert!(signalled.elapsed() >= UNREADY, "not before `closed`");

    let report = tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("the drain ends")
        .expect("the driver");
    assert_eq!(report.exit_code(), 0);
    server.await.expect("the server");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_stream_ends_with_unavailable_at_the_going_away_moment() {
    let driver = Shutdown::builder().quiet().build().expect("valid settings");
    let shutdown = driver.handle();
    let ticks = stream::iter(0u64..)
        .then(|i| async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            i
        })
        .map(Ok::<_, tonic::Status>);
    let mut ticks = graceful_tokio::tonic::until_going_away(&shutdown, ticks);
    assert_eq!(ticks.next().await.map(|t| t.ok()), Some(Some(0)));

    let run = tokio::spawn(graceful_tokio::run(driver));
    let _ = shutdown.request(Cause::reason("test"));
    let last = loop {
        match tokio::time::timeout(Duration::from_secs(10), ticks.next()).await {
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(status))) => break status,
            other => panic!("the stream ended without UNAVAILABLE: {other:?}"),
        }
    };
    assert_eq!(last.code(), Code::Unavailable);
    assert_eq!(last.message(), graceful_tokio::tonic::SHUTTING_DOWN);
    assert!(ticks.next().await.is_none());
    assert_eq!(run.await.expect("the driver").exit_code(), 0);
}
