//! A small scientific pipeline, cached step by step.
//!
//! `cargo run --release --example pipeline`
//!
//! Three steps — generate data, smooth it (the slow one), fit a model — each
//! wrapped with `memoize!`, so its source is part of its cache key. The
//! intermediate results are *shelved*: each step receives a handle to the
//! previous step's stored result and loads it only when it must compute. The
//! program runs the pipeline cold, then warm (every step hits and nothing
//! but the fit is loaded), then with a new smoothing width (the data step
//! hits; smoothing and fitting run again).

use jobcache::prelude::*;
use ndarray::{Array1, Array2, Axis};
use std::time::Instant;

memoize! {
    /// Noisy measurements: `rows` samples of `cols` channels.
    fn generate(rows: usize, cols: usize, seed: u64) -> Array2<f64> {
        let mut state = seed | 1;
        Array2::from_shape_fn((rows, cols), |(i, j)| {
            // xorshift: reproducible noise without a dependency.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let noise = (state % 1000) as f64 / 1000.0 - 0.5;
            (i as f64 / rows as f64) * (j as f64 + 1.0) + noise
        })
    }
}

memoize! {
    /// A moving average of `width` samples down each channel: the slow step.
    fn smooth(raw: &Shelved<Array2<f64>>, width: usize) -> Result<Array2<f64>, jobcache::Error> {
        let raw = raw.load()?;
        let (rows, cols) = raw.dim();
        let mut out = Array2::zeros((rows, cols));
        for i in 0..rows {
            let lo = i.saturating_sub(width / 2);
            let hi = (i + width / 2 + 1).min(rows);
            for j in 0..cols {
                let window = raw.slice(ndarray::s![lo..hi, j]);
                out[[i, j]] = window.sum() / window.len() as f64;
            }
        }
        Ok(out)
    }
}

memoize! {
    /// Least-squares slope of each channel against time.
    fn fit(smoothed: &Shelved<Array2<f64>>) -> Result<Array1<f64>, jobcache::Error> {
        let y = smoothed.load()?;
        let n = y.nrows() as f64;
        let t = Array1::from_shape_fn(y.nrows(), |i| i as f64 / n);
        let t_mean = t.mean().unwrap_or(0.0);
        let y_mean = y.mean_axis(Axis(0)).unwrap_or_else(|| Array1::zeros(y.ncols()));
        let dt = &t - t_mean;
        let var = dt.dot(&dt);
        Ok(y.axis_iter(Axis(1))
            .zip(y_mean.iter())
            .map(|(col, m)| dt.dot(&(&col - *m)) / var)
            .collect())
    }
}

fn run(mem: &Memory, width: usize) -> Result<Array1<f64>, jobcache::Error> {
    let raw = mem.cache(generate).call_and_shelve((20_000, 64, 7));
    let smoothed = mem.cache(smooth).try_call_and_shelve((&raw, width))?;
    mem.cache(fit).try_call(&smoothed)
}

fn timed(label: &str, mem: &Memory, width: usize) -> Result<(), jobcache::Error> {
    println!("--- {label}");
    let start = Instant::now();
    let slopes = run(mem, width)?;
    println!(
        "--- {label}: {:.1} ms; first slopes {:.3?}\n",
        start.elapsed().as_secs_f64() * 1e3,
        slopes.iter().take(3).collect::<Vec<_>>()
    );
    Ok(())
}

fn main() -> Result<(), jobcache::Error> {
    jobcache::log_to_stderr();
    let location = std::env::temp_dir().join("jobcache-pipeline-example");
    let mem = Memory::new(&location)?;
    mem.clear()?; // start cold, so the first run computes every step
    timed("cold run (every step computes)", &mem, 25)?;
    timed("warm run (every step hits)", &mem, 25)?;
    timed(
        "new smoothing width (data hits; smooth and fit recompute)",
        &mem,
        51,
    )?;
    println!(
        "journal: {}",
        location.join(jobcache::memo::JOURNAL_FILE).display()
    );
    // The folder differs between machines (it is under the temporary
    // directory): print it, with the commands that look into it.
    println!("cache:   {}", location.display());
    println!(
        "see it:  jobcache --dir {0} ls; jobcache --dir {0} report -o report.html",
        location.display()
    );
    Ok(())
}
