//! `jobcache show FUNCTION DIGEST`.

use crate::cache::{
    Cache, FIELD_ARGS, FIELD_FUNCTION, FIELD_STDERR, FIELD_STDOUT, FIELD_VERSION, PAYLOAD_FILE,
};
use crate::commands::inspect::{describe_arrays, inspection_json};
use crate::error::Result;
use crate::style::{ago, clock, count, emit, rfc3339, Style};
use jobcache_store::Location;
use jobcache_trace::report::{human_bytes, human_duration};
use jobcache_trace::Timestamp;
use serde_json::json;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Arguments of `show`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The function (its full name, or the last part of it)
    function: String,
    /// The entry's digest, or a prefix of it that only it has
    digest: String,
    /// Print JSON (shape documented in README.md)
    #[arg(long)]
    json: bool,
}

const SHOWN_FIELDS: [&str; 5] = [
    FIELD_FUNCTION,
    FIELD_VERSION,
    FIELD_ARGS,
    FIELD_STDOUT,
    FIELD_STDERR,
];

/// Runs `show`.
pub fn run(dir: &Path, args: Args) -> Result<ExitCode> {
    let cache = Cache::open(dir)?;
    let ns = cache.resolve(&args.function)?;
    let info = cache.find_entry(&ns, &args.digest)?;
    let location = cache.store.locate(&ns, &info.key)?;
    // A packed entry's payload is inline, in its pack record.
    let (path, record, payload_path) = match &location {
        Location::Packed { pack, offset, len } => (pack.clone(), Some((*offset, *len)), None),
        Location::Directory(d) => (d.clone(), None, Some(d.join(PAYLOAD_FILE))),
        other => (PathBuf::from(other.to_string()), None, None),
    };
    let payload = payload_path.filter(|p| p.is_file()).map(|p| {
        let inspected = jobcache_persist::inspect(&p);
        (p, inspected)
    });
    let pack_json = record.map(|(offset, len)| json!({"offset": offset, "record_bytes": len}));
    let meta = match &info.meta {
        Ok(m) => m,
        Err(reason) => {
            if args.json {
                emit(&super::json(&json!({
                    "function": ns, "key": info.key, "path": path.display().to_string(),
                    "pack": pack_json, "stored_bytes": info.stored_bytes, "error": reason,
                })));
            } else {
                let style = Style::detect();
                emit(&format!(
                    "{ns} {}\n{} {reason}\nrun `jobcache verify --fix` to remove it\n",
                    info.key,
                    style.red("unreadable metadata:")
                ));
            }
            return Ok(ExitCode::from(1));
        }
    };
    let field = |k: &str| meta.fields.get(k).cloned();
    if args.json {
        let extra: serde_json::Map<String, serde_json::Value> = meta
            .fields
            .iter()
            .filter(|(k, _)| !SHOWN_FIELDS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        let payload_json = match &payload {
            Some((p, Ok(i))) => {
                json!({"inline": false, "path": p.display().to_string(), "persisted": inspection_json(i)})
            }
            Some((p, Err(e))) => {
                json!({"inline": false, "path": p.display().to_string(), "persisted": null, "error": e.to_string()})
            }
            None => json!({"inline": true, "path": null, "persisted": null}),
        };
        emit(&super::json(&json!({
            "function": ns,
            "key": info.key,
            "path": path.display().to_string(),
            "pack": pack_json,
            "created": rfc3339(meta.created),
            "last_access": rfc3339(info.last_access),
            "compute_seconds": meta.compute_duration.as_secs_f64(),
            "payload_bytes": meta.payload_len,
            "stored_bytes": info.stored_bytes,
            "checksum": format!("{:016x}", meta.checksum),
            "version": field(FIELD_VERSION),
            "args": field(FIELD_ARGS),
            "stdout": field(FIELD_STDOUT),
            "stderr": field(FIELD_STDERR),
            "fields": extra,
            "payload": payload_json,
        })));
        return Ok(ExitCode::SUCCESS);
    }
    let style = Style::detect();
    let mut out = String::new();
    let mut line = |k: &str, v: String| {
        let _ = writeln!(out, "{}  {v}", style.bold(&format!("{k:<12}")));
    };
    line("function", ns.clone());
    line("digest", info.key.clone());
    line(
        "path",
        match record {
            Some((_, len)) => format!("{location}, a record of {len} bytes"),
            None => path.display().to_string(),
        },
    );
    line(
        "created",
        format!(
            "{} UTC ({})",
            clock(Timestamp::from_system_time(meta.created)),
            ago(meta.created)
        ),
    );
    line(
        "last access",
        format!(
            "{} UTC ({})",
            clock(Timestamp::from_system_time(info.last_access)),
            ago(info.last_access)
        ),
    );
    line("compute", human_duration(meta.compute_duration));
    line(
        "payload",
        format!(
            "{} ({} stored), checksum {:016x}",
            human_bytes(meta.payload_len),
            human_bytes(info.stored_bytes),
            meta.checksum
        ),
    );
    if let Some(v) = field(FIELD_VERSION) {
        line("version", v);
    }
    line("arguments", field(FIELD_ARGS).unwrap_or_default());
    for (k, v) in meta
        .fields
        .iter()
        .filter(|(k, _)| !SHOWN_FIELDS.contains(&k.as_str()))
    {
        line(k, v.clone());
    }
    match &payload {
        Some((_, Ok(i))) => {
            line("persisted", count(i.arrays.len(), "array", "arrays"));
            for a in describe_arrays(i) {
                let _ = writeln!(out, "  {a}");
            }
        }
        Some((_, Err(e))) => line("persisted", style.red(&e.to_string())),
        None => line("persisted", "inline in the metadata file".into()),
    }
    for (name, k) in [("stdout", FIELD_STDOUT), ("stderr", FIELD_STDERR)] {
        if let Some(text) = field(k).filter(|t| !t.is_empty()) {
            let _ = writeln!(out, "{}", style.bold(&format!("--- captured {name} ---")));
            out.push_str(&text);
            if !text.ends_with('\n') {
                out.push('\n');
            }
        }
    }
    emit(&out);
    Ok(ExitCode::SUCCESS)
}
