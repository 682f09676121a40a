//! What a cache key is made of: the digest of a function's arguments.
//!
//! `cargo run --release --example hash_args`

use jobcache::hash::{hash, Hasher};
use ndarray::{Array2, ShapeBuilder};
use std::collections::HashMap;
use std::time::Instant;

fn main() -> Result<(), jobcache::hash::Error> {
    // Any serde value: a tuple of arguments.
    let args = ("fit", 0.5_f64, vec![10_u32, 20, 30]);
    println!("key of {args:?}:\n  {}", hash(&args)?);

    // Maps: the same entries give the same key, whatever the order.
    let a: HashMap<&str, f64> = [("alpha", 0.1), ("beta", 2.0)].into_iter().collect();
    let b: HashMap<&str, f64> = [("beta", 2.0), ("alpha", 0.1)].into_iter().collect();
    println!("maps in two orders agree: {}", hash(&a)? == hash(&b)?);

    // Arrays: shape and logical content, not memory layout.
    let c = Array2::from_shape_fn((1000, 1000), |(i, j)| (i * 1000 + j) as f64);
    let mut f = Array2::<f64>::zeros((1000, 1000).f());
    f.assign(&c);
    println!("C and Fortran order agree: {}", hash(&c)? == hash(&f)?);

    // Large arrays are hashed as a tree of 1 MiB BLAKE3 chunks, on every core.
    let big = Array2::from_shape_fn((4096, 4096), |(i, j)| (i ^ j) as f64);
    let start = Instant::now();
    let key = hash(&big)?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "128 MiB array: {} in {:.0} ms ({:.2} GB/s)",
        key.short(),
        secs * 1e3,
        (big.len() * 8) as f64 / secs / 1e9
    );

    // Several items in turn, as memo builds a key: function, version, arguments.
    let mut h = Hasher::new();
    h.update("my_crate::square")?.update(&1_u32)?.update(&c)?;
    println!("call key: {}", h.finalize().short());
    Ok(())
}
