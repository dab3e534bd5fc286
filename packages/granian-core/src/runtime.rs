//! Tokio runtimes of one worker process.
//!
//! `st` runs N single-thread runtimes, each on its own OS thread with its own accept loop (no
//! work stealing, no cross-thread wake-ups inside a connection). `mt` runs one runtime with N worker
//! threads that share connections.

use std::future::Future;
use std::thread::JoinHandle;

/// How the tokio side of a worker is threaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuntimeMode {
    SingleThreaded,
    MultiThreaded,
}

impl RuntimeMode {
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "st" => Some(Self::SingleThreaded),
            "mt" => Some(Self::MultiThreaded),
            _ => None,
        }
    }
}

/// Threads running the runtimes; joined when the worker stops.
pub struct RuntimeThreads {
    threads: Vec<JoinHandle<()>>,
}

impl RuntimeThreads {
    /// Starts the runtimes; `main(i)` is the root future of runtime `i`, and the runtime ends
    /// when it returns. In `mt` mode there is one root future.
    pub fn start<F, Fut>(mode: RuntimeMode, threads: usize, blocking_threads: usize, main: F) -> std::io::Result<Self>
    where
        F: Fn(usize) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let threads = threads.max(1);
        let mut handles = Vec::new();
        match mode {
            RuntimeMode::SingleThreaded => {
                for index in 0..threads {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .max_blocking_threads(blocking_threads.max(1))
                        .thread_name("granian-blocking")
                        .enable_all()
                        .build()?;
                    let root = main(index);
                    handles.push(
                        std::thread::Builder::new()
                            .name(format!("granian-rt-{index}"))
                            .spawn(move || runtime.block_on(root))?,
                    );
                }
            }
            RuntimeMode::MultiThreaded => {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(threads)
                    .max_blocking_threads(blocking_threads.max(1))
                    .thread_name("granian-rt")
                    .enable_all()
                    .build()?;
                let root = main(0);
                handles.push(std::thread::Builder::new().name("granian-rt-main".into()).spawn(move || {
                    runtime.block_on(async move {
                        // Run the root on a worker thread rather than this parked one.
                        let _ = tokio::spawn(root).await;
                    });
                })?);
            }
        }
        Ok(Self { threads: handles })
    }

    /// Waits for every runtime thread to end.
    pub fn join(self) {
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}
