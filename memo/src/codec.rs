//! Results to and from the store's payloads, through jobcache-persist: the
//! arrays inside a result are raw segments, and a plain-array result loads
//! straight into its final allocation.

use crate::Error;
use jobcache_store::Entry;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::io::{self, Write};

/// Writes `value` as a payload in persist's container format, zstd
/// compressed at `level` if given.
pub(crate) fn encode<T: Serialize + ?Sized>(
    w: &mut dyn Write,
    value: &T,
    level: Option<i32>,
) -> io::Result<()> {
    let options = jobcache_persist::SaveOptions::default().compression_level(level);
    jobcache_persist::to_writer_with(w, value, &options)
        .map(|_| ())
        .map_err(io::Error::other)
}

/// Reads a value from a stored entry: from memory for a small payload kept
/// in the metadata, from the payload file (arrays read in place) otherwise.
pub(crate) fn decode<T: DeserializeOwned + 'static>(entry: Entry) -> Result<T, Error> {
    if let Some(bytes) = entry.bytes_in_memory() {
        return decode_slice(bytes);
    }
    match (entry.file(), entry.local_path()) {
        // The payload file the store has just opened: no second open.
        (Some(file), Some(path)) => Ok(jobcache_persist::load_file(file, path)?),
        (None, Some(path)) => Ok(jobcache_persist::load(path)?),
        (_, None) => Ok(jobcache_persist::from_reader(entry)?),
    }
}

/// Reads a value from encoded bytes in memory.
pub(crate) fn decode_slice<T: DeserializeOwned + 'static>(bytes: &[u8]) -> Result<T, Error> {
    Ok(jobcache_persist::from_bytes(bytes)?)
}
