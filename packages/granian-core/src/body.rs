//! Reading a request body from Python, shared by the interfaces.
//!
//! Data that has already arrived is taken at once: the body is polled with a no-op waker first,
//! and only when nothing is buffered does a tokio task wait for it and settle an asyncio future.

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use pyo3::prelude::*;
use tokio::runtime::Handle;

use crate::errors::CoreError;
use crate::pyloop::{PyLoop, Settle};

/// One step of a body read chunk by chunk.
pub struct Chunk {
    /// `None` once the body has ended.
    pub data: Option<Bytes>,
    /// Whether more data may follow this chunk.
    pub more: bool,
}

enum State {
    /// Not being read right now; `None` once the body ended.
    Idle(Option<Incoming>),
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

fn poll_now(body: &mut Incoming) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
    let mut cx = Context::from_waker(Waker::noop());
    Pin::new(body).poll_frame(&mut cx)
}

fn closed(err: hyper::Error) -> CoreError {
    CoreError::Closed(err.to_string())
}

impl RequestBody {
    pub fn new(body: Incoming) -> Self {
        Self { state: Arc::new(Mutex::new(State::Idle(Some(body)))) }
    }

    /// True once the body has been read to its end.
    pub fn is_finished(&self) -> bool {
        matches!(&*lock(&self.state), State::Idle(None))
    }

    fn take(&self) -> Result<Option<Incoming>, CoreError> {
        match std::mem::replace(&mut *lock(&self.state), State::Reading) {
            State::Idle(body) => Ok(body),
            State::Reading => Err(CoreError::Protocol("the request body is already being read")),
        }
    }

    fn put_back(&self, body: Option<Incoming>) {
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
                    return pyloop.ready(py, settle(py, Err(closed(err))));
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
                    if let Ok(data) = frame.map_err(closed)?.into_data() {
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
                    return pyloop.ready(py, settle(py, Err(closed(err))));
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
                    Some(Err(err)) => break Err(closed(err)),
                    None => break Ok(Chunk { data: None, more: false }),
                }
            };
            let keep = matches!(&next, Ok(Chunk { more: true, .. }));
            this.put_back(if keep { Some(body) } else { None });
            next
        };
        pyloop.spawn_awaitable(py, runtime, work, settle)
    }

    /// The next chunk, waiting for it on this (non-tokio) thread with the GIL released.
    pub fn next_chunk_blocking(&self, py: Python<'_>, runtime: &Handle) -> Result<Chunk, CoreError> {
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
                    return Err(closed(err));
                }
                Poll::Ready(None) => {
                    self.put_back(None);
                    return Ok(end);
                }
                Poll::Pending => break,
            }
        }
        let (done, result) = tokio::sync::oneshot::channel();
        runtime.spawn(async move {
            let next = loop {
                match body.frame().await {
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            break Ok(Some(data));
                        }
                    }
                    Some(Err(err)) => break Err(closed(err)),
                    None => break Ok(None),
                }
            };
            let _ = done.send((body, next));
        });
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
