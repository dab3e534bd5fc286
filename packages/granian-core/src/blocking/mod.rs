//! The pool of threads that run blocking (WSGI) application code.
//!
//! Each thread keeps one Python thread state for its life and holds the GIL while it has work:
//! consecutive requests cost no GIL hand-over, and the responses of a run of requests are handed to
//! tokio together, never held longer than about a millisecond behind another app ([`held`]). The
//! GIL is released while a thread waits for work or for the network.
//!
//! The pool grows on demand, up to `max_threads`, but only when work stalls: a request that waits
//! while no thread took any work for [`STALL`] means every thread is blocked (in I/O, a sleep, a
//! long streaming response), and a new thread helps. A busy CPU-bound thread keeps taking work, so
//! it is never joined by threads that would only fight it for the GIL. Threads idle for
//! `idle_timeout` exit, down to one.
//!
//! One watcher task per pool does both periodic checks on the runtime: it runs every [`HOLD_MAX`]
//! while work is queued or a thread holds responses, hands over batches held too long and adds a
//! thread when the queue stalls, and stops when there is nothing left to watch.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use pyo3::prelude::*;

mod held;

pub use held::{flush_before_waiting, run_before_waiting, Deliveries};

use held::{Holders, BATCH, HOLD_MAX};

use crate::metrics::{Field, WorkerMetrics};
use crate::pyloop::Chores;

/// How long queued work may see no progress before the pool adds a thread.
pub const STALL: Duration = Duration::from_millis(2);

/// Work for a pool thread: runs with the GIL held.
pub type BlockingJob = Box<dyn FnOnce(Python<'_>, &mut Deliveries) + Send>;

struct PoolState {
    queue: VecDeque<BlockingJob>,
    threads: usize,
    idle: usize,
    closed: bool,
}

struct Shared {
    state: Mutex<PoolState>,
    work_ready: Condvar,
    max_threads: usize,
    idle_timeout: Duration,
    /// Jobs taken so far: the watcher checks that it moves.
    taken: AtomicU64,
    watcher_running: AtomicBool,
    wake_scheduled: AtomicBool,
    /// Done after each run of requests, while the thread still holds the GIL.
    chores: Arc<Chores>,
    /// The threads' batches of responses.
    holders: Arc<Holders>,
    metrics: Option<WorkerMetrics>,
}

/// The pool's job count as last seen by the watcher, and when it last moved.
struct Progress {
    taken: u64,
    at: Instant,
}

/// The blocking thread pool of one worker.
#[derive(Clone)]
pub struct BlockingPool {
    shared: Arc<Shared>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn take(&self, state: &mut PoolState) -> Option<BlockingJob> {
        let job = state.queue.pop_front();
        if job.is_some() {
            self.taken.fetch_add(1, Ordering::Relaxed);
            self.gauge(Field::BlockingQueue, state.queue.len());
        }
        job
    }

    fn gauge(&self, field: Field, value: usize) {
        if let Some(metrics) = &self.metrics {
            metrics.set(field, value as u64);
        }
    }

    fn thread_ended(&self, state: &mut PoolState) {
        state.threads -= 1;
        self.gauge(Field::BlockingThreads, state.threads);
    }

    /// Blocks (GIL released by the caller) until there is work; `None` tells the thread to exit.
    fn wait_for_work(&self) -> Option<BlockingJob> {
        let mut state = self.lock();
        loop {
            if let Some(job) = self.take(&mut state) {
                return Some(job);
            }
            if state.closed {
                self.thread_ended(&mut state);
                return None;
            }
            state.idle += 1;
            let (next, wait) =
                self.work_ready.wait_timeout(state, self.idle_timeout).unwrap_or_else(|e| e.into_inner());
            state = next;
            state.idle -= 1;
            if wait.timed_out() && state.queue.is_empty() && state.threads > 1 {
                self.thread_ended(&mut state);
                return None;
            }
        }
    }
}

fn run_thread(shared: Arc<Shared>) {
    Python::attach(|py| {
        let mut deliveries = shared.holders.join();
        loop {
            let next = shared.take(&mut shared.lock());
            let job = match next {
                Some(job) => job,
                None => {
                    deliveries.flush();
                    shared.chores.run(py);
                    let idle = Instant::now();
                    let (job, woke) = py.detach(|| (shared.wait_for_work(), Instant::now()));
                    if let Some(metrics) = &shared.metrics {
                        metrics.add_duration(Field::BlockingIdleMicros, woke - idle);
                        metrics.add_duration(Field::PythonWaitMicros, woke.elapsed());
                    }
                    match job {
                        Some(job) => job,
                        None => break,
                    }
                }
            };
            let busy = shared.metrics.as_ref().map(|_| Instant::now());
            job(py, &mut deliveries);
            if let (Some(metrics), Some(busy)) = (&shared.metrics, busy) {
                metrics.add_duration(Field::BlockingBusyMicros, busy.elapsed());
            }
            if deliveries.len() >= BATCH {
                deliveries.flush();
                shared.chores.run(py);
            }
        }
        deliveries.flush();
    });
}

impl BlockingPool {
    pub fn new(
        max_threads: usize,
        idle_timeout: Duration,
        chores: Arc<Chores>,
        metrics: Option<WorkerMetrics>,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                state: Mutex::new(PoolState { queue: VecDeque::new(), threads: 0, idle: 0, closed: false }),
                work_ready: Condvar::new(),
                max_threads: max_threads.max(1),
                idle_timeout,
                taken: AtomicU64::new(0),
                watcher_running: AtomicBool::new(false),
                wake_scheduled: AtomicBool::new(false),
                chores,
                holders: Holders::new(),
                metrics,
            }),
        }
    }

    fn spawn_thread(&self, state: &mut PoolState) {
        let shared = self.shared.clone();
        let spawned = std::thread::Builder::new().name("granian-blocking".into()).spawn(move || run_thread(shared));
        if spawned.is_ok() {
            state.threads += 1;
            self.shared.gauge(Field::BlockingThreads, state.threads);
        }
    }

    /// Queues a job (called from tokio).
    pub fn push(&self, job: BlockingJob) {
        let mut state = self.shared.lock();
        state.queue.push_back(job);
        self.shared.gauge(Field::BlockingQueue, state.queue.len());
        if state.idle > 0 {
            drop(state);
            self.wake_idle_thread();
        } else if state.threads == 0 {
            self.spawn_thread(&mut state);
        } else {
            drop(state);
        }
        // Until a thread takes it, and while that thread holds other requests' responses.
        self.watch();
    }

    /// Wakes an idle thread from a task queued behind the runnable ones, so the requests read in
    /// one runtime tick wake the pool once (waking at once would switch threads per request).
    fn wake_idle_thread(&self) {
        if self.shared.wake_scheduled.swap(true, Ordering::AcqRel) {
            return;
        }
        let shared = self.shared.clone();
        let wake = move || {
            shared.wake_scheduled.store(false, Ordering::Release);
            shared.work_ready.notify_one();
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn(async move { wake() })),
            Err(_) => wake(),
        }
    }

    /// Makes sure the watcher runs (an atomic operation while it does, one local task spawn when
    /// it does not).
    fn watch(&self) {
        if self.shared.watcher_running.swap(true, Ordering::SeqCst) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.shared.watcher_running.store(false, Ordering::SeqCst);
            return;
        };
        let pool = self.clone();
        runtime.spawn(async move {
            let mut progress = Progress { taken: pool.shared.taken.load(Ordering::Relaxed), at: Instant::now() };
            loop {
                tokio::time::sleep(HOLD_MAX).await;
                let holding = pool.shared.holders.deliver_overdue();
                if pool.check_progress(&mut progress) || holding {
                    continue;
                }
                pool.shared.watcher_running.store(false, Ordering::SeqCst);
                // Work queued or a response held between the checks and the store went unwatched.
                let missed = pool.shared.holders.holding() || !pool.shared.lock().queue.is_empty();
                if !missed || pool.shared.watcher_running.swap(true, Ordering::SeqCst) {
                    return;
                }
            }
        });
    }

    /// True while work is queued; adds a thread (or wakes an idle one) when no job was taken for
    /// [`STALL`].
    fn check_progress(&self, last: &mut Progress) -> bool {
        let taken = self.shared.taken.load(Ordering::Relaxed);
        let mut state = self.shared.lock();
        if state.queue.is_empty() || taken != last.taken {
            *last = Progress { taken, at: Instant::now() };
            return !state.queue.is_empty();
        }
        if last.at.elapsed() >= STALL {
            last.at = Instant::now();
            if state.idle > 0 {
                self.shared.work_ready.notify_one();
            } else if state.threads < self.shared.max_threads && !state.closed {
                self.spawn_thread(&mut state);
            }
        }
        true
    }

    /// Lets the threads exit once the queue is empty.
    pub fn close(&self) {
        self.shared.lock().closed = true;
        self.shared.work_ready.notify_all();
    }
}
