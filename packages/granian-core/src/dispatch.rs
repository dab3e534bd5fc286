//! Handing requests to a Python application, shared by the async interfaces.
//!
//! The tokio side queues the request on the loop bridge (no GIL) and waits for the response
//! intent; the Python side is the interface's [`RequestHandler`], which builds its objects and
//! starts the app.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use futures_util::future::Either;

use crate::incoming::TransportBody;
use http::request::Parts;
use http::{Method, Request, Response, StatusCode, Version};
use pyo3::prelude::*;
use tokio::runtime::Handle;
use tokio::sync::{oneshot, OwnedSemaphorePermit};
use tokio_util::sync::CancellationToken;

use hyper_util::rt::TokioIo;

use crate::body::LimitedBody;
use crate::errors::CoreError;
use crate::http::{body_too_large, error_response, materialize, without_body, ResponseBody, ResponseIntent};
use crate::pyloop::PyLoop;
use crate::workers::{ConnectionInfo, Dispatcher};
use crate::ws::handshake::{inspect, is_websocket_request, refusal_response, Opening};
use crate::ws::session::{self, WsChannels, WsSettings};

/// A request on its way to the Python side, with everything needed to answer it.
pub struct PendingRequest {
    pub parts: Parts,
    pub connection: Arc<ConnectionInfo>,
    pub io: RequestIo,
}

/// The channels of one request that its protocol object owns.
pub struct RequestIo {
    /// The body, limited to `--max-request-body-size`.
    pub body: LimitedBody,
    /// Where the response goes; dropping it unanswered makes the server answer 500.
    pub responder: oneshot::Sender<ResponseIntent>,
    /// Cancelled when the client is gone (connection closed or request reset).
    pub disconnected: CancellationToken,
    /// One unit of backpressure; release it when the app is done with the request.
    pub permit: OwnedSemaphorePermit,
    /// The runtime the request arrived on, for work done on its behalf.
    pub runtime: Handle,
}

/// A WebSocket request on its way to the Python side.
pub struct PendingWebsocket {
    pub parts: Parts,
    pub connection: Arc<ConnectionInfo>,
    pub io: WebsocketIo,
}

/// The channels of one WebSocket request that its protocol object owns.
pub struct WebsocketIo {
    /// The checked handshake: offered subprotocols, negotiated compression.
    pub opening: Opening,
    /// The HTTP answer: the accept response ([`crate::ws::handshake::accept_response`]) or a denial.
    pub responder: oneshot::Sender<ResponseIntent>,
    /// The open session, once the accept response went out and the connection switched protocols.
    pub upgraded: oneshot::Receiver<Result<WsChannels, CoreError>>,
    /// Cancelled when the client is gone before the handshake completes.
    pub disconnected: CancellationToken,
    pub runtime: Handle,
}

/// What an interface does with a request.
pub trait RequestHandler: Send + Sync + 'static {
    /// Python thread: build the interface's objects and start the app.
    fn start(&self, py: Python<'_>, request: PendingRequest);

    /// Python thread: start the app for a WebSocket request. Interfaces without WebSockets leave
    /// the default, which refuses the handshake.
    fn start_websocket(&self, _py: Python<'_>, request: PendingWebsocket) {
        let _ = request.io.responder.send(ResponseIntent::Ready(error_response(StatusCode::NOT_FOUND)));
    }
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
    fn dispatch<B: TransportBody>(
        &self,
        request: Request<B>,
        connection: Arc<ConnectionInfo>,
        permit: OwnedSemaphorePermit,
    ) -> impl Future<Output = Response<ResponseBody>> + Send {
        if let Some(settings) = &connection.server.websockets {
            if is_websocket_request(&request) {
                let handler = self.handler.clone();
                let bridge = self.pyloop.bridge.clone();
                let settings = settings.clone();
                // Boxed: a WebSocket's opening is rare next to requests, and its larger future
                // would otherwise set the size of every request's.
                return Either::Right(Box::pin(async move {
                    hand_off_websocket(request, connection, permit, &settings, move |pending| {
                        bridge.push_batched(Box::new(move |py| handler.start_websocket(py, pending)));
                    })
                    .await
                }));
            }
        }
        let handler = self.handler.clone();
        let bridge = self.pyloop.bridge.clone();
        Either::Left(hand_off(request, connection, permit, move |pending| {
            bridge.push_batched(Box::new(move |py| handler.start(py, pending)));
        }))
    }
}

/// The tokio side of every interface: packs the request, lets `send` hand it to the Python side,
/// waits for the response intent and turns it into the response (500 if none ever comes).
///
/// The request is packed and sent when this is called; the future returned holds only what the
/// wait for the response needs. (As an `async fn`, its future kept the request, its parts and its
/// body too, and each `async` layer above kept its own copy of the request: 2.7 KiB that hyper
/// copied per request, and several times per HTTP/2 stream; benchmarks/PROFILING.md.)
pub fn hand_off<B: TransportBody>(
    request: Request<B>,
    connection: Arc<ConnectionInfo>,
    permit: OwnedSemaphorePermit,
    send: impl FnOnce(PendingRequest),
) -> impl Future<Output = Response<ResponseBody>> + Send + 'static {
    let (responder, response) = oneshot::channel();
    // HTTP/1 carries one request at a time, and hyper drops its future only with the connection:
    // the connection's token serves it. An HTTP/2 stream can be reset alone: its own token, a
    // child of the connection's (which costs two allocations and two locks per request).
    let disconnected =
        if request.version() >= Version::HTTP_2 { connection.closed.child_token() } else { connection.closed.clone() };
    // If hyper drops this future (the client went away), the app hears about it.
    let guard = disconnected.clone().drop_guard();
    let runtime = Handle::current();
    let (parts, body) = request.into_parts();
    // A HEAD answer's body is drained without sending it, until the client is gone. (Each clone
    // of a token takes its lock, and so does each drop: only HEAD pays for this one.)
    let head_only = (parts.method == Method::HEAD).then(|| disconnected.clone());
    let (mut body, exceeded) = LimitedBody::new(body, connection.server.max_request_body_size);
    // A small body is asked for here, on the runtime, not by the app's first read (no wake-up
    // from outside the runtime). Asking sends `100 Continue`; with `Expect` the app's first read
    // decides that.
    if !parts.headers.contains_key(hyper::header::EXPECT) {
        body.prefetch_small();
    }
    let version = parts.version;
    send(PendingRequest { parts, connection, io: RequestIo { body, responder, disconnected, permit, runtime } });
    async move {
        let mut response = match response.await {
            Ok(intent) => materialize(intent).await,
            Err(_) => error_response(StatusCode::INTERNAL_SERVER_ERROR),
        };
        guard.disarm();
        if exceeded.is_some_and(|exceeded| exceeded.load(Ordering::Acquire)) {
            // The body outgrew the limit while the app read it (its length was not declared): the
            // app's read failed; a 500 for that is the client's fault, and the rest of the body is
            // not read, so an HTTP/1 connection cannot carry another request.
            response = body_too_large(version, Some(response));
        }
        match head_only {
            Some(client_gone) => without_body(response, &client_gone),
            None => response,
        }
    }
}

/// The tokio side of a WebSocket request: refuses a bad handshake, hands a good one to the Python
/// side with a task that starts the session once the app accepted and the connection switched.
/// The backpressure `permit` stays taken for as long as the WebSocket is open.
pub async fn hand_off_websocket<B>(
    mut request: Request<B>,
    connection: Arc<ConnectionInfo>,
    permit: OwnedSemaphorePermit,
    settings: &WsSettings,
    send: impl FnOnce(PendingWebsocket),
) -> Response<ResponseBody> {
    let opening = match inspect(&request, settings.deflate) {
        Ok(opening) => opening,
        Err(refusal) => return refusal_response(&refusal),
    };
    let on_upgrade = hyper::upgrade::on(&mut request);
    let (responder, response) = oneshot::channel();
    let (upgraded_tx, upgraded) = oneshot::channel();
    let disconnected = connection.closed.child_token();
    let guard = disconnected.clone().drop_guard();
    let server = connection.server.clone();
    let agreement = opening.deflate.clone();
    let settings = settings.clone();
    server.tasks.clone().spawn(async move {
        let outcome = match on_upgrade.await {
            Ok(upgraded) => {
                let io = TokioIo::new(upgraded);
                match session::start(io, agreement.as_ref(), &settings, server.shutdown.clone(), permit) {
                    Ok((channels, task)) => {
                        let open = server.metrics.as_ref().map(crate::metrics::WorkerMetrics::open_websocket);
                        server.tasks.spawn(async move {
                            task.await;
                            drop(open);
                        });
                        Ok(channels)
                    }
                    Err(err) => Err(CoreError::Closed(err.to_string())),
                }
            }
            // The app denied the connection, or the client left before the switch.
            Err(err) => Err(CoreError::Closed(err.to_string())),
        };
        let _ = upgraded_tx.send(outcome);
    });
    let (parts, _body) = request.into_parts();
    let runtime = Handle::current();
    send(PendingWebsocket {
        parts,
        connection,
        io: WebsocketIo { opening, responder, upgraded, disconnected, runtime },
    });
    let response = match response.await {
        Ok(intent) => materialize(intent).await,
        Err(_) => error_response(StatusCode::INTERNAL_SERVER_ERROR),
    };
    guard.disarm();
    response
}
