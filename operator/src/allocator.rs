//! The process's memory allocator, tuned before any thread starts.

/// glibc gives threads their own malloc arenas (up to eight per core); the async runtime's
/// worker and blocking threads each keep freed memory in theirs, so the resident size grows
/// with the number of threads that ever allocated rather than with what is in use. Two arenas
/// keep the peak near the working set (measured by `make bench`, see BENCHMARKS.md). Must run
/// before the runtime starts its threads.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; it is called before any other thread
    // exists, and an unsupported value is refused with 0, not undefined behaviour.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}
