//! Reads the worker configuration from `granian.server.config.WorkerSettings`, whose attributes are
//! the option names of the Python option registry (`granian.options`).
//!
//! Python validates every value before a worker starts; the checks here are the last line against
//! values that would make hyper, h2 or std panic (frame sizes, durations), so a bad value becomes a
//! `ValueError` naming the option, never a panic inside a worker.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::accesslog::AccessFormat;
use crate::http::{Http1Settings, Http2Settings, Http3Settings, HttpMode};
use crate::metrics::WorkerMetrics;
use crate::runtime::RuntimeMode;
use crate::statics::StaticFiles;
use crate::tls::{ProtocolMin, ServerTls, TlsSettings};
use crate::workers::WorkerConfig;
use crate::ws::session::WsSettings;

/// HTTP/2 SETTINGS_MAX_FRAME_SIZE bounds (RFC 9113, section 6.5.2); h2 asserts them.
const FRAME_SIZE_RANGE: std::ops::RangeInclusive<u32> = 16_384..=16_777_215;
/// hyper asserts that the HTTP/1 read buffer may hold at least this much.
const MIN_HTTP1_BUFFER: usize = 8192;

fn attr<'py, T: FromPyObjectOwned<'py>>(obj: &Bound<'py, PyAny>, name: &str) -> PyResult<T> {
    obj.getattr(name)?.extract::<T>().map_err(|err| {
        let err: PyErr = err.into();
        PyValueError::new_err(format!("Invalid {name}: {}", err.value(obj.py())))
    })
}

fn invalid(name: &str, value: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(format!("Invalid {name}: {value} is out of range"))
}

/// A duration in seconds, as a finite non-negative number.
pub fn seconds(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Duration> {
    let value: f64 = attr(obj, name)?;
    Duration::try_from_secs_f64(value).map_err(|_| invalid(name, value))
}

fn read_http1(settings: &Bound<'_, PyAny>) -> PyResult<Http1Settings> {
    let max_buffer_size: usize = attr(settings, "http1_buffer_size")?;
    if max_buffer_size < MIN_HTTP1_BUFFER {
        return Err(invalid("http1_buffer_size", max_buffer_size));
    }
    Ok(Http1Settings {
        header_read_timeout: Duration::from_millis(attr(settings, "http1_header_read_timeout")?),
        keep_alive: attr(settings, "http1_keep_alive")?,
        max_buffer_size,
        pipeline_flush: attr(settings, "http1_pipeline_flush")?,
    })
}

fn read_http2(settings: &Bound<'_, PyAny>) -> PyResult<Http2Settings> {
    let interval: Option<u64> = attr(settings, "http2_keep_alive_interval")?;
    let max_frame_size: u32 = attr(settings, "http2_max_frame_size")?;
    if !FRAME_SIZE_RANGE.contains(&max_frame_size) {
        return Err(invalid("http2_max_frame_size", max_frame_size));
    }
    Ok(Http2Settings {
        adaptive_window: attr(settings, "http2_adaptive_window")?,
        initial_connection_window_size: attr(settings, "http2_initial_connection_window_size")?,
        initial_stream_window_size: attr(settings, "http2_initial_stream_window_size")?,
        keep_alive_interval: interval.map(Duration::from_millis),
        keep_alive_timeout: seconds(settings, "http2_keep_alive_timeout")?,
        max_concurrent_streams: attr(settings, "http2_max_concurrent_streams")?,
        max_frame_size,
        max_headers_size: attr(settings, "http2_max_headers_size")?,
        // h2 asserts that the send buffer limit fits in a u32.
        max_send_buffer_size: attr::<u32>(settings, "http2_max_send_buffer_size")? as usize,
    })
}

fn read_http3(settings: &Bound<'_, PyAny>, tls: bool) -> PyResult<Option<Http3Settings>> {
    if !attr::<bool>(settings, "http3")? {
        return Ok(None);
    }
    if !cfg!(feature = "http3") {
        return Err(PyValueError::new_err(
            "HTTP/3: this build of granian-core has no HTTP/3 (it was built without the `http3` feature)",
        ));
    }
    if !tls {
        return Err(PyValueError::new_err("HTTP/3 needs TLS: give --ssl-certificate and --ssl-keyfile"));
    }
    let idle_timeout = seconds(settings, "http3_idle_timeout")?;
    if idle_timeout.is_zero() {
        return Err(invalid("http3_idle_timeout", 0));
    }
    Ok(Some(Http3Settings {
        idle_timeout,
        max_concurrent_streams: attr(settings, "http3_max_concurrent_streams")?,
        udp_fd: attr(settings, "http3_udp_fd")?,
        slot_lock: attr::<Option<String>>(settings, "http3_slot_lock")?.map(Into::into),
    }))
}

fn read_websockets(settings: &Bound<'_, PyAny>) -> PyResult<Option<WsSettings>> {
    if !attr::<bool>(settings, "websockets")? {
        return Ok(None);
    }
    let ping_interval = seconds(settings, "ws_ping_interval")?;
    Ok(Some(WsSettings {
        max_message_size: attr(settings, "ws_max_size")?,
        ping_interval: (!ping_interval.is_zero()).then_some(ping_interval),
        ping_timeout: seconds(settings, "ws_ping_timeout")?,
        deflate: attr(settings, "ws_per_message_deflate")?,
    }))
}

fn read_tls(settings: &Bound<'_, PyAny>) -> PyResult<Option<TlsSettings>> {
    let certificate: Option<PathBuf> = attr(settings, "ssl_cert")?;
    let key: Option<PathBuf> = attr(settings, "ssl_key")?;
    let (certificate, key) = match (certificate, key) {
        (None, None) => return Ok(None),
        (Some(certificate), Some(key)) => (certificate, key),
        (Some(_), None) => return Err(PyValueError::new_err("TLS: --ssl-certificate needs --ssl-keyfile")),
        (None, Some(_)) => return Err(PyValueError::new_err("TLS: --ssl-keyfile needs --ssl-certificate")),
    };
    let protocol_min: String = attr(settings, "ssl_protocol_min")?;
    Ok(Some(TlsSettings {
        certificate,
        key,
        key_password: attr(settings, "ssl_key_password")?,
        protocol_min: ProtocolMin::parse(&protocol_min).ok_or_else(|| invalid("ssl_protocol_min", &protocol_min))?,
        client_ca: attr(settings, "ssl_ca")?,
        revocation_lists: attr::<Option<Vec<PathBuf>>>(settings, "ssl_crl")?.unwrap_or_default(),
        client_verify: attr(settings, "ssl_client_verify")?,
    }))
}

fn tls_config(settings: &Bound<'_, PyAny>, http_mode: HttpMode) -> PyResult<Option<ServerTls>> {
    let Some(tls) = read_tls(settings)? else {
        return Ok(None);
    };
    crate::tls::server_config(&tls, http_mode).map(Some).map_err(|err| PyValueError::new_err(err.0))
}

fn http_mode(settings: &Bound<'_, PyAny>) -> PyResult<HttpMode> {
    let http: String = attr(settings, "http")?;
    HttpMode::parse(&http)
        .ok_or_else(|| PyValueError::new_err(format!("http must be 'auto', '1' or '2', not {http:?}")))
}

/// Reads and checks the TLS files of `settings` (a `WorkerSettings`) as a worker will; raises
/// `ValueError` with one line naming the file and the problem. True when TLS is on.
#[pyfunction]
pub fn check_tls(settings: &Bound<'_, PyAny>) -> PyResult<bool> {
    Ok(tls_config(settings, http_mode(settings)?)?.is_some())
}

/// Builds a [`WorkerConfig`] from a `granian.server.config.WorkerSettings`; bad values raise
/// `ValueError` naming them.
pub fn worker_config(settings: &Bound<'_, PyAny>) -> PyResult<WorkerConfig> {
    let http_mode = http_mode(settings)?;
    let runtime_mode: String = attr(settings, "runtime_mode")?;
    let tls = tls_config(settings, http_mode)?;
    Ok(WorkerConfig {
        http_mode,
        runtime_mode: RuntimeMode::parse(&runtime_mode)
            .ok_or_else(|| PyValueError::new_err(format!("runtime_mode must be 'st' or 'mt', not {runtime_mode:?}")))?,
        runtime_threads: attr::<usize>(settings, "runtime_threads")?.max(1),
        blocking_threads: attr::<usize>(settings, "runtime_blocking_threads")?.max(1),
        backpressure: match attr::<usize>(settings, "backpressure")? {
            permits @ 1..=tokio::sync::Semaphore::MAX_PERMITS => permits,
            other => return Err(invalid("backpressure", other)),
        },
        http1: read_http1(settings)?,
        http2: read_http2(settings)?,
        websockets: read_websockets(settings)?,
        http3: read_http3(settings, tls.is_some())?,
        tls,
        drain_timeout: match attr::<Option<f64>>(settings, "workers_drain_timeout")? {
            Some(value) => {
                Some(Duration::try_from_secs_f64(value).map_err(|_| invalid("workers_drain_timeout", value))?)
            }
            None => None,
        },
        statics: read_statics(settings)?,
        access_log: read_access_log(settings)?,
        metrics: read_metrics(settings)?,
        max_request_body_size: attr(settings, "max_request_body_size")?,
    })
}

/// This worker's slot of the supervisor's metrics region (`metrics_region`, `metrics_slot`, set by
/// the supervisor when metrics are on).
fn read_metrics(settings: &Bound<'_, PyAny>) -> PyResult<Option<WorkerMetrics>> {
    let region: Option<String> = attr(settings, "metrics_region")?;
    let slot: Option<usize> = attr(settings, "metrics_slot")?;
    let (Some(region), Some(slot)) = (region, slot) else {
        return Ok(None);
    };
    WorkerMetrics::attach(&region, slot)
        .map(Some)
        .map_err(|err| PyValueError::new_err(format!("metrics: cannot open the supervisor's region {region}: {err}")))
}

/// The compiled access log format when `log_access` is on (the Python config fills in the default).
fn read_access_log(settings: &Bound<'_, PyAny>) -> PyResult<Option<AccessFormat>> {
    if !attr::<bool>(settings, "log_access")? {
        return Ok(None);
    }
    let format: String = attr(settings, "log_access_format")?;
    AccessFormat::compile(&format)
        .map(Some)
        .map_err(|err| PyValueError::new_err(format!("Invalid log_access_format: {err}")))
}

/// `static_mounts` (route, directory) pairs derived by the Python config, with the other static options.
fn read_statics(settings: &Bound<'_, PyAny>) -> PyResult<Option<Arc<StaticFiles>>> {
    let mounts: Vec<(String, String)> = attr(settings, "static_mounts")?;
    if mounts.is_empty() {
        return Ok(None);
    }
    let dir_to_file: Option<String> = attr(settings, "static_path_dir_to_file")?;
    let expires: f64 = attr(settings, "static_path_expires")?;
    if !expires.is_finite() || expires < 0.0 {
        return Err(invalid("static_path_expires", expires));
    }
    let files = StaticFiles::new(mounts, dir_to_file, expires as u64).map_err(PyValueError::new_err)?;
    Ok(Some(Arc::new(files)))
}
