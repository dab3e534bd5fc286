//! Listening sockets handed over by the Python supervisor.
//!
//! The supervisor binds the address once and every worker process inherits the descriptor, so a
//! worker that is replaced never takes queued connections down with it. Each tokio runtime of a
//! worker accepts from its own duplicate of that descriptor.

use std::net::TcpListener as StdTcpListener;
use std::os::fd::{FromRawFd, RawFd};

/// Takes ownership of a duplicate of `fd` (the caller keeps its own descriptor).
pub fn listener_from_fd(fd: RawFd) -> std::io::Result<StdTcpListener> {
    // SAFETY: `dup` only reads the descriptor table; a negative result is checked below.
    #[allow(unsafe_code)]
    let owned = unsafe { libc::dup(fd) };
    if owned < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `owned` is a fresh descriptor that nothing else refers to, so the listener owns it.
    #[allow(unsafe_code)]
    let listener = unsafe { StdTcpListener::from_raw_fd(owned) };
    listener.set_nonblocking(true)?;
    Ok(listener)
}
