//! Entry keys and the reversible encoding of namespaces into directory names.
//!
//! The encoding is specified in `LAYOUT.md` ("Namespace directory names").

use crate::error::{clip, Result, StoreError};
use sha2::{Digest as _, Sha256};

/// Length of an entry key: a SHA-256 digest in lowercase hexadecimal.
pub const KEY_LEN: usize = 64;

/// Longest namespace accepted, in bytes of UTF-8.
pub const NAMESPACE_MAX: usize = 4096;

/// Encoded names longer than this are cut and given a hash suffix.
pub(crate) const ENCODED_MAX: usize = 200;
/// Where a long encoded name is cut (at a token boundary at or before it).
const CUT_AT: usize = 160;

/// Checks that `key` is 64 lowercase hexadecimal characters.
pub fn validate_key(key: &str) -> Result<()> {
    let bad = |found: String| StoreError::InvalidKey {
        key: clip(key),
        found,
    };
    if key.len() != KEY_LEN {
        return Err(bad(format!("{} bytes", key.len())));
    }
    if let Some(c) = key.chars().find(|c| !matches!(c, '0'..='9' | 'a'..='f')) {
        return Err(bad(format!("the character {c:?}")));
    }
    Ok(())
}

fn is_plain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// Encodes a namespace into a directory name that is safe on any POSIX file
/// system: never empty, never `.` or `..`, never starting with `.`, only the
/// characters `[A-Za-z0-9_.%~-]`, at most 200 bytes, and
/// injective (distinct namespaces give distinct names; names cut for length
/// rely on a 128-bit SHA-256 prefix for that).
///
/// `::` becomes `.` (except at the very start), `[A-Za-z0-9_-]` stay as they
/// are, every other byte of the UTF-8 becomes `%XX` (uppercase hex).
pub fn encode_namespace(namespace: &str) -> Result<String> {
    if namespace.is_empty() {
        return Err(StoreError::InvalidNamespace {
            namespace: String::new(),
            reason: "it is empty; give a function path or a non-empty name".into(),
        });
    }
    if namespace.len() > NAMESPACE_MAX {
        return Err(StoreError::InvalidNamespace {
            namespace: clip(namespace),
            reason: format!(
                "it is {} bytes long; at most {NAMESPACE_MAX} are allowed",
                namespace.len()
            ),
        });
    }
    let bytes = namespace.as_bytes();
    let mut out = String::with_capacity(bytes.len() + 8);
    // Token boundaries in `out`, for cutting long names.
    let mut boundary = 0usize;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b':' && bytes.get(i + 1) == Some(&b':') && !out.is_empty() {
            out.push('.');
            i += 2;
        } else if is_plain(b) {
            out.push(char::from(b));
            i += 1;
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
            i += 1;
        }
        if out.len() <= CUT_AT {
            boundary = out.len();
        }
    }
    if out.len() > ENCODED_MAX {
        let digest = Sha256::digest(bytes);
        out.truncate(boundary);
        out.push('~');
        for b in digest.iter().take(16) {
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
    Ok(out)
}

const HEX: [u8; 16] = *b"0123456789ABCDEF";

/// What a directory name decodes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodedNamespace {
    /// The full namespace.
    Full(String),
    /// A long name that was cut: only its prefix is known from the name
    /// (the full name is in the directory's `name` file).
    Cut,
}

/// Decodes a directory name made by [`encode_namespace`]; `None` when the
/// name is not one that the encoder can produce.
pub fn decode_namespace(name: &str) -> Option<DecodedNamespace> {
    if name.is_empty() || name.starts_with('.') {
        return None;
    }
    if let Some((_, hash)) = name.split_once('~') {
        let ok = hash.len() == 32 && hash.bytes().all(|b| HEX.contains(&b));
        return ok.then_some(DecodedNamespace::Cut);
    }
    let bytes = name.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'.' => {
                out.extend_from_slice(b"::");
                i += 1;
            }
            b'%' => {
                let hi = hex_val(*bytes.get(i + 1)?)?;
                let lo = hex_val(*bytes.get(i + 2)?)?;
                let v = hi << 4 | lo;
                // The encoder writes plain bytes as themselves, and a `::`
                // after the start as `.`; anything else is not its output.
                if is_plain(v) {
                    return None;
                }
                out.push(v);
                i += 3;
            }
            _ if is_plain(b) => {
                out.push(b);
                i += 1;
            }
            _ => return None,
        }
    }
    let s = String::from_utf8(out).ok()?;
    // Reject names the encoder would have written differently.
    (encode_namespace(&s).ok()? == name).then_some(DecodedNamespace::Full(s))
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_paths_stay_readable() {
        assert_eq!(
            encode_namespace("my_crate::stats::square").unwrap(),
            "my_crate.stats.square"
        );
        assert_eq!(encode_namespace("a b").unwrap(), "a%20b");
        assert_eq!(encode_namespace("..").unwrap(), "%2E%2E");
        assert_eq!(encode_namespace("::::").unwrap(), "%3A.%3A");
        assert_eq!(encode_namespace("a/../b").unwrap(), "a%2F%2E%2E%2Fb");
    }

    #[test]
    fn bad_input_is_rejected() {
        assert!(encode_namespace("").is_err());
        assert!(encode_namespace(&"x".repeat(NAMESPACE_MAX + 1)).is_err());
        assert!(validate_key(&"a".repeat(64)).is_ok());
        assert!(validate_key(&"A".repeat(64)).is_err());
        assert!(validate_key(&"a".repeat(63)).is_err());
        assert!(validate_key("../../etc/passwd").is_err());
    }

    #[test]
    fn long_names_are_cut_with_a_hash() {
        let long = "x".repeat(1000);
        let enc = encode_namespace(&long).unwrap();
        assert!(enc.len() <= ENCODED_MAX);
        assert_eq!(decode_namespace(&enc), Some(DecodedNamespace::Cut));
        let other = format!("{}y", "x".repeat(999));
        assert_ne!(enc, encode_namespace(&other).unwrap());
    }
}
