//! The checksum of payloads and meta files: XXH3-64 with seed 0.
//!
//! The one XXH3 implementation of the workspace (xxhash-rust, which persist
//! uses for its segment checksums too). Public so that every backend of the
//! [`Store`](crate::Store) trait checks entries with the one function the
//! file store uses.

/// A streaming XXH3-64.
#[derive(Clone)]
pub struct Xxh3(xxhash_rust::xxh3::Xxh3);

impl Default for Xxh3 {
    fn default() -> Self {
        Self::new()
    }
}

impl Xxh3 {
    /// A hasher with seed 0.
    pub fn new() -> Self {
        Xxh3(xxhash_rust::xxh3::Xxh3::new())
    }

    /// Feeds `bytes`.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The digest of everything fed so far.
    pub fn digest(&self) -> u64 {
        self.0.digest()
    }
}

/// XXH3-64 of bytes held in memory.
pub fn xxh3_64(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(bytes)
}

#[cfg(test)]
mod tests {
    /// Bytes of a fixed pseudo-random pattern.
    fn pattern(len: usize) -> Vec<u8> {
        (0..len as u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect()
    }

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

    proptest::proptest! {
        /// Streaming in any pieces gives the one-shot digest.
        #[test]
        fn prop_streaming_in_any_pieces_matches_oneshot(
            data in proptest::collection::vec(proptest::num::u8::ANY, 0..5000),
            cuts in proptest::collection::vec(0usize..5000, 0..8),
        ) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(data.len())).collect();
            cuts.sort_unstable();
            let mut h = super::Xxh3::new();
            let mut at = 0;
            for cut in cuts.into_iter().chain([data.len()]) {
                h.update(&data[at..cut]);
                at = cut;
            }
            proptest::prop_assert_eq!(h.digest(), super::xxh3_64(&data));
        }
    }

    /// The values on disk must not change with the implementation: these
    /// were computed with twox-hash 2.1, the store's previous XXH3, across
    /// every length class of the algorithm (empty, 1-3, 4-8, 9-16, 17-128,
    /// 129-240, longer, and several stripes and blocks).
    #[test]
    fn values_match_those_computed_before_the_switch() {
        let known: [(usize, u64); 12] = [
            (0, 0x2d06_8005_38d3_94c2),
            (1, 0xc44b_dff4_074e_ecdb),
            (3, 0xa1c4_a825_9b82_7291),
            (16, 0x222e_9aea_d6bd_dd51),
            (17, 0x47aa_d6b3_75eb_4bba),
            (128, 0x421a_9c90_5c6e_66ba),
            (129, 0x9e24_1480_0f83_768a),
            (240, 0xb714_c5fd_2274_4964),
            (241, 0xbc42_4a2c_480d_d281),
            (1024, 0x1fd1_5e7d_36f5_e1bc),
            (100_000, 0x1d43_ec75_3d46_2301),
            (3 << 20, 0x5edd_baba_bb4c_948a),
        ];
        for (len, want) in known {
            let data = pattern(len);
            assert_eq!(super::xxh3_64(&data), want, "one shot, {len} bytes");
            let mut h = super::Xxh3::new();
            for piece in data.chunks(4093) {
                h.update(piece);
            }
            assert_eq!(h.digest(), want, "streamed, {len} bytes");
        }
    }
}
