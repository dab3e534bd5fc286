//! Python strings every request hands to the app: one shared, interned object for the common
//! values instead of a new string per request.

use http::{Method, Version};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyString;

/// The request method as a Python string (interned for the standard methods).
pub fn method<'py>(py: Python<'py>, method: &Method) -> Bound<'py, PyString> {
    let interned = match *method {
        Method::GET => intern!(py, "GET"),
        Method::POST => intern!(py, "POST"),
        Method::HEAD => intern!(py, "HEAD"),
        Method::PUT => intern!(py, "PUT"),
        Method::DELETE => intern!(py, "DELETE"),
        Method::PATCH => intern!(py, "PATCH"),
        Method::OPTIONS => intern!(py, "OPTIONS"),
        _ => return PyString::new(py, method.as_str()),
    };
    interned.clone()
}

/// The URL scheme: `http`/`https`, or `ws`/`wss` for a WebSocket.
pub fn scheme(py: Python<'_>, tls: bool, websocket: bool) -> &Bound<'_, PyString> {
    match (websocket, tls) {
        (false, false) => intern!(py, "http"),
        (false, true) => intern!(py, "https"),
        (true, false) => intern!(py, "ws"),
        (true, true) => intern!(py, "wss"),
    }
}

/// The WSGI environ's SERVER_PROTOCOL.
pub fn server_protocol(py: Python<'_>, version: Version) -> &Bound<'_, PyString> {
    match version {
        Version::HTTP_10 | Version::HTTP_09 => intern!(py, "HTTP/1.0"),
        Version::HTTP_2 => intern!(py, "HTTP/2"),
        Version::HTTP_3 => intern!(py, "HTTP/3"),
        _ => intern!(py, "HTTP/1.1"),
    }
}

/// The ASGI scope's `http_version`.
pub fn asgi_http_version(py: Python<'_>, version: Version) -> &Bound<'_, PyString> {
    match version {
        Version::HTTP_10 | Version::HTTP_09 => intern!(py, "1.0"),
        Version::HTTP_2 => intern!(py, "2"),
        Version::HTTP_3 => intern!(py, "3"),
        _ => intern!(py, "1.1"),
    }
}
