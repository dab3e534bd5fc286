//! RSGI 1.6 over HTTP: the worker class Python starts, the scope, the protocol objects.

mod dispatch;
mod protocol;
mod scope;
mod websocket;

use pyo3::prelude::*;

use crate::dispatch::PyDispatcher;
use crate::pyconfig::worker_config;
use crate::pyloop::PyLoop;
use crate::pyworker::WorkerSlot;
use crate::workers::WorkerConfig;

/// Serves an RSGI application from one worker process.
#[pyclass(frozen, module = "granian._core", name = "RSGIWorker")]
pub struct RsgiWorker {
    listener_fd: i32,
    config: WorkerConfig,
    slot: WorkerSlot,
}

#[pymethods]
impl RsgiWorker {
    /// `settings` is a `granian.server.config.WorkerSettings`.
    #[new]
    fn new(listener_fd: i32, settings: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(Self { listener_fd, config: worker_config(settings)?, slot: WorkerSlot::default() })
    }

    /// Starts serving: `callback(scope, protocol)` runs as a task on `event_loop` per request.
    fn serve(&self, py: Python<'_>, callback: Py<PyAny>, event_loop: &Bound<'_, PyAny>) -> PyResult<()> {
        let pyloop = PyLoop::attach(py, event_loop)?;
        let dispatcher = PyDispatcher::new(dispatch::RsgiHandler::new(callback, pyloop.clone()), pyloop.clone());
        self.slot.start(&self.config, self.listener_fd, pyloop, dispatcher, true)
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
    m.add_class::<RsgiWorker>()?;
    m.add_class::<scope::HttpScope>()?;
    m.add_class::<scope::Headers>()?;
    m.add_class::<protocol::HttpProtocol>()?;
    m.add_class::<protocol::StreamTransport>()?;
    m.add_class::<websocket::WebsocketProtocol>()?;
    m.add_class::<websocket::WebsocketTransport>()?;
    m.add_class::<websocket::WebsocketMessage>()?;
    Ok(())
}
