//! Reading a request body from Python, shared by the interfaces.
//!
//! Data that has already arrived is taken at once: the body is polled with a no-op waker first,
//! and only when nothing is buffered does a tokio task wait for it and settle an asyncio future.
//! Every interface reads through a [`LimitedBody`], which enforces `--max-request-body-size` on
//! bodies whose length was not declared up front (a declared length over the limit never reaches
//! the app: the worker answers 413 first).

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use pyo3::prelude::*;
use tokio::runtime::Handle;

use crate::errands::TokioWork;
use crate::errors::CoreError;
use crate::incoming::IncomingBody;
use crate::pyloop::{PyLoop, Settle};

/// One step of a body read chunk by chunk.
pub struct Chunk {
    /// `None` once the body has ended.
    pub data: Option<Bytes>,
    /// Whether more data may follow this chunk.
    pub more: bool,
}

/// Largest declared body length [`LimitedBody::prefetch_small`] asks for ahead of the app.
pub const PREFETCH_MAX: u64 = 16 * 1024;

/// What polling a body yields when it is ready.
type Polled = Option<Result<Frame<Bytes>, CoreError>>;

/// A request body that fails once it outgrows `--max-request-body-size`.
pub struct LimitedBody {
    body: IncomingBody,
    limit: Option<Limit>,
    /// What [`LimitedBody::prefetch_small`] found ready, handed out before anything else.
    prefetched: Option<Polled>,
}

struct Limit {
    /// Bytes still allowed.
    allowed: u64,
    max: u64,
    exceeded: Arc<AtomicBool>,
}

impl LimitedBody {
    /// Wraps `body` to fail past `max` bytes (None: no limit, nothing allocated). The flag returned
    /// with a limit is set when the body turned out larger, so that the worker answers 413 for an
    /// app whose read failed.
    pub fn new(body: impl Into<IncomingBody>, max: Option<u64>) -> (Self, Option<Arc<AtomicBool>>) {
        let body = body.into();
        let Some(max) = max else {
            return (Self { body, limit: None, prefetched: None }, None);
        };
        let exceeded = Arc::new(AtomicBool::new(false));
        let limit = Limit { allowed: max, max, exceeded: exceeded.clone() };
        (Self { body, limit: Some(limit), prefetched: None }, Some(exceeded))
    }

    /// Asks for a body of known length up to [`PREFETCH_MAX`] now. Call it on the connection's
    /// runtime thread before the request goes to Python.
    ///
    /// hyper reads an HTTP/1 request body from the socket only once its reader has asked for it,
    /// and the ask wakes the connection's task. Asked first from the Python thread, that wake is a
    /// system call (tokio writes its driver's eventfd for every task woken from outside) per
    /// request with a body; asked here, from inside the runtime, it costs none, and by the time
    /// the app reads, the data is usually waiting. Polls once with a no-op waker; whatever is
    /// ready already is kept for the first read.
    ///
    /// Large bodies are left alone: reading them early cost the streamed 100 KiB echo 7-20% at
    /// 128 connections (benchmarks/PROFILING.md), while small ones gain up to 1.2x.
    pub fn prefetch_small(&mut self) {
        let small = self.body.size_hint().exact().is_some_and(|length| length <= PREFETCH_MAX);
        if !small || self.prefetched.is_some() || self.body.is_end_stream() {
            return;
        }
        if let Poll::Ready(polled) = poll_now(self) {
            self.prefetched = Some(polled);
        }
    }

    fn poll_incoming(&mut self, cx: &mut Context<'_>) -> Poll<Polled> {
        let frame = match std::task::ready!(Pin::new(&mut self.body).poll_frame(cx)) {
            Some(Ok(frame)) => frame,
            other => return Poll::Ready(other),
        };
        if let (Some(limit), Some(data)) = (&mut self.limit, frame.data_ref()) {
            match limit.allowed.checked_sub(data.len() as u64) {
                Some(left) => limit.allowed = left,
                None => {
                    limit.exceeded.store(true, Ordering::Release);
                    return Poll::Ready(Some(Err(CoreError::TooLarge(limit.max))));
                }
            }
        }
        Poll::Ready(Some(Ok(frame)))
    }
}

impl Body for LimitedBody {
    type Data = Bytes;
    type Error = CoreError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        match this.prefetched.take() {
            Some(polled) => Poll::Ready(polled),
            None => this.poll_incoming(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.prefetched {
            Some(polled) => polled.is_none(),
            None => self.body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

enum State {
    /// Not being read right now; `None` once the body ended.
    Idle(Option<LimitedBody>),
    /// A tokio task is reading it.
    Reading,
}

/// The request body as the app reads it; clones share the same body.
#[derive(Clone)]
pub struct RequestBody {
    state: Arc<Mutex<State>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn poll_now(body: &mut LimitedBody) -> Poll<Option<Result<Frame<Bytes>, CoreError>>> {
    let mut cx = Context::from_waker(Waker::noop());
    Pin::new(body).poll_frame(&mut cx)
}

impl RequestBody {
    pub fn new(body: LimitedBody) -> Self {
        Self { state: Arc::new(Mutex::new(State::Idle(Some(body)))) }
    }

    /// True once the body has been read to its end.
    pub fn is_finished(&self) -> bool {
        matches!(&*lock(&self.state), State::Idle(None))
    }

    fn take(&self) -> Result<Option<LimitedBody>, CoreError> {
        match std::mem::replace(&mut *lock(&self.state), State::Reading) {
            State::Idle(body) => Ok(body),
            State::Reading => Err(CoreError::Protocol("the request body is already being read")),
        }
    }

    fn put_back(&self, body: Option<LimitedBody>) {
        *lock(&self.state) = State::Idle(body);
    }

    /// The whole (remaining) body, as chunks in order.
    pub fn read_all(
        &self,
        py: Python<'_>,
        pyloop: &Arc<PyLoop>,
        runtime: &Handle,
        settle: Settle<Vec<Bytes>>,
    ) -> PyResult<Py<PyAny>> {
        let mut body = match self.take() {
            Ok(Some(body)) => body,
            Ok(None) => {
                self.put_back(None);
                return pyloop.ready(py, settle(py, Ok(Vec::new())));
            }
            Err(err) => return pyloop.ready(py, settle(py, Err(err))),
        };
        let mut chunks = Vec::new();
        loop {
            if body.is_end_stream() {
                self.put_back(None);
                return pyloop.ready(py, settle(py, Ok(chunks)));
            }
            match poll_now(&mut body) {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        chunks.push(data);
                    }
                }
                Poll::Ready(Some(Err(err))) => {
                    self.put_back(None);
                    return pyloop.ready(py, settle(py, Err(err)));
                }
                Poll::Ready(None) => {
                    self.put_back(None);
                    return pyloop.ready(py, settle(py, Ok(chunks)));
                }
                Poll::Pending => break,
            }
        }
        let this = self.clone();
        let work = async move {
            let result = async {
                while let Some(frame) = body.frame().await {
                    if let Ok(data) = frame?.into_data() {
                        chunks.push(data);
                    }
                }
                Ok(chunks)
            }
            .await;
            this.put_back(None);
            result
        };
        pyloop.spawn_awaitable(py, runtime, work, settle)
    }

    /// The next chunk of the body.
    pub fn next_chunk(
        &self,
        py: Python<'_>,
        pyloop: &Arc<PyLoop>,
        runtime: &Handle,
        settle: Settle<Chunk>,
    ) -> PyResult<Py<PyAny>> {
        let end = Chunk { data: None, more: false };
        let mut body = match self.take() {
            Ok(Some(body)) => body,
            Ok(None) => {
                self.put_back(None);
                return pyloop.ready(py, settle(py, Ok(end)));
            }
            Err(err) => return pyloop.ready(py, settle(py, Err(err))),
        };
        loop {
            if body.is_end_stream() {
                self.put_back(None);
                return pyloop.ready(py, settle(py, Ok(end)));
            }
            match poll_now(&mut body) {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        let more = !body.is_end_stream();
                        self.put_back(if more { Some(body) } else { None });
                        return pyloop.ready(py, settle(py, Ok(Chunk { data: Some(data), more })));
                    }
                }
                Poll::Ready(Some(Err(err))) => {
                    self.put_back(None);
                    return pyloop.ready(py, settle(py, Err(err)));
                }
                Poll::Ready(None) => {
                    self.put_back(None);
                    return pyloop.ready(py, settle(py, Ok(end)));
                }
                Poll::Pending => break,
            }
        }
        let this = self.clone();
        let work = async move {
            let next = loop {
                match body.frame().await {
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            break Ok(Chunk { data: Some(data), more: !body.is_end_stream() });
                        }
                    }
                    Some(Err(err)) => break Err(err),
                    None => break Ok(Chunk { data: None, more: false }),
                }
            };
            let keep = matches!(&next, Ok(Chunk { more: true, .. }));
            this.put_back(if keep { Some(body) } else { None });
            next
        };
        pyloop.spawn_awaitable(py, runtime, work, settle)
    }

    /// The next chunk, waiting for it on this (non-tokio) thread with the GIL released. When it is
    /// not there yet, `run` hands the read to the body's runtime.
    pub fn next_chunk_blocking(&self, py: Python<'_>, run: impl FnOnce(TokioWork)) -> Result<Chunk, CoreError> {
        let end = Chunk { data: None, more: false };
        let Some(mut body) = self.take()? else {
            self.put_back(None);
            return Ok(end);
        };
        loop {
            if body.is_end_stream() {
                self.put_back(None);
                return Ok(end);
            }
            match poll_now(&mut body) {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        let more = !body.is_end_stream();
                        self.put_back(if more { Some(body) } else { None });
                        return Ok(Chunk { data: Some(data), more });
                    }
                }
                Poll::Ready(Some(Err(err))) => {
                    self.put_back(None);
                    return Err(err);
                }
                Poll::Ready(None) => {
                    self.put_back(None);
                    return Ok(end);
                }
                Poll::Pending => break,
            }
        }
        let (done, result) = tokio::sync::oneshot::channel();
        run(Box::pin(async move {
            let next = loop {
                match body.frame().await {
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            break Ok(Some(data));
                        }
                    }
                    Some(Err(err)) => break Err(err),
                    None => break Ok(None),
                }
            };
            let _ = done.send((body, next));
        }));
        let received = py.detach(|| result.blocking_recv());
        let Ok((body, next)) = received else {
            self.put_back(None);
            return Err(CoreError::Closed("the server is stopping".into()));
        };
        match next {
            Ok(Some(data)) => {
                let more = !body.is_end_stream();
                self.put_back(if more { Some(body) } else { None });
                Ok(Chunk { data: Some(data), more })
            }
            Ok(None) => {
                self.put_back(None);
                Ok(end)
            }
            Err(err) => {
                self.put_back(None);
                Err(err)
            }
        }
    }
}
