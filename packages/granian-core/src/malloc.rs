//! The C allocator's settings in a worker process.
//!
//! glibc's malloc returns the free memory at the top of each heap to the kernel as soon as it
//! exceeds its trim threshold (a few hundred KiB, adjusted as it goes). A worker serving large
//! bodies frees that much between two requests, so every request faults the same pages back in,
//! zeroed by the kernel: in the streamed 100 KiB echo, page faults took 8% of the Python thread
//! (benchmarks/PROFILING.md, "Page faults"). An 8 MiB threshold fixed that at 64 connections, not
//! at 128, where the bodies in flight swing the heap top by more than that and the rate halved.
//!
//! So a worker keeps more free memory while it serves ([`TRIM_THRESHOLD`]) and gives it back by
//! time, as jemalloc's decay does: a thread calls `malloc_trim` every [`TRIM_PERIOD`], which
//! returns the free pages inside every heap (and at the top of the main one; glibc trims the top of
//! a thread's own heap only past the threshold). Measured after a burst of large bodies, an idle
//! worker holds no more than it did with the 8 MiB threshold alone.
//!
//! A deployment that tunes malloc itself (`GLIBC_TUNABLES=glibc.malloc...`, `MALLOC_*_` variables)
//! keeps its own settings, and no trimming thread runs.

#[cfg(all(target_os = "linux", target_env = "gnu"))]
use std::time::Duration;

/// Free memory at the top of a heap is returned to the kernel beyond this much. Streamed 100 KiB
/// echo at 128 connections (ASGI): 8 MiB gave 6.8-9.0k requests per second, 32 MiB 13.3-14.0k.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_THRESHOLD: i32 = 32 * 1024 * 1024;
/// Allocations from this size get their own mapping (and give it back when freed). Setting either
/// threshold turns off glibc's own adjustment of both, which would otherwise move them as blocks of
/// varying sizes come and go.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: i32 = 1024 * 1024;
/// How often the trimming thread returns the free memory of every heap to the kernel.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_PERIOD: Duration = Duration::from_secs(5);

/// Applies the settings above and starts the trimming thread, once per process, unless the
/// environment sets malloc's own.
pub fn tune_for_serving() {
    static TUNED: std::sync::Once = std::sync::Once::new();
    TUNED.call_once(|| {
        if environment_tunes_malloc(std::env::vars_os()) {
            return;
        }
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        {
            // SAFETY: mallopt only changes allocator parameters; it is safe to call at any time.
            #[allow(unsafe_code)]
            unsafe {
                libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
                libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
            }
            // Without the thread the worker would still serve; it would keep up to the threshold
            // of free memory per heap after a burst.
            let _ = start_trimming(TRIM_PERIOD);
        }
    });
}

/// A thread that returns the free memory of every heap to the kernel every `period`.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn start_trimming(period: Duration) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name("granian-trim".into()).spawn(move || loop {
        std::thread::sleep(period);
        // SAFETY: malloc_trim takes the allocator's own locks; it only releases free pages.
        #[allow(unsafe_code)]
        unsafe {
            libc::malloc_trim(0);
        }
    })
}

fn environment_tunes_malloc(vars: impl Iterator<Item = (std::ffi::OsString, std::ffi::OsString)>) -> bool {
    vars.into_iter().any(|(name, value)| {
        let name = name.to_string_lossy();
        (name.starts_with("MALLOC_") && name.ends_with('_'))
            || (name == "GLIBC_TUNABLES" && value.to_string_lossy().contains("glibc.malloc."))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Iterator<Item = (std::ffi::OsString, std::ffi::OsString)> {
        pairs.iter().map(|(n, v)| (n.into(), v.into())).collect::<Vec<_>>().into_iter()
    }

    /// Resident memory of this process, in bytes.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn resident() -> usize {
        let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
        statm.split_whitespace().nth(1).unwrap().parse::<usize>().unwrap() * 4096
    }

    /// Free memory in the middle of a heap (which glibc keeps whatever its trim threshold) goes
    /// back to the kernel once the trimming thread's period has passed.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn the_trimming_thread_returns_free_memory() {
        const BLOCKS: usize = 400;
        // 100 KiB blocks, each followed by a small block that stays: none of the freed memory is
        // at the top of the heap.
        let mut large = Vec::with_capacity(BLOCKS);
        let mut kept = Vec::with_capacity(BLOCKS);
        for i in 0..BLOCKS {
            large.push(vec![i as u8; 100 * 1024]);
            kept.push(vec![i as u8; 64]);
        }
        drop(large);
        let held = resident();
        let _thread = start_trimming(Duration::from_millis(50)).unwrap();
        let released = (0..100).any(|_| {
            std::thread::sleep(Duration::from_millis(50));
            held.saturating_sub(resident()) > 20 * 1024 * 1024
        });
        assert!(released, "free memory still resident: {} MiB before, {} MiB now", held >> 20, resident() >> 20);
        assert_eq!(kept.len(), BLOCKS);
    }

    #[test]
    fn malloc_settings_in_the_environment_win() {
        assert!(!environment_tunes_malloc(vars(&[("PATH", "/bin"), ("GLIBC_TUNABLES", "glibc.rtld.nns=2")])));
        assert!(environment_tunes_malloc(vars(&[("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=1")])));
        assert!(!environment_tunes_malloc(vars(&[("MALLOC_ARENA_MAX", "2")])));
        assert!(environment_tunes_malloc(vars(&[("MALLOC_TRIM_THRESHOLD_", "1")])));
    }
}
