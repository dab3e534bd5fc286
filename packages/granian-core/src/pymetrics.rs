//! The supervisor's handle on the metrics (`granian._core.MetricsRegistry`): the shared region,
//! slots for worker processes, the supervisor's counters and the HTTP endpoint.

use std::sync::{Arc, Mutex};

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;

use crate::errors::CoreError;
use crate::metrics::exporter::Exporter;
use crate::metrics::exposition::Registry;
use crate::metrics::region::Region;
use crate::net::Listener;

#[pyclass(frozen, module = "granian._core", name = "MetricsRegistry")]
pub struct MetricsRegistry {
    registry: Arc<Registry>,
    exporter: Mutex<Option<Exporter>>,
}

#[pymethods]
impl MetricsRegistry {
    /// A region of `slots` worker slots; `interface` labels the request histograms.
    #[new]
    fn new(slots: usize, interface: String) -> PyResult<Self> {
        let region = Region::create(slots.max(1)).map_err(CoreError::from)?;
        Ok(Self { registry: Arc::new(Registry::new(region, interface)), exporter: Mutex::new(None) })
    }

    /// The path a worker process opens the region by.
    #[getter]
    fn path(&self) -> String {
        format!("/proc/{}/fd/{}", std::process::id(), self.registry.region().fd())
    }

    /// A zeroed slot for a new process of worker `index`, or None when all are taken.
    fn claim(&self, index: usize) -> Option<usize> {
        self.registry.claim(index)
    }

    /// The process of `slot` exited: keep its counters in its worker's totals, free the slot.
    fn release(&self, slot: usize) {
        self.registry.release(slot);
    }

    /// Adds one to a supervisor counter such as `workers_spawns`.
    fn count(&self, name: &str) -> PyResult<()> {
        if self.registry.count(name) {
            Ok(())
        } else {
            Err(PyValueError::new_err(format!("unknown supervisor counter {name:?}")))
        }
    }

    /// The Prometheus text exposition.
    fn render(&self) -> String {
        self.registry.render()
    }

    /// Serves the exposition on the listening TCP socket `listener_fd` (a duplicate is used).
    fn serve(&self, listener_fd: i32) -> PyResult<()> {
        let mut exporter = self.exporter.lock().unwrap_or_else(|e| e.into_inner());
        if exporter.is_some() {
            return Err(PyRuntimeError::new_err("the metrics endpoint is already serving"));
        }
        let Listener::Tcp(listener) = Listener::from_fd(listener_fd).map_err(CoreError::from)? else {
            return Err(PyValueError::new_err("the metrics endpoint needs a TCP socket"));
        };
        *exporter = Some(Exporter::start(listener, self.registry.clone()).map_err(CoreError::from)?);
        Ok(())
    }

    /// Stops the endpoint (open scrapes are closed).
    fn stop(&self) {
        if let Some(exporter) = self.exporter.lock().unwrap_or_else(|e| e.into_inner()).take() {
            exporter.stop();
        }
    }
}
