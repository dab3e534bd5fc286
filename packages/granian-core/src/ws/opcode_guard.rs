//! Stops reading at a frame with a reserved opcode, so the session can fail the connection with
//! close code 1002 (protocol error, RFC 6455 section 5.2 and 7.4.1).
//!
//! yawc answers reserved opcodes with 1003 (unsupported data), which RFC 6455 reserves for data
//! types an endpoint cannot accept. The guard sits between the socket and yawc: it follows frame
//! boundaries in the byte stream (headers are never compressed, so this holds with
//! permessage-deflate too), hands yawc every byte before the offending header, then reports the
//! end of the stream. The session sees the stream end, asks [`OpcodeGuard::tripped`], and sends the
//! close itself.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Whether a frame's opcode is one RFC 6455 reserves (0x3-0x7 data, 0xB-0xF control).
fn is_reserved_opcode(first_byte: u8) -> bool {
    matches!(first_byte & 0x0f, 0x3..=0x7 | 0xb..=0xf)
}

/// Follows frame boundaries through a byte stream read in arbitrary pieces.
#[derive(Default)]
struct FrameScanner {
    /// Header bytes seen of the frame being started (at most 14).
    header: [u8; 14],
    have: usize,
    /// Payload bytes still to pass before the next header.
    payload_left: u64,
}

impl FrameScanner {
    /// Scans the next bytes of the stream; returns where a frame with a reserved opcode starts.
    fn scan(&mut self, mut data: &[u8]) -> Option<usize> {
        let total = data.len();
        while !data.is_empty() {
            if self.payload_left > 0 {
                let skip = usize::try_from(self.payload_left).map_or(data.len(), |left| left.min(data.len()));
                self.payload_left -= skip as u64;
                data = &data[skip..];
                continue;
            }
            if self.have == 0 && is_reserved_opcode(data[0]) {
                return Some(total - data.len());
            }
            self.header[self.have] = data[0];
            self.have += 1;
            data = &data[1..];
            if let Some(payload) = self.complete_header() {
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

/// A stream that ends just before the first frame with a reserved opcode.
pub struct OpcodeGuard<S> {
    inner: S,
    scanner: FrameScanner,
    tripped: Arc<AtomicBool>,
}

impl<S> OpcodeGuard<S> {
    pub fn new(inner: S) -> Self {
        Self { inner, scanner: FrameScanner::default(), tripped: Arc::new(AtomicBool::new(false)) }
    }

    /// A flag that turns true once the guard has stopped the stream at a reserved opcode.
    pub fn tripped(&self) -> Arc<AtomicBool> {
        self.tripped.clone()
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for OpcodeGuard<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if self.tripped.load(Ordering::Relaxed) {
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let this = &mut *self;
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = result {
            if let Some(offset) = this.scanner.scan(&buf.filled()[before..]) {
                buf.set_filled(before + offset);
                this.tripped.store(true, Ordering::Relaxed);
            }
        }
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for OpcodeGuard<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
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

    /// Scans `stream` in pieces of `piece` bytes; returns the stream offset of the first hit.
    fn scan_in_pieces(stream: &[u8], piece: usize) -> Option<usize> {
        let mut scanner = FrameScanner::default();
        let mut offset = 0;
        for chunk in stream.chunks(piece) {
            if let Some(at) = scanner.scan(chunk) {
                return Some(offset + at);
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
                assert_eq!(scan_in_pieces(&stream, piece), Some(at), "opcode {reserved:#x}, pieces of {piece}");
            }
        }
    }
}
