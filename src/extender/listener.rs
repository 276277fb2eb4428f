//! A TCP listener for [`axum::serve()`] whose connections give the replies hyper writes
//! on its own a body.
//!
//! When a request's head cannot be parsed (a malformed `Content-Length`, headers over
//! hyper's limit, an over-long URI), hyper answers 400, 431 or 414 itself, before any
//! handler runs, with `content-length: 0`. This wrapper rewrites such a reply, as it is
//! written, into the extender's error shape: `{"Error": "…"}` with
//! `content-type: application/json`. The router never sends an empty 4xx or 5xx
//! itself (every error reply carries a JSON body), so only hyper's replies match.

use axum::serve::Listener;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// A [`TcpListener`] whose connections are [`ErrorBodyIo`].
#[derive(Debug)]
pub struct ErrorBodyListener(pub TcpListener);

impl Listener for ErrorBodyListener {
    type Io = ErrorBodyIo<TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (io, addr) = Listener::accept(&mut self.0).await;
        (ErrorBodyIo::new(io), addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Listener::local_addr(&self.0)
    }
}

/// A connection that gives hyper's empty error replies a JSON body (see the module).
#[derive(Debug)]
pub struct ErrorBodyIo<S> {
    inner: S,
    /// Rewritten bytes not yet written to `inner`.
    pending: Vec<u8>,
}

impl<S> ErrorBodyIo<S> {
    /// Wraps a connection.
    pub fn new(inner: S) -> Self {
        ErrorBodyIo {
            inner,
            pending: Vec::new(),
        }
    }
}

const EMPTY: &[u8] = b"\r\ncontent-length: 0\r\n";

/// The reply with a body, if `buf` is exactly an error reply head with no body.
fn with_body(buf: &[u8]) -> Option<Vec<u8>> {
    let status_line_end = buf.windows(2).position(|w| w == b"\r\n")?;
    let status_line = std::str::from_utf8(&buf[..status_line_end]).ok()?;
    let rest = status_line.strip_prefix("HTTP/1.1 ")?;
    if !(rest.starts_with('4') || rest.starts_with('5')) || !buf.ends_with(b"\r\n\r\n") {
        return None;
    }
    let at = buf.windows(EMPTY.len()).position(|w| w == EMPTY)?;
    let reason = match rest.get(..3) {
        Some("400") => {
            "the request could not be read: malformed request line or header (e.g. Content-Length)"
        }
        Some("431") => "the request's headers are larger than the server accepts",
        Some("414") => "the request's URI is longer than the server accepts",
        _ => "the request could not be read",
    };
    let body = serde_json::json!({ "Error": format!("{rest}: {reason}") }).to_string();
    let mut out = Vec::with_capacity(buf.len() + body.len() + 64);
    out.extend_from_slice(&buf[..at]);
    out.extend_from_slice(
        format!(
            "\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
            body.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(&buf[at + EMPTY.len()..]);
    out.extend_from_slice(body.as_bytes());
    Some(out)
}

impl<S: AsyncWrite + Unpin> ErrorBodyIo<S> {
    /// Writes out what a rewrite left pending.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.pending.is_empty() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.pending.drain(..n);
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ErrorBodyIo<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ErrorBodyIo<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_pending(cx))?;
        if let Some(out) = with_body(buf) {
            self.pending = out;
            // The original bytes count as written; the rewrite goes out before
            // anything else (and on flush or shutdown).
            let _ = self.poll_pending(cx)?;
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_empty_error_replies_get_a_body() {
        let head =
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        let out = String::from_utf8(with_body(head).unwrap()).unwrap();
        let (h, body) = out.split_once("\r\n\r\n").unwrap();
        assert!(
            h.contains(&format!("content-length: {}", body.len())),
            "{out}"
        );
        assert!(h.contains("content-type: application/json"), "{out}");
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert!(v["Error"]
            .as_str()
            .unwrap()
            .starts_with("431 Request Header"));
        assert!(with_body(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_none());
        assert!(with_body(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\n\r\n").is_none());
        assert!(with_body(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n{}").is_none());
    }
}
