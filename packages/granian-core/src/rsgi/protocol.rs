//! The RSGI HTTP protocol object: request body reads, disconnect notification and responses.
//!
//! Work that can finish at once finishes at once: a body that has already arrived is returned as a
//! ready awaitable (polled with a no-op waker first), a stream chunk that fits the channel is queued
//! without a round trip through the event loop. Only when something must wait does a tokio task
//! take over and resolve an asyncio future through the bridge.

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http::header::HeaderMap;
use http::StatusCode;
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use pyo3::exceptions::{PyStopAsyncIteration, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit};
use tokio_util::sync::CancellationToken;

use crate::errors::{CoreError, RSGIProtocolClosed, RSGIProtocolError};
use crate::http::{
    append_header, error_response, response, status_from_u16, ResponseBody, ResponseIntent,
};
use crate::pyloop::{PyLoop, ReadyAwaitable};

/// How many chunks a streamed response may queue before `send_*` makes the app wait.
const STREAM_QUEUE: usize = 16;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

enum BodyState {
    /// Not being read right now; `None` once the body ended.
    Idle(Option<Incoming>),
    /// A tokio task is reading it.
    Reading,
}

enum ResponseState {
    Pending(oneshot::Sender<ResponseIntent>),
    Streaming,
    Sent,
}

type StreamSender = Arc<Mutex<Option<mpsc::Sender<Bytes>>>>;

#[pyclass(frozen, module = "granian._core", name = "RSGIHTTPProtocol")]
pub struct HttpProtocol {
    pyloop: Arc<PyLoop>,
    runtime: Handle,
    body: Arc<Mutex<BodyState>>,
    body_read_whole: Mutex<bool>,
    response: Mutex<ResponseState>,
    stream: StreamSender,
    permit: Mutex<Option<OwnedSemaphorePermit>>,
    disconnected: CancellationToken,
}

impl HttpProtocol {
    pub fn new(
        pyloop: Arc<PyLoop>,
        runtime: Handle,
        body: Incoming,
        responder: oneshot::Sender<ResponseIntent>,
        disconnected: CancellationToken,
        permit: OwnedSemaphorePermit,
    ) -> Self {
        Self {
            pyloop,
            runtime,
            body: Arc::new(Mutex::new(BodyState::Idle(Some(body)))),
            body_read_whole: Mutex::new(false),
            response: Mutex::new(ResponseState::Pending(responder)),
            stream: Arc::new(Mutex::new(None)),
            permit: Mutex::new(Some(permit)),
            disconnected,
        }
    }

    /// Hands the response to hyper; a second response is ignored, as the specification allows.
    fn respond(&self, py: Python<'_>, intent: ResponseIntent) {
        let sender = {
            let mut state = lock(&self.response);
            if !matches!(&*state, ResponseState::Pending(_)) {
                return;
            }
            match std::mem::replace(&mut *state, ResponseState::Sent) {
                ResponseState::Pending(sender) => sender,
                _ => return,
            }
        };
        self.pyloop.deliver(py, sender, intent);
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

    /// The app is done: answer 500 if it never responded, end a streamed body, free its slot.
    pub fn finish(&self, py: Python<'_>) {
        self.respond(
            py,
            ResponseIntent::Ready(error_response(StatusCode::INTERNAL_SERVER_ERROR)),
        );
        lock(&self.stream).take();
        lock(&self.permit).take();
    }

    fn take_body(&self) -> PyResult<Option<Incoming>> {
        match std::mem::replace(&mut *lock(&self.body), BodyState::Reading) {
            BodyState::Idle(body) => Ok(body),
            BodyState::Reading => Err(RSGIProtocolError::new_err(
                "the request body is already being read",
            )),
        }
    }
}

fn poll_now(body: &mut Incoming) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
    let mut cx = Context::from_waker(Waker::noop());
    Pin::new(body).poll_frame(&mut cx)
}

/// Collects whatever of the body is already buffered; `Ok(true)` when the body ended.
fn collect_ready(body: &mut Incoming, chunks: &mut Vec<Bytes>) -> Result<bool, CoreError> {
    loop {
        if body.is_end_stream() {
            return Ok(true);
        }
        match poll_now(body) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    chunks.push(data);
                }
            }
            Poll::Ready(Some(Err(err))) => return Err(CoreError::Closed(err.to_string())),
            Poll::Ready(None) => return Ok(true),
            Poll::Pending => return Ok(false),
        }
    }
}

fn chunks_to_pybytes(py: Python<'_>, chunks: Vec<Bytes>) -> PyResult<Py<PyAny>> {
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

fn chunk_or_stop(py: Python<'_>, chunk: Option<Bytes>) -> PyResult<Py<PyAny>> {
    match chunk {
        Some(data) => Ok(PyBytes::new(py, &data).into_any().unbind()),
        None => Err(PyStopAsyncIteration::new_err(())),
    }
}

fn none(py: Python<'_>, _: ()) -> PyResult<Py<PyAny>> {
    Ok(py.None())
}

/// Reads app-supplied `[(name, value), ...]` headers.
pub fn headers_from_py(headers: Option<&Bound<'_, PyAny>>) -> PyResult<HeaderMap> {
    let mut map = HeaderMap::new();
    if let Some(headers) = headers {
        for item in headers.try_iter()? {
            let (name, value): (Bound<'_, PyString>, Bound<'_, PyString>) = item?.extract()?;
            append_header(&mut map, name.to_str()?, value.to_str()?);
        }
    }
    Ok(map)
}

fn status(code: u16) -> PyResult<StatusCode> {
    status_from_u16(code)
        .ok_or_else(|| PyValueError::new_err(format!("{code} is not a valid HTTP status code")))
}

fn body_bytes(body: &Bound<'_, PyAny>) -> PyResult<Bytes> {
    if let Ok(bytes) = body.cast::<PyBytes>() {
        return Ok(Bytes::copy_from_slice(bytes.as_bytes()));
    }
    Ok(Bytes::from(body.extract::<Vec<u8>>()?))
}

#[pymethods]
impl HttpProtocol {
    /// `await protocol()`: the whole request body as bytes.
    fn __call__(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        {
            let mut whole = lock(&self.body_read_whole);
            if *whole {
                return Err(RSGIProtocolError::new_err(
                    "the request body was already read",
                ));
            }
            *whole = true;
        }
        let Some(mut body) = self.take_body()? else {
            *lock(&self.body) = BodyState::Idle(None);
            return ReadyAwaitable::ok(py, PyBytes::new(py, b"").into_any().unbind());
        };
        let hint = body.size_hint().lower() as usize;
        let mut chunks = Vec::with_capacity(if hint > 0 { 1 } else { 4 });
        match collect_ready(&mut body, &mut chunks) {
            Ok(true) => {
                *lock(&self.body) = BodyState::Idle(None);
                ReadyAwaitable::ok(py, chunks_to_pybytes(py, chunks)?)
            }
            Err(err) => {
                *lock(&self.body) = BodyState::Idle(None);
                ReadyAwaitable::err(py, err.into_pyerr())
            }
            Ok(false) => {
                let state = self.body.clone();
                let work = async move {
                    let result = async {
                        while let Some(frame) = body.frame().await {
                            if let Ok(data) = frame
                                .map_err(|e| CoreError::Closed(e.to_string()))?
                                .into_data()
                            {
                                chunks.push(data);
                            }
                        }
                        Ok(chunks)
                    }
                    .await;
                    *lock(&state) = BodyState::Idle(None);
                    result
                };
                self.pyloop
                    .spawn_awaitable(py, &self.runtime, work, chunks_to_pybytes)
            }
        }
    }

    fn __aiter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// The next chunk of the request body; the iteration ends with the body.
    fn __anext__(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let Some(mut body) = self.take_body()? else {
            *lock(&self.body) = BodyState::Idle(None);
            return ReadyAwaitable::err(py, PyStopAsyncIteration::new_err(()));
        };
        loop {
            if body.is_end_stream() {
                *lock(&self.body) = BodyState::Idle(None);
                return ReadyAwaitable::err(py, PyStopAsyncIteration::new_err(()));
            }
            match poll_now(&mut body) {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        *lock(&self.body) = BodyState::Idle(Some(body));
                        return ReadyAwaitable::ok(py, PyBytes::new(py, &data).into_any().unbind());
                    }
                }
                Poll::Ready(Some(Err(err))) => {
                    *lock(&self.body) = BodyState::Idle(None);
                    return ReadyAwaitable::err(
                        py,
                        CoreError::Closed(err.to_string()).into_pyerr(),
                    );
                }
                Poll::Ready(None) => {
                    *lock(&self.body) = BodyState::Idle(None);
                    return ReadyAwaitable::err(py, PyStopAsyncIteration::new_err(()));
                }
                Poll::Pending => break,
            }
        }
        let state = self.body.clone();
        let work = async move {
            let next = loop {
                match body.frame().await {
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            break Ok(Some(data));
                        }
                    }
                    Some(Err(err)) => break Err(CoreError::Closed(err.to_string())),
                    None => break Ok(None),
                }
            };
            let keep = matches!(next, Ok(Some(_)));
            *lock(&state) = BodyState::Idle(if keep { Some(body) } else { None });
            next
        };
        self.pyloop
            .spawn_awaitable(py, &self.runtime, work, chunk_or_stop)
    }

    /// Resolves once the client connection is gone.
    fn client_disconnect(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        if self.disconnected.is_cancelled() {
            return ReadyAwaitable::ok(py, py.None());
        }
        let token = self.disconnected.clone();
        self.pyloop.spawn_awaitable(
            py,
            &self.runtime,
            async move {
                token.cancelled().await;
                Ok(())
            },
            none,
        )
    }

    #[pyo3(signature = (status=200, headers=None))]
    fn response_empty(
        &self,
        py: Python<'_>,
        status: u16,
        headers: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let status = self::status(status)?;
        self.respond(
            py,
            ResponseIntent::Ready(response(
                status,
                headers_from_py(headers)?,
                ResponseBody::Empty,
            )),
        );
        Ok(())
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
            Some(body) => body_bytes(body)?,
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
        self.respond(
            py,
            ResponseIntent::File {
                status,
                headers,
                path: file,
                range: None,
            },
        );
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
        self.respond(
            py,
            ResponseIntent::File {
                status,
                headers,
                path: file,
                range: Some((start, end)),
            },
        );
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
                    return Err(RSGIProtocolError::new_err(
                        "a response was already started for this request",
                    ));
                }
            }
        };
        let (chunks, receiver) = mpsc::channel(STREAM_QUEUE);
        *lock(&self.stream) = Some(chunks);
        self.pyloop.deliver(
            py,
            sender,
            ResponseIntent::Ready(response(status, headers, ResponseBody::Channel(receiver))),
        );
        Py::new(
            py,
            StreamTransport {
                pyloop: self.pyloop.clone(),
                runtime: self.runtime.clone(),
                stream: self.stream.clone(),
            },
        )
    }

    /// Called when the app's task ends: logs its exception, then finishes the request.
    fn _task_done(&self, py: Python<'_>, task: &Bound<'_, PyAny>) {
        let cancelled = task
            .call_method0(pyo3::intern!(py, "cancelled"))
            .and_then(|c| c.is_truthy())
            .unwrap_or(true);
        if !cancelled {
            if let Ok(exc) = task.call_method0(pyo3::intern!(py, "exception")) {
                if !exc.is_none() {
                    self.pyloop.log_error(
                        py,
                        "Application callable raised an exception",
                        Some(&exc),
                    );
                }
            }
        }
        self.finish(py);
    }
}

/// Sends the chunks of a streamed response.
#[pyclass(frozen, module = "granian._core", name = "RSGIHTTPStreamTransport")]
pub struct StreamTransport {
    pyloop: Arc<PyLoop>,
    runtime: Handle,
    stream: StreamSender,
}

impl StreamTransport {
    fn send(&self, py: Python<'_>, chunk: Bytes) -> PyResult<Py<PyAny>> {
        let sender = match &*lock(&self.stream) {
            Some(sender) => match sender.try_send(chunk) {
                Ok(()) => return ReadyAwaitable::ok(py, py.None()),
                Err(mpsc::error::TrySendError::Full(chunk)) => (sender.clone(), chunk),
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    return Err(RSGIProtocolClosed::new_err(
                        "the client closed the connection",
                    ))
                }
            },
            None => return Err(RSGIProtocolClosed::new_err("the response stream is closed")),
        };
        let (sender, chunk) = sender;
        let work = async move {
            sender
                .send(chunk)
                .await
                .map_err(|_| CoreError::Closed("the client closed the connection".into()))
        };
        self.pyloop.spawn_awaitable(py, &self.runtime, work, none)
    }
}

#[pymethods]
impl StreamTransport {
    fn send_bytes(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        self.send(py, body_bytes(data)?)
    }

    fn send_str(&self, py: Python<'_>, data: &Bound<'_, PyString>) -> PyResult<Py<PyAny>> {
        self.send(py, Bytes::copy_from_slice(data.to_str()?.as_bytes()))
    }
}
