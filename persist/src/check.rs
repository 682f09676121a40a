//! The checks every reader applies before it trusts a header: one place, so
//! the `.npy` readers (`read_header`, `read`, `from_reader`, `map`) and the
//! container's array descriptors reach the same verdict on the same bytes.
//!
//! 1. The shape: the element size times the product of the non-zero axis
//!    lengths must fit `isize`. This is NumPy's rule ("array is too big")
//!    and, since every element is at least one byte, it implies ndarray's
//!    (the product of the non-zero axis lengths fits `isize`), which
//!    ndarray's unchecked constructors rely on. A zero-length axis does not
//!    excuse the others: `(0, 2**64-1)` is refused.
//! 2. The length: the data the header announces must be exactly what
//!    follows it — to the byte for a file or a map (`check_file_len`), and
//!    for a stream, which must end right after the data
//!    (`check_stream_end`). Trailing bytes are refused everywhere: they are
//!    not part of any array, so they are damage or a different format.

use std::io::Read;
use std::path::Path;

use ndarray::{Dimension, IxDyn};

use crate::error::{Error, Result};

/// Bytes of an array of `shape` with elements of `item_size` bytes, after
/// rule 1; the error names the file and the shape.
pub(crate) fn data_len(shape: &[u64], item_size: u64, path: &Path) -> Result<u64> {
    let overflow = || Error::ShapeOverflow {
        path: path.to_path_buf(),
        shape: shape.to_vec(),
    };
    let limit = isize::MAX as u64;
    let mut bytes = item_size;
    let mut empty = false;
    for &d in shape {
        if d == 0 {
            empty = true;
            continue;
        }
        bytes = bytes
            .checked_mul(d)
            .filter(|&b| b <= limit)
            .ok_or_else(overflow)?;
    }
    if bytes > limit {
        return Err(overflow());
    }
    Ok(if empty { 0 } else { bytes })
}

/// The ndarray dimension of a shape that passed [`data_len`] (so every
/// axis fits `usize`), checked against `D`'s rank.
pub(crate) fn dim_of<D: Dimension>(shape: &[u64], path: &Path) -> Result<D> {
    let dims: Vec<usize> = shape
        .iter()
        .map(|&d| usize::try_from(d))
        .collect::<Result<_, _>>()
        .map_err(|_| Error::ShapeOverflow {
            path: path.to_path_buf(),
            shape: shape.to_vec(),
        })?;
    D::from_dimension(&IxDyn(&dims)).ok_or_else(|| Error::RankMismatch {
        path: path.to_path_buf(),
        expected: D::NDIM.unwrap_or(dims.len()),
        found: dims.len(),
    })
}

/// Rule 2 for a file or a map of `found` bytes that must hold exactly
/// `need` (header and data).
pub(crate) fn check_file_len(path: &Path, what: &str, need: u64, found: u64) -> Result<()> {
    if found < need {
        return Err(Error::truncated(path, what, need, found));
    }
    if found > need {
        return Err(trailing(path, need, format!("{found} bytes")));
    }
    Ok(())
}

/// Rule 2 for a stream that has just yielded its last `need` bytes: it
/// must end here. Reads at most 64 KiB past the end to say how much more
/// there is.
pub(crate) fn check_stream_end(r: &mut dyn Read, path: &Path, need: u64) -> Result<()> {
    const PEEK: u64 = 64 << 10;
    let extra = std::io::copy(&mut r.take(PEEK), &mut std::io::sink())
        .map_err(|e| Error::io(path, "reading past the .npy data of", e))?;
    if extra > 0 {
        let more = if extra == PEEK { "at least " } else { "" };
        return Err(trailing(
            path,
            need,
            format!("{more}{extra} more bytes after the data"),
        ));
    }
    Ok(())
}

fn trailing(path: &Path, need: u64, found: String) -> Error {
    Error::malformed(
        path,
        "file length",
        format!("{need} bytes (header + data), nothing after the data"),
        found,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_follow_numpy_and_ndarray() {
        let p = Path::new("t");
        let max = isize::MAX as u64;
        assert_eq!(data_len(&[], 8, p).unwrap(), 8);
        assert_eq!(data_len(&[3, 4], 8, p).unwrap(), 96);
        assert_eq!(data_len(&[0, 5], 8, p).unwrap(), 0);
        assert_eq!(data_len(&[0, max], 1, p).unwrap(), 0);
        assert_eq!(data_len(&[max], 1, p).unwrap(), max);
        // ndarray: non-zero axes must multiply within isize.
        assert!(data_len(&[0, u64::MAX], 1, p).is_err());
        assert!(data_len(&[0, max + 1], 1, p).is_err());
        assert!(data_len(&[1 << 32, 1 << 32, 0], 1, p).is_err());
        // NumPy: the element size counts too.
        assert!(data_len(&[0, 1 << 62], 8, p).is_err());
        assert!(data_len(&[max / 8 + 1], 8, p).is_err());
        assert_eq!(data_len(&[max / 8], 8, p).unwrap(), max / 8 * 8);
    }

    #[test]
    fn lengths_are_exact() {
        let p = Path::new("t");
        assert!(check_file_len(p, "x", 10, 10).is_ok());
        assert!(matches!(
            check_file_len(p, "x", 10, 9),
            Err(Error::Truncated { .. })
        ));
        let err = check_file_len(p, "x", 10, 18).unwrap_err();
        assert!(err.to_string().contains("18 bytes"), "{err}");
        assert!(check_stream_end(&mut &b""[..], p, 4).is_ok());
        let err = check_stream_end(&mut &[0u8; 8][..], p, 4).unwrap_err();
        assert!(err.to_string().contains("8 more bytes"), "{err}");
    }
}
