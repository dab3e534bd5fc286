//! Prometheus metrics: counters every worker keeps in its slot of a [`region::Region`] shared with
//! the supervisor, which renders them ([`exposition`]) on its metrics endpoint ([`exporter`]).
//!
//! Counting costs a relaxed atomic add on memory the process owns a cache line of; nothing is sent
//! anywhere. A slot of a worker that exited is folded into per-worker totals by the supervisor, so
//! counters keep growing across respawns and reloads.

pub mod exporter;
pub mod exposition;
pub mod region;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use region::Region;

/// Upper bounds (seconds) of the request duration histogram buckets; `+Inf` is the count.
pub const DURATION_BUCKETS: [f64; 13] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
/// Status classes 1xx to 5xx.
pub const STATUS_CLASSES: usize = 5;
/// Per status class: one counter per bucket (not cumulative), the count and the sum in microseconds.
const CLASS_FIELDS: usize = DURATION_BUCKETS.len() + 2;

/// One counter or gauge of a slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum Field {
    /// Unix time (s) the worker started counting; a gauge source, 0 in a free slot.
    Started = 0,
    ConnectionsActive,
    ConnectionsHandled,
    ConnectionsFailed,
    TlsHandshakeFailures,
    RequestsHandled,
    RequestsInFlight,
    StaticRequestsHandled,
    StaticRequestsFailed,
    BackpressureWaits,
    WebsocketsOpen,
    WebsocketsHandled,
    BlockingThreads,
    BlockingQueue,
    BlockingBusyMicros,
    BlockingIdleMicros,
    PythonWaitMicros,
    /// First field of the duration histograms (see [`CLASS_FIELDS`]).
    Histograms,
}

/// Counters in a slot.
pub const SLOT_FIELDS: usize = Field::Histograms as usize + STATUS_CLASSES * CLASS_FIELDS;

impl Field {
    /// Whether the field is a gauge (a current value, not added to a worker's totals when it exits).
    pub fn is_gauge(index: usize) -> bool {
        [
            Field::Started,
            Field::ConnectionsActive,
            Field::RequestsInFlight,
            Field::WebsocketsOpen,
            Field::BlockingThreads,
            Field::BlockingQueue,
        ]
        .iter()
        .any(|field| *field as usize == index)
    }
}

/// The index of the histogram field `offset` (a bucket, then count, then sum) of a status class.
pub fn histogram_field(class: usize, offset: usize) -> usize {
    Field::Histograms as usize + class * CLASS_FIELDS + offset
}

/// A worker's handle on its slot.
#[derive(Clone)]
pub struct WorkerMetrics {
    region: Arc<Region>,
    slot: usize,
}

impl std::fmt::Debug for WorkerMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerMetrics").field("slot", &self.slot).finish()
    }
}

impl WorkerMetrics {
    /// Opens the supervisor's region at `path` and counts into `slot`, zeroing nothing (the
    /// supervisor hands out zeroed slots).
    pub fn attach(path: &str, slot: usize) -> std::io::Result<Self> {
        let region = Region::open(path)?;
        if region.slot(slot).is_none() {
            return Err(std::io::Error::other(format!("metrics slot {slot} is outside the region")));
        }
        let metrics = Self { region: Arc::new(region), slot };
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        metrics.counter(Field::Started as usize).store(now, Ordering::Relaxed);
        Ok(metrics)
    }

    fn counter(&self, field: usize) -> &AtomicU64 {
        // `attach` checked the slot; fields are below SLOT_FIELDS by construction.
        &self.region.slot(self.slot).expect("slot checked at attach")[field]
    }

    pub fn add(&self, field: Field, amount: u64) {
        self.counter(field as usize).fetch_add(amount, Ordering::Relaxed);
    }

    pub fn increment(&self, field: Field) {
        self.add(field, 1);
    }

    /// Lowers a gauge.
    pub fn decrement(&self, field: Field) {
        self.counter(field as usize).fetch_sub(1, Ordering::Relaxed);
    }

    /// Sets a gauge.
    pub fn set(&self, field: Field, value: u64) {
        self.counter(field as usize).store(value, Ordering::Relaxed);
    }

    /// Adds a duration in microseconds.
    pub fn add_duration(&self, field: Field, duration: Duration) {
        self.add(field, duration.as_micros().try_into().unwrap_or(u64::MAX));
    }

    /// Counts a finished request: its duration in the histogram of its status class.
    pub fn observe(&self, status: u16, duration: Duration) {
        let class = usize::from(status / 100).clamp(1, STATUS_CLASSES) - 1;
        let seconds = duration.as_secs_f64();
        if let Some(bucket) = DURATION_BUCKETS.iter().position(|bound| seconds <= *bound) {
            self.counter(histogram_field(class, bucket)).fetch_add(1, Ordering::Relaxed);
        }
        self.counter(histogram_field(class, DURATION_BUCKETS.len())).fetch_add(1, Ordering::Relaxed);
        let micros = duration.as_micros().try_into().unwrap_or(u64::MAX);
        self.counter(histogram_field(class, DURATION_BUCKETS.len() + 1)).fetch_add(micros, Ordering::Relaxed);
    }

    /// Starts counting a request: in flight until the returned guard is dropped, then observed.
    pub fn begin_request(&self) -> InFlight {
        self.increment(Field::RequestsHandled);
        self.increment(Field::RequestsInFlight);
        InFlight { metrics: self.clone(), start: Instant::now(), status: None }
    }

    /// Counts an open connection until the returned guard is dropped.
    pub fn open_connection(&self) -> OpenGauge {
        self.increment(Field::ConnectionsHandled);
        self.increment(Field::ConnectionsActive);
        OpenGauge { metrics: self.clone(), field: Field::ConnectionsActive }
    }

    /// Counts an open WebSocket until the returned guard is dropped.
    pub fn open_websocket(&self) -> OpenGauge {
        self.increment(Field::WebsocketsHandled);
        self.increment(Field::WebsocketsOpen);
        OpenGauge { metrics: self.clone(), field: Field::WebsocketsOpen }
    }
}

/// A request being served; dropped when its response ended (or it was abandoned: status 499).
pub struct InFlight {
    metrics: WorkerMetrics,
    start: Instant,
    status: Option<u16>,
}

impl InFlight {
    pub fn respond(&mut self, status: u16) {
        self.status = Some(status);
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.metrics.decrement(Field::RequestsInFlight);
        let status = self.status.unwrap_or(crate::accesslog::CLIENT_CLOSED_REQUEST);
        self.metrics.observe(status, self.start.elapsed());
    }
}

/// Lowers a gauge when dropped.
pub struct OpenGauge {
    metrics: WorkerMetrics,
    field: Field,
}

impl Drop for OpenGauge {
    fn drop(&mut self) {
        self.metrics.decrement(self.field);
    }
}
