//! Work handed to a tokio runtime from a thread outside it (the Python event loop, a WSGI thread).
//!
//! Waking a tokio thread costs a system call and, on a busy core, a context switch: tokio writes
//! its driver's eventfd for every task woken or spawned from outside the runtime. [`Errands`]
//! gathers such work and hands each runtime its share in one task, so a batch of responses and
//! awaitable futures costs one wake-up.

use std::future::Future;
use std::pin::Pin;

use tokio::runtime::Handle;
use tokio::sync::oneshot;

use crate::http::ResponseIntent;

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
    /// One entry per runtime that has errands (a worker has one runtime per runtime thread).
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

    /// Hands every queued errand to its runtime (the queue keeps its allocation for the next round).
    pub fn flush(&mut self) {
        self.count = 0;
        for (runtime, mut errands) in self.queues.drain(..) {
            if errands.len() == 1 {
                if let Some(errand) = errands.pop() {
                    errand.run(&runtime);
                }
            } else {
                // Dropped unrun only when the runtime is gone, and with it every waiting request.
                let here = runtime.clone();
                drop(runtime.spawn(async move { errands.into_iter().for_each(|errand| errand.run(&here)) }));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::error_response;
    use http::StatusCode;

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
}
