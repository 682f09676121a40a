//! Why did this recompute? Each miss says what changed since the nearest
//! cached call, and `jobcache why` says the same afterwards.
//!
//! `cargo run --example why` prints the cache folder it used; then
//! `jobcache --dir FOLDER why smooth`.

use jobcache::prelude::*;

memoize! {
    /// A moving average, scaled.
    fn smooth(values: &[f64], width: usize, scale: f64) -> Vec<f64> {
        values
            .windows(width)
            .map(|w| w.iter().sum::<f64>() * scale / width as f64)
            .collect()
    }
}

/// Reads a data set (a stand-in): its version is bumped by hand when the
/// data changes.
fn load(n: usize) -> Vec<f64> {
    (0..n).map(|i| (i as f64).sin()).collect()
}

fn main() -> Result<(), jobcache::Error> {
    // Debug level shows the line each miss logs about why it missed.
    jobcache::log_to_stderr_at(log::LevelFilter::Debug);
    let location = std::env::temp_dir().join("jobcache-why-example");
    let mem = Memory::new(&location)?;
    mem.clear()?; // a fresh start on every run
    println!("cache folder: {}", location.display());

    let data = mem.cache(load).version("3").call(1000);
    let data = mem.cache(load).version("4").call(data.len()); // version 3 → 4
    let smooth = mem.cache(smooth);
    smooth.call((&data[..], 5, 1.0)); // no earlier call
    smooth.call((&data[..], 5, 2.0)); // argument 3 (`scale`) changed
    smooth.call((&data[..], 9, 2.0)); // argument 2 (`width`) changed
    smooth.call((&data[..], 9, 2.0)); // a hit
    println!(
        "a call not made yet: {}",
        smooth.why(&(&data[..10], 9, 2.0))?
    );
    Ok(())
}
