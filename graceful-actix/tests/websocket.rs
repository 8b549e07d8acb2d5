//! `websocket::handle` (actix-ws): an open WebSocket echoes until `closed`,
//! is sent Close 1001 there, echoes nothing after it, and holds the drain
//! until the client answers with its Close, or for one second when it
//! never does.

use actix_web::{App, HttpRequest, HttpResponse, web};
use futures_lite::StreamExt;
use graceful_actix::websocket::{self, Message};
use graceful_actix::{Report, Shutdown};
use graceful_test_support::ws;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::{Duration, Instant};

async fn echo(
    request: HttpRequest,
    body: web::Payload,
    shutdown: web::Data<Shutdown>,
) -> actix_web::Result<HttpResponse> {
    let (response, mut session, mut messages) = websocket::handle(&shutdown, &request, body)?;
    actix_web::rt::spawn(async move {
        while let Some(Ok(message)) = messages.next().await {
            if let Message::Text(text) = message
                && session.text(text).await.is_err()
            {
                break;
            }
        }
    });
    Ok(response)
}

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
    let addr = listener.local_addr().expect("addr");
    let (done, report) = mpsc::channel();
    let handle = shutdown.clone();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let data = web::Data::new(handle.clone());
            let app = move || {
                App::new()
                    .app_data(data.clone())
                    .default_service(web::to(echo))
            };
            let server = graceful_actix::serve(listener, app, &handle);
            actix_web::rt::spawn(async move {
                let _ = server.await;
            });
            let drained = handle.drained();
            let run = actix_web::rt::spawn(graceful_actix::run(driver));
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
