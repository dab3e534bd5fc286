//! Handing requests to a Python application, shared by the async interfaces.
//!
//! The tokio side queues the request on the loop bridge (no GIL) and waits for the response
//! intent; the Python side is the interface's [`RequestHandler`], which builds its objects and
//! starts the app.

use std::sync::Arc;

use http::request::Parts;
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use pyo3::prelude::*;
use tokio::runtime::Handle;
use tokio::sync::{oneshot, OwnedSemaphorePermit};
use tokio_util::sync::CancellationToken;

use crate::http::{error_response, materialize, without_body, ResponseBody, ResponseIntent};
use crate::pyloop::PyLoop;
use crate::workers::{ConnectionInfo, Dispatcher};

/// A request on its way to the Python side, with everything needed to answer it.
pub struct PendingRequest {
    pub parts: Parts,
    pub connection: Arc<ConnectionInfo>,
    pub io: RequestIo,
}

/// The channels of one request that its protocol object owns.
pub struct RequestIo {
    pub body: Incoming,
    /// Where the response goes; dropping it unanswered makes the server answer 500.
    pub responder: oneshot::Sender<ResponseIntent>,
    /// Cancelled when the client is gone (connection closed or request reset).
    pub disconnected: CancellationToken,
    /// One unit of backpressure; release it when the app is done with the request.
    pub permit: OwnedSemaphorePermit,
    /// The runtime the request arrived on, for work done on its behalf.
    pub runtime: Handle,
}

/// What an interface does with a request.
pub trait RequestHandler: Send + Sync + 'static {
    /// Tokio side, before Python: a response the server gives on its own, if any.
    fn screen(&self, _request: &Request<Incoming>) -> Option<Response<ResponseBody>> {
        None
    }

    /// Python thread: build the interface's objects and start the app.
    fn start(&self, py: Python<'_>, request: PendingRequest);
}

/// A [`Dispatcher`] that runs requests through a Python [`RequestHandler`].
pub struct PyDispatcher<H> {
    handler: Arc<H>,
    pyloop: Arc<PyLoop>,
}

impl<H: RequestHandler> PyDispatcher<H> {
    pub fn new(handler: H, pyloop: Arc<PyLoop>) -> Self {
        Self { handler: Arc::new(handler), pyloop }
    }
}

impl<H: RequestHandler> Dispatcher for PyDispatcher<H> {
    async fn dispatch(
        &self,
        request: Request<Incoming>,
        connection: Arc<ConnectionInfo>,
        permit: OwnedSemaphorePermit,
    ) -> Response<ResponseBody> {
        if let Some(response) = self.handler.screen(&request) {
            return response;
        }
        let handler = self.handler.clone();
        let bridge = self.pyloop.bridge.clone();
        hand_off(request, connection, permit, move |pending| {
            bridge.push_batched(Box::new(move |py| handler.start(py, pending)));
        })
        .await
    }
}

/// The tokio side of every interface: packs the request, lets `send` hand it to the Python side,
/// waits for the response intent and turns it into the response (500 if none ever comes).
pub async fn hand_off(
    request: Request<Incoming>,
    connection: Arc<ConnectionInfo>,
    permit: OwnedSemaphorePermit,
    send: impl FnOnce(PendingRequest),
) -> Response<ResponseBody> {
    let (responder, response) = oneshot::channel();
    let disconnected = connection.closed.child_token();
    // If hyper drops this future (the client went away), the app hears about it.
    let guard = disconnected.clone().drop_guard();
    let runtime = Handle::current();
    let (parts, body) = request.into_parts();
    let head_only = parts.method == Method::HEAD;
    send(PendingRequest { parts, connection, io: RequestIo { body, responder, disconnected, permit, runtime } });
    let response = match response.await {
        Ok(intent) => materialize(intent).await,
        Err(_) => error_response(StatusCode::INTERNAL_SERVER_ERROR),
    };
    guard.disarm();
    if head_only {
        without_body(response)
    } else {
        response
    }
}
