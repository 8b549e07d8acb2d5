//! Graceful shutdown for actix.
