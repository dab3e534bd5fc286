//! HTTP/3 over QUIC (`--http3`): a QUIC endpoint per worker on the TCP listener's address and port,
//! whose requests go through the same engine as HTTP/1.1 and HTTP/2 (static files, backpressure,
//! the interface's dispatcher, access log, metrics).
//!
//! The supervisor binds one UDP socket per worker slot, all on the same address with
//! `SO_REUSEPORT`, and keeps them for the server's life; each worker serves its slot's socket.
//! Linux picks the socket for a datagram by hashing its addresses over the group, so all of one
//! client's datagrams reach the same worker, and since the group never changes, replacing a worker
//! moves no other worker's clients (connection migration is off: a new client address would hash
//! elsewhere). A replacement worker (reload, recycling, respawn) starts serving its slot's socket
//! only once the previous one has drained and let go of the slot's lock file: two processes reading
//! one socket would each get a share of the other's datagrams. See docs/http3.md for the trade-offs.

pub mod body;
mod connection;
mod transport;

use std::fs::{File, OpenOptions};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;
use tokio_util::task::TaskTracker;

use crate::http::Http3Settings;
use crate::tls::info::ServerCertificate;
use crate::tls::ServerTls;
use crate::workers::{Dispatcher, Engine};

/// Handshakes in progress above which a client must first prove its address with a Retry packet
/// (one more round trip), so that spoofed Initial packets cannot make the worker do handshakes.
const RETRY_ABOVE_HANDSHAKES: usize = 64;

/// How long a stopping worker waits for its QUIC connections' last packets to leave.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// H3_NO_ERROR (RFC 9114, 8.1): the code of a connection closed in good order.
const NO_ERROR: quinn::VarInt = quinn::VarInt::from_u32(0x100);

/// How long a draining worker keeps its slot's UDP socket to itself before its successor may
/// serve it too: enough for requests that end in a few seconds, short enough that new HTTP/3
/// clients are not refused for a whole long drain.
const HANDOVER_LIMIT: Duration = Duration::from_secs(5);

/// How often a replacement worker checks whether its slot's previous worker has let go of the
/// UDP socket.
const SLOT_POLL: Duration = Duration::from_millis(20);

/// A worker's bound UDP socket and its QUIC configuration, ready to serve.
pub struct QuicListener {
    socket: UdpSocket,
    config: quinn::ServerConfig,
    local: SocketAddr,
    certificate: Arc<ServerCertificate>,
    /// The slot's lock file: held while serving the socket, so that one worker at a time reads it.
    slot_lock: Option<PathBuf>,
}

impl QuicListener {
    /// The worker's UDP socket (the one the supervisor bound for its slot) with the QUIC
    /// configuration from the server's TLS; the error says which step failed.
    pub fn bind(settings: &Http3Settings, tls: &ServerTls) -> std::io::Result<Self> {
        let Some(fd) = settings.udp_fd else {
            return Err(std::io::Error::other("HTTP/3 serves the UDP socket its supervisor binds, and none was given"));
        };
        let socket = inherited_udp_socket(fd)?;
        let config = server_config(settings, tls).map_err(std::io::Error::other)?;
        Ok(Self {
            local: socket.local_addr()?,
            socket,
            config,
            certificate: tls.certificate.clone(),
            slot_lock: settings.slot_lock.clone(),
        })
    }

    /// The `Alt-Svc` value that points TCP clients at this endpoint.
    pub fn alt_svc(&self) -> HeaderValue {
        HeaderValue::from_str(&format!("h3=\":{}\"; ma=86400", self.local.port()))
            .unwrap_or_else(|_| HeaderValue::from_static("clear"))
    }
}

/// A duplicate of the UDP socket `fd` (the caller keeps its own descriptor).
fn inherited_udp_socket(fd: i32) -> std::io::Result<UdpSocket> {
    // SAFETY: `fd` is a descriptor the caller holds open for the duration of this call; it is only
    // borrowed to duplicate it, and the duplicate is owned by the returned socket.
    #[allow(unsafe_code)]
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let socket = UdpSocket::from(borrowed.try_clone_to_owned()?);
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// QUIC on the server's rustls configuration, with HTTP/3's ALPN and without 0-RTT (early data
/// can be replayed, and no app here is told which requests came that way).
fn server_config(settings: &Http3Settings, tls: &ServerTls) -> Result<quinn::ServerConfig, String> {
    let mut crypto = (*tls.config).clone();
    crypto.alpn_protocols = vec![b"h3".to_vec()];
    crypto.max_early_data_size = 0;
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(Arc::new(crypto))
        .map_err(|err| format!("HTTP/3: the TLS configuration cannot serve QUIC ({err})"))?;
    let mut transport = quinn::TransportConfig::default();
    let idle = quinn::IdleTimeout::try_from(settings.idle_timeout)
        .map_err(|_| format!("HTTP/3: idle timeout {:?} is too long", settings.idle_timeout))?;
    transport.max_idle_timeout(Some(idle));
    transport.max_concurrent_bidi_streams(settings.max_concurrent_streams.into());
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(Arc::new(transport));
    // A client's datagrams reach this worker by their addresses' hash: a migrated connection would
    // land on another worker's socket.
    config.migration(false);
    Ok(config)
}

/// Serves HTTP/3 until the worker stops, then lets the open connections drain (each is sent
/// GOAWAY and finishes its requests) before the endpoint closes.
pub async fn serve<D: Dispatcher>(quic: QuicListener, engine: Arc<Engine<D>>) {
    let QuicListener { socket, config, local, certificate, slot_lock } = quic;
    let mut held = match &slot_lock {
        Some(path) => match take_slot(path, &engine).await {
            Slot::Held(lock) => Some(lock),
            Slot::Unavailable => None,
            Slot::Stopped => return,
        },
        None => None,
    };
    let runtime = Arc::new(quinn::TokioRuntime);
    let endpoint = match quinn::Endpoint::new(quinn::EndpointConfig::default(), Some(config), socket, runtime) {
        Ok(endpoint) => endpoint,
        Err(err) => return (engine.report)(format!("cannot serve HTTP/3 on UDP {local}: {err}")),
    };
    let connections = TaskTracker::new();
    let handshakes = Arc::new(AtomicUsize::new(0));
    loop {
        tokio::select! {
            biased;
            _ = engine.shutdown.cancelled() => break,
            incoming = endpoint.accept() => {
                let Some(incoming) = incoming else { break };
                let busy = handshakes.load(std::sync::atomic::Ordering::Relaxed) >= RETRY_ABOVE_HANDSHAKES;
                if busy && !incoming.remote_address_validated() && incoming.may_retry() {
                    let _ = incoming.retry();
                    continue;
                }
                let accepted = connection::Accepted {
                    incoming,
                    local,
                    certificate: certificate.clone(),
                    handshakes: handshakes.clone(),
                };
                connections.spawn(connection::serve(accepted, engine.clone()));
            }
        }
    }
    // Clients that connect from now on are refused; the open connections drain.
    endpoint.set_server_config(None);
    connections.close();
    let handover = tokio::time::sleep(HANDOVER_LIMIT);
    tokio::pin!(handover);
    loop {
        tokio::select! {
            _ = connections.wait() => break,
            _ = engine.abort.cancelled() => break,
            // A long drain (streamed responses, slow clients) must not keep the successor from
            // serving new HTTP/3 clients: it gets the socket, and the connections still draining
            // here share it from now on.
            _ = &mut handover, if held.is_some() => release(held.take()),
        }
    }
    endpoint.close(NO_ERROR, b"");
    let _ = tokio::time::timeout(CLOSE_GRACE, endpoint.wait_idle()).await;
    drop(endpoint);
    release(held);
}

/// Lets go of the slot (explicitly: a process the app forked would otherwise keep the lock).
fn release(held: Option<File>) {
    if let Some(lock) = held {
        let _ = flock(&lock, libc::LOCK_UN);
    }
}

/// `flock(2)` on `file` (`std::fs::File::try_lock` needs Rust 1.89; the MSRV is 1.85).
fn flock(file: &File, operation: libc::c_int) -> std::io::Result<()> {
    // SAFETY: the descriptor belongs to `file`, open for the duration of the call.
    #[allow(unsafe_code)]
    let result = unsafe { libc::flock(file.as_raw_fd(), operation) };
    if result == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// What became of a worker's claim on its slot.
enum Slot {
    /// The lock is this worker's until it lets go (or exits).
    Held(File),
    /// The lock file cannot be used (reported): the worker serves without it.
    Unavailable,
    /// The worker stopped while it waited.
    Stopped,
}

/// Waits until the slot's previous worker (draining after a reload or a recycling, or gone) has
/// let go of the UDP socket, then holds the slot.
async fn take_slot<D: Dispatcher>(path: &Path, engine: &Engine<D>) -> Slot {
    let unavailable = |err: std::io::Error| {
        (engine.report)(format!(
            "HTTP/3 slot lock {}: {err}; serving without it (a reload may then cost the previous worker's clients packets)",
            path.display()
        ));
        Slot::Unavailable
    };
    // The supervisor made the directory; should a cleaner of temporary files have removed it, it
    // is made again.
    if let Some(directory) = path.parent() {
        if let Err(err) = std::fs::create_dir_all(directory) {
            return unavailable(err);
        }
    }
    let lock = match OpenOptions::new().create(true).truncate(false).write(true).open(path) {
        Ok(lock) => lock,
        Err(err) => return unavailable(err),
    };
    let mut waited = false;
    loop {
        match flock(&lock, libc::LOCK_EX | libc::LOCK_NB) {
            Ok(()) => {
                if waited {
                    if let Some(debug) = &engine.debug {
                        debug("HTTP/3: the slot's previous worker has let go of the UDP socket".to_owned());
                    }
                }
                return Slot::Held(lock);
            }
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {
                if !waited {
                    waited = true;
                    if let Some(debug) = &engine.debug {
                        debug("HTTP/3 waits for the slot's previous worker to finish draining".to_owned());
                    }
                }
            }
            Err(err) => return unavailable(err),
        }
        tokio::select! {
            _ = engine.shutdown.cancelled() => return Slot::Stopped,
            _ = tokio::time::sleep(SLOT_POLL) => {}
        }
    }
}
