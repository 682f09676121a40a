//! Stable SHA-256 digests of any [`serde::Serialize`] value: the cache keys of
//! jobcache.
//!
//! [`hash`] turns a value into a [`Digest`]; a [`Hasher`] takes several values
//! and raw byte strings in turn. Both hash a *canonical encoding* of the value
//! (specified in `ENCODING.md` beside this crate): postcard's stable 1.x wire
//! format, except that map entries are sorted, so that a `HashMap` gives the
//! same digest in every process whatever its insertion order or random state.
//! The encoding version is hashed in, so a future change of encoding can never
//! silently reuse old keys.
//!
//! `ndarray` arrays (with ndarray's `serde` feature) hash by shape and logical
//! (row-major) content, whatever their memory layout: an array, its
//! Fortran-order copy and a strided view of the same elements give one
//! digest.
//!
//! A value whose encoding reaches 1 MiB ([`TREE_THRESHOLD`]) is hashed as a
//! tree of 1 MiB chunks (since encoding version 2; each chunk's digest is
//! BLAKE3 since version 3, the root SHA-256), the chunks on every core the
//! process may use ([`Hasher::with_threads`] sets how many; the digest does
//! not depend on it). Arrays of `f64` and `f32` are read straight from
//! memory: a C-contiguous one is hashed in place, a Fortran-order one is
//! copied into contiguous blocks as it is hashed.
//!
//! ```
//! use jobcache_hash::{hash, Digest, Hasher};
//! use std::collections::HashMap;
//!
//! # fn main() -> Result<(), jobcache_hash::Error> {
//! let key: Digest = hash(&("square", vec![1.0_f64, 2.0, 3.0]))?;
//! println!("{key} ({})", key.short());
//!
//! // Maps are canonical: insertion order does not matter.
//! let a: HashMap<&str, u32> = [("x", 1), ("y", 2)].into_iter().collect();
//! let b: HashMap<&str, u32> = [("y", 2), ("x", 1)].into_iter().collect();
//! assert_eq!(hash(&a)?, hash(&b)?);
//!
//! // Several values in turn; framing keeps ("ab", "c") apart from ("a", "bc").
//! let mut h = Hasher::new();
//! h.update("ab")?.update("c")?;
//! let mut g = Hasher::new();
//! g.update("a")?.update("bc")?;
//! assert_ne!(h.finalize(), g.finalize());
//! # Ok(())
//! # }
//! ```
//!
//! # Limitations
//!
//! - `HashSet` (and any other type whose serde form is a *sequence* in
//!   iteration order) is not canonical: two processes can order it
//!   differently and get different digests. Use `BTreeSet`, or a map.
//! - Floats hash by bit pattern: `-0.0` and `0.0` differ, and so do NaNs with
//!   different payloads.
//! - The digest is of the serde form, not of the Rust type: values of two
//!   types with the same encoding (`1u8` and `true`) share a digest. Callers
//!   that mix types in one key space hash a type tag in too.
//! - A `Serialize` implementation that returns an error makes [`hash`] return
//!   [`Error::Serialize`].
//! - Only arrays of `f64` and `f32` (owned, views, `ArcArray`, or references
//!   to them; 1 to 4 dimensions or `IxDyn`) take the fast path from memory,
//!   and only where they are a whole value, a tuple element, a struct field
//!   or an `Option`/newtype's content; elsewhere (other element types,
//!   arrays inside a `Vec` or a map) they go through ndarray's `Serialize`,
//!   element by element: the same digest, more slowly.
//! - A non-contiguous array other than a 2-D column-wise one is copied in
//!   logical order element by element.
//! - Keys changed with encoding version 3 (and before it with version 2):
//!   entries cached by an earlier version are misses.
#![deny(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod arrays;
mod digest;
mod elements;
mod encoder;
mod tree;

pub use digest::{Digest, ParseDigestError};
pub use elements::hash_elements;

use encoder::Encoder;
use serde::Serialize;
use sha2::{Digest as _, Sha256};

/// The version of the canonical encoding (ENCODING.md); hashed into every
/// digest. Version 3 digests the 1 MiB chunks of a long value with BLAKE3
/// (version 2: SHA-256), so keys of earlier versions never match.
pub const ENCODING_VERSION: u32 = 3;

/// The shortest value encoding or byte string hashed as a tree of 1 MiB
/// chunks (ENCODING.md): shorter ones are hashed as they were in version 1.
pub const TREE_THRESHOLD: usize = tree::CHUNK;

/// The bytes every digest starts from: a domain tag and the encoding version.
const DOMAIN: &[u8] = b"jobcache-hash\0";

/// The largest encoding buffer a [`Hasher`] keeps between values.
const KEPT_BUFFER: usize = 64 * 1024;

/// Framing tags: each item fed to a [`Hasher`] starts with one.
const TAG_VALUE: u8 = 1;
const TAG_BYTES: u8 = 2;
/// A value whose encoding is at least [`TREE_THRESHOLD`] bytes: its tree root.
const TAG_VALUE_TREE: u8 = 3;
/// A byte string of at least [`TREE_THRESHOLD`] bytes: its tree root.
const TAG_BYTES_TREE: u8 = 4;

/// Why a value could not be hashed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The value's `Serialize` implementation reported an error.
    #[error("the value could not be serialized for hashing: {0}")]
    Serialize(String),
}

impl serde::ser::Error for Error {
    fn custom<T: std::fmt::Display>(msg: T) -> Error {
        Error::Serialize(msg.to_string())
    }
}

/// The digest of one value: `Hasher::new().update(value)?.finalize()`.
pub fn hash<T: Serialize + ?Sized>(value: &T) -> Result<Digest, Error> {
    let mut hasher = Hasher::new();
    hasher.update(value)?;
    Ok(hasher.finalize())
}

/// The canonical encoding of a value, as it is hashed (without the domain
/// tag and framing). Useful to see what a key is made of, and in tests.
pub fn canonical_bytes<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, Error> {
    let mut encoder = Encoder::to_vec();
    encoder::encode(&mut encoder, value)?;
    encoder.finish()
}

/// A streaming digest of several values and byte strings, fed in turn.
///
/// Each item is framed (a tag, and a length for raw bytes; values are
/// self-delimiting in the canonical encoding), so two different sequences of
/// items of the same types never give the same input to SHA-256.
#[derive(Clone)]
pub struct Hasher {
    sha: Sha256,
    /// Reused between values so hashing many small values allocates once.
    buf: Vec<u8>,
    /// Threads that hash the chunks of a long value.
    threads: usize,
}

impl Default for Hasher {
    fn default() -> Hasher {
        Hasher::new()
    }
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hasher").finish_non_exhaustive()
    }
}

impl Hasher {
    /// A hasher that has been fed the domain tag and encoding version, and
    /// hashes the chunks of a long value on every core this process may
    /// use.
    pub fn new() -> Hasher {
        Hasher::with_threads(tree::default_threads())
    }

    /// A hasher that hashes the chunks of a long value on at most `threads`
    /// threads (0 counts as 1: everything on the calling thread). The
    /// digest does not depend on `threads`; only the speed does.
    pub fn with_threads(threads: usize) -> Hasher {
        let mut sha = Sha256::new();
        sha.update(DOMAIN);
        sha.update(ENCODING_VERSION.to_le_bytes());
        Hasher {
            sha,
            buf: Vec::new(),
            threads: threads.max(1),
        }
    }

    /// Feeds one value in its canonical encoding.
    ///
    /// After an error the hasher has been fed part of the value: discard it.
    pub fn update<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<&mut Hasher, Error> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let mut encoder = Encoder::to_sha(&mut self.sha, buf, self.threads);
        encoder::encode(&mut encoder, value)?;
        let buf = encoder.finish()?;
        // A buffer grown to a chunk by a long value is not kept.
        if buf.capacity() <= KEPT_BUFFER {
            self.buf = buf;
        }
        Ok(self)
    }

    /// Feeds a raw byte string, framed by its length; one of at least
    /// [`TREE_THRESHOLD`] bytes is hashed in place as a tree, on several
    /// threads.
    pub fn update_bytes(&mut self, bytes: &[u8]) -> &mut Hasher {
        if bytes.len() >= TREE_THRESHOLD {
            self.sha.update([TAG_BYTES_TREE]);
            self.sha.update(tree::slice_root(bytes, self.threads));
            return self;
        }
        // The length prefix is encoded into the kept buffer: no allocation
        // per call (memo feeds each argument's digest through here).
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let mut prefix = Encoder::keeping(buf);
        prefix.varint(bytes.len() as u128);
        let mut buf = prefix.into_bytes();
        self.sha.update([TAG_BYTES]);
        self.sha.update(&buf);
        self.sha.update(bytes);
        buf.clear();
        self.buf = buf;
        self
    }

    /// The digest of everything fed so far.
    pub fn finalize(self) -> Digest {
        Digest::from_bytes(self.sha.finalize().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, HashMap};

    #[test]
    fn postcard_wire_format_for_map_free_values() {
        #[derive(Serialize)]
        enum E {
            Unit,
            New(i32),
            Tuple(u8, String),
            Struct { a: Option<u16>, b: char },
        }
        let value = (
            vec![E::Unit, E::New(-5), E::Tuple(7, "x".into())],
            E::Struct {
                a: Some(300),
                b: 'é',
            },
            (u128::MAX, i128::MIN, -1i64, 1.5f32, -0.0f64, usize::MAX),
        );
        assert_eq!(
            canonical_bytes(&value).unwrap(),
            postcard::to_allocvec(&value).unwrap()
        );
    }

    #[test]
    fn maps_are_sorted_by_encoded_entry() {
        let map: BTreeMap<u32, u8> = [(300, 1), (1, 2)].into_iter().collect();
        // varint(300) = ac 02 sorts after varint(1) = 01 either way; check the bytes.
        assert_eq!(canonical_bytes(&map).unwrap(), [2, 1, 2, 0xac, 0x02, 1]);
        let hashed: HashMap<u32, u8> = map.clone().into_iter().collect();
        assert_eq!(hash(&map).unwrap(), hash(&hashed).unwrap());
    }

    #[test]
    fn unknown_length_sequences_get_their_length_prefix() {
        struct Unsized(Vec<u8>);
        impl Serialize for Unsized {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_seq(self.0.iter().filter(|_| true))
            }
        }
        let known = canonical_bytes(&vec![1u8, 2, 3]).unwrap();
        assert_eq!(canonical_bytes(&Unsized(vec![1, 2, 3])).unwrap(), known);
    }

    #[test]
    fn serialize_errors_are_reported_not_panicked() {
        struct Fails;
        impl Serialize for Fails {
            fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                Err(serde::ser::Error::custom("not today"))
            }
        }
        assert_eq!(hash(&Fails), Err(Error::Serialize("not today".to_string())));
    }

    fn framed(tag: u8, body: &[u8]) -> Digest {
        let mut sha = Sha256::new();
        sha.update(DOMAIN);
        sha.update(ENCODING_VERSION.to_le_bytes());
        sha.update([tag]);
        sha.update(body);
        Digest::from_bytes(sha.finalize().into())
    }

    fn root(run: &[u8]) -> [u8; 32] {
        let mut sha = Sha256::new();
        for chunk in run.chunks(TREE_THRESHOLD) {
            sha.update(blake3::hash(chunk).as_bytes());
        }
        sha.update((run.len() as u64).to_le_bytes());
        sha.finalize().into()
    }

    #[test]
    fn short_values_are_one_item_and_long_ones_a_tree() {
        // Just short of a chunk: the version 1 framing.
        let short: Vec<u8> = vec![5; TREE_THRESHOLD - 4];
        let bytes = canonical_bytes(&short).unwrap();
        assert_eq!(bytes.len(), TREE_THRESHOLD - 1);
        assert_eq!(hash(&short).unwrap(), framed(TAG_VALUE, &bytes));
        // One more byte: a tree of one chunk.
        let long: Vec<u8> = vec![5; TREE_THRESHOLD - 3];
        let bytes = canonical_bytes(&long).unwrap();
        assert_eq!(bytes.len(), TREE_THRESHOLD);
        assert_eq!(hash(&long).unwrap(), framed(TAG_VALUE_TREE, &root(&bytes)));
        // Raw byte strings likewise.
        let raw = vec![7u8; 200_000];
        let mut direct = Hasher::new();
        direct.update_bytes(&raw);
        let mut body = vec![0xc0, 0x9a, 0x0c];
        body.extend_from_slice(&raw);
        assert_eq!(direct.finalize(), framed(TAG_BYTES, &body));
        let raw = vec![7u8; 2 * TREE_THRESHOLD + 1];
        let mut direct = Hasher::with_threads(3);
        direct.update_bytes(&raw);
        assert_eq!(direct.finalize(), framed(TAG_BYTES_TREE, &root(&raw)));
    }
}
