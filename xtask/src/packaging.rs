//! The packaging metadata every published crate must carry, checked from
//! `cargo metadata` (the release task's `packaging metadata` step, and the
//! test `the_workspace_is_ready_to_package` so plain `cargo test` enforces it).
//!
//! Errors: a publishable crate without description, keywords, categories,
//! license, repository, `readme` (and the file it names), an `include` list,
//! or `rust-version`; any workspace package without `rust-version` (clippy's
//! `incompatible_msrv` lint reads it). Warnings: a published crate whose
//! folder lacks LICENSE-MIT or LICENSE-APACHE, so the `.crate` would ship
//! without the license texts.

use crate::shell;
use std::path::Path;

/// Runs `cargo metadata` in `root` and checks it.
pub fn check(root: &Path) -> Result<Report, String> {
    let out = shell::cargo()
        .current_dir(root)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .map_err(|e| format!("could not start cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    check_metadata(&String::from_utf8_lossy(&out.stdout))
}

/// What a check found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
}

/// Checks the output of `cargo metadata --format-version 1 --no-deps`.
pub fn check_metadata(text: &str) -> Result<Report, String> {
    let json: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("cargo metadata is not JSON: {e}"))?;
    let packages = json
        .get("packages")
        .and_then(|p| p.as_array())
        .ok_or("cargo metadata has no `packages`")?;
    let mut report = Report::default();
    for p in packages {
        let name = p.get("name").and_then(|n| n.as_str()).unwrap_or("?");
        let string = |key: &str| {
            p.get(key)
                .and_then(|v| v.as_str())
                .filter(|s| !s.trim().is_empty())
        };
        let list_len = |key: &str| p.get(key).and_then(|v| v.as_array()).map_or(0, Vec::len);
        if string("rust_version").is_none() {
            report.errors.push(format!(
                "{name}: no `rust-version` (add `rust-version.workspace = true`)"
            ));
        }
        let publishable = match p.get("publish") {
            Some(serde_json::Value::Array(registries)) => !registries.is_empty(),
            _ => true,
        };
        if !publishable {
            continue;
        }
        for key in ["description", "license", "repository"] {
            if string(key).is_none() {
                report.errors.push(format!("{name}: no `{key}`"));
            }
        }
        for (key, max) in [("keywords", 5), ("categories", 5)] {
            match list_len(key) {
                0 => report.errors.push(format!("{name}: no `{key}`")),
                n if n > max => report.errors.push(format!(
                    "{name}: {n} `{key}`, crates.io takes at most {max}"
                )),
                _ => {}
            }
        }
        let Some(manifest) = string("manifest_path").map(Path::new) else {
            report.errors.push(format!("{name}: no manifest path"));
            continue;
        };
        let dir = manifest.parent().unwrap_or(Path::new("."));
        match string("readme") {
            None => report.errors.push(format!("{name}: no `readme`")),
            Some(readme) if !dir.join(readme).is_file() => report.errors.push(format!(
                "{name}: `readme = \"{readme}\"` but {} does not exist",
                dir.join(readme).display()
            )),
            Some(_) => {}
        }
        let manifest_text = std::fs::read_to_string(manifest)
            .map_err(|e| format!("cannot read {}: {e}", manifest.display()))?;
        if !manifest_text
            .lines()
            .any(|l| l.trim_start().starts_with("include"))
        {
            report.errors.push(format!(
                "{name}: no `include` list in {} (say which files are published)",
                manifest.display()
            ));
        }
        let missing: Vec<&str> = ["LICENSE-MIT", "LICENSE-APACHE"]
            .into_iter()
            .filter(|f| !dir.join(f).exists())
            .collect();
        if !missing.is_empty() {
            report.warnings.push(format!(
                "{name}: {} not in {} (e.g. `ln -s ../LICENSE-MIT`), so its .crate ships without {}",
                missing.join(" and "),
                dir.display(),
                if missing.len() == 1 { "it" } else { "them" }
            ));
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workspace_is_ready_to_package() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let report = check(root).unwrap();
        assert!(report.errors.is_empty(), "{}", report.errors.join("\n"));
        for warning in &report.warnings {
            eprintln!("warning: {warning}");
        }
    }

    #[test]
    fn reports_missing_fields_and_license_files() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good");
        std::fs::create_dir_all(&good).unwrap();
        std::fs::write(good.join("Cargo.toml"), "[package]\ninclude = [\"src\"]\n").unwrap();
        std::fs::write(good.join("README.md"), "# good\n").unwrap();
        std::fs::write(good.join("LICENSE-MIT"), "").unwrap();
        std::fs::write(good.join("LICENSE-APACHE"), "").unwrap();
        let bad = dir.path().join("bad");
        std::fs::create_dir_all(&bad).unwrap();
        std::fs::write(bad.join("Cargo.toml"), "[package]\n").unwrap();
        let meta = serde_json::json!({"packages": [
            {"name": "good", "publish": null, "rust_version": "1.89",
             "description": "d", "license": "MIT OR Apache-2.0", "repository": "r",
             "keywords": ["a"], "categories": ["b"], "readme": "README.md",
             "manifest_path": good.join("Cargo.toml")},
            {"name": "bad", "publish": null, "rust_version": null,
             "description": "", "license": "MIT", "repository": "r",
             "keywords": ["1", "2", "3", "4", "5", "6"], "categories": [],
             "readme": "README.md", "manifest_path": bad.join("Cargo.toml")},
            {"name": "internal", "publish": [], "rust_version": "1.89",
             "manifest_path": "/nowhere/Cargo.toml"}
        ]});
        let report = check_metadata(&meta.to_string()).unwrap();
        let errors = report.errors.join("\n");
        assert!(!errors.contains("good:"), "{errors}");
        assert!(!errors.contains("internal:"), "{errors}");
        for expected in [
            "bad: no `rust-version`",
            "bad: no `description`",
            "bad: 6 `keywords`",
            "bad: no `categories`",
            "README.md does not exist",
            "bad: no `include`",
        ] {
            assert!(errors.contains(expected), "{expected} in\n{errors}");
        }
        assert_eq!(report.warnings.len(), 1);
        assert!(report.warnings[0].starts_with("bad: LICENSE-MIT and LICENSE-APACHE"));
    }
}
