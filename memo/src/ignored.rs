//! Arguments left out of the cache key.

use serde::{Serialize, Serializer};
use std::ops::{Deref, DerefMut};

/// An argument that is passed to the function but left out of the cache key,
/// as joblib's `ignore=[...]` does: a verbosity flag, a progress bar, a
/// thread count, a handle that cannot be serialized.
///
/// Declare the parameter as `Ignored<T>`; it dereferences to `T`.
///
/// ```
/// use jobcache_memo::Ignored;
///
/// fn total(values: &[f64], verbose: Ignored<bool>) -> f64 {
///     if *verbose {
///         eprintln!("summing {} values", values.len());
///     }
///     values.iter().sum()
/// }
/// assert_eq!(total(&[1.0, 2.0], Ignored(false)), 3.0);
/// ```
///
/// Two calls that differ only in ignored arguments share one cache entry, so
/// an ignored argument must not change the result.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ignored<T>(pub T);

impl<T> Ignored<T> {
    /// The wrapped value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> Deref for Ignored<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> DerefMut for Ignored<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

/// Serializes as unit, whatever `T` is, so it adds nothing to the key.
impl<T> Serialize for Ignored<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_unit()
    }
}
