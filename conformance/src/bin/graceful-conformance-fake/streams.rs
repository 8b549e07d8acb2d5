//! The long-lived streams: `GET /events` (server-sent events) and `GET /ws`
//! (a WebSocket echo, through `tungstenite` on the connection's own thread).
//!
//! Both are requests in progress while they are open. At `closed` an event
//! stream sends `retry: 1000` and ends its chunked body; a WebSocket is sent
//! a Close frame with code 1001, echoes nothing more, and its TCP connection
//! closes when the client answers or 1 s after that Close frame.

use std::io::{self, Write};
use std::net::Shutdown;
use std::sync::PoisonError;
use std::time::{Duration, Instant};

use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::frame::{CloseFrame, Frame};
use tungstenite::{Message, WebSocket};

use crate::config::Fault;
use crate::server::{Conn, Head, respond, write_head_as};
use crate::{Shared, lock};

/// How long a WebSocket whose client does not answer the server's Close
/// stays open (rule 19).
const WS_CLOSE_BOUND: Duration = Duration::from_secs(1);
/// How often a WebSocket's thread looks at the phase between reads.
const WS_POLL: Duration = Duration::from_millis(10);

fn chunk(conn: &mut Conn, text: &str) -> bool {
    let bytes = format!("{:x}\r\n{text}\r\n", text.len());
    conn.stream.write_all(bytes.as_bytes()).is_ok()
}

/// `GET /events`: `data: tick I` at once and then every `interval`, until
/// `closed`. Returns whether the connection stays open.
pub(crate) fn events(shared: &Shared, conn: &mut Conn, head: &Head, interval: Duration) -> bool {
    let config = &shared.config;
    let keep = write_head_as(
        shared,
        conn,
        head,
        (200, "text/event-stream"),
        "Cache-Control: no-cache\r\n",
        None,
        false,
    );
    let started = Instant::now();
    let mut tick: u32 = 0;
    loop {
        if !chunk(conn, &format!("data: tick {tick}\n\n")) {
            return false;
        }
        tick += 1;
        let next = started + interval * tick;
        let mut st = lock(&shared.state);
        loop {
            let away = st.going_away(config) && !config.has(Fault::EventsHold);
            if away {
                drop(st);
                if !config.has(Fault::EventsNoRetry) && !chunk(conn, "retry: 1000\n\n") {
                    return false;
                }
                return conn.stream.write_all(b"0\r\n\r\n").is_ok() && keep;
            }
            let now = Instant::now();
            if now >= next {
                break;
            }
            st = shared
                .changed
                .wait_timeout(st, next - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

fn going_away(shared: &Shared) -> bool {
    lock(&shared.state).going_away(&shared.config)
}

/// `GET /ws`: the handshake, then an echo of every text message until
/// `closed`. Never keeps the connection for HTTP afterwards.
pub(crate) fn websocket(shared: &Shared, conn: &mut Conn, head: &Head) -> bool {
    let config = &shared.config;
    let upgrade = head
        .header("upgrade")
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let Some(key) = head.header("sec-websocket-key").filter(|_| upgrade) else {
        return respond(shared, conn, head, 400, "websocket upgrade expected");
    };
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let answer = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    if conn.stream.write_all(answer.as_bytes()).is_err() {
        return false;
    }
    if conn.stream.set_read_timeout(Some(WS_POLL)).is_err() {
        return false;
    }
    let leftover = std::mem::take(&mut conn.buf);
    let mut ws = WebSocket::from_partially_read(
        &mut conn.stream,
        leftover,
        tungstenite::protocol::Role::Server,
        None,
    );
    // When our Close frame went out; with the `echo-after-close` fault it is
    // written beside tungstenite, which then stays open and echoes.
    let mut close_sent: Option<Instant> = None;
    loop {
        if close_sent.is_none() && going_away(shared) {
            if config.has(Fault::WsNoClose) {
                let _ = ws.get_ref().shutdown(Shutdown::Both);
                return false;
            }
            let code = if config.has(Fault::WsClose1000) {
                CloseCode::Normal
            } else {
                CloseCode::Away
            };
            let frame = CloseFrame {
                code,
                reason: "going away".into(),
            };
            let sent = if config.has(Fault::WsEchoAfterClose) {
                let mut raw = Vec::new();
                Frame::close(Some(frame)).format(&mut raw).is_ok()
                    && ws.get_mut().write_all(&raw).is_ok()
            } else {
                ws.close(Some(frame)).is_ok()
            };
            if !sent {
                return false;
            }
            close_sent = Some(Instant::now());
        }
        if let Some(at) = close_sent
            && (at.elapsed() >= WS_CLOSE_BOUND || config.has(Fault::WsCloseEarly))
            && !config.has(Fault::WsHang)
        {
            return false;
        }
        match ws.read() {
            Ok(Message::Text(text)) if close_sent.is_none() => {
                if ws.send(Message::Text(text)).is_err() {
                    return false;
                }
            }
            Ok(Message::Text(text)) => {
                // After our Close frame nothing is echoed, but by the fault.
                if config.has(Fault::WsEchoAfterClose) {
                    let _ = ws.send(Message::Text(text));
                }
            }
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                let _ = ws.flush();
            }
            // The closing handshake is complete, or the connection is gone.
            Err(_) if config.has(Fault::WsHang) && close_sent.is_some() => {
                // Keep the socket until the deadline (or the client) ends it.
                if ws.get_ref().peek(&mut [0u8; 1]).is_ok_and(|n| n == 0) {
                    return false;
                }
                std::thread::sleep(WS_POLL);
            }
            Err(_) => return false,
        }
    }
}
