//! The answer to h2's shutdown PING at [`GOAWAY_BOUND`](crate::GOAWAY_BOUND):
//! graceful-core's [`goaway`](graceful_core::goaway), the one home of that
//! policy, shared with graceful-actix's HTTP/2 driver.

pub(crate) use graceful_core::goaway::{AckRequest, InboundFrames};
