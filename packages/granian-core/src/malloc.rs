//! The C allocator's settings in a worker process.
//!
//! glibc's malloc returns the free memory at the top of each heap to the kernel as soon as it
//! exceeds its trim threshold (a few hundred KiB, adjusted as it goes). A worker serving large
//! bodies frees that much between two requests, so every request faults the same pages back in,
//! zeroed by the kernel: in the streamed 100 KiB echo, page faults took 8% of the Python thread and
//! the rate rose 1.4x with the settings below (benchmarks/PROFILING.md, "Page faults").
//!
//! A deployment that tunes malloc itself (`GLIBC_TUNABLES=glibc.malloc...`, `MALLOC_*_` variables)
//! keeps its own settings.

/// Free memory at the top of a heap is returned to the kernel beyond this much. Measured on the
/// streamed echo: 8 MiB gives 1.42x (32 MiB 1.49x, 4 MiB 1.34x), and the worker's resident size
/// after the load stays within 2 MiB of glibc's default (32 MiB kept 19 MiB more).
const TRIM_THRESHOLD: i32 = 8 * 1024 * 1024;
/// Allocations from this size get their own mapping (and give it back when freed). Setting either
/// threshold turns off glibc's own adjustment of both, which would otherwise move them as blocks of
/// varying sizes come and go.
const MMAP_THRESHOLD: i32 = 1024 * 1024;

/// Applies the settings above, once per process, unless the environment sets malloc's own.
pub fn tune_for_serving() {
    static TUNED: std::sync::Once = std::sync::Once::new();
    TUNED.call_once(|| {
        if environment_tunes_malloc(std::env::vars_os()) {
            return;
        }
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: mallopt only changes allocator parameters; it is safe to call at any time.
        #[allow(unsafe_code)]
        unsafe {
            libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        }
    });
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

    #[test]
    fn malloc_settings_in_the_environment_win() {
        assert!(!environment_tunes_malloc(vars(&[("PATH", "/bin"), ("GLIBC_TUNABLES", "glibc.rtld.nns=2")])));
        assert!(environment_tunes_malloc(vars(&[("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=1")])));
        assert!(!environment_tunes_malloc(vars(&[("MALLOC_ARENA_MAX", "2")])));
        assert!(environment_tunes_malloc(vars(&[("MALLOC_TRIM_THRESHOLD_", "1")])));
    }
}
