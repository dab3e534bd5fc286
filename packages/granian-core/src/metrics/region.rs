//! The memory the supervisor and its workers share for metrics: a memfd mapped by every process,
//! an array of slots of 64-bit atomic counters. A worker counts into its slot with relaxed atomic
//! adds (no system call, no message); the supervisor reads every slot when it is scraped.

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd};
use std::sync::atomic::AtomicU64;

use super::SLOT_FIELDS;

/// A shared mapping of `slots` metric slots.
pub struct Region {
    base: *mut AtomicU64,
    slots: usize,
    /// Keeps the memory alive in the supervisor (workers reopen it through /proc).
    file: File,
}

// SAFETY: the mapping is only accessed through `AtomicU64`s, which are safe to share between threads.
#[allow(unsafe_code)]
unsafe impl Send for Region {}
#[allow(unsafe_code)]
unsafe impl Sync for Region {}

const WORD: usize = std::mem::size_of::<AtomicU64>();

impl Region {
    /// Creates a zeroed region of `slots` slots (supervisor).
    pub fn create(slots: usize) -> std::io::Result<Self> {
        let name = c"granian-metrics";
        // SAFETY: `name` is a valid C string; the result is checked.
        #[allow(unsafe_code)]
        let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor owned by nothing else.
        #[allow(unsafe_code)]
        let file = unsafe { File::from_raw_fd(fd) };
        file.set_len((slots * SLOT_FIELDS * WORD) as u64)?;
        Self::map(file, slots)
    }

    /// Maps the region another process created, from a path such as `/proc/PID/fd/N` (worker).
    pub fn open(path: &str) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new().read(true).write(true).open(path)?;
        let size = file.metadata()?.len() as usize;
        let slot_bytes = SLOT_FIELDS * WORD;
        if size == 0 || size % slot_bytes != 0 {
            return Err(std::io::Error::other(format!("{path} is not a metrics region ({size} bytes)")));
        }
        Self::map(file, size / slot_bytes)
    }

    fn map(file: File, slots: usize) -> std::io::Result<Self> {
        let length = slots * SLOT_FIELDS * WORD;
        // SAFETY: a fresh shared mapping of the whole file; the result is checked. Its memory stays
        // mapped until `drop`, and every access goes through atomics (the memory is shared).
        #[allow(unsafe_code)]
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                length,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Self { base: base.cast(), slots, file })
    }

    pub fn slots(&self) -> usize {
        self.slots
    }

    /// The descriptor of the memfd (supervisor), for the path workers open.
    pub fn fd(&self) -> i32 {
        self.file.as_raw_fd()
    }

    /// The counters of slot `slot` (`SLOT_FIELDS` of them); None past the end.
    pub fn slot(&self, slot: usize) -> Option<&[AtomicU64]> {
        if slot >= self.slots {
            return None;
        }
        // SAFETY: in bounds of the mapping (checked above); `AtomicU64` has the layout of `u64`, and
        // mmap returns page-aligned memory; the slice lives no longer than `self`.
        #[allow(unsafe_code)]
        Some(unsafe { std::slice::from_raw_parts(self.base.add(slot * SLOT_FIELDS), SLOT_FIELDS) })
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly what `map` mapped; no slice of it outlives `self`.
        #[allow(unsafe_code)]
        unsafe {
            libc::munmap(self.base.cast(), self.slots * SLOT_FIELDS * WORD);
        }
    }
}
