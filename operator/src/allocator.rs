//! The process's memory allocator, tuned before any thread starts.

/// Two settings of glibc's malloc (their effect: BENCHMARKS.md, "malloc's mmap threshold"):
/// - glibc gives threads their own malloc arenas (up to eight per core); the async runtime's
///   worker and blocking threads each keep freed memory in theirs, so the resident size grows
///   with the number of threads that ever allocated rather than with what is in use. Two
///   arenas keep the peak near the working set.
/// - Blocks of 128 KiB and more are mapped on their own and unmapped when freed. glibc raises
///   that threshold each time such a block is freed, after which the buffers a bundle
///   allocates and frees by the hundred (deflate states, upload parts) come from the arenas
///   and leave them fragmented. A fixed threshold keeps the resident size flat.
///
/// Must run before the runtime starts its threads.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; it is called before any other thread
    // exists, and an unsupported value is refused with 0, not undefined behaviour.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        // Setting it at all turns the raising off.
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

/// Hands the memory a finished collection freed back to the system, on a blocking thread (it
/// walks every arena). glibc keeps freed chunks for reuse, so without it the resident size of a
/// process that made a thousand bundles stays near the highest it ever was: every collection
/// leaves free chunks (spool and compression buffers, an upload part) scattered between the
/// objects that outlive it, which the top-of-heap trim never reaches; `malloc_trim` returns
/// the free pages from anywhere in the heap.
pub(crate) fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        // SAFETY: malloc_trim takes each arena's lock; it is safe to call from any thread.
        runtime.spawn_blocking(|| unsafe {
            libc::malloc_trim(0);
        });
    }
}

/// [`release_freed_memory`], waited for: run between a collection's steps, so the chunks one
/// step freed (a page of listed objects, its decoded copies) are not still resident beside the
/// next step's, which raised a big restore's peak (BENCHMARKS.md, issue 38).
pub(crate) async fn release_freed_memory_now() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: as in release_freed_memory.
        let _ = tokio::task::spawn_blocking(|| unsafe {
            libc::malloc_trim(0);
        })
        .await;
    }
}
