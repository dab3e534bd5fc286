//! QUIC as h3 sees it (h3's `quic` traits), with a way to hear that a client cancelled a request.
//!
//! h3-quinn adapts quinn to h3 and serves here for the unidirectional streams (HTTP/3's control and
//! QPACK streams). The request streams are adapted here instead: when a client cancels a request
//! (STOP_SENDING on the response side, RFC 9114 4.1.1) while the app is still working, nothing is
//! being written, so nothing fails, and h3 offers no other way to learn it. On accepting a request
//! stream, [`Connection`] keeps the stream's "stopped" signal in [`Cancellations`], from which the
//! request's task takes it, so the app hears of the cancellation as it does of an HTTP/2 reset.

use std::collections::HashMap;
use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes};
use h3::error::Code;
use h3::quic::{self, ConnectionErrorIncoming, StreamErrorIncoming, StreamId, WriteBuf};
use tokio_util::sync::ReusableBoxFuture;

/// Completes when the client no longer wants the response (or the connection is gone).
pub type Cancelled = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The cancellation signals of a connection's request streams, by stream id, from the stream's
/// acceptance until its request's task takes it.
#[derive(Clone, Default)]
pub struct Cancellations(Arc<Mutex<HashMap<u64, Cancelled>>>);

impl Cancellations {
    fn insert(&self, stream: u64, cancelled: Cancelled) {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(stream, cancelled);
    }

    /// The cancellation signal of request stream `stream` (once).
    pub fn take(&self, stream: StreamId) -> Option<Cancelled> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&stream.into_inner())
    }
}

type NextRequestStream = (quinn::Connection, Result<(quinn::SendStream, quinn::RecvStream), quinn::ConnectionError>);

async fn next_request_stream(connection: quinn::Connection) -> NextRequestStream {
    let accepted = connection.accept_bi().await;
    (connection, accepted)
}

/// A quinn connection for h3's server.
pub struct Connection {
    /// Unidirectional streams in both directions, and closing.
    unidirectional: h3_quinn::Connection,
    accepting: ReusableBoxFuture<'static, NextRequestStream>,
    cancellations: Cancellations,
}

impl Connection {
    pub fn new(connection: quinn::Connection, cancellations: Cancellations) -> Self {
        Self {
            unidirectional: h3_quinn::Connection::new(connection.clone()),
            accepting: ReusableBoxFuture::new(next_request_stream(connection)),
            cancellations,
        }
    }
}

impl<B: Buf> quic::Connection<B> for Connection {
    type RecvStream = h3_quinn::RecvStream;
    type OpenStreams = Opener;

    fn poll_accept_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<Self::RecvStream, ConnectionErrorIncoming>> {
        <h3_quinn::Connection as quic::Connection<B>>::poll_accept_recv(&mut self.unidirectional, cx)
    }

    fn poll_accept_bidi(&mut self, cx: &mut Context<'_>) -> Poll<Result<Self::BidiStream, ConnectionErrorIncoming>> {
        let (connection, accepted) = ready!(self.accepting.poll(cx));
        self.accepting.set(next_request_stream(connection));
        let (send, recv) = accepted.map_err(connection_error)?;
        let stopped = send.stopped();
        self.cancellations.insert(
            u64::from(send.id()),
            Box::pin(async move {
                let _ = stopped.await;
            }),
        );
        Poll::Ready(Ok(RequestStream { send: ResponseSide { stream: send, writing: None }, recv: RequestSide(recv) }))
    }

    fn opener(&self) -> Self::OpenStreams {
        Opener(<h3_quinn::Connection as quic::Connection<B>>::opener(&self.unidirectional))
    }
}

impl<B: Buf> quic::OpenStreams<B> for Connection {
    type BidiStream = RequestStream<B>;
    type SendStream = h3_quinn::SendStream<B>;

    fn poll_open_bidi(&mut self, _cx: &mut Context<'_>) -> Poll<Result<Self::BidiStream, StreamErrorIncoming>> {
        Poll::Ready(Err(no_server_bidi_streams()))
    }

    fn poll_open_send(&mut self, cx: &mut Context<'_>) -> Poll<Result<Self::SendStream, StreamErrorIncoming>> {
        <h3_quinn::Connection as quic::OpenStreams<B>>::poll_open_send(&mut self.unidirectional, cx)
    }

    fn close(&mut self, code: Code, reason: &[u8]) {
        <h3_quinn::Connection as quic::OpenStreams<B>>::close(&mut self.unidirectional, code, reason);
    }
}

/// Opens h3's unidirectional streams (control, QPACK).
pub struct Opener(h3_quinn::OpenStreams);

impl<B: Buf> quic::OpenStreams<B> for Opener {
    type BidiStream = RequestStream<B>;
    type SendStream = h3_quinn::SendStream<B>;

    fn poll_open_bidi(&mut self, _cx: &mut Context<'_>) -> Poll<Result<Self::BidiStream, StreamErrorIncoming>> {
        Poll::Ready(Err(no_server_bidi_streams()))
    }

    fn poll_open_send(&mut self, cx: &mut Context<'_>) -> Poll<Result<Self::SendStream, StreamErrorIncoming>> {
        <h3_quinn::OpenStreams as quic::OpenStreams<B>>::poll_open_send(&mut self.0, cx)
    }

    fn close(&mut self, code: Code, reason: &[u8]) {
        <h3_quinn::OpenStreams as quic::OpenStreams<B>>::close(&mut self.0, code, reason);
    }
}

/// RFC 9114 6.1: HTTP/3 has no server-initiated bidirectional streams; h3's server never asks.
fn no_server_bidi_streams() -> StreamErrorIncoming {
    StreamErrorIncoming::Unknown("an HTTP/3 server opens no bidirectional streams".into())
}

/// A client-initiated bidirectional stream: one request and its response.
pub struct RequestStream<B: Buf> {
    send: ResponseSide<B>,
    recv: RequestSide,
}

impl<B: Buf> quic::BidiStream<B> for RequestStream<B> {
    type SendStream = ResponseSide<B>;
    type RecvStream = RequestSide;

    fn split(self) -> (Self::SendStream, Self::RecvStream) {
        (self.send, self.recv)
    }
}

impl<B: Buf> quic::RecvStream for RequestStream<B> {
    type Buf = Bytes;

    fn poll_data(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Bytes>, StreamErrorIncoming>> {
        self.recv.poll_data(cx)
    }

    fn stop_sending(&mut self, error_code: u64) {
        self.recv.stop_sending(error_code);
    }

    fn recv_id(&self) -> StreamId {
        self.recv.recv_id()
    }
}

impl<B: Buf> quic::SendStream<B> for RequestStream<B> {
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), StreamErrorIncoming>> {
        self.send.poll_ready(cx)
    }

    fn send_data<T: Into<WriteBuf<B>>>(&mut self, data: T) -> Result<(), StreamErrorIncoming> {
        self.send.send_data(data)
    }

    fn poll_finish(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), StreamErrorIncoming>> {
        self.send.poll_finish(cx)
    }

    fn reset(&mut self, reset_code: u64) {
        self.send.reset(reset_code);
    }

    fn send_id(&self) -> StreamId {
        self.send.send_id()
    }
}

/// The request's side of the stream (what the client sends).
pub struct RequestSide(quinn::RecvStream);

impl quic::RecvStream for RequestSide {
    type Buf = Bytes;

    fn poll_data(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Bytes>, StreamErrorIncoming>> {
        // `read_chunk` is cancel-safe and leaves the waker with the connection: a fresh future per
        // poll reads without a boxed future per stream.
        let read = pin!(self.0.read_chunk(usize::MAX, true));
        match ready!(read.poll(cx)) {
            Ok(chunk) => Poll::Ready(Ok(chunk.map(|chunk| chunk.bytes))),
            Err(quinn::ReadError::Reset(code)) => {
                Poll::Ready(Err(StreamErrorIncoming::StreamTerminated { error_code: code.into_inner() }))
            }
            Err(quinn::ReadError::ConnectionLost(lost)) => {
                Poll::Ready(Err(StreamErrorIncoming::ConnectionErrorIncoming {
                    connection_error: connection_error(lost),
                }))
            }
            Err(other) => Poll::Ready(Err(StreamErrorIncoming::Unknown(Box::new(other)))),
        }
    }

    fn stop_sending(&mut self, error_code: u64) {
        let _ = self.0.stop(quinn::VarInt::from_u64(error_code).unwrap_or(quinn::VarInt::MAX));
    }

    fn recv_id(&self) -> StreamId {
        stream_id(self.0.id())
    }
}

impl Drop for RequestSide {
    fn drop(&mut self) {
        // quinn stops a stream dropped before its end was read, with code 0, even when the end has
        // arrived (as it has for most GETs). Reading what is already here spares the client that
        // frame; a request not read to its end is stopped with H3_NO_ERROR (RFC 9114 4.1.1).
        let mut context = Context::from_waker(std::task::Waker::noop());
        loop {
            match pin!(self.0.read_chunk(usize::MAX, true)).poll(&mut context) {
                Poll::Ready(Ok(Some(_))) => continue,
                Poll::Ready(Ok(None) | Err(_)) => return,
                Poll::Pending => break,
            }
        }
        let _ = self.0.stop(quinn::VarInt::from_u64(Code::H3_NO_ERROR.value()).unwrap_or(quinn::VarInt::MAX));
    }
}

/// The response's side of the stream (what the server sends): h3 hands it one buffer at a time.
pub struct ResponseSide<B: Buf> {
    stream: quinn::SendStream,
    writing: Option<WriteBuf<B>>,
}

impl<B: Buf> quic::SendStream<B> for ResponseSide<B> {
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), StreamErrorIncoming>> {
        while let Some(buffer) = self.writing.as_mut().filter(|buffer| buffer.has_remaining()) {
            match ready!(Pin::new(&mut self.stream).poll_write(cx, buffer.chunk())) {
                Ok(written) => buffer.advance(written),
                Err(err) => return Poll::Ready(Err(write_error(err))),
            }
        }
        self.writing = None;
        Poll::Ready(Ok(()))
    }

    fn send_data<T: Into<WriteBuf<B>>>(&mut self, data: T) -> Result<(), StreamErrorIncoming> {
        if self.writing.is_some() {
            // h3 waits for `poll_ready` between buffers; anything else is a bug in the stack.
            return Err(StreamErrorIncoming::ConnectionErrorIncoming {
                connection_error: ConnectionErrorIncoming::InternalError(
                    "a buffer was sent before the last one".into(),
                ),
            });
        }
        self.writing = Some(data.into());
        Ok(())
    }

    fn poll_finish(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), StreamErrorIncoming>> {
        Poll::Ready(self.stream.finish().map_err(|err| StreamErrorIncoming::Unknown(Box::new(err))))
    }

    fn reset(&mut self, reset_code: u64) {
        let _ = self.stream.reset(quinn::VarInt::from_u64(reset_code).unwrap_or(quinn::VarInt::MAX));
    }

    fn send_id(&self) -> StreamId {
        stream_id(self.stream.id())
    }
}

/// quinn's stream id as h3 names it (both are QUIC variable-length integers).
fn stream_id(id: quinn::StreamId) -> StreamId {
    StreamId::try_from(u64::from(id)).expect("a QUIC stream id fits a variable-length integer")
}

fn write_error(err: quinn::WriteError) -> StreamErrorIncoming {
    match err {
        quinn::WriteError::Stopped(code) => StreamErrorIncoming::StreamTerminated { error_code: code.into_inner() },
        quinn::WriteError::ConnectionLost(lost) => {
            StreamErrorIncoming::ConnectionErrorIncoming { connection_error: connection_error(lost) }
        }
        other => StreamErrorIncoming::Unknown(Box::new(other)),
    }
}

/// A lost connection as h3 tells them apart: closed by the peer's HTTP/3 layer, idle, or other.
fn connection_error(err: quinn::ConnectionError) -> ConnectionErrorIncoming {
    match err {
        quinn::ConnectionError::ApplicationClosed(closed) => {
            ConnectionErrorIncoming::ApplicationClose { error_code: closed.error_code.into_inner() }
        }
        quinn::ConnectionError::TimedOut => ConnectionErrorIncoming::Timeout,
        other => ConnectionErrorIncoming::Undefined(Arc::new(other)),
    }
}
