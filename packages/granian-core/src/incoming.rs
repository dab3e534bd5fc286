//! The body of a request as it arrives, whatever carried it: hyper's (HTTP/1.1, HTTP/2) or an
//! HTTP/3 request stream. Everything after the transport (limits, the interfaces' reads) sees one
//! type.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use crate::errors::CoreError;

/// A request body from any transport.
pub enum IncomingBody {
    /// HTTP/1.1 and HTTP/2, read by hyper.
    Hyper(Incoming),
    /// HTTP/3, read from the request's QUIC stream.
    #[cfg(feature = "http3")]
    Http3(crate::http3::body::StreamBody),
}

/// A transport's request body as the engine takes it. Requests keep their transport's body type up
/// to [`crate::body::LimitedBody`], which converts it: converting the whole request up front
/// would move its head (over 200 bytes) once more per request.
pub trait TransportBody: Body<Data = Bytes> + Into<IncomingBody> + Send + 'static {}

impl<B: Body<Data = Bytes> + Into<IncomingBody> + Send + 'static> TransportBody for B {}

impl From<Incoming> for IncomingBody {
    fn from(body: Incoming) -> Self {
        Self::Hyper(body)
    }
}

#[cfg(feature = "http3")]
impl From<crate::http3::body::StreamBody> for IncomingBody {
    fn from(body: crate::http3::body::StreamBody) -> Self {
        Self::Http3(body)
    }
}

impl Body for IncomingBody {
    type Data = Bytes;
    type Error = CoreError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, CoreError>>> {
        match self.get_mut() {
            Self::Hyper(body) => match std::task::ready!(Pin::new(body).poll_frame(cx)) {
                Some(Ok(frame)) => Poll::Ready(Some(Ok(frame))),
                Some(Err(err)) => Poll::Ready(Some(Err(CoreError::Closed(err.to_string())))),
                None => Poll::Ready(None),
            },
            #[cfg(feature = "http3")]
            Self::Http3(body) => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Hyper(body) => body.is_end_stream(),
            #[cfg(feature = "http3")]
            Self::Http3(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Hyper(body) => body.size_hint(),
            #[cfg(feature = "http3")]
            Self::Http3(body) => body.size_hint(),
        }
    }
}
