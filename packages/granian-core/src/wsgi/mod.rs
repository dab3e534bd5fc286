//! WSGI (PEP 3333): the worker class Python starts and the request runner.
//!
//! Requests go from tokio straight to the blocking pool (no event loop involved); a pool thread
//! builds the environ, calls the app, sends the response and always calls the iterable's `close()`.

mod environ;
mod input;
mod response;

use std::sync::Arc;
use std::time::Duration;

use crate::incoming::TransportBody;
use http::{Request, Response};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};
use tokio::sync::OwnedSemaphorePermit;

use crate::blocking::{BlockingPool, Deliveries};
use crate::dispatch::{hand_off, PendingRequest, RequestIo};
use crate::http::ResponseBody;
use crate::pyconfig::{seconds, worker_config};
use crate::pyloop::PyLoop;
use crate::pyworker::WorkerSlot;
use crate::workers::{ConnectionInfo, Dispatcher, WorkerConfig};

struct WsgiApp {
    app: Py<PyAny>,
    template: environ::EnvironTemplate,
    pyloop: Arc<PyLoop>,
}

struct WsgiDispatcher {
    app: Arc<WsgiApp>,
    pool: BlockingPool,
}

impl Dispatcher for WsgiDispatcher {
    fn dispatch<B: TransportBody>(
        &self,
        request: Request<B>,
        connection: Arc<ConnectionInfo>,
        permit: OwnedSemaphorePermit,
    ) -> impl std::future::Future<Output = Response<ResponseBody>> + Send {
        let app = self.app.clone();
        let pool = self.pool.clone();
        hand_off(request, connection, permit, move |pending| {
            pool.push(Box::new(move |py, deliveries| run_request(py, &app, pending, deliveries)));
        })
    }
}

/// Calls the iterable's `close()`, if it has one. A list or tuple (what most apps return) has
/// none; asking would make and discard an `AttributeError` per request (a tenth of a WSGI GET's
/// instructions, benchmarks/PROFILING.md).
fn close_iterable(py: Python<'_>, result: &Bound<'_, PyAny>) -> PyResult<()> {
    if result.is_exact_instance_of::<PyList>() || result.is_exact_instance_of::<PyTuple>() {
        return Ok(());
    }
    match result.getattr_opt(pyo3::intern!(py, "close")) {
        Ok(Some(close)) => close.call0().map(drop),
        // As before: an iterable whose `close` lookup fails is not closed.
        Ok(None) | Err(_) => Ok(()),
    }
}

fn run_request(py: Python<'_>, app: &WsgiApp, pending: PendingRequest, deliveries: &mut Deliveries) {
    let PendingRequest { parts, connection, io } = pending;
    let RequestIo { body, responder, disconnected, permit, runtime } = io;
    if disconnected.is_cancelled() {
        // The client left while the request was queued: nobody is waiting for an answer.
        return;
    }
    let exchange = response::Exchange::new(responder, runtime.clone());
    let outcome = (|| -> PyResult<()> {
        let input = Py::new(py, input::WsgiInput::new(body, runtime))?.into_bound(py).into_any();
        let environ = environ::build(py, &app.template, &parts, &connection, input)?;
        let start_response = Py::new(py, response::StartResponse::new(exchange.clone()))?;
        let result = app.app.bind(py).call1((environ, start_response))?;
        let sent = response::send_result(py, &exchange, &result, deliveries, app.template.file_wrapper.bind(py));
        // PEP 3333: close() is called whatever happened, also when the client went away.
        sent.and(close_iterable(py, &result))
    })();
    match outcome {
        Ok(()) => exchange.finish(deliveries, true),
        Err(err) => {
            let gone = err.is_instance_of::<crate::errors::ClientDisconnected>(py) || disconnected.is_cancelled();
            if !gone {
                app.pyloop.log_error(py, "Application callable raised an exception", Some(err.value(py).as_any()));
            }
            exchange.finish(deliveries, false);
        }
    }
    drop(permit);
}

/// Serves a WSGI application from one worker process.
#[pyclass(frozen, module = "granian._core", name = "WSGIWorker")]
pub struct WsgiWorker {
    listener_fd: i32,
    config: WorkerConfig,
    script_name: String,
    blocking_threads: usize,
    idle_timeout: Duration,
    multiprocess: bool,
    pool: std::sync::Mutex<Option<BlockingPool>>,
    slot: WorkerSlot,
}

#[pymethods]
impl WsgiWorker {
    /// `settings` is a `granian.server.config.WorkerSettings`.
    #[new]
    fn new(listener_fd: i32, settings: &Bound<'_, PyAny>) -> PyResult<Self> {
        let script_name: Option<String> = settings.getattr("url_path_prefix")?.extract()?;
        let workers: usize = settings.getattr("workers")?.extract()?;
        Ok(Self {
            listener_fd,
            config: worker_config(settings)?,
            script_name: script_name.unwrap_or_default(),
            blocking_threads: settings.getattr("blocking_threads")?.extract::<usize>()?.max(1),
            idle_timeout: seconds(settings, "blocking_threads_idle_timeout")?.max(Duration::from_millis(1)),
            multiprocess: workers > 1,
            pool: std::sync::Mutex::new(None),
            slot: WorkerSlot::default(),
        })
    }

    /// Starts serving `app(environ, start_response)` on the blocking pool; `event_loop` only
    /// carries the worker's lifecycle (shutdown, logs). `file_wrapper` is `wsgi.file_wrapper`.
    fn serve(
        &self,
        py: Python<'_>,
        app: Py<PyAny>,
        event_loop: &Bound<'_, PyAny>,
        file_wrapper: Py<PyAny>,
    ) -> PyResult<()> {
        let pyloop = PyLoop::attach(py, event_loop)?;
        let template = environ::EnvironTemplate::new(
            py,
            self.script_name.clone(),
            file_wrapper,
            self.blocking_threads > 1,
            self.multiprocess,
        )?;
        let chores = pyloop.bridge.chores.clone();
        let pool = BlockingPool::new(self.blocking_threads, self.idle_timeout, chores, self.config.metrics.clone());
        *self.pool.lock().unwrap_or_else(|e| e.into_inner()) = Some(pool.clone());
        let app = Arc::new(WsgiApp { app, template, pyloop: pyloop.clone() });
        self.slot.start(&self.config, self.listener_fd, pyloop, WsgiDispatcher { app, pool }, false)
    }

    /// Requests received since the worker started serving (for `workers_max_requests`).
    fn requests_received(&self) -> u64 {
        self.slot.requests_received()
    }

    /// Stops accepting and drains; await the result to know the worker has stopped.
    fn shutdown(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let stopped = self.slot.shutdown(py)?;
        // Pool threads finish what is queued, then exit.
        if let Some(pool) = self.pool.lock().unwrap_or_else(|e| e.into_inner()).take() {
            pool.close();
        }
        Ok(stopped)
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<WsgiWorker>()?;
    m.add_class::<input::WsgiInput>()?;
    m.add_class::<response::StartResponse>()?;
    m.add_class::<response::WsgiWrite>()?;
    Ok(())
}
