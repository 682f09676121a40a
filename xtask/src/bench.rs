//! `cargo xtask bench [GROUP]`: runs benchmark groups in release mode.
//!
//! Each group is the `[[bench]]` target of the same name in crate
//! `jobcache-GROUP` (`scale`: in `jobcache-store`; `remote`: in `jobcache-object-store`; `harness = false`, built
//! on `jobcache-bench`). The group
//! writes `target/bench/GROUP.json` (the path both sides take from
//! `jobcache_bench::target_dir_in`, honouring `CARGO_TARGET_DIR`); this
//! task deletes that file before the run, then prints every row against its
//! floor (the limits the issues set, kept here in one table) and fails when
//! a row misses it, when a floored row has no ratio (its baseline could not
//! be measured), or when a floored row of the group is absent.

use crate::shell;
use std::path::{Path, PathBuf};

pub const GROUPS: [&str; 7] = [
    "hash", "persist", "store", "trace", "memo", "scale", "remote",
];

/// The crate directory of a group: its own, except `scale` (issue 20), a
/// second `[[bench]]` of the store crate.
fn crate_dir(group: &str) -> &str {
    match group {
        "scale" => "store",
        "remote" => "object-store",
        other => other,
    }
}

/// What a row must meet.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Floor {
    /// `ratio` (ours relative to the baseline, higher is better) at least this.
    MinRatio(f64),
    /// `value` at most this, in the row's own unit.
    MaxValue(f64),
}

/// The floors of the rows that have one; rows not named here are reported only.
pub const FLOORS: &[(&str, Floor)] = &[
    ("hash/ndarray_f64_256MiB", Floor::MinRatio(1.6)),
    ("hash/ndarray_f64_256MiB_fortran", Floor::MinRatio(0.8)),
    ("persist/save_1GiB", Floor::MinRatio(0.8)),
    ("persist/load_1GiB", Floor::MinRatio(1.0)),
    ("persist/load_1GiB_vs_fs_read", Floor::MinRatio(3.0)),
    ("persist/load_1GiB_vs_parallel_read", Floor::MinRatio(0.85)),
    ("persist/struct_10x100MiB_save", Floor::MinRatio(0.7)),
    ("persist/struct_10x100MiB_load", Floor::MinRatio(0.25)),
    ("persist/struct_10x100MiB_load_direct", Floor::MinRatio(0.8)),
    ("persist/map_1GiB", Floor::MaxValue(1.0)),
    ("persist/npy_save_1GiB", Floor::MinRatio(0.9)),
    ("persist/npy_load_1GiB", Floor::MinRatio(1.5)),
    ("persist/npz_read_10x100MiB", Floor::MinRatio(1.5)),
    ("persist/npz_write_10x100MiB", Floor::MinRatio(1.0)),
    ("persist/npz_read_compressed_100MiB", Floor::MinRatio(1.0)),
    (
        "persist/save_1GiB_zstd_vs_joblib_zlib3",
        Floor::MinRatio(5.0),
    ),
    (
        "persist/load_1GiB_zstd_vs_joblib_zlib3",
        Floor::MinRatio(3.0),
    ),
    ("persist/save_1GiB_zstd_vs_joblib_lz4", Floor::MinRatio(1.5)),
    ("persist/load_1GiB_zstd_vs_joblib_lz4", Floor::MinRatio(1.0)),
    ("persist/zstd_size_vs_zlib3", Floor::MaxValue(1.0)),
    ("persist/save_1GiB_random_zstd", Floor::MinRatio(0.8)),
    ("store/get_256MiB", Floor::MinRatio(0.8)),
    ("store/publish_256MiB", Floor::MinRatio(0.8)),
    ("trace/append", Floor::MinRatio(0.5)),
    ("trace/summary_1GiB_array", Floor::MaxValue(100.0)),
    ("memo/hit_small", Floor::MinRatio(0.33)),
    ("memo/hit_small_vs_joblib", Floor::MinRatio(25.0)),
    ("memo/miss_small_vs_joblib", Floor::MinRatio(10.0)),
    ("memo/hit_small_vs_cached_redb", Floor::MinRatio(0.5)),
    ("memo/miss_small_vs_cached_redb", Floor::MinRatio(0.5)),
    ("memo/hit_1GiB_array_output", Floor::MinRatio(0.5)),
    ("memo/pipeline_3x1GiB_all_hits", Floor::MaxValue(1.0)),
    (
        "memo/pipeline_plain_3x1GiB_warm_vs_joblib",
        Floor::MinRatio(3.0),
    ),
    (
        "memo/pipeline_plain_3x1GiB_cold_overhead_vs_joblib",
        Floor::MinRatio(2.0),
    ),
    ("remote/hit_small_local_tier", Floor::MinRatio(0.5)),
    ("remote/get_256MiB", Floor::MinRatio(0.8)),
    ("scale/hit_small_1e6", Floor::MinRatio(0.8)),
    ("scale/miss_small_policy_1e6", Floor::MinRatio(0.8)),
    ("scale/ls_1e6", Floor::MinRatio(0.3)),
    ("scale/gc_1e6", Floor::MinRatio(0.3)),
    ("scale/verify_quick_1e6", Floor::MinRatio(0.3)),
    ("scale/disk_per_small_entry_1e6", Floor::MaxValue(1024.0)),
    ("scale/inodes_per_small_entry_1e6", Floor::MaxValue(0.1)),
];

/// One row as read back from a group's JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub name: String,
    pub value: f64,
    pub unit: String,
    pub ratio: Option<f64>,
}

pub fn run(args: &[String]) -> Result<(), String> {
    let groups: Vec<&str> = match args {
        [] => GROUPS.to_vec(),
        [group] if GROUPS.contains(&group.as_str()) => vec![group.as_str()],
        _ => {
            return Err(format!(
                "usage: cargo xtask bench [GROUP]; groups: {}",
                GROUPS.join(", ")
            ))
        }
    };
    let root = shell::root();
    let target = target_dir(&root);
    let mut rows = Vec::new();
    let mut broken = Vec::new();
    let mut incomplete = Vec::new();
    for group in groups {
        let krate = format!("jobcache-{}", crate_dir(group));
        let bench_file = root
            .join(crate_dir(group))
            .join("benches")
            .join(format!("{group}.rs"));
        if !bench_file.exists() {
            eprintln!(
                "bench group `{group}` has no {} yet; skipped",
                bench_file.display()
            );
            continue;
        }
        // A group that fails to run is reported after the table of the
        // others, so one broken group does not hide every other result.
        let json = jobcache_bench::group_json(&target, group);
        let result = remove_stale(&json)
            .and_then(|()| {
                shell::run(
                    shell::cargo()
                        .env("CARGO_TARGET_DIR", &target)
                        .args(["bench", "-p", &krate, "--bench", group]),
                )
            })
            .and_then(|()| read_rows(&json));
        match result {
            Ok(group_rows) => {
                let problems = missing_baselines(group, &group_rows);
                rows.extend(group_rows);
                if !problems.is_empty() {
                    eprintln!("bench group `{group}`: {}", problems.join("; "));
                    incomplete.extend(problems);
                }
            }
            Err(e) => {
                eprintln!("bench group `{group}` failed: {e}");
                broken.push(group);
            }
        }
    }
    let mut errors: Vec<String> = print_table(&rows).err().into_iter().collect();
    if !incomplete.is_empty() {
        errors.push(format!(
            "floored rows not judged: {}",
            incomplete.join("; ")
        ));
    }
    if !broken.is_empty() {
        errors.insert(
            0,
            format!("bench groups that did not run: {}", broken.join(", ")),
        );
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

/// The target directory the bench groups write under: the harness's own
/// rule, with a relative `CARGO_TARGET_DIR` taken from the directory this
/// task was started in (as cargo does), made absolute so that the group,
/// run by cargo from the workspace root, resolves it to the same place.
fn target_dir(root: &Path) -> PathBuf {
    let env = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from);
    let env = match (env, std::env::current_dir()) {
        (Some(dir), Ok(cwd)) if dir.is_relative() => Some(cwd.join(dir)),
        (env, _) => env,
    };
    jobcache_bench::target_dir_in(root, env.as_deref())
}

/// Deletes the JSON of a group's previous run, so that a group that fails
/// to write it is reported instead of judged on old figures.
pub fn remove_stale(json: &Path) -> Result<(), String> {
    match std::fs::remove_file(json) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("cannot remove the old {}: {e}", json.display())),
    }
}

/// What keeps the floored rows of `group` from being judged: a row absent
/// from the group's JSON, or a ratio floor whose ratio is null (the
/// baseline could not be measured, e.g. Python was not set up). Each item
/// names the row and why.
pub fn missing_baselines(group: &str, rows: &[Row]) -> Vec<String> {
    let prefix = format!("{group}/");
    FLOORS
        .iter()
        .filter(|(name, _)| name.starts_with(&prefix))
        .filter_map(|(name, floor)| match rows.iter().find(|r| r.name == *name) {
            None => Some(format!("`{name}` is absent from the group's JSON")),
            Some(row) if row.ratio.is_none() && matches!(floor, Floor::MinRatio(_)) => Some(
                format!("`{name}` has no ratio: its baseline was not measured (see the group's output)"),
            ),
            Some(_) => None,
        })
        .collect()
}

fn read_rows(path: &Path) -> Result<Vec<Row>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "cannot read {}: {e} (did the group finish?)",
            path.display()
        )
    })?;
    parse_rows(&text).map_err(|e| format!("{}: {e}", path.display()))
}

pub fn parse_rows(text: &str) -> Result<Vec<Row>, String> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let items = value.as_array().ok_or("expected a JSON array of rows")?;
    items
        .iter()
        .map(|item| {
            let field = |k: &str| item.get(k).ok_or(format!("a row lacks `{k}`"));
            Ok(Row {
                name: field("name")?
                    .as_str()
                    .ok_or("`name` is not a string")?
                    .to_string(),
                value: field("value")?.as_f64().ok_or("`value` is not a number")?,
                unit: field("unit")?
                    .as_str()
                    .ok_or("`unit` is not a string")?
                    .to_string(),
                ratio: field("ratio")?.as_f64(),
            })
        })
        .collect()
}

pub fn floor_of(name: &str) -> Option<Floor> {
    FLOORS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

/// `Some(true)` when the row meets its floor, `Some(false)` when it misses,
/// `None` when it has no floor or no ratio to judge.
pub fn meets(row: &Row) -> Option<bool> {
    match floor_of(&row.name)? {
        Floor::MinRatio(min) => row.ratio.map(|r| r >= min),
        Floor::MaxValue(max) => Some(row.value <= max),
    }
}

fn print_table(rows: &[Row]) -> Result<(), String> {
    println!();
    println!(
        "{:<40} {:>16} {:>8} {:>10}  verdict",
        "row", "value", "ratio", "floor"
    );
    let mut failing = Vec::new();
    if rows.is_empty() {
        println!("(no rows: no group ran)");
    }
    for row in rows {
        let floor = match floor_of(&row.name) {
            Some(Floor::MinRatio(m)) => format!("≥ {m}"),
            Some(Floor::MaxValue(m)) => format!("≤ {m} {}", row.unit),
            None => "-".into(),
        };
        let verdict = match meets(row) {
            Some(true) => "ok",
            Some(false) => {
                failing.push(row.name.clone());
                "FAIL"
            }
            None => "",
        };
        let ratio = row.ratio.map_or("-".into(), |r| format!("{r:.2}"));
        let value = format!("{:.3} {}", row.value, row.unit);
        println!(
            "{:<40} {value:>16} {ratio:>8} {floor:>10}  {verdict}",
            row.name
        );
    }
    if failing.is_empty() {
        Ok(())
    } else {
        Err(format!("rows below their floor: {}", failing.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_floor_names_a_known_group() {
        for (name, _) in FLOORS {
            let group = name.split('/').next().unwrap_or_default();
            assert!(GROUPS.contains(&group), "{name}");
        }
    }

    #[test]
    fn reads_the_json_contract_and_judges_floors() {
        let rows = parse_rows(
            r#"[{"name":"hash/ndarray_f64_256MiB","value":4.25,"unit":"GB/s","baseline":2.5,"ratio":1.7},
                {"name":"persist/map_1GiB","value":3.0,"unit":"ms","baseline":null,"ratio":null},
                {"name":"hash/other","value":1.0,"unit":"us","baseline":null,"ratio":null}]"#,
        )
        .unwrap();
        assert_eq!(meets(&rows[0]), Some(true));
        assert_eq!(meets(&rows[1]), Some(false));
        assert_eq!(meets(&rows[2]), None);
        assert!(parse_rows("{}").is_err());
    }

    fn row(name: &str, ratio: Option<f64>) -> Row {
        Row {
            name: name.into(),
            value: 1.0,
            unit: "ms".into(),
            ratio,
        }
    }

    fn every_floored(group: &str) -> Vec<Row> {
        FLOORS
            .iter()
            .filter(|(n, _)| n.starts_with(&format!("{group}/")))
            .map(|(n, _)| row(n, Some(100.0)))
            .collect()
    }

    #[test]
    fn a_missing_floored_row_fails_naming_it() {
        let mut rows = every_floored("memo");
        assert!(missing_baselines("memo", &rows).is_empty());
        rows.retain(|r| r.name != "memo/miss_small_vs_joblib");
        let problems = missing_baselines("memo", &rows);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("memo/miss_small_vs_joblib"));
        assert!(problems[0].contains("absent"));
    }

    #[test]
    fn a_floored_row_without_ratio_fails_naming_it() {
        let mut rows = every_floored("memo");
        for r in &mut rows {
            if r.name == "memo/hit_small_vs_joblib" {
                r.ratio = None;
            }
            if r.name == "memo/pipeline_3x1GiB_all_hits" {
                r.ratio = None; // a value floor needs no ratio
            }
        }
        let problems = missing_baselines("memo", &rows);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("memo/hit_small_vs_joblib") && problems[0].contains("no ratio")
        );
        // Other groups' floors are not asked of this group.
        assert!(missing_baselines("trace", &every_floored("trace")).is_empty());
    }

    #[test]
    fn the_stale_json_is_removed_before_a_run() {
        let dir = tempfile::tempdir().unwrap();
        let json = dir.path().join("memo.json");
        std::fs::write(&json, "[]").unwrap();
        remove_stale(&json).unwrap();
        assert!(!json.exists());
        remove_stale(&json).unwrap();
    }

    #[test]
    fn xtask_reads_where_the_harness_writes() {
        let root = Path::new("/w");
        let json = jobcache_bench::group_json(&target_dir(root), "memo");
        let expected = match std::env::var_os("CARGO_TARGET_DIR") {
            Some(dir) => std::env::current_dir()
                .unwrap()
                .join(dir)
                .join("bench/memo.json"),
            None => PathBuf::from("/w/target/bench/memo.json"),
        };
        assert_eq!(json, expected);
    }
}
