//! Request dicts (the WSGI environ, ASGI scopes) as copies of a per-connection template.
//!
//! Most entries of a request dict are the same for every request of a connection: addresses,
//! scheme, TLS facts, the worker's constants. The interface builds a dict of those once, with None
//! in the place of each entry a request sets, and every request starts from a copy of it: one copy
//! of a table whose size is already right, instead of a new dict grown by twenty insertions.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyString};

/// One connection's template; empty until its first request.
pub struct RequestTemplate(PyOnceLock<Py<PyDict>>);

impl RequestTemplate {
    pub fn new() -> Self {
        Self(PyOnceLock::new())
    }

    /// A new dict with the template's entries; `build` makes the template on first use.
    pub fn copy<'py>(
        &self,
        py: Python<'py>,
        build: impl FnOnce() -> PyResult<Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        self.0.get_or_try_init(py, || build().map(Bound::unbind))?.bind(py).copy()
    }
}

/// Sets each of `keys` to None: the entries every request replaces get their slot in the template,
/// so a copy takes them without growing.
pub fn placeholders(dict: &Bound<'_, PyDict>, keys: &[&Bound<'_, PyString>]) -> PyResult<()> {
    let none = dict.py().None();
    keys.iter().try_for_each(|key| dict.set_item(key, &none))
}
