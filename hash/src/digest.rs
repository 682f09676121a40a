//! The 32-byte digest type and its text form.

use std::fmt;
use std::str::FromStr;

/// A SHA-256 digest: the cache key of one function call.
///
/// Displays as 64 lowercase hex digits and parses back with [`FromStr`].
/// With serde it is a hex string in human-readable formats (JSON) and 32 raw
/// bytes in binary ones.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest([u8; 32]);

impl Digest {
    /// Length of the text form.
    pub const HEX_LEN: usize = 64;

    /// Wraps raw digest bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Digest {
        Digest(bytes)
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The first 12 hex digits, for log lines (as `git` shortens commit ids).
    pub fn short(&self) -> String {
        let mut text = self.to_string();
        text.truncate(12);
        text
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut text = [0u8; 64];
        for (i, byte) in self.0.iter().enumerate() {
            text[2 * i] = HEX[usize::from(byte >> 4)];
            text[2 * i + 1] = HEX[usize::from(byte & 0x0f)];
        }
        // Every byte written above is an ASCII hex digit.
        f.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

/// Why a text is not a digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseDigestError {
    /// The text does not have 64 characters.
    #[error("a digest has 64 hex digits, found {found} characters")]
    Length {
        /// The number of characters found.
        found: usize,
    },
    /// A character is not a hex digit.
    #[error("a digest has only hex digits (0-9, a-f), found {found:?} at position {position}")]
    NotHex {
        /// The offending character.
        found: char,
        /// Its position, in characters.
        position: usize,
    },
}

impl FromStr for Digest {
    type Err = ParseDigestError;

    /// Parses 64 hex digits (either case).
    fn from_str(text: &str) -> Result<Digest, ParseDigestError> {
        let found = text.chars().count();
        if found != Digest::HEX_LEN || text.len() != Digest::HEX_LEN {
            return Err(ParseDigestError::Length { found });
        }
        let nibble = |position: usize, c: u8| {
            (c as char)
                .to_digit(16)
                .map(|d| d as u8)
                .ok_or(ParseDigestError::NotHex {
                    found: c as char,
                    position,
                })
        };
        let mut bytes = [0u8; 32];
        for (i, pair) in text.as_bytes().chunks_exact(2).enumerate() {
            bytes[i] = nibble(2 * i, pair[0])? << 4 | nibble(2 * i + 1, pair[1])?;
        }
        Ok(Digest(bytes))
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.collect_str(self)
        } else {
            serializer.serialize_bytes(&self.0)
        }
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Digest, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Digest;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a digest: 64 hex digits or 32 bytes")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Digest, E> {
                text.parse().map_err(E::custom)
            }
            fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<Digest, E> {
                <[u8; 32]>::try_from(bytes)
                    .map(Digest)
                    .map_err(|_| E::invalid_length(bytes.len(), &self))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Digest, A::Error> {
                let mut bytes = [0u8; 32];
                for (i, byte) in bytes.iter_mut().enumerate() {
                    *byte = seq
                        .next_element()?
                        .ok_or_else(|| serde::de::Error::invalid_length(i, &self))?;
                }
                Ok(Digest(bytes))
            }
        }
        if deserializer.is_human_readable() {
            deserializer.deserialize_str(Visitor)
        } else {
            deserializer.deserialize_bytes(Visitor)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trip_and_short_form() {
        let digest = Digest::from_bytes(std::array::from_fn(|i| i as u8 * 7));
        let text = digest.to_string();
        assert_eq!(text.len(), 64);
        assert_eq!(text, text.to_lowercase());
        assert_eq!(text.parse::<Digest>(), Ok(digest));
        assert_eq!(text.to_uppercase().parse::<Digest>(), Ok(digest));
        assert_eq!(digest.short(), text[..12]);
    }

    #[test]
    fn parse_errors_say_what_was_found() {
        assert_eq!(
            "abc".parse::<Digest>(),
            Err(ParseDigestError::Length { found: 3 })
        );
        let bad = format!("{}g", "0".repeat(63));
        assert_eq!(
            bad.parse::<Digest>(),
            Err(ParseDigestError::NotHex {
                found: 'g',
                position: 63
            })
        );
        // 64 bytes but not 64 characters.
        let multibyte = format!("{}é", "0".repeat(62));
        assert!(multibyte.parse::<Digest>().is_err());
    }

    #[test]
    fn serde_is_hex_in_json_and_bytes_in_postcard() {
        let digest = Digest::from_bytes([0xab; 32]);
        let json = serde_json::to_string(&digest).unwrap();
        assert_eq!(json, format!("\"{}\"", "ab".repeat(32)));
        assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), digest);
        let bin = postcard::to_allocvec(&digest).unwrap();
        assert_eq!(bin.len(), 33);
        assert_eq!(postcard::from_bytes::<Digest>(&bin).unwrap(), digest);
    }
}
