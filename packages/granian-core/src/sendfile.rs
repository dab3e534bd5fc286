//! Zero-copy file bodies on plain-text HTTP/1 connections: the kernel moves file pages to the socket
//! with `sendfile(2)`, and the bytes never pass through the process.
//!
//! hyper owns a connection's writes and its body frames are bytes, so a file body cannot simply hand
//! it a descriptor. Instead, on a connection that allows it, a file body yields *placeholder* frames:
//! slices of one zero-filled region that nothing else in the process refers to, each as long as the
//! file region it stands for, and records that file region in the connection's [`FileLedger`]. When
//! hyper writes a placeholder, the connection's stream ([`SendfileStream`]) recognises it by its
//! address and sends the file region in its place.
//!
//! Why that is sound, and what is checked:
//! - hyper queues body frames as they are and writes them in order with vectored writes (its "queue"
//!   write strategy, chosen because the stream supports vectored writes). Its other strategy copies
//!   frames into one buffer; hyper uses it when `pipeline_flush` is on, so such connections get no
//!   ledger. Should a copy happen anyway, the stream sees a plain write while file regions wait and
//!   fails the connection rather than send zeros.
//! - HTTP/1 sends one response at a time, so placeholders reach the stream in the order their regions
//!   were recorded; each written placeholder must start exactly where its region stands, or the
//!   connection fails.
//! - Only HTTP/1 responses on plain-text connections use it: TLS encrypts in user space and HTTP/2
//!   interleaves streams in frames of its own.
//! - A file that shrinks while it is sent ends the connection (as a short read does), so a response
//!   never claims more bytes than it carries; unlike a memory map, nothing faults when that happens.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::{TcpStream, UnixStream};

/// The longest placeholder, and so the most a file body hands hyper in one frame.
pub const MAX_FRAME: usize = 1024 * 1024;

/// The zero-filled region placeholders are cut from: allocated zeroed on first use and never
/// touched, so its pages are never made resident.
fn region() -> &'static [u8] {
    static REGION: OnceLock<&'static [u8]> = OnceLock::new();
    REGION.get_or_init(|| Box::leak(vec![0u8; MAX_FRAME].into_boxed_slice()))
}

/// A placeholder frame standing for `length` (at most [`MAX_FRAME`]) bytes of a file.
fn placeholder(length: usize) -> Bytes {
    Bytes::from_static(&region()[..length])
}

/// Where `slice` starts inside the placeholder region, when it is a piece of it.
fn placeholder_position(slice: &[u8]) -> Option<usize> {
    let base = region().as_ptr() as usize;
    let start = slice.as_ptr() as usize;
    (!slice.is_empty() && start >= base && start + slice.len() <= base + MAX_FRAME).then(|| start - base)
}

/// A file region a placeholder stands for, and how much of it the socket has taken.
struct Region {
    file: Arc<File>,
    offset: u64,
    length: usize,
    sent: usize,
}

/// The file regions whose placeholders hyper has been given but not yet written, oldest first.
/// Shared by a connection's stream and the file bodies of its responses.
#[derive(Clone, Default)]
pub struct FileLedger(Arc<Mutex<VecDeque<Region>>>);

impl FileLedger {
    fn regions(&self) -> MutexGuard<'_, VecDeque<Region>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records the next `length` bytes of `file` from `offset` and returns the placeholder frame
    /// that stands for them (`length` at most [`MAX_FRAME`]).
    pub fn record(&self, file: &Arc<File>, offset: u64, length: usize) -> Bytes {
        self.regions().push_back(Region { file: file.clone(), offset, length, sent: 0 });
        placeholder(length)
    }
}

/// A stream that can wait for write readiness and run a raw write on its descriptor.
pub trait SendfileTarget: AsyncRead + AsyncWrite + AsRawFd + Unpin + Send + 'static {
    fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
    fn try_write_with(&self, write: impl FnOnce() -> io::Result<usize>) -> io::Result<usize>;
}

impl SendfileTarget for TcpStream {
    fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        TcpStream::poll_write_ready(self, cx)
    }

    fn try_write_with(&self, write: impl FnOnce() -> io::Result<usize>) -> io::Result<usize> {
        self.try_io(Interest::WRITABLE, write)
    }
}

impl SendfileTarget for UnixStream {
    fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        UnixStream::poll_write_ready(self, cx)
    }

    fn try_write_with(&self, write: impl FnOnce() -> io::Result<usize>) -> io::Result<usize> {
        self.try_io(Interest::WRITABLE, write)
    }
}

/// A plain-text connection's socket, sending file regions in place of their placeholders; without
/// a ledger it only passes reads and writes through.
pub struct SendfileStream<S> {
    inner: S,
    ledger: Option<FileLedger>,
}

impl<S: SendfileTarget> SendfileStream<S> {
    pub fn new(inner: S, ledger: Option<FileLedger>) -> Self {
        Self { inner, ledger }
    }

    /// Sends (part of) the file region that `slice`, a placeholder at the head of hyper's queue,
    /// stands for; returns how many of its bytes the socket took.
    fn poll_send_region(inner: &S, cx: &mut Context<'_>, ledger: &FileLedger, slice: &[u8]) -> Poll<io::Result<usize>> {
        let mut regions = ledger.regions();
        let Some(region) = regions.front_mut() else {
            return Poll::Ready(Err(inconsistent("a placeholder was written with no file region recorded")));
        };
        if placeholder_position(slice) != Some(region.sent) || slice.len() > region.length - region.sent {
            return Poll::Ready(Err(inconsistent("a placeholder was written out of order")));
        }
        let (socket, file) = (inner.as_raw_fd(), region.file.as_raw_fd());
        let offset = region.offset + region.sent as u64;
        loop {
            ready!(inner.poll_write_ready(cx))?;
            match inner.try_write_with(|| send_file(socket, file, offset, slice.len())) {
                Ok(0) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the file shrank while it was being sent",
                    )))
                }
                Ok(sent) => {
                    region.sent += sent;
                    if region.sent == region.length {
                        regions.pop_front();
                    }
                    return Poll::Ready(Ok(sent));
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                Err(error) => return Poll::Ready(Err(error)),
            }
        }
    }
}

fn inconsistent(what: &str) -> io::Error {
    io::Error::other(format!("zero-copy file body: {what}; closing the connection"))
}

/// One `sendfile(2)` of up to `count` bytes of `file` from `offset` to `socket`.
fn send_file(socket: RawFd, file: RawFd, offset: u64, count: usize) -> io::Result<usize> {
    let mut position = libc::off_t::try_from(offset).map_err(io::Error::other)?;
    // SAFETY: both descriptors are open for the duration of the call (the stream and the ledger's
    // `Arc<File>` own them); the kernel writes only to `position`, a live local.
    #[allow(unsafe_code)]
    let sent = unsafe { libc::sendfile(socket, file, &raw mut position, count) };
    if sent < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(sent as usize)
    }
}

impl<S: SendfileTarget> AsyncRead for SendfileStream<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: SendfileTarget> AsyncWrite for SendfileStream<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        // hyper writes single buffers only when it copies frames into one buffer: with file regions
        // waiting, that buffer holds zeros where the file belongs.
        if self.ledger.as_ref().is_some_and(|ledger| !ledger.regions().is_empty()) {
            return Poll::Ready(Err(inconsistent("a file body was copied instead of sent")));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let Self { inner, ledger } = self.get_mut();
        let Some(ledger) = ledger else {
            return Pin::new(inner).poll_write_vectored(cx, bufs);
        };
        // What precedes the first placeholder goes out as it is; the placeholder, on its own call.
        match bufs.iter().position(|slice| placeholder_position(slice).is_some()) {
            None => Pin::new(inner).poll_write_vectored(cx, bufs),
            Some(0) => Self::poll_send_region(inner, cx, ledger, &bufs[0]),
            Some(first) => Pin::new(inner).poll_write_vectored(cx, &bufs[..first]),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn file_with(contents: &[u8]) -> Arc<File> {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let unique = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("granian-sendfile-{}-{unique}", std::process::id()));
        std::fs::write(&path, contents).unwrap();
        let file = File::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        Arc::new(file)
    }

    async fn pair(ledger: Option<FileLedger>) -> (SendfileStream<TcpStream>, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (SendfileStream::new(server, ledger), client)
    }

    #[test]
    fn only_slices_of_the_region_are_placeholders() {
        let frame = placeholder(10);
        assert_eq!(placeholder_position(&frame), Some(0));
        assert_eq!(placeholder_position(&frame[4..]), Some(4));
        assert_eq!(placeholder_position(&[0u8; 10]), None);
        assert_eq!(placeholder_position(&frame[..0]), None);
    }

    #[tokio::test]
    async fn placeholders_are_replaced_by_their_file_regions_in_order() {
        let ledger = FileLedger::default();
        let (mut stream, mut client) = pair(Some(ledger.clone())).await;
        let file = file_with(b"0123456789abcdef");
        let first = ledger.record(&file, 2, 4);
        let second = ledger.record(&file, 10, 6);
        let head = Bytes::from_static(b"head:");
        let mut queue = vec![head.clone(), first, second];
        // Writes as hyper does: vectored, advancing by what each call took.
        while !queue.is_empty() {
            let slices: Vec<IoSlice<'_>> = queue.iter().map(|b| IoSlice::new(b)).collect();
            let mut taken = stream.write_vectored(&slices).await.unwrap();
            while taken > 0 {
                let front = &mut queue[0];
                let step = taken.min(front.len());
                bytes::Buf::advance(front, step);
                taken -= step;
                if front.is_empty() {
                    queue.remove(0);
                }
            }
        }
        drop(stream);
        let mut received = Vec::new();
        client.read_to_end(&mut received).await.unwrap();
        assert_eq!(received, b"head:2345abcdef");
        assert!(ledger.regions().is_empty());
    }

    #[tokio::test]
    async fn a_copied_placeholder_fails_the_connection() {
        let ledger = FileLedger::default();
        let (mut stream, _client) = pair(Some(ledger.clone())).await;
        let frame = ledger.record(&file_with(b"abc"), 0, 3);
        let copied = frame.to_vec();
        let err = stream.write(&copied).await.unwrap_err();
        assert!(err.to_string().contains("copied instead of sent"), "{err}");
    }

    #[tokio::test]
    async fn a_placeholder_out_of_place_fails_the_connection() {
        let ledger = FileLedger::default();
        let (mut stream, _client) = pair(Some(ledger.clone())).await;
        let frame = ledger.record(&file_with(b"abcdef"), 0, 6);
        let err = stream.write_vectored(&[IoSlice::new(&frame[2..])]).await.unwrap_err();
        assert!(err.to_string().contains("out of order"), "{err}");
    }

    #[tokio::test]
    async fn a_file_that_shrank_ends_the_body_with_an_error() {
        let ledger = FileLedger::default();
        let (mut stream, _client) = pair(Some(ledger.clone())).await;
        let frame = ledger.record(&file_with(b"abc"), 0, 8);
        let slices = [IoSlice::new(&frame)];
        assert_eq!(stream.write_vectored(&slices).await.unwrap(), 3);
        let rest = [IoSlice::new(&frame[3..])];
        let err = stream.write_vectored(&rest).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[tokio::test]
    async fn without_a_ledger_writes_pass_through() {
        let (mut stream, mut client) = pair(None).await;
        stream.write_all(b"plain").await.unwrap();
        drop(stream);
        let mut received = Vec::new();
        client.read_to_end(&mut received).await.unwrap();
        assert_eq!(received, b"plain");
    }
}
