//! Code only the unit tests use.

pub(crate) mod api_server_mock;

/// `len` bytes of xorshift output from `seed`: incompressible, so they reach the disk as they
/// are, and the same every run.
pub(crate) fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}
