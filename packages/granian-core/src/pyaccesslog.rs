//! Hands finished access log lines to Python's `granian.access` logger, in batches, without waking
//! Python for them: lines wait in a queue that is written whenever a thread holding the GIL finishes
//! a batch of work anyway (the loop bridge's [`Chores`], also run by WSGI pool threads). When
//! nothing else runs Python for [`FLUSH_DELAY`] (a quiet server), a timer asks the event loop to
//! write them. Each batch goes to `granian.log.write_access_lines`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::accesslog::format::Value;
use crate::accesslog::{AccessFormat, AccessLog, LineSink};
use crate::pyloop::PyLoop;

/// Longest a line waits for Python to run anyway before the event loop is woken to write it.
const FLUSH_DELAY: Duration = Duration::from_millis(50);

pub struct LineQueue {
    lines: Mutex<Vec<String>>,
    /// Set while lines wait (and a timer watches them); cleared by a flush.
    waiting: AtomicBool,
    /// Flushes so far: a timer whose lines were written meanwhile has nothing to do.
    flushes: AtomicU64,
    write: Py<PyAny>,
    pyloop: Arc<PyLoop>,
}

impl LineQueue {
    fn push(self: &Arc<Self>, line: String) {
        self.lines.lock().unwrap_or_else(|e| e.into_inner()).push(line);
        if !self.waiting.swap(true, Ordering::AcqRel) {
            self.watch();
        }
    }

    /// Starts the timer for lines that just started waiting.
    fn watch(self: &Arc<Self>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            let this = self.clone();
            self.pyloop.bridge.push(Box::new(move |py| this.flush(py)));
            return;
        };
        let seen = self.flushes.load(Ordering::Acquire);
        let this = self.clone();
        runtime.spawn(async move {
            tokio::time::sleep(FLUSH_DELAY).await;
            if this.flushes.load(Ordering::Acquire) == seen {
                let queue = this.clone();
                this.pyloop.bridge.push(Box::new(move |py| queue.flush(py)));
            }
        });
    }

    /// Writes every waiting line (with the GIL held).
    pub fn flush(&self, py: Python<'_>) {
        if !self.waiting.load(Ordering::Acquire) {
            return;
        }
        // Clear the flag before taking the lines: a line pushed meanwhile is in this batch or
        // starts a new wait with its own timer.
        self.waiting.store(false, Ordering::Release);
        self.flushes.fetch_add(1, Ordering::AcqRel);
        let lines = std::mem::take(&mut *self.lines.lock().unwrap_or_else(|e| e.into_inner()));
        if lines.is_empty() {
            return;
        }
        let written = PyList::new(py, lines).and_then(|lines| self.write.call1(py, (lines,)));
        if let Err(err) = written {
            self.pyloop.log_error(py, "Writing the access log failed", Some(err.value(py).as_any()));
        }
    }
}

/// The access log of a worker about to start, or None when it is off (or its logger would drop
/// every line: then the request path does no access log work at all). Waiting lines are written by
/// the loop bridge's chores; the worker's last drain writes the rest.
pub fn access_log(
    py: Python<'_>,
    format: Option<&AccessFormat>,
    pyloop: &Arc<PyLoop>,
) -> PyResult<Option<Arc<AccessLog>>> {
    let Some(format) = format else {
        return Ok(None);
    };
    let module = PyModule::import(py, "granian.log")?;
    if !module.call_method0("access_log_enabled")?.is_truthy()? {
        return Ok(None);
    }
    let queue = Arc::new(LineQueue {
        lines: Mutex::new(Vec::with_capacity(64)),
        waiting: AtomicBool::new(false),
        flushes: AtomicU64::new(0),
        write: module.getattr("write_access_lines")?.unbind(),
        pyloop: pyloop.clone(),
    });
    let flusher = queue.clone();
    pyloop.bridge.chores.set(Box::new(move |py| flusher.flush(py)));
    let sink: LineSink = Arc::new(move |line| queue.push(line));
    Ok(Some(Arc::new(AccessLog::new(format.clone(), sink))))
}

/// Compiles an access log format as a worker will; raises `ValueError` with one line when it is wrong.
#[pyfunction]
pub fn check_access_log_format(format: &str) -> PyResult<()> {
    AccessFormat::compile(format).map(drop).map_err(PyValueError::new_err)
}

/// Renders `format` with the atom values of `values` (keyed as in the format: `status`,
/// `header{user-agent}`, ...), exactly as the access log renders a line. For tests and tools.
#[pyfunction]
pub fn render_access_log_line(format: &str, values: &Bound<'_, PyDict>) -> PyResult<String> {
    let compiled = AccessFormat::compile(format).map_err(PyValueError::new_err)?;
    let mut texts = Vec::new();
    let mut numbers = Vec::new();
    for atom in compiled.atoms() {
        let key = compiled.atom_key(atom);
        let value = values.get_item(&key)?.ok_or_else(|| PyValueError::new_err(format!("no value for {key}")))?;
        if let Ok(number) = value.extract::<i64>() {
            numbers.push((atom.clone(), Err(number)));
        } else if let Ok(number) = value.extract::<f64>() {
            numbers.push((atom.clone(), Ok(number)));
        } else {
            texts.push((atom.clone(), value.extract::<String>()?));
        }
    }
    Ok(compiled.render(|atom| {
        if let Some((_, text)) = texts.iter().find(|(known, _)| known == atom) {
            return Value::Text(text);
        }
        match numbers.iter().find(|(known, _)| known == atom) {
            Some((_, Ok(real))) => Value::Real(*real),
            Some((_, Err(integer))) => Value::Integer(*integer),
            None => Value::Text(""),
        }
    }))
}
