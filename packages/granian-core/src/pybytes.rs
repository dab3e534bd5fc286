//! Response bodies from Python `bytes` without copying the large ones.
//!
//! A `bytes` object is immutable, so its buffer can be lent to hyper for as long as a reference
//! keeps the object alive. Small bodies are copied (cheaper than the bookkeeping); large ones are
//! borrowed. The reference is released wherever hyper drops the body; without the GIL there, pyo3
//! defers the release to the next time a thread holds it.

use bytes::Bytes;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// Bodies at least this large are borrowed instead of copied.
const BORROW_FROM: usize = 16 * 1024;

struct BorrowedBytes {
    /// Keeps the object, and so the buffer below, alive.
    _owner: Py<PyBytes>,
    data: *const u8,
    len: usize,
}

// SAFETY: the buffer of a `bytes` object never changes and lives as long as the object, which
// `_owner` keeps alive; reading it needs no GIL. `Py<T>` itself is `Send`.
#[allow(unsafe_code)]
unsafe impl Send for BorrowedBytes {}
// SAFETY: as above: shared reads of an immutable buffer.
#[allow(unsafe_code)]
unsafe impl Sync for BorrowedBytes {}

impl AsRef<[u8]> for BorrowedBytes {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `data`/`len` describe the buffer of the object `_owner` keeps alive.
        #[allow(unsafe_code)]
        unsafe {
            std::slice::from_raw_parts(self.data, self.len)
        }
    }
}

/// The contents of a `bytes` object as [`Bytes`]: borrowed when large, copied when small.
pub fn from_pybytes(bytes: &Bound<'_, PyBytes>) -> Bytes {
    let data = bytes.as_bytes();
    if data.len() < BORROW_FROM {
        return Bytes::copy_from_slice(data);
    }
    Bytes::from_owner(BorrowedBytes { _owner: bytes.clone().unbind(), data: data.as_ptr(), len: data.len() })
}

/// Bytes of a `bytes` object (borrowed when large) or of anything else convertible to bytes
/// (`bytearray`, `memoryview`: copied, since they can change).
pub fn to_bytes(value: &Bound<'_, PyAny>) -> PyResult<Bytes> {
    if let Ok(bytes) = value.cast::<PyBytes>() {
        return Ok(from_pybytes(bytes));
    }
    Ok(Bytes::from(value.extract::<Vec<u8>>()?))
}
