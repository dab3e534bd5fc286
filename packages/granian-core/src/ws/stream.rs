//! The byte stream under an open WebSocket, between the socket and yawc, with two jobs yawc does not do.
//!
//! - **Protocol violations → 1002.** yawc answers a reserved opcode with 1003 (unsupported data),
//!   which RFC 6455 reserves for data types an endpoint cannot accept, and takes a close or pong frame
//!   with more than 125 bytes (it would echo such a close back). The stream follows frame boundaries
//!   (headers are never compressed, so this holds with permessage-deflate too), hands yawc every byte
//!   before the offending header, then reports the end of the stream; the session sees the end, asks
//!   [`SessionStream::violation`], and sends close 1002 itself.
//! - **Lingering close.** Once the close handshake is complete, dropping the stream at once would
//!   reset an HTTP/2 stream (RST_STREAM, RFC 8441's equivalent of a TCP reset) or close a socket
//!   with unread bytes (a TCP reset). When the session marks the handshake complete
//!   ([`SessionStream::closed_cleanly`]), the stream, when dropped, is handed to a task that ends
//!   our side (FIN, END_STREAM), reads until the peer ends its own (for [`LINGER`] at most) and then
//!   lets it go.
//! - **Back-pressure on the peer's own requests.** yawc answers every ping (and a close) with a frame
//!   it queues without limit, and keeps reading while those answers wait: a client that floods pings
//!   and never reads made the server queue pongs by the gigabyte. Writes that the socket cannot take
//!   at once are held here (up to [`WRITE_BACKLOG`] bytes), and while anything waits the stream reads
//!   nothing more: the peer has to read its answers before it is read again.
//! - **One close frame.** The stream notes the frames yawc writes; [`SessionStream::close_sent`] tells
//!   the session whether a close frame already went out, so that it never sends a second one.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

/// How long a closed stream waits for the peer to end its side before it is dropped.
pub const LINGER: Duration = Duration::from_secs(2);
/// Most bytes written by yawc that wait here for the socket (reading stops while any wait).
pub const WRITE_BACKLOG: usize = 64 * 1024;
/// The opcode of a close frame.
const CLOSE_OPCODE: u8 = 0x8;

/// Whether a frame's opcode is one RFC 6455 reserves (0x3-0x7 data, 0xB-0xF control).
fn is_reserved_opcode(first_byte: u8) -> bool {
    matches!(first_byte & 0x0f, 0x3..=0x7 | 0xb..=0xf)
}

/// A frame the session must refuse with close 1002 (RFC 6455, section 5.5 and 7.4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Violation {
    ReservedOpcode = 1,
    /// A control frame (close, ping, pong) with a payload over 125 bytes.
    ControlFrameTooLong = 2,
}

impl Violation {
    /// The close reason sent to the peer.
    pub fn reason(self) -> &'static str {
        match self {
            Self::ReservedOpcode => "reserved opcode",
            Self::ControlFrameTooLong => "control frame over 125 bytes",
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::ReservedOpcode),
            2 => Some(Self::ControlFrameTooLong),
            _ => None,
        }
    }
}

/// The violation a stream stopped at, shared with the session.
#[derive(Clone, Default)]
pub struct ViolationFlag(Arc<AtomicU8>);

impl ViolationFlag {
    pub fn get(&self) -> Option<Violation> {
        Violation::from_code(self.0.load(Ordering::Relaxed))
    }

    fn set(&self, violation: Violation) {
        self.0.store(violation as u8, Ordering::Relaxed);
    }
}

/// Follows frame boundaries through a byte stream read in arbitrary pieces.
#[derive(Default)]
struct FrameScanner {
    /// Header bytes seen of the frame being started (at most 14).
    header: [u8; 14],
    have: usize,
    /// Payload bytes still to pass before the next header.
    payload_left: u64,
    /// Whether a complete close frame header has been seen.
    saw_close: bool,
}

impl FrameScanner {
    /// Scans the next bytes of the stream; returns where the stream must end (the start of the
    /// offending frame's header, or of these bytes if it began in earlier ones) and why.
    fn scan(&mut self, mut data: &[u8]) -> Option<(usize, Violation)> {
        let total = data.len();
        // Where the current header began within `data` (0 when it began in earlier bytes).
        let mut header_start = 0;
        while !data.is_empty() {
            if self.payload_left > 0 {
                let skip = usize::try_from(self.payload_left).map_or(data.len(), |left| left.min(data.len()));
                self.payload_left -= skip as u64;
                data = &data[skip..];
                continue;
            }
            if self.have == 0 {
                header_start = total - data.len();
                if is_reserved_opcode(data[0]) {
                    return Some((header_start, Violation::ReservedOpcode));
                }
            }
            self.header[self.have] = data[0];
            self.have += 1;
            data = &data[1..];
            if self.have == 2 && self.header[0] & 0x08 != 0 && self.header[1] & 0x7f > 125 {
                return Some((header_start, Violation::ControlFrameTooLong));
            }
            if let Some(payload) = self.complete_header() {
                self.saw_close |= self.header[0] & 0x0f == CLOSE_OPCODE;
                self.payload_left = payload;
                self.have = 0;
            }
        }
        None
    }

    /// The payload length once the header is complete.
    fn complete_header(&self) -> Option<u64> {
        if self.have < 2 {
            return None;
        }
        let length_code = self.header[1] & 0x7f;
        let extended = match length_code {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let mask = if self.header[1] & 0x80 != 0 { 4 } else { 0 };
        if self.have < 2 + extended + mask {
            return None;
        }
        let payload = match extended {
            0 => u64::from(length_code),
            _ => self.header[2..2 + extended].iter().fold(0u64, |acc, byte| (acc << 8) | u64::from(*byte)),
        };
        Some(payload)
    }
}

/// The stream under a WebSocket session (see the module documentation).
pub struct SessionStream<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> {
    /// Taken only when the stream is dropped.
    inner: Option<S>,
    scanner: FrameScanner,
    violation: ViolationFlag,
    closed_cleanly: Arc<AtomicBool>,
    /// Bytes accepted from yawc that the socket has not taken yet (in the order written).
    backlog: BytesMut,
    /// Follows the frames yawc writes (the server's own frames are not checked, only noted).
    outbound: FrameScanner,
    close_sent: Arc<AtomicBool>,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> SessionStream<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner: Some(inner),
            scanner: FrameScanner::default(),
            violation: ViolationFlag::default(),
            closed_cleanly: Arc::new(AtomicBool::new(false)),
            backlog: BytesMut::new(),
            outbound: FrameScanner::default(),
            close_sent: Arc::new(AtomicBool::new(false)),
        }
    }

    /// A flag set once a close frame has been written to the stream (sent, or held to be sent).
    pub fn close_sent(&self) -> Arc<AtomicBool> {
        self.close_sent.clone()
    }

    /// Set once the stream has stopped at a frame the session must refuse.
    pub fn violation(&self) -> ViolationFlag {
        self.violation.clone()
    }

    /// A flag the session sets once the close handshake is complete: the stream then lingers.
    pub fn closed_cleanly(&self) -> Arc<AtomicBool> {
        self.closed_cleanly.clone()
    }

    fn inner(&mut self) -> io::Result<Pin<&mut S>> {
        self.inner.as_mut().map(Pin::new).ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> Drop for SessionStream<S> {
    fn drop(&mut self) {
        let Some(mut inner) = self.inner.take() else { return };
        if !self.closed_cleanly.load(Ordering::Relaxed) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let backlog = std::mem::take(&mut self.backlog);
        runtime.spawn(async move {
            let mut sink = [0u8; 1024];
            let _ = tokio::time::timeout(LINGER, async {
                // What is still held goes out first (it ends with the close frame).
                let _ = inner.write_all(&backlog).await;
                // End our side (TCP FIN, HTTP/2 END_STREAM), then wait for the peer to end its own.
                let _ = inner.shutdown().await;
                while matches!(inner.read(&mut sink).await, Ok(read) if read > 0) {}
            })
            .await;
        });
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> AsyncRead for SessionStream<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if self.violation.get().is_some() {
            return Poll::Ready(Ok(()));
        }
        if !self.backlog.is_empty() {
            // Pending here registers for the socket turning writable, which wakes this read again.
            if let Poll::Ready(Err(err)) = self.drain(cx) {
                return Poll::Ready(Err(err));
            }
            // Anything still waiting means the peer is not reading what it is sent: read it no
            // further (a smaller threshold would let yawc read on while refusing its writes).
            if !self.backlog.is_empty() {
                return Poll::Pending;
            }
        }
        let before = buf.filled().len();
        let result = match self.inner() {
            Ok(inner) => inner.poll_read(cx, buf),
            Err(err) => return Poll::Ready(Err(err)),
        };
        if let Poll::Ready(Ok(())) = result {
            if let Some((offset, violation)) = self.scanner.scan(&buf.filled()[before..]) {
                buf.set_filled(before + offset);
                self.violation.set(violation);
            }
        }
        result
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> SessionStream<S> {
    /// Writes the backlog to the socket; Pending while the socket cannot take all of it.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.backlog.is_empty() {
            let backlog = &self.backlog;
            let written = match self.inner.as_mut() {
                Some(inner) => std::task::ready!(Pin::new(inner).poll_write(cx, backlog))?,
                None => return Poll::Ready(Err(io::Error::from(io::ErrorKind::NotConnected))),
            };
            if written == 0 {
                return Poll::Ready(Err(io::Error::from(io::ErrorKind::WriteZero)));
            }
            self.backlog.advance(written);
        }
        Poll::Ready(Ok(()))
    }

    /// Writes what yawc hands over: straight to the socket when nothing waits and it takes it, else
    /// into the backlog while the backlog is below its limit. `slices` is one write's data.
    fn write_slices(&mut self, cx: &mut Context<'_>, slices: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        let total: usize = slices.iter().map(|slice| slice.len()).sum();
        if total == 0 {
            return Poll::Ready(Ok(0));
        }
        if !self.backlog.is_empty() {
            if let Poll::Ready(Err(err)) = self.drain(cx) {
                return Poll::Ready(Err(err));
            }
        }
        let accepted = if self.backlog.is_empty() {
            match self.inner()?.poll_write_vectored(cx, slices) {
                Poll::Ready(Ok(written)) => written,
                Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
                // The socket is full: hold the write (the waker is registered for writability).
                Poll::Pending if total <= WRITE_BACKLOG => self.hold(slices, total),
                Poll::Pending => return Poll::Pending,
            }
        } else if self.backlog.len() + total <= WRITE_BACKLOG {
            self.hold(slices, total)
        } else {
            return Poll::Pending;
        };
        let mut left = accepted;
        for slice in slices {
            let take = left.min(slice.len());
            // The server's own frames never have the faults the scanner stops at.
            let _ = self.outbound.scan(&slice[..take]);
            left -= take;
            if left == 0 {
                break;
            }
        }
        if self.outbound.saw_close {
            self.close_sent.store(true, Ordering::Relaxed);
        }
        Poll::Ready(Ok(accepted))
    }

    fn hold(&mut self, slices: &[io::IoSlice<'_>], total: usize) -> usize {
        self.backlog.reserve(total);
        for slice in slices {
            self.backlog.extend_from_slice(slice);
        }
        total
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> AsyncWrite for SessionStream<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        self.write_slices(cx, &[io::IoSlice::new(data)])
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.write_slices(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.as_ref().is_some_and(AsyncWrite::is_write_vectored)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.drain(cx))?;
        self.inner()?.poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.drain(cx))?;
        self.inner()?.poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(first: u8, payload_len: usize) -> Vec<u8> {
        let mut bytes = vec![first];
        match payload_len {
            0..=125 => bytes.push(0x80 | payload_len as u8),
            126..=0xffff => {
                bytes.push(0x80 | 126);
                bytes.extend_from_slice(&(payload_len as u16).to_be_bytes());
            }
            _ => {
                bytes.push(0x80 | 127);
                bytes.extend_from_slice(&(payload_len as u64).to_be_bytes());
            }
        }
        bytes.extend_from_slice(&[1, 2, 3, 4]);
        // Payload bytes that look like reserved-opcode headers must not trip the scanner.
        bytes.extend(std::iter::repeat_n(0x83, payload_len));
        bytes
    }

    /// Scans `stream` in pieces of `piece` bytes; returns the stream offset where it must end, and why.
    fn scan_in_pieces(stream: &[u8], piece: usize) -> Option<(usize, Violation)> {
        let mut scanner = FrameScanner::default();
        let mut offset = 0;
        for chunk in stream.chunks(piece) {
            if let Some((at, violation)) = scanner.scan(chunk) {
                return Some((offset + at, violation));
            }
            offset += chunk.len();
        }
        None
    }

    #[test]
    fn valid_frames_of_every_length_encoding_pass() {
        let mut stream = Vec::new();
        for (first, len) in [(0x81, 0), (0x82, 125), (0x01, 126), (0x80, 70_000), (0x89, 3), (0x8a, 0), (0xc1, 10)] {
            stream.extend(frame(first, len));
        }
        for piece in [1, 2, 3, 7, 13, 4096, stream.len()] {
            assert_eq!(scan_in_pieces(&stream, piece), None, "pieces of {piece}");
        }
    }

    #[test]
    fn a_reserved_opcode_is_found_at_its_header_however_the_stream_is_cut() {
        for reserved in [0x3, 0x7, 0xb, 0xf] {
            let mut stream = frame(0x82, 300);
            stream.extend(frame(0x81, 5));
            let at = stream.len();
            stream.extend(frame(0x80 | reserved, 2));
            stream.extend(frame(0x81, 1));
            for piece in [1, 2, 5, 64, stream.len()] {
                let found = scan_in_pieces(&stream, piece);
                assert_eq!(found, Some((at, Violation::ReservedOpcode)), "opcode {reserved:#x}, pieces of {piece}");
            }
        }
    }

    #[test]
    fn a_control_frame_over_125_bytes_ends_the_stream_at_its_header() {
        for opcode in [0x88, 0x89, 0x8a] {
            let mut stream = frame(0x81, 300);
            let at = stream.len();
            stream.extend(frame(opcode, 126));
            for piece in [2, 64, stream.len()] {
                let found = scan_in_pieces(&stream, piece);
                assert_eq!(found, Some((at, Violation::ControlFrameTooLong)), "opcode {opcode:#x}, pieces of {piece}");
            }
            // Cut between the header's two bytes: the stream ends where the second piece begins.
            let found = scan_in_pieces(&stream, at + 1).map(|(_, violation)| violation);
            assert_eq!(found, Some(Violation::ControlFrameTooLong));
        }
        let mut fine = frame(0x88, 125);
        fine.extend(frame(0x89, 0));
        assert_eq!(scan_in_pieces(&fine, 1), None);
    }
}
