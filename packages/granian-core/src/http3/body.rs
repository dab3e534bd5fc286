//! HTTP/3 request and response bodies: the request's QUIC stream read as an [`http_body::Body`],
//! and a response written to the stream frame by frame.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::SystemTime;

use bytes::{Buf, Bytes};
use h3::server::RequestStream;
use http::header::{HeaderMap, HeaderValue, CONNECTION, CONTENT_LENGTH, DATE, TRANSFER_ENCODING, UPGRADE};
use http::{Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;

use super::transport::{RequestSide, ResponseSide};
use crate::errors::CoreError;

/// The receiving half of a request stream.
type RecvHalf = RequestStream<RequestSide, Bytes>;
/// The sending half of a request stream.
pub type SendHalf = RequestStream<ResponseSide<Bytes>, Bytes>;

/// A request body read from its HTTP/3 stream.
pub struct StreamBody {
    stream: Box<RecvHalf>,
    /// The declared length (`content-length`), if any.
    declared: Option<u64>,
    ended: bool,
}

impl StreamBody {
    pub fn new(stream: RecvHalf, headers: &HeaderMap) -> Self {
        let declared = headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
        Self { stream: Box::new(stream), ended: declared == Some(0), declared }
    }
}

impl Body for StreamBody {
    type Data = Bytes;
    type Error = CoreError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, CoreError>>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        match std::task::ready!(this.stream.poll_recv_data(cx)) {
            Ok(Some(mut data)) => Poll::Ready(Some(Ok(Frame::data(data.copy_to_bytes(data.remaining()))))),
            Ok(None) => {
                this.ended = true;
                Poll::Ready(None)
            }
            Err(err) => {
                this.ended = true;
                Poll::Ready(Some(Err(CoreError::Closed(err.to_string()))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended
    }

    fn size_hint(&self) -> SizeHint {
        match self.declared {
            Some(length) => SizeHint::with_exact(length),
            None => SizeHint::default(),
        }
    }
}

/// Headers that belong to one HTTP/1 connection and are malformed in HTTP/3 (RFC 9114, 4.2).
fn strip_connection_headers(headers: &mut HeaderMap) {
    for name in [CONNECTION, TRANSFER_ENCODING, UPGRADE] {
        headers.remove(name);
    }
    headers.remove("keep-alive");
    headers.remove("proxy-connection");
}

/// Sends `response` on `stream`: the head (with `date`, and `content-length` when the body's
/// length is known and the response may have a body), then its body, then the end of the stream.
/// `head_only`: the answer to a HEAD request, whose length is the app's to declare. A body that
/// fails midway resets the stream, so the client sees an incomplete response rather than a short one.
pub async fn send_response<B>(stream: &mut SendHalf, response: Response<B>, head_only: bool) -> Result<(), String>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let (mut parts, mut body) = response.into_parts();
    strip_connection_headers(&mut parts.headers);
    // RFC 9110 §8.6: no Content-Length in a 1xx or 204 response, nor one made up for a 304 or HEAD.
    let status = parts.status;
    let bodiless = head_only
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    if let (Some(length), false, false) =
        (body.size_hint().exact(), bodiless, parts.headers.contains_key(CONTENT_LENGTH))
    {
        parts.headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
    }
    if !parts.headers.contains_key(DATE) {
        if let Ok(date) = HeaderValue::from_str(&httpdate::fmt_http_date(SystemTime::now())) {
            parts.headers.insert(DATE, date);
        }
    }
    stream.send_response(Response::from_parts(parts, ())).await.map_err(|err| err.to_string())?;
    while let Some(frame) = if bodiless { None } else { body.frame().await } {
        match frame {
            Ok(frame) => {
                if let Ok(data) = frame.into_data() {
                    if !data.is_empty() {
                        stream.send_data(data).await.map_err(|err| err.to_string())?;
                    }
                }
            }
            Err(err) => {
                stream.stop_stream(h3::error::Code::H3_INTERNAL_ERROR);
                return Err(format!("the response body failed: {err}"));
            }
        }
    }
    stream.finish().await.map_err(|err| err.to_string())
}
