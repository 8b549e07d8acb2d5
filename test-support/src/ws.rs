//! A blocking tungstenite client for the WebSocket tests.

use graceful_core::{DrainOutcome, Report, Shutdown, Signal};
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Message, WebSocket};

/// Connects to `ws://{addr}/ws` with a 10 s read timeout and checks the
/// handshake's `101`.
pub fn connect(addr: SocketAddr) -> WebSocket<TcpStream> {
    let tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let (socket, response) =
        tungstenite::client(format!("ws://{addr}/ws"), tcp).expect("handshake");
    assert_eq!(response.status(), 101);
    socket
}

/// Sends `text` and checks that the next message is the same text.
pub fn echoes(socket: &mut WebSocket<TcpStream>, text: &str) {
    socket.send(Message::text(text)).expect("send");
    assert_eq!(socket.read().expect("echo"), Message::text(text));
}

/// Reads the server's Close frame and checks its code is 1001.
pub fn going_away(socket: &mut WebSocket<TcpStream>) {
    match socket.read().expect("the server's close") {
        Message::Close(Some(frame)) => assert_eq!(frame.code, CloseCode::Away),
        other => panic!("not a close 1001: {other:?}"),
    }
}

/// The server under test's end: its shutdown handle, its address, and the
/// channel its report comes on, with the moment `drained` came.
pub type Started = (Shutdown, SocketAddr, mpsc::Receiver<(Report, Instant)>);

/// An open socket echoes, is in flight, is sent Close 1001 at `closed`
/// (a message sent after it is not echoed), stays in flight until the
/// client answers, and `drained` comes within 500 ms of the client's Close.
pub fn told_to_go_away_then_drained_at_the_clients_close((shutdown, addr, report): Started) {
    let mut socket = connect(addr);
    echoes(&mut socket, "before");
    assert_eq!(shutdown.in_flight(), 1, "an open socket is in progress");

    let _ = shutdown.request(Signal::TERM);
    // The Close frame is on its way; a message sent now arrives after it.
    std::thread::sleep(Duration::from_millis(300));
    socket.send(Message::text("late")).expect("send late");
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
            Ok(Message::Text(text)) => panic!("echoed after the close: {text}"),
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

/// A client that never answers the server's Close 1001 has its connection
/// closed by the server between 800 ms and 3 s after it, and the drain
/// still ends `Drained` with exit 0.
pub fn closed_one_second_after_the_servers_close((shutdown, addr, report): Started) {
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
