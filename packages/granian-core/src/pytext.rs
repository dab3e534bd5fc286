//! Python strings every request hands to the app: one shared, interned object for the common
//! values instead of a new string per request.

use http::Method;
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
