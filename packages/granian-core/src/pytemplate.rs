//! Request dicts (the WSGI environ, ASGI scopes) as copies of a per-connection template.
//!
//! Most entries of a request dict are the same for every request of a connection: addresses,
//! scheme, TLS facts, the worker's constants. The interface builds a dict of those once, with None
//! in the place of each entry a request sets, and every request starts from a copy of it: one copy
//! of a table whose size is already right, instead of a new dict grown by twenty insertions.
//!
//! A connection's template may itself be a copy of a per-worker one (the WSGI environ's: its
//! constants and a place for every connection entry). A copy keeps its source's table, so such a
//! worker template is sized by `make_room` until a copy takes every key without growing.

use pyo3::intern;
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

/// Gives `dict` a table in which each of its copies takes `room` more keys without growing.
///
/// A copy of a compact dict gets the same table (CPython clones it), and a table grows when an
/// insertion finds it full (two-thirds used) by rebuilding it: 850 instructions, once per request
/// when the template's copies start full (benchmarks/PROFILING.md). CPython has no public way to
/// size a dict, so this measures: a probe copy takes `room` keys; when its size (`__sizeof__`)
/// changed, the dict is grown once by spare keys inserted until its size changes, and the spares
/// are removed. Bounded: a dict that cannot be given the room stays as it is (only slower).
pub fn make_room(dict: &Bound<'_, PyDict>, room: usize) -> PyResult<()> {
    let py = dict.py();
    let size =
        |dict: &Bound<'_, PyDict>| -> PyResult<usize> { dict.call_method0(intern!(py, "__sizeof__"))?.extract() };
    let none = py.None();
    for _ in 0..4 {
        let probe = dict.copy()?;
        let before = size(&probe)?;
        for key in 0..room {
            probe.set_item(format!("granian.room.{key}"), &none)?;
        }
        if size(&probe)? == before {
            return Ok(());
        }
        let before = size(dict)?;
        let mut spares = Vec::new();
        while size(dict)? == before && spares.len() < 1024 {
            let spare = PyString::new(py, &format!("granian.spare.{}", spares.len()));
            dict.set_item(&spare, &none)?;
            spares.push(spare);
        }
        for spare in spares {
            dict.del_item(spare)?;
        }
    }
    Ok(())
}
