//! Exceptions raised to Python, and the one internal error type of the core.
//!
//! Code that runs on tokio threads reports failures as [`CoreError`]; the conversion to a Python
//! exception happens once, on the Python thread, through [`CoreError::into_pyerr`].

use pyo3::create_exception;
use pyo3::exceptions::{PyOSError, PyRuntimeError, PyValueError};
use pyo3::PyErr;

create_exception!(
    granian._core,
    RSGIProtocolError,
    PyRuntimeError,
    "An RSGI protocol method was used in a way the specification does not allow."
);
create_exception!(
    granian._core,
    RSGIProtocolClosed,
    PyRuntimeError,
    "The connection behind an RSGI protocol object is gone."
);

create_exception!(
    granian._core,
    ClientDisconnected,
    PyOSError,
    "The client went away: ASGI apps get it from send() after a disconnect (ASGI spec 2.4)."
);

/// What can go wrong in the core, independent of Python.
#[derive(Debug)]
pub enum CoreError {
    /// The peer went away or the transport failed while the app was using it.
    Closed(String),
    /// A protocol method was misused (for example the body was read twice).
    Protocol(&'static str),
    /// A value handed over by the app is not valid HTTP.
    InvalidValue(String),
    /// An operating system error.
    Io(std::io::Error),
    /// The request body is larger than `--max-request-body-size` (the limit, in bytes).
    TooLarge(u64),
}

impl std::fmt::Display for CoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CoreError::Closed(reason) => write!(f, "connection closed: {reason}"),
            CoreError::Protocol(msg) => f.write_str(msg),
            CoreError::InvalidValue(msg) => f.write_str(msg),
            CoreError::Io(err) => write!(f, "{err}"),
            CoreError::TooLarge(limit) => write!(f, "the request body is larger than the limit of {limit} bytes"),
        }
    }
}

impl std::error::Error for CoreError {}

impl From<std::io::Error> for CoreError {
    fn from(err: std::io::Error) -> Self {
        CoreError::Io(err)
    }
}

impl CoreError {
    /// Converts into the Python exception the RSGI specification names for it.
    pub fn into_pyerr(self) -> PyErr {
        match self {
            CoreError::Closed(_) | CoreError::TooLarge(_) => RSGIProtocolClosed::new_err(self.to_string()),
            CoreError::Protocol(msg) => RSGIProtocolError::new_err(msg),
            CoreError::InvalidValue(msg) => PyValueError::new_err(msg),
            CoreError::Io(err) => PyOSError::new_err(err.to_string()),
        }
    }
}

impl From<CoreError> for PyErr {
    fn from(err: CoreError) -> Self {
        err.into_pyerr()
    }
}
