//! HTTP/2's graceful GOAWAY, bounded: [`GOAWAY_BOUND`], and the answer to
//! h2's shutdown PING that the server gives itself once the client has had
//! that long to give it ([`InboundFrames`]). The HTTP/2 drivers above the
//! core (graceful-hyper's, for tokio and smol, and graceful-actix's) both
//! drive the `h2` crate and both use this: one policy, one home.
//!
//! # Design
//!
//! h2's graceful shutdown is the two-phase GOAWAY: a GOAWAY with the last
//! stream id 2^31-1 and a PING, then the final GOAWAY (the last stream id
//! the server processed) when the PING's ACK comes. h2 has no timer for
//! that ACK, and offers no other way to send the final GOAWAY: its
//! `abrupt_shutdown` fails every stream still open, so a client that never
//! answers keeps opening new streams on a connection the server wants gone.
//! Contract rule 14 allows the final GOAWAY at most 1 s after the first. So
//! at that bound the connection's inbound bytes get the ACK the client did
//! not send: a PING frame with the ACK flag and h2's shutdown payload,
//! spliced in at a frame boundary, and h2 sends its final GOAWAY exactly as
//! if the client had answered. An ACK the client did send first leaves h2
//! with no PING pending, and h2 ignores an unexpected ACK (RFC 9113 asks
//! nothing else of it), so the spliced one is harmless then.
//!
//! To splice at a boundary, the frames of what the server reads must be
//! followed: the 24-byte preface, then each frame's 9-byte header and the
//! payload length it announces. The io wrapper of an HTTP/2 connection
//! already follows them for its [`WireStreams`], so [`InboundFrames`] asks
//! that for the boundary rather than walking the same bytes a second time:
//! before each read the io asks it for the spliced bytes
//! ([`InboundFrames::splice`]), and shows every byte it hands on to its
//! `WireStreams` only ([`WireStreams::read`]). The spliced bytes are one
//! whole frame, so the inbound cursor is at a boundary again after them,
//! and the io hands them on without showing them to the `WireStreams`.

use crate::wire::WireStreams;
use std::time::Duration;

/// How long after its first GOAWAY an HTTP/2 connection gets its final
/// GOAWAY, and is closed if no stream of it is in progress, even if the
/// client has not answered the PING (or sent its SETTINGS): 1 s, the
/// contract's bound (rule 14).
pub const GOAWAY_BOUND: Duration = Duration::from_secs(1);

// std's, not `crate::sync`: no loom model covers this flag.
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The payload of h2's shutdown PING (`h2::frame::Ping::SHUTDOWN`, not
/// public in h2's API): an ACK must carry it to count. The HTTP/2 tests of
/// the tokio, smol and actix adapters fail if h2 ever changes it (the final
/// GOAWAY would stop coming at the bound).
const SHUTDOWN_PAYLOAD: [u8; 8] = [0x0b, 0x7b, 0xa2, 0xf0, 0x8b, 0x9b, 0xfe, 0x54];

/// A PING frame (type 0x6) with the ACK flag (0x1) on stream 0 and the
/// shutdown payload: 9 bytes of header, 8 of payload.
const PING_ACK: [u8; 17] = {
    let mut frame = [0u8; 17];
    frame[2] = 8; // length 8, in 24 bits
    frame[3] = 0x6;
    frame[4] = 0x1;
    let mut i = 0;
    while i < 8 {
        frame[9 + i] = SHUTDOWN_PAYLOAD[i];
        i += 1;
    }
    frame
};

/// Asks a connection's reader for the spliced ACK; shared by the
/// connection (which knows when the bound is reached) and its io.
#[derive(Debug, Clone, Default)]
pub struct AckRequest(Arc<AtomicBool>);

impl AckRequest {
    /// Asks for the ACK at the next frame boundary.
    pub fn request(&self) {
        // Relaxed: the flag is read by the same task, in the poll that
        // follows (the connection polls h2 right after asking).
        self.0.store(true, Ordering::Relaxed);
    }

    fn take(&self) -> bool {
        // Relaxed: see `request`.
        self.0.swap(false, Ordering::Relaxed)
    }
}

/// The ACK spliced into the inbound bytes of an HTTP/2 connection: asked
/// for, or in progress.
#[derive(Debug)]
pub struct InboundFrames {
    request: AckRequest,
    /// Bytes of [`PING_ACK`] handed to h2 so far, while splicing.
    splicing: Option<usize>,
}

impl InboundFrames {
    /// A connection's splice, from before its preface; the ACK is spliced
    /// in once `request` asks for it.
    pub fn new(request: AckRequest) -> InboundFrames {
        InboundFrames {
            request,
            splicing: None,
        }
    }

    /// The spliced bytes to hand to h2 before anything else, if any: up
    /// to `room` of them. Call before reading, with the connection's
    /// `wire`, which follows every byte read except these
    /// ([`WireStreams::read`]).
    #[inline]
    pub fn splice(&mut self, room: usize, wire: &WireStreams) -> Option<&'static [u8]> {
        if self.splicing.is_none() && wire.reading_at_boundary() && self.request.take() {
            self.splicing = Some(0);
        }
        let sent = self.splicing?;
        let n = (PING_ACK.len() - sent).min(room);
        if n == 0 {
            return None;
        }
        let bytes = &PING_ACK[sent..sent + n];
        self.splicing = (sent + n < PING_ACK.len()).then_some(sent + n);
        Some(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

    fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
        let len = payload.len();
        let mut f = vec![
            (len >> 16) as u8,
            (len >> 8) as u8,
            len as u8,
            kind,
            0,
            0,
            0,
            0,
            1,
        ];
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn the_ack_is_h2s_shutdown_ping_ack() {
        assert_eq!(&PING_ACK[..9], &[0, 0, 8, 6, 1, 0, 0, 0, 0]);
        assert_eq!(&PING_ACK[9..], &SHUTDOWN_PAYLOAD);
    }

    #[test]
    fn nothing_is_spliced_unless_asked() {
        let mut frames = InboundFrames::new(AckRequest::default());
        let mut wire = WireStreams::new();
        wire.read(PREFACE);
        assert_eq!(frames.splice(64, &wire), None);
    }

    #[test]
    fn the_ack_waits_for_a_frame_boundary() {
        let request = AckRequest::default();
        let mut frames = InboundFrames::new(request.clone());
        let mut wire = WireStreams::new();
        request.request();
        // In the preface: not yet.
        wire.read(&PREFACE[..10]);
        assert_eq!(frames.splice(64, &wire), None);
        wire.read(&PREFACE[10..]);
        // A frame cut in its header, then in its payload: not yet.
        let data = frame(0, &[7; 20]);
        wire.read(&data[..5]);
        assert_eq!(frames.splice(64, &wire), None);
        wire.read(&data[5..15]);
        assert_eq!(frames.splice(64, &wire), None);
        wire.read(&data[15..]);
        // At the boundary: the whole ACK, once.
        assert_eq!(frames.splice(64, &wire), Some(&PING_ACK[..]));
        assert_eq!(frames.splice(64, &wire), None);
    }

    #[test]
    fn a_small_buffer_gets_the_ack_in_pieces() {
        let request = AckRequest::default();
        let mut frames = InboundFrames::new(request.clone());
        let mut wire = WireStreams::new();
        wire.read(PREFACE);
        request.request();
        let mut got = Vec::new();
        while let Some(bytes) = frames.splice(5, &wire) {
            got.extend_from_slice(bytes);
        }
        assert_eq!(got, PING_ACK);
        // After it, frames are followed as before.
        let ping = frame(6, &[1; 8]);
        wire.read(&ping[..3]);
        request.request();
        assert_eq!(frames.splice(64, &wire), None, "in a header");
        wire.read(&ping[3..]);
        assert_eq!(frames.splice(64, &wire), Some(&PING_ACK[..]));
    }
}
