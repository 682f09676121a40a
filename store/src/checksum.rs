//! The checksum of payloads and meta files: XXH3-64 with seed 0.
//!
//! twox-hash picks its AVX2 or SSE2 implementation at run time (a build for
//! generic x86-64 still gets AVX2 where the CPU has it): about 35 GB/s on
//! data in cache here, so verifying a chunk just read costs little next to
//! the read.
//!
//! Public so that every backend of the [`Store`](crate::Store) trait checks
//! entries with the one function the file store uses.

use std::hash::Hasher as _;
use twox_hash::XxHash3_64;

/// A streaming XXH3-64.
#[derive(Clone)]
pub struct Xxh3(XxHash3_64);

impl Default for Xxh3 {
    fn default() -> Self {
        Self::new()
    }
}

impl Xxh3 {
    /// A hasher with seed 0.
    pub fn new() -> Self {
        Xxh3(XxHash3_64::with_seed(0))
    }

    /// Feeds `bytes`.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.write(bytes);
    }

    /// The digest of everything fed so far.
    pub fn digest(&self) -> u64 {
        self.0.finish()
    }
}

/// XXH3-64 of bytes held in memory.
pub fn xxh3_64(bytes: &[u8]) -> u64 {
    XxHash3_64::oneshot(bytes)
}

#[cfg(test)]
mod tests {
    #[test]
    fn streaming_matches_oneshot_and_the_reference() {
        // XXH3-64 of "abc" (seed 0) from the reference implementation.
        assert_eq!(super::xxh3_64(b"abc"), 0x78AF_5F94_892F_3950);
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7) as u8).collect();
        let mut h = super::Xxh3::new();
        for piece in data.chunks(777) {
            h.update(piece);
        }
        assert_eq!(h.digest(), super::xxh3_64(&data));
    }
}
