//! HTTP/2 frames as bytes (RFC 9113), for a frame-level client: the
//! preface, a frame writer, a frame header reader and a GET in literal
//! HPACK. The bytes go over whatever stream the test holds.

/// The client connection preface.
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Frame type DATA.
pub const DATA: u8 = 0;
/// Frame type HEADERS.
pub const HEADERS: u8 = 1;
/// Frame type RST_STREAM.
pub const RST_STREAM: u8 = 3;
/// Frame type SETTINGS.
pub const SETTINGS: u8 = 4;
/// Frame type PING.
pub const PING: u8 = 6;
/// Frame type GOAWAY.
pub const GOAWAY: u8 = 7;
/// Flag END_STREAM (and ACK on SETTINGS and PING).
pub const END_STREAM: u8 = 1;
/// Flag END_HEADERS.
pub const END_HEADERS: u8 = 0x4;
/// RST_STREAM's error code CANCEL (RFC 9113, section 7).
pub const CANCEL: u32 = 0x8;

/// A frame: type, flags, stream id, payload.
pub type Frame = (u8, u8, u32, Vec<u8>);

/// One frame's bytes.
pub fn frame(kind: u8, flags: u8, id: u32, payload: &[u8]) -> Vec<u8> {
    let len = (payload.len() as u32).to_be_bytes();
    let mut out = vec![len[1], len[2], len[3], kind, flags];
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// A frame's 9-byte header read: its type, flags, stream id and payload
/// length.
pub fn head(head: &[u8; 9]) -> (u8, u8, u32, usize) {
    let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
    let id = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
    (head[3], head[4], id, len)
}

/// The scheme a [`start`] GET names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `:scheme http`.
    Http,
    /// `:scheme https`.
    Https,
}

/// The preface and empty SETTINGS (the server's are never acknowledged),
/// and with `path` one GET stream (id 1): `:method GET` and `:scheme`
/// indexed, `:path` and `:authority x` literal with indexed names, not
/// indexed.
pub fn start(scheme: Scheme, path: Option<&str>) -> Vec<u8> {
    let mut out = PREFACE.to_vec();
    out.extend(frame(SETTINGS, 0, 0, &[]));
    if let Some(path) = path {
        let scheme = match scheme {
            Scheme::Http => 0x86,
            Scheme::Https => 0x87,
        };
        let mut block = vec![0x82, scheme, 0x04, path.len() as u8];
        block.extend_from_slice(path.as_bytes());
        block.extend_from_slice(&[0x01, 1, b'x']);
        out.extend(frame(HEADERS, END_HEADERS | END_STREAM, 1, &block));
    }
    out
}

/// The two GOAWAYs a client saw (when, and the last stream id each named)
/// while stream 1 was served and the shutdown PING went unanswered, and
/// when the stream ended: the first admits every stream, the final one
/// names stream 1 and comes about [`GOAWAY_BOUND`](graceful_core::goaway::GOAWAY_BOUND)
/// (1 s) after the first, before the stream's end. Without the bound the
/// HTTP/2 crates wait for the PING's answer for ever and send the final
/// GOAWAY only after the stream's end, if at all.
pub fn assert_final_goaway_bounded(
    goaways: &[(std::time::Instant, u32)],
    ended: std::time::Instant,
) {
    use std::time::Duration;
    let [(first_at, first), (final_at, last)] = goaways[..] else {
        panic!("two GOAWAYs before the stream's end: {goaways:?}");
    };
    assert_eq!(first, 0x7fff_ffff, "the first GOAWAY admits every stream");
    assert_eq!(last, 1, "the final GOAWAY names the stream being served");
    let apart = final_at - first_at;
    assert!(
        apart >= Duration::from_millis(800) && apart < Duration::from_millis(2_000),
        "final GOAWAY {apart:?} after the first"
    );
    assert!(
        final_at < ended,
        "the final GOAWAY came before the stream's end"
    );
}
