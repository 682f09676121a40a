//! Line-oriented edits of `Cargo.toml` files: the versions a release sets.
//!
//! Only the lines that hold a version are touched, so comments, ordering and
//! formatting survive. What is recognised:
//!
//! - `version = "X"` in `[workspace.package]`, and in `[package]` when asked
//!   (a crate that does not inherit the workspace version);
//! - in any dependency table (`[dependencies]`, `[dev-dependencies]`,
//!   `[build-dependencies]`, `[workspace.dependencies]`, target-specific
//!   ones), the `version` requirement of an internal crate written inline
//!   (`name = { path = "..", version = "=X" }`), as a bare string
//!   (`name = "=X"`) or as its own table (`[dependencies.name]`). The
//!   operator is kept (`=X` stays exact, `^X`/`X` stay caret).
//!
//! `name.workspace = true` lines inherit and need no edit. The release task
//! checks the result with `cargo metadata` afterwards, so a form not handled
//! here is reported rather than silently skipped.

/// One edited line, for printing what a release writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// 1-based line number.
    pub line: usize,
    pub old: String,
    pub new: String,
}

/// The `version` of `[workspace.package]`.
pub fn workspace_version(text: &str) -> Result<String, String> {
    let mut section = String::new();
    for line in text.lines() {
        if let Some(name) = section_name(line) {
            section = name;
            continue;
        }
        if section == "workspace.package" {
            if let Some((key, value)) = key_value(line) {
                if key == "version" {
                    return string_value(value)
                        .map(|(v, _)| v.to_string())
                        .ok_or_else(|| format!("`{}` is not a quoted string", line.trim()));
                }
            }
        }
    }
    Err("no `version = \"...\"` in `[workspace.package]`".into())
}

/// Rewrites the versions in one manifest.
///
/// `internal` names the crates whose dependency requirements move to
/// `new_version`; `set_package_version` also rewrites a literal
/// `version = "..."` in `[package]`.
pub fn rewrite(
    text: &str,
    internal: &[&str],
    new_version: &str,
    set_package_version: bool,
) -> Result<(String, Vec<Change>), String> {
    let mut out = String::with_capacity(text.len() + 64);
    let mut changes = Vec::new();
    let mut section = String::new();
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let body = line.trim_end_matches(['\n', '\r']);
        let ending = &line[body.len()..];
        let mut new_body = None;
        if let Some(name) = section_name(body) {
            section = name;
        } else if let Some((key, value)) = key_value(body) {
            let is_package =
                section == "workspace.package" || (section == "package" && set_package_version);
            if is_package && key == "version" {
                new_body = Some(replace_string_value(body, value, |_| {
                    Ok(new_version.to_string())
                })?);
            } else if let Some(dep) = dependency_table_entry(&section) {
                // `[dependencies.name]`: the `version` key of that table.
                if key == "version" && internal.contains(&dep) {
                    new_body = Some(replace_string_value(body, value, |req| {
                        new_requirement(req, new_version)
                    })?);
                }
            } else if is_dependency_table(&section) && internal.contains(&unquote(key)) {
                new_body = rewrite_dependency(body, value, new_version)?;
            }
        }
        let wrote = new_body.unwrap_or_else(|| body.to_string());
        if wrote != body {
            changes.push(Change {
                line: index + 1,
                old: body.to_string(),
                new: wrote.clone(),
            });
        }
        out.push_str(&wrote);
        out.push_str(ending);
    }
    Ok((out, changes))
}

/// `[a.b]` or `[[a.b]]` → `a.b` (spaces around dots removed).
fn section_name(line: &str) -> Option<String> {
    let trimmed = strip_comment(line).trim();
    let inner = trimmed
        .strip_prefix("[[")
        .and_then(|s| s.strip_suffix("]]"))
        .or_else(|| trimmed.strip_prefix('[').and_then(|s| s.strip_suffix(']')))?;
    Some(
        inner
            .split('.')
            .map(|part| unquote(part.trim()))
            .collect::<Vec<_>>()
            .join("."),
    )
}

fn is_dependency_table(section: &str) -> bool {
    let last = section.rsplit('.').next().unwrap_or_default();
    matches!(
        last,
        "dependencies" | "dev-dependencies" | "build-dependencies"
    )
}

/// `dependencies.NAME` (or `workspace.dependencies.NAME`, `target.X.dependencies.NAME`) → NAME.
fn dependency_table_entry(section: &str) -> Option<&str> {
    let (table, name) = section.rsplit_once('.')?;
    is_dependency_table(table).then_some(name)
}

/// `key = value` at the top level of a line: the key (as written) and the
/// raw value text. Lines that are comments, headers or blank give `None`.
fn key_value(line: &str) -> Option<(&str, &str)> {
    let trimmed = line.trim_start();
    if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('[') {
        return None;
    }
    let (key, value) = trimmed.split_once('=')?;
    Some((key.trim(), value.trim_start()))
}

fn unquote(key: &str) -> &str {
    key.strip_prefix('"')
        .and_then(|k| k.strip_suffix('"'))
        .unwrap_or(key)
}

/// Drops a trailing `# comment` that is not inside a string.
fn strip_comment(line: &str) -> &str {
    let mut in_string = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => in_string = !in_string,
            '#' if !in_string => return &line[..i],
            _ => {}
        }
    }
    line
}

/// The contents of a leading `"..."` and the rest after the closing quote.
fn string_value(value: &str) -> Option<(&str, &str)> {
    let rest = value.strip_prefix('"')?;
    let end = rest.find('"')?;
    Some((&rest[..end], &rest[end + 1..]))
}

/// Replaces the quoted string that starts `value` (a suffix of `line`).
fn replace_string_value(
    line: &str,
    value: &str,
    f: impl FnOnce(&str) -> Result<String, String>,
) -> Result<String, String> {
    let (old, rest) = string_value(value)
        .ok_or_else(|| format!("`{}`: expected a quoted string", line.trim()))?;
    let start = line.len() - value.len();
    Ok(format!("{}\"{}\"{}", &line[..start], f(old)?, rest))
}

/// `name = "REQ"` or `name = { ..., version = "REQ", ... }`; `None` when the
/// line has no version to change (e.g. `{ path = "bench" }`).
fn rewrite_dependency(
    line: &str,
    value: &str,
    new_version: &str,
) -> Result<Option<String>, String> {
    if value.starts_with('"') {
        return replace_string_value(line, value, |req| new_requirement(req, new_version))
            .map(Some);
    }
    if !value.starts_with('{') {
        return Ok(None);
    }
    let Some(at) = find_key(value, "version") else {
        return Ok(None);
    };
    let after_key = &value[at + "version".len()..];
    let after_eq = after_key
        .trim_start()
        .strip_prefix('=')
        .ok_or_else(|| format!("`{}`: expected `version = \"...\"`", line.trim()))?
        .trim_start();
    replace_string_value(line, after_eq, |req| new_requirement(req, new_version)).map(Some)
}

/// Byte offset in an inline table of `key` used as a key (not inside a
/// string, preceded by `{`, `,` or space, followed by space or `=`).
fn find_key(table: &str, key: &str) -> Option<usize> {
    let mut in_string = false;
    let bytes = table.as_bytes();
    for (i, c) in table.char_indices() {
        if c == '"' {
            in_string = !in_string;
            continue;
        }
        if in_string || !table[i..].starts_with(key) {
            continue;
        }
        let before_ok = i == 0 || matches!(bytes.get(i - 1), Some(b'{' | b',' | b' ' | b'\t'));
        let after_ok = matches!(bytes.get(i + key.len()), Some(b' ' | b'\t' | b'='));
        if before_ok && after_ok {
            return Some(i);
        }
    }
    None
}

/// Keeps the requirement's operator: `=0.1.0` → `=NEW`, `^0.1` → `^NEW`,
/// `0.1` → `NEW`; refuses forms a release cannot move safely.
pub fn new_requirement(req: &str, new_version: &str) -> Result<String, String> {
    let req = req.trim();
    let op = if let Some(rest) = req.strip_prefix('=') {
        ("=", rest)
    } else if let Some(rest) = req.strip_prefix('^') {
        ("^", rest)
    } else {
        ("", req)
    };
    let plain = op.1.trim();
    if plain.is_empty() || plain.contains([',', '<', '>', '~', '*', ' ']) {
        return Err(format!(
            "cannot move the requirement `{req}` to {new_version}: write internal requirements as `=X.Y.Z`"
        ));
    }
    Ok(format!("{}{new_version}", op.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = r#"[workspace]
members = ["hash", "memo", "xtask", "bench"]

[workspace.package]
version = "0.1.0" # the one version of every published crate
edition = "2021"
rust-version = "1.89"

[workspace.dependencies]
# Internal crates: the facade pins them exactly.
jobcache-hash = { path = "hash", version = "=0.1.0" }
jobcache-memo = {path="memo",version="=0.1.0"}
"jobcache-store" = { version = "0.1.0", path = "store" }
jobcache-bench = { path = "bench" }
serde = { version = "1.0.200", features = ["derive"] }
other-version = { path = "x", version = "=0.1.0" }

[package]
name = "jobcache"
version.workspace = true

[dependencies]
jobcache-hash.workspace = true
serde.workspace = true

[target.'cfg(unix)'.dev-dependencies]
jobcache-trace = "=0.1.0"

[dependencies.jobcache-persist]
path = "persist"
version = "=0.1.0"
"#;

    const INTERNAL: [&str; 6] = [
        "jobcache-hash",
        "jobcache-memo",
        "jobcache-store",
        "jobcache-trace",
        "jobcache-persist",
        "jobcache-bench",
    ];

    #[test]
    fn reads_the_workspace_version() {
        assert_eq!(workspace_version(ROOT).unwrap(), "0.1.0");
        assert!(workspace_version("[package]\nversion = \"1.0.0\"\n").is_err());
    }

    #[test]
    fn rewrites_every_version_line_and_nothing_else() {
        let (out, changes) = rewrite(ROOT, &INTERNAL, "9.9.9-rc.1", false).unwrap();
        let expected = ROOT
            .replace(
                "version = \"0.1.0\" # the one",
                "version = \"9.9.9-rc.1\" # the one",
            )
            .replace(
                "jobcache-hash = { path = \"hash\", version = \"=0.1.0\" }",
                "jobcache-hash = { path = \"hash\", version = \"=9.9.9-rc.1\" }",
            )
            .replace(
                "{path=\"memo\",version=\"=0.1.0\"}",
                "{path=\"memo\",version=\"=9.9.9-rc.1\"}",
            )
            .replace(
                "{ version = \"0.1.0\", path = \"store\" }",
                "{ version = \"9.9.9-rc.1\", path = \"store\" }",
            )
            .replace(
                "jobcache-trace = \"=0.1.0\"",
                "jobcache-trace = \"=9.9.9-rc.1\"",
            )
            .replace(
                "path = \"persist\"\nversion = \"=0.1.0\"",
                "path = \"persist\"\nversion = \"=9.9.9-rc.1\"",
            );
        assert_eq!(out, expected);
        assert_eq!(changes.len(), 6);
        assert_eq!(changes[0].line, 5);
        assert_eq!(
            changes[0].new,
            "version = \"9.9.9-rc.1\" # the one version of every published crate"
        );
        // Untouched: external crates, a crate not internal, inherited lines.
        assert!(out.contains("serde = { version = \"1.0.200\""));
        assert!(out.contains("other-version = { path = \"x\", version = \"=0.1.0\" }"));
        assert!(out.contains("jobcache-bench = { path = \"bench\" }"));
    }

    #[test]
    fn package_version_only_when_asked_and_line_endings_kept() {
        let member = "[package]\r\nname = \"xtask\"\r\nversion = \"0.0.0\"\r\n";
        let (same, changes) = rewrite(member, &INTERNAL, "2.0.0", false).unwrap();
        assert_eq!(same, member);
        assert!(changes.is_empty());
        let (out, _) = rewrite(member, &INTERNAL, "2.0.0", true).unwrap();
        assert_eq!(
            out,
            "[package]\r\nname = \"xtask\"\r\nversion = \"2.0.0\"\r\n"
        );
    }

    #[test]
    fn is_idempotent() {
        let (once, _) = rewrite(ROOT, &INTERNAL, "1.0.0", false).unwrap();
        let (twice, changes) = rewrite(&once, &INTERNAL, "1.0.0", false).unwrap();
        assert_eq!(once, twice);
        assert!(changes.is_empty());
    }

    #[test]
    fn requirements_keep_their_operator_or_are_refused() {
        assert_eq!(new_requirement("=0.1.0", "1.0.0").unwrap(), "=1.0.0");
        assert_eq!(new_requirement("^0.1", "1.0.0").unwrap(), "^1.0.0");
        assert_eq!(new_requirement("0.1.0", "1.0.0").unwrap(), "1.0.0");
        for req in [">=0.1, <0.2", "~0.1", "*", ""] {
            assert!(new_requirement(req, "1.0.0").is_err(), "{req}");
        }
        let bad =
            "[workspace.dependencies]\njobcache-hash = { path = \"hash\", version = \">=0.1\" }\n";
        assert!(rewrite(bad, &INTERNAL, "1.0.0", false).is_err());
    }

    #[test]
    fn section_names_ignore_comments_and_quotes() {
        assert_eq!(
            section_name("[workspace.package] # x").as_deref(),
            Some("workspace.package")
        );
        assert_eq!(section_name("[[bin]]").as_deref(), Some("bin"));
        assert_eq!(
            section_name("[dependencies.\"jobcache-hash\"]").as_deref(),
            Some("dependencies.jobcache-hash")
        );
        assert_eq!(section_name("name = \"[x]\""), None);
    }
}
