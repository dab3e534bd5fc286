//! The asyncio task an app's request runs in.
//!
//! Every request of an async interface runs its app as an `asyncio.Task`, so the app sees what
//! asyncio promises (`asyncio.current_task()`, its own copy of the context variables, cancellation).
//! Two things the usual way (`loop.create_task(coro)` and `task.add_done_callback(...)`) does were
//! pure cost, about 4,000 of the 41,000 instructions of an RSGI GET (benchmarks/PROFILING.md):
//!
//! - uvloop's `create_task` sets no name, so the task formats a new `Task-N` for every request. The
//!   task is made directly, `asyncio.Task(coro, loop=loop, name="granian-app")`, unless the app
//!   installed a task factory, which is then honoured as `create_task` would.
//! - A done callback costs a callback registration, one more event-loop handle when the task ends,
//!   and the calls that ask the task how it ended. The task runs an [`AppRun`] instead: a coroutine
//!   that drives the app's coroutine and tells the request's protocol object at once how it ended.
//!
//! From Python 3.12 the task starts eagerly (`eager_start=True`, what `asyncio.eager_task_factory`
//! does): the app's first step runs at once, with `asyncio.current_task()` set, and an app that
//! answers without waiting never goes through the loop's queue.

use pyo3::exceptions::asyncio::CancelledError;
use pyo3::exceptions::{PyException, PyStopIteration};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyModule};
use std::sync::atomic::{AtomicBool, Ordering};

/// How an app's coroutine ended.
pub enum AppOutcome {
    Returned,
    Raised(PyErr),
    Cancelled,
}

/// Called on the Python thread when an app's coroutine ends, with the protocol object the app was
/// started with (each interface downcasts it to its own type).
pub type AppEnded = fn(Python<'_>, &Bound<'_, PyAny>, AppOutcome);

/// Makes the tasks of one worker's event loop.
pub struct AppTasks {
    task: Py<PyAny>,
    options: Py<PyDict>,
    create_task: Py<PyAny>,
    get_task_factory: Py<PyAny>,
    iscoroutine: Py<PyAny>,
}

impl AppTasks {
    /// The name every app task carries (see `asyncio.Task.get_name`).
    pub const NAME: &'static str = "granian-app";

    pub fn new(py: Python<'_>, event_loop: &Bound<'_, PyAny>) -> PyResult<Self> {
        let options = PyDict::new(py);
        options.set_item("loop", event_loop)?;
        options.set_item("name", Self::NAME)?;
        if py.version_info() >= (3, 12) {
            options.set_item("eager_start", true)?;
        }
        let asyncio = PyModule::import(py, "asyncio")?;
        Ok(Self {
            task: asyncio.getattr("Task")?.unbind(),
            iscoroutine: asyncio.getattr("iscoroutine")?.unbind(),
            options: options.unbind(),
            create_task: event_loop.getattr("create_task")?.unbind(),
            get_task_factory: event_loop.getattr("get_task_factory")?.unbind(),
        })
    }

    /// Runs `coroutine` in a task; `ended(py, owner, outcome)` hears how it ended.
    pub fn run(&self, py: Python<'_>, coroutine: Py<PyAny>, owner: Py<PyAny>, ended: AppEnded) -> PyResult<()> {
        // SAFETY: a type check of a live object.
        #[allow(unsafe_code)]
        let native = unsafe { ffi::PyCoro_CheckExact(coroutine.as_ptr()) } != 0;
        if !native && !self.iscoroutine.call1(py, (&coroutine,))?.is_truthy(py)? {
            let got = coroutine.bind(py).repr()?;
            return Err(pyo3::exceptions::PyTypeError::new_err(format!("a coroutine was expected, got {got}")));
        }
        let run = Py::new(py, AppRun { app: coroutine, owner, ended, over: AtomicBool::new(false) })?;
        if self.get_task_factory.call0(py)?.is_none(py) {
            self.task.bind(py).call((run,), Some(self.options.bind(py)))?;
        } else {
            self.create_task.bind(py).call1((run,))?;
        }
        Ok(())
    }
}

/// The coroutine an app's task runs: passes every step to the app's coroutine, and when that ends
/// tells the owner how. An exception the app raised is the owner's to log; the task itself then
/// ends normally, so asyncio does not report it a second time ("exception was never retrieved").
/// Exceptions that are not `Exception`s (`KeyboardInterrupt`, `SystemExit`) and cancellation still
/// end the task with them. Attributes it does not have (`cr_frame`, `cr_running`, `__qualname__`,
/// ...) are the app coroutine's, for tools that inspect a task's coroutine.
#[pyclass(frozen, module = "granian._core")]
pub struct AppRun {
    app: Py<PyAny>,
    owner: Py<PyAny>,
    ended: AppEnded,
    over: AtomicBool,
}

impl AppRun {
    fn end(&self, py: Python<'_>, outcome: AppOutcome) {
        if !self.over.swap(true, Ordering::AcqRel) {
            (self.ended)(py, self.owner.bind(py), outcome);
        }
    }

    /// What one step of the app's coroutine gives the task: the value it yielded, or its end.
    fn step(&self, py: Python<'_>, result: PyResult<Py<PyAny>>) -> PyResult<Py<PyAny>> {
        match result {
            Ok(yielded) => Ok(yielded),
            Err(err) if err.is_instance_of::<PyStopIteration>(py) => {
                self.end(py, AppOutcome::Returned);
                Err(PyStopIteration::new_err(()))
            }
            Err(err) => self.failed(py, err),
        }
    }

    fn failed(&self, py: Python<'_>, err: PyErr) -> PyResult<Py<PyAny>> {
        if err.is_instance_of::<CancelledError>(py) {
            self.end(py, AppOutcome::Cancelled);
            Err(err)
        } else if err.is_instance_of::<PyException>(py) {
            self.end(py, AppOutcome::Raised(err));
            Err(PyStopIteration::new_err(()))
        } else {
            self.end(py, AppOutcome::Raised(err.clone_ref(py)));
            Err(err)
        }
    }
}

#[pymethods]
impl AppRun {
    fn __await__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.send(py, py.None())
    }

    fn send(&self, py: Python<'_>, value: Py<PyAny>) -> PyResult<Py<PyAny>> {
        let mut result: *mut ffi::PyObject = std::ptr::null_mut();
        // SAFETY: both objects are alive (held by `self` and `value`); `result` receives a new
        // reference on PYGEN_NEXT and PYGEN_RETURN, and stays null on PYGEN_ERROR.
        #[allow(unsafe_code)]
        let status = unsafe { ffi::PyIter_Send(self.app.as_ptr(), value.as_ptr(), &mut result) };
        match status {
            // SAFETY: a new reference, owned from here on.
            #[allow(unsafe_code)]
            ffi::PySendResult::PYGEN_NEXT => Ok(unsafe { Bound::from_owned_ptr(py, result) }.unbind()),
            ffi::PySendResult::PYGEN_RETURN => {
                // SAFETY: as above; the app's return value is not used.
                #[allow(unsafe_code)]
                drop(unsafe { Bound::from_owned_ptr(py, result) });
                self.end(py, AppOutcome::Returned);
                Err(PyStopIteration::new_err(()))
            }
            ffi::PySendResult::PYGEN_ERROR => {
                let err = PyErr::take(py).unwrap_or_else(|| PyStopIteration::new_err(()));
                self.step(py, Err(err))
            }
        }
    }

    #[pyo3(signature = (kind, value=None, traceback=None))]
    fn throw(
        &self,
        py: Python<'_>,
        kind: Py<PyAny>,
        value: Option<Py<PyAny>>,
        traceback: Option<Py<PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let thrown = match (value, traceback) {
            (None, None) => self.app.call_method1(py, pyo3::intern!(py, "throw"), (kind,)),
            (value, None) => self.app.call_method1(py, pyo3::intern!(py, "throw"), (kind, value)),
            (value, traceback) => self.app.call_method1(py, pyo3::intern!(py, "throw"), (kind, value, traceback)),
        };
        self.step(py, thrown)
    }

    fn close(&self, py: Python<'_>) -> PyResult<()> {
        self.app.call_method0(py, pyo3::intern!(py, "close")).map(drop)
    }

    fn __getattr__(&self, py: Python<'_>, name: &Bound<'_, pyo3::types::PyString>) -> PyResult<Py<PyAny>> {
        self.app.getattr(py, name)
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<AppRun>()
}
