//! One open WebSocket. A task owns the socket; the app talks to it through two bounded channels.
//!
//! Flow control both ways: the task reads a frame only once the inbound channel has room for it (a
//! client that floods is read as fast as the app receives), and the app's sends wait while the
//! outbound channel is full (a client that stops reading cannot make the server buffer without
//! bound). Pings, pong timeouts, the close handshake and the server's shutdown (close 1001) are
//! handled here, the same way for every interface and for HTTP/1.1 and HTTP/2.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::SinkExt;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::sync::{mpsc, OwnedSemaphorePermit};
use tokio::time::{sleep_until, Instant};
use tokio_util::sync::CancellationToken;
use yawc::close::CloseCode;
use yawc::{Frame, OpCode, Options, Role, WebSocket, WebSocketError};

use super::deflate::DeflateAgreement;
use super::stream::{SessionStream, ViolationFlag};

/// How many messages wait in each direction before the sender has to wait.
const QUEUE: usize = 16;
/// Messages shorter than this are sent uncompressed: deflate cannot shrink them, and yawc 0.5 spins
/// forever compressing an empty message once the compression context holds data.
const COMPRESSION_THRESHOLD: usize = 64;
/// How long the server waits for the peer's close frame after sending its own.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Close codes the server uses (RFC 6455, section 7.4.1).
pub mod codes {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    pub const NO_STATUS: u16 = 1005;
    pub const ABNORMAL: u16 = 1006;
    pub const PROTOCOL_ERROR: u16 = 1002;
    pub const INTERNAL_ERROR: u16 = 1011;
}

/// WebSocket settings of a worker.
#[derive(Clone, Debug)]
pub struct WsSettings {
    /// Largest message accepted, in bytes, across fragments (larger: close 1009).
    pub max_message_size: usize,
    /// Interval between server pings; None sends none.
    pub ping_interval: Option<Duration>,
    /// How long a ping may go unanswered before the connection is closed.
    pub ping_timeout: Duration,
    /// Whether permessage-deflate is offered.
    pub deflate: bool,
}

/// A data message.
#[derive(Debug)]
pub enum Message {
    Text(Bytes),
    Binary(Bytes),
}

/// What the app asks the session to do.
pub enum Outbound {
    Message(Message),
    Close { code: u16, reason: String },
}

/// How a session ended: the close code and reason the app sees.
#[derive(Clone, Debug)]
pub struct Ending {
    pub code: u16,
    pub reason: String,
}

/// The app's side of a session.
pub struct WsChannels {
    pub inbound: mpsc::Receiver<Message>,
    pub outbound: mpsc::Sender<Outbound>,
    /// Set once the session is over (read it after `inbound` ends).
    pub ending: Arc<Mutex<Option<Ending>>>,
    /// Cancelled when the session is over.
    pub finished: CancellationToken,
}

impl WsChannels {
    /// How the session ended; 1006 if it has not reported yet.
    pub fn ending(&self) -> Ending {
        self.ending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .unwrap_or(Ending { code: codes::ABNORMAL, reason: String::new() })
    }
}

type Socket = WebSocket<SessionStream<TokioIo<Upgraded>>>;

/// Wraps an upgraded connection and returns the app's channels and the task to spawn.
///
/// `permit` (one unit of backpressure) is held until the session ends; `shutdown` closes it with 1001.
pub fn start(
    io: TokioIo<Upgraded>,
    agreement: Option<&DeflateAgreement>,
    settings: &WsSettings,
    shutdown: CancellationToken,
    permit: OwnedSemaphorePermit,
) -> Result<(WsChannels, impl std::future::Future<Output = ()> + Send + 'static), WebSocketError> {
    // yawc's limits are exclusive: a message of exactly `max_message_size` bytes is accepted.
    let limit = settings.max_message_size.saturating_add(1);
    let mut options = Options::default().with_utf8().with_limits(limit, limit).with_no_delay();
    let extension = agreement.map(DeflateAgreement::header_value);
    if agreement.is_some() {
        options = options.with_balanced_compression().with_compression_threshold(COMPRESSION_THRESHOLD);
    }
    let io = SessionStream::new(io);
    let violation = io.violation();
    let closed_cleanly = io.closed_cleanly();
    let close_sent = io.close_sent();
    let socket = WebSocket::from_stream_with_extensions(io, Role::Server, extension.as_deref(), options)?;
    let (inbound_tx, inbound) = mpsc::channel(QUEUE);
    let (outbound, outbound_rx) = mpsc::channel(QUEUE);
    let ending = Arc::new(Mutex::new(None));
    let finished = CancellationToken::new();
    let session = Session {
        socket,
        inbound: inbound_tx,
        outbound: outbound_rx,
        ping_interval: settings.ping_interval,
        ping_timeout: settings.ping_timeout,
        shutdown,
        violation,
        closed_cleanly,
        close_sent,
    };
    let report = ending.clone();
    let done = finished.clone();
    let task = async move {
        let mut session = session;
        let end = session.run().await;
        // Report before the channels close, so an app that sees them close reads the real ending.
        *report.lock().unwrap_or_else(|e| e.into_inner()) = Some(end);
        done.cancel();
        drop(session);
        drop(permit);
    };
    Ok((WsChannels { inbound, outbound, ending, finished }, task))
}

struct Session {
    socket: Socket,
    inbound: mpsc::Sender<Message>,
    outbound: mpsc::Receiver<Outbound>,
    ping_interval: Option<Duration>,
    ping_timeout: Duration,
    shutdown: CancellationToken,
    /// Set when the peer sent a frame that must be refused (the stream then ends before it).
    violation: ViolationFlag,
    /// Set once the close handshake is complete: the stream lingers for the peer's end when dropped.
    closed_cleanly: Arc<AtomicBool>,
    /// Set by the stream once a close frame went out (nothing may follow it).
    close_sent: Arc<AtomicBool>,
}

/// The close code the server sends for a frame error the framing layer reports.
fn error_close_code(err: &WebSocketError) -> u16 {
    match err {
        WebSocketError::FrameTooLarge => 1009,
        WebSocketError::InvalidUTF8 => 1007,
        _ => codes::PROTOCOL_ERROR,
    }
}

fn close_frame(code: u16, reason: &str) -> Frame {
    Frame::close(CloseCode::from(code), super::close_reason(reason).as_bytes())
}

impl Session {
    async fn run(&mut self) -> Ending {
        // Timers and the shutdown wait are created once and re-armed, not rebuilt on every frame.
        let far = Instant::now() + Duration::from_secs(86_400 * 365);
        let ping_timer = sleep_until(self.ping_interval.map_or(far, |interval| Instant::now() + interval));
        let pong_timer = sleep_until(far);
        let close_timer = sleep_until(far);
        let shutdown = self.shutdown.clone();
        let shutdown = shutdown.cancelled();
        tokio::pin!(ping_timer, pong_timer, close_timer, shutdown);
        let mut awaiting_pong = false;
        let mut inbound_permit: Option<mpsc::OwnedPermit<Message>> = None;
        // Once the server sent its close frame: what the app is told (the timer then runs out the wait).
        let mut closing: Option<Ending> = None;
        loop {
            let closing_before = closing.is_some();
            tokio::select! {
                biased;
                _ = &mut shutdown, if closing.is_none() => {
                    closing = self.send_close(codes::GOING_AWAY, "server shutting down").await;
                    if closing.is_none() {
                        return abnormal();
                    }
                }
                _ = &mut close_timer, if closing.is_some() => {
                    return closing.unwrap_or_else(abnormal);
                }
                _ = &mut pong_timer, if closing.is_none() && awaiting_pong => {
                    // The peer stopped answering: it is gone, or too slow to serve.
                    let _ = self.send_close(codes::INTERNAL_ERROR, "ping timeout").await;
                    return Ending { code: codes::ABNORMAL, reason: "ping timeout".into() };
                }
                _ = &mut ping_timer, if closing.is_none() && self.ping_interval.is_some() => {
                    if !self.send_frame(Frame::ping(Bytes::new())).await {
                        return abnormal();
                    }
                    if !awaiting_pong {
                        awaiting_pong = true;
                        pong_timer.as_mut().reset(Instant::now() + self.ping_timeout);
                    }
                    let next = self.ping_interval.map_or(far, |interval| Instant::now() + interval);
                    ping_timer.as_mut().reset(next);
                }
                command = self.outbound.recv(), if closing.is_none() => {
                    let sent = match command {
                        Some(Outbound::Message(Message::Text(data))) => self.send_frame(Frame::text(data)).await,
                        Some(Outbound::Message(Message::Binary(data))) => self.send_frame(Frame::binary(data)).await,
                        Some(Outbound::Close { code, reason }) => {
                            closing = self.send_close(code, &reason).await;
                            closing.is_some()
                        }
                        // The app let go of the connection without closing it.
                        None => {
                            closing = self.send_close(codes::NORMAL, "").await;
                            closing.is_some()
                        }
                    };
                    if !sent {
                        return abnormal();
                    }
                }
                permit = self.inbound.clone().reserve_owned(), if inbound_permit.is_none() && closing.is_none() => {
                    match permit {
                        Ok(permit) => inbound_permit = Some(permit),
                        // The app stopped listening: close normally.
                        Err(_) => {
                            closing = self.send_close(codes::NORMAL, "").await;
                            if closing.is_none() {
                                return abnormal();
                            }
                        }
                    }
                }
                frame = self.socket.next_frame(), if inbound_permit.is_some() || closing.is_some() => {
                    let frame = match frame {
                        Ok(frame) => frame,
                        Err(WebSocketError::ConnectionClosed) => {
                            if let (None, Some(violation)) = (&closing, self.violation.get()) {
                                let reason = violation.reason();
                                let _ = self.send_frame(close_frame(codes::PROTOCOL_ERROR, reason)).await;
                                return Ending { code: codes::PROTOCOL_ERROR, reason: reason.into() };
                            }
                            return closing.unwrap_or_else(abnormal);
                        }
                        Err(err) => {
                            // Errors found while reading a frame made yawc queue a close frame;
                            // errors found when assembling a message did not: send one only then.
                            let code = error_close_code(&err);
                            // Readying the sink writes what yawc queued (its close frame, if any).
                            let socket = &mut self.socket;
                            let queued = futures_util::future::poll_fn(|cx| socket.poll_ready_unpin(cx));
                            let _ = tokio::time::timeout(CLOSE_TIMEOUT, queued).await;
                            if !self.close_sent.load(Ordering::Relaxed) {
                                let _ = self.send_frame(close_frame(code, "")).await;
                            }
                            self.write_pending_replies().await;
                            return Ending { code, reason: err.to_string() };
                        }
                    };
                    match frame.opcode() {
                        OpCode::Text | OpCode::Binary if closing.is_some() => {}
                        OpCode::Text => deliver(&mut inbound_permit, Message::Text(frame.into_payload())),
                        OpCode::Binary => deliver(&mut inbound_permit, Message::Binary(frame.into_payload())),
                        OpCode::Close => {
                            let peer = Ending {
                                code: frame.close_code().map_or(codes::NO_STATUS, u16::from),
                                reason: frame.close_reason().ok().flatten().unwrap_or_default().to_owned(),
                            };
                            self.closed_cleanly.store(true, Ordering::Relaxed);
                            if let Some(ending) = closing {
                                // The peer answered our close. yawc queued a close in reply, which
                                // must not go out (nothing may follow a close frame): it is dropped
                                // unsent with the socket, whose stream then ends our side.
                                return ending;
                            }
                            // The framing layer queued the answer to the peer's close: write it.
                            self.write_pending_replies().await;
                            return peer;
                        }
                        OpCode::Pong => awaiting_pong = false,
                        OpCode::Ping | OpCode::Continuation => {}
                    }
                }
            }
            if closing.is_some() && !closing_before {
                close_timer.as_mut().reset(Instant::now() + CLOSE_TIMEOUT);
            }
        }
    }

    /// Writes the frames the framing layer queued in reply (the answer to a close, a pong).
    ///
    /// yawc writes them when the read side is polled again; once the connection is closing, that
    /// poll writes them and reports the end of the stream.
    async fn write_pending_replies(&mut self) {
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, self.socket.next_frame()).await;
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, self.socket.flush()).await;
    }

    /// Sends a frame unless the server is shutting down while the peer does not read.
    async fn send_frame(&mut self, frame: Frame) -> bool {
        let shutdown = self.shutdown.clone();
        tokio::select! {
            biased;
            result = self.socket.send(frame) => result.is_ok(),
            _ = shutdown.cancelled() => {
                // Give a slow reader the drain grace, not forever.
                false
            }
        }
    }

    /// Sends a close frame; returns what the app will be told (None when it could not be sent).
    async fn send_close(&mut self, code: u16, reason: &str) -> Option<Ending> {
        let sent = tokio::time::timeout(CLOSE_TIMEOUT, self.socket.send(close_frame(code, reason))).await;
        match sent {
            Ok(Ok(())) => Some(Ending { code, reason: reason.to_owned() }),
            _ => None,
        }
    }
}

fn deliver(permit: &mut Option<mpsc::OwnedPermit<Message>>, message: Message) {
    if let Some(permit) = permit.take() {
        permit.send(message);
    }
}

fn abnormal() -> Ending {
    Ending { code: codes::ABNORMAL, reason: String::new() }
}
