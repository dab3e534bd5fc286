//! The RSGI HTTP scope and its headers mapping. Python strings are built only when an attribute
//! is read, so an app that looks at two attributes pays for two.

use std::sync::{Arc, OnceLock};

use http::header::HeaderMap;
use http::request::Parts;
use http::Version;
use pyo3::exceptions::PyKeyError;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString};

use crate::http::decoded_path;
use crate::pytext;
use crate::workers::ConnectionInfo;

pub const RSGI_VERSION: &str = "1.6";

/// `http_version` as RSGI spells it.
pub fn version_label(version: Version) -> &'static str {
    match version {
        Version::HTTP_10 | Version::HTTP_09 => "1",
        Version::HTTP_2 => "2",
        Version::HTTP_3 => "3",
        _ => "1.1",
    }
}

#[pyclass(frozen, freelist = 64, module = "granian._core", name = "RSGIHTTPScope")]
pub struct HttpScope {
    proto: &'static str,
    parts: Parts,
    connection: Arc<ConnectionInfo>,
    headers: OnceLock<Py<Headers>>,
}

impl HttpScope {
    pub fn new(parts: Parts, connection: Arc<ConnectionInfo>) -> Self {
        Self { proto: "http", parts, connection, headers: OnceLock::new() }
    }

    /// The scope of a WebSocket request (`proto == 'ws'`).
    pub fn websocket(parts: Parts, connection: Arc<ConnectionInfo>) -> Self {
        Self { proto: "ws", parts, connection, headers: OnceLock::new() }
    }
}

#[pymethods]
impl HttpScope {
    #[getter]
    fn proto(&self) -> &'static str {
        self.proto
    }

    #[getter]
    fn rsgi_version(&self) -> &'static str {
        RSGI_VERSION
    }

    #[getter]
    fn http_version(&self) -> &'static str {
        version_label(self.parts.version)
    }

    #[getter]
    fn server(&self) -> String {
        self.connection.local.to_string()
    }

    #[getter]
    fn client(&self) -> String {
        self.connection.peer.to_string()
    }

    #[getter]
    fn scheme(&self) -> &'static str {
        self.connection.scheme
    }

    #[getter]
    fn method<'py>(&self, py: Python<'py>) -> Bound<'py, PyString> {
        pytext::method(py, &self.parts.method)
    }

    #[getter]
    fn path(&self) -> std::borrow::Cow<'_, str> {
        decoded_path(self.parts.uri.path())
    }

    #[getter]
    fn query_string(&self) -> &str {
        self.parts.uri.query().unwrap_or("")
    }

    #[getter]
    fn authority(&self) -> Option<&str> {
        self.parts.uri.authority().map(|a| a.as_str())
    }

    #[getter]
    fn headers(&self, py: Python<'_>) -> PyResult<Py<Headers>> {
        if let Some(headers) = self.headers.get() {
            return Ok(headers.clone_ref(py));
        }
        let created = Py::new(py, Headers { map: self.parts.headers.clone() })?;
        Ok(self.headers.get_or_init(|| created).clone_ref(py))
    }
}

/// Read-only, case-insensitive view of the request headers.
#[pyclass(frozen, freelist = 64, module = "granian._core", name = "RSGIHeaders", mapping)]
pub struct Headers {
    map: HeaderMap,
}

fn text(value: &http::HeaderValue) -> String {
    String::from_utf8_lossy(value.as_bytes()).into_owned()
}

#[pymethods]
impl Headers {
    fn keys(&self) -> Vec<&str> {
        self.map.keys().map(|k| k.as_str()).collect()
    }

    fn values(&self) -> Vec<String> {
        self.map.values().map(text).collect()
    }

    fn items(&self) -> Vec<(&str, String)> {
        self.map.iter().map(|(k, v)| (k.as_str(), text(v))).collect()
    }

    /// The first value of `key`, or `default`.
    #[pyo3(signature = (key, default=None))]
    fn get(&self, py: Python<'_>, key: &str, default: Option<Py<PyAny>>) -> PyResult<Py<PyAny>> {
        match self.map.get(key) {
            Some(value) => Ok(PyString::new(py, &text(value)).into_any().unbind()),
            None => Ok(default.unwrap_or_else(|| py.None())),
        }
    }

    /// Every value of `key`, in the order received.
    fn get_all(&self, key: &str) -> Vec<String> {
        self.map.get_all(key).iter().map(text).collect()
    }

    fn __contains__(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    fn __getitem__(&self, key: &str) -> PyResult<String> {
        self.map.get(key).map(text).ok_or_else(|| PyKeyError::new_err(key.to_owned()))
    }

    fn __len__(&self) -> usize {
        self.map.keys_len()
    }

    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        PyList::new(py, self.map.keys().map(|k| k.as_str()))?.try_iter().map(|it| it.into_any())
    }

    fn __repr__(&self) -> String {
        format!("RSGIHeaders({:?})", self.items())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_use_rsgi_labels() {
        assert_eq!(version_label(Version::HTTP_10), "1");
        assert_eq!(version_label(Version::HTTP_11), "1.1");
        assert_eq!(version_label(Version::HTTP_2), "2");
        assert_eq!(version_label(Version::HTTP_3), "3");
    }
}
