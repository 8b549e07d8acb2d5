//! The client side of the adapters' tests, written once.
//!
//! `graceful-tokio`, `graceful-smol` and `graceful-actix` test the same
//! behaviour from the same kind of client: raw HTTP/2 frames, a rustls
//! client that trusts a certificate made for the test, a tungstenite
//! WebSocket, a reader of a chunked event stream, and the checks of the
//! jobs tests. This unpublished crate
//! holds that code for all three, on blocking std sockets (or as plain
//! bytes), so that it serves every runtime: a test calls it from
//! `spawn_blocking`, `smol::unblock` or a thread of its own when it must
//! not block its executor.
//!
//! It is a dev-dependency only; nothing here is part of any public API.

#![forbid(unsafe_code)]

pub mod h2;
pub mod job;
pub mod sse;
pub mod tls;
pub mod ws;
