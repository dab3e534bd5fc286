//! Watches the event loop of an async worker (RSGI, ASGI). Every request of the worker starts on that
//! loop, so an app that blocks it (a synchronous call in async code, a long computation) holds up all
//! of them; the server says so in its log rather than leaving a silent stall.
//!
//! A thread queues a no-op probe on the loop bridge every [`PROBE_INTERVAL`]. A probe still waiting
//! after [`STALL`] means the loop has not run for that long: one warning is logged from the watching
//! thread (the loop cannot log while blocked), and when the probe finally runs, a second line says how
//! long the loop was held. When the loop is busy with requests the probe rides along in their batch,
//! so the watch costs one wake-up of an idle loop per interval.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::pyloop::PyLoop;

/// How often the loop is probed.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(250);
/// How long a probe may wait before the loop counts as blocked.
pub const STALL: Duration = Duration::from_secs(1);

/// The running watch; dropping it stops the thread (within one interval).
pub struct LoopWatch {
    stop: Arc<AtomicBool>,
}

impl Drop for LoopWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

#[derive(Default)]
struct Probe {
    /// When the probe waiting on the loop was queued; None when none waits.
    queued: Mutex<Option<Instant>>,
    /// Whether the current stall was logged.
    reported: AtomicBool,
}

/// Starts watching `pyloop` on its own thread.
pub fn watch(pyloop: Arc<PyLoop>) -> std::io::Result<LoopWatch> {
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    let probe = Arc::new(Probe::default());
    std::thread::Builder::new().name("granian-loop-watch".into()).spawn(move || {
        while !stopped.load(Ordering::Acquire) {
            std::thread::sleep(PROBE_INTERVAL);
            let queued = *probe.queued.lock().unwrap_or_else(|e| e.into_inner());
            match queued {
                None => {
                    *probe.queued.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
                    let (probe, logger) = (probe.clone(), pyloop.clone());
                    pyloop.bridge.push(Box::new(move |py| {
                        let queued = probe.queued.lock().unwrap_or_else(|e| e.into_inner()).take();
                        if probe.reported.swap(false, Ordering::AcqRel) {
                            let held = queued.map_or(0.0, |at| at.elapsed().as_secs_f64());
                            let pid = std::process::id();
                            logger
                                .log_warning(py, &format!("worker {pid}: the event loop ran again after {held:.1} s"));
                        }
                    }));
                }
                Some(at) if at.elapsed() >= STALL && !probe.reported.swap(true, Ordering::AcqRel) => {
                    let (held, pid) = (at.elapsed().as_secs_f64(), std::process::id());
                    pyloop.log_warning_now(&format!(
                        "worker {pid}: the event loop has not run for {held:.1} s: the app is blocking it (a \
                         synchronous call in async code?); this worker's requests wait until it returns"
                    ));
                }
                Some(_) => {}
            }
        }
    })?;
    Ok(LoopWatch { stop })
}
