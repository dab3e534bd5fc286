//! The RSGI HTTP protocol object: request body reads, disconnect notification and responses.

use crate::apptask::AppOutcome;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use bytes::Bytes;
use http::header::HeaderMap;
use http::StatusCode;
use pyo3::exceptions::{PyStopAsyncIteration, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit};
use tokio_util::sync::CancellationToken;

use crate::body::{Chunk, RequestBody};
use crate::dispatch::RequestIo;
use crate::errors::{CoreError, RSGIProtocolClosed, RSGIProtocolError};
use crate::http::{error_response, response, status_from_u16, stream_body, ResponseBody, ResponseIntent, StreamSender};
use crate::pyheaders;
use crate::pyloop::PyLoop;

/// How many chunks a streamed response may queue before `send_*` makes the app wait.
pub const STREAM_QUEUE: usize = 16;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

enum ResponseState {
    Pending(oneshot::Sender<ResponseIntent>),
    Streaming,
    Sent,
}

type SharedStream = Arc<Mutex<Option<StreamSender>>>;

#[pyclass(frozen, freelist = 64, module = "granian._core", name = "RSGIHTTPProtocol")]
pub struct HttpProtocol {
    pyloop: Arc<PyLoop>,
    runtime: Handle,
    body: RequestBody,
    body_read_whole: Mutex<bool>,
    response: Mutex<ResponseState>,
    /// Made by `response_stream`: most responses are not streamed.
    stream: OnceLock<SharedStream>,
    permit: Mutex<Option<OwnedSemaphorePermit>>,
    disconnected: CancellationToken,
}

impl HttpProtocol {
    pub fn new(pyloop: Arc<PyLoop>, io: RequestIo) -> Self {
        let RequestIo { body, responder, disconnected, permit, runtime } = io;
        Self {
            pyloop,
            runtime,
            body: RequestBody::new(body),
            body_read_whole: Mutex::new(false),
            response: Mutex::new(ResponseState::Pending(responder)),
            stream: OnceLock::new(),
            permit: Mutex::new(Some(permit)),
            disconnected,
        }
    }

    /// Hands the response to hyper; a second response is ignored, as the specification allows.
    fn respond(&self, py: Python<'_>, intent: ResponseIntent) {
        self.respond_with(py, || intent);
    }

    /// As `respond`, with the response made only when the request has not been answered yet.
    fn respond_with(&self, py: Python<'_>, intent: impl FnOnce() -> ResponseIntent) {
        if let Some(sender) = self.take_responder() {
            self.pyloop.deliver(py, &self.runtime, sender, intent());
        }
    }

    /// The channel to answer on, unless the request was answered already.
    fn take_responder(&self) -> Option<oneshot::Sender<ResponseIntent>> {
        let mut state = lock(&self.response);
        match std::mem::replace(&mut *state, ResponseState::Sent) {
            ResponseState::Pending(sender) => Some(sender),
            previous => {
                *state = previous;
                None
            }
        }
    }

    fn respond_full(
        &self,
        py: Python<'_>,
        status: u16,
        headers: Option<&Bound<'_, PyAny>>,
        body: Bytes,
    ) -> PyResult<()> {
        let status = self::status(status)?;
        let response = response(status, headers_from_py(headers)?, ResponseBody::full(body));
        self.respond(py, ResponseIntent::Ready(response));
        Ok(())
    }

    /// The app is done: answer 500 if it never responded, end a streamed body (cleanly unless the
    /// app failed), free its backpressure slot.
    pub fn finish(&self, py: Python<'_>, app_failed: bool) {
        // Built only when needed: nearly every app has answered by now.
        self.respond_with(py, || ResponseIntent::Ready(error_response(StatusCode::INTERNAL_SERVER_ERROR)));
        if let Some(stream) = self.stream.get().and_then(|stream| lock(stream).take()) {
            if !app_failed {
                stream.complete();
            }
        }
        lock(&self.permit).take();
    }
}

/// RSGI raises `ProtocolClosed` when the client is gone, `ProtocolError` when the app misuses the API.
pub fn rsgi_error(err: CoreError) -> PyErr {
    match err {
        CoreError::Closed(reason) => RSGIProtocolClosed::new_err(reason),
        CoreError::Protocol(message) => RSGIProtocolError::new_err(message),
        other => other.into_pyerr(),
    }
}

fn settle_whole_body(py: Python<'_>, outcome: Result<Vec<Bytes>, CoreError>) -> PyResult<Py<PyAny>> {
    let chunks = outcome.map_err(rsgi_error)?;
    if chunks.len() == 1 {
        return Ok(PyBytes::new(py, &chunks[0]).into_any().unbind());
    }
    let total = chunks.iter().map(Bytes::len).sum();
    let bytes = PyBytes::new_with(py, total, |buffer| {
        let mut offset = 0;
        for chunk in &chunks {
            buffer[offset..offset + chunk.len()].copy_from_slice(chunk);
            offset += chunk.len();
        }
        Ok(())
    })?;
    Ok(bytes.into_any().unbind())
}

fn settle_chunk(py: Python<'_>, outcome: Result<Chunk, CoreError>) -> PyResult<Py<PyAny>> {
    match outcome.map_err(rsgi_error)?.data {
        Some(data) => Ok(PyBytes::new(py, &data).into_any().unbind()),
        None => Err(PyStopAsyncIteration::new_err(())),
    }
}

fn settle_none(py: Python<'_>, outcome: Result<(), CoreError>) -> PyResult<Py<PyAny>> {
    outcome.map_err(rsgi_error)?;
    Ok(py.None())
}

/// Reads app-supplied `[(name, value), ...]` headers.
pub fn headers_from_py(headers: Option<&Bound<'_, PyAny>>) -> PyResult<HeaderMap> {
    let Some(headers) = headers else {
        return Ok(HeaderMap::new());
    };
    thread_local! {
        static CONVERTED: pyheaders::PairCache = const { pyheaders::PairCache::new() };
    }
    let not_pairs = || PyTypeError::new_err("RSGI response headers must be (str, str) pairs");
    pyheaders::from_str_pairs(headers, &CONVERTED, not_pairs, pyheaders::valid_or_skipped)
}

fn status(code: u16) -> PyResult<StatusCode> {
    status_from_u16(code).ok_or_else(|| PyValueError::new_err(format!("{code} is not a valid HTTP status code")))
}

#[pymethods]
impl HttpProtocol {
    /// `await protocol()`: the whole request body as bytes.
    fn __call__(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        {
            let mut whole = lock(&self.body_read_whole);
            if *whole {
                return Err(RSGIProtocolError::new_err("the request body was already read"));
            }
            *whole = true;
        }
        self.body.read_all(py, &self.pyloop, &self.runtime, settle_whole_body)
    }

    fn __aiter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// The next chunk of the request body; the iteration ends with the body.
    fn __anext__(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.body.next_chunk(py, &self.pyloop, &self.runtime, settle_chunk)
    }

    /// Resolves once the client connection is gone.
    fn client_disconnect(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        if self.disconnected.is_cancelled() {
            return Ok(self.pyloop.done(py));
        }
        let token = self.disconnected.clone();
        let work = async move {
            token.cancelled().await;
            Ok(())
        };
        self.pyloop.spawn_awaitable(py, &self.runtime, work, settle_none)
    }

    #[pyo3(signature = (status=200, headers=None))]
    fn response_empty(&self, py: Python<'_>, status: u16, headers: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        self.respond_full(py, status, headers, Bytes::new())
    }

    #[pyo3(signature = (status=200, headers=None, body=None))]
    fn response_str(
        &self,
        py: Python<'_>,
        status: u16,
        headers: Option<&Bound<'_, PyAny>>,
        body: Option<&Bound<'_, PyString>>,
    ) -> PyResult<()> {
        let body = match body {
            Some(text) => Bytes::copy_from_slice(text.to_str()?.as_bytes()),
            None => Bytes::new(),
        };
        self.respond_full(py, status, headers, body)
    }

    #[pyo3(signature = (status=200, headers=None, body=None))]
    fn response_bytes(
        &self,
        py: Python<'_>,
        status: u16,
        headers: Option<&Bound<'_, PyAny>>,
        body: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let body = match body {
            Some(body) => crate::pybytes::to_bytes(body)?,
            None => Bytes::new(),
        };
        self.respond_full(py, status, headers, body)
    }

    /// Sends a file; the server answers 404 instead when it cannot be opened.
    fn response_file(
        &self,
        py: Python<'_>,
        status: u16,
        headers: Option<&Bound<'_, PyAny>>,
        file: std::path::PathBuf,
    ) -> PyResult<()> {
        let status = self::status(status)?;
        let headers = headers_from_py(headers)?;
        self.respond(py, ResponseIntent::File { status, headers, path: file, range: None });
        Ok(())
    }

    /// Sends the bytes `start..end` (end exclusive) of a file.
    fn response_file_range(
        &self,
        py: Python<'_>,
        status: u16,
        headers: Option<&Bound<'_, PyAny>>,
        file: std::path::PathBuf,
        start: u64,
        end: u64,
    ) -> PyResult<()> {
        if start >= end {
            return Err(PyValueError::new_err("Invalid range"));
        }
        let status = self::status(status)?;
        let headers = headers_from_py(headers)?;
        self.respond(py, ResponseIntent::File { status, headers, path: file, range: Some((start, end)) });
        Ok(())
    }

    /// Starts a streamed response and returns the transport to send its chunks with.
    #[pyo3(signature = (status=200, headers=None))]
    fn response_stream(
        &self,
        py: Python<'_>,
        status: u16,
        headers: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<StreamTransport>> {
        let status = self::status(status)?;
        let headers = headers_from_py(headers)?;
        let sender = {
            let mut state = lock(&self.response);
            match std::mem::replace(&mut *state, ResponseState::Streaming) {
                ResponseState::Pending(sender) => sender,
                previous => {
                    *state = previous;
                    return Err(RSGIProtocolError::new_err("a response was already started for this request"));
                }
            }
        };
        let (chunks, body) = stream_body(STREAM_QUEUE);
        let stream = self.stream.get_or_init(|| Arc::new(Mutex::new(None))).clone();
        *lock(&stream) = Some(chunks);
        self.pyloop.deliver(py, &self.runtime, sender, ResponseIntent::Ready(response(status, headers, body)));
        Py::new(py, StreamTransport { pyloop: self.pyloop.clone(), runtime: self.runtime.clone(), stream })
    }
}

impl HttpProtocol {
    /// When the app's coroutine ends: logs its exception, then finishes the request.
    pub(crate) fn app_ended(py: Python<'_>, owner: &Bound<'_, PyAny>, outcome: AppOutcome) {
        if let Ok(protocol) = owner.cast::<Self>() {
            let protocol = protocol.get();
            let failed = protocol.pyloop.app_failed(py, &outcome, |_| false);
            protocol.finish(py, failed);
        }
    }
}

/// Sends the chunks of a streamed response.
#[pyclass(frozen, module = "granian._core", name = "RSGIHTTPStreamTransport")]
pub struct StreamTransport {
    pyloop: Arc<PyLoop>,
    runtime: Handle,
    stream: SharedStream,
}

impl StreamTransport {
    fn send(&self, py: Python<'_>, chunk: Bytes) -> PyResult<Py<PyAny>> {
        let (sender, chunk) = match &*lock(&self.stream) {
            Some(sender) => match sender.try_send(chunk) {
                Ok(()) => return Ok(self.pyloop.done(py)),
                Err(mpsc::error::TrySendError::Full(chunk)) => (sender.clone(), chunk),
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    return Err(RSGIProtocolClosed::new_err("the client closed the connection"))
                }
            },
            None => return Err(RSGIProtocolClosed::new_err("the response stream is closed")),
        };
        let work = async move {
            sender.send(chunk).await.map_err(|_| CoreError::Closed("the client closed the connection".into()))
        };
        self.pyloop.spawn_awaitable(py, &self.runtime, work, settle_none)
    }
}

#[pymethods]
impl StreamTransport {
    fn send_bytes(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        self.send(py, crate::pybytes::to_bytes(data)?)
    }

    fn send_str(&self, py: Python<'_>, data: &Bound<'_, PyString>) -> PyResult<Py<PyAny>> {
        self.send(py, Bytes::copy_from_slice(data.to_str()?.as_bytes()))
    }
}
