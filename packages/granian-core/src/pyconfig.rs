//! Reads the worker configuration from the Python settings objects (`granian.http` dataclasses).

use std::time::Duration;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::http::{Http1Settings, Http2Settings, HttpMode};
use crate::runtime::RuntimeMode;
use crate::workers::WorkerConfig;

fn attr<'py, T: FromPyObjectOwned<'py>>(obj: &Bound<'py, PyAny>, name: &str) -> PyResult<T> {
    obj.getattr(name)?.extract::<T>().map_err(Into::into)
}

fn read_http1(obj: &Bound<'_, PyAny>) -> PyResult<Http1Settings> {
    Ok(Http1Settings {
        header_read_timeout: Duration::from_millis(attr(obj, "header_read_timeout")?),
        keep_alive: attr(obj, "keep_alive")?,
        max_buffer_size: attr(obj, "max_buffer_size")?,
        pipeline_flush: attr(obj, "pipeline_flush")?,
    })
}

fn read_http2(obj: &Bound<'_, PyAny>) -> PyResult<Http2Settings> {
    let interval: Option<u64> = attr(obj, "keep_alive_interval")?;
    Ok(Http2Settings {
        adaptive_window: attr(obj, "adaptive_window")?,
        initial_connection_window_size: attr(obj, "initial_connection_window_size")?,
        initial_stream_window_size: attr(obj, "initial_stream_window_size")?,
        keep_alive_interval: interval.map(Duration::from_millis),
        keep_alive_timeout: Duration::from_secs(attr(obj, "keep_alive_timeout")?),
        max_concurrent_streams: attr(obj, "max_concurrent_streams")?,
        // HTTP/2 allows frames of 16 KiB to 16 MiB; the h2 crate asserts it.
        max_frame_size: attr::<u32>(obj, "max_frame_size")?.clamp(16_384, 16_777_215),
        max_headers_size: attr(obj, "max_headers_size")?,
        max_send_buffer_size: attr(obj, "max_send_buffer_size")?,
    })
}

/// Builds a [`WorkerConfig`] from a `granian.server.config.WorkerSettings`; bad values raise
/// `ValueError` naming them.
pub fn worker_config(settings: &Bound<'_, PyAny>) -> PyResult<WorkerConfig> {
    let http: String = attr(settings, "http")?;
    let runtime_mode: String = attr(settings, "runtime_mode")?;
    Ok(WorkerConfig {
        http_mode: HttpMode::parse(&http)
            .ok_or_else(|| PyValueError::new_err(format!("http must be 'auto', '1' or '2', not {http:?}")))?,
        runtime_mode: RuntimeMode::parse(&runtime_mode)
            .ok_or_else(|| PyValueError::new_err(format!("runtime_mode must be 'st' or 'mt', not {runtime_mode:?}")))?,
        runtime_threads: attr::<usize>(settings, "runtime_threads")?.max(1),
        backpressure: attr::<usize>(settings, "backpressure")?.max(1),
        http1: read_http1(&settings.getattr("http1")?)?,
        http2: read_http2(&settings.getattr("http2")?)?,
    })
}
