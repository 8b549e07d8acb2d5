//! A blocking reader of a chunked `text/event-stream` response.

use graceful_core::{Shutdown, Signal};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Where [`flows_while_unready_then_ends`] stops reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The connection's end: the server closes it after the response.
    Connection,
    /// The response's end, the chunked terminator: the connection may stay
    /// open as an idle keep-alive one.
    Response,
}

/// Reads `GET /events` on `addr` (a 20 s read timeout): waits for
/// `tick 0`, requests `TERM` on `shutdown`, checks that bytes keep coming
/// for 400 ms (the unready delay must be longer), then reads to `end` and
/// checks the response is an event stream whose last event is
/// `retry: 1000` followed by the chunked terminator. Returns how long after
/// the signal the end came.
pub fn flows_while_unready_then_ends(addr: SocketAddr, shutdown: &Shutdown, end: End) -> Duration {
    let mut client = TcpStream::connect(addr).expect("connect");
    client
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    client
        .write_all(b"GET /events HTTP/1.1\r\nHost: test\r\n\r\n")
        .expect("send");
    let mut received = Vec::new();
    let mut buffer = [0; 4096];
    let mut read = |received: &mut Vec<u8>| {
        let n = client.read(&mut buffer).expect("read");
        received.extend_from_slice(&buffer[..n]);
        n
    };
    while !String::from_utf8_lossy(&received).contains("tick 0") {
        assert!(
            read(&mut received) > 0,
            "ended early: {:?}",
            String::from_utf8_lossy(&received)
        );
    }
    let signalled = Instant::now();
    let _ = shutdown.request(Signal::TERM);
    let before = received.len();
    while signalled.elapsed() < Duration::from_millis(400) {
        assert!(
            read(&mut received) > 0,
            "ended while unready: {:?}",
            String::from_utf8_lossy(&received)
        );
    }
    assert!(
        received.len() > before,
        "ticks flow during the unready delay"
    );
    match end {
        End::Connection => while read(&mut received) > 0 {},
        End::Response => {
            while !received.ends_with(b"\r\n0\r\n\r\n") {
                assert!(
                    read(&mut received) > 0,
                    "the connection closed before the end of the response"
                );
            }
        }
    }
    let ended = signalled.elapsed();
    let text = String::from_utf8_lossy(&received);
    assert!(text.contains("text/event-stream"), "{text}");
    assert!(
        text.ends_with("retry: 1000\n\n\r\n0\r\n\r\n"),
        "a last retry event, then the chunked terminator: {text:?}"
    );
    ended
}
