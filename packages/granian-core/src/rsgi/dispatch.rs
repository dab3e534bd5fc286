//! Hands requests to the RSGI app: the tokio side queues the request on the bridge and waits for
//! the response intent; the Python side builds scope and protocol and starts the app's task.

use std::sync::Arc;

use http::request::Parts;
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use pyo3::prelude::*;
use tokio::runtime::Handle;
use tokio::sync::{oneshot, OwnedSemaphorePermit};
use tokio_util::sync::CancellationToken;

use super::protocol::HttpProtocol;
use super::scope::HttpScope;
use crate::http::{error_response, materialize, ResponseBody, ResponseIntent};
use crate::pyloop::PyLoop;
use crate::workers::{ConnectionInfo, Dispatcher};

/// The RSGI application of a worker and the loop it runs on.
pub struct RsgiDispatcher {
    app: Arc<RsgiApp>,
}

struct RsgiApp {
    callback: Py<PyAny>,
    pyloop: Arc<PyLoop>,
}

impl RsgiDispatcher {
    pub fn new(callback: Py<PyAny>, pyloop: Arc<PyLoop>) -> Self {
        Self {
            app: Arc::new(RsgiApp { callback, pyloop }),
        }
    }
}

impl Dispatcher for RsgiDispatcher {
    async fn dispatch(
        &self,
        request: Request<Incoming>,
        connection: Arc<ConnectionInfo>,
        permit: OwnedSemaphorePermit,
    ) -> Response<ResponseBody> {
        let (responder, response) = oneshot::channel();
        let disconnected = connection.closed.child_token();
        // If hyper drops this future (the client went away), the app hears about it.
        let guard = disconnected.clone().drop_guard();
        let app = self.app.clone();
        let runtime = Handle::current();
        let (parts, body) = request.into_parts();
        self.app.pyloop.bridge.push_batched(Box::new(move |py| {
            let request = PendingRequest {
                parts,
                body,
                connection,
                responder,
                disconnected,
                permit,
                runtime,
            };
            start_request(py, &app, request);
        }));
        let response = match response.await {
            Ok(intent) => materialize(intent).await,
            Err(_) => error_response(StatusCode::INTERNAL_SERVER_ERROR),
        };
        guard.disarm();
        response
    }
}

struct PendingRequest {
    parts: Parts,
    body: Incoming,
    connection: Arc<ConnectionInfo>,
    responder: oneshot::Sender<ResponseIntent>,
    disconnected: CancellationToken,
    permit: OwnedSemaphorePermit,
    runtime: Handle,
}

fn start_request(py: Python<'_>, app: &RsgiApp, request: PendingRequest) {
    let scope = HttpScope::new(request.parts, request.connection);
    let protocol = HttpProtocol::new(
        app.pyloop.clone(),
        request.runtime,
        request.body,
        request.responder,
        request.disconnected,
        request.permit,
    );
    let Ok(protocol) = Py::new(py, protocol) else {
        return;
    };
    let started = (|| -> PyResult<()> {
        let coroutine = app
            .callback
            .call1(py, (Py::new(py, scope)?, protocol.clone_ref(py)))?;
        let task = app.pyloop.create_task(py, coroutine)?;
        task.call_method1(
            pyo3::intern!(py, "add_done_callback"),
            (protocol.getattr(py, "_task_done")?,),
        )?;
        Ok(())
    })();
    if let Err(err) = started {
        app.pyloop.log_error(
            py,
            "Application callable raised an exception",
            Some(err.value(py).as_any()),
        );
        protocol.get().finish(py);
    }
}
