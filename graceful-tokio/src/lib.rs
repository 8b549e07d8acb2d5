//! Graceful shutdown for tokio.
