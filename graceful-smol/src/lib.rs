//! Graceful shutdown for smol.
