//! The bridge between tokio threads and the thread that runs the Python event loop.
//!
//! Tokio threads never take the GIL to hand work to Python. They push a [`Job`] onto the
//! [`LoopBridge`] queue; the first push after a drain writes one byte to a socket pair whose read end
//! the event loop watches (`loop.add_reader`). The loop then runs the queued jobs, so a burst of
//! requests costs one wake-up and one GIL hand-over. It runs at most [`JOBS_PER_TURN`] of them per
//! callback and schedules itself with `loop.call_soon` for the rest, behind what those jobs'
//! apps scheduled: a burst of 128 requests would otherwise create the objects of 128 apps before any of
//! them ran, and every such burst set off Python's cyclic garbage collector (benchmarks/PROFILING.md,
//! "Instructions per request").
//!
//! Results that Python awaits come back the same way: [`PyLoop::spawn_awaitable`] runs a Rust future
//! on tokio and resolves an asyncio future through the bridge; results that are ready at once are
//! returned as a [`ReadyAwaitable`], which costs no event-loop round trip at all.

use std::collections::VecDeque;
use std::future::Future;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use pyo3::exceptions::PyStopIteration;
use pyo3::prelude::*;
use pyo3::types::PyModule;
use tokio::runtime::Handle;
use tokio::sync::oneshot;

use crate::apptask::{AppEnded, AppOutcome, AppTasks};
use crate::errands::{Errand, Errands};
use crate::errors::CoreError;
use crate::http::ResponseIntent;

/// Work to run on the Python thread, with the GIL held.
pub type Job = Box<dyn FnOnce(Python<'_>) + Send>;

/// Work done whenever a thread holding the GIL finishes a batch: the event loop after running the
/// bridge's jobs, a blocking-pool thread after a run of requests. For output that may wait a little
/// and should not wake Python on its own (access log lines).
#[derive(Default)]
pub struct Chores {
    work: OnceLock<Chore>,
}

/// The work of [`Chores`].
pub type Chore = Box<dyn Fn(Python<'_>) + Send + Sync>;

impl Chores {
    /// Sets the work (once per worker).
    pub fn set(&self, work: Chore) {
        let _ = self.work.set(work);
    }

    pub fn run(&self, py: Python<'_>) {
        if let Some(work) = self.work.get() {
            work(py);
        }
    }
}

/// Jobs the event loop runs per callback before it lets the tasks they started run. A started
/// ASGI request holds 10 to 20 objects the garbage collector tracks (scope, headers, coroutine,
/// task, callbacks) until its app has run; 32 of them stay under the collector's first threshold
/// (700 allocations), so a burst no longer sets off a collection that finds every request in
/// flight alive and promotes it to an older generation.
pub const JOBS_PER_TURN: usize = 32;

/// A queue of jobs for the Python thread plus the socket pair that wakes its event loop.
pub struct LoopBridge {
    queue: Mutex<Vec<Job>>,
    /// Jobs taken from `queue` and not run yet (the loop runs [`JOBS_PER_TURN`] per callback).
    /// Only the Python thread touches it.
    carried: Mutex<VecDeque<Job>>,
    wake_pending: AtomicBool,
    /// Turns that ran at least one job, for [`OutboxFlush`].
    turns: AtomicUsize,
    wake_writer: UnixStream,
    wake_reader: UnixStream,
    /// Run after every batch of jobs.
    pub chores: Arc<Chores>,
}

impl LoopBridge {
    pub fn new() -> std::io::Result<Arc<Self>> {
        let (wake_reader, wake_writer) = UnixStream::pair()?;
        wake_reader.set_nonblocking(true)?;
        wake_writer.set_nonblocking(true)?;
        Ok(Arc::new(Self {
            queue: Mutex::new(Vec::with_capacity(64)),
            carried: Mutex::new(VecDeque::with_capacity(64)),
            wake_pending: AtomicBool::new(false),
            turns: AtomicUsize::new(0),
            wake_writer,
            wake_reader,
            chores: Arc::default(),
        }))
    }

    /// Queues a job; wakes the event loop only if it is not already due to drain the queue.
    pub fn push(&self, job: Job) {
        self.queue.lock().unwrap_or_else(|e| e.into_inner()).push(job);
        if !self.wake_pending.swap(true, Ordering::AcqRel) {
            self.wake();
        }
    }

    /// Like [`LoopBridge::push`], but from a tokio task: the wake-up is written by a task queued
    /// behind the ones already runnable, so requests read in the same runtime tick reach Python
    /// as one batch instead of waking it (and switching threads) once each.
    pub fn push_batched(self: &Arc<Self>, job: Job) {
        self.queue.lock().unwrap_or_else(|e| e.into_inner()).push(job);
        if !self.wake_pending.swap(true, Ordering::AcqRel) {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    // The task wakes the loop when it runs, or when it is dropped unrun because the
                    // runtime is ending (the last jobs of a drain): the flag must never stay set
                    // without a wake-up on its way.
                    let wake = WakeOnDrop(self.clone());
                    runtime.spawn(async move { drop(wake) });
                }
                Err(_) => self.wake(),
            }
        }
    }

    fn wake(&self) {
        // A full socket buffer means a wake-up byte is already waiting: nothing is lost.
        let _ = (&self.wake_writer).write(&[1]);
    }

    /// The descriptor the event loop watches for readability.
    pub fn wake_fd(&self) -> i32 {
        self.wake_reader.as_raw_fd()
    }

    /// Runs queued jobs, oldest first, at most [`JOBS_PER_TURN`]; true when some are left for
    /// the next call. Called by the event loop when the wake descriptor is readable, and again
    /// through `call_soon` while jobs are left.
    pub fn run_pending(&self, py: Python<'_>) -> bool {
        // Order matters. Consume the wake-up bytes first, then clear the flag, then take the queue:
        // a push racing with us either lands in this batch or sees the flag cleared and writes a
        // byte for the next one. Clearing the flag before reading could swallow that byte while
        // the flag stays set, and no push would ever wake the loop again.
        // A continuation turn reads too, although its jobs are already carried: taking what came
        // meanwhile here keeps the loop from running a second turn of 32 in the same iteration
        // for the wake-up byte, which brought the garbage collections back (PROFILING.md).
        let mut sink = [0u8; 256];
        while matches!((&self.wake_reader).read(&mut sink), Ok(n) if n > 0) {}
        self.wake_pending.store(false, Ordering::Release);
        let queued = std::mem::take(&mut *self.queue.lock().unwrap_or_else(|e| e.into_inner()));
        self.carried().extend(queued);
        let carried = || self.carried();
        for ran in 0..JOBS_PER_TURN {
            // The lock is not held while a job runs (a job may run Python code for a long time).
            let Some(job) = carried().pop_front() else { break };
            if ran == 0 {
                self.turns.fetch_add(1, Ordering::Relaxed);
            }
            job(py);
        }
        self.chores.run(py);
        !carried().is_empty()
    }

    /// Turns run so far that ran at least one job (only the Python thread counts them).
    pub fn turns(&self) -> usize {
        self.turns.load(Ordering::Relaxed)
    }

    fn carried(&self) -> std::sync::MutexGuard<'_, VecDeque<Job>> {
        self.carried.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Wakes the event loop when dropped.
struct WakeOnDrop(Arc<LoopBridge>);

impl Drop for WakeOnDrop {
    fn drop(&mut self) {
        self.0.wake();
    }
}

/// The callable registered with `loop.add_reader`; it schedules itself with `call_soon` while
/// jobs are left over.
#[pyclass(frozen, module = "granian._core")]
pub struct BridgeDrain {
    bridge: Arc<LoopBridge>,
    call_soon: Py<PyAny>,
}

#[pymethods]
impl BridgeDrain {
    fn __call__(slf: &Bound<'_, Self>) {
        let py = slf.py();
        let drain = slf.get();
        if drain.bridge.run_pending(py) && drain.call_soon.call1(py, (slf,)).is_err() {
            // The loop is closing: run what is left now rather than never.
            while drain.bridge.run_pending(py) {}
        }
    }
}

/// An awaitable whose result is already known: `await` returns it without suspending.
#[pyclass(frozen, module = "granian._core")]
pub struct ReadyAwaitable {
    outcome: Mutex<Option<PyResult<Py<PyAny>>>>,
}

impl ReadyAwaitable {
    pub fn ok(py: Python<'_>, value: Py<PyAny>) -> PyResult<Py<PyAny>> {
        Ok(Py::new(py, Self { outcome: Mutex::new(Some(Ok(value))) })?.into_any())
    }

    pub fn err(py: Python<'_>, err: PyErr) -> PyResult<Py<PyAny>> {
        Ok(Py::new(py, Self { outcome: Mutex::new(Some(Err(err))) })?.into_any())
    }
}

#[pymethods]
impl ReadyAwaitable {
    fn __await__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// `None` (no value) ends the iteration without an exception: the `await` reads that as a
    /// result of None, and a raised `StopIteration` would cost about a thousand instructions
    /// (pyo3 makes and normalizes the exception; the interpreter fetches and frees it).
    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        let outcome = self.outcome.lock().unwrap_or_else(|e| e.into_inner()).take();
        match outcome {
            Some(Ok(value)) if !value.is_none(py) => Err(PyStopIteration::new_err((value,))),
            Some(Ok(_)) | None => Ok(None),
            Some(Err(err)) => Err(err),
        }
    }
}

/// The Python thread's [`Errands`] of one event-loop iteration: the first errand of an iteration
/// schedules a flush with `loop.call_soon`, which runs in the loop's next iteration, after the
/// callbacks already queued; [`OutboxFlush`] may wait a few iterations more.
#[derive(Default)]
struct Outbox {
    errands: Mutex<Errands>,
    /// The bridge's turn count when the pending flush was scheduled or last deferred.
    turns_seen: AtomicUsize,
    deferrals: AtomicUsize,
}

impl Outbox {
    /// Queues an errand; true when it is the first since the last flush, which the caller must
    /// then schedule. `turns` is the bridge's turn count now.
    fn push(&self, runtime: &Handle, errand: Errand, turns: usize) -> bool {
        let first = self.errands.lock().unwrap_or_else(|e| e.into_inner()).push(runtime, errand);
        if first {
            self.turns_seen.store(turns, Ordering::Relaxed);
            self.deferrals.store(0, Ordering::Relaxed);
        }
        first
    }

    /// Whether the flush should wait one more iteration: a turn ran since it was scheduled (or
    /// last deferred), or another turn is queued (`more_turns`: the jobs of a burst left for it,
    /// whose apps mostly answer in that turn), and it has not waited [`MAX_FLUSH_DEFERRALS`]
    /// times yet.
    fn defer(&self, turns: usize, more_turns: bool) -> bool {
        if (turns == self.turns_seen.load(Ordering::Relaxed) && !more_turns)
            || self.deferrals.load(Ordering::Relaxed) >= MAX_FLUSH_DEFERRALS
        {
            return false;
        }
        self.turns_seen.store(turns, Ordering::Relaxed);
        self.deferrals.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Only the Python thread pushes and flushes: the lock is never contended, and holding it
    /// while handing over keeps the queue's allocation for the next iteration.
    fn flush(&self) {
        self.errands.lock().unwrap_or_else(|e| e.into_inner()).flush();
    }
}

/// Times a flush waits for one more event-loop iteration because the bridge ran a turn of jobs
/// after it was scheduled: a burst of up to this many turns (128 requests) reaches tokio in one
/// hand-over, and a steady stream of new jobs cannot hold responses back for longer.
pub const MAX_FLUSH_DEFERRALS: usize = 4;

/// The callable `loop.call_soon` runs to flush the outbox.
///
/// When the bridge ran a turn of jobs after the flush was scheduled (apps that waited in their
/// first step answer in a later iteration), or holds jobs for another turn (whose apps mostly
/// answer within it), the flush waits for them (at most [`MAX_FLUSH_DEFERRALS`] times). Handing over after each turn of
/// [`JOBS_PER_TURN`] jobs woke the tokio thread once per 32 requests instead of once per burst,
/// which cost pipelined HTTP/1 a fifth of its throughput on one core (benchmarks/PROFILING.md).
/// A flush scheduled with no turn behind it (a lone request) still runs in the next iteration.
#[pyclass(frozen, module = "granian._core")]
pub struct OutboxFlush {
    outbox: Arc<Outbox>,
    bridge: Arc<LoopBridge>,
    call_soon: Py<PyAny>,
}

#[pymethods]
impl OutboxFlush {
    fn __call__(slf: &Bound<'_, Self>) {
        let flush = slf.get();
        let more_turns = !flush.bridge.carried().is_empty();
        if flush.outbox.defer(flush.bridge.turns(), more_turns) && flush.call_soon.call1(slf.py(), (slf,)).is_ok() {
            return;
        }
        flush.outbox.flush();
    }
}

/// An awaitable that is already finished with `None`. It holds no state, so one object serves
/// every `await` (acknowledging a send costs no allocation).
#[pyclass(frozen, module = "granian._core")]
pub struct DoneAwaitable;

#[pymethods]
impl DoneAwaitable {
    fn __await__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// Ends at once, with no exception (see [`ReadyAwaitable`]'s `__next__`).
    fn __next__(&self) -> Option<Py<PyAny>> {
        None
    }
}

/// Turns the outcome of tokio-side work into the Python result (or exception) of an awaitable,
/// on the Python thread. Each interface decides which exception a [`CoreError`] becomes.
pub type Settle<T> = fn(Python<'_>, Result<T, CoreError>) -> PyResult<Py<PyAny>>;

/// One worker's view of its Python event loop.
pub struct PyLoop {
    pub bridge: Arc<LoopBridge>,
    event_loop: Py<PyAny>,
    create_future: Py<PyAny>,
    tasks: AppTasks,
    call_soon: Py<PyAny>,
    done: Py<DoneAwaitable>,
    outbox: Arc<Outbox>,
    outbox_flush: Py<OutboxFlush>,
    logger: Py<PyAny>,
}

impl PyLoop {
    /// Binds to `event_loop` and registers the bridge's wake descriptor with it.
    pub fn attach(py: Python<'_>, event_loop: &Bound<'_, PyAny>) -> PyResult<Arc<Self>> {
        let bridge = LoopBridge::new().map_err(CoreError::from)?;
        let call_soon = event_loop.getattr("call_soon")?.unbind();
        let drain = Py::new(py, BridgeDrain { bridge: bridge.clone(), call_soon: call_soon.clone_ref(py) })?;
        event_loop.call_method1("add_reader", (bridge.wake_fd(), drain))?;
        let logger = PyModule::import(py, "logging")?.call_method1("getLogger", ("_granian",))?;
        let outbox = Arc::new(Outbox::default());
        let outbox_flush = Py::new(
            py,
            OutboxFlush { outbox: outbox.clone(), bridge: bridge.clone(), call_soon: call_soon.clone_ref(py) },
        )?;
        Ok(Arc::new(Self {
            bridge,
            event_loop: event_loop.clone().unbind(),
            create_future: event_loop.getattr("create_future")?.unbind(),
            tasks: AppTasks::new(py, event_loop)?,
            call_soon,
            done: Py::new(py, DoneAwaitable)?,
            outbox,
            outbox_flush,
            logger: logger.unbind(),
        }))
    }

    /// Stops watching the wake descriptor (the worker is done).
    pub fn detach(&self, py: Python<'_>) -> PyResult<()> {
        self.event_loop.call_method1(py, "remove_reader", (self.bridge.wake_fd(),))?;
        Ok(())
    }

    /// Hands a response to the tokio side at the end of this event-loop iteration.
    /// `runtime` is the one the request arrived on (its [`crate::dispatch::RequestIo::runtime`]).
    pub fn deliver(
        &self,
        py: Python<'_>,
        runtime: &Handle,
        sender: oneshot::Sender<ResponseIntent>,
        intent: ResponseIntent,
    ) {
        self.send_errand(py, runtime, Errand::Deliver(sender, intent));
    }

    /// Queues `errand` in the outbox and makes sure a flush is on its way.
    fn send_errand(&self, py: Python<'_>, runtime: &Handle, errand: Errand) {
        if self.outbox.push(runtime, errand, self.bridge.turns())
            && self.call_soon.call1(py, (self.outbox_flush.clone_ref(py),)).is_err()
        {
            // The loop is closing: hand it over now rather than never.
            self.outbox.flush();
        }
    }

    /// An awaitable for a result known now: `None` costs nothing, anything else one small object.
    pub fn ready(&self, py: Python<'_>, result: PyResult<Py<PyAny>>) -> PyResult<Py<PyAny>> {
        match result {
            Ok(value) if value.is_none(py) => Ok(self.done(py)),
            Ok(value) => ReadyAwaitable::ok(py, value),
            Err(err) => ReadyAwaitable::err(py, err),
        }
    }

    /// An awaitable that returns `None` at once.
    pub fn done(&self, py: Python<'_>) -> Py<PyAny> {
        self.done.clone_ref(py).into_any()
    }

    pub fn create_future(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.create_future.call0(py)
    }

    /// Starts an app for one request: `call` calls it and returns its coroutine and the protocol
    /// object that `ended` is told about when the coroutine ends ([`crate::apptask`]). When the app
    /// cannot even start, logs why and runs `failed` (which answers the request).
    pub fn start_app(
        &self,
        py: Python<'_>,
        call: impl FnOnce() -> PyResult<(Py<PyAny>, Py<PyAny>)>,
        ended: AppEnded,
        failed: impl FnOnce(),
    ) {
        let started = call().and_then(|(coroutine, owner)| self.tasks.run(py, coroutine, owner, ended));
        if let Err(err) = started {
            self.log_error(py, "Application callable raised an exception", Some(err.value(py).as_any()));
            failed();
        }
    }

    /// Whether an app that ended this way failed. Its exception is logged unless `expected(exc)`
    /// says it is part of normal operation (a client that went away).
    pub fn app_failed(
        &self,
        py: Python<'_>,
        outcome: &AppOutcome,
        expected: impl Fn(&Bound<'_, PyAny>) -> bool,
    ) -> bool {
        match outcome {
            AppOutcome::Returned => false,
            AppOutcome::Cancelled => true,
            AppOutcome::Raised(err) => {
                let exc = err.value(py);
                if !expected(exc.as_any()) {
                    self.log_error(py, "Application callable raised an exception", Some(exc.as_any()));
                }
                true
            }
        }
    }

    /// Logs an error through the `_granian` logger, with the traceback of `err` when given.
    pub fn log_error(&self, py: Python<'_>, message: &str, err: Option<&Bound<'_, PyAny>>) {
        let kwargs = pyo3::types::PyDict::new(py);
        if let Some(err) = err {
            let _ = kwargs.set_item("exc_info", err);
        }
        if self.logger.call_method(py, "error", (message,), Some(&kwargs)).is_err() {
            eprintln!("granian: {message}");
        }
    }

    /// Whether the granian logger writes debug records (checked once, when a worker starts).
    pub fn debug_enabled(&self, py: Python<'_>) -> bool {
        self.logger.call_method1(py, "isEnabledFor", (10,)).and_then(|enabled| enabled.is_truthy(py)).unwrap_or(false)
    }

    /// Logs a debug record from any thread: the record is written by the Python thread.
    pub fn log_debug_from_any_thread(self: &Arc<Self>, message: String) {
        let this = self.clone();
        self.bridge.push(Box::new(move |py| {
            let _ = this.logger.call_method1(py, "debug", (message,));
        }));
    }

    /// Logs a warning through the `_granian` logger.
    pub fn log_warning(&self, py: Python<'_>, message: &str) {
        let _ = self.logger.call_method1(py, "warning", (message,));
    }

    /// Logs a warning at once from a thread that is not the loop's (for news the loop cannot give
    /// because it is not running): takes the GIL here rather than queueing the record.
    pub fn log_warning_now(&self, message: &str) {
        Python::attach(|py| self.log_warning(py, message));
    }

    /// Logs from any thread: the record is written by the Python thread.
    pub fn log_error_from_any_thread(self: &Arc<Self>, message: String) {
        let this = self.clone();
        self.bridge.push(Box::new(move |py| this.log_error(py, &message, None)));
    }

    /// Runs `work` on tokio (started at the end of this event-loop iteration, with the other
    /// errands for `runtime`) and returns an asyncio future settled with its outcome.
    pub fn spawn_awaitable<T, F>(
        self: &Arc<Self>,
        py: Python<'_>,
        runtime: &tokio::runtime::Handle,
        work: F,
        settle: Settle<T>,
    ) -> PyResult<Py<PyAny>>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, CoreError>> + Send + 'static,
    {
        let future = self.create_future.call0(py)?;
        let target = future.clone_ref(py);
        let bridge = self.bridge.clone();
        let run = async move {
            let outcome = work.await;
            bridge.push_batched(Box::new(move |py| resolve_future(py, target.bind(py), settle(py, outcome))));
        };
        self.send_errand(py, runtime, Errand::Run(Box::pin(run)));
        Ok(future)
    }
}

/// Sets the result or exception of an asyncio future unless it was cancelled meanwhile.
pub fn resolve_future(py: Python<'_>, future: &Bound<'_, PyAny>, result: PyResult<Py<PyAny>>) {
    let outcome = match result {
        Ok(value) => future.call_method1(pyo3::intern!(py, "set_result"), (value,)),
        Err(err) => future.call_method1(pyo3::intern!(py, "set_exception"), (err.value(py),)),
    };
    // InvalidStateError: the awaiting task was cancelled and the future with it.
    drop(outcome);
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<ReadyAwaitable>()?;
    m.add_class::<BridgeDrain>()?;
    m.add_class::<OutboxFlush>()?;
    m.add_class::<DoneAwaitable>()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errand() -> Errand {
        Errand::Run(Box::pin(async {}))
    }

    #[test]
    fn a_flush_waits_while_turns_run_behind_it_and_at_most_max_flush_deferrals_times() {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let outbox = Outbox::default();
        // Scheduled at turn 7; no turn since: the flush runs now (a lone request).
        assert!(outbox.push(runtime.handle(), errand(), 7));
        assert!(!outbox.push(runtime.handle(), errand(), 7));
        assert!(!outbox.defer(7, false));
        outbox.flush();
        // Scheduled at turn 7, and turns keep running behind it: it waits for each, up to the limit.
        assert!(outbox.push(runtime.handle(), errand(), 7));
        for turn in 8..8 + MAX_FLUSH_DEFERRALS {
            assert!(outbox.defer(turn, false));
        }
        assert!(!outbox.defer(100, false));
        outbox.flush();
        // The next flush starts counting afresh; once the turns stop, it runs.
        assert!(outbox.push(runtime.handle(), errand(), 100));
        assert!(outbox.defer(101, false));
        assert!(!outbox.defer(101, false));
        outbox.flush();
        // Scheduled in the turn that is still the last, with jobs queued for the next: it waits for
        // those turns (apps that answer in their first step answer in them), up to the limit.
        assert!(outbox.push(runtime.handle(), errand(), 200));
        for _ in 0..MAX_FLUSH_DEFERRALS {
            assert!(outbox.defer(200, true));
        }
        assert!(!outbox.defer(200, true));
    }
}
