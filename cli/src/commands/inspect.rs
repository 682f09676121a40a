//! `jobcache inspect FILE [--npy OUT]`.

use crate::error::{CliError, Result};
use crate::style::{count, emit, Style};
use jobcache_persist::{ArrayInfo, ChecksumStatus, FileFormat, Inspection};
use jobcache_trace::report::human_bytes;
use serde_json::json;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `inspect`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A file written by jobcache-persist (a cache entry's `payload`, a
    /// `save`d file) or a NumPy .npy file
    file: PathBuf,
    /// Skip reading the arrays to check their checksums (header only)
    #[arg(long)]
    quick: bool,
    /// Export an array of a persisted file to this .npy file
    #[arg(long, value_name = "OUT")]
    npy: Option<PathBuf>,
    /// Which array to export with --npy
    #[arg(long, default_value_t = 0, value_name = "INDEX", requires = "npy")]
    array: usize,
    /// Print JSON (shape documented in README.md)
    #[arg(long)]
    json: bool,
}

/// Runs `inspect`.
pub fn run(args: Args) -> Result<ExitCode> {
    if !args.file.exists() {
        return Err(CliError::io(
            "inspect",
            &args.file,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such file; check the path"),
        ));
    }
    let inspection = if args.quick {
        jobcache_persist::inspect(&args.file)?
    } else {
        jobcache_persist::verify(&args.file)?
    };
    if !args.quick && matches!(inspection.format, FileFormat::Npy { .. }) {
        // .npy has no checksum: reading every value is the full check.
        jobcache_persist::npy::read_any(&args.file)?;
    }
    let mut exported = None;
    if let Some(out) = &args.npy {
        if matches!(inspection.format, FileFormat::Npy { .. }) {
            return Err(CliError::Usage(format!(
                "{} is already a .npy file; --npy exports an array of a file written by jobcache-persist",
                args.file.display()
            )));
        }
        if args.array >= inspection.arrays.len() {
            return Err(CliError::Usage(format!(
                "--array {}: {} has {}{}; pass an index shown by `jobcache inspect {}`",
                args.array,
                args.file.display(),
                count(inspection.arrays.len(), "array", "arrays"),
                match inspection.arrays.len() {
                    0 => String::new(),
                    1 => " (index 0)".into(),
                    n => format!(" (indexes 0 to {})", n - 1),
                },
                args.file.display()
            )));
        }
        let bytes = jobcache_persist::export_npy(&args.file, args.array, out)?;
        exported = Some((out.clone(), bytes));
    }
    if args.json {
        let mut doc = inspection_json(&inspection);
        if let (Some(obj), Some((out, bytes))) = (doc.as_object_mut(), &exported) {
            obj.insert(
                "exported".into(),
                json!({"array": args.array, "path": out.display().to_string(), "bytes": bytes}),
            );
        }
        emit(&super::json(&doc));
    } else {
        let style = Style::detect();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{}",
            style.bold(&inspection.path.display().to_string())
        );
        let _ = writeln!(out, "format     {}", format_name(inspection.format));
        let _ = writeln!(
            out,
            "size       {} ({} bytes)",
            human_bytes(inspection.file_len),
            inspection.file_len
        );
        if inspection.body_len > 0 {
            let _ = writeln!(out, "body       {} bytes", inspection.body_len);
        }
        let _ = writeln!(
            out,
            "metadata   checksum {}",
            status_word(style, inspection.metadata)
        );
        let _ = writeln!(out, "arrays     {}", inspection.arrays.len());
        for a in describe_arrays(&inspection) {
            let _ = writeln!(out, "  {a}");
        }
        if let Some((path, bytes)) = &exported {
            let _ = writeln!(
                out,
                "exported array {} to {} ({})",
                args.array,
                path.display(),
                human_bytes(*bytes)
            );
        }
        emit(&out);
    }
    Ok(if inspection.is_valid() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn format_name(f: FileFormat) -> String {
    match f {
        FileFormat::Container { version } => {
            format!("jobcache-persist container, version {version}")
        }
        FileFormat::Npy { major, minor } => format!("NumPy .npy, version {major}.{minor}"),
        _ => "unknown".into(),
    }
}

fn status(s: ChecksumStatus) -> &'static str {
    match s {
        ChecksumStatus::Valid => "valid",
        ChecksumStatus::Invalid { .. } => "invalid",
        ChecksumStatus::Unchecked => "unchecked",
        ChecksumStatus::Absent => "absent",
        _ => "unknown",
    }
}

fn status_word(style: Style, s: ChecksumStatus) -> String {
    match s {
        ChecksumStatus::Valid => style.green("valid"),
        ChecksumStatus::Invalid { expected, found } => style.red(&format!(
            "INVALID (stored {expected:016x}, computed {found:016x})"
        )),
        ChecksumStatus::Absent => "none (.npy has no checksums)".into(),
        other => status(other).into(),
    }
}

fn dtype(a: &ArrayInfo) -> String {
    a.dtype.map_or("?".into(), |d| d.name().to_string())
}

/// One line per array: `#0  f64  [20000, 64]  9.8 MiB  checksum valid`.
pub(crate) fn describe_arrays(i: &Inspection) -> Vec<String> {
    let style = Style::detect();
    i.arrays
        .iter()
        .map(|a| {
            format!(
                "#{}  {}  {:?}{}  {}{}{}",
                a.index,
                dtype(a),
                a.shape,
                if a.fortran_order {
                    " (Fortran order)"
                } else {
                    ""
                },
                human_bytes(a.byte_len),
                if a.zstd {
                    format!(
                        "  zstd {} ({:.1}x)",
                        human_bytes(a.stored_len),
                        a.byte_len as f64 / a.stored_len.max(1) as f64
                    )
                } else {
                    String::new()
                },
                match a.checksum {
                    ChecksumStatus::Absent | ChecksumStatus::Unchecked => String::new(),
                    s => format!("  checksum {}", status_word(style, s)),
                }
            )
        })
        .collect()
}

/// The `--json` shape of an inspection (README.md, "inspect").
pub(crate) fn inspection_json(i: &Inspection) -> serde_json::Value {
    // Numbers: the container's version, or the .npy major and minor.
    let (format, version, minor) = match i.format {
        FileFormat::Container { version } => ("container", Some(version), None),
        FileFormat::Npy { major, minor } => ("npy", Some(u32::from(major)), Some(minor)),
        _ => ("unknown", None, None),
    };
    json!({
        "path": i.path.display().to_string(),
        "format": format,
        "version": version,
        "minor_version": minor,
        "file_bytes": i.file_len,
        "body_bytes": i.body_len,
        "metadata_checksum": status(i.metadata),
        "valid": i.is_valid(),
        "arrays": i.arrays.iter().map(|a| json!({
            "index": a.index,
            "dtype": a.dtype.map(|d| d.name()),
            "shape": a.shape,
            "bytes": a.byte_len,
            "offset": a.offset,
            "fortran_order": a.fortran_order,
            "codec": if a.zstd { "zstd" } else { "raw" },
            "stored_bytes": a.stored_len,
            "checksum": status(a.checksum),
        })).collect::<Vec<_>>(),
    })
}
