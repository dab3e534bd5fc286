//! How an app's request runs on the event loop.
//!
//! An app must see what asyncio promises a coroutine run as a task: `asyncio.current_task()`, its
//! own copy of the context variables, cancellation. Making an `asyncio.Task` per request gave it
//! that, at a price of about 10,000 of the 41,000 instructions of an RSGI GET on Python 3.11
//! (creating the task, registering it in asyncio's `WeakSet` of tasks, scheduling its first step,
//! its done-callback, freeing it; benchmarks/PROFILING.md). Most apps answer without ever waiting,
//! so most of that bought nothing.
//!
//! So the app's first step runs at once, in the bridge's job, in a fresh copy of the context,
//! with a *carrier* as the loop's current task: an `asyncio.Task` made ahead of need, whose
//! coroutine ([`AppRun`]) waits to be given an app. An app that answers in its first step never
//! needs a task of its own; the carrier stays for the next request. An app that waits is *adopted*
//! by the carrier: the carrier's coroutine takes over the app's coroutine, the value it yielded and
//! its context, and the carrier runs it from then on, as the task the app has already seen as
//! `current_task()`. The next request gets a new carrier.
//!
//! The carrier's coroutine tells the request's protocol object how the app ended ([`AppEnded`]),
//! in place of a done-callback, so the end costs no event-loop round trip either.
//!
//! When the app installed a task factory, or no task can be entered (asyncio's `_enter_task` is
//! missing or refuses), each request runs in a task made the usual way (`loop.create_task`), still
//! with [`AppRun`] as its coroutine.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

use pyo3::exceptions::asyncio::CancelledError;
use pyo3::exceptions::{PyException, PyStopIteration, PyTypeError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyModule, PyString};

/// How an app's coroutine ended.
pub enum AppOutcome {
    Returned,
    Raised(PyErr),
    Cancelled,
}

/// Called on the Python thread when an app's coroutine ends, with the protocol object the app was
/// started with (each interface downcasts it to its own type).
pub type AppEnded = fn(Python<'_>, &Bound<'_, PyAny>, AppOutcome);

/// The task the next request's first step runs under, and its coroutine.
struct Carrier {
    task: Py<PyAny>,
    run: Py<AppRun>,
}

/// Runs the apps of one worker's event loop.
pub struct AppTasks {
    event_loop: Py<PyAny>,
    task: Py<PyAny>,
    options: Py<PyDict>,
    create_task: Py<PyAny>,
    create_future: Py<PyAny>,
    get_task_factory: Py<PyAny>,
    iscoroutine: Py<PyAny>,
    /// asyncio's `_enter_task` and `_leave_task`; None where asyncio has no such functions.
    enter_leave: Option<(Py<PyAny>, Py<PyAny>)>,
    /// Only the loop's thread touches it: never contended.
    spare: Mutex<Option<Carrier>>,
}

impl AppTasks {
    /// The name of every task an app runs in (see `asyncio.Task.get_name`).
    pub const NAME: &'static str = "granian-app";

    pub fn new(py: Python<'_>, event_loop: &Bound<'_, PyAny>) -> PyResult<Self> {
        let asyncio = PyModule::import(py, "asyncio")?;
        let options = PyDict::new(py);
        options.set_item("loop", event_loop)?;
        options.set_item("name", Self::NAME)?;
        let tasks = asyncio.getattr("tasks")?;
        let enter_leave = match (tasks.getattr("_enter_task"), tasks.getattr("_leave_task")) {
            (Ok(enter), Ok(leave)) => Some((enter.unbind(), leave.unbind())),
            _ => None,
        };
        Ok(Self {
            event_loop: event_loop.clone().unbind(),
            task: asyncio.getattr("Task")?.unbind(),
            options: options.unbind(),
            create_task: event_loop.getattr("create_task")?.unbind(),
            create_future: event_loop.getattr("create_future")?.unbind(),
            get_task_factory: event_loop.getattr("get_task_factory")?.unbind(),
            iscoroutine: asyncio.getattr("iscoroutine")?.unbind(),
            enter_leave,
            spare: Mutex::new(None),
        })
    }

    /// Runs `coroutine`; `ended(py, owner, outcome)` hears how it ended.
    pub fn run(&self, py: Python<'_>, coroutine: Py<PyAny>, owner: Py<PyAny>, ended: AppEnded) -> PyResult<()> {
        // SAFETY: a type check of a live object.
        #[allow(unsafe_code)]
        let native = unsafe { ffi::PyCoro_CheckExact(coroutine.as_ptr()) } != 0;
        if !native && !self.iscoroutine.call1(py, (&coroutine,))?.is_truthy(py)? {
            let got = coroutine.bind(py).repr()?;
            return Err(PyTypeError::new_err(format!("a coroutine was expected, got {got}")));
        }
        let app = App { coroutine, owner, ended, context: None };
        if !self.get_task_factory.call0(py)?.is_none(py) {
            return self.in_new_task(py, app, true);
        }
        let Some(carrier) = self.carrier(py)? else {
            return self.in_new_task(py, app, false);
        };
        self.first_step(py, carrier, app)
    }

    /// The app in a task of its own, made by the app's task factory (`factory`) or directly.
    fn in_new_task(&self, py: Python<'_>, app: App, factory: bool) -> PyResult<()> {
        let run = Py::new(py, AppRun::adopted(app, None))?;
        if factory {
            self.create_task.bind(py).call1((run,))?;
        } else {
            self.task.bind(py).call((run,), Some(self.options.bind(py)))?;
        }
        Ok(())
    }

    /// The carrier for the next request: the spare, or a new one. None when tasks cannot be
    /// entered here.
    fn carrier(&self, py: Python<'_>) -> PyResult<Option<Carrier>> {
        if self.enter_leave.is_none() {
            return Ok(None);
        }
        let mut spare = self.spare.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(carrier) = spare.take() {
            // Something may have cancelled the idle carrier (an app cancelling every task).
            if !carrier.run.get().over.load(Ordering::Acquire) {
                return Ok(Some(carrier));
            }
        }
        drop(spare);
        let gate = self.create_future.call0(py)?;
        let run = Py::new(py, AppRun::waiting(gate))?;
        let task = self.task.bind(py).call((run.clone_ref(py),), Some(self.options.bind(py)))?;
        // An idle carrier left pending when the worker stops is not an error to report.
        task.setattr(pyo3::intern!(py, "_log_destroy_pending"), false)?;
        Ok(Some(Carrier { task: task.unbind(), run }))
    }

    /// Runs the app's first step with `carrier` as the current task; the carrier adopts the app
    /// when it waits, and stays spare when it does not.
    fn first_step(&self, py: Python<'_>, carrier: Carrier, mut app: App) -> PyResult<()> {
        let Some((enter, leave)) = &self.enter_leave else { unreachable!("carrier without _enter_task") };
        let event_loop = self.event_loop.bind(py);
        if enter.call1(py, (event_loop, &carrier.task)).is_err() {
            // Another task is current (a job run from inside a task): no first step here.
            *self.spare.lock().unwrap_or_else(|e| e.into_inner()) = Some(carrier);
            return self.in_new_task(py, app, false);
        }
        // SAFETY: a new reference to a copy of the current context, or null with an exception set.
        #[allow(unsafe_code)]
        let context = unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyContext_CopyCurrent()) };
        // While the first step runs, the carrier's coroutine looks like the app's to whoever
        // inspects the current task (anyio asks `getcoroutinestate(task.get_coro())`).
        let visiting = &carrier.run.get().visiting;
        *visiting.lock().unwrap_or_else(|e| e.into_inner()) = Some(app.coroutine.clone_ref(py));
        let step = context.and_then(|context| {
            let none = py.None().into_bound(py);
            let step = in_context(py, Some(&context), || send(py, &app.coroutine, &none));
            app.context = Some(context.unbind());
            step
        });
        visiting.lock().unwrap_or_else(|e| e.into_inner()).take();
        let left = leave.call1(py, (event_loop, &carrier.task));
        match step {
            Ok(Sent::Yielded(value)) => {
                carrier.run.get().adopt(py, app, value);
            }
            Ok(Sent::Returned) => {
                (app.ended)(py, app.owner.bind(py), AppOutcome::Returned);
                *self.spare.lock().unwrap_or_else(|e| e.into_inner()) = Some(carrier);
            }
            Err(err) => {
                (app.ended)(py, app.owner.bind(py), outcome_of(py, err));
                *self.spare.lock().unwrap_or_else(|e| e.into_inner()) = Some(carrier);
            }
        }
        left.map(drop)
    }
}

/// An app's coroutine and who to tell when it ends.
struct App {
    coroutine: Py<PyAny>,
    owner: Py<PyAny>,
    ended: AppEnded,
    /// The context its steps run in; None when its task's own context serves.
    context: Option<Py<PyAny>>,
}

/// What one step of a coroutine gave.
enum Sent {
    Yielded(Py<PyAny>),
    Returned,
}

/// Runs `f` in `context` when given.
fn in_context<T>(py: Python<'_>, context: Option<&Bound<'_, PyAny>>, f: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    let Some(context) = context else { return f() };
    // SAFETY: a live context object; entering fails only when it is already entered.
    #[allow(unsafe_code)]
    if unsafe { ffi::PyContext_Enter(context.as_ptr()) } != 0 {
        return Err(PyErr::fetch(py));
    }
    let result = f();
    // SAFETY: the context entered above, on this thread.
    #[allow(unsafe_code)]
    unsafe {
        ffi::PyContext_Exit(context.as_ptr());
    }
    result
}

/// One step of `coroutine`.
fn send(py: Python<'_>, coroutine: &Py<PyAny>, value: &Bound<'_, PyAny>) -> PyResult<Sent> {
    let mut result: *mut ffi::PyObject = std::ptr::null_mut();
    // SAFETY: both objects are alive; `result` receives a new reference on PYGEN_NEXT and
    // PYGEN_RETURN, and stays null on PYGEN_ERROR.
    #[allow(unsafe_code)]
    let status = unsafe { ffi::PyIter_Send(coroutine.as_ptr(), value.as_ptr(), &mut result) };
    match status {
        // SAFETY: a new reference, owned from here on.
        #[allow(unsafe_code)]
        ffi::PySendResult::PYGEN_NEXT => Ok(Sent::Yielded(unsafe { Bound::from_owned_ptr(py, result) }.unbind())),
        ffi::PySendResult::PYGEN_RETURN => {
            // SAFETY: as above; the app's return value is not used.
            #[allow(unsafe_code)]
            drop(unsafe { Bound::from_owned_ptr(py, result) });
            Ok(Sent::Returned)
        }
        ffi::PySendResult::PYGEN_ERROR => Err(PyErr::take(py).unwrap_or_else(|| PyStopIteration::new_err(()))),
    }
}

fn outcome_of(py: Python<'_>, err: PyErr) -> AppOutcome {
    if err.is_instance_of::<CancelledError>(py) {
        AppOutcome::Cancelled
    } else {
        AppOutcome::Raised(err)
    }
}

/// The coroutine of the task an app runs in ([`AppTasks`]). Until a carrier adopts an app it waits
/// on its gate, a future resolved by the adoption. After, it passes every step to the app's
/// coroutine (first handing its task the value the app yielded in its first step), in the app's
/// context, and when that ends tells the owner how.
///
/// An exception the app raised is the owner's to log; the task then ends normally, so asyncio does
/// not report it a second time ("exception was never retrieved"). Exceptions that are not
/// `Exception`s (`KeyboardInterrupt`, `SystemExit`) and cancellation still end the task with them.
/// Attributes it does not have (`cr_frame`, `cr_running`, `__qualname__`, ...) are the app
/// coroutine's, for tools that inspect a task's coroutine.
#[pyclass(frozen, module = "granian._core")]
pub struct AppRun {
    app: OnceLock<App>,
    /// The coroutine whose first step runs with this carrier as the current task, meanwhile.
    visiting: Mutex<Option<Py<PyAny>>>,
    /// What the app yielded in its first step, handed to the task by its first step after adoption.
    first_yield: Mutex<Option<Py<PyAny>>>,
    gate: Option<Py<PyAny>>,
    /// Whether the task is waiting on the gate.
    gated: AtomicBool,
    over: AtomicBool,
}

impl AppRun {
    fn waiting(gate: Py<PyAny>) -> Self {
        Self {
            app: OnceLock::new(),
            visiting: Mutex::new(None),
            first_yield: Mutex::new(None),
            gate: Some(gate),
            gated: AtomicBool::new(false),
            over: AtomicBool::new(false),
        }
    }

    fn adopted(app: App, first_yield: Option<Py<PyAny>>) -> Self {
        let run = Self {
            app: OnceLock::new(),
            visiting: Mutex::new(None),
            first_yield: Mutex::new(first_yield),
            gate: None,
            gated: AtomicBool::new(false),
            over: AtomicBool::new(false),
        };
        let _ = run.app.set(app);
        run
    }

    /// Takes over `app`, which yielded `value` in its first step, and wakes the task if it waits.
    fn adopt(&self, py: Python<'_>, app: App, value: Py<PyAny>) {
        *self.first_yield.lock().unwrap_or_else(|e| e.into_inner()) = Some(value);
        if self.app.set(app).is_err() {
            unreachable!("a carrier adopts one app");
        }
        if let (true, Some(gate)) = (self.gated.load(Ordering::Acquire), &self.gate) {
            // A gate already cancelled (someone cancelled the idle carrier) refuses: the task then
            // throws the cancellation into the app it adopted, as cancelling its task would.
            let _ = gate.call_method1(py, pyo3::intern!(py, "set_result"), (py.None(),));
        }
    }

    fn end(&self, py: Python<'_>, outcome: AppOutcome) {
        if !self.over.swap(true, Ordering::AcqRel) {
            if let Some(app) = self.app.get() {
                (app.ended)(py, app.owner.bind(py), outcome);
            }
        }
    }

    /// What a step of the app's coroutine gives the task: the value it yielded, or its end.
    fn step(&self, py: Python<'_>, sent: PyResult<Sent>) -> PyResult<Py<PyAny>> {
        match sent {
            Ok(Sent::Yielded(value)) => Ok(value),
            Ok(Sent::Returned) => {
                self.end(py, AppOutcome::Returned);
                Err(PyStopIteration::new_err(()))
            }
            Err(err) if err.is_instance_of::<PyStopIteration>(py) => {
                self.end(py, AppOutcome::Returned);
                Err(PyStopIteration::new_err(()))
            }
            Err(err) if err.is_instance_of::<CancelledError>(py) => {
                self.end(py, AppOutcome::Cancelled);
                Err(err)
            }
            Err(err) if err.is_instance_of::<PyException>(py) => {
                self.end(py, AppOutcome::Raised(err));
                Err(PyStopIteration::new_err(()))
            }
            Err(err) => {
                self.end(py, AppOutcome::Raised(err.clone_ref(py)));
                Err(err)
            }
        }
    }

    /// The gate, marked as a future the task must wait on (what `await` on a future does).
    fn wait_at_gate(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let Some(gate) = &self.gate else {
            return Err(PyStopIteration::new_err(()));
        };
        gate.setattr(py, pyo3::intern!(py, "_asyncio_future_blocking"), true)?;
        self.gated.store(true, Ordering::Release);
        Ok(gate.clone_ref(py))
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
        self.send(py, py.None().into_bound(py))
    }

    fn send(&self, py: Python<'_>, value: Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let Some(app) = self.app.get() else {
            return self.wait_at_gate(py);
        };
        if let Some(first) = self.first_yield.lock().unwrap_or_else(|e| e.into_inner()).take() {
            return Ok(first);
        }
        let context = app.context.as_ref().map(|context| context.bind(py));
        self.step(py, in_context(py, context, || send(py, &app.coroutine, &value)))
    }

    #[pyo3(signature = (kind, value=None, traceback=None))]
    fn throw(
        &self,
        py: Python<'_>,
        kind: Py<PyAny>,
        value: Option<Py<PyAny>>,
        traceback: Option<Py<PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let Some(app) = self.app.get() else {
            // Cancelled (or failed) while waiting for an app: this carrier is done.
            self.over.store(true, Ordering::Release);
            let err = match value {
                Some(value) if !value.is_none(py) => PyErr::from_value(value.into_bound(py)),
                _ => PyErr::from_value(kind.into_bound(py)),
            };
            return Err(err);
        };
        // A value the task has not handed over yet is dropped: the app gets the exception instead.
        self.first_yield.lock().unwrap_or_else(|e| e.into_inner()).take();
        let method = pyo3::intern!(py, "throw");
        let context = app.context.as_ref().map(|context| context.bind(py));
        let thrown = in_context(py, context, || match (value, traceback) {
            (None, None) => app.coroutine.call_method1(py, method, (kind,)),
            (value, None) => app.coroutine.call_method1(py, method, (kind, value)),
            (value, traceback) => app.coroutine.call_method1(py, method, (kind, value, traceback)),
        });
        self.step(py, thrown.map(Sent::Yielded))
    }

    fn close(&self, py: Python<'_>) -> PyResult<()> {
        match self.app.get() {
            Some(app) => app.coroutine.call_method0(py, pyo3::intern!(py, "close")).map(drop),
            None => Ok(()),
        }
    }

    fn __getattr__(&self, py: Python<'_>, name: &Bound<'_, PyString>) -> PyResult<Py<PyAny>> {
        let coroutine = match self.app.get() {
            Some(app) => app.coroutine.clone_ref(py),
            None => match &*self.visiting.lock().unwrap_or_else(|e| e.into_inner()) {
                Some(coroutine) => coroutine.clone_ref(py),
                None => return Err(pyo3::exceptions::PyAttributeError::new_err(name.clone().unbind())),
            },
        };
        coroutine.getattr(py, name)
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<AppRun>()
}
