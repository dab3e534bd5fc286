//! Work handed to a tokio runtime from a thread outside it (the Python event loop, a WSGI thread).
//!
//! Waking a tokio thread costs a system call and, on a busy core, a context switch: tokio writes
//! its driver's eventfd for every task woken or spawned from outside the runtime. [`Errands`]
//! gathers such work and hands each runtime its share in one task, so a batch of responses and
//! awaitable futures costs one wake-up. The files of a batch's file responses are opened together
//! on one of the runtime's blocking threads first (two wake-ups for the batch, not two per file).

use std::future::Future;
use std::pin::Pin;

use tokio::runtime::Handle;
use tokio::sync::oneshot;

use crate::http::{named_file_response, ResponseIntent};

/// A future for tokio to run: the tokio side of an awaitable or of a blocking read.
pub type TokioWork = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Work for a tokio runtime, produced on a thread outside it (the Python loop, a WSGI thread).
pub enum Errand {
    /// A response for the request waiting on the channel.
    Deliver(oneshot::Sender<ResponseIntent>, ResponseIntent),
    /// A future to run.
    Run(TokioWork),
}

impl Errand {
    /// Whether the errand answers with a file the app named by path.
    fn is_named_file(&self) -> bool {
        matches!(self, Errand::Deliver(_, ResponseIntent::File { .. }))
    }

    /// Does the errand for `runtime`. On that runtime's own thread it wakes nobody through the
    /// kernel; from any other thread, waking the runtime costs a system call.
    fn run(self, runtime: &Handle) {
        match self {
            // The receiver is gone only when the client is: nothing left to tell.
            Errand::Deliver(sender, intent) => drop(sender.send(intent)),
            Errand::Run(future) => drop(runtime.spawn(future)),
        }
    }
}

/// Errands gathered on a thread outside the runtimes, handed over together: completing a
/// response's channel and spawning the future behind an awaitable (a body read, a streamed write
/// waiting for room) both wake the runtime. [`Errands::flush`] gives each runtime its errands in
/// one task: one wake-up per runtime and flush. Inside that task, completing channels and spawning
/// futures are local operations that need no system call.
#[derive(Default)]
pub struct Errands {
    /// One entry per runtime errands went to (a worker has one runtime per runtime thread); kept,
    /// empty, between flushes.
    queues: Vec<(Handle, Vec<Errand>)>,
    count: usize,
}

impl Errands {
    /// Queues an errand for `runtime`; true when it is the first since the last flush.
    pub fn push(&mut self, runtime: &Handle, errand: Errand) -> bool {
        self.count += 1;
        let id = runtime.id();
        match self.queues.iter_mut().find(|(handle, _)| handle.id() == id) {
            Some((_, errands)) => errands.push(errand),
            None => self.queues.push((runtime.clone(), vec![errand])),
        }
        self.count == 1
    }

    /// Errands queued since the last flush.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Hands every queued errand to its runtime. The queues stay, with their allocations: a queue
    /// handed to a task is replaced by one sized like it, so the next batch, likely as large, does not
    /// grow its vector push by push (each growth moved every errand queued so far).
    pub fn flush(&mut self) {
        self.count = 0;
        for (runtime, errands) in &mut self.queues {
            if errands.iter().any(Errand::is_named_file) {
                let (files, rest) = std::mem::take(errands).into_iter().partition(Errand::is_named_file);
                open_together(runtime, files);
                *errands = rest;
            }
            match errands.len() {
                0 => {}
                1 => {
                    if let Some(errand) = errands.pop() {
                        errand.run(runtime);
                    }
                }
                queued => {
                    let batch = std::mem::replace(errands, Vec::with_capacity(queued));
                    // Dropped unrun only when the runtime is gone, and with it every waiting request.
                    let here = runtime.clone();
                    drop(runtime.spawn(async move { batch.into_iter().for_each(|errand| errand.run(&here)) }));
                }
            }
        }
    }
}

/// Opens the files of `files` (named-file deliveries) one after the other on one of the runtime's
/// blocking threads, which then hands the responses to the runtime in one task.
///
/// Opening each on the blocking pool as its request's future receives the path costs two thread
/// wake-ups per file (out to the pool, back to the runtime). On one core that was two context
/// switches per request, and a 50 KiB file response served at 1.1-1.2x of granian 2.8.1 where
/// WSGI, whose file is read on the app's thread, served at 1.7x (benchmarks/PROFILING.md). A batch
/// costs those two wake-ups once. A request whose client is gone is not opened.
fn open_together(runtime: &Handle, files: Vec<Errand>) {
    let here = runtime.clone();
    // Dropped unrun only when the runtime is gone, and with it every waiting request.
    drop(runtime.spawn_blocking(move || {
        let mut opened = Vec::with_capacity(files.len());
        for errand in files {
            if let Errand::Deliver(sender, ResponseIntent::File { status, headers, path, range }) = errand {
                if !sender.is_closed() {
                    let response = named_file_response(status, headers, &path, range);
                    opened.push(Errand::Deliver(sender, ResponseIntent::Ready(response)));
                }
            }
        }
        let there = here.clone();
        drop(here.spawn(async move { opened.into_iter().for_each(|errand| errand.run(&there)) }));
    }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::error_response;
    use http::{HeaderMap, StatusCode};

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    }

    fn status(intent: ResponseIntent) -> StatusCode {
        match intent {
            ResponseIntent::Ready(response) => response.status(),
            _ => panic!("not a ready response"),
        }
    }

    #[test]
    fn errands_reach_each_runtime_in_order_and_the_queue_starts_over() {
        let (first, second) = (runtime(), runtime());
        let mut errands = Errands::default();
        let mut waiting = Vec::new();
        for (index, rt) in [&first, &second, &first].into_iter().enumerate() {
            let (sender, receiver) = oneshot::channel();
            let code = StatusCode::from_u16(200 + index as u16).unwrap();
            assert_eq!(
                errands.push(rt.handle(), Errand::Deliver(sender, ResponseIntent::Ready(error_response(code)))),
                index == 0
            );
            waiting.push((rt, receiver, code));
        }
        let (ran_tx, ran_rx) = oneshot::channel();
        errands.push(first.handle(), Errand::Run(Box::pin(async move { ran_tx.send(()).unwrap() })));
        assert_eq!(errands.len(), 4);
        errands.flush();
        assert!(errands.is_empty());
        for (rt, receiver, code) in waiting {
            assert_eq!(status(rt.block_on(receiver).unwrap()), code);
        }
        first.block_on(ran_rx).unwrap();
        let (sender, receiver) = oneshot::channel();
        assert!(errands
            .push(second.handle(), Errand::Deliver(sender, ResponseIntent::Ready(error_response(StatusCode::OK)))));
        errands.flush();
        assert_eq!(status(second.block_on(receiver).unwrap()), StatusCode::OK);
    }

    #[test]
    fn named_files_of_a_batch_are_opened_together_and_arrive_ready() {
        let rt = runtime();
        let dir = std::env::temp_dir().join(format!("granian-errands-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.txt"), b"alpha").unwrap();
        let named = |name: &str, range| ResponseIntent::File {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            path: dir.join(name),
            range,
        };
        let mut errands = Errands::default();
        let mut waiting = Vec::new();
        for intent in [
            named("a.txt", None),
            ResponseIntent::Ready(error_response(StatusCode::ACCEPTED)),
            named("missing.txt", None),
            named("a.txt", Some((1, 3))),
        ] {
            let (sender, receiver) = oneshot::channel();
            errands.push(rt.handle(), Errand::Deliver(sender, intent));
            waiting.push(receiver);
        }
        // A request whose client left: its file is not opened, and nothing fails.
        let (gone, receiver) = oneshot::channel();
        drop(receiver);
        errands.push(rt.handle(), Errand::Deliver(gone, named("a.txt", None)));
        errands.flush();
        let answers: Vec<_> = waiting.into_iter().map(|receiver| rt.block_on(receiver).unwrap()).collect();
        let mut bodies = Vec::new();
        for answer in answers {
            let ResponseIntent::Ready(response) = answer else { panic!("a file arrived unopened") };
            let code = response.status();
            let body = rt.block_on(http_body_util::BodyExt::collect(response.into_body())).unwrap().to_bytes();
            bodies.push((code, body));
        }
        assert_eq!(bodies[0], (StatusCode::OK, bytes::Bytes::from_static(b"alpha")));
        assert_eq!(bodies[1].0, StatusCode::ACCEPTED);
        assert_eq!(bodies[2].0, StatusCode::NOT_FOUND);
        assert_eq!(bodies[3], (StatusCode::OK, bytes::Bytes::from_static(b"lp")));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
