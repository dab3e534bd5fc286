//! The lifecycle of a worker as Python drives it, shared by every interface: start the runtimes
//! on an inherited listener, and a `shutdown()` awaitable that resolves once connections drained
//! and the runtime threads ended.

use std::sync::{Arc, Mutex};

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

use crate::errors::CoreError;
use crate::loopwatch::{watch, LoopWatch};
use crate::net::Listener;
use crate::pyaccesslog::access_log;
use crate::pyloop::{resolve_future, PyLoop};
use crate::workers::{DebugSink, Dispatcher, Worker, WorkerConfig};

/// The running state behind an interface's worker class.
#[derive(Default)]
pub struct WorkerSlot {
    running: Mutex<Option<Running>>,
}

struct Running {
    worker: Arc<Worker>,
    pyloop: Arc<PyLoop>,
    /// Watches the event loop of async interfaces (whose apps can block it); stops when dropped.
    _watch: Option<LoopWatch>,
}

impl WorkerSlot {
    /// Starts serving `listener_fd` with `dispatcher`; `watch_loop` for interfaces whose apps run on
    /// the event loop (see [`crate::loopwatch`]).
    pub fn start<D: Dispatcher>(
        &self,
        config: &WorkerConfig,
        listener_fd: i32,
        pyloop: Arc<PyLoop>,
        dispatcher: D,
        watch_loop: bool,
    ) -> PyResult<()> {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if running.is_some() {
            return Err(PyRuntimeError::new_err("this worker is already serving"));
        }
        crate::malloc::tune_for_serving();
        let listener = Listener::from_fd(listener_fd).map_err(CoreError::from)?;
        let reporter = pyloop.clone();
        let report = Arc::new(move |message: String| reporter.log_error_from_any_thread(message));
        let debug: DebugSink = if Python::attach(|py| pyloop.debug_enabled(py)) {
            let reporter = pyloop.clone();
            Some(Arc::new(move |message: String| reporter.log_debug_from_any_thread(message)))
        } else {
            None
        };
        let access = Python::attach(|py| access_log(py, config.access_log.as_ref(), &pyloop))?;
        let worker = Worker::start(config, listener, dispatcher, report, debug, access).map_err(CoreError::from)?;
        let watch = if watch_loop { Some(watch(pyloop.clone()).map_err(CoreError::from)?) } else { None };
        *running = Some(Running { worker: Arc::new(worker), pyloop, _watch: watch });
        Ok(())
    }

    /// Requests received since the worker started serving (0 before and after).
    pub fn requests_received(&self) -> u64 {
        let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        running.as_ref().map_or(0, |running| running.worker.requests_received())
    }

    /// Begins the drain; the returned asyncio future resolves when the worker has fully stopped.
    pub fn shutdown(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let running = self.running.lock().unwrap_or_else(|e| e.into_inner()).take();
        let Some(Running { worker, pyloop, .. }) = running else {
            return Err(PyRuntimeError::new_err("this worker is not serving"));
        };
        worker.begin_shutdown();
        let future = pyloop.create_future(py)?;
        let target = future.clone_ref(py);
        let bridge = pyloop.bridge.clone();
        let done = pyloop.clone();
        std::thread::Builder::new()
            .name("granian-drain".into())
            .spawn(move || {
                worker.join();
                bridge.push(Box::new(move |py| {
                    let _ = done.detach(py);
                    // Output still waiting (the access lines of the last responses) is written first.
                    done.bridge.chores.run(py);
                    resolve_future(py, target.bind(py), Ok(py.None()));
                }));
            })
            .map_err(CoreError::from)?;
        Ok(future)
    }
}
