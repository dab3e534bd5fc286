//! The ASGI WebSocket protocol (spec 2.5): `receive()` and `send()` for one connection, on top of
//! the shared engine ([`crate::pywebsocket`]).
//!
//! `receive()` yields `websocket.connect` first, then the client's messages, then one
//! `websocket.disconnect` with the close code and reason (also after a close the server started).
//! `send()` takes `websocket.accept` (subprotocol, headers), `websocket.send`, `websocket.close`
//! (before accept: HTTP 403) and the `websocket.http.response` denial. After the client left,
//! `send()` raises `ClientDisconnected` (an `OSError`), as spec 2.4 asks for HTTP.

use crate::apptask::AppOutcome;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Bytes, BytesMut};
use http::header::HeaderMap;
use http::StatusCode;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};

use super::protocol::{asgi_error, bytes_of, headers_from_message};
use crate::errors::{ClientDisconnected, CoreError};
use crate::http::{response, status_from_u16, ResponseBody};
use crate::pywebsocket::{Received, WsConnection, WsHandshake};
use crate::ws::is_sendable_close_code;
use crate::ws::session::{codes, Ending, Message, Outbound};

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// A denial response being built from `websocket.http.response.*` messages.
struct Denial {
    status: StatusCode,
    headers: HeaderMap,
    body: BytesMut,
}

#[pyclass(frozen, module = "granian._core", name = "ASGIWebsocketProtocol")]
pub struct WebsocketProtocol {
    handshake: WsHandshake,
    /// Whether `websocket.connect` was delivered.
    connect_delivered: Mutex<bool>,
    denial: Mutex<Option<Denial>>,
}

fn disconnect_message(py: Python<'_>, ending: &Ending) -> PyResult<Py<PyAny>> {
    let message = PyDict::new(py);
    message.set_item(intern!(py, "type"), intern!(py, "websocket.disconnect"))?;
    message.set_item(intern!(py, "code"), ending.code)?;
    message.set_item(intern!(py, "reason"), &ending.reason)?;
    Ok(message.into_any().unbind())
}

fn settle_received(py: Python<'_>, outcome: Result<Received, CoreError>) -> PyResult<Py<PyAny>> {
    match outcome.map_err(asgi_error)? {
        Received::Message(message) => {
            let dict = PyDict::new(py);
            dict.set_item(intern!(py, "type"), intern!(py, "websocket.receive"))?;
            match message {
                Message::Binary(data) => {
                    dict.set_item(intern!(py, "bytes"), PyBytes::new(py, &data))?;
                    dict.set_item(intern!(py, "text"), py.None())?;
                }
                Message::Text(data) => {
                    // The session validated the UTF-8 already; Python's decoder is the only other pass.
                    dict.set_item(intern!(py, "text"), PyString::from_bytes(py, &data)?)?;
                    dict.set_item(intern!(py, "bytes"), py.None())?;
                }
            }
            Ok(dict.into_any().unbind())
        }
        Received::Closed(ending) => disconnect_message(py, &ending),
    }
}

fn settle_sent(py: Python<'_>, outcome: Result<(), CoreError>) -> PyResult<Py<PyAny>> {
    outcome.map_err(asgi_error)?;
    Ok(py.None())
}

/// `send(websocket.accept)` resolves once the connection is open; a client that already left is
/// reported by the next `receive()` (a disconnect), not by an exception here.
fn settle_accepted(py: Python<'_>, outcome: Result<Arc<WsConnection>, CoreError>) -> PyResult<Py<PyAny>> {
    match outcome {
        Ok(_) | Err(CoreError::Closed(_)) => Ok(py.None()),
        Err(err) => Err(asgi_error(err)),
    }
}

fn gone() -> Ending {
    Ending { code: codes::ABNORMAL, reason: String::new() }
}

fn message_type(message: &Bound<'_, PyDict>) -> PyResult<String> {
    let kind = message
        .get_item(intern!(message.py(), "type"))?
        .ok_or_else(|| PyValueError::new_err("ASGI message without a 'type' key"))?;
    Ok(kind.cast::<PyString>()?.to_str()?.to_owned())
}

/// The payload of `websocket.send`: exactly one of `bytes` and `text` (the other absent or None).
fn outgoing(message: &Bound<'_, PyDict>) -> PyResult<Message> {
    let py = message.py();
    let bytes = message.get_item(intern!(py, "bytes"))?.filter(|v| !v.is_none());
    let text = message.get_item(intern!(py, "text"))?.filter(|v| !v.is_none());
    match (bytes, text) {
        (Some(bytes), None) => Ok(Message::Binary(bytes_of(&bytes, "websocket.send 'bytes'")?)),
        (None, Some(text)) => {
            let text = text.cast::<PyString>().map_err(|_| PyValueError::new_err("'text' must be a str"))?;
            Ok(Message::Text(Bytes::copy_from_slice(text.to_str()?.as_bytes())))
        }
        _ => Err(PyValueError::new_err("'websocket.send' needs exactly one of 'bytes' and 'text'")),
    }
}

fn close_of(message: &Bound<'_, PyDict>) -> PyResult<(u16, String)> {
    let py = message.py();
    let code: u16 = match message.get_item(intern!(py, "code"))? {
        Some(code) if !code.is_none() => code.extract()?,
        _ => codes::NORMAL,
    };
    if !is_sendable_close_code(code) {
        return Err(PyValueError::new_err(format!("{code} is not a close code an application may send")));
    }
    let reason: String = match message.get_item(intern!(py, "reason"))? {
        Some(reason) if !reason.is_none() => reason.extract()?,
        _ => String::new(),
    };
    Ok((code, reason))
}

impl WebsocketProtocol {
    pub fn new(handshake: WsHandshake) -> Self {
        Self { handshake, connect_delivered: Mutex::new(false), denial: Mutex::new(None) }
    }

    /// The app is done: refuse a handshake it never answered (403, or 500 if it failed; a denial
    /// response it started is sent as far as it got), close an open connection (1000, or 1011).
    pub fn finish(&self, py: Python<'_>, app_failed: bool) {
        let denial = lock(&self.denial)
            .take()
            .map(|denial| response(denial.status, denial.headers, ResponseBody::full(denial.body.freeze())));
        self.handshake.finish(py, app_failed, denial);
    }

    fn send_denial(&self, py: Python<'_>, kind: &str, message: &Bound<'_, PyDict>) -> PyResult<Py<PyAny>> {
        if !self.handshake.is_pending() {
            return Err(PyRuntimeError::new_err(format!(
                "Unexpected ASGI message '{kind}': the WebSocket was already accepted or closed"
            )));
        }
        let mut denial = lock(&self.denial);
        if kind == "websocket.http.response.start" {
            if denial.is_some() {
                return Err(PyRuntimeError::new_err(format!(
                    "Unexpected ASGI message '{kind}': the response already started"
                )));
            }
            let code: u16 = message
                .get_item(intern!(py, "status"))?
                .ok_or_else(|| PyValueError::new_err("'websocket.http.response.start' needs a 'status'"))?
                .extract()?;
            let status = status_from_u16(code)
                .ok_or_else(|| PyValueError::new_err(format!("{code} is not a valid HTTP status")))?;
            *denial = Some(Denial { status, headers: headers_from_message(message)?, body: BytesMut::new() });
            return Ok(self.handshake.pyloop().done(py));
        }
        let Some(current) = denial.as_mut() else {
            return Err(PyRuntimeError::new_err(
                "Unexpected ASGI message 'websocket.http.response.body': expected 'websocket.http.response.start' first",
            ));
        };
        if let Some(body) = message.get_item(intern!(py, "body"))? {
            current.body.extend_from_slice(&bytes_of(&body, "response body")?);
        }
        let more = match message.get_item(intern!(py, "more_body"))? {
            Some(more) => more.is_truthy()?,
            None => false,
        };
        if !more {
            if let Some(done) = denial.take() {
                drop(denial);
                self.handshake.deny(py, response(done.status, done.headers, ResponseBody::full(done.body.freeze())));
            }
        }
        Ok(self.handshake.pyloop().done(py))
    }
}

#[pymethods]
impl WebsocketProtocol {
    /// `await receive()`.
    fn receive(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let pyloop = self.handshake.pyloop().clone();
        {
            let mut delivered = lock(&self.connect_delivered);
            if !*delivered {
                *delivered = true;
                let message = PyDict::new(py);
                message.set_item(intern!(py, "type"), intern!(py, "websocket.connect"))?;
                return pyloop.ready(py, Ok(message.into_any().unbind()));
            }
        }
        if let Some(connection) = self.handshake.connection() {
            return connection.receive(py, settle_received);
        }
        // Not open yet: wait for the handshake to finish (accept, denial, or the client leaving).
        let open = self.handshake.open.clone();
        let disconnected = self.handshake.disconnected.clone();
        let work = async move {
            tokio::select! {
                connection = open.wait() => Ok(match connection {
                    Some(connection) => connection.recv().await,
                    None => Received::Closed(gone()),
                }),
                _ = disconnected.cancelled() => Ok(Received::Closed(gone())),
            }
        };
        pyloop.spawn_awaitable(py, self.handshake.runtime(), work, settle_received)
    }

    /// `await send(message)`.
    fn send(&self, py: Python<'_>, message: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let message = message.cast::<PyDict>().map_err(|_| PyValueError::new_err("ASGI messages must be dicts"))?;
        let kind = message_type(message)?;
        let pyloop = self.handshake.pyloop().clone();
        match kind.as_str() {
            "websocket.accept" => {
                if lock(&self.denial).is_some() {
                    return Err(PyRuntimeError::new_err(
                        "Unexpected ASGI message 'websocket.accept': a denial response already started",
                    ));
                }
                let subprotocol: Option<String> = match message.get_item(intern!(py, "subprotocol"))? {
                    Some(value) if !value.is_none() => Some(value.extract()?),
                    _ => None,
                };
                let headers = headers_from_message(message)?;
                if !self.handshake.is_pending() {
                    return Err(PyRuntimeError::new_err(
                        "Unexpected ASGI message 'websocket.accept': the WebSocket was already accepted or closed",
                    ));
                }
                self.handshake.accept(py, subprotocol.as_deref(), headers, settle_accepted)
            }
            "websocket.send" => {
                let payload = outgoing(message)?;
                if let Some(connection) = self.handshake.connection() {
                    if connection.is_finished() {
                        return Err(ClientDisconnected::new_err("the WebSocket is closed"));
                    }
                    return connection.send(py, Outbound::Message(payload), settle_sent);
                }
                if self.handshake.is_pending() {
                    return Err(PyRuntimeError::new_err(
                        "Unexpected ASGI message 'websocket.send': expected 'websocket.accept' first",
                    ));
                }
                // Accepted, still opening: send once open.
                let open = self.handshake.open.clone();
                let work = async move {
                    match open.wait().await {
                        Some(connection) => connection.send_async(Outbound::Message(payload)).await,
                        None => Err(CoreError::Closed("the WebSocket is closed".into())),
                    }
                };
                pyloop.spawn_awaitable(py, self.handshake.runtime(), work, settle_sent)
            }
            "websocket.close" => {
                let (code, reason) = close_of(message)?;
                if self.handshake.is_pending() {
                    lock(&self.denial).take();
                    self.handshake.deny(py, response(StatusCode::FORBIDDEN, HeaderMap::new(), ResponseBody::Empty));
                    return Ok(pyloop.done(py));
                }
                match self.handshake.connection() {
                    Some(connection) if !connection.is_finished() => {
                        connection.send(py, Outbound::Close { code, reason }, settle_sent)
                    }
                    Some(_) => Err(ClientDisconnected::new_err("the WebSocket is closed")),
                    None => {
                        let open = self.handshake.open.clone();
                        let work = async move {
                            if let Some(connection) = open.wait().await {
                                connection.send_async(Outbound::Close { code, reason }).await?;
                            }
                            Ok(())
                        };
                        pyloop.spawn_awaitable(py, self.handshake.runtime(), work, settle_sent)
                    }
                }
            }
            "websocket.http.response.start" | "websocket.http.response.body" => self.send_denial(py, &kind, message),
            other => Err(PyRuntimeError::new_err(format!(
                "Unexpected ASGI message '{other}': a WebSocket app sends 'websocket.accept', 'websocket.send', \
                 'websocket.close' or 'websocket.http.response.start'/'.body'"
            ))),
        }
    }
}

impl WebsocketProtocol {
    /// When the app's coroutine ends: logs its exception (not a client disconnect), then finishes.
    pub(crate) fn app_ended(py: Python<'_>, owner: &Bound<'_, PyAny>, outcome: AppOutcome) {
        if let Ok(protocol) = owner.cast::<Self>() {
            let protocol = protocol.get();
            let failed =
                protocol.handshake.pyloop().app_failed(py, &outcome, |exc| exc.is_instance_of::<ClientDisconnected>());
            protocol.finish(py, failed);
        }
    }
}
