//! Header edges: every reader of a format reaches the same verdict on the
//! same bytes (shape products, element size × count against `isize`, the
//! data length against the file, trailing bytes), and mapped views are
//! sound on empty, zero-axis and misaligned data.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers

mod common;

use std::path::Path;

use common::{allocator_can_refuse, config, reseal, table_offset};
use jobcache_persist::{
    from_bytes, inspect, load, load_array, map, npy, save, Element, Error, Mapped,
};
use ndarray::{Array2, ArrayD, Ix2, IxDyn};
use proptest::prelude::*;

/// A `.npy` file as NumPy lays it out (version 1.0), with `pad` extra
/// header spaces (0 keeps the data 64-byte aligned), then `data`.
fn npy_file(descr: &str, shape: &[u64], fortran: bool, pad: usize, data: &[u8]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(u64::to_string).collect();
    let tuple = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let order = if fortran { "True" } else { "False" };
    let mut dict = format!("{{'descr': '{descr}', 'fortran_order': {order}, 'shape': {tuple}, }}");
    let unpadded = 10 + dict.len() + 1;
    dict.push_str(&" ".repeat((64 - unpadded % 64) % 64 + pad));
    dict.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out.extend_from_slice(data);
    out
}

type Verdict = Result<Vec<usize>, Error>;

/// Every `.npy` reader's verdict on `bytes`: the shape it accepted, or its
/// error.
fn npy_verdicts<A: Element>(dir: &Path, bytes: &[u8]) -> [(&'static str, Verdict); 4] {
    let path = dir.join("edge.npy");
    std::fs::write(&path, bytes).unwrap();
    let to_usize = |s: Vec<u64>| s.into_iter().map(|d| d as usize).collect();
    [
        (
            "read_header",
            npy::read_header(&path).map(|h| to_usize(h.shape)),
        ),
        (
            "read",
            npy::read::<A, IxDyn>(&path).map(|a| a.shape().to_vec()),
        ),
        (
            "from_reader",
            npy::from_reader::<A, IxDyn>(&mut &bytes[..]).map(|a| a.shape().to_vec()),
        ),
        (
            "map",
            // SAFETY: the file is not modified while mapped.
            unsafe { npy::map::<A, IxDyn>(&path) }.map(|m| {
                let view = m.view();
                // Touch the view: its shape and every element.
                assert_eq!(view.iter().count(), view.len());
                view.shape().to_vec()
            }),
        ),
    ]
}

/// Asserts that all readers agree; `map` may in addition refuse with
/// `Unmappable` (and only then) when `unmappable`. Returns the verdict.
fn assert_agree(verdicts: &[(&str, Verdict)], unmappable: bool) -> Option<Vec<usize>> {
    let (first, reference) = &verdicts[0];
    for (name, verdict) in &verdicts[1..] {
        if *name == "map" && unmappable && reference.is_ok() {
            assert!(
                matches!(verdict, Err(Error::Unmappable { .. })),
                "map: {verdict:?}, expected Unmappable"
            );
            continue;
        }
        match (reference, verdict) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{first} and {name} disagree"),
            (Err(_), Err(_)) => {}
            _ => panic!("{first} says {reference:?} but {name} says {verdict:?}"),
        }
    }
    reference.as_ref().ok().cloned()
}

fn refused_by_all<A: Element>(bytes: &[u8]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let verdicts = npy_verdicts::<A>(dir.path(), bytes);
    assert_eq!(assert_agree(&verdicts, false), None, "{verdicts:?}");
    verdicts
        .into_iter()
        .map(|(_, v)| v.unwrap_err().to_string())
        .collect()
}

#[test]
fn a_zero_axis_does_not_excuse_the_others() {
    for err in refused_by_all::<u8>(&npy_file("|u1", &[0, u64::MAX], false, 0, b"")) {
        assert!(err.contains("18446744073709551615"), "{err}");
        assert!(err.contains("isize"), "{err}");
    }
    refused_by_all::<f64>(&npy_file("<f8", &[0, 1 << 63], false, 0, b""));
}

#[test]
fn element_size_times_count_must_fit_isize_as_numpy_says() {
    for err in refused_by_all::<f64>(&npy_file("<f8", &[0, 1 << 62], false, 0, b"")) {
        assert!(err.contains("4611686018427387904"), "{err}");
    }
    refused_by_all::<f64>(&npy_file("<f8", &[1 << 60], false, 0, b""));
    // One-byte elements: 2**62 fits, and an empty array of that shape is
    // accepted by every reader alike.
    let dir = tempfile::tempdir().unwrap();
    let ok = npy_file("|u1", &[0, 1 << 62], false, 0, b"");
    let verdicts = npy_verdicts::<u8>(dir.path(), &ok);
    assert_eq!(assert_agree(&verdicts, false), Some(vec![0, 1 << 62]));
}

#[test]
fn trailing_bytes_are_refused_by_every_reader() {
    let data: Vec<u8> = (0..96).collect();
    let mut bytes = npy_file("<f8", &[3, 4], false, 0, &data);
    let dir = tempfile::tempdir().unwrap();
    let verdicts = npy_verdicts::<f64>(dir.path(), &bytes);
    assert_eq!(assert_agree(&verdicts, false), Some(vec![3, 4]));
    bytes.extend_from_slice(&[7; 8]);
    for err in refused_by_all::<f64>(&bytes) {
        assert!(err.contains("nothing after the data"), "{err}");
    }
    let err = npy::from_reader::<f64, Ix2>(&mut &bytes[..]).unwrap_err();
    assert!(err.to_string().contains("8 more bytes"), "{err}");
    bytes.truncate(bytes.len() - 9);
    refused_by_all::<f64>(&bytes);
}

#[test]
fn empty_zero_axis_and_misaligned_maps() {
    let dir = tempfile::tempdir().unwrap();
    // Empty arrays of every rank, with and without zero-length axes.
    for shape in [&[0][..], &[0, 0], &[5, 0], &[0, 3, 7], &[2, 0, 1 << 40]] {
        for fortran in [false, true] {
            let bytes = npy_file("<f8", shape, fortran, 0, b"");
            let verdicts = npy_verdicts::<f64>(dir.path(), &bytes);
            let want: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
            assert_eq!(assert_agree(&verdicts, false), Some(want), "{shape:?}");
        }
    }
    // A 0-d array (one element).
    let bytes = npy_file("<i4", &[], false, 0, &7i32.to_le_bytes());
    assert_eq!(
        assert_agree(&npy_verdicts::<i32>(dir.path(), &bytes), false),
        Some(vec![])
    );
    // Misaligned data: read, refused by map; empty misaligned data maps.
    let data: Vec<u8> = (0..48).collect();
    let odd = npy_file("<f8", &[2, 3], false, 3, &data);
    assert_agree(&npy_verdicts::<f64>(dir.path(), &odd), true);
    let odd_empty = npy_file("<f8", &[0, 3], false, 3, b"");
    let verdicts = npy_verdicts::<f64>(dir.path(), &odd_empty);
    assert_eq!(assert_agree(&verdicts, false), Some(vec![0, 3]));
    // Bools other than 0 and 1 are refused by every reader that reads data.
    let bad = npy_file("|b1", &[3], false, 0, &[0, 1, 2]);
    let verdicts = npy_verdicts::<bool>(dir.path(), &bad);
    assert!(
        verdicts[1..].iter().all(|(_, v)| v.is_err()),
        "{verdicts:?}"
    );
}

/// A container holding one array, with the table's dimensions replaced by
/// `dims` and the metadata checksum recomputed.
fn container_with_dims(dims: &[u64]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.jcp");
    save(&path, &Array2::<f64>::zeros((0, dims.len().min(2)))).unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    let at = table_offset(&bytes);
    assert_eq!(bytes[at + 28], 2);
    for (k, d) in dims.iter().take(2).enumerate() {
        bytes[at + 32 + 8 * k..at + 40 + 8 * k].copy_from_slice(&d.to_le_bytes());
    }
    reseal(&mut bytes);
    bytes
}

/// Every container reader's verdict on a single-array file.
fn container_verdicts(bytes: &[u8]) -> Vec<(&'static str, Verdict)> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.jcp");
    std::fs::write(&path, bytes).unwrap();
    let shape = |a: ArrayD<f64>| a.shape().to_vec();
    vec![
        ("load", load::<ArrayD<f64>>(&path).map(shape)),
        ("from_bytes", from_bytes::<ArrayD<f64>>(bytes).map(shape)),
        ("load_array", load_array::<f64, IxDyn>(&path, 0).map(shape)),
        (
            "inspect",
            inspect(&path).map(|i| i.arrays[0].shape.iter().map(|&d| d as usize).collect()),
        ),
        (
            "Mapped::array",
            // SAFETY: the file is not modified while mapped.
            unsafe { Mapped::open(&path) }
                .and_then(|m| m.array::<f64, IxDyn>(0).map(|v| v.shape().to_vec())),
        ),
        (
            "map",
            // SAFETY: as above.
            unsafe { map::<f64, IxDyn>(&path) }.map(|m| m.view().shape().to_vec()),
        ),
    ]
}

#[test]
fn container_descriptors_take_the_same_shape_check() {
    for dims in [[0, u64::MAX], [0, 1 << 62], [1 << 62, 0]] {
        let verdicts = container_verdicts(&container_with_dims(&dims));
        assert_eq!(assert_agree(&verdicts, false), None, "{dims:?}");
        for (name, v) in verdicts {
            assert!(
                matches!(v, Err(Error::ShapeOverflow { .. })),
                "{name}: {v:?}"
            );
        }
    }
    let verdicts = container_verdicts(&container_with_dims(&[0, (1 << 60) - 1]));
    assert_eq!(assert_agree(&verdicts, false), Some(vec![0, (1 << 60) - 1]));
}

#[test]
fn container_readers_refuse_trailing_bytes_alike() {
    let mut bytes = container_with_dims(&[0, 3]);
    let verdicts = container_verdicts(&bytes);
    assert_eq!(assert_agree(&verdicts, false), Some(vec![0, 3]));
    bytes.extend_from_slice(&[0; 8]);
    let verdicts = container_verdicts(&bytes);
    assert_eq!(assert_agree(&verdicts, false), None, "{verdicts:?}");
    let streamed = jobcache_persist::from_reader::<_, ArrayD<f64>>(&bytes[..]);
    assert!(streamed.is_err(), "{streamed:?}");
}

fn arb_dim() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => 0u64..4,
        1 => Just(0u64),
        1 => Just(1u64 << 62),
        1 => Just((1u64 << 60) - 1),
        1 => Just(isize::MAX as u64),
        1 => Just(u64::MAX),
        1 => (1u64 << 28)..(1u64 << 36),
        1 => any::<u64>(),
    ]
}

/// Every element type the crate supports, little-endian, and a few
/// big-endian ones.
const DESCRS: [&str; 15] = [
    "|b1", "|u1", "|i1", "<i2", "<u2", "<i4", "<u4", "<f4", "<i8", "<u8", "<f8", ">i2", ">f4",
    ">f8", ">u8",
];

proptest! {
    #![proptest_config(config())]

    /// For arbitrary shapes, dtypes, orders, alignments and data lengths,
    /// the four `.npy` readers accept and refuse alike (`map` may refuse
    /// only what it documents: other byte order, misaligned data) and
    /// never panic.
    #[test]
    fn prop_npy_readers_agree(
        descr in prop::sample::select(&DESCRS[..]),
        shape in prop::collection::vec(arb_dim(), 0..4),
        fortran in any::<bool>(),
        pad in prop_oneof![3 => Just(0usize), 1 => 1usize..9],
        delta in -9i64..9,
        seed in any::<u8>(),
    ) {
        let size: u64 = descr[2..].parse().unwrap();
        let count = shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d));
        let want = count.and_then(|c| c.checked_mul(size)).unwrap_or(u64::MAX);
        let len = if want <= 4096 { (want as i64 + delta).max(0) as u64 } else { 64 };
        let data: Vec<u8> = (0..len)
            .map(|i| if descr == "|b1" { (i as u8 ^ seed) & 1 } else { (i as u8).wrapping_mul(31) ^ seed })
            .collect();
        let bytes = npy_file(descr, &shape, fortran, pad, &data);
        let offset = bytes.len() as u64 - len;
        let unmappable = (descr.starts_with('>') && size > 1)
            || (!offset.is_multiple_of(size) && want != 0);
        let dir = tempfile::tempdir().unwrap();
        macro_rules! check {
            ($($d:literal => $t:ty),*) => {
                match &descr[1..] {
                    $($d => assert_agree(&npy_verdicts::<$t>(dir.path(), &bytes), unmappable),)*
                    other => panic!("{other}"),
                }
            };
        }
        let verdict = check!("b1" => bool, "u1" => u8, "i1" => i8, "i2" => i16, "u2" => u16,
            "i4" => i32, "u4" => u32, "f4" => f32, "i8" => i64, "u8" => u64, "f8" => f64);
        // Accepted exactly when the shape passes NumPy's rule and the data
        // is exactly there.
        let nonzero = shape.iter().filter(|&&d| d != 0).try_fold(size, |a, &d| a.checked_mul(d));
        let fits = nonzero.is_some_and(|b| b <= isize::MAX as u64);
        prop_assert_eq!(verdict.is_some(), fits && len == want);
    }

    /// The container's readers agree on arbitrary array descriptors.
    #[test]
    fn prop_container_readers_agree(a in arb_dim(), b in arb_dim()) {
        let verdicts = container_verdicts(&container_with_dims(&[a, b]));
        let verdict = assert_agree(&verdicts, false);
        let fits = [a, b].iter().filter(|&&d| d != 0).try_fold(8u64, |x, &d| x.checked_mul(d))
            .is_some_and(|x| x <= isize::MAX as u64);
        prop_assert_eq!(verdict.is_some(), fits && (a == 0 || b == 0));
    }
}

/// A file whose header claims more data than the allocator grants, with the
/// length to match in holes (`truncate`: no disk space), is an error from
/// the copying readers, not an abort of the process.
#[test]
fn an_array_larger_than_memory_is_an_error_not_an_abort() {
    if !allocator_can_refuse() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let elems: u64 = 1 << 37; // 1 TiB of f64
    let header = npy_file("<f8", &[elems], false, 0, &[]);
    let npy_path = dir.path().join("huge.npy");
    std::fs::write(&npy_path, &header).unwrap();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&npy_path)
        .unwrap();
    f.set_len(header.len() as u64 + elems * 8).unwrap();
    let e = npy::read::<f64, ndarray::Ix1>(&npy_path).unwrap_err();
    assert!(e.to_string().contains("do not fit in memory"), "{e}");
    let e = npy::read_any(&npy_path).unwrap_err();
    assert!(e.to_string().contains("do not fit in memory"), "{e}");
}

/// A container whose trailer claims a terabyte of body, in a file of that
/// length made of holes, is an error, not an abort: the body is allocated
/// fallibly too.
#[test]
fn a_container_body_larger_than_memory_is_an_error_not_an_abort() {
    if !allocator_can_refuse() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small.jcp");
    save(&small, &5u64).unwrap();
    let bytes = std::fs::read(&small).unwrap();
    let (head, trailer) = (&bytes[..64], &bytes[bytes.len() - 64..]);
    let body_offset = u64::from_le_bytes(trailer[..8].try_into().unwrap());
    let file_len: u64 = 1 << 40;
    let trailer_at = file_len - 64;
    let mut forged = trailer.to_vec();
    forged[8..16].copy_from_slice(&(trailer_at - body_offset).to_le_bytes());
    forged[16..24].copy_from_slice(&0u64.to_le_bytes());
    forged[24..32].copy_from_slice(&0u64.to_le_bytes());
    forged[32..40].copy_from_slice(&file_len.to_le_bytes());
    let path = dir.path().join("huge.jcp");
    let f = std::fs::File::create(&path).unwrap();
    use std::os::unix::fs::FileExt;
    f.write_all_at(head, 0).unwrap();
    f.write_all_at(&forged, trailer_at).unwrap();
    assert_eq!(f.metadata().unwrap().len(), file_len);
    let e = load::<u64>(&path).unwrap_err();
    assert!(e.to_string().contains("do not fit in memory"), "{e}");
}
