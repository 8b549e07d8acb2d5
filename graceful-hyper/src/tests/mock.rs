//! An in-memory connection, and a way to poll futures step by step.

use hyper::rt::{Read, ReadBufCursor, Write};
use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

/// One direction of the connection.
#[derive(Debug, Default)]
struct Pipe {
    bytes: VecDeque<u8>,
    /// The writer is gone (EOF for the reader).
    closed: bool,
}

#[derive(Debug, Default)]
struct Shared {
    to_server: Pipe,
    to_client: Pipe,
    /// While true, the server's flushes stay pending.
    hold_flush: bool,
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared.lock().unwrap()
}

/// The server's end, handed to `serve_connection`.
#[derive(Debug)]
pub(crate) struct ServerIo(Arc<Mutex<Shared>>);

/// The client's end, driven by the test.
#[derive(Debug)]
pub(crate) struct Client(Arc<Mutex<Shared>>);

pub(crate) fn connection() -> (ServerIo, Client) {
    let shared = Arc::new(Mutex::new(Shared::default()));
    (ServerIo(shared.clone()), Client(shared))
}

impl Client {
    pub(crate) fn send(&self, bytes: &str) {
        lock(&self.0).to_server.bytes.extend(bytes.as_bytes());
    }

    /// Everything the server has written so far, taken.
    pub(crate) fn received(&self) -> String {
        let bytes: Vec<u8> = lock(&self.0).to_client.bytes.drain(..).collect();
        String::from_utf8(bytes).unwrap()
    }

    /// True once the server has shut its side down or dropped it.
    pub(crate) fn server_closed(&self) -> bool {
        lock(&self.0).to_client.closed
    }

    pub(crate) fn hold_flush(&self, hold: bool) {
        lock(&self.0).hold_flush = hold;
    }
}

impl Read for ServerIo {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let mut shared = lock(&self.0);
        let pipe = &mut shared.to_server;
        if pipe.bytes.is_empty() {
            // The tests poll again after every change: no waker needed.
            return if pipe.closed {
                Poll::Ready(Ok(()))
            } else {
                Poll::Pending
            };
        }
        let n = pipe.bytes.len().min(buf.remaining());
        let chunk: Vec<u8> = pipe.bytes.drain(..n).collect();
        buf.put_slice(&chunk);
        Poll::Ready(Ok(()))
    }
}

impl Write for ServerIo {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        lock(&self.0).to_client.bytes.extend(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        if lock(&self.0).hold_flush {
            Poll::Pending
        } else {
            Poll::Ready(Ok(()))
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        lock(&self.0).to_client.closed = true;
        Poll::Ready(Ok(()))
    }
}

impl Drop for ServerIo {
    fn drop(&mut self) {
        lock(&self.0).to_client.closed = true;
    }
}

/// Polls `future` a few times (enough for in-memory work to settle), and
/// returns its output if it completed.
pub(crate) fn turn<F: Future + Unpin>(future: &mut F) -> Option<F::Output> {
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..8 {
        if let Poll::Ready(output) = Pin::new(&mut *future).poll(&mut cx) {
            return Some(output);
        }
    }
    None
}
