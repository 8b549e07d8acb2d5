//! `websocket::upgrade`: an open WebSocket echoes until `closed`, is sent
//! Close 1001 there, echoes nothing after it, and holds the drain until the
//! client answers with its Close, or for one second when it never does.

use futures_util::{SinkExt, StreamExt};
use graceful_tokio::websocket;
use graceful_tokio::{DrainOutcome, Report, Shutdown, Signal};
use http_body_util::Empty;
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use std::convert::Infallible;
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Message as ClientMessage, WebSocket};

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

fn connect(addr: SocketAddr) -> WebSocket<TcpStream> {
    let tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let (socket, response) =
        tungstenite::client(format!("ws://{addr}/ws"), tcp).expect("handshake");
    assert_eq!(response.status(), 101);
    socket
}

fn echoes(socket: &mut WebSocket<TcpStream>, text: &str) {
    socket.send(ClientMessage::text(text)).expect("send");
    assert_eq!(socket.read().expect("echo"), ClientMessage::text(text));
}

/// Reads the server's Close frame: code 1001.
fn going_away(socket: &mut WebSocket<TcpStream>) {
    match socket.read().expect("the server's close") {
        ClientMessage::Close(Some(frame)) => assert_eq!(frame.code, CloseCode::Away),
        other => panic!("not a close 1001: {other:?}"),
    }
}

#[test]
fn a_socket_is_told_to_go_away_at_closed_and_drained_follows_the_clients_close() {
    let (shutdown, addr, report) = start();
    let mut socket = connect(addr);
    echoes(&mut socket, "before");
    assert_eq!(shutdown.in_flight(), 1, "an open socket is in progress");

    let _ = shutdown.request(Signal::TERM);
    // The Close frame is on its way; a message sent now arrives after it.
    std::thread::sleep(Duration::from_millis(300));
    socket.send(ClientMessage::text("late")).expect("send late");
    going_away(&mut socket);

    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        shutdown.in_flight(),
        1,
        "in progress until the client answers"
    );
    // The next read sends the client's Close; then the server closes.
    let answered = Instant::now();
    loop {
        match socket.read() {
            Ok(ClientMessage::Text(text)) => panic!("echoed after the close: {text}"),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    let (report, drained) = report
        .recv_timeout(Duration::from_secs(10))
        .expect("the shutdown ended");
    assert_eq!(report.drain(), DrainOutcome::Drained);
    assert_eq!(report.exit_code(), 0);
    let after = drained.saturating_duration_since(answered);
    assert!(
        after < Duration::from_millis(500),
        "drained {after:?} after the client's close"
    );
}

#[test]
fn a_client_that_never_answers_is_closed_one_second_after_the_servers_close() {
    let (shutdown, addr, report) = start();
    let mut socket = connect(addr);
    echoes(&mut socket, "before");
    let _ = shutdown.request(Signal::TERM);
    going_away(&mut socket);
    let told = Instant::now();
    // Never answered: read the raw connection to its end instead.
    let mut tcp = socket.get_ref().try_clone().expect("clone");
    let mut rest = Vec::new();
    let _ = tcp.read_to_end(&mut rest);
    let closed = told.elapsed();
    assert!(
        (Duration::from_millis(800)..Duration::from_secs(3)).contains(&closed),
        "the server closed the connection {closed:?} after its close"
    );
    let (report, _) = report
        .recv_timeout(Duration::from_secs(10))
        .expect("the shutdown ended");
    assert_eq!(report.drain(), DrainOutcome::Drained);
    assert_eq!(report.exit_code(), 0);
}
