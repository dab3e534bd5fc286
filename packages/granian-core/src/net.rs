//! Listening sockets handed over by the Python supervisor, and the addresses of connections.
//!
//! The supervisor binds the address once (a TCP address, a Unix socket path, or a socket inherited
//! from systemd or a parent process) and every worker process inherits the descriptor, so a worker
//! that is replaced never takes queued connections down with it. Each tokio runtime of a worker
//! accepts from its own duplicate of that descriptor.

use std::fmt;
use std::future::Future;
use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::net::UnixListener as StdUnixListener;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

use crate::sendfile::SendfileTarget;

/// One end of a connection: an IP address and port, or a Unix socket (whose path, when it has one,
/// is the listening socket's: clients connect from unnamed sockets).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `host` is the IP address as text, written once per connection: every request's scope or
    /// environ carries it, and formatting an address costs more than the rest of the scope's
    /// strings together.
    Tcp {
        address: SocketAddr,
        host: Box<str>,
    },
    Unix(Option<Arc<str>>),
}

impl Endpoint {
    pub fn tcp(address: SocketAddr) -> Self {
        Self::Tcp { address, host: address.ip().to_string().into() }
    }

    /// The IP address, or the socket path ("" for an unnamed Unix socket).
    pub fn host(&self) -> &str {
        match self {
            Self::Tcp { host, .. } => host,
            Self::Unix(path) => path.as_deref().unwrap_or(""),
        }
    }

    /// The IP address; None for Unix sockets.
    pub fn ip(&self) -> Option<std::net::IpAddr> {
        match self {
            Self::Tcp { address, .. } => Some(address.ip()),
            Self::Unix(_) => None,
        }
    }

    /// The TCP port; None for Unix sockets.
    pub fn port(&self) -> Option<u16> {
        match self {
            Self::Tcp { address, .. } => Some(address.port()),
            Self::Unix(_) => None,
        }
    }
}

impl fmt::Display for Endpoint {
    /// `ip:port` (`[v6]:port`), or the socket path.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp { address, .. } => address.fmt(f),
            Self::Unix(path) => f.write_str(path.as_deref().unwrap_or("")),
        }
    }
}

/// A listening socket of either family, not yet registered with a runtime.
#[derive(Debug)]
pub enum Listener {
    Tcp(StdTcpListener),
    Unix(StdUnixListener),
}

impl Listener {
    /// Takes ownership of a duplicate of `fd` (the caller keeps its own descriptor); the family is
    /// read from the socket itself.
    pub fn from_fd(fd: RawFd) -> std::io::Result<Self> {
        // SAFETY: `dup` only reads the descriptor table; a negative result is checked below.
        #[allow(unsafe_code)]
        let owned = unsafe { libc::dup(fd) };
        if owned < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let family = socket_family(owned);
        // SAFETY: `owned` is a fresh descriptor that nothing else refers to, so the listener owns it
        // (and closes it, also when the family check below fails).
        #[allow(unsafe_code)]
        let listener = unsafe {
            if family == Some(libc::AF_UNIX) {
                Self::Unix(StdUnixListener::from_raw_fd(owned))
            } else {
                Self::Tcp(StdTcpListener::from_raw_fd(owned))
            }
        };
        match family {
            Some(libc::AF_UNIX | libc::AF_INET | libc::AF_INET6) => {}
            _ => return Err(std::io::Error::other(format!("descriptor {fd} is not a TCP or Unix socket"))),
        }
        match &listener {
            Self::Tcp(listener) => listener.set_nonblocking(true)?,
            Self::Unix(listener) => listener.set_nonblocking(true)?,
        }
        Ok(listener)
    }

    pub fn try_clone(&self) -> std::io::Result<Self> {
        Ok(match self {
            Self::Tcp(listener) => Self::Tcp(listener.try_clone()?),
            Self::Unix(listener) => Self::Unix(listener.try_clone()?),
        })
    }

    /// Registers the socket with the current tokio runtime.
    pub fn into_async(self) -> std::io::Result<AsyncListener> {
        Ok(match self {
            Self::Tcp(listener) => AsyncListener::Tcp(TcpAcceptor::new(TcpListener::from_std(listener)?)?),
            Self::Unix(listener) => {
                let path = listener.local_addr()?.as_pathname().map(|p| Arc::from(p.to_string_lossy().as_ref()));
                AsyncListener::Unix(UnixListener::from_std(listener)?, Endpoint::Unix(path))
            }
        })
    }
}

/// The address family of socket `fd`, None when it is not a socket.
fn socket_family(fd: RawFd) -> Option<i32> {
    // SAFETY: an all-zero sockaddr_storage is a valid value; getsockname writes at most `length` bytes.
    #[allow(unsafe_code)]
    unsafe {
        let mut address: libc::sockaddr_storage = std::mem::zeroed();
        let mut length = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        if libc::getsockname(fd, (&raw mut address).cast(), &raw mut length) != 0 {
            return None;
        }
        Some(i32::from(address.ss_family))
    }
}

/// A listening socket registered with a runtime.
pub enum AsyncListener {
    Tcp(TcpAcceptor),
    /// The listener and its own address (the local end of every connection it accepts).
    Unix(UnixListener, Endpoint),
}

/// A client connection as accepted, with both of its ends.
pub struct Accepted<S> {
    pub stream: S,
    pub local: Endpoint,
    pub peer: Endpoint,
}

/// What the accept loop needs from a listener of either family.
pub trait Accept {
    type Stream: SendfileTarget;
    fn accept_one(&self) -> impl Future<Output = std::io::Result<Accepted<Self::Stream>>> + Send;
    /// A connection already waiting in the backlog, taken without waiting (None when there is none).
    ///
    /// Asks the kernel directly rather than tokio's readiness, which may not have seen the latest
    /// arrivals: at shutdown, every connection the kernel completed is served rather than reset.
    fn accept_waiting(&self) -> Option<std::io::Result<Accepted<Self::Stream>>>;
}

/// A non-blocking `accept(2)` on `listener`: Ok(None) when nothing waits.
fn accept_now(listener: &impl std::os::fd::AsFd) -> std::io::Result<Option<(socket2::Socket, socket2::SockAddr)>> {
    match socket2::SockRef::from(listener).accept() {
        Ok((socket, address)) => {
            socket.set_nonblocking(true)?;
            Ok(Some((socket, address)))
        }
        Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => Ok(None),
        Err(err) => Err(err),
    }
}

/// A TCP listener with what every connection it accepts shares, so that an accepted connection
/// costs only `accept4` (and `getsockname` behind a wildcard address).
pub struct TcpAcceptor {
    listener: TcpListener,
    /// The local end of every connection, when the listener's address is not a wildcard.
    local: Option<SocketAddr>,
    /// Accepted sockets come with TCP_NODELAY (Linux copies it from the listener): not set again.
    nodelay_inherited: bool,
}

impl TcpAcceptor {
    /// Sets TCP_NODELAY on the listener where accepted sockets inherit it (the option changes
    /// nothing on a socket that only listens).
    pub fn new(listener: TcpListener) -> std::io::Result<Self> {
        let address = listener.local_addr()?;
        let nodelay_inherited =
            cfg!(target_os = "linux") && socket2::SockRef::from(&listener).set_tcp_nodelay(true).is_ok();
        Ok(Self { listener, local: (!address.ip().is_unspecified()).then_some(address), nodelay_inherited })
    }

    fn accepted(&self, stream: TcpStream, peer: SocketAddr) -> std::io::Result<Accepted<TcpStream>> {
        let local = match self.local {
            Some(local) => local,
            None => stream.local_addr()?,
        };
        if !self.nodelay_inherited {
            let _ = stream.set_nodelay(true);
        }
        Ok(Accepted { stream, local: Endpoint::tcp(local), peer: Endpoint::tcp(peer) })
    }
}

impl Accept for TcpAcceptor {
    type Stream = TcpStream;

    async fn accept_one(&self) -> std::io::Result<Accepted<TcpStream>> {
        loop {
            let (stream, peer) = self.listener.accept().await?;
            // A connection whose address cannot be read is already gone: take the next one.
            if let Ok(accepted) = self.accepted(stream, peer) {
                return Ok(accepted);
            }
        }
    }

    fn accept_waiting(&self) -> Option<std::io::Result<Accepted<TcpStream>>> {
        let accepted = (|| {
            let Some((socket, peer)) = accept_now(&self.listener)? else { return Ok(None) };
            let peer = peer.as_socket().ok_or_else(|| std::io::Error::other("not an IP peer"))?;
            let stream = TcpStream::from_std(std::net::TcpStream::from(socket))?;
            self.accepted(stream, peer).map(Some)
        })();
        accepted.transpose()
    }
}

/// A Unix listener with its path.
pub struct UnixAcceptor<'a>(pub &'a UnixListener, pub &'a Endpoint);

impl Accept for UnixAcceptor<'_> {
    type Stream = UnixStream;

    async fn accept_one(&self) -> std::io::Result<Accepted<UnixStream>> {
        let (stream, peer) = self.0.accept().await?;
        let peer = Endpoint::Unix(peer.as_pathname().map(|p| Arc::from(p.to_string_lossy().as_ref())));
        Ok(Accepted { stream, local: self.1.clone(), peer })
    }

    fn accept_waiting(&self) -> Option<std::io::Result<Accepted<UnixStream>>> {
        let accepted = (|| {
            let Some((socket, address)) = accept_now(self.0)? else { return Ok(None) };
            let stream =
                UnixStream::from_std(std::os::unix::net::UnixStream::from(std::os::fd::OwnedFd::from(socket)))?;
            let path = address.as_pathname().map(|p| Arc::from(p.to_string_lossy().as_ref()));
            Ok(Some(Accepted { stream, local: self.1.clone(), peer: Endpoint::Unix(path) }))
        })();
        accepted.transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn endpoints_render_as_apps_expect() {
        let tcp = Endpoint::tcp("127.0.0.1:8000".parse().unwrap());
        assert_eq!((tcp.to_string(), tcp.host(), tcp.port()), ("127.0.0.1:8000".into(), "127.0.0.1", Some(8000)));
        let v6 = Endpoint::tcp("[::1]:9".parse().unwrap());
        assert_eq!((v6.to_string(), v6.host()), ("[::1]:9".into(), "::1"));
        let unix = Endpoint::Unix(Some(Arc::from("/run/app.sock")));
        assert_eq!((unix.to_string(), unix.host(), unix.port()), ("/run/app.sock".into(), "/run/app.sock", None));
        assert_eq!(Endpoint::Unix(None).to_string(), "");
    }

    /// Accepted connections have TCP_NODELAY and their real local address, whether the listener
    /// has a fixed address (taken from the listener) or a wildcard one (read per connection), by
    /// both ways of accepting.
    #[test]
    fn accepted_connections_have_nodelay_and_their_local_address() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            for bind in ["127.0.0.1:0", "0.0.0.0:0"] {
                let std_listener = StdTcpListener::bind(bind).unwrap();
                let port = std_listener.local_addr().unwrap().port();
                let Ok(AsyncListener::Tcp(acceptor)) =
                    Listener::from_fd(std_listener.as_raw_fd()).unwrap().into_async()
                else {
                    panic!("not a TCP listener")
                };
                assert_eq!(acceptor.local.is_some(), bind.starts_with("127"), "{bind}");
                let client = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
                let accepted = acceptor.accept_one().await.unwrap();
                let second = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
                let waiting = loop {
                    if let Some(accepted) = acceptor.accept_waiting() {
                        break accepted.unwrap();
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                };
                for (accepted, client_end) in
                    [(accepted, client.local_addr().unwrap()), (waiting, second.local_addr().unwrap())]
                {
                    assert!(accepted.stream.nodelay().unwrap(), "{bind}: no TCP_NODELAY");
                    assert_eq!(accepted.local.to_string(), format!("127.0.0.1:{port}"), "{bind}");
                    assert_eq!(accepted.peer.to_string(), client_end.to_string(), "{bind}");
                }
            }
        });
    }

    #[test]
    fn the_family_is_read_from_the_descriptor() {
        let tcp = StdTcpListener::bind("127.0.0.1:0").unwrap();
        assert!(matches!(Listener::from_fd(tcp.as_raw_fd()).unwrap(), Listener::Tcp(_)));
        let dir = std::env::temp_dir().join(format!("granian-net-test-{}", std::process::id()));
        let _ = std::fs::remove_file(&dir);
        let unix = StdUnixListener::bind(&dir).unwrap();
        assert!(matches!(Listener::from_fd(unix.as_raw_fd()).unwrap(), Listener::Unix(_)));
        std::fs::remove_file(&dir).unwrap();
        let file = std::fs::File::open("/dev/null").unwrap();
        let err = Listener::from_fd(file.as_raw_fd()).unwrap_err();
        assert!(err.to_string().contains("not a TCP or Unix socket"), "{err}");
    }
}
