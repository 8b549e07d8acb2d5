//! Just enough HTTP/1.1 for the benchmarks' clients: a response parser
//! that works on a buffer (shared by the blocking and the async clients)
//! and a blocking `GET`.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A complete response at the start of a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Parsed {
    pub(crate) status: u16,
    /// Bytes of the buffer the response takes, head and body.
    pub(crate) len: usize,
    /// Where its body is in the buffer.
    pub(crate) body: std::ops::Range<usize>,
}

/// Parses the response at the start of `buf`: `Ok(None)` while it is
/// incomplete. Every server benchmarked here sends a `Content-Length` for
/// the routes used; a response without one is reported as an error rather
/// than guessed at.
pub(crate) fn parse(buf: &[u8]) -> io::Result<Option<Parsed>> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let head = match response.parse(buf) {
        Ok(httparse::Status::Complete(head)) => head,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(error) => return Err(io::Error::new(io::ErrorKind::InvalidData, error)),
    };
    let status = response.code.unwrap_or_default();
    let length = response
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| std::str::from_utf8(h.value).ok())
        .and_then(|v| v.trim().parse::<usize>().ok())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a {status} response without a Content-Length"),
            )
        })?;
    if buf.len() < head + length {
        return Ok(None);
    }
    Ok(Some(Parsed {
        status,
        len: head + length,
        body: head..head + length,
    }))
}

/// The request line and headers of a `GET` on a keep-alive connection.
pub(crate) fn request(addr: SocketAddr, path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").into_bytes()
}

/// A response read by [`get`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
}

/// Opens a keep-alive connection whose reads give up after `timeout`.
pub(crate) fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    Ok(stream)
}

/// Sends `GET path` on `stream` (a socket, or a TLS stream over one) and
/// reads the whole response.
pub(crate) fn get<S: Read + Write>(
    stream: &mut S,
    addr: SocketAddr,
    path: &str,
) -> io::Result<Response> {
    stream.write_all(&request(addr, path))?;
    read(stream)
}

/// Reads one whole response from `stream`.
pub(crate) fn read<S: Read>(stream: &mut S) -> io::Result<Response> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0; 4096];
    loop {
        if let Some(parsed) = parse(&buf)? {
            return Ok(Response {
                status: parsed.status,
                body: buf[parsed.body].to_vec(),
            });
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the connection closed before a whole response",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_whole_responses_only() {
        let text = b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nliveHTTP/1.1";
        let parsed = parse(text).unwrap().unwrap();
        assert_eq!(parsed.status, 200);
        assert_eq!(&text[parsed.body.clone()], b"live");
        assert_eq!(parsed.len, text.len() - b"HTTP/1.1".len());
        assert_eq!(parse(&text[..parsed.len - 1]).unwrap(), None);
        assert_eq!(parse(b"HTTP/1.1 503 Service Unavail").unwrap(), None);
    }

    #[test]
    fn refuses_what_it_cannot_frame() {
        assert!(parse(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n").is_err());
        assert!(parse(b"NOT HTTP\r\n\r\n").is_err());
    }
}
