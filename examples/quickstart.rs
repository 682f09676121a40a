//! joblib's Memory example, in Rust.
//!
//! `cargo run --release --example quickstart` (run it twice: the second run
//! loads everything from the cache).

use jobcache::prelude::*;
use ndarray::Array2;
use std::time::Instant;

/// An expensive step: here a square, slowed down to stand for real work.
fn square(a: &Array2<f64>) -> Array2<f64> {
    std::thread::sleep(std::time::Duration::from_millis(500));
    a * a
}

fn main() -> Result<(), jobcache::Error> {
    jobcache::log_to_stderr();
    let location = std::env::temp_dir().join("jobcache-quickstart");
    let mem = Memory::new(&location)?; // creates the directory
    let square = mem.cache(square); // a fn item: named from its path

    let a = Array2::from_shape_fn((1000, 1000), |(i, j)| (i + j) as f64);
    let start = Instant::now();
    let b = square.call(&a); // computes, logs "[Memory] Calling square...", stores
    println!(
        "first call:  {:>8.1} ms",
        start.elapsed().as_secs_f64() * 1e3
    );
    let start = Instant::now();
    let c = square.call(&a); // loads from disk; square does not run
    println!(
        "second call: {:>8.1} ms",
        start.elapsed().as_secs_f64() * 1e3
    );
    assert_eq!(b, c);
    println!("cache in {}", location.display());
    Ok(())
}
