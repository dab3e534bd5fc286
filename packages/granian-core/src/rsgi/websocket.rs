//! RSGI WebSockets: the protocol object (`accept`, `close`), the transport (`receive`, `send_bytes`,
//! `send_str`) and received messages, on top of the shared engine ([`crate::pywebsocket`]).

use crate::apptask::AppOutcome;
use std::sync::Arc;

use bytes::Bytes;
use http::header::HeaderMap;
use http::StatusCode;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

use super::protocol::rsgi_error;
use crate::errors::CoreError;
use crate::http::{response, ResponseBody};
use crate::pywebsocket::{Received, WsConnection, WsHandshake};
use crate::ws::is_sendable_close_code;
use crate::ws::session::{codes, Message, Outbound};

/// `WebsocketMessageType` values.
const KIND_CLOSE: u8 = 0;
const KIND_BYTES: u8 = 1;
const KIND_STRING: u8 = 2;

/// A received message: `kind` (0 close, 1 bytes, 2 str) and `data`.
#[pyclass(frozen, module = "granian._core", name = "RSGIWebsocketMessage")]
pub struct WebsocketMessage {
    #[pyo3(get)]
    kind: u8,
    #[pyo3(get)]
    data: Py<PyAny>,
}

fn settle_message(py: Python<'_>, outcome: Result<Received, CoreError>) -> PyResult<Py<PyAny>> {
    let (kind, data) = match outcome.map_err(rsgi_error)? {
        Received::Message(Message::Binary(data)) => (KIND_BYTES, PyBytes::new(py, &data).into_any().unbind()),
        Received::Message(Message::Text(data)) => {
            // The session validated the UTF-8 already; Python's decoder is the only other pass.
            (KIND_STRING, PyString::from_bytes(py, &data)?.into_any().unbind())
        }
        Received::Closed(_) => (KIND_CLOSE, py.None()),
    };
    Ok(Py::new(py, WebsocketMessage { kind, data })?.into_any())
}

fn settle_sent(py: Python<'_>, outcome: Result<(), CoreError>) -> PyResult<Py<PyAny>> {
    outcome.map_err(rsgi_error)?;
    Ok(py.None())
}

fn settle_transport(py: Python<'_>, outcome: Result<Arc<WsConnection>, CoreError>) -> PyResult<Py<PyAny>> {
    let connection = outcome.map_err(rsgi_error)?;
    Ok(Py::new(py, WebsocketTransport { connection })?.into_any())
}

/// The protocol object of an RSGI WebSocket request (`scope.proto == 'ws'`).
#[pyclass(frozen, module = "granian._core", name = "RSGIWebsocketProtocol")]
pub struct WebsocketProtocol {
    handshake: WsHandshake,
}

impl WebsocketProtocol {
    pub fn new(handshake: WsHandshake) -> Self {
        Self { handshake }
    }

    /// The app is done: refuse a handshake it never answered (403, or 500 if it failed), close an
    /// open connection (1000, or 1011 if it failed).
    pub fn finish(&self, py: Python<'_>, app_failed: bool) {
        self.handshake.finish(py, app_failed, None);
    }
}

#[pymethods]
impl WebsocketProtocol {
    /// Accepts the connection; resolves with the transport once it is open.
    fn accept(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.handshake.accept(py, None, HeaderMap::new(), settle_transport)
    }

    /// Before `accept`: refuses the handshake with HTTP `status` (default 403). After: closes the
    /// connection with `status` as the close code (default 1000).
    #[pyo3(signature = (status=None))]
    fn close(&self, py: Python<'_>, status: Option<u16>) -> PyResult<()> {
        if self.handshake.is_pending() {
            let status = status.and_then(crate::http::status_from_u16).unwrap_or(StatusCode::FORBIDDEN);
            self.handshake.deny(py, empty(status));
            return Ok(());
        }
        if let Some(connection) = self.handshake.connection() {
            let code = status.filter(|code| is_sendable_close_code(*code)).unwrap_or(codes::NORMAL);
            connection.close(code, String::new());
        }
        Ok(())
    }
}

impl WebsocketProtocol {
    /// When the app's coroutine ends: logs its exception, then finishes.
    pub(crate) fn app_ended(py: Python<'_>, owner: &Bound<'_, PyAny>, outcome: AppOutcome) {
        if let Ok(protocol) = owner.cast::<Self>() {
            let protocol = protocol.get();
            let failed = protocol.handshake.pyloop().app_failed(py, &outcome, |_| false);
            protocol.finish(py, failed);
        }
    }
}

/// A refusal with the app's status and an empty body.
fn empty(status: StatusCode) -> http::Response<ResponseBody> {
    response(status, HeaderMap::new(), ResponseBody::Empty)
}

/// The transport of an accepted RSGI WebSocket.
#[pyclass(frozen, module = "granian._core", name = "RSGIWebsocketTransport")]
pub struct WebsocketTransport {
    connection: Arc<WsConnection>,
}

#[pymethods]
impl WebsocketTransport {
    /// The next message; a message of kind close once the connection is over.
    fn receive(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.connection.receive(py, settle_message)
    }

    fn send_bytes(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let data = crate::pybytes::to_bytes(data)?;
        self.connection.send(py, Outbound::Message(Message::Binary(data)), settle_sent)
    }

    fn send_str(&self, py: Python<'_>, data: &Bound<'_, PyString>) -> PyResult<Py<PyAny>> {
        let data = Bytes::copy_from_slice(data.to_str()?.as_bytes());
        self.connection.send(py, Outbound::Message(Message::Text(data)), settle_sent)
    }
}
