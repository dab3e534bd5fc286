//! One QUIC connection: its handshake, its HTTP/3 control, and a task per request.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http::Request;
use rustls::pki_types::CertificateDer;
use tokio_util::task::TaskTracker;

use super::body::{send_response, StreamBody};
use super::transport::{self, Cancellations};
use super::{CLOSE_GRACE, NO_ERROR};
use crate::metrics::{Field, WorkerMetrics};
use crate::net::Endpoint;
use crate::tls::bounded_handshake;
use crate::tls::info::{ServerCertificate, TlsInfo};
use crate::workers::{respond, ConnectionInfo, Dispatcher, Engine};

/// TLS 1.3, the only version QUIC runs on (RFC 9001).
const TLS13: u16 = 0x0304;

type Resolver = h3::server::RequestResolver<transport::Connection, Bytes>;

/// A client's first packet, with what its connection needs from the endpoint.
pub struct Accepted {
    pub incoming: quinn::Incoming,
    pub local: SocketAddr,
    pub certificate: Arc<ServerCertificate>,
    /// Handshakes in progress on the endpoint.
    pub handshakes: Arc<AtomicUsize>,
}

/// Serves one connection until the client closes it, it idles out, or the worker stops (then its
/// requests in flight finish first, up to the drain timeout).
pub async fn serve<D: Dispatcher>(accepted: Accepted, engine: Arc<Engine<D>>) {
    let Accepted { incoming, local, certificate, handshakes } = accepted;
    let peer = incoming.remote_address();
    let _open = engine.context.metrics.as_ref().map(WorkerMetrics::open_connection);
    handshakes.fetch_add(1, Ordering::Relaxed);
    // A stopping worker abandons its handshakes: such a connection could make no request anyway
    // (it would be sent GOAWAY at once), and a client that never finishes would hold the stop up.
    let handshake = tokio::select! {
        biased;
        done = handshake(incoming) => done,
        () = engine.shutdown.cancelled() => Err("the worker is stopping".to_owned()),
    };
    handshakes.fetch_sub(1, Ordering::Relaxed);
    let connection = match handshake {
        Ok(connection) => connection,
        Err(reason) => {
            if let Some(metrics) = &engine.context.metrics {
                metrics.increment(Field::TlsHandshakeFailures);
                metrics.increment(Field::ConnectionsFailed);
            }
            if let Some(debug) = &engine.debug {
                debug(format!("QUIC handshake with {peer} failed: {reason}"));
            }
            return;
        }
    };
    let client: Vec<CertificateDer<'static>> = connection
        .peer_identity()
        .and_then(|identity| identity.downcast::<Vec<CertificateDer<'static>>>().ok())
        .map(|chain| *chain)
        .unwrap_or_default();
    let tls = TlsInfo::new(TLS13, 0, &certificate, &client);
    let info = Arc::new(ConnectionInfo::new(
        Endpoint::tcp(local),
        Endpoint::tcp(peer),
        Some(tls),
        None,
        engine.context.clone(),
    ));
    let cancellations = Cancellations::default();
    let built = h3::server::builder()
        .max_field_section_size(engine.max_head_bytes as u64)
        .build::<_, Bytes>(transport::Connection::new(connection.clone(), cancellations.clone()))
        .await;
    let mut h3 = match built {
        Ok(h3) => h3,
        Err(err) => {
            if let Some(debug) = &engine.debug {
                debug(format!("HTTP/3 connection with {peer} failed to start: {err}"));
            }
            return;
        }
    };
    let requests = TaskTracker::new();
    // Ending in order: GOAWAY was exchanged (sent by us on stop, or by the client). The connection
    // closes once the requests in flight are answered and the client had a moment to take the last
    // responses (closing drops what it has not acknowledged) or to close it itself. Meanwhile h3
    // goes on accepting: it refuses (H3_REQUEST_REJECTED, safe to retry) what comes after GOAWAY.
    let mut ending = false;
    let mut accepting = true;
    let grace = tokio::time::sleep(CLOSE_GRACE);
    tokio::pin!(grace);
    let mut in_grace = false;
    loop {
        tokio::select! {
            accepted = h3.accept(), if accepting => match accepted {
                Ok(Some(resolver)) => {
                    in_grace = false;
                    requests.spawn(exchange(resolver, engine.clone(), info.clone(), cancellations.clone()));
                }
                Ok(None) => {
                    accepting = false;
                    ending = true;
                    requests.close();
                }
                // The connection is lost.
                Err(_) => break,
            },
            _ = engine.shutdown.cancelled(), if !ending => {
                ending = true;
                // GOAWAY naming the first stream not accepted (h3 counts from the last accepted):
                // no new requests on this connection; those in flight finish.
                let _ = tokio::time::timeout(CLOSE_GRACE, h3.shutdown(1)).await;
                requests.close();
            }
            _ = requests.wait(), if ending && !in_grace => {
                in_grace = true;
                grace.as_mut().reset(tokio::time::Instant::now() + CLOSE_GRACE);
            }
            _ = &mut grace, if in_grace => {
                connection.close(NO_ERROR, b"");
                break;
            }
            _ = connection.closed(), if ending => break,
            _ = engine.abort.cancelled() => {
                connection.close(NO_ERROR, b"drain timeout");
                break;
            }
        }
    }
    // Apps still waiting on a request of this connection hear that it is gone.
    info.closed.cancel();
}

async fn handshake(incoming: quinn::Incoming) -> Result<quinn::Connection, String> {
    let connecting = incoming.accept().map_err(|err| err.to_string())?;
    bounded_handshake(connecting).await
}

/// One request: its head, then the engine's answer written back on its stream. A client that
/// cancels the request meanwhile (STOP_SENDING) ends it at once: the app hears that the client is
/// gone, as for a reset HTTP/2 stream, and the access log records 499.
async fn exchange<D: Dispatcher>(
    resolver: Resolver,
    engine: Arc<Engine<D>>,
    info: Arc<ConnectionInfo>,
    cancellations: Cancellations,
) {
    // Taken before anything can fail, so that no stream's signal outlives its request. (h3 0.0.8
    // names the stream of an unresolved request only through this public field; Cargo.toml pins
    // h3 to 0.0.8.)
    let cancelled = cancellations.take(resolver.frame_stream.id());
    let (request, stream) = match resolver.resolve_request().await {
        Ok(resolved) => resolved,
        Err(err) => {
            if let Some(debug) = &engine.debug {
                debug(format!("HTTP/3 request from {} refused: {err}", info.peer));
            }
            return;
        }
    };
    let (mut send, receive) = stream.split();
    let (parts, ()) = request.into_parts();
    let head_only = parts.method == http::Method::HEAD;
    let body = StreamBody::new(receive, &parts.headers);
    let request = Request::from_parts(parts, body);
    let arrival = engine.arrive(&request, &info);
    let answer = async {
        let response = arrival.observe(respond(request, &engine, &info).await, None);
        send_response(&mut send, response, head_only).await
    };
    let outcome = match cancelled {
        Some(cancelled) => tokio::select! {
            biased;
            outcome = answer => outcome,
            () = cancelled => Err("the client cancelled the request".to_owned()),
        },
        None => answer.await,
    };
    if let Err(reason) = outcome {
        if let Some(debug) = &engine.debug {
            debug(format!("HTTP/3 response to {} not completed: {reason}", info.peer));
        }
    }
}
