//! The ASGI HTTP protocol: `receive()` and `send()` for one request (ASGI spec 2.4).
//!
//! The response head is held back until the first body message, so an app that fails before its
//! body still gets a clean 500. A body sent with `more_body=True` turns into a streamed response
//! with backpressure: `send()` waits when the stream's queue is full.

use crate::apptask::AppOutcome;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use http::header::HeaderMap;
use http::{HeaderName, HeaderValue, StatusCode};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit};
use tokio_util::sync::CancellationToken;

use crate::body::{Chunk, RequestBody};
use crate::dispatch::RequestIo;
use crate::errors::{ClientDisconnected, CoreError};
use crate::http::{error_response, response, status_from_u16, stream_body, ResponseBody, ResponseIntent, StreamSender};
use crate::pyheaders;
use crate::pyloop::{resolve_future, PyLoop};

/// How many body chunks a streamed response may queue before `send()` makes the app wait.
const STREAM_QUEUE: usize = 16;

const START: &str = "http.response.start";
const BODY: &str = "http.response.body";
const PATHSEND: &str = "http.response.pathsend";

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

enum SendState {
    /// Waiting for `http.response.start`.
    AwaitingStart(oneshot::Sender<ResponseIntent>),
    /// Start received; the head goes out with the first body message.
    Started { responder: oneshot::Sender<ResponseIntent>, status: StatusCode, headers: HeaderMap },
    /// Body chunks are flowing.
    Streaming(StreamSender),
    /// The response is complete (or was abandoned).
    Finished,
}

#[pyclass(frozen, freelist = 64, module = "granian._core", name = "ASGIHTTPProtocol")]
pub struct HttpProtocol {
    pyloop: Arc<PyLoop>,
    runtime: Handle,
    body: RequestBody,
    send_state: Mutex<SendState>,
    permit: Mutex<Option<OwnedSemaphorePermit>>,
    disconnected: CancellationToken,
    /// Cancelled once the response is complete: `receive()` then reports a disconnect.
    response_complete: CancellationToken,
    /// Futures of `receive()` calls waiting for the disconnect, and whether a watcher runs.
    disconnect_waiters: Arc<Mutex<Vec<Py<PyAny>>>>,
    watching_disconnect: Mutex<bool>,
}

fn disconnected_error() -> PyErr {
    ClientDisconnected::new_err("the client disconnected")
}

/// ASGI raises an OSError subclass when the client is gone and RuntimeError on misuse.
pub fn asgi_error(err: CoreError) -> PyErr {
    match err {
        CoreError::Closed(_) => disconnected_error(),
        CoreError::TooLarge(_) => ClientDisconnected::new_err(err.to_string()),
        CoreError::Protocol(message) => PyRuntimeError::new_err(message),
        other => other.into_pyerr(),
    }
}

fn settle_request_chunk(py: Python<'_>, outcome: Result<Chunk, CoreError>) -> PyResult<Py<PyAny>> {
    let chunk = outcome.map_err(asgi_error)?;
    let message = PyDict::new(py);
    message.set_item(intern!(py, "type"), intern!(py, "http.request"))?;
    match &chunk.data {
        Some(data) => message.set_item(intern!(py, "body"), PyBytes::new(py, data))?,
        None => message.set_item(intern!(py, "body"), PyBytes::new(py, b""))?,
    }
    message.set_item(intern!(py, "more_body"), chunk.more)?;
    Ok(message.into_any().unbind())
}

fn disconnect_message(py: Python<'_>) -> PyResult<Py<PyAny>> {
    let message = PyDict::new(py);
    message.set_item(intern!(py, "type"), intern!(py, "http.disconnect"))?;
    Ok(message.into_any().unbind())
}

fn settle_sent(py: Python<'_>, outcome: Result<(), CoreError>) -> PyResult<Py<PyAny>> {
    outcome.map_err(asgi_error)?;
    Ok(py.None())
}

fn unexpected(kind: &str, expected: &str) -> PyErr {
    PyRuntimeError::new_err(format!("Unexpected ASGI message '{kind}': expected {expected}"))
}

pub fn bytes_of(value: &Bound<'_, PyAny>, what: &str) -> PyResult<Bytes> {
    crate::pybytes::to_bytes(value)
        .map_err(|_| PyValueError::new_err(format!("ASGI {what} must be bytes, not {}", value.get_type())))
}

/// Reads `[(name, value), ...]` byte-string pairs; invalid names or values are dropped.
pub fn headers_from_message(message: &Bound<'_, PyDict>) -> PyResult<HeaderMap> {
    let mut map = HeaderMap::new();
    let Some(headers) = message.get_item(intern!(message.py(), "headers"))? else {
        return Ok(map);
    };
    // The usual shape, a list or tuple of 2-tuples, is read by index: no iterator objects, no
    // generic item lookups (about 700 of an ASGI GET's instructions for two headers).
    if let Ok(list) = headers.cast::<PyList>() {
        for item in list.iter() {
            add_header(&mut map, &item)?;
        }
    } else if let Ok(tuple) = headers.cast::<PyTuple>() {
        for item in tuple.iter() {
            add_header(&mut map, &item)?;
        }
    } else {
        for item in headers.try_iter()? {
            add_header(&mut map, &item?)?;
        }
    }
    Ok(map)
}

/// Adds one `(name, value)` pair (any sequence whose first two items are bytes-like).
fn add_header(map: &mut HeaderMap, item: &Bound<'_, PyAny>) -> PyResult<()> {
    thread_local! {
        static CONVERTED: pyheaders::PairCache = const { pyheaders::PairCache::new() };
    }
    let (name_object, value_object) = match item.cast::<PyTuple>() {
        Ok(pair) if pair.len() == 2 => (pair.get_item(0)?, pair.get_item(1)?),
        _ => (item.get_item(0)?, item.get_item(1)?),
    };
    let make = || {
        // A `bytes` name is read in place: a standard name then costs no allocation.
        let name = match name_object.cast::<PyBytes>() {
            Ok(name) => HeaderName::from_bytes(name.as_bytes()),
            Err(_) => HeaderName::from_bytes(&bytes_of(&name_object, "header names")?),
        };
        let value = bytes_of(&value_object, "header values")?;
        Ok(name.ok().zip(HeaderValue::from_maybe_shared(value).ok()))
    };
    if let Some((name, value)) = CONVERTED.with(|cache| cache.convert(&name_object, &value_object, make))? {
        map.append(name, value);
    }
    Ok(())
}

impl HttpProtocol {
    pub fn new(pyloop: Arc<PyLoop>, io: RequestIo) -> Self {
        let RequestIo { body, responder, disconnected, permit, runtime } = io;
        Self {
            pyloop,
            runtime,
            body: RequestBody::new(body),
            send_state: Mutex::new(SendState::AwaitingStart(responder)),
            permit: Mutex::new(Some(permit)),
            disconnected,
            response_complete: CancellationToken::new(),
            disconnect_waiters: Arc::new(Mutex::new(Vec::new())),
            watching_disconnect: Mutex::new(false),
        }
    }

    fn complete_response(&self) {
        self.response_complete.cancel();
    }

    /// The app is done: 500 if it never responded, abort an unfinished stream, free its slot.
    pub fn finish(&self, py: Python<'_>) {
        let state = std::mem::replace(&mut *lock(&self.send_state), SendState::Finished);
        match state {
            SendState::AwaitingStart(responder) | SendState::Started { responder, .. } => {
                self.pyloop.deliver(
                    py,
                    &self.runtime,
                    responder,
                    ResponseIntent::Ready(error_response(StatusCode::INTERNAL_SERVER_ERROR)),
                );
            }
            // Dropped without `complete()`: hyper aborts the connection.
            SendState::Streaming(_) | SendState::Finished => {}
        }
        self.complete_response();
        lock(&self.permit).take();
    }

    fn send_body(&self, py: Python<'_>, message: &Bound<'_, PyDict>) -> PyResult<Py<PyAny>> {
        let body = match message.get_item(intern!(py, "body"))? {
            Some(body) => bytes_of(&body, "response bodies")?,
            None => Bytes::new(),
        };
        let more = match message.get_item(intern!(py, "more_body"))? {
            Some(flag) => flag.is_truthy()?,
            None => false,
        };
        let mut state = lock(&self.send_state);
        match std::mem::replace(&mut *state, SendState::Finished) {
            SendState::Started { responder, status, headers } => {
                if !more {
                    drop(state);
                    let response = response(status, headers, ResponseBody::full(body));
                    self.pyloop.deliver(py, &self.runtime, responder, ResponseIntent::Ready(response));
                    self.complete_response();
                    return Ok(self.pyloop.done(py));
                }
                let (stream, body_stream) = stream_body(STREAM_QUEUE);
                self.pyloop.deliver(
                    py,
                    &self.runtime,
                    responder,
                    ResponseIntent::Ready(response(status, headers, body_stream)),
                );
                *state = SendState::Streaming(stream.clone());
                drop(state);
                self.push_chunk(py, &stream, body)
            }
            SendState::Streaming(stream) => {
                if more {
                    *state = SendState::Streaming(stream.clone());
                } else {
                    stream.complete();
                }
                drop(state);
                let sent = self.push_chunk(py, &stream, body);
                if !more {
                    self.complete_response();
                }
                sent
            }
            previous @ SendState::AwaitingStart(_) => {
                *state = previous;
                Err(unexpected(BODY, "'http.response.start' first"))
            }
            SendState::Finished => Err(unexpected(BODY, "nothing: the response is already complete")),
        }
    }

    fn push_chunk(&self, py: Python<'_>, stream: &StreamSender, chunk: Bytes) -> PyResult<Py<PyAny>> {
        if chunk.is_empty() {
            return Ok(self.pyloop.done(py));
        }
        match stream.try_send(chunk) {
            Ok(()) => Ok(self.pyloop.done(py)),
            Err(mpsc::error::TrySendError::Full(chunk)) => {
                let stream = stream.clone();
                let work = async move {
                    stream.send(chunk).await.map_err(|_| CoreError::Closed("the client closed the connection".into()))
                };
                self.pyloop.spawn_awaitable(py, &self.runtime, work, settle_sent)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(disconnected_error()),
        }
    }
}

#[pymethods]
impl HttpProtocol {
    /// `await receive()`: the next `http.request` chunk, then `http.disconnect` once the client is
    /// gone or the response is complete.
    fn receive(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        if !self.body.is_finished() {
            return self.body.next_chunk(py, &self.pyloop, &self.runtime, settle_request_chunk);
        }
        if self.disconnected.is_cancelled() || self.response_complete.is_cancelled() {
            return self.pyloop.ready(py, disconnect_message(py));
        }
        // One watcher per request settles every waiting receive(): apps that poll for a
        // disconnect (and cancel the wait) would otherwise leave a task behind per poll.
        let future = self.pyloop.create_future(py)?;
        let start_watcher = {
            let mut waiters = lock(&self.disconnect_waiters);
            if waiters.len() >= 8 {
                waiters.retain(|waiter| {
                    !waiter.call_method0(py, intern!(py, "done")).and_then(|d| d.is_truthy(py)).unwrap_or(true)
                });
            }
            waiters.push(future.clone_ref(py));
            !std::mem::replace(&mut *lock(&self.watching_disconnect), true)
        };
        if start_watcher {
            let gone = self.disconnected.clone();
            let complete = self.response_complete.clone();
            let waiters = self.disconnect_waiters.clone();
            let bridge = self.pyloop.bridge.clone();
            self.runtime.spawn(async move {
                tokio::select! {
                    _ = gone.cancelled() => {}
                    _ = complete.cancelled() => {}
                }
                bridge.push(Box::new(move |py| {
                    for waiter in std::mem::take(&mut *lock(&waiters)) {
                        resolve_future(py, waiter.bind(py), disconnect_message(py));
                    }
                }));
            });
        }
        Ok(future)
    }

    /// `await send(message)`.
    fn send(&self, py: Python<'_>, message: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let message = message.cast::<PyDict>().map_err(|_| PyValueError::new_err("ASGI messages must be dicts"))?;
        if self.disconnected.is_cancelled() {
            return Err(disconnected_error());
        }
        let kind_obj = message
            .get_item(intern!(py, "type"))?
            .ok_or_else(|| PyValueError::new_err("ASGI message without a 'type' key"))?;
        let kind_str = kind_obj.cast::<PyString>()?.to_str()?.to_owned();
        match kind_str.as_str() {
            START => {
                let mut state = lock(&self.send_state);
                match std::mem::replace(&mut *state, SendState::Finished) {
                    SendState::AwaitingStart(responder) => {
                        let code: u16 = message
                            .get_item(intern!(py, "status"))?
                            .ok_or_else(|| PyValueError::new_err("'http.response.start' needs a 'status'"))?
                            .extract()?;
                        let status = status_from_u16(code)
                            .ok_or_else(|| PyValueError::new_err(format!("{code} is not a valid HTTP status code")));
                        let headers = headers_from_message(message);
                        match (status, headers) {
                            (Ok(status), Ok(headers)) => {
                                *state = SendState::Started { responder, status, headers };
                                Ok(self.pyloop.done(py))
                            }
                            (Err(err), _) | (_, Err(err)) => {
                                *state = SendState::AwaitingStart(responder);
                                Err(err)
                            }
                        }
                    }
                    previous => {
                        *state = previous;
                        Err(unexpected(START, "the response was already started"))
                    }
                }
            }
            BODY => self.send_body(py, message),
            PATHSEND => {
                let path: std::path::PathBuf = message
                    .get_item(intern!(py, "path"))?
                    .ok_or_else(|| PyValueError::new_err("'http.response.pathsend' needs a 'path'"))?
                    .extract()?;
                let mut state = lock(&self.send_state);
                match std::mem::replace(&mut *state, SendState::Finished) {
                    SendState::Started { responder, status, headers } => {
                        drop(state);
                        self.pyloop.deliver(
                            py,
                            &self.runtime,
                            responder,
                            ResponseIntent::File { status, headers, path, range: None },
                        );
                        self.complete_response();
                        Ok(self.pyloop.done(py))
                    }
                    previous => {
                        let expected = match &previous {
                            SendState::AwaitingStart(_) => "'http.response.start' first",
                            _ => "nothing: the response body was already sent",
                        };
                        *state = previous;
                        Err(unexpected(PATHSEND, expected))
                    }
                }
            }
            other => Err(PyRuntimeError::new_err(format!(
                "Unexpected ASGI message '{other}': an HTTP app sends '{START}', '{BODY}' or '{PATHSEND}'"
            ))),
        }
    }
}

impl HttpProtocol {
    /// When the app's coroutine ends: logs its exception (not a client disconnect), then finishes.
    pub(crate) fn app_ended(py: Python<'_>, owner: &Bound<'_, PyAny>, outcome: AppOutcome) {
        let Ok(protocol) = owner.cast::<Self>() else { return };
        let protocol = protocol.get();
        protocol.pyloop.app_failed(py, &outcome, |exc| exc.is_instance_of::<ClientDisconnected>());
        if matches!(&*lock(&protocol.send_state), SendState::Started { .. }) && !protocol.disconnected.is_cancelled() {
            protocol.pyloop.log_error(py, "ASGI application returned without completing its response", None);
        }
        protocol.finish(py);
    }
}
