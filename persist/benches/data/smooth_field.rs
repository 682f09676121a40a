//! The compressible array of the zstd rows, shared by the persist bench and
//! the `zstd_profile` example so both measure the very same bytes.

use ndarray::Array1;

/// 1 GiB of f64 that compresses about 4x: a smooth field plus a little
/// hashed noise, quantised to 3 decimals, with every fourth run of 4096
/// values zero. Deterministic; Python reads the very bytes from a `.npy`.
pub fn smooth_field() -> Array1<f64> {
    Array1::from_shape_fn((1 << 30) / 8, |i| {
        if (i / 4096) % 4 == 0 {
            return 0.0;
        }
        let h = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
        let noise = (h % 1000) as f64 / 1000.0 * 0.05;
        ((100.0 * (i as f64 * 1e-4).sin() + noise) * 1000.0).round() / 1000.0
    })
}
