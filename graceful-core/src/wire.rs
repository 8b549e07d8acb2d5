//! HTTP/2 streams as the bytes on the socket see them: which streams the
//! client has opened and the server has not yet finished writing
//! ([`WireStreams`]), so that a flush releases a stream only once its last
//! frame is written ([`ConnIo::flushed_streams`]).
//!
//! # Design
//!
//! HTTP/1 writes one response after another, and flushes only once all it
//! buffered is written: the flush after a response body's last frame is
//! the flush of its last byte. HTTP/2 does not work that way. A stream's
//! body hands its last frame (its trailers, say) to its own task, which
//! queues it into h2's send buffer a moment later, while the connection's
//! task writes and flushes whatever the other streams queued before. A
//! flush that comes between the body's end and the queueing of its last
//! frame has not written that frame, and a request released there lets the
//! drain finish, the cleanup run and the process exit with the frame still
//! unsent: the client sees the connection reset on a call the server
//! counted as answered (seen in the gRPC scenarios, 2 runs in 40 with the
//! other core busy, on hyper's multi-threaded HTTP/2 server).
//!
//! So the io wrapper of an HTTP/2 connection also follows its frames both
//! ways: the bytes h2 reads ([`WireStreams::read`]) open streams (a HEADERS
//! frame on a new stream id), the bytes the socket accepts
//! ([`WireStreams::written`]) close them (the frame that carries
//! `END_STREAM`, once all of it is written, or `RST_STREAM`), and so does a
//! client's `RST_STREAM`. A GOAWAY the server writes caps the stream ids it
//! will process: streams above it are never served and are forgotten. At a
//! flush, [`ConnIo::flushed_streams`] is told how many streams are still
//! open on the wire and keeps that many of the requests handed back in
//! progress (less those still running, which are open too): those handed
//! back whose last frame has not been written.
//!
//! The frames of one direction are followed by a cursor that needs
//! nothing but their 9-byte headers and the first 4 bytes of each payload
//! (a GOAWAY's last stream id): bytes of a payload are skipped, never
//! copied, whatever the size of the frame.
//!
//! [`ConnIo::flushed_streams`]: crate::conn::ConnIo::flushed_streams

/// The length of the HTTP/2 connection preface (RFC 9113, section 3.4).
const PREFACE_LEN: usize = 24;

/// Frame types (RFC 9113, section 6).
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const GOAWAY: u8 = 0x7;
const CONTINUATION: u8 = 0x9;

/// Frame flags.
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;

/// The largest stream id (31 bits).
const MAX_STREAM_ID: u32 = 0x7fff_ffff;

/// One frame, whole: its header's fields and its payload's first 4 bytes
/// (`None` if the payload is shorter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Frame {
    kind: u8,
    flags: u8,
    stream: u32,
    lead: Option<u32>,
}

/// Where the bytes of one direction of an HTTP/2 connection stand: in the
/// preface, in a frame's header, or in its payload.
#[derive(Debug, Clone)]
struct FrameCursor {
    /// Preface bytes still to come.
    preface: usize,
    /// The current frame's header, as far as it has come.
    header: [u8; 9],
    header_len: usize,
    /// Payload bytes of the current frame still to come.
    payload: usize,
    /// The payload's first bytes, as far as they have come.
    lead: [u8; 4],
    lead_len: usize,
}

impl FrameCursor {
    /// A cursor before `preface` bytes of preface (the client's 24, or 0
    /// for what the server writes).
    fn new(preface: usize) -> FrameCursor {
        FrameCursor {
            preface,
            header: [0; 9],
            header_len: 0,
            payload: 0,
            lead: [0; 4],
            lead_len: 0,
        }
    }

    /// True between two frames, after the preface.
    fn at_boundary(&self) -> bool {
        self.preface == 0 && self.header_len == 0 && self.payload == 0
    }

    /// Follows `bytes`, calling `whole` with each frame they complete.
    ///
    /// A frame whose header lies whole in `bytes` is read in place: at
    /// once if its payload is there too (nearly every frame h2 reads, and
    /// every one it writes but a DATA frame, whose payload h2 writes from
    /// a slice of its own), else with its payload left to come. Only a
    /// header cut by the end of `bytes` is copied in pieces.
    #[inline]
    fn feed(&mut self, mut bytes: &[u8], mut whole: impl FnMut(Frame)) {
        while !bytes.is_empty() {
            if self.at_boundary() {
                while let Some((header, rest)) = bytes.split_first_chunk::<9>() {
                    let len = payload_len(header);
                    let Some((payload, next)) = rest.split_at_checked(len) else {
                        // Its payload is cut: the rest comes with later bytes.
                        self.header = *header;
                        self.payload = len - rest.len();
                        self.lead_len = 0;
                        self.take_lead(rest);
                        return;
                    };
                    whole(Frame::new(header, payload.first_chunk::<4>()));
                    bytes = next;
                }
                if bytes.is_empty() {
                    return;
                }
            }
            self.step(&mut bytes, &mut whole);
        }
    }

    /// Keeps what `payload` (the next bytes of the current frame's payload)
    /// adds to its first 4 bytes.
    #[inline]
    fn take_lead(&mut self, payload: &[u8]) {
        if self.lead_len < 4 {
            let k = (4 - self.lead_len).min(payload.len());
            self.lead[self.lead_len..self.lead_len + k].copy_from_slice(&payload[..k]);
            self.lead_len += k;
        }
    }

    /// Follows the first piece of `bytes` (the rest of the preface, of a
    /// frame's header or of its payload), calling `whole` if it completes
    /// a frame.
    #[inline(never)]
    fn step(&mut self, bytes: &mut &[u8], whole: &mut impl FnMut(Frame)) {
        if self.preface > 0 {
            let n = self.preface.min(bytes.len());
            self.preface -= n;
            *bytes = &bytes[n..];
        } else if self.payload > 0 {
            let n = self.payload.min(bytes.len());
            self.take_lead(&bytes[..n]);
            self.payload -= n;
            *bytes = &bytes[n..];
            if self.payload == 0 {
                whole(self.frame());
            }
        } else {
            let n = (9 - self.header_len).min(bytes.len());
            self.header[self.header_len..self.header_len + n].copy_from_slice(&bytes[..n]);
            self.header_len += n;
            *bytes = &bytes[n..];
            if self.header_len == 9 {
                self.payload = payload_len(&self.header);
                self.header_len = 0;
                self.lead_len = 0;
                if self.payload == 0 {
                    whole(self.frame());
                }
            }
        }
    }

    /// The frame whose last byte was just followed.
    fn frame(&self) -> Frame {
        Frame::new(&self.header, (self.lead_len == 4).then_some(&self.lead))
    }
}

impl Frame {
    /// The frame of `header` whose payload begins with `lead` (`None` if
    /// the payload is shorter than 4 bytes).
    #[inline]
    fn new(header: &[u8; 9], lead: Option<&[u8; 4]>) -> Frame {
        Frame {
            kind: header[3],
            flags: header[4],
            stream: u32::from_be_bytes([header[5], header[6], header[7], header[8]])
                & MAX_STREAM_ID,
            lead: lead.map(|lead| u32::from_be_bytes(*lead)),
        }
    }
}

/// The payload length a frame's header announces (24 bits).
#[inline]
fn payload_len(header: &[u8; 9]) -> usize {
    (usize::from(header[0]) << 16) | (usize::from(header[1]) << 8) | usize::from(header[2])
}

/// The streams of one HTTP/2 connection that are open on the wire: opened
/// by the client, and not yet ended by a frame the server wrote whole (or
/// by a reset either way).
///
/// Kept by the io wrapper that the HTTP/2 library reads and writes
/// through: [`read`](WireStreams::read) with every byte handed to the
/// library (the preface included), [`written`](WireStreams::written) with
/// every byte the socket accepted, and [`open`](WireStreams::open) at each
/// successful flush, for [`ConnIo::flushed_streams`].
///
/// # Examples
///
/// ```
/// use graceful_core::wire::WireStreams;
///
/// let mut wire = WireStreams::new();
/// wire.read(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
/// // HEADERS (type 1) with END_STREAM and END_HEADERS on stream 1, empty.
/// wire.read(&[0, 0, 0, 1, 0x5, 0, 0, 0, 1]);
/// assert_eq!(wire.open(), 1);
/// // The response: HEADERS with END_HEADERS, then DATA (type 0) with
/// // END_STREAM, 2 bytes, written in two pieces.
/// wire.written(&[0, 0, 0, 1, 0x4, 0, 0, 0, 1]);
/// wire.written(&[0, 0, 2, 0, 0x1, 0, 0, 0, 1, b'o']);
/// assert_eq!(wire.open(), 1, "its last byte is not written yet");
/// wire.written(b"k");
/// assert_eq!(wire.open(), 0);
/// ```
///
/// [`ConnIo::flushed_streams`]: crate::conn::ConnIo::flushed_streams
#[derive(Debug, Clone)]
pub struct WireStreams {
    inbound: FrameCursor,
    outbound: FrameCursor,
    /// The ids of the open streams: few at a time, in the order opened.
    open: Vec<u32>,
    /// The highest stream id a HEADERS frame has opened: a HEADERS frame
    /// on a lower id is a stream's trailers.
    highest: u32,
    /// The last stream id the server's latest GOAWAY will process.
    last: u32,
    /// A stream whose HEADERS frame carries `END_STREAM` but not
    /// `END_HEADERS`: it ends with the CONTINUATION that does.
    ending: Option<u32>,
}

impl Default for WireStreams {
    fn default() -> WireStreams {
        WireStreams::new()
    }
}

impl WireStreams {
    /// A connection's streams, from before the client's preface.
    pub fn new() -> WireStreams {
        WireStreams {
            inbound: FrameCursor::new(PREFACE_LEN),
            outbound: FrameCursor::new(0),
            open: Vec::new(),
            highest: 0,
            last: MAX_STREAM_ID,
            ending: None,
        }
    }

    /// Follows `bytes`, read from the client and handed to the library.
    #[inline]
    pub fn read(&mut self, bytes: &[u8]) {
        let WireStreams {
            inbound,
            open,
            highest,
            last,
            ..
        } = self;
        inbound.feed(bytes, |frame| match frame.kind {
            HEADERS if frame.stream > *highest => {
                *highest = frame.stream;
                if frame.stream <= *last {
                    open.push(frame.stream);
                }
            }
            RST_STREAM => close(open, frame.stream),
            _ => {}
        });
    }

    /// Follows `bytes`, which the socket accepted from the library.
    #[inline]
    pub fn written(&mut self, bytes: &[u8]) {
        let WireStreams {
            outbound,
            open,
            last,
            ending,
            ..
        } = self;
        outbound.feed(bytes, |frame| match frame.kind {
            DATA if frame.flags & END_STREAM != 0 => close(open, frame.stream),
            HEADERS if frame.flags & END_STREAM != 0 => {
                if frame.flags & END_HEADERS != 0 {
                    close(open, frame.stream);
                } else {
                    *ending = Some(frame.stream);
                }
            }
            CONTINUATION if frame.flags & END_HEADERS != 0 && *ending == Some(frame.stream) => {
                *ending = None;
                close(open, frame.stream);
            }
            RST_STREAM => close(open, frame.stream),
            GOAWAY => {
                if let Some(lead) = frame.lead {
                    *last = lead & MAX_STREAM_ID;
                    let last = *last;
                    open.retain(|&id| id <= last);
                }
            }
            _ => {}
        });
    }

    /// Follows the first `written` bytes of `bufs`, which the socket
    /// accepted from a vectored write.
    pub fn written_vectored(&mut self, bufs: &[std::io::IoSlice<'_>], written: usize) {
        let mut left = written;
        for buf in bufs {
            if left == 0 {
                break;
            }
            let n = left.min(buf.len());
            self.written(&buf[..n]);
            left -= n;
        }
    }

    /// True between two inbound frames, after the preface: where a whole
    /// frame may be spliced into what the library reads
    /// ([`InboundFrames::splice`](crate::goaway::InboundFrames::splice)).
    #[inline]
    pub fn reading_at_boundary(&self) -> bool {
        self.inbound.at_boundary()
    }

    /// How many streams are open on the wire: opened by the client, and
    /// neither ended by a frame written whole nor reset.
    #[inline]
    pub fn open(&self) -> usize {
        self.open.len()
    }
}

/// Forgets stream `id`, if it is open.
fn close(open: &mut Vec<u32>, id: u32) {
    if let Some(i) = open.iter().position(|&open| open == id) {
        open.remove(i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = payload.len();
        let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
        f.extend_from_slice(&stream.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    fn connected() -> WireStreams {
        let mut wire = WireStreams::new();
        wire.read(PREFACE);
        wire.read(&frame(0x4, 0, 0, &[])); // SETTINGS
        wire
    }

    /// Feeds `bytes` one byte at a time.
    fn trickle(bytes: &[u8], mut to: impl FnMut(&[u8])) {
        for b in bytes {
            to(std::slice::from_ref(b));
        }
    }

    #[test]
    fn a_cursor_sees_each_frame_once_whole_however_it_is_cut() {
        let mut bytes = PREFACE.to_vec();
        bytes.extend(frame(GOAWAY, 0, 0, &[0, 0, 0, 7, 0, 0, 0, 0]));
        bytes.extend(frame(DATA, END_STREAM, 3, &[]));
        bytes.extend(frame(HEADERS, END_HEADERS, 5, &[1, 2]));
        let expected = vec![
            Frame {
                kind: GOAWAY,
                flags: 0,
                stream: 0,
                lead: Some(7),
            },
            Frame {
                kind: DATA,
                flags: END_STREAM,
                stream: 3,
                lead: None,
            },
            Frame {
                kind: HEADERS,
                flags: END_HEADERS,
                stream: 5,
                lead: None,
            },
        ];
        for cut in [1, 2, 5, 9, 13, bytes.len()] {
            let mut cursor = FrameCursor::new(PREFACE_LEN);
            let mut seen = Vec::new();
            for chunk in bytes.chunks(cut) {
                cursor.feed(chunk, |f| seen.push(f));
            }
            assert_eq!(seen, expected, "cut every {cut} bytes");
            assert!(cursor.at_boundary());
        }
    }

    proptest::proptest! {
        /// Frames of any length, cut anywhere: each is seen once, whole,
        /// as it was written (the in-place path and the piece-by-piece
        /// path agree).
        #[test]
        fn any_cut_of_any_frames_is_seen_as_written(
            frames in proptest::collection::vec(
                (0u8..10, proptest::num::u8::ANY, 0u32..=u32::MAX, 0usize..40),
                0..12,
            ),
            cuts in proptest::collection::vec(0usize..64, 0..16),
        ) {
            let mut bytes = PREFACE.to_vec();
            let mut expected = Vec::new();
            for &(kind, flags, stream, len) in &frames {
                let payload: Vec<u8> = (0..len).map(|i| i as u8 ^ kind).collect();
                bytes.extend(frame(kind, flags, stream, &payload));
                expected.push(Frame {
                    kind,
                    flags,
                    stream: stream & MAX_STREAM_ID,
                    lead: payload.first_chunk::<4>().map(|b| u32::from_be_bytes(*b)),
                });
            }
            let mut cursor = FrameCursor::new(PREFACE_LEN);
            let mut seen = Vec::new();
            let mut rest = &bytes[..];
            for cut in cuts {
                let (piece, after) = rest.split_at(cut.min(rest.len()));
                cursor.feed(piece, |f| seen.push(f));
                rest = after;
            }
            cursor.feed(rest, |f| seen.push(f));
            proptest::prop_assert_eq!(seen, expected);
            proptest::prop_assert!(cursor.at_boundary());
        }
    }

    #[test]
    fn a_stream_is_open_until_its_end_stream_frame_is_written_whole() {
        let mut wire = connected();
        wire.read(&frame(HEADERS, END_HEADERS | END_STREAM, 1, &[0x82]));
        assert_eq!(wire.open(), 1);
        wire.written(&frame(HEADERS, END_HEADERS, 1, &[0x88]));
        let data = frame(DATA, 0, 1, b"hello");
        wire.written(&data);
        assert_eq!(wire.open(), 1, "DATA without END_STREAM");
        let trailers = frame(HEADERS, END_HEADERS | END_STREAM, 1, &[0x40; 20]);
        let mut written = 0;
        trickle(&trailers, |b| {
            wire.written(b);
            written += 1;
            let whole = written == trailers.len();
            assert_eq!(wire.open(), usize::from(!whole), "{written} bytes written");
        });
    }

    #[test]
    fn trailers_do_not_open_a_stream_and_continuations_end_one() {
        let mut wire = connected();
        wire.read(&frame(HEADERS, END_HEADERS, 1, &[0x82]));
        wire.read(&frame(DATA, 0, 1, b"body"));
        wire.read(&frame(HEADERS, END_HEADERS | END_STREAM, 1, &[0x40])); // trailers
        assert_eq!(wire.open(), 1);
        wire.written(&frame(HEADERS, END_STREAM, 1, &[0x88]));
        assert_eq!(wire.open(), 1, "its header block goes on");
        wire.written(&frame(CONTINUATION, 0, 1, &[0x40]));
        assert_eq!(wire.open(), 1);
        wire.written(&frame(CONTINUATION, END_HEADERS, 1, &[0x40]));
        assert_eq!(wire.open(), 0);
    }

    #[test]
    fn resets_either_way_end_a_stream() {
        let mut wire = connected();
        for id in [1, 3, 5] {
            wire.read(&frame(HEADERS, END_HEADERS, id, &[0x82]));
        }
        assert_eq!(wire.open(), 3);
        wire.read(&frame(RST_STREAM, 0, 3, &[0, 0, 0, 8]));
        assert_eq!(wire.open(), 2, "the client cancelled 3");
        wire.written(&frame(RST_STREAM, 0, 5, &[0, 0, 0, 7]));
        assert_eq!(wire.open(), 1, "the server refused 5");
        wire.written(&frame(RST_STREAM, 0, 9, &[0, 0, 0, 7]));
        assert_eq!(wire.open(), 1, "an unknown stream changes nothing");
        wire.written(&frame(DATA, END_STREAM, 1, &[]));
        assert_eq!(wire.open(), 0);
    }

    #[test]
    fn a_goaway_forgets_the_streams_it_will_not_process() {
        let mut wire = connected();
        for id in [1, 3] {
            wire.read(&frame(HEADERS, END_HEADERS, id, &[0x82]));
        }
        // The graceful GOAWAY (2^31-1) keeps every stream.
        let goaway = |last: u32| {
            let mut payload = last.to_be_bytes().to_vec();
            payload.extend_from_slice(&[0, 0, 0, 0]);
            frame(GOAWAY, 0, 0, &payload)
        };
        wire.written(&goaway(MAX_STREAM_ID));
        wire.read(&frame(HEADERS, END_HEADERS, 5, &[0x82]));
        assert_eq!(wire.open(), 3);
        // The final one, cut in its payload, processes 1 and 3.
        let last = goaway(3);
        wire.written(&last[..11]);
        assert_eq!(wire.open(), 3);
        wire.written(&last[11..]);
        assert_eq!(wire.open(), 2, "5 is never served");
        wire.read(&frame(HEADERS, END_HEADERS, 7, &[0x82]));
        assert_eq!(wire.open(), 2, "nor is anything after it");
        wire.written(&frame(DATA, END_STREAM, 1, &[]));
        wire.written(&frame(DATA, END_STREAM, 3, &[]));
        assert_eq!(wire.open(), 0);
    }

    #[test]
    fn a_vectored_write_is_followed_as_far_as_it_went() {
        let mut wire = connected();
        wire.read(&frame(HEADERS, END_HEADERS, 1, &[0x82]));
        let head = frame(HEADERS, END_HEADERS, 1, &[0x88]);
        let end = frame(DATA, END_STREAM, 1, b"ok");
        let bufs = [std::io::IoSlice::new(&head), std::io::IoSlice::new(&end)];
        wire.written_vectored(&bufs, head.len() + end.len() - 1);
        assert_eq!(wire.open(), 1, "one byte short");
        wire.written(&end[end.len() - 1..]);
        assert_eq!(wire.open(), 0);
    }

    #[test]
    fn inbound_bytes_cut_anywhere_open_the_same_streams() {
        let mut bytes = PREFACE.to_vec();
        bytes.extend(frame(HEADERS, END_HEADERS, 1, &[0x82; 30]));
        bytes.extend(frame(DATA, END_STREAM, 1, &[0; 100]));
        bytes.extend(frame(HEADERS, END_HEADERS | END_STREAM, 3, &[0x82]));
        let mut wire = WireStreams::new();
        trickle(&bytes, |b| wire.read(b));
        assert_eq!(wire.open(), 2);
    }
}
