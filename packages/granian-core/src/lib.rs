//! `granian._core`: the native half of granian.
//!
//! This file only declares modules and the Python module. Dependencies run one way:
//! interface modules (`asgi`, `rsgi`, `wsgi`) → shared engine (`workers`, `http`, `pyloop`, `runtime`) →
//! primitives (`net`, `errors`).

mod accesslog;
mod apptask;
mod asgi;
mod blocking;
mod body;
mod coalesce;
mod deadline;
mod dispatch;
mod errands;
mod errors;
mod http;
#[cfg(feature = "http3")]
mod http3;
mod incoming;
mod loopwatch;
mod malloc;
mod metrics;
mod net;
mod observe;
mod pyaccesslog;
mod pybytes;
mod pyconfig;
mod pyheaders;
mod pyloop;
mod pymetrics;
mod pyprocess;
mod pytemplate;
mod pytext;
mod pywebsocket;
mod pyworker;
mod rsgi;
mod runtime;
mod sendfile;
mod statics;
mod tls;
mod validation;
mod workers;
mod ws;
mod wsgi;

use pyo3::prelude::*;

/// The `granian._core` extension module.
#[pymodule(gil_used = true)]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("RSGIProtocolError", m.py().get_type::<errors::RSGIProtocolError>())?;
    m.add("RSGIProtocolClosed", m.py().get_type::<errors::RSGIProtocolClosed>())?;
    m.add_class::<pymetrics::MetricsRegistry>()?;
    pyloop::register(m)?;
    apptask::register(m)?;
    rsgi::register(m)?;
    asgi::register(m)?;
    wsgi::register(m)?;
    m.add_function(wrap_pyfunction!(pyconfig::check_tls, m)?)?;
    m.add_function(wrap_pyfunction!(pyprocess::stop_with_parent, m)?)?;
    m.add_function(wrap_pyfunction!(pyaccesslog::check_access_log_format, m)?)?;
    m.add_function(wrap_pyfunction!(pyaccesslog::render_access_log_line, m)?)?;
    Ok(())
}
