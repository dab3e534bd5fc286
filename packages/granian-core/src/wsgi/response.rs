//! The WSGI response: `start_response`, the `write()` callable and the returned iterable.
//!
//! A list (or a single-chunk iterable) becomes one response with a known length; longer iterables
//! and `write()` stream. A `wsgi.file_wrapper` around a real file is sent by the core from the file
//! descriptor. Whatever happens, the iterable's `close()` is called by the runner.

use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use http::header::HeaderMap;
use http::{HeaderName, HeaderValue, StatusCode};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString, PyTuple};
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot};

use crate::blocking::{self, Deliveries};
use crate::errors::ClientDisconnected;
use crate::http::{error_response, file_response, response, stream_body, ResponseBody, ResponseIntent, StreamSender};
use crate::pyheaders;

/// How many chunks a streamed WSGI response may queue before the app's thread waits.
const STREAM_QUEUE: usize = 16;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Parses a PEP 3333 status line such as `"200 OK"`.
pub fn parse_status(status: &str) -> Option<StatusCode> {
    let bytes = status.as_bytes();
    if bytes.len() < 3 || !bytes[..3].iter().all(u8::is_ascii_digit) || (bytes.len() > 3 && bytes[3] != b' ') {
        return None;
    }
    StatusCode::from_bytes(&bytes[..3]).ok().filter(|s| s.as_u16() >= 100)
}

/// PEP 3333 header strings are latin-1: every character must fit in one byte.
fn latin1_bytes(text: &str) -> Option<Vec<u8>> {
    text.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect()
}

fn parse_headers(headers: &Bound<'_, PyAny>) -> PyResult<HeaderMap> {
    thread_local! {
        static CONVERTED: pyheaders::PairCache = const { pyheaders::PairCache::new() };
    }
    let not_pairs = || PyTypeError::new_err("WSGI response headers must be (str, str) tuples");
    pyheaders::from_str_pairs(headers, &CONVERTED, not_pairs, |name, value| {
        let header_name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| PyValueError::new_err(format!("invalid response header name {name:?}")))?;
        // ASCII (nearly every value) is its own latin-1: one copy, into the header value.
        let header_value = if value.is_ascii() {
            HeaderValue::from_str(value).ok()
        } else {
            latin1_bytes(value).and_then(|bytes| HeaderValue::from_bytes(&bytes).ok())
        };
        let header_value =
            header_value.ok_or_else(|| PyValueError::new_err(format!("invalid value for response header {name:?}")))?;
        Ok(Some((header_name, header_value)))
    })
}

fn chunk_bytes(item: &Bound<'_, PyAny>) -> PyResult<Bytes> {
    if item.is_instance_of::<PyString>() {
        return Err(PyTypeError::new_err("WSGI response chunks must be bytes, not str"));
    }
    crate::pybytes::to_bytes(item)
        .map_err(|_| PyTypeError::new_err(format!("WSGI response chunks must be bytes, not {}", item.get_type())))
}

struct State {
    responder: Option<oneshot::Sender<ResponseIntent>>,
    head: Option<(StatusCode, HeaderMap)>,
    stream: Option<StreamSender>,
}

/// One request's response, shared by `start_response`, `write()` and the runner.
pub struct Exchange {
    state: Mutex<State>,
    /// The runtime the request arrived on, where its response is delivered.
    runtime: Handle,
}

impl Exchange {
    pub fn new(responder: oneshot::Sender<ResponseIntent>, runtime: Handle) -> Arc<Self> {
        Arc::new(Self { state: Mutex::new(State { responder: Some(responder), head: None, stream: None }), runtime })
    }

    /// The Content-Length the app declared, if any.
    fn declared_length(&self) -> Option<u64> {
        let state = lock(&self.state);
        let (_, headers) = state.head.as_ref()?;
        headers.get(http::header::CONTENT_LENGTH)?.to_str().ok()?.trim().parse().ok()
    }

    fn headers_sent(&self) -> bool {
        lock(&self.state).responder.is_none()
    }

    /// Sends the head now as the start of a streamed body (or returns the stream already started).
    fn stream(&self) -> PyResult<StreamSender> {
        let mut state = lock(&self.state);
        if let Some(stream) = &state.stream {
            return Ok(stream.clone());
        }
        let (status, headers) = state
            .head
            .take()
            .ok_or_else(|| PyRuntimeError::new_err("the app sent body data before start_response()"))?;
        let responder =
            state.responder.take().ok_or_else(|| PyRuntimeError::new_err("the response was already sent"))?;
        let (stream, body) = stream_body(STREAM_QUEUE);
        // Sent at once, not batched: the body that follows would otherwise wait for it.
        let _ = responder.send(ResponseIntent::Ready(response(status, headers, body)));
        state.stream = Some(stream.clone());
        Ok(stream)
    }

    /// The whole response in one go (nothing was streamed).
    fn send_whole(
        &self,
        deliveries: &mut Deliveries,
        make: impl FnOnce(StatusCode, HeaderMap) -> ResponseIntent,
    ) -> PyResult<()> {
        let ((status, headers), responder) = {
            let mut state = lock(&self.state);
            let head = state
                .head
                .take()
                .ok_or_else(|| PyRuntimeError::new_err("the application returned without calling start_response()"))?;
            let responder =
                state.responder.take().ok_or_else(|| PyRuntimeError::new_err("the response was already sent"))?;
            (head, responder)
        };
        // `make` may take a while (a file is read): the exchange is not locked meanwhile.
        deliveries.push(&self.runtime, responder, make(status, headers));
        Ok(())
    }

    /// Ends the response: a 500 if nothing was sent; a started stream ends cleanly only if `ok`.
    pub fn finish(&self, deliveries: &mut Deliveries, ok: bool) {
        let mut state = lock(&self.state);
        if let Some(responder) = state.responder.take() {
            deliveries.push(
                &self.runtime,
                responder,
                ResponseIntent::Ready(error_response(StatusCode::INTERNAL_SERVER_ERROR)),
            );
        }
        if let Some(stream) = state.stream.take() {
            if ok {
                stream.complete();
            }
        }
    }
}

/// Queues a chunk on a streamed body, waiting (GIL released) while the client catches up.
fn send_chunk(py: Python<'_>, stream: &StreamSender, chunk: Bytes) -> PyResult<()> {
    if chunk.is_empty() {
        return Ok(());
    }
    match stream.try_send(chunk) {
        Ok(()) => Ok(()),
        Err(mpsc::error::TrySendError::Full(chunk)) => {
            // Other requests' responses this thread holds must not wait on this client.
            blocking::flush_before_waiting();
            py.detach(|| stream.blocking_send(chunk))
                .map_err(|_| ClientDisconnected::new_err("the client disconnected"))
        }
        Err(mpsc::error::TrySendError::Closed(_)) => Err(ClientDisconnected::new_err("the client disconnected")),
    }
}

/// The `start_response` callable handed to the app.
#[pyclass(frozen, freelist = 64, module = "granian._core", name = "WSGIStartResponse")]
pub struct StartResponse {
    exchange: Arc<Exchange>,
}

impl StartResponse {
    pub fn new(exchange: Arc<Exchange>) -> Self {
        Self { exchange }
    }
}

#[pymethods]
impl StartResponse {
    #[pyo3(signature = (status, headers, exc_info=None))]
    fn __call__(
        &self,
        py: Python<'_>,
        status: &str,
        headers: &Bound<'_, PyAny>,
        exc_info: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<WsgiWrite>> {
        let replacing = exc_info.is_some_and(|info| !info.is_none());
        if replacing && self.exchange.headers_sent() {
            // PEP 3333: too late to change the response; re-raise the app's error.
            let exc_info = exc_info.map(|i| i.cast::<PyTuple>()).transpose()?;
            if let Some(value) = exc_info.and_then(|info| info.get_item(1).ok()) {
                return Err(PyErr::from_value(value));
            }
        }
        let status_code = parse_status(status)
            .ok_or_else(|| PyValueError::new_err(format!("invalid WSGI status line {status:?}")))?;
        let headers = parse_headers(headers)?;
        {
            let mut state = lock(&self.exchange.state);
            if state.head.is_some() && !replacing {
                return Err(PyRuntimeError::new_err("start_response() called a second time without exc_info"));
            }
            state.head = Some((status_code, headers));
        }
        Py::new(py, WsgiWrite { exchange: self.exchange.clone() })
    }
}

/// The `write()` callable `start_response` returns (PEP 3333's imperative output).
#[pyclass(frozen, freelist = 64, module = "granian._core", name = "WSGIWrite")]
pub struct WsgiWrite {
    exchange: Arc<Exchange>,
}

#[pymethods]
impl WsgiWrite {
    fn __call__(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let chunk = chunk_bytes(data)?;
        let stream = self.exchange.stream()?;
        send_chunk(py, &stream, chunk)
    }
}

/// A `wsgi.file_wrapper` around a real file: the core sends it from a duplicate of its descriptor.
fn open_file(
    py: Python<'_>,
    result: &Bound<'_, PyAny>,
    file_wrapper: &Bound<'_, PyAny>,
) -> Option<(std::fs::File, u64)> {
    if !result.is_instance(file_wrapper).unwrap_or(false) {
        return None;
    }
    let filelike = result.getattr(intern!(py, "filelike")).ok()?;
    let fd: i32 = filelike.call_method0(intern!(py, "fileno")).ok()?.extract().ok()?;
    let position: u64 = filelike.call_method0(intern!(py, "tell")).ok()?.extract().ok()?;
    // SAFETY: `dup` only reads the descriptor table; the result is checked before use.
    #[allow(unsafe_code)]
    let owned = unsafe { libc::dup(fd) };
    if owned < 0 {
        return None;
    }
    // SAFETY: `owned` is a fresh descriptor nothing else refers to.
    #[allow(unsafe_code)]
    let file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(owned) });
    file.metadata().ok().filter(|m| m.is_file())?;
    Some((file, position))
}

/// Sends what the app returned. The caller calls `close()` on `result` afterwards.
pub fn send_result(
    py: Python<'_>,
    exchange: &Exchange,
    result: &Bound<'_, PyAny>,
    deliveries: &mut Deliveries,
    file_wrapper: &Bound<'_, PyAny>,
) -> PyResult<()> {
    let streaming = lock(&exchange.state).stream.is_some();
    if !streaming {
        let items = match (result.cast_exact::<PyList>(), result.cast_exact::<PyTuple>()) {
            (Ok(list), _) => Some(list.iter().map(|item| chunk_bytes(&item)).collect::<PyResult<Vec<_>>>()?),
            (_, Ok(tuple)) => Some(tuple.iter().map(|item| chunk_bytes(&item)).collect::<PyResult<Vec<_>>>()?),
            _ => None,
        };
        if let Some(chunks) = items {
            return exchange.send_whole(deliveries, |status, headers| whole(status, headers, chunks));
        }
        if let Some((file, start)) = open_file(py, result, file_wrapper) {
            // This thread may block: the file is measured (and, when small, read) here, without
            // the GIL, rather than on another thread of the runtime's blocking pool, a hand-over
            // that cost two context switches per request (benchmarks/PROFILING.md).
            return exchange.send_whole(deliveries, |status, headers| {
                let sent = py.detach(|| file_response(status, headers, file, Some((start, u64::MAX))));
                ResponseIntent::Ready(sent.unwrap_or_else(|_| error_response(StatusCode::INTERNAL_SERVER_ERROR)))
            });
        }
    }
    // PEP 3333 forbids delaying a yielded chunk, so chunks stream as they come; a first chunk
    // that carries the whole declared Content-Length is sent as a complete response instead.
    let mut sent_whole = false;
    for item in result.try_iter()? {
        let chunk = chunk_bytes(&item?)?;
        if chunk.is_empty() {
            continue;
        }
        if sent_whole {
            return Err(PyRuntimeError::new_err("the application sent more data than its Content-Length"));
        }
        let streaming = lock(&exchange.state).stream.is_some();
        if !streaming && exchange.declared_length() == Some(chunk.len() as u64) {
            exchange.send_whole(deliveries, |status, headers| whole(status, headers, vec![chunk]))?;
            sent_whole = true;
            continue;
        }
        send_chunk(py, &exchange.stream()?, chunk)?;
    }
    if sent_whole || lock(&exchange.state).stream.is_some() {
        return Ok(());
    }
    exchange.send_whole(deliveries, |status, headers| whole(status, headers, Vec::new()))
}

fn whole(status: StatusCode, headers: HeaderMap, chunks: Vec<Bytes>) -> ResponseIntent {
    let body = match chunks.len() {
        0 => Bytes::new(),
        1 => chunks.into_iter().next().unwrap_or_default(),
        _ => Bytes::from(chunks.concat()),
    };
    ResponseIntent::Ready(response(status, headers, ResponseBody::full(body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_follow_pep_3333() {
        assert_eq!(parse_status("200 OK"), Some(StatusCode::OK));
        assert_eq!(parse_status("404 Not Found"), Some(StatusCode::NOT_FOUND));
        assert_eq!(parse_status("204"), Some(StatusCode::NO_CONTENT));
        assert_eq!(parse_status("OK 200"), None);
        assert_eq!(parse_status("2000 X"), None);
        assert_eq!(parse_status("abc"), None);
        assert_eq!(parse_status("099 X"), None);
    }

    #[test]
    fn header_values_must_be_latin1() {
        assert_eq!(latin1_bytes("caf\u{e9}"), Some(vec![b'c', b'a', b'f', 0xe9]));
        assert_eq!(latin1_bytes("\u{20ac}"), None);
    }
}
