//! Starting the RSGI app for a request, on the Python thread.

use std::sync::Arc;

use pyo3::prelude::*;

use super::protocol::HttpProtocol;
use super::scope::HttpScope;
use super::websocket::WebsocketProtocol;
use crate::apptask::AppEnded;
use crate::dispatch::{PendingRequest, PendingWebsocket, RequestHandler};
use crate::pyloop::PyLoop;
use crate::pywebsocket::WsHandshake;

/// The RSGI application of a worker and the loop it runs on.
pub struct RsgiHandler {
    callback: Py<PyAny>,
    pyloop: Arc<PyLoop>,
}

impl RsgiHandler {
    pub fn new(callback: Py<PyAny>, pyloop: Arc<PyLoop>) -> Self {
        Self { callback, pyloop }
    }
}

impl RsgiHandler {
    /// Calls `callback(scope, protocol)` as a task; `ended` hears how it ended, `failed` answers
    /// when the app cannot start.
    fn run<P: pyo3::PyClass>(
        &self,
        py: Python<'_>,
        scope: HttpScope,
        protocol: &Py<P>,
        ended: AppEnded,
        failed: impl FnOnce(),
    ) {
        self.pyloop.start_app(
            py,
            || {
                let coroutine = self.callback.call1(py, (Py::new(py, scope)?, protocol.clone_ref(py)))?;
                Ok((coroutine, protocol.clone_ref(py).into_any()))
            },
            ended,
            failed,
        );
    }
}

impl RequestHandler for RsgiHandler {
    fn start(&self, py: Python<'_>, request: PendingRequest) {
        let scope = HttpScope::new(request.parts, request.connection);
        let Ok(protocol) = Py::new(py, HttpProtocol::new(self.pyloop.clone(), request.io)) else { return };
        self.run(py, scope, &protocol, HttpProtocol::app_ended, || protocol.get().finish(py, true));
    }

    fn start_websocket(&self, py: Python<'_>, request: PendingWebsocket) {
        let scope = HttpScope::websocket(request.parts, request.connection);
        let handshake = WsHandshake::new(request.io, self.pyloop.clone());
        let Ok(protocol) = Py::new(py, WebsocketProtocol::new(handshake)) else { return };
        self.run(py, scope, &protocol, WebsocketProtocol::app_ended, || protocol.get().finish(py, true));
    }
}
