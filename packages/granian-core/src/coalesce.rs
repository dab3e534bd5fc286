//! HTTP/2 responses that are ready together leave in one write.
//!
//! hyper's HTTP/2 connection task writes every frame the streams queued since its last poll, but
//! the h2 crate's frame writer keeps at most one body frame of 256 bytes or more beside its buffer
//! and writes it out before it takes the next one. A connection with four streams answered in the
//! same runtime tick so made four `writev` calls, one per response.
//!
//! [`Coalesced`] sits between hyper and the connection's stream. While the connection task polls
//! an HTTP/2 connection ([`WriteBatch::around`], used by the worker's connection driver), small
//! writes are copied into one buffer and `flush` is put off; when the poll returns, the buffer is
//! written with one call. A write too large to be worth a copy (or one that would take the buffer
//! over its cap) goes out at once together with what is buffered, in one vectored write, so large
//! bodies are never copied and the buffer never grows past [`CAP`].
//!
//! An HTTP/1 connection's stream stays inline in [`Coalesced`] and every call passes straight
//! through; only a connection whose first bytes are the HTTP/2 preface moves its stream into a cell
//! shared with the driver (a lock per call). Outside a poll, writes pass through after whatever is
//! still buffered. The preface decides even after TLS negotiated `h2`: a client may still speak
//! HTTP/1 there, and an HTTP/1 upgrade must not leave its `101` in a buffer.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The most a connection buffers before it writes.
pub const CAP: usize = 64 * 1024;

/// Writes larger than this are not copied: they go out at once, after what is buffered.
pub const COPY_MAX: usize = 8 * 1024;

/// Capacity a drained buffer may keep: an idle connection holds no more than this.
const KEEP: usize = 8 * 1024;

/// The start of the HTTP/2 connection preface: an HTTP/1 request cannot begin with it.
const PREFACE: &[u8] = b"PRI * HTTP/2.0";

struct Inner<T> {
    io: T,
    /// Bytes accepted from hyper and not yet written; `pending[sent..]` is still to go.
    pending: Vec<u8>,
    sent: usize,
    /// Inside a poll of the connection task.
    holding: bool,
    /// hyper asked for a flush while holding: the stream is flushed when the batch is written.
    flush_owed: bool,
    /// A batch written after hyper's call returned failed: the next write or flush reports it.
    failed: Option<io::ErrorKind>,
}

impl<T: AsyncWrite + Unpin> Inner<T> {
    fn buffered(&self) -> usize {
        self.pending.len() - self.sent
    }

    fn consume(&mut self, written: usize) {
        self.sent += written;
        if self.sent >= self.pending.len() {
            self.pending.clear();
            self.sent = 0;
        }
    }

    /// After a poll's drain: drops what was sent from the front, so the allocation stays within the
    /// cap while a slow reader drains it, and frees a large buffer once it is empty.
    fn compact(&mut self) {
        if self.sent > 0 {
            self.pending.drain(..self.sent);
            self.sent = 0;
        }
        if self.pending.is_empty() && self.pending.capacity() > KEEP {
            self.pending = Vec::new();
        }
    }

    /// Writes what is buffered together with `bufs`; returns how many bytes of `bufs` went.
    fn poll_write_after_buffered(&mut self, cx: &mut Context<'_>, bufs: &[IoSlice<'_>]) -> Poll<io::Result<usize>> {
        while self.buffered() > 0 {
            let written = {
                let mut slices = Vec::with_capacity(bufs.len() + 1);
                slices.push(IoSlice::new(&self.pending[self.sent..]));
                slices.extend(bufs.iter().map(|buf| IoSlice::new(buf)));
                ready!(Pin::new(&mut self.io).poll_write_vectored(cx, &slices))?
            };
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            let buffered = self.buffered();
            self.consume(written);
            if written > buffered {
                return Poll::Ready(Ok(written - buffered));
            }
        }
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    /// Writes everything buffered, then flushes the stream.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.buffered() > 0 {
            let written = ready!(Pin::new(&mut self.io).poll_write(cx, &self.pending[self.sent..]))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.consume(written);
        }
        ready!(Pin::new(&mut self.io).poll_flush(cx))?;
        self.flush_owed = false;
        Poll::Ready(Ok(()))
    }

    fn check_failed(&mut self) -> io::Result<()> {
        match self.failed {
            Some(kind) => Err(kind.into()),
            None => Ok(()),
        }
    }
}

/// Where an HTTP/2 connection's stream lives once its first bytes showed the preface: shared by the
/// stream hyper holds and the connection driver's [`WriteBatch`].
type Cell<T> = Arc<OnceLock<Mutex<Inner<T>>>>;

/// A connection's stream. HTTP/1 streams stay inline and pass everything through untouched; an
/// HTTP/2 stream moves into the shared cell, and its writes are batched per poll.
pub struct Coalesced<T> {
    direct: Option<T>,
    /// Whether the first bytes read were looked at for the HTTP/2 preface.
    classified: bool,
    cell: Cell<T>,
}

/// The connection driver's handle on a [`Coalesced`] stream.
pub struct WriteBatch<T>(Cell<T>);

fn lock<T>(inner: &Mutex<Inner<T>>) -> MutexGuard<'_, Inner<T>> {
    inner.lock().unwrap_or_else(|e| e.into_inner())
}

impl<T: AsyncRead + AsyncWrite + Unpin> Coalesced<T> {
    /// Wraps `io`; the first bytes read decide whether it batches.
    pub fn new(io: T) -> (Self, WriteBatch<T>) {
        let cell = Cell::default();
        (Self { direct: Some(io), classified: false, cell: cell.clone() }, WriteBatch(cell))
    }

    /// Moves the stream into the shared cell: from now on its writes are batched.
    fn share(&mut self) {
        if let Some(io) = self.direct.take() {
            let inner = Inner { io, pending: Vec::new(), sent: 0, holding: false, flush_owed: false, failed: None };
            if let Err(refused) = self.cell.set(Mutex::new(inner)) {
                // Only `share` fills the cell, once: keep the stream inline should that ever change.
                self.direct = Some(refused.into_inner().unwrap_or_else(|e| e.into_inner()).io);
            }
        }
    }

    /// The shared stream (once `direct` is gone).
    fn shared(&self) -> io::Result<MutexGuard<'_, Inner<T>>> {
        self.cell.get().map(lock).ok_or_else(|| io::Error::other("the connection's stream is gone"))
    }
}

impl<T: AsyncWrite + Unpin> WriteBatch<T> {
    /// Polls the connection with `poll`, batching the writes it makes, and writes the batch when it
    /// returns (waiting for room in the socket is the connection task's next wake-up).
    pub fn around<R>(&self, cx: &mut Context<'_>, poll: impl FnOnce(&mut Context<'_>) -> R) -> R {
        let Some(cell) = self.0.get() else {
            return poll(cx);
        };
        lock(cell).holding = true;
        let result = poll(cx);
        let mut inner = lock(cell);
        inner.holding = false;
        if inner.buffered() > 0 || inner.flush_owed {
            if let Poll::Ready(Err(err)) = inner.poll_drain(cx) {
                inner.failed = Some(err.kind());
                inner.pending.clear();
                inner.sent = 0;
                // hyper learns of it at its next write or flush: poll it again.
                cx.waker().wake_by_ref();
            }
            inner.compact();
        }
        result
    }

    /// Writes what a connection that has ended still holds (it ended without a shutdown, which
    /// drains: an I/O error).
    pub fn poll_finish(&self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(cell) = self.0.get() else {
            return Poll::Ready(());
        };
        let mut inner = lock(cell);
        if inner.failed.is_some() || (inner.buffered() == 0 && !inner.flush_owed) {
            return Poll::Ready(());
        }
        inner.poll_drain(cx).map(|_| ())
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for Coalesced<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let Some(io) = &mut this.direct else {
            return Pin::new(&mut this.shared()?.io).poll_read(cx, buf);
        };
        let before = buf.filled().len();
        ready!(Pin::new(io).poll_read(cx, buf))?;
        if !this.classified && buf.filled().len() > before {
            // A first read too short to tell is taken as HTTP/1 (batching is only an optimization).
            this.classified = true;
            if buf.filled()[before..].starts_with(PREFACE) {
                this.share();
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Coalesced<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Some(io) = &mut this.direct {
            return Pin::new(io).poll_write(cx, buf);
        }
        let mut inner = this.shared()?;
        inner.check_failed()?;
        if inner.holding && buf.len() <= COPY_MAX && inner.buffered() + buf.len() <= CAP {
            inner.pending.extend_from_slice(buf);
            return Poll::Ready(Ok(buf.len()));
        }
        if inner.buffered() == 0 {
            // Unchanged, as the stream below may tell single writes from vectored ones (sendfile).
            return Pin::new(&mut inner.io).poll_write(cx, buf);
        }
        inner.poll_write_after_buffered(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Some(io) = &mut this.direct {
            return Pin::new(io).poll_write_vectored(cx, bufs);
        }
        let mut inner = this.shared()?;
        inner.check_failed()?;
        if inner.holding {
            let size: usize = bufs.iter().map(|buf| buf.len()).sum();
            if size <= COPY_MAX && inner.buffered() + size <= CAP {
                for buf in bufs {
                    inner.pending.extend_from_slice(buf);
                }
                return Poll::Ready(Ok(size));
            }
        }
        inner.poll_write_after_buffered(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        match &self.direct {
            Some(io) => io.is_write_vectored(),
            None => self.shared().is_ok_and(|inner| inner.io.is_write_vectored()),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(io) = &mut this.direct {
            return Pin::new(io).poll_flush(cx);
        }
        let mut inner = this.shared()?;
        inner.check_failed()?;
        if inner.holding {
            inner.flush_owed = true;
            return Poll::Ready(Ok(()));
        }
        inner.poll_drain(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(io) = &mut this.direct {
            return Pin::new(io).poll_shutdown(cx);
        }
        let mut inner = this.shared()?;
        if inner.failed.is_none() {
            ready!(inner.poll_drain(cx))?;
        }
        Pin::new(&mut inner.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Waker;

    /// A stream that records each write call, takes at most `room` bytes before it reports Pending,
    /// and serves `input` to reads.
    #[derive(Default)]
    struct Recorder {
        writes: Vec<Vec<u8>>,
        flushes: usize,
        room: Option<usize>,
        input: Vec<u8>,
    }

    impl AsyncRead for Recorder {
        fn poll_read(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
            let input = std::mem::take(&mut self.input);
            buf.put_slice(&input);
            Poll::Ready(Ok(()))
        }
    }

    impl AsyncWrite for Recorder {
        fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
            self.poll_write_vectored(cx, &[IoSlice::new(buf)])
        }

        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            let mut call: Vec<u8> = bufs.iter().flat_map(|buf| buf.iter().copied()).collect();
            if let Some(room) = self.room {
                if room == 0 {
                    return Poll::Pending;
                }
                call.truncate(room);
                self.room = Some(room - call.len());
            }
            let written = call.len();
            self.writes.push(call);
            Poll::Ready(Ok(written))
        }

        fn is_write_vectored(&self) -> bool {
            true
        }

        fn poll_flush(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.flushes += 1;
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    fn cx() -> Context<'static> {
        Context::from_waker(Waker::noop())
    }

    fn write(stream: &mut Coalesced<Recorder>, bytes: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(stream).poll_write(&mut cx(), bytes)
    }

    fn flush(stream: &mut Coalesced<Recorder>) -> Poll<io::Result<()>> {
        Pin::new(stream).poll_flush(&mut cx())
    }

    fn recorded<R>(stream: &Coalesced<Recorder>, f: impl FnOnce(&Recorder) -> R) -> R {
        match &stream.direct {
            Some(io) => f(io),
            None => f(&stream.shared().unwrap().io),
        }
    }

    const PREFACE_BYTES: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

    fn read_first(stream: &mut Coalesced<Recorder>) {
        let mut space = [0u8; 64];
        let mut buf = ReadBuf::new(&mut space);
        assert!(matches!(Pin::new(stream).poll_read(&mut cx(), &mut buf), Poll::Ready(Ok(()))));
    }

    /// A stream whose client opened with `first`, read.
    fn opened_with(first: &[u8], io: Recorder) -> (Coalesced<Recorder>, WriteBatch<Recorder>) {
        let (mut stream, writes) = Coalesced::new(Recorder { input: first.to_vec(), ..io });
        read_first(&mut stream);
        (stream, writes)
    }

    fn http2(io: Recorder) -> (Coalesced<Recorder>, WriteBatch<Recorder>) {
        opened_with(PREFACE_BYTES, io)
    }

    #[test]
    fn an_http2_poll_writes_its_responses_in_one_call() {
        let (mut stream, writes) = http2(Recorder::default());
        writes.around(&mut cx(), |_| {
            for response in [b"first ".as_slice(), b"second ", b"third"] {
                assert!(matches!(write(&mut stream, response), Poll::Ready(Ok(_))));
                assert!(matches!(flush(&mut stream), Poll::Ready(Ok(()))));
            }
            recorded(&stream, |io| assert!(io.writes.is_empty() && io.flushes == 0));
        });
        recorded(&stream, |io| {
            assert_eq!(io.writes, vec![b"first second third".to_vec()]);
            assert_eq!(io.flushes, 1);
        });
    }

    #[test]
    fn a_large_write_leaves_at_once_with_what_is_buffered_before_it() {
        let (mut stream, writes) = http2(Recorder::default());
        let large = vec![b'x'; COPY_MAX + 1];
        writes.around(&mut cx(), |_| {
            let _ = write(&mut stream, b"head");
            assert!(matches!(write(&mut stream, &large), Poll::Ready(Ok(n)) if n == large.len()));
            let _ = write(&mut stream, b"tail");
        });
        recorded(&stream, |io| {
            assert_eq!(io.writes.len(), 2);
            assert_eq!(io.writes[0], [b"head".as_slice(), &large].concat());
            assert_eq!(io.writes[1], b"tail");
        });
    }

    #[test]
    fn writes_pass_through_outside_a_poll_and_on_http1() {
        let (mut stream, writes) = opened_with(b"GET / HTTP/1.1\r\n", Recorder::default());
        writes.around(&mut cx(), |_| {
            let _ = write(&mut stream, b"one");
            let _ = write(&mut stream, b"two");
        });
        recorded(&stream, |io| assert_eq!(io.writes.len(), 2));
        let (mut stream, _writes) = http2(Recorder::default());
        let _ = write(&mut stream, b"one");
        recorded(&stream, |io| assert_eq!(io.writes, vec![b"one".to_vec()]));
    }

    #[test]
    fn a_drained_buffer_keeps_little_memory() {
        let (mut stream, writes) = http2(Recorder::default());
        let chunk = vec![b'z'; COPY_MAX];
        writes.around(&mut cx(), |_| {
            for _ in 0..CAP / COPY_MAX {
                assert!(matches!(write(&mut stream, &chunk), Poll::Ready(Ok(_))));
            }
        });
        recorded(&stream, |io| assert_eq!(io.writes.len(), 1));
        assert!(stream.shared().unwrap().pending.capacity() <= KEEP);
    }

    #[test]
    fn the_http2_preface_turns_batching_on() {
        for (first, batching) in [(PREFACE_BYTES, true), (b"GET / HTTP/1.1\r\n".as_slice(), false)] {
            let (stream, _writes) = opened_with(first, Recorder::default());
            assert_eq!(stream.direct.is_none(), batching);
        }
    }

    #[test]
    fn a_full_socket_keeps_the_batch_and_holds_writes_back_past_the_cap() {
        let (mut stream, writes) = http2(Recorder { room: Some(3), ..Recorder::default() });
        writes.around(&mut cx(), |_| {
            let _ = write(&mut stream, b"abcdef");
        });
        // Three bytes went; the rest waits for the socket.
        recorded(&stream, |io| assert_eq!(io.writes, vec![b"abc".to_vec()]));
        let chunk = vec![b'y'; COPY_MAX];
        let mut accepted = 0;
        writes.around(&mut cx(), |_| {
            while let Poll::Ready(Ok(n)) = write(&mut stream, &chunk) {
                accepted += n;
            }
        });
        assert!(accepted + 3 <= CAP, "the batch stays under its cap while the socket is full");
        stream.shared().unwrap().io.room = None;
        // Not in a poll: the next write goes after everything buffered, in order.
        let _ = write(&mut stream, b"end");
        let all: Vec<u8> = recorded(&stream, |io| io.writes.concat());
        assert_eq!(all, [b"abcdef".as_slice(), &vec![b'y'; accepted], b"end"].concat());
    }
}
