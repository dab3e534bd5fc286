//! The end of each exchange, as the access log and the metrics see it: every response body the
//! engine sends is wrapped in an [`ObservedBody`], which counts the body bytes hyper takes and, when
//! hyper drops it (the response ended, or the connection did), lets the request's access log record
//! and metrics timer finish, and request validation count the request as answered
//! (`validation::OpenExchange`). Counting bytes costs a branch per frame when the access log is off.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::Response;
use http_body::{Body, Frame, SizeHint};

use crate::accesslog::Record;
use crate::http::ResponseBody;
use crate::metrics::InFlight;
use crate::validation::OpenExchange;

pub struct ObservedBody {
    body: ResponseBody,
    record: Option<Box<Record>>,
    /// Dropped with the body: the request leaves the in-flight gauge and enters the histogram.
    _timing: Option<InFlight>,
    /// Dropped with the body: the request counts as answered for request validation.
    _exchange: Option<OpenExchange>,
}

impl ObservedBody {
    /// Wraps `response`; `record` and `timing` (if any) learn its status now.
    pub fn wrap(
        response: Response<ResponseBody>,
        record: Option<Box<Record>>,
        timing: Option<InFlight>,
        exchange: Option<OpenExchange>,
    ) -> Response<ObservedBody> {
        let record = record.map(|mut record| {
            record.respond(response.status(), response.headers());
            record
        });
        let timing = timing.map(|mut timing| {
            timing.respond(response.status().as_u16());
            timing
        });
        response.map(|body| ObservedBody { body, record, _timing: timing, _exchange: exchange })
    }
}

impl Body for ObservedBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        if let (Some(record), Poll::Ready(Some(Ok(frame)))) = (&mut this.record, &polled) {
            if let Some(data) = frame.data_ref() {
                record.sent(data.len() as u64);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
