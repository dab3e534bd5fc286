//! The Python side of a WebSocket, shared by RSGI and ASGI: answering the handshake (accept or
//! deny), receiving with a ready-now fast path, sending with backpressure, closing.
//!
//! Each interface wraps these in its own objects and turns [`CoreError`]s into its own exceptions
//! through the [`Settle`] functions it passes in.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use http::header::HeaderMap;
use http::{Response, StatusCode};
use pyo3::prelude::*;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::dispatch::WebsocketIo;
use crate::errors::CoreError;
use crate::http::{error_response, response, ResponseBody, ResponseIntent};
use crate::pyloop::{PyLoop, Settle};
use crate::ws::handshake::{accept_response, Opening};
use crate::ws::session::{codes, Ending, Message, Outbound, WsChannels};

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// What `receive` yields.
pub enum Received {
    Message(Message),
    /// The connection is over (peer close, server close, or failure).
    Closed(Ending),
}

/// An open WebSocket as the app uses it.
pub struct WsConnection {
    inbound: Arc<tokio::sync::Mutex<mpsc::Receiver<Message>>>,
    outbound: mpsc::Sender<Outbound>,
    ending: Arc<Mutex<Option<Ending>>>,
    finished: CancellationToken,
    /// Set by `close()`: later sends fail at once instead of queueing behind the close frame,
    /// where the session would drop them unseen.
    close_requested: AtomicBool,
    pyloop: Arc<PyLoop>,
    runtime: Handle,
}

impl WsConnection {
    fn new(channels: WsChannels, pyloop: Arc<PyLoop>, runtime: Handle) -> Self {
        Self {
            inbound: Arc::new(tokio::sync::Mutex::new(channels.inbound)),
            outbound: channels.outbound,
            ending: channels.ending,
            finished: channels.finished,
            close_requested: AtomicBool::new(false),
            pyloop,
            runtime,
        }
    }

    /// How the connection ended (1006 until the session reported).
    pub fn ending(&self) -> Ending {
        ending_of(&self.ending)
    }

    /// Whether the session is over.
    pub fn is_finished(&self) -> bool {
        self.finished.is_cancelled()
    }

    /// The next message, or how the connection ended. One `receive` at a time.
    pub fn receive(&self, py: Python<'_>, settle: Settle<Received>) -> PyResult<Py<PyAny>> {
        let Ok(mut inbound) = self.inbound.clone().try_lock_owned() else {
            return settle(py, Err(CoreError::Protocol("another receive() is already waiting")));
        };
        match inbound.try_recv() {
            Ok(message) => self.pyloop.ready(py, settle(py, Ok(Received::Message(message)))),
            Err(mpsc::error::TryRecvError::Disconnected) => {
                self.pyloop.ready(py, settle(py, Ok(Received::Closed(self.ending()))))
            }
            Err(mpsc::error::TryRecvError::Empty) => {
                let ending = self.ending.clone();
                let work = async move {
                    Ok(match inbound.recv().await {
                        Some(message) => Received::Message(message),
                        None => Received::Closed(ending_of(&ending)),
                    })
                };
                self.pyloop.spawn_awaitable(py, &self.runtime, work, settle)
            }
        }
    }

    /// Queues a message or close; the awaitable waits while the queue is full.
    pub fn send(&self, py: Python<'_>, item: Outbound, settle: Settle<()>) -> PyResult<Py<PyAny>> {
        if self.close_requested.load(Ordering::Acquire) {
            return settle(py, Err(closed()));
        }
        match self.outbound.try_send(item) {
            Ok(()) => Ok(self.pyloop.done(py)),
            Err(mpsc::error::TrySendError::Closed(_)) => settle(py, Err(closed())),
            Err(mpsc::error::TrySendError::Full(item)) => {
                let outbound = self.outbound.clone();
                let work = async move { outbound.send(item).await.map_err(|_| closed()) };
                self.pyloop.spawn_awaitable(py, &self.runtime, work, settle)
            }
        }
    }

    /// The next message, from a tokio task (for a receive that first waited for the handshake).
    pub async fn recv(&self) -> Received {
        match self.inbound.lock().await.recv().await {
            Some(message) => Received::Message(message),
            None => Received::Closed(self.ending()),
        }
    }

    /// Queues a message or close from a tokio task.
    pub async fn send_async(&self, item: Outbound) -> Result<(), CoreError> {
        self.outbound.send(item).await.map_err(|_| closed())
    }

    /// Asks the session to close, without waiting (used when the app returns or from sync code).
    pub fn close(&self, code: u16, reason: String) {
        self.close_requested.store(true, Ordering::Release);
        let item = Outbound::Close { code, reason };
        if let Err(mpsc::error::TrySendError::Full(item)) = self.outbound.try_send(item) {
            let outbound = self.outbound.clone();
            self.runtime.spawn(async move { outbound.send(item).await });
        }
    }
}

fn ending_of(ending: &Mutex<Option<Ending>>) -> Ending {
    lock(ending).clone().unwrap_or(Ending { code: codes::ABNORMAL, reason: String::new() })
}

fn closed() -> CoreError {
    CoreError::Closed("the WebSocket is closed".into())
}

/// Where the open connection appears once the handshake completes, and the signal that it did
/// (or that it never will: denied, or the client left).
#[derive(Default)]
pub struct OpenSlot {
    connection: Mutex<Option<Arc<WsConnection>>>,
    settled: CancellationToken,
}

impl OpenSlot {
    fn settle(&self, connection: Option<Arc<WsConnection>>) {
        *lock(&self.connection) = connection;
        self.settled.cancel();
    }

    /// The connection, once open.
    pub fn get(&self) -> Option<Arc<WsConnection>> {
        lock(&self.connection).clone()
    }

    /// Waits until the handshake is over; the connection if it opened.
    pub async fn wait(&self) -> Option<Arc<WsConnection>> {
        self.settled.cancelled().await;
        self.get()
    }
}

/// The handshake of one WebSocket request, until the app accepts or denies it.
pub struct WsHandshake {
    pub opening: Opening,
    responder: Mutex<Option<oneshot::Sender<ResponseIntent>>>,
    upgraded: Mutex<Option<oneshot::Receiver<Result<WsChannels, CoreError>>>>,
    /// The connection once accepted, for closing it when the app is done.
    pub open: Arc<OpenSlot>,
    pub disconnected: CancellationToken,
    pyloop: Arc<PyLoop>,
    runtime: Handle,
}

impl WsHandshake {
    pub fn new(io: WebsocketIo, pyloop: Arc<PyLoop>) -> Self {
        let WebsocketIo { opening, responder, upgraded, disconnected, runtime } = io;
        Self {
            opening,
            responder: Mutex::new(Some(responder)),
            upgraded: Mutex::new(Some(upgraded)),
            open: Arc::new(OpenSlot::default()),
            disconnected,
            pyloop,
            runtime,
        }
    }

    pub fn pyloop(&self) -> &Arc<PyLoop> {
        &self.pyloop
    }

    /// Whether the app has neither accepted nor denied yet.
    pub fn is_pending(&self) -> bool {
        lock(&self.responder).is_some()
    }

    /// The accepted connection, once open.
    pub fn connection(&self) -> Option<Arc<WsConnection>> {
        self.open.get()
    }

    /// Sends the accept response; the awaitable resolves with the open connection.
    pub fn accept(
        &self,
        py: Python<'_>,
        subprotocol: Option<&str>,
        headers: HeaderMap,
        settle: Settle<Arc<WsConnection>>,
    ) -> PyResult<Py<PyAny>> {
        let response = match accept_response(&self.opening, subprotocol, headers) {
            Ok(response) => response,
            Err(message) => return settle(py, Err(CoreError::InvalidValue(message.into()))),
        };
        let Some(responder) = lock(&self.responder).take() else {
            return settle(py, Err(CoreError::Protocol("the WebSocket was already accepted or closed")));
        };
        self.pyloop.deliver(py, &self.runtime, responder, ResponseIntent::Ready(response));
        let Some(upgraded) = lock(&self.upgraded).take() else {
            return settle(py, Err(CoreError::Protocol("the WebSocket was already accepted or closed")));
        };
        let (pyloop, runtime, slot) = (self.pyloop.clone(), self.runtime.clone(), self.open.clone());
        let work = async move {
            let opened = upgraded.await.map_err(|_| closed()).and_then(|outcome| outcome);
            match opened {
                Ok(channels) => {
                    let connection = Arc::new(WsConnection::new(channels, pyloop, runtime));
                    slot.settle(Some(connection.clone()));
                    Ok(connection)
                }
                Err(err) => {
                    slot.settle(None);
                    Err(err)
                }
            }
        };
        self.pyloop.spawn_awaitable(py, &self.runtime, work, settle)
    }

    /// Answers the request with a plain HTTP response instead; false if it was already answered.
    pub fn deny(&self, py: Python<'_>, response: Response<ResponseBody>) -> bool {
        match lock(&self.responder).take() {
            Some(responder) => {
                self.pyloop.deliver(py, &self.runtime, responder, ResponseIntent::Ready(response));
                self.open.settle(None);
                true
            }
            None => false,
        }
    }

    /// The app is done: refuse a handshake it never answered (with `refusal`, or 403; 500 if it
    /// failed), close an open connection (1000, or 1011 if it failed).
    pub fn finish(&self, py: Python<'_>, app_failed: bool, refusal: Option<Response<ResponseBody>>) {
        let refusal = refusal.unwrap_or_else(|| {
            if app_failed {
                error_response(StatusCode::INTERNAL_SERVER_ERROR)
            } else {
                response(StatusCode::FORBIDDEN, HeaderMap::new(), ResponseBody::Empty)
            }
        });
        if self.deny(py, refusal) {
            return;
        }
        if let Some(connection) = self.connection() {
            if !connection.is_finished() {
                let code = if app_failed { codes::INTERNAL_ERROR } else { codes::NORMAL };
                connection.close(code, String::new());
            }
        }
    }

    pub fn runtime(&self) -> &Handle {
        &self.runtime
    }
}
