//! Plain-HTTP connections that send mapped cache bodies with `sendfile`.
//!
//! hyper hands its HTTP/1.1 writer a list of slices: the head it formatted, then the body
//! `Bytes` it queued without copying. When a slice lies inside a body that the cache keeps in
//! a file ([`mapped`]), [`ZeroCopy`] sends the slices before it with `sendmsg(MSG_MORE)` and
//! that slice with `sendfile` from the file, so the kernel takes references to the file's
//! pages instead of copying the bytes from user memory (as nginx does for its cache files).
//! Everything else is written as `TcpStream` writes it. Partial writes are reported as such;
//! hyper offers the rest again, which then starts inside the mapping (offset = address -
//! start).
//!
//! Only for plain TCP: TLS must encrypt the bytes and HTTP/2 frames them, so those
//! connections never see a mapped slice here.
//!
//! `sendfile` has no `MSG_NOSIGNAL`: like the `writev` tokio uses, it relies on SIGPIPE being
//! ignored, as Rust programs do by default.

use std::io::{self, IoSlice};
use std::os::fd::BorrowedFd;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

use crate::cdn::cache::mapped;

/// A plain TCP connection whose writes send mapped cache bodies from their files.
#[derive(Debug)]
pub struct ZeroCopy {
    stream: TcpStream,
}

impl ZeroCopy {
    pub fn new(stream: TcpStream) -> ZeroCopy {
        ZeroCopy { stream }
    }

    /// Writes `bufs` from the start: through the first slice that lies in a mapped body when
    /// there is one (the slices before it with `sendmsg`, it with `sendfile`), else as the
    /// stream would.
    fn poll_send(&mut self, cx: &mut Context<'_>, bufs: &[IoSlice<'_>]) -> Poll<io::Result<usize>> {
        let found = bufs
            .iter()
            .enumerate()
            .find_map(|(i, buf)| mapped::find(buf).map(|found| (i, found)));
        let Some((index, found)) = found else {
            return Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        };
        let head = &bufs[..index];
        let len = bufs[index].len();
        loop {
            ready!(self.stream.poll_write_ready(cx))?;
            let stream = &self.stream;
            match stream.try_io(Interest::WRITABLE, || {
                send(stream, head, found.fd(), found.offset(), len)
            }) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                result => return Poll::Ready(result),
            }
        }
    }
}

/// One attempt: `head` with `MSG_MORE` (so that it leaves in the same segment as the body),
/// then `len` bytes of `file` from `offset`. Returns the bytes written; `WouldBlock` only
/// when nothing was.
#[cfg(target_os = "linux")]
fn send(
    socket: &TcpStream,
    head: &[IoSlice<'_>],
    file: BorrowedFd<'_>,
    offset: u64,
    len: usize,
) -> io::Result<usize> {
    use rustix::io::Errno;
    use rustix::net::{SendAncillaryBuffer, SendFlags};

    let head_len: usize = head.iter().map(|s| s.len()).sum();
    let mut written = 0;
    if head_len > 0 {
        written = loop {
            match rustix::net::sendmsg(
                socket,
                head,
                &mut SendAncillaryBuffer::default(),
                SendFlags::MORE | SendFlags::NOSIGNAL,
            ) {
                Err(Errno::INTR) => {}
                result => break result?,
            }
        };
        if written < head_len {
            return Ok(written);
        }
    }
    let mut at = offset;
    let sent = loop {
        match rustix::fs::sendfile(socket, file, Some(&mut at), len) {
            Err(Errno::INTR) => {}
            sent => break sent,
        }
    };
    match sent {
        Ok(n) => Ok(written + n),
        // The head went; the body's error (EAGAIN or worse) comes again on the next call.
        Err(_) if written > 0 => Ok(written),
        Err(e) => Err(e.into()),
    }
}

/// Never reached: nothing is mapped where `sendfile` is missing.
#[cfg(not(target_os = "linux"))]
fn send(
    _socket: &TcpStream,
    _head: &[IoSlice<'_>],
    _file: BorrowedFd<'_>,
    _offset: u64,
    _len: usize,
) -> io::Result<usize> {
    Err(io::ErrorKind::Unsupported.into())
}

impl AsyncRead for ZeroCopy {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for ZeroCopy {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_send(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_send(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::time::Duration;

    use bytes::{Buf, Bytes};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpSocket};

    use super::*;

    /// Writes `parts` to `io` the way hyper does: every remaining slice offered each time,
    /// advanced by what each write took. Returns how many writes ended inside a slice.
    async fn write_like_hyper(io: &mut ZeroCopy, mut parts: Vec<Bytes>) -> usize {
        let mut partial = 0;
        while !parts.is_empty() {
            let n = {
                let slices: Vec<IoSlice<'_>> = parts.iter().map(|p| IoSlice::new(p)).collect();
                io.write_vectored(&slices).await.expect("write")
            };
            assert!(n > 0, "progress");
            let mut left = n;
            while left > 0 {
                let first = &mut parts[0];
                let take = left.min(first.len());
                first.advance(take);
                left -= take;
                if first.is_empty() {
                    parts.remove(0);
                } else {
                    partial += 1;
                }
            }
        }
        io.shutdown().await.expect("shutdown");
        partial
    }

    #[tokio::test]
    async fn a_mapped_body_reaches_a_slow_reader_whole_across_partial_writes() {
        let data: Vec<u8> = (0..(1 << 20)).map(|i: u32| (i % 253) as u8).collect();
        let body = mapped::BodyFiles::in_memory().adopt(Bytes::from(data.clone()));
        assert!(
            mapped::find(&body).is_some(),
            "the body is mapped, so it goes out with sendfile"
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let mut client = socket
            .connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        socket2::SockRef::from(&server)
            .set_send_buffer_size(4096)
            .unwrap();
        let parts = vec![
            Bytes::from_static(b"head|"),
            body.slice(10..),
            Bytes::from_static(b"|tail"),
            body.slice(..10),
        ];
        let writer = tokio::spawn(async move {
            let mut io = ZeroCopy::new(server);
            write_like_hyper(&mut io, parts).await
        });
        let mut got = Vec::new();
        let mut buf = vec![0u8; 8192];
        loop {
            let n = tokio::time::timeout(Duration::from_secs(10), client.read(&mut buf))
                .await
                .expect("data in time")
                .unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
            if got.len() % 64 == 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        let partial = writer.await.unwrap();
        let want = [b"head|", &data[10..], b"|tail", &data[..10]].concat();
        assert_eq!(got.len(), want.len());
        assert!(got == want, "every byte, in order");
        assert!(
            partial > 0,
            "the socket filled up, so some writes stopped inside the body"
        );
    }
}
