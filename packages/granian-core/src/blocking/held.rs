//! The responses a blocking thread has made and not yet handed to tokio.
//!
//! A thread that finds more work queued runs it before handing over the responses it made, so a
//! run of requests costs one tokio wake-up per batch (of up to [`BATCH`]) instead of one per
//! response. What it holds must not wait on the next app, though: the thread hands its batch over
//! before it waits for work, for a request body or for a slow reader of a streamed response, and
//! the pool's watcher task on the runtime takes over a batch held longer than [`HOLD_MAX`] (the app
//! the thread runs meanwhile sleeps, queries a database or computes).

use std::cell::RefCell;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::runtime::Handle;
use tokio::sync::oneshot;

use crate::errands::{Errand, Errands, TokioWork};
use crate::http::ResponseIntent;

/// Most responses a thread holds back before handing them to tokio.
pub const BATCH: usize = 16;

/// Longest a finished response waits in a batch while its thread runs another app (plus up to one
/// watcher period).
pub const HOLD_MAX: Duration = Duration::from_millis(1);

thread_local! {
    /// The batch of the pool thread this is (none on other threads).
    static CURRENT: RefCell<Option<Arc<Held>>> = const { RefCell::new(None) };
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// One thread's batch.
#[derive(Default)]
struct Held {
    errands: Mutex<Errands>,
    /// When the oldest errand held was queued, in microseconds since [`Holders::epoch`] (at least
    /// 1); 0 while nothing is held.
    since: AtomicU64,
}

impl Held {
    /// Queues `errand`; `now` is read only for the first errand of a batch (it dates the batch).
    fn push(&self, runtime: &Handle, errand: Errand, now: impl FnOnce() -> u64) -> usize {
        let mut errands = lock(&self.errands);
        if errands.push(runtime, errand) {
            self.since.store(now(), Ordering::Release);
        }
        errands.len()
    }

    /// Takes the batch out. It is handed over with the lock released: dropping a response whose
    /// client is gone may free Python objects, and with them run Python code.
    fn take(&self) -> Errands {
        let mut errands = lock(&self.errands);
        self.since.store(0, Ordering::Release);
        std::mem::take(&mut *errands)
    }

    fn flush(&self) {
        let mut batch = self.take();
        if !batch.is_empty() {
            batch.flush();
            // The emptied queues keep their allocations for the next batch, unless one began meanwhile.
            let mut errands = lock(&self.errands);
            if errands.is_empty() {
                std::mem::swap(&mut *errands, &mut batch);
            }
        }
    }
}

/// The batches of one pool's threads; the pool's watcher hands over those held too long.
pub struct Holders {
    epoch: Instant,
    threads: Mutex<Vec<Arc<Held>>>,
}

impl Holders {
    pub fn new() -> Arc<Self> {
        Arc::new(Self { epoch: Instant::now(), threads: Mutex::default() })
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64 + 1
    }

    /// Registers the calling thread as a pool thread; its batch lives as long as the returned value.
    pub fn join(self: &Arc<Self>) -> Deliveries {
        let held = Arc::new(Held::default());
        lock(&self.threads).push(held.clone());
        CURRENT.set(Some(held.clone()));
        Deliveries { held, holders: self.clone(), len: 0, _pool_thread_only: PhantomData }
    }

    /// True when some thread holds responses.
    pub(super) fn holding(&self) -> bool {
        lock(&self.threads).iter().any(|held| held.since.load(Ordering::Acquire) != 0)
    }

    /// Hands over every batch held longer than [`HOLD_MAX`]; true when some thread holds responses.
    pub(super) fn deliver_overdue(&self) -> bool {
        let now = self.now();
        let limit = HOLD_MAX.as_micros() as u64;
        let mut holding = false;
        let mut overdue = Vec::new();
        for held in lock(&self.threads).iter() {
            let since = held.since.load(Ordering::Acquire);
            if since != 0 {
                holding = true;
                if now.saturating_sub(since) >= limit {
                    overdue.push(held.take());
                }
            }
        }
        for mut batch in overdue {
            batch.flush();
        }
        holding
    }
}

/// A pool thread's batch of responses. Only [`Holders::join`] makes one, on the thread it serves,
/// and the pool hands it to each job: holding it means running on a pool thread.
pub struct Deliveries {
    held: Arc<Held>,
    holders: Arc<Holders>,
    /// Responses queued since this thread's last hand-over (the watcher may have taken them since).
    len: usize,
    _pool_thread_only: PhantomData<*const ()>,
}

impl Deliveries {
    /// Queues the response for the request waiting on `runtime`.
    pub fn push(&mut self, runtime: &Handle, responder: oneshot::Sender<ResponseIntent>, intent: ResponseIntent) {
        self.len = self.held.push(runtime, Errand::Deliver(responder, intent), || self.holders.now());
    }

    /// Hands everything held to tokio.
    pub fn flush(&mut self) {
        self.len = 0;
        self.held.flush();
    }

    /// Responses held, as of the last push (a full batch is handed over at once).
    pub fn len(&self) -> usize {
        self.len
    }
}

impl Drop for Deliveries {
    fn drop(&mut self) {
        self.flush();
        lock(&self.holders.threads).retain(|held| !Arc::ptr_eq(held, &self.held));
        CURRENT.set(None);
    }
}

fn current() -> Option<Arc<Held>> {
    CURRENT.with_borrow(Option::clone)
}

/// Hands this pool thread's batch to tokio: call it before a wait that may be long (a streamed
/// response's reader catching up). Does nothing on other threads.
pub fn flush_before_waiting() {
    if let Some(held) = current() {
        held.flush();
    }
}

/// Runs `work` on `runtime` for a thread about to wait for its outcome (a request body read): this
/// thread's batch goes in the same hand-over, one wake-up for both, and none of it waits on the read.
pub fn run_before_waiting(runtime: &Handle, work: TokioWork) {
    let mut batch = current().map(|held| held.take()).unwrap_or_default();
    batch.push(runtime, Errand::Run(work));
    batch.flush();
}
