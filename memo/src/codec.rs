//! Results to and from the store's payloads, through jobcache-persist.

use crate::Error;
use jobcache_store::Entry;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::io::{self, Read, Write};

/// Writes `value` as a payload.
pub(crate) fn encode<T: Serialize + ?Sized>(w: &mut dyn Write, value: &T) -> io::Result<()> {
    let bytes = postcard::to_allocvec(value).map_err(io::Error::other)?;
    w.write_all(&bytes)
}

/// Reads a value from a stored entry.
pub(crate) fn decode<T: DeserializeOwned + 'static>(mut entry: Entry) -> Result<T, Error> {
    let mut bytes = Vec::new();
    entry
        .read_to_end(&mut bytes)
        .map_err(|e| Error::Codec(e.to_string()))?;
    decode_slice(&bytes)
}

/// Reads a value from encoded bytes in memory.
pub(crate) fn decode_slice<T: DeserializeOwned + 'static>(bytes: &[u8]) -> Result<T, Error> {
    postcard::from_bytes(bytes).map_err(|e| Error::Codec(e.to_string()))
}
