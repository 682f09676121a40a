//! `cargo xtask release VERSION [--dry-run]`: one command for a release.
//!
//! Steps, each printed as it starts; the first failure stops the run with a
//! message naming the step, and every file the run edited is restored:
//!
//! 1. `clean tree`: `git status --porcelain` must be empty.
//! 2. `version`: VERSION is a semantic version greater than the workspace's
//!    (pre-releases order below their release), and tag `vVERSION` is free.
//!    The one exception is the first release: the current version itself may
//!    be released while no tag and no CHANGELOG section exist for it.
//! 3. `fmt`, `clippy`, `test`, `doc`: the checks CI runs, plus rustdoc with
//!    `-D warnings`; then `metadata` and `packaging metadata` (see
//!    `packaging.rs`: description, keywords, categories, readme, include,
//!    license, rust-version).
//! 4. `set versions`: `[workspace.package] version`, the `=X` pins of the
//!    internal crates, literal package versions, then `Cargo.lock`; checked
//!    back with `cargo metadata`.
//! 5. `changelog`: CHANGELOG.md's Unreleased entries go under
//!    `## [VERSION] - today (UTC)`.
//! 6. `package CRATE` for each publishable crate in dependency order (see
//!    [`package_one`] for when `--no-verify` is used and why).
//! 7. `commit and tag` (`Release VERSION`, annotated tag `vVERSION`), or with
//!    `--dry-run` `restore`: every edited file is put back as it was.
//!
//! `--skip-checks` is for the tests: it skips step 3 and the verification
//! builds of step 6, so a dry run on a temporary clone stays fast.

use crate::changelog;
use crate::manifest;
use crate::packaging;
use crate::semver::Version;
use crate::shell;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

const USAGE: &str = "usage: cargo xtask release VERSION [--dry-run] [--skip-checks]";

#[derive(Debug, Clone, PartialEq, Eq)]
struct Options {
    version: String,
    dry_run: bool,
    skip_checks: bool,
}

fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut version = None;
    let mut dry_run = false;
    let mut skip_checks = false;
    for arg in args {
        match arg.as_str() {
            "--dry-run" => dry_run = true,
            "--skip-checks" => skip_checks = true,
            flag if flag.starts_with('-') => {
                return Err(format!("unknown option `{flag}`\n{USAGE}"))
            }
            v if version.is_none() => version = Some(v.to_string()),
            extra => return Err(format!("unexpected argument `{extra}`\n{USAGE}")),
        }
    }
    let version = version.ok_or(USAGE)?;
    Ok(Options {
        version,
        dry_run,
        skip_checks,
    })
}

/// A workspace package as `cargo metadata` describes it.
#[derive(Debug, Clone)]
struct Package {
    name: String,
    version: String,
    manifest: PathBuf,
    publishable: bool,
    has_lib: bool,
    /// Path dependencies on other workspace packages: (name, req, kind).
    internal: Vec<(String, String, Option<String>)>,
}

/// Prints steps and names the failing one.
struct Steps {
    done: usize,
}

impl Steps {
    fn run<T>(&mut self, name: &str, f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
        self.done += 1;
        println!("==> [{}] {name}", self.done);
        f().map_err(|e| format!("release stopped at step `{name}`: {e}"))
    }
}

/// Original bytes of every file the release may edit, put back by
/// [`Snapshot::restore`] (and on drop, unless disarmed).
struct Snapshot {
    files: Vec<(PathBuf, Option<Vec<u8>>)>,
    armed: bool,
}

impl Snapshot {
    fn take(paths: &[PathBuf]) -> Result<Snapshot, String> {
        let mut files = Vec::new();
        for path in paths {
            let bytes = match std::fs::read(path) {
                Ok(b) => Some(b),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
            };
            files.push((path.clone(), bytes));
        }
        Ok(Snapshot { files, armed: true })
    }

    fn restore(&mut self) -> Result<(), String> {
        let mut errors = Vec::new();
        for (path, bytes) in &self.files {
            let result = match bytes {
                Some(b) => std::fs::write(path, b),
                None => match std::fs::remove_file(path) {
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                    other => other,
                },
            };
            if let Err(e) = result {
                errors.push(format!("{}: {e}", path.display()));
            }
        }
        self.armed = false;
        if errors.is_empty() {
            Ok(())
        } else {
            Err(format!("could not restore {}", errors.join(", ")))
        }
    }

    fn paths(&self) -> impl Iterator<Item = &Path> {
        self.files.iter().map(|(p, _)| p.as_path())
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        if self.armed {
            if let Err(e) = self.restore() {
                eprintln!("xtask: {e}");
            }
        }
    }
}

pub fn run(args: &[String]) -> Result<(), String> {
    let opts = parse_args(args)?;
    let root = shell::root();
    let mut steps = Steps { done: 0 };
    println!(
        "release {} in {}{}{}",
        opts.version,
        root.display(),
        if opts.dry_run { " (dry run)" } else { "" },
        if opts.skip_checks {
            " (checks and package verification skipped)"
        } else {
            ""
        }
    );

    steps.run("clean tree", || check_clean(&root))?;

    let root_manifest = root.join("Cargo.toml");
    let changelog_path = root.join("CHANGELOG.md");
    let (current, new) = steps.run("version", || {
        let text = read(&root_manifest)?;
        let current = manifest::workspace_version(&text)?;
        let new = Version::parse(&opts.version)?;
        let changelog_text = read(&changelog_path)?;
        check_version(&root, &current, &new, &changelog_text)?;
        println!("    {current} -> {new}");
        Ok((current, new))
    })?;
    let new_text = new.to_string();

    if opts.skip_checks {
        println!("==> checks skipped (--skip-checks, for tests)");
    } else {
        steps.run("fmt", || {
            shell::run(cargo(&root).args(["fmt", "--all", "--check"]))
        })?;
        steps.run("clippy", || {
            shell::run(cargo(&root).args([
                "clippy",
                "--workspace",
                "--all-targets",
                "--locked",
                "--",
                "-D",
                "warnings",
            ]))
        })?;
        steps.run("test", || {
            shell::run(cargo(&root).args(["test", "--workspace", "--locked"]))
        })?;
        steps.run("doc", || {
            shell::run(cargo(&root).env("RUSTDOCFLAGS", "-D warnings").args([
                "doc",
                "--workspace",
                "--no-deps",
                "--locked",
            ]))
        })?;
    }

    let packages = steps.run("metadata", || metadata(&root))?;
    steps.run("packaging metadata", || {
        let report = packaging::check(&root)?;
        for warning in &report.warnings {
            println!("    warning: {warning}");
        }
        if report.errors.is_empty() {
            Ok(())
        } else {
            Err(report.errors.join("; "))
        }
    })?;
    let publish_order = order_for_publishing(&packages)?;
    let mut edited: Vec<PathBuf> = vec![root_manifest.clone()];
    edited.extend(packages.iter().map(|p| p.manifest.clone()));
    edited.extend([root.join("Cargo.lock"), changelog_path.clone()]);
    edited.sort();
    edited.dedup();
    let mut snapshot = Snapshot::take(&edited)?;

    steps.run("set versions", || {
        set_versions(&root, &packages, &new_text)?;
        check_versions(&root, &new_text)
    })?;

    steps.run("changelog", || {
        let text = read(&changelog_path)?;
        let repository = repository(&root).unwrap_or_default();
        let out = changelog::release(&text, &new_text, &changelog::today(), &repository)?;
        print_diff("CHANGELOG.md", &text, &out);
        write(&changelog_path, &out)
    })?;

    let mut outcomes = Vec::new();
    for name in &publish_order {
        let outcome = steps.run(&format!("package {name}"), || {
            package_one(&root, &packages, name, &new_text, opts.skip_checks)
        })?;
        println!("    {name}: {outcome}");
        outcomes.push(format!("{name}: {outcome}"));
    }

    if opts.dry_run {
        steps.run("restore", || {
            snapshot.restore()?;
            check_clean(&root).map_err(|e| format!("the tree is not as it was: {e}"))
        })?;
        println!("\ndry run of {current} -> {new_text} passed; nothing committed or tagged.");
    } else {
        let tag = format!("v{new_text}");
        steps.run("commit and tag", || {
            let mut add = git(&root);
            add.arg("add").arg("--");
            add.args(snapshot.paths().filter(|p| p.exists()));
            shell::run(&mut add)?;
            shell::run(git(&root).args(["commit", "-m", &format!("Release {new_text}")]))?;
            shell::run(git(&root).args(["tag", "-a", &tag, "-m", &format!("Release {new_text}")]))
        })?;
        snapshot.armed = false;
        println!("\nreleased {new_text}: committed and tagged {tag}. Next:");
        println!("  git push && git push origin {tag}");
        for name in &publish_order {
            println!("  cargo publish -p {name}");
        }
    }
    println!("packages:");
    for line in &outcomes {
        println!("  {line}");
    }
    Ok(())
}

fn cargo(root: &Path) -> Command {
    let mut cmd = shell::cargo();
    cmd.current_dir(root);
    cmd
}

fn git(root: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.current_dir(root);
    cmd
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Output of a command that must succeed, without echoing it.
fn output(cmd: &mut Command) -> Result<String, String> {
    let out = cmd
        .output()
        .map_err(|e| format!("could not start {:?}: {e}", cmd.get_program()))?;
    if !out.status.success() {
        return Err(format!(
            "{:?} {:?} failed: {}",
            cmd.get_program(),
            cmd.get_args().collect::<Vec<_>>(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn check_clean(root: &Path) -> Result<(), String> {
    let status = output(git(root).args(["status", "--porcelain"]))?;
    if status.trim().is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the working tree has uncommitted changes; commit or stash them first:\n{}",
            status.trim_end()
        ))
    }
}

fn tag_exists(root: &Path, tag: &str) -> Result<bool, String> {
    let out = git(root)
        .args([
            "rev-parse",
            "--quiet",
            "--verify",
            &format!("refs/tags/{tag}"),
        ])
        .output()
        .map_err(|e| format!("could not start git: {e}"))?;
    Ok(out.status.success())
}

fn check_version(
    root: &Path,
    current: &str,
    new: &Version,
    changelog_text: &str,
) -> Result<(), String> {
    let current_v =
        Version::parse(current).map_err(|e| format!("the workspace version is not valid: {e}"))?;
    if tag_exists(root, &format!("v{new}"))? {
        return Err(format!("tag v{new} already exists"));
    }
    let current_tagged = tag_exists(root, &format!("v{current}"))?;
    version_allowed(&current_v, new, current_tagged, changelog_text)
}

/// A release must move forward; the current version may itself be released
/// once, while it has neither a tag nor a CHANGELOG section.
fn version_allowed(
    current: &Version,
    new: &Version,
    current_tagged: bool,
    changelog_text: &str,
) -> Result<(), String> {
    match new.precedence(current) {
        Ordering::Greater => Ok(()),
        Ordering::Equal
            if !current_tagged
                && !changelog_text
                    .lines()
                    .any(|l| l.starts_with(&format!("## [{current}]"))) =>
        {
            println!(
                "    first release of {current} (no tag v{current} and no CHANGELOG section yet)"
            );
            Ok(())
        }
        _ => Err(format!(
            "{new} is not greater than the current version {current}; pick a higher version"
        )),
    }
}

fn metadata(root: &Path) -> Result<Vec<Package>, String> {
    let text = output(cargo(root).args(["metadata", "--format-version", "1", "--no-deps"]))?;
    parse_metadata(&text)
}

fn parse_metadata(text: &str) -> Result<Vec<Package>, String> {
    let json: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("cargo metadata is not JSON: {e}"))?;
    let list = json
        .get("packages")
        .and_then(|p| p.as_array())
        .ok_or("cargo metadata has no `packages`")?;
    let str_of = |v: &serde_json::Value, key: &str| -> Result<String, String> {
        v.get(key)
            .and_then(|s| s.as_str())
            .map(str::to_string)
            .ok_or_else(|| format!("cargo metadata: a package lacks `{key}`"))
    };
    let mut packages = Vec::new();
    for p in list {
        let publishable = match p.get("publish") {
            None | Some(serde_json::Value::Null) => true,
            Some(serde_json::Value::Array(registries)) => !registries.is_empty(),
            Some(_) => true,
        };
        let has_lib = p
            .get("targets")
            .and_then(|t| t.as_array())
            .is_some_and(|targets| {
                targets.iter().any(|t| {
                    t.get("kind")
                        .and_then(|k| k.as_array())
                        .is_some_and(|kinds| {
                            kinds
                                .iter()
                                .any(|k| matches!(k.as_str(), Some("lib" | "rlib" | "proc-macro")))
                        })
                })
            });
        let mut internal = Vec::new();
        for d in p
            .get("dependencies")
            .and_then(|d| d.as_array())
            .into_iter()
            .flatten()
        {
            if d.get("path").and_then(|x| x.as_str()).is_some() {
                internal.push((
                    str_of(d, "name")?,
                    str_of(d, "req")?,
                    d.get("kind").and_then(|k| k.as_str()).map(str::to_string),
                ));
            }
        }
        packages.push(Package {
            name: str_of(p, "name")?,
            version: str_of(p, "version")?,
            manifest: PathBuf::from(str_of(p, "manifest_path")?),
            publishable,
            has_lib,
            internal,
        });
    }
    Ok(packages)
}

fn repository(root: &Path) -> Option<String> {
    let text = std::fs::read_to_string(root.join("Cargo.toml")).ok()?;
    text.lines()
        .find_map(|l| l.trim().strip_prefix("repository = \"")?.strip_suffix('"'))
        .map(str::to_string)
}

/// Publishable crates, every crate after its normal and build dependencies;
/// libraries before binary-only crates, then workspace order.
fn order_for_publishing(packages: &[Package]) -> Result<Vec<String>, String> {
    let publishable: BTreeMap<&str, &Package> = packages
        .iter()
        .filter(|p| p.publishable)
        .map(|p| (p.name.as_str(), p))
        .collect();
    for p in publishable.values() {
        for (dep, _, kind) in &p.internal {
            if kind.as_deref() != Some("dev") && !publishable.contains_key(dep.as_str()) {
                return Err(format!(
                    "{} depends on {dep}, which is `publish = false`; it could not be published",
                    p.name
                ));
            }
        }
    }
    let mut level: BTreeMap<&str, usize> = BTreeMap::new();
    fn level_of<'a>(
        name: &'a str,
        all: &BTreeMap<&'a str, &'a Package>,
        level: &mut BTreeMap<&'a str, usize>,
        path: &mut Vec<&'a str>,
    ) -> Result<usize, String> {
        if let Some(l) = level.get(name) {
            return Ok(*l);
        }
        if path.contains(&name) {
            return Err(format!("dependency cycle: {} -> {name}", path.join(" -> ")));
        }
        path.push(name);
        let mut l = 0;
        if let Some(p) = all.get(name) {
            for (dep, _, kind) in &p.internal {
                if kind.as_deref() == Some("dev") {
                    continue;
                }
                if let Some((dep_name, _)) = all.get_key_value(dep.as_str()) {
                    l = l.max(level_of(dep_name, all, level, path)? + 1);
                }
            }
        }
        path.pop();
        level.insert(name, l);
        Ok(l)
    }
    for name in publishable.keys() {
        level_of(name, &publishable, &mut level, &mut Vec::new())?;
    }
    let mut order: Vec<(bool, usize, usize, String)> = packages
        .iter()
        .enumerate()
        .filter(|(_, p)| p.publishable)
        .map(|(i, p)| {
            (
                !p.has_lib,
                level.get(p.name.as_str()).copied().unwrap_or(0),
                i,
                p.name.clone(),
            )
        })
        .collect();
    order.sort();
    Ok(order.into_iter().map(|(_, _, _, name)| name).collect())
}

fn set_versions(root: &Path, packages: &[Package], new: &str) -> Result<(), String> {
    let internal: Vec<&str> = packages
        .iter()
        .filter(|p| p.publishable)
        .map(|p| p.name.as_str())
        .collect();
    let root_manifest = root.join("Cargo.toml");
    let mut manifests: Vec<(PathBuf, bool)> = vec![(root_manifest.clone(), false)];
    for p in packages {
        // A publishable crate with a literal version of its own moves too.
        let own = p.publishable;
        match manifests.iter_mut().find(|(m, _)| *m == p.manifest) {
            Some(entry) => entry.1 |= own,
            None => manifests.push((p.manifest.clone(), own)),
        }
    }
    for (path, set_package) in &manifests {
        let text = read(path)?;
        let (out, changes) = manifest::rewrite(&text, &internal, new, *set_package)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if changes.is_empty() {
            continue;
        }
        let shown = path
            .strip_prefix(root)
            .unwrap_or(path)
            .display()
            .to_string();
        for c in &changes {
            println!(
                "    {shown}:{}: {}  ->  {}",
                c.line,
                c.old.trim(),
                c.new.trim()
            );
        }
        write(path, &out)?;
    }
    // Cargo.lock records the workspace's own versions too.
    let offline = shell::run(cargo(root).args(["update", "--workspace", "--offline"]));
    if offline.is_err() {
        shell::run(cargo(root).args(["update", "--workspace"]))?;
    }
    Ok(())
}

/// Reads the workspace back: every publishable crate at `new`, every
/// internal requirement on one of them naming `new`.
fn check_versions(root: &Path, new: &str) -> Result<(), String> {
    let packages = metadata(root)?;
    let publishable: BTreeSet<&str> = packages
        .iter()
        .filter(|p| p.publishable)
        .map(|p| p.name.as_str())
        .collect();
    let mut wrong = Vec::new();
    for p in &packages {
        if p.publishable && p.version != new {
            wrong.push(format!("{} is at {}", p.name, p.version));
        }
        for (dep, req, _) in &p.internal {
            let req_version = req.trim_start_matches(['=', '^']);
            if publishable.contains(dep.as_str()) && req_version != new {
                wrong.push(format!("{} requires {dep} `{req}`", p.name));
            }
        }
    }
    if wrong.is_empty() {
        println!("    every publishable crate and internal requirement is at {new}");
        Ok(())
    } else {
        Err(format!(
            "after the rewrite, still not at {new}: {} (edit that form by hand or teach xtask/src/manifest.rs)",
            wrong.join("; ")
        ))
    }
}

/// Prints the lines of `new` that differ from `old` around a rewrite.
fn print_diff(name: &str, old: &str, new: &str) {
    let old_lines: BTreeSet<&str> = old.lines().collect();
    for (i, line) in new.lines().enumerate() {
        if !line.is_empty() && !old_lines.contains(line) {
            println!("    {name}:{}: + {line}", i + 1);
        }
    }
}

/// Runs `cargo package` for one crate and says how it was packaged.
///
/// A crate whose internal dependencies are not on crates.io at the new
/// version (always so for a new release, since they are published after it)
/// cannot be resolved by a lone `cargo package`, not even with `--no-verify`.
/// Tried in turn, and the outcome says which one worked:
/// 1. `cargo package -p CRATE` (verified unless `--skip-checks`);
/// 2. `--no-verify`;
/// 3. `--no-verify` together with its internal dependencies, which cargo
///    then resolves against the `.crate` files it has just made;
/// 4. `cargo package --list` (the file list only).
fn package_one(
    root: &Path,
    packages: &[Package],
    name: &str,
    new: &str,
    skip_verify: bool,
) -> Result<String, String> {
    let deps = internal_closure(packages, name);
    let base = |extra: &[&str]| {
        let mut cmd = cargo(root);
        cmd.args(["package", "--allow-dirty", "-p", name]);
        cmd.args(extra);
        cmd
    };
    let crate_file = format!("target/package/{name}-{new}.crate");
    let first: &[&str] = if skip_verify { &["--no-verify"] } else { &[] };
    let (ok, out) = shell::run_captured(&mut base(first))?;
    if ok {
        return Ok(if skip_verify {
            format!("{crate_file} (--no-verify: verification skipped by --skip-checks)")
        } else {
            format!("{crate_file} (verified)")
        });
    }
    if !is_resolution_failure(&out) || deps.is_empty() {
        return Err(format!("cargo package -p {name} failed"));
    }
    let unpublished = deps.join(", ");
    if !skip_verify {
        let (ok, out) = shell::run_captured(&mut base(&["--no-verify"]))?;
        if ok {
            return Ok(format!(
                "{crate_file} (--no-verify: {unpublished} {new} not on crates.io yet)"
            ));
        }
        if !is_resolution_failure(&out) {
            return Err(format!("cargo package -p {name} --no-verify failed"));
        }
    }
    let mut together = base(&["--no-verify"]);
    for dep in &deps {
        together.args(["-p", dep]);
    }
    let (ok, _) = shell::run_captured(&mut together)?;
    if ok {
        return Ok(format!(
            "{crate_file} (--no-verify, packaged together with {unpublished}: they are not on crates.io at {new} yet, so cargo resolved them from this run's .crate files)"
        ));
    }
    let (ok, _) = shell::run_captured(&mut base(&["--list"]))?;
    if ok {
        Ok(format!(
            "file list only (`cargo package --list`): {unpublished} {new} could not be resolved offline"
        ))
    } else {
        Err(format!(
            "cargo package -p {name} failed even as --list; its dependencies {unpublished} could not be resolved"
        ))
    }
}

fn is_resolution_failure(output: &str) -> bool {
    [
        "no matching package named",
        "failed to select a version",
        "failed to prepare local package",
    ]
    .iter()
    .any(|s| output.contains(s))
}

/// Every publishable workspace crate `name` depends on, transitively
/// (normal and build dependencies), in workspace order.
fn internal_closure(packages: &[Package], name: &str) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let mut stack = vec![name.to_string()];
    while let Some(current) = stack.pop() {
        if let Some(p) = packages.iter().find(|p| p.name == current) {
            for (dep, _, kind) in &p.internal {
                let publishable = packages.iter().any(|q| q.name == *dep && q.publishable);
                if kind.as_deref() != Some("dev") && publishable && seen.insert(dep.clone()) {
                    stack.push(dep.clone());
                }
            }
        }
    }
    packages
        .iter()
        .filter(|p| seen.contains(&p.name) && p.name != name)
        .map(|p| p.name.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(name: &str, deps: &[&str], publishable: bool, has_lib: bool) -> Package {
        Package {
            name: name.into(),
            version: "0.1.0".into(),
            manifest: PathBuf::from(format!("{name}/Cargo.toml")),
            publishable,
            has_lib,
            internal: deps
                .iter()
                .map(|d| (d.to_string(), "=0.1.0".into(), None))
                .collect(),
        }
    }

    fn workspace() -> Vec<Package> {
        vec![
            pkg("jobcache-hash", &[], true, true),
            pkg("jobcache-persist", &[], true, true),
            pkg("jobcache-store", &[], true, true),
            pkg("jobcache-trace", &[], true, true),
            pkg(
                "jobcache-memo",
                &[
                    "jobcache-hash",
                    "jobcache-persist",
                    "jobcache-store",
                    "jobcache-trace",
                ],
                true,
                true,
            ),
            pkg(
                "jobcache-cli",
                &["jobcache-persist", "jobcache-store", "jobcache-trace"],
                true,
                false,
            ),
            pkg("xtask", &[], false, false),
            pkg("jobcache-bench", &[], false, true),
            pkg("jobcache", &["jobcache-hash", "jobcache-memo"], true, true),
        ]
    }

    #[test]
    fn publishing_order_puts_dependencies_first() {
        assert_eq!(
            order_for_publishing(&workspace()).unwrap(),
            [
                "jobcache-hash",
                "jobcache-persist",
                "jobcache-store",
                "jobcache-trace",
                "jobcache-memo",
                "jobcache",
                "jobcache-cli"
            ]
        );
    }

    #[test]
    fn publishing_order_refuses_an_unpublishable_dependency_and_cycles() {
        let mut ws = workspace();
        ws[0]
            .internal
            .push(("jobcache-bench".into(), "*".into(), None));
        assert!(order_for_publishing(&ws)
            .unwrap_err()
            .contains("publish = false"));
        // A dev-dependency on it is fine: cargo strips those without a version.
        ws[0].internal[0].2 = Some("dev".into());
        assert!(order_for_publishing(&ws).is_ok());
        let mut ws = workspace();
        ws[0]
            .internal
            .push(("jobcache-memo".into(), "=0.1.0".into(), None));
        assert!(order_for_publishing(&ws).unwrap_err().contains("cycle"));
    }

    #[test]
    fn closure_is_transitive_and_skips_unpublishable() {
        let ws = workspace();
        assert_eq!(
            internal_closure(&ws, "jobcache"),
            [
                "jobcache-hash",
                "jobcache-persist",
                "jobcache-store",
                "jobcache-trace",
                "jobcache-memo"
            ]
        );
        assert!(internal_closure(&ws, "jobcache-hash").is_empty());
    }

    #[test]
    fn versions_must_move_forward_except_a_first_release() {
        let v = |s: &str| Version::parse(s).unwrap();
        assert!(version_allowed(&v("0.1.0"), &v("0.1.1"), true, "").is_ok());
        assert!(version_allowed(&v("0.1.0"), &v("0.2.0-rc.1"), true, "").is_ok());
        assert!(version_allowed(&v("1.0.0-rc.2"), &v("1.0.0-rc.10"), true, "").is_ok());
        assert!(version_allowed(&v("1.0.0-rc.2"), &v("1.0.0"), true, "").is_ok());
        let err = version_allowed(&v("0.1.0"), &v("0.0.9"), false, "").unwrap_err();
        assert!(err.contains("not greater"), "{err}");
        assert!(version_allowed(&v("1.0.0"), &v("1.0.0-rc.1"), false, "").is_err());
        assert!(version_allowed(&v("1.0.0-rc.10"), &v("1.0.0-rc.2"), false, "").is_err());
        // Equal: only while the current version was never released.
        assert!(version_allowed(&v("0.1.0"), &v("0.1.0"), false, "## [Unreleased]\n").is_ok());
        assert!(version_allowed(&v("0.1.0"), &v("0.1.0"), true, "").is_err());
        assert!(
            version_allowed(&v("0.1.0"), &v("0.1.0"), false, "## [0.1.0] - 2026-01-01\n").is_err()
        );
        assert!(version_allowed(&v("0.1.0"), &v("0.1.0+build"), true, "").is_err());
    }

    #[test]
    fn parses_arguments() {
        let a = |s: &[&str]| parse_args(&s.iter().map(|x| x.to_string()).collect::<Vec<_>>());
        assert_eq!(
            a(&["1.0.0", "--dry-run"]).unwrap(),
            Options {
                version: "1.0.0".into(),
                dry_run: true,
                skip_checks: false
            }
        );
        assert!(a(&["--skip-checks", "1.0.0"]).unwrap().skip_checks);
        assert!(a(&[]).is_err());
        assert!(a(&["1.0.0", "2.0.0"]).is_err());
        assert!(a(&["1.0.0", "--force"]).is_err());
    }

    #[test]
    fn reads_cargo_metadata() {
        let text = r#"{"packages":[
          {"name":"jobcache-memo","version":"0.1.0","manifest_path":"/w/memo/Cargo.toml","publish":null,
           "targets":[{"kind":["lib"]}],
           "dependencies":[{"name":"jobcache-hash","req":"=0.1.0","path":"/w/hash","kind":null},
                           {"name":"serde","req":"^1","kind":null}]},
          {"name":"xtask","version":"0.0.0","manifest_path":"/w/xtask/Cargo.toml","publish":[],
           "targets":[{"kind":["bin"]}],"dependencies":[]}]}"#;
        let p = parse_metadata(text).unwrap();
        assert_eq!(p.len(), 2);
        assert!(p[0].publishable && p[0].has_lib);
        assert_eq!(
            p[0].internal,
            [("jobcache-hash".to_string(), "=0.1.0".to_string(), None)]
        );
        assert!(!p[1].publishable && !p[1].has_lib);
        assert!(parse_metadata("[]").is_err());
    }
}
