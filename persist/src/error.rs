//! The crate's one error type.

use std::path::{Path, PathBuf};

/// Everything that can go wrong while saving, loading, mapping or inspecting
/// a file. Every variant names the file (or `<stream>` for readers and
/// writers) and, where it applies, what was expected and what was found.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The operating system refused a read, write, rename or sync.
    #[error("{path}: I/O error while {action}: {source}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// What was being done (`reading`, `renaming into place`, …).
        action: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file does not start with the magic bytes of the expected format.
    #[error("{path}: not a {expected} file (starts with {found:02x?}); check the path")]
    BadMagic {
        /// The file concerned.
        path: PathBuf,
        /// The format that was expected.
        expected: &'static str,
        /// The first bytes found.
        found: Vec<u8>,
    },
    /// The file was written by a format version this build cannot read.
    #[error("{path}: {format} format version {found} is not supported (this build reads {supported}); upgrade jobcache-persist")]
    UnsupportedVersion {
        /// The file concerned.
        path: PathBuf,
        /// The format (`jobcache-persist container` or `.npy`).
        format: &'static str,
        /// The version found in the file.
        found: String,
        /// The versions this build reads.
        supported: &'static str,
    },
    /// The file is shorter than its own header says it must be.
    #[error("{path}: truncated: {what} needs {expected} bytes but the file has {found}; the file was cut short, rewrite it")]
    Truncated {
        /// The file concerned.
        path: PathBuf,
        /// The part that does not fit.
        what: String,
        /// Bytes required.
        expected: u64,
        /// Bytes available.
        found: u64,
    },
    /// A stored checksum does not match the bytes: the file is corrupt.
    #[error("{path}: checksum mismatch in {region}: stored {expected:016x}, computed {found:016x}; the file is corrupt, rewrite it")]
    ChecksumMismatch {
        /// The file concerned.
        path: PathBuf,
        /// Which region (`metadata`, `array 3`).
        region: String,
        /// The checksum stored in the file.
        expected: u64,
        /// The checksum of the bytes read.
        found: u64,
    },
    /// A structural field of the file has an impossible value.
    #[error("{path}: malformed {what}: expected {expected}, found {found}; the file is corrupt or not written by this crate")]
    Malformed {
        /// The file concerned.
        path: PathBuf,
        /// The field or part concerned.
        what: &'static str,
        /// What a valid file has there.
        expected: String,
        /// What this file has there.
        found: String,
    },
    /// An array's shape is too large: the element size times the product
    /// of its non-zero axis lengths does not fit `isize` (NumPy's rule,
    /// which also gives ndarray's), even when another axis is zero.
    #[error("{path}: array shape {shape:?} is too large: the element size times the product of the non-zero axis lengths must fit isize (at most {max} bytes); the file is corrupt", max = isize::MAX)]
    ShapeOverflow {
        /// The file concerned.
        path: PathBuf,
        /// The shape found.
        shape: Vec<u64>,
    },
    /// A dtype code or `.npy` descr that this crate does not know.
    #[error(
        "{path}: unknown or unsupported dtype {found:?}; supported: bool, i8-i64, u8-u64, f32, f64"
    )]
    UnknownDtype {
        /// The file concerned.
        path: PathBuf,
        /// The dtype found.
        found: String,
    },
    /// The stored element type differs from the requested Rust type.
    #[error("{path}: element type mismatch: the Rust type wants {expected}, the file holds {found}; load with the matching element type")]
    TypeMismatch {
        /// The file concerned.
        path: PathBuf,
        /// The element type requested.
        expected: String,
        /// The element type stored.
        found: String,
    },
    /// The stored array has a different number of dimensions than requested.
    #[error("{path}: rank mismatch: the Rust type wants {expected} dimensions, the file holds {found}; load with the matching dimension type (or IxDyn)")]
    RankMismatch {
        /// The file concerned.
        path: PathBuf,
        /// Dimensions requested.
        expected: usize,
        /// Dimensions stored.
        found: usize,
    },
    /// The data cannot be mapped as requested (big-endian data, misaligned
    /// offset, or a file whose value is not a single array).
    #[error("{path}: cannot map: {reason}")]
    Unmappable {
        /// The file concerned.
        path: PathBuf,
        /// Why, and what to do instead.
        reason: String,
    },
    /// An array held as an [`AnyArray`](crate::npy::AnyArray) cannot be
    /// converted as asked (another element type or rank, or a conversion
    /// to `f64` that could change values).
    #[error("cannot convert an array of {from} with shape {shape:?} to {to}: {reason}")]
    Convert {
        /// The element type held.
        from: crate::DType,
        /// The shape held.
        shape: Vec<usize>,
        /// What was asked for.
        to: String,
        /// Why not, and what to do instead.
        reason: String,
    },
    /// A `.npz` file is not a zip archive this crate can read (or a zip
    /// archive could not be written).
    #[error("{path}: {message}; check the path, or rewrite the archive with np.savez / np.savez_compressed")]
    Zip {
        /// The archive concerned.
        path: PathBuf,
        /// What the zip reader or writer reported.
        message: String,
    },
    /// A `.npz` archive holds no array of the requested name.
    #[error("{path}: no array named {name:?}; the archive holds {available:?}")]
    NoSuchArray {
        /// The archive concerned.
        path: PathBuf,
        /// The name asked for.
        name: String,
        /// The names the archive holds.
        available: Vec<String>,
    },
    /// A `.npz` archive exceeds a limit of [`NpzLimits`](crate::npz::NpzLimits):
    /// too many members, or a compressed member that inflates (or says it
    /// inflates) to more than allowed — a zip bomb or a damaged archive.
    #[error("{path}: {what} is {found}, over the limit of {limit}; if the archive is trusted, raise the limit (npz::NpzLimits)")]
    LimitExceeded {
        /// The archive (and member) concerned.
        path: PathBuf,
        /// The quantity limited.
        what: &'static str,
        /// The limit.
        limit: u64,
        /// What the archive has or claims.
        found: u64,
    },
    /// An array name that cannot be stored in a `.npz` archive.
    #[error("{path}: cannot store an array named {name:?}: {reason}")]
    BadName {
        /// The archive concerned.
        path: PathBuf,
        /// The name given.
        name: String,
        /// Why, and what to use instead.
        reason: String,
    },
    /// The value could not be serialized or deserialized (a type whose serde
    /// implementation this format does not support, or a body that does not
    /// match the requested type).
    #[error("{path}: {message}")]
    Serde {
        /// The file concerned.
        path: PathBuf,
        /// What serde or the format reported.
        message: String,
    },
}

impl Error {
    pub(crate) fn io(path: &Path, action: &'static str, source: std::io::Error) -> Error {
        Error::Io {
            path: path.to_path_buf(),
            action,
            source,
        }
    }

    /// An allocation of `bytes` for the file at `path` that the allocator
    /// refused (while `action`): a length read from a file is no proof of
    /// bytes (a file of holes has one).
    pub(crate) fn out_of_memory(path: &Path, action: &'static str, bytes: u128) -> Error {
        Error::io(
            path,
            action,
            std::io::Error::new(
                std::io::ErrorKind::OutOfMemory,
                format!("{bytes} bytes do not fit in memory"),
            ),
        )
    }

    pub(crate) fn malformed(
        path: &Path,
        what: &'static str,
        expected: impl ToString,
        found: impl ToString,
    ) -> Error {
        Error::Malformed {
            path: path.to_path_buf(),
            what,
            expected: expected.to_string(),
            found: found.to_string(),
        }
    }

    pub(crate) fn truncated(path: &Path, what: impl ToString, expected: u64, found: u64) -> Error {
        Error::Truncated {
            path: path.to_path_buf(),
            what: what.to_string(),
            expected,
            found,
        }
    }
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The placeholder path used for readers and writers that have no path.
pub(crate) fn stream_path() -> &'static Path {
    Path::new("<stream>")
}
