//! The access log: one line per request, built in Rust when the response is done.
//!
//! The engine starts a [`Record`] when a request arrives, fills in the status and response headers
//! when the response is ready, and keeps it in the response body's wrapper
//! ([`crate::observe::ObservedBody`]), which counts the bytes sent. When hyper drops the body
//! (sent, or the connection ended), the line is rendered with the compiled [`AccessFormat`] and
//! handed to the [`LineSink`], which passes lines to Python's `granian.access` logger in batches.
//! With the access log off, none of this runs.

pub mod format;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use http::header::HeaderMap;
use http::{Method, Request, StatusCode, Uri, Version};

pub use format::AccessFormat;
use format::{Atom, Value};

/// Where finished lines go (the Python logger, in batches).
pub type LineSink = Arc<dyn Fn(String) + Send + Sync>;

/// Status logged for a request whose client left before it was answered (nginx's convention).
pub const CLIENT_CLOSED_REQUEST: u16 = 499;

/// A worker's access log: the compiled format and where lines go.
pub struct AccessLog {
    format: AccessFormat,
    sink: LineSink,
    /// Whether the format shows the time (reading the wall clock is skipped otherwise).
    wants_time: bool,
}

impl AccessLog {
    pub fn new(format: AccessFormat, sink: LineSink) -> Self {
        let wants_time = format.uses(&Atom::Time);
        Self { format, sink, wants_time }
    }

    /// Starts the record of a request that just arrived; `scheme` is `ws`/`wss` for a WebSocket.
    pub fn begin<B>(self: &Arc<Self>, request: &Request<B>, peer: Option<IpAddr>, scheme: &'static str) -> Record {
        let headers = request.headers();
        let facts =
            RequestFacts { method: request.method().clone(), uri: request.uri().clone(), version: request.version() };
        let request_headers = self.format.request_headers.iter().map(|name| header_text(headers, name)).collect();
        self.record(Some(facts), peer, scheme, request_headers)
    }

    /// Logs a response hyper sent on its own for a request it could not parse (400, 414, 431).
    pub fn parse_error(self: &Arc<Self>, status: StatusCode, peer: Option<IpAddr>, scheme: &'static str) {
        let mut record = self.record(None, peer, scheme, Vec::new());
        record.status = Some(status.as_u16());
        // A record is logged when dropped.
        drop(record);
    }

    /// A record started now; atoms without a value (absent headers) show `-`.
    fn record(
        self: &Arc<Self>,
        request: Option<RequestFacts>,
        peer: Option<IpAddr>,
        scheme: &'static str,
        request_headers: Vec<Option<String>>,
    ) -> Record {
        Record {
            log: self.clone(),
            start: Instant::now(),
            wall: self.wants_time.then(SystemTime::now),
            request,
            peer,
            scheme,
            request_headers,
            response_headers: Vec::new(),
            status: None,
            sent: 0,
        }
    }
}

struct RequestFacts {
    method: Method,
    uri: Uri,
    version: Version,
}

/// What the access log knows about one request so far; logged when dropped.
pub struct Record {
    log: Arc<AccessLog>,
    start: Instant,
    wall: Option<SystemTime>,
    /// None for a request hyper could not parse.
    request: Option<RequestFacts>,
    peer: Option<IpAddr>,
    scheme: &'static str,
    request_headers: Vec<Option<String>>,
    response_headers: Vec<Option<String>>,
    /// None until the response is known: a record dropped before that logs 499.
    status: Option<u16>,
    sent: u64,
}

impl Record {
    /// The response is known: its status and the response headers the format names.
    pub fn respond(&mut self, status: StatusCode, headers: &HeaderMap) {
        self.status = Some(status.as_u16());
        self.response_headers =
            self.log.format.response_headers.iter().map(|name| header_text(headers, name)).collect();
    }

    /// Counts body bytes handed to the connection.
    pub fn sent(&mut self, bytes: u64) {
        self.sent += bytes;
    }

    fn finish(&mut self) {
        let elapsed = self.start.elapsed();
        let status = self.status.unwrap_or(CLIENT_CLOSED_REQUEST);
        let time = self.wall.map(local_time).unwrap_or_default();
        let addr = self.peer.map(|ip| ip.to_string());
        let line = self.log.format.render(|atom| match atom {
            Atom::Addr => Value::Text(addr.as_deref().unwrap_or("-")),
            Atom::Time => Value::Text(&time),
            Atom::DtMs => Value::Real(elapsed.as_secs_f64() * 1000.0),
            Atom::Status => Value::Integer(status.into()),
            Atom::ResponseSize => Value::Integer(self.sent.try_into().unwrap_or(i64::MAX)),
            Atom::Scheme => Value::Text(self.scheme),
            Atom::Method => Value::Text(self.request.as_ref().map_or("-", |r| r.method.as_str())),
            Atom::Path => Value::Text(self.request.as_ref().map_or("-", |r| r.uri.path())),
            Atom::QueryString => Value::Text(self.request.as_ref().and_then(|r| r.uri.query()).unwrap_or("")),
            Atom::Protocol => Value::Text(self.request.as_ref().map_or("-", |r| protocol(r.version))),
            Atom::RequestHeader(index) => {
                Value::Text(self.request_headers.get(*index).and_then(Option::as_deref).unwrap_or("-"))
            }
            Atom::ResponseHeader(index) => {
                Value::Text(self.response_headers.get(*index).and_then(Option::as_deref).unwrap_or("-"))
            }
        });
        (self.log.sink)(line);
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        self.finish();
    }
}

fn protocol(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2",
        Version::HTTP_3 => "HTTP/3",
        _ => "HTTP/1.1",
    }
}

/// A header's values joined with ", ", escaped so a line stays one line (see [`escape_into`]).
fn header_text(headers: &HeaderMap, name: &http::header::HeaderName) -> Option<String> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    let mut text = String::new();
    escape_into(&mut text, first.as_bytes());
    for value in values {
        text.push_str(", ");
        escape_into(&mut text, value.as_bytes());
    }
    Some(text)
}

/// Copies header bytes as text: invalid UTF-8 becomes U+FFFD; `"` and `\` are backslash-escaped
/// and control characters become `\u00XX`, which keeps a line one line and a JSON string valid.
/// (Paths and query strings need none of this: hyper only accepts visible ASCII in the target.)
fn escape_into(out: &mut String, bytes: &[u8]) {
    for ch in String::from_utf8_lossy(bytes).chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
}

/// `time`: local time as `2026-11-30 08:09:10 +0100`, formatted once per second per thread.
fn local_time(wall: SystemTime) -> String {
    use std::cell::RefCell;
    thread_local! {
        static LAST: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    let second = wall.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        if last.0 != second {
            let local: chrono::DateTime<chrono::Local> = wall.into();
            *last = (second, local.format("%Y-%m-%d %H:%M:%S %z").to_string());
        }
        last.1.clone()
    })
}

/// The status hyper answered a request it could not parse with, if it answered (HTTP/1 only).
pub fn automatic_response_status(error: &(dyn std::error::Error + 'static)) -> Option<StatusCode> {
    let error = error.downcast_ref::<hyper::Error>()?;
    if !error.is_parse() || error.is_parse_version_h2() {
        return None;
    }
    let message = error.to_string();
    if error.is_parse_too_large() {
        Some(if message.starts_with("URI too long") {
            StatusCode::URI_TOO_LONG
        } else {
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        })
    } else if message.starts_with("internal error") || error.is_parse_status() {
        None
    } else {
        Some(StatusCode::BAD_REQUEST)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::ResponseBody;
    use crate::observe::ObservedBody;
    use bytes::Bytes;
    use http::Response;
    use std::sync::Mutex;

    fn capture(format: &str) -> (Arc<AccessLog>, Arc<Mutex<Vec<String>>>) {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink_lines = lines.clone();
        let sink: LineSink = Arc::new(move |line| sink_lines.lock().expect("lock").push(line));
        (Arc::new(AccessLog::new(AccessFormat::compile(format).expect("format"), sink)), lines)
    }

    #[test]
    fn a_record_dropped_before_its_response_logs_499() {
        let (log, lines) = capture("%(method)s %(path)s %(query_string)s %(status)d %(addr)s");
        let request = Request::get("/a/b?x=1").body(()).expect("request");
        drop(log.begin(&request, Some("10.0.0.1".parse().expect("ip")), "http"));
        assert_eq!(lines.lock().expect("lock").as_slice(), ["GET /a/b x=1 499 10.0.0.1"]);
    }

    #[test]
    fn headers_are_joined_and_escaped() {
        let (log, lines) = capture("%(header{x-a})s|%(header{missing})s|%(response_header{etag})s|%(scheme)s");
        let request =
            Request::get("/").header("x-a", "one \"quoted\"").header("x-a", "two\\\t").body(()).expect("request");
        let record = log.begin(&request, None, "wss");
        let mut headers = HeaderMap::new();
        headers.insert("etag", "\"v1\"".parse().expect("value"));
        let response = Response::builder().status(101).body(ResponseBody::Empty).expect("response");
        let (mut parts, body) = response.into_parts();
        parts.headers = headers;
        drop(ObservedBody::wrap(Response::from_parts(parts, body), Some(Box::new(record)), None, None));
        assert_eq!(lines.lock().expect("lock").as_slice(), [r#"one \"quoted\", two\\\u0009|-|\"v1\"|wss"#]);
    }

    #[tokio::test]
    async fn bytes_sent_are_counted() {
        let (log, lines) = capture("%(status)d %(response_size)d %(protocol)s");
        let request = Request::get("/").body(()).expect("request");
        let record = log.begin(&request, None, "http");
        let response = Response::new(ResponseBody::full(Bytes::from_static(b"hello")));
        let body = ObservedBody::wrap(response, Some(Box::new(record)), None, None).into_body();
        let collected = http_body_util::BodyExt::collect(body).await.expect("body").to_bytes();
        assert_eq!(&collected[..], b"hello");
        assert_eq!(lines.lock().expect("lock").as_slice(), ["200 5 HTTP/1.1"]);
    }
}
