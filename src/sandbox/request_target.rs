//! Accepting request targets as real services do: BulkSMS documents `filter=id<123456` with the
//! `<` unencoded ("you do not have to encode the `<` character") and curl sends it so, but the
//! `http` crate refuses `<` and `>` in a URI and hyper answers an empty 400 before any handler
//! runs. The sandbox's connections therefore percent-encode those two bytes in each request line
//! before hyper reads it; headers and bodies pass unchanged.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// Where the reader is within the HTTP/1 requests of a connection.
#[derive(Debug)]
enum Phase {
    RequestLine,
    Headers {
        line: Vec<u8>,
        content_length: u64,
        chunked: bool,
    },
    Body(u64),
    /// A chunked body: its end is not tracked, so the rest of the connection passes as is.
    Verbatim,
}

/// A stream whose request lines have `<` and `>` percent-encoded.
#[derive(Debug)]
pub struct EscapedRequestLines<S> {
    inner: S,
    phase: Phase,
    out: Vec<u8>,
    out_pos: usize,
}

impl<S> EscapedRequestLines<S> {
    /// Wraps a connection at the start of its first request.
    pub fn new(inner: S) -> Self {
        EscapedRequestLines {
            inner,
            phase: Phase::RequestLine,
            out: Vec::new(),
            out_pos: 0,
        }
    }

    fn take_in(&mut self, bytes: &[u8]) {
        for &b in bytes {
            match &mut self.phase {
                Phase::Verbatim => self.out.push(b),
                Phase::RequestLine => {
                    match b {
                        b'<' => self.out.extend_from_slice(b"%3C"),
                        b'>' => self.out.extend_from_slice(b"%3E"),
                        _ => self.out.push(b),
                    }
                    if b == b'\n' {
                        self.phase = Phase::Headers {
                            line: Vec::new(),
                            content_length: 0,
                            chunked: false,
                        };
                    }
                }
                Phase::Headers {
                    line,
                    content_length,
                    chunked,
                } => {
                    self.out.push(b);
                    if b != b'\n' {
                        line.push(b);
                        continue;
                    }
                    let text = String::from_utf8_lossy(line).trim().to_ascii_lowercase();
                    line.clear();
                    if text.is_empty() {
                        self.phase = match (*chunked, *content_length) {
                            (true, _) => Phase::Verbatim,
                            (false, 0) => Phase::RequestLine,
                            (false, n) => Phase::Body(n),
                        };
                    } else if let Some(value) = text.strip_prefix("content-length:") {
                        *content_length = value.trim().parse().unwrap_or(0);
                    } else if let Some(value) = text.strip_prefix("transfer-encoding:") {
                        *chunked = value.contains("chunked");
                    }
                }
                Phase::Body(left) => {
                    self.out.push(b);
                    *left -= 1;
                    if *left == 0 {
                        self.phase = Phase::RequestLine;
                    }
                }
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for EscapedRequestLines<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.out_pos < this.out.len() {
                let n = buf.remaining().min(this.out.len() - this.out_pos);
                buf.put_slice(&this.out[this.out_pos..this.out_pos + n]);
                this.out_pos += n;
                if this.out_pos == this.out.len() {
                    this.out.clear();
                    this.out_pos = 0;
                }
                return Poll::Ready(Ok(()));
            }
            let mut chunk = [0u8; 8192];
            let mut read = ReadBuf::new(&mut chunk);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut read))?;
            if read.filled().is_empty() {
                return Poll::Ready(Ok(())); // end of stream
            }
            let filled = read.filled().to_vec();
            this.take_in(&filled);
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for EscapedRequestLines<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// The sandbox's listener: TCP connections wrapped in [`EscapedRequestLines`].
pub struct LenientListener(pub TcpListener);

impl axum::serve::Listener for LenientListener {
    type Io = EscapedRequestLines<TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok((stream, addr)) => return (EscapedRequestLines::new(stream), addr),
                Err(e) => {
                    // As axum's own TCP listener does: a failed accept (too many open files, a
                    // reset before accept) is not the end of the server.
                    tracing::debug!(error = %e, "Accept failed; retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(input: &[u8]) -> Vec<u8> {
        let mut e = EscapedRequestLines::new(());
        // Fed in small pieces, as a socket may deliver it.
        for piece in input.chunks(3) {
            e.take_in(piece);
        }
        e.out
    }

    #[test]
    fn only_request_lines_are_escaped_across_keep_alive_requests() {
        let input = b"GET /v1/messages?filter=id<5&x>1 HTTP/1.1\r\nHost: a<b\r\n\r\n\
POST /v1/messages HTTP/1.1\r\nContent-Length: 6\r\n\r\n[\"<>\"]\
GET /v1/messages?filter=id>9 HTTP/1.1\r\n\r\n";
        let want = b"GET /v1/messages?filter=id%3C5&x%3E1 HTTP/1.1\r\nHost: a<b\r\n\r\n\
POST /v1/messages HTTP/1.1\r\nContent-Length: 6\r\n\r\n[\"<>\"]\
GET /v1/messages?filter=id%3E9 HTTP/1.1\r\n\r\n";
        assert_eq!(
            String::from_utf8_lossy(&escaped(input)),
            String::from_utf8_lossy(want)
        );
    }

    #[test]
    fn a_chunked_body_ends_the_escaping() {
        let input = b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n<a>\r\n0\r\n\r\n";
        assert_eq!(escaped(input), input.to_vec());
    }
}
