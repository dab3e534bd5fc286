//! `wsgi.input`: the request body as a blocking file-like object (PEP 3333).

use std::sync::{Mutex, MutexGuard};

use bytes::{Buf, BytesMut};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};
use tokio::runtime::Handle;

use crate::blocking;
use crate::body::{LimitedBody, RequestBody};
use crate::errors::CoreError;

struct Buffered {
    data: BytesMut,
    ended: bool,
}

#[pyclass(frozen, freelist = 64, module = "granian._core", name = "WSGIInput")]
pub struct WsgiInput {
    body: RequestBody,
    runtime: Handle,
    buffered: Mutex<Buffered>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn io_error(err: CoreError) -> PyErr {
    pyo3::exceptions::PyOSError::new_err(format!("reading the request body failed: {err}"))
}

/// A negative or missing size means "no limit", as with file objects.
fn limit(size: Option<isize>) -> Option<usize> {
    size.and_then(|s| usize::try_from(s).ok())
}

impl WsgiInput {
    pub fn new(body: LimitedBody, runtime: Handle) -> Self {
        Self {
            body: RequestBody::new(body),
            runtime,
            buffered: Mutex::new(Buffered { data: BytesMut::new(), ended: false }),
        }
    }

    /// Reads one more chunk into the buffer; false once the body has ended.
    fn fill(&self, py: Python<'_>, buffered: &mut Buffered) -> PyResult<bool> {
        if buffered.ended {
            return Ok(false);
        }
        let chunk = self
            .body
            .next_chunk_blocking(py, |read| blocking::run_before_waiting(&self.runtime, read))
            .map_err(io_error)?;
        match chunk.data {
            Some(data) => buffered.data.extend_from_slice(&data),
            None => buffered.ended = true,
        }
        if !chunk.more {
            buffered.ended = true;
        }
        Ok(true)
    }

    fn take<'py>(py: Python<'py>, buffered: &mut Buffered, n: usize) -> Bound<'py, PyBytes> {
        let n = n.min(buffered.data.len());
        let bytes = PyBytes::new(py, &buffered.data[..n]);
        buffered.data.advance(n);
        bytes
    }

    fn read_line<'py>(&self, py: Python<'py>, size: Option<usize>) -> PyResult<Bound<'py, PyBytes>> {
        let mut buffered = lock(&self.buffered);
        let mut scanned = 0;
        loop {
            if let Some(pos) = buffered.data[scanned..].iter().position(|b| *b == b'\n') {
                let end = scanned + pos + 1;
                return Ok(Self::take(py, &mut buffered, size.map_or(end, |s| s.min(end))));
            }
            if size.is_some_and(|s| buffered.data.len() >= s) {
                return Ok(Self::take(py, &mut buffered, size.unwrap_or(0)));
            }
            scanned = buffered.data.len();
            if !self.fill(py, &mut buffered)? {
                let all = buffered.data.len();
                return Ok(Self::take(py, &mut buffered, all));
            }
        }
    }
}

#[pymethods]
impl WsgiInput {
    /// Reads up to `size` bytes (all that is left when omitted or negative).
    #[pyo3(signature = (size=None))]
    fn read<'py>(&self, py: Python<'py>, size: Option<isize>) -> PyResult<Bound<'py, PyBytes>> {
        let size = limit(size);
        let mut buffered = lock(&self.buffered);
        while size.is_none_or(|s| buffered.data.len() < s) {
            if !self.fill(py, &mut buffered)? {
                break;
            }
        }
        let n = size.unwrap_or(buffered.data.len());
        Ok(Self::take(py, &mut buffered, n))
    }

    /// Reads one line, or at most `size` bytes of it.
    #[pyo3(signature = (size=None))]
    fn readline<'py>(&self, py: Python<'py>, size: Option<isize>) -> PyResult<Bound<'py, PyBytes>> {
        self.read_line(py, limit(size))
    }

    /// Reads lines until the end, or until about `hint` bytes were read.
    #[pyo3(signature = (hint=None))]
    fn readlines<'py>(&self, py: Python<'py>, hint: Option<isize>) -> PyResult<Bound<'py, PyList>> {
        let hint = limit(hint).filter(|h| *h > 0);
        let lines = PyList::empty(py);
        let mut total = 0;
        loop {
            let line = self.read_line(py, None)?;
            let len = line.as_bytes().len();
            if len == 0 {
                break;
            }
            lines.append(line)?;
            total += len;
            if hint.is_some_and(|h| total >= h) {
                break;
            }
        }
        Ok(lines)
    }

    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let line = self.read_line(py, None)?;
        Ok(if line.as_bytes().is_empty() { None } else { Some(line) })
    }
}
