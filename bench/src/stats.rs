//! Repetitions and their spread: what every row reports besides its median.

use std::time::{Duration, Instant};

/// The smallest, middle and largest value of a row's repetitions, in the
/// row's unit (the median of an even count is the upper middle one, as in
/// [`crate::median`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    /// The smallest value.
    pub min: f64,
    /// The middle value.
    pub median: f64,
    /// The largest value.
    pub max: f64,
}

impl Spread {
    /// The spread of `values`; `None` when there are none (or one is NaN).
    pub fn of(values: &[f64]) -> Option<Spread> {
        if values.iter().any(|v| v.is_nan()) {
            return None;
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        Some(Spread {
            min: *sorted.first()?,
            median: sorted[sorted.len() / 2],
            max: *sorted.last()?,
        })
    }

    /// The spread of `times`, each converted to the row's unit by `unit`
    /// (for example [`crate::micros`], or a GB/s rate: a conversion that
    /// turns the fastest time into the largest value is fine).
    pub fn of_times(times: &[Duration], unit: impl Fn(Duration) -> f64) -> Option<Spread> {
        let values: Vec<f64> = times.iter().map(|&t| unit(t)).collect();
        Spread::of(&values)
    }
}

/// The times of a row's repetitions, in the order they were measured.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Samples(pub Vec<Duration>);

impl Samples {
    /// The middle time (zero when there is none).
    pub fn median(&self) -> Duration {
        let mut sorted = self.0.clone();
        sorted.sort();
        sorted.get(sorted.len() / 2).copied().unwrap_or_default()
    }

    /// The spread in the row's unit.
    pub fn spread(&self, unit: impl Fn(Duration) -> f64) -> Option<Spread> {
        Spread::of_times(&self.0, unit)
    }
}

/// Runs `f` once to warm up, then `reps` times (at least five), and keeps
/// every time: [`crate::median`] with its spread.
pub fn samples<F: FnMut()>(reps: usize, mut f: F) -> Samples {
    samples_of(reps, || {
        let start = Instant::now();
        f();
        start.elapsed()
    })
}

/// Like [`samples`], but `f` returns the time of the part it measured.
pub fn samples_of<F: FnMut() -> Duration>(reps: usize, mut f: F) -> Samples {
    f();
    Samples((0..reps.max(crate::DEFAULT_REPS)).map(|_| f()).collect())
}

/// The subject and the baseline of one row, measured alternately: pair `i`
/// is `subject[i]` then `baseline[i]`, run one after the other so that the
/// machine's changing load weighs on both alike.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pairs {
    /// The subject's times.
    pub subject: Samples,
    /// The baseline's times, `None` when the baseline could not be measured
    /// (a Python peer that could not be set up, or that failed).
    pub baseline: Option<Samples>,
}

impl Pairs {
    /// The ratio of each pair, baseline time ÷ subject time (how many times
    /// faster the subject is); empty without a baseline.
    pub fn ratios(&self) -> Vec<f64> {
        let Some(baseline) = &self.baseline else {
            return Vec::new();
        };
        self.subject
            .0
            .iter()
            .zip(&baseline.0)
            .map(|(s, b)| b.as_secs_f64() / s.as_secs_f64())
            .collect()
    }

    /// The spread of the per-pair ratios: its median is the row's ratio.
    pub fn ratio_spread(&self) -> Option<Spread> {
        Spread::of(&self.ratios())
    }

    /// The medians of both sides (the baseline's zero when it is missing).
    pub fn medians(&self) -> (Duration, Duration) {
        (
            self.subject.median(),
            self.baseline
                .as_ref()
                .map_or(Duration::ZERO, Samples::median),
        )
    }
}

/// Measures `subject` and `baseline` alternately, one warm-up each then
/// `reps` pairs (at least five), each returning the time it measured. When
/// `baseline` returns `None` (its peer failed) it is not called again and
/// the row has no baseline: a missing baseline is reported, never guessed.
pub fn pairs(
    reps: usize,
    mut subject: impl FnMut() -> Duration,
    mut baseline: impl FnMut() -> Option<Duration>,
) -> Pairs {
    subject();
    let mut alive = baseline().is_some();
    let (mut s, mut b) = (Vec::new(), Vec::new());
    for _ in 0..reps.max(crate::DEFAULT_REPS) {
        s.push(subject());
        if alive {
            match baseline() {
                Some(t) => b.push(t),
                None => alive = false,
            }
        }
    }
    Pairs {
        subject: Samples(s),
        baseline: alive.then_some(Samples(b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn spread_is_min_median_max() {
        let s = Spread::of(&[3.0, 1.0, 2.0, 5.0, 4.0]);
        assert_eq!(
            s,
            Some(Spread {
                min: 1.0,
                median: 3.0,
                max: 5.0
            })
        );
        assert_eq!(Spread::of(&[]), None);
        assert_eq!(Spread::of(&[f64::NAN]), None);
    }

    #[test]
    fn the_ratio_is_the_median_of_the_pairs_not_of_the_medians() {
        // Medians 20 vs 40 (ratio of medians 2.0); per pair 4, 1, 1.5: median 1.5.
        let p = Pairs {
            subject: Samples(vec![ms(10), ms(40), ms(20)]),
            baseline: Some(Samples(vec![ms(40), ms(40), ms(30)])),
        };
        assert_eq!(p.ratio_spread().map(|s| s.median), Some(1.5));
        assert_eq!(p.medians(), (ms(20), ms(40)));
    }

    #[test]
    fn pairs_alternate_and_a_failed_baseline_is_dropped() {
        let log = std::cell::RefCell::new(Vec::new());
        let p = pairs(
            5,
            || {
                log.borrow_mut().push('s');
                ms(1)
            },
            || {
                log.borrow_mut().push('b');
                Some(ms(2))
            },
        );
        assert_eq!(log.borrow().iter().collect::<String>(), "sbsbsbsbsbsb");
        assert_eq!(p.ratio_spread().map(|s| s.median), Some(2.0));

        let mut calls = 0;
        let p = pairs(
            5,
            || ms(1),
            || {
                calls += 1;
                (calls < 3).then_some(ms(2))
            },
        );
        assert_eq!(p.baseline, None);
        assert_eq!(calls, 3);
        assert!(p.ratios().is_empty());
        assert_eq!(p.subject.0.len(), 5);
    }
}
