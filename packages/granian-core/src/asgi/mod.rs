//! ASGI 3 (spec 2.4) over HTTP: the worker class Python starts, the scope and the protocol.
//! Lifespan is driven from Python (`granian.asgi`); it hands its state to [`AsgiWorker::serve`].

mod protocol;
mod scope;

use std::sync::Arc;

use http::header::{HeaderValue, CONTENT_TYPE, UPGRADE};
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use crate::dispatch::{PendingRequest, PyDispatcher, RequestHandler};
use crate::http::{response, ResponseBody};
use crate::pyconfig::worker_config;
use crate::pyloop::PyLoop;
use crate::pyworker::WorkerSlot;
use crate::workers::WorkerConfig;

struct AsgiHandler {
    app: Py<PyAny>,
    pyloop: Arc<PyLoop>,
    template: scope::ScopeTemplate,
}

fn is_websocket_upgrade(request: &Request<Incoming>) -> bool {
    request.headers().get_all(UPGRADE).iter().any(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"))
}

impl RequestHandler for AsgiHandler {
    fn screen(&self, request: &Request<Incoming>) -> Option<Response<ResponseBody>> {
        // WebSockets for ASGI are not served yet: refuse the upgrade with a plain HTTP answer
        // rather than handing the app a request it would misread as plain HTTP.
        if is_websocket_upgrade(request) {
            let mut headers = http::HeaderMap::new();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
            let body = bytes::Bytes::from_static(b"WebSocket connections are not supported by this server yet");
            return Some(response(StatusCode::NOT_IMPLEMENTED, headers, ResponseBody::full(body)));
        }
        None
    }

    fn start(&self, py: Python<'_>, request: PendingRequest) {
        let scope = scope::http_scope(py, &self.template, &request.parts, &request.connection);
        let Ok(protocol) = Py::new(py, protocol::HttpProtocol::new(self.pyloop.clone(), request.io)) else { return };
        self.pyloop.start_app(
            py,
            || {
                let receive = protocol.getattr(py, pyo3::intern!(py, "receive"))?;
                let send = protocol.getattr(py, pyo3::intern!(py, "send"))?;
                let coroutine = self.app.call1(py, (scope?, receive, send))?;
                Ok((coroutine, protocol.getattr(py, pyo3::intern!(py, "_task_done"))?))
            },
            || protocol.get().finish(py),
        );
    }
}

/// Serves an ASGI application from one worker process.
#[pyclass(frozen, module = "granian._core", name = "ASGIWorker")]
pub struct AsgiWorker {
    listener_fd: i32,
    config: WorkerConfig,
    root_path: String,
    slot: WorkerSlot,
}

#[pymethods]
impl AsgiWorker {
    /// `settings` is a `granian.server.config.WorkerSettings`.
    #[new]
    fn new(listener_fd: i32, settings: &Bound<'_, PyAny>) -> PyResult<Self> {
        let root_path: Option<String> = settings.getattr("url_path_prefix")?.extract()?;
        Ok(Self {
            listener_fd,
            config: worker_config(settings)?,
            root_path: root_path.unwrap_or_default(),
            slot: WorkerSlot::default(),
        })
    }

    /// Starts serving `app(scope, receive, send)`; request scopes get a copy of `state` when given.
    #[pyo3(signature = (app, event_loop, state=None))]
    fn serve(
        &self,
        py: Python<'_>,
        app: Py<PyAny>,
        event_loop: &Bound<'_, PyAny>,
        state: Option<Py<PyDict>>,
    ) -> PyResult<()> {
        let pyloop = PyLoop::attach(py, event_loop)?;
        let template = scope::ScopeTemplate { root_path: PyString::new(py, &self.root_path).unbind(), state };
        let handler = AsgiHandler { app, pyloop: pyloop.clone(), template };
        self.slot.start(&self.config, self.listener_fd, pyloop.clone(), PyDispatcher::new(handler, pyloop))
    }

    /// Stops accepting and drains; await the result to know the worker has stopped.
    fn shutdown(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.slot.shutdown(py)
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<AsgiWorker>()?;
    m.add_class::<protocol::HttpProtocol>()?;
    m.add("ClientDisconnected", m.py().get_type::<crate::errors::ClientDisconnected>())?;
    Ok(())
}
