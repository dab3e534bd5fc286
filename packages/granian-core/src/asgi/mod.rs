//! ASGI 3 (spec 2.4) over HTTP: the worker class Python starts, the scope and the protocol.
//! Lifespan is driven from Python (`granian.asgi`); it hands its state to [`AsgiWorker::serve`].

mod protocol;
mod scope;
mod websocket;

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use crate::apptask::AppEnded;
use crate::dispatch::{PendingRequest, PendingWebsocket, PyDispatcher, RequestHandler};
use crate::pyconfig::worker_config;
use crate::pyloop::PyLoop;
use crate::pywebsocket::WsHandshake;
use crate::pyworker::WorkerSlot;
use crate::workers::WorkerConfig;

struct AsgiHandler {
    app: Py<PyAny>,
    pyloop: Arc<PyLoop>,
    template: scope::ScopeTemplate,
}

impl RequestHandler for AsgiHandler {
    fn start_websocket(&self, py: Python<'_>, request: PendingWebsocket) {
        let handshake = WsHandshake::new(request.io, self.pyloop.clone());
        let scope = scope::websocket_scope(
            py,
            &self.template,
            &request.parts,
            &request.connection,
            &handshake.opening.subprotocols,
        );
        let Ok(protocol) = Py::new(py, websocket::WebsocketProtocol::new(handshake)) else { return };
        self.run(py, scope, protocol.clone_ref(py).into_any(), websocket::WebsocketProtocol::app_ended, || {
            protocol.get().finish(py, true)
        });
    }

    fn start(&self, py: Python<'_>, request: PendingRequest) {
        let scope = scope::http_scope(py, &self.template, &request.parts, &request.connection);
        let Ok(protocol) = Py::new(py, protocol::HttpProtocol::new(self.pyloop.clone(), request.io)) else { return };
        self.run(py, scope, protocol.clone_ref(py).into_any(), protocol::HttpProtocol::app_ended, || {
            protocol.get().finish(py)
        });
    }
}

impl AsgiHandler {
    /// Calls `app(scope, receive, send)` as a task; `ended` hears how it ended, `failed` answers
    /// when the app cannot start.
    fn run(
        &self,
        py: Python<'_>,
        scope: PyResult<Bound<'_, PyDict>>,
        protocol: Py<PyAny>,
        ended: AppEnded,
        failed: impl FnOnce(),
    ) {
        self.pyloop.start_app(
            py,
            || {
                let receive = protocol.getattr(py, pyo3::intern!(py, "receive"))?;
                let send = protocol.getattr(py, pyo3::intern!(py, "send"))?;
                let coroutine = self.app.call1(py, (scope?, receive, send))?;
                Ok((coroutine, protocol))
            },
            ended,
            failed,
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
        self.slot.start(&self.config, self.listener_fd, pyloop.clone(), PyDispatcher::new(handler, pyloop), true)
    }

    /// Requests received since the worker started serving (for `workers_max_requests`).
    fn requests_received(&self) -> u64 {
        self.slot.requests_received()
    }

    /// Stops accepting and drains; await the result to know the worker has stopped.
    fn shutdown(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.slot.shutdown(py)
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<AsgiWorker>()?;
    m.add_class::<protocol::HttpProtocol>()?;
    m.add_class::<websocket::WebsocketProtocol>()?;
    m.add("ClientDisconnected", m.py().get_type::<crate::errors::ClientDisconnected>())?;
    Ok(())
}
