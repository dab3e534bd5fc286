//! The supervisor's view of the metrics: which slot belongs to which worker, the totals of workers
//! that exited, the supervisor's own counters, and the Prometheus text exposition (format 0.0.4).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use super::region::Region;
use super::{histogram_field, Field, DURATION_BUCKETS, SLOT_FIELDS, STATUS_CLASSES};

/// Counters the supervisor keeps (worker starts and replacements by reason).
pub const SUPERVISOR_COUNTERS: [(&str, &str); 6] = [
    ("workers_spawns", "Worker processes started."),
    ("workers_respawns_for_err", "Workers started again after exiting unexpectedly."),
    ("workers_respawns_for_lifetime", "Workers replaced at the end of their lifetime (--workers-lifetime)."),
    ("workers_respawns_for_rss", "Workers replaced for their memory use (--workers-max-rss)."),
    ("workers_respawns_for_requests", "Workers replaced after their request quota (--workers-max-requests)."),
    ("workers_respawns_for_reload", "Workers replaced by a reload (SIGHUP or --reload)."),
];

/// Per-worker families: name, field, kind, help.
const WORKER_FAMILIES: [(&str, Field, &str, &str); 16] = [
    ("connections_active", Field::ConnectionsActive, "gauge", "Open client connections."),
    ("connections_handled", Field::ConnectionsHandled, "counter", "Client connections accepted."),
    (
        "connections_err",
        Field::ConnectionsFailed,
        "counter",
        "Connections that ended with an error (TLS handshakes included).",
    ),
    ("tls_handshake_failures", Field::TlsHandshakeFailures, "counter", "TLS handshakes that failed."),
    (
        "requests_handled",
        Field::RequestsHandled,
        "counter",
        "Requests received (static files and WebSocket handshakes included).",
    ),
    ("requests_in_flight", Field::RequestsInFlight, "gauge", "Requests whose response has not ended."),
    ("static_requests_handled", Field::StaticRequestsHandled, "counter", "Requests answered from a static file mount."),
    (
        "static_requests_err",
        Field::StaticRequestsFailed,
        "counter",
        "Static file requests answered with an error status (4xx, 5xx).",
    ),
    ("backpressure_waits", Field::BackpressureWaits, "counter", "Requests that waited for a backpressure permit."),
    ("websockets_open", Field::WebsocketsOpen, "gauge", "Open WebSocket sessions."),
    ("websockets_handled", Field::WebsocketsHandled, "counter", "WebSocket sessions opened."),
    ("blocking_threads", Field::BlockingThreads, "gauge", "Threads of the blocking pool (WSGI)."),
    ("blocking_queue", Field::BlockingQueue, "gauge", "Requests waiting for a blocking thread (WSGI)."),
    (
        "blocking_busy_cumulative",
        Field::BlockingBusyMicros,
        "counter",
        "Microseconds blocking threads spent running requests.",
    ),
    (
        "blocking_idle_cumulative",
        Field::BlockingIdleMicros,
        "counter",
        "Microseconds blocking threads spent waiting for work.",
    ),
    ("py_wait_cumulative", Field::PythonWaitMicros, "counter", "Microseconds blocking threads waited for the GIL."),
];

const CLASS_NAMES: [&str; STATUS_CLASSES] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

struct State {
    /// The worker index of each slot in use.
    owners: Vec<Option<usize>>,
    /// Per worker index: the counters of its exited workers.
    retired: BTreeMap<usize, Vec<u64>>,
    supervisor: BTreeMap<&'static str, u64>,
}

/// The supervisor's metrics: the shared region plus what only the supervisor knows.
pub struct Registry {
    region: Region,
    interface: String,
    state: Mutex<State>,
}

impl Registry {
    pub fn new(region: Region, interface: String) -> Self {
        let owners = vec![None; region.slots()];
        Self {
            region,
            interface,
            state: Mutex::new(State { owners, retired: BTreeMap::new(), supervisor: BTreeMap::new() }),
        }
    }

    pub fn region(&self) -> &Region {
        &self.region
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A zeroed free slot for a new process of worker `index`; None when every slot is taken.
    pub fn claim(&self, index: usize) -> Option<usize> {
        let mut state = self.state();
        let slot = state.owners.iter().position(Option::is_none)?;
        for counter in self.region.slot(slot)? {
            counter.store(0, Ordering::Relaxed);
        }
        state.owners[slot] = Some(index);
        Some(slot)
    }

    /// The process of `slot` exited: its counters join its worker's totals and the slot is free.
    pub fn release(&self, slot: usize) {
        let mut state = self.state();
        let (Some(Some(index)), Some(counters)) = (state.owners.get(slot).copied(), self.region.slot(slot)) else {
            return;
        };
        let values: Vec<u64> = counters.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        let totals = state.retired.entry(index).or_insert_with(|| vec![0; SLOT_FIELDS]);
        for (field, value) in values.into_iter().enumerate() {
            if !Field::is_gauge(field) {
                totals[field] = totals[field].wrapping_add(value);
            }
        }
        state.owners[slot] = None;
    }

    /// Adds one to a supervisor counter (a name of [`SUPERVISOR_COUNTERS`]); false for another name.
    pub fn count(&self, name: &str) -> bool {
        let Some((known, _)) = SUPERVISOR_COUNTERS.iter().find(|(known, _)| *known == name) else {
            return false;
        };
        *self.state().supervisor.entry(known).or_insert(0) += 1;
        true
    }

    /// The Prometheus text exposition of everything.
    pub fn render(&self) -> String {
        let state = self.state();
        // Per worker index: live slots summed (gauges included), plus the retired counters.
        let mut workers: BTreeMap<usize, Vec<u64>> = state.retired.clone();
        let mut started: BTreeMap<usize, u64> = BTreeMap::new();
        for (slot, owner) in state.owners.iter().enumerate() {
            let (Some(index), Some(counters)) = (owner, self.region.slot(slot)) else {
                continue;
            };
            let totals = workers.entry(*index).or_insert_with(|| vec![0; SLOT_FIELDS]);
            for (field, counter) in counters.iter().enumerate() {
                totals[field] = totals[field].wrapping_add(counter.load(Ordering::Relaxed));
            }
            let since = counters[Field::Started as usize].load(Ordering::Relaxed);
            if since > 0 {
                let newest = started.entry(*index).or_insert(0);
                *newest = (*newest).max(since);
            }
        }
        let mut out = String::with_capacity(16 * 1024);
        for (name, help) in SUPERVISOR_COUNTERS {
            family(&mut out, name, "counter", help);
            let _ = writeln!(out, "granian_{name} {}", state.supervisor.get(name).copied().unwrap_or(0));
        }
        drop(state);
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        family(&mut out, "worker_lifetime", "gauge", "Seconds since the worker's current process started.");
        for (index, since) in &started {
            let _ = writeln!(out, "granian_worker_lifetime{{worker=\"{index}\"}} {}", now.saturating_sub(*since));
        }
        for (name, field, kind, help) in WORKER_FAMILIES {
            family(&mut out, name, kind, help);
            for (index, totals) in &workers {
                let _ = writeln!(out, "granian_{name}{{worker=\"{index}\"}} {}", signed(totals[field as usize]));
            }
        }
        family(&mut out, "responses_handled", "counter", "Responses by status class (499: the client left first).");
        for (index, totals) in &workers {
            for (class, class_name) in CLASS_NAMES.iter().enumerate() {
                let count = totals[histogram_field(class, DURATION_BUCKETS.len())];
                let _ = writeln!(
                    out,
                    "granian_responses_handled{{worker=\"{index}\",status_class=\"{class_name}\"}} {count}"
                );
            }
        }
        family(
            &mut out,
            "request_duration_seconds",
            "histogram",
            "Time from a request's head to the end of its response, by status class.",
        );
        for (index, totals) in &workers {
            for (class, class_name) in CLASS_NAMES.iter().enumerate() {
                let labels =
                    format!("worker=\"{index}\",interface=\"{}\",status_class=\"{class_name}\"", self.interface);
                let mut cumulative = 0u64;
                for (bucket, bound) in DURATION_BUCKETS.iter().enumerate() {
                    cumulative += totals[histogram_field(class, bucket)];
                    let _ = writeln!(
                        out,
                        "granian_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {cumulative}"
                    );
                }
                let count = totals[histogram_field(class, DURATION_BUCKETS.len())];
                let sum = totals[histogram_field(class, DURATION_BUCKETS.len() + 1)] as f64 / 1e6;
                let _ = writeln!(out, "granian_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {count}");
                let _ = writeln!(out, "granian_request_duration_seconds_sum{{{labels}}} {sum}");
                let _ = writeln!(out, "granian_request_duration_seconds_count{{{labels}}} {count}");
            }
        }
        out
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP granian_{name} {help}");
    let _ = writeln!(out, "# TYPE granian_{name} {kind}");
}

/// Gauges are lowered with wrapping subtraction: a sum of live slots can pass through "negative"
/// values only while one slot's decrement was read before another's increment; show it as such.
fn signed(value: u64) -> i64 {
    value as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::WorkerMetrics;
    use std::time::Duration;

    #[test]
    fn counters_of_exited_workers_stay_in_the_totals() {
        let registry = Registry::new(Region::create(4).expect("region"), "rsgi".into());
        let path = format!("/proc/self/fd/{}", registry.region().fd());
        let first = registry.claim(1).expect("slot");
        let worker = WorkerMetrics::attach(&path, first).expect("attach");
        drop(worker.begin_request());
        let _open = worker.open_connection();
        registry.release(first);
        let second = registry.claim(1).expect("slot");
        let replacement = WorkerMetrics::attach(&path, second).expect("attach");
        let mut request = replacement.begin_request();
        request.respond(200);
        drop(request);
        replacement.observe(404, Duration::from_millis(30));
        assert!(registry.count("workers_spawns"));
        assert!(!registry.count("nope"));
        let text = registry.render();
        assert!(text.contains("granian_requests_handled{worker=\"1\"} 2\n"), "{text}");
        // The exited process's open connection is not counted as open any more.
        assert!(text.contains("granian_connections_active{worker=\"1\"} 0\n"), "{text}");
        assert!(text.contains("granian_connections_handled{worker=\"1\"} 1\n"), "{text}");
        assert!(text.contains("granian_responses_handled{worker=\"1\",status_class=\"4xx\"} 2\n"), "{text}");
        assert!(text.contains("granian_workers_spawns 1\n"));
        assert!(text.contains(
            "granian_request_duration_seconds_bucket{worker=\"1\",interface=\"rsgi\",status_class=\"4xx\",le=\"0.025\"} 1\n"
        ));
        assert!(text.contains(
            "granian_request_duration_seconds_bucket{worker=\"1\",interface=\"rsgi\",status_class=\"4xx\",le=\"0.05\"} 2\n"
        ));
    }
}
