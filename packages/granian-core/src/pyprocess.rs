//! What a worker process asks of the kernel that Python's standard library cannot.

use pyo3::prelude::*;

/// Has the kernel send `signal` to this process when the thread that started it ends (Linux's
/// parent-death signal). A worker then stops when its supervisor is killed, instead of serving on
/// as an orphan that holds the listening socket. Returns false where the kernel offers no such
/// request.
#[pyfunction]
pub fn stop_with_parent(signal: i32) -> PyResult<bool> {
    #[cfg(target_os = "linux")]
    {
        let number = libc::c_ulong::try_from(signal)
            .map_err(|_| pyo3::exceptions::PyValueError::new_err(format!("not a signal number: {signal}")))?;
        // SAFETY: PR_SET_PDEATHSIG takes a signal number and changes nothing else.
        #[allow(unsafe_code)]
        let failed = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, number) } != 0;
        if failed {
            return Err(std::io::Error::last_os_error().into());
        }
        Ok(true)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = signal;
        Ok(false)
    }
}
