//! Semantic versions (<https://semver.org>, 2.0.0): parsing and precedence.
//!
//! Only what the release task needs: `MAJOR.MINOR.PATCH[-PRE][+BUILD]`,
//! compared by precedence (build metadata is ignored, a pre-release is lower
//! than its release, pre-release identifiers compare numerically when both
//! are numbers, numbers sort before words, and a longer list wins a tie).

use std::cmp::Ordering;
use std::fmt;

/// A parsed semantic version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
    /// Dot-separated pre-release identifiers; empty for a release.
    pub pre: Vec<Ident>,
    /// Build metadata as written (without the `+`); ignored in comparisons.
    pub build: String,
}

/// One pre-release identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ident {
    Numeric(u64),
    Alpha(String),
}

impl Version {
    /// Parses `text` strictly: no leading `v`, no leading zeros, no empty
    /// identifiers, only `[0-9A-Za-z-]` in identifiers.
    pub fn parse(text: &str) -> Result<Version, String> {
        let bad = |why: &str| {
            format!("`{text}` is not a semantic version (MAJOR.MINOR.PATCH[-PRE][+BUILD]): {why}")
        };
        let (rest, build) = match text.split_once('+') {
            Some((rest, build)) => {
                check_idents(build).map_err(|e| bad(&format!("build metadata {e}")))?;
                (rest, build.to_string())
            }
            None => (text, String::new()),
        };
        let (core, pre) = match rest.split_once('-') {
            Some((core, pre)) => {
                check_idents(pre).map_err(|e| bad(&format!("pre-release {e}")))?;
                let pre = pre
                    .split('.')
                    .map(|id| {
                        if id.bytes().all(|b| b.is_ascii_digit()) {
                            if id.len() > 1 && id.starts_with('0') {
                                return Err(bad(&format!("`{id}` has a leading zero")));
                            }
                            id.parse()
                                .map(Ident::Numeric)
                                .map_err(|_| bad(&format!("`{id}` is too large")))
                        } else {
                            Ok(Ident::Alpha(id.to_string()))
                        }
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                (core, pre)
            }
            None => (rest, Vec::new()),
        };
        let numbers: Vec<&str> = core.split('.').collect();
        let [major, minor, patch] = numbers.as_slice() else {
            return Err(bad("expected three numbers separated by dots"));
        };
        let number = |n: &str| -> Result<u64, String> {
            if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad(&format!("`{n}` is not a number")));
            }
            if n.len() > 1 && n.starts_with('0') {
                return Err(bad(&format!("`{n}` has a leading zero")));
            }
            n.parse().map_err(|_| bad(&format!("`{n}` is too large")))
        };
        Ok(Version {
            major: number(major)?,
            minor: number(minor)?,
            patch: number(patch)?,
            pre,
            build,
        })
    }

    /// Precedence order (build metadata ignored).
    pub fn precedence(&self, other: &Version) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            .then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => compare_pre(&self.pre, &other.pre),
            })
    }
}

fn check_idents(text: &str) -> Result<(), String> {
    for id in text.split('.') {
        if id.is_empty() {
            return Err(format!("`{text}` has an empty identifier"));
        }
        if !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(format!("`{id}` may use only 0-9, A-Z, a-z and `-`"));
        }
    }
    Ok(())
}

fn compare_pre(a: &[Ident], b: &[Ident]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        let order = match (x, y) {
            (Ident::Numeric(x), Ident::Numeric(y)) => x.cmp(y),
            (Ident::Numeric(_), Ident::Alpha(_)) => Ordering::Less,
            (Ident::Alpha(_), Ident::Numeric(_)) => Ordering::Greater,
            (Ident::Alpha(x), Ident::Alpha(y)) => x.cmp(y),
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    a.len().cmp(&b.len())
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        for (i, id) in self.pre.iter().enumerate() {
            f.write_str(if i == 0 { "-" } else { "." })?;
            match id {
                Ident::Numeric(n) => write!(f, "{n}")?,
                Ident::Alpha(s) => f.write_str(s)?,
            }
        }
        if !self.build.is_empty() {
            write!(f, "+{}", self.build)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Version {
        Version::parse(text).unwrap()
    }

    #[test]
    fn parses_and_prints_back() {
        for text in [
            "0.1.0",
            "1.2.3",
            "10.20.30",
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-0.3.7",
            "1.0.0-x.7.z.92",
            "1.0.0-x-y-z.--",
            "1.0.0+20130313144700",
            "1.0.0-beta+exp.sha.5114f85",
        ] {
            assert_eq!(v(text).to_string(), text);
        }
        assert_eq!(v("1.2.3").minor, 2);
    }

    #[test]
    fn rejects_what_semver_forbids() {
        for text in [
            "",
            "1",
            "1.2",
            "1.2.3.4",
            "v1.2.3",
            "01.2.3",
            "1.02.3",
            "1.2.03",
            "1.2.3-",
            "1.2.3-01",
            "1.2.3-a..b",
            "1.2.3+",
            "1.2.3-a_b",
            "1.2.x",
            " 1.2.3",
            "99999999999999999999.0.0",
        ] {
            assert!(Version::parse(text).is_err(), "{text:?} was accepted");
        }
    }

    #[test]
    fn precedence_follows_the_spec_example_chain() {
        // The chain from semver.org, section 11, plus core ordering.
        let chain = [
            "0.0.1",
            "0.1.0",
            "0.9.9",
            "0.10.0",
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.0.1",
            "1.1.0",
            "2.0.0-0",
            "2.0.0",
            "9.9.9",
        ];
        for (i, a) in chain.iter().enumerate() {
            for (j, b) in chain.iter().enumerate() {
                assert_eq!(v(a).precedence(&v(b)), i.cmp(&j), "{a} vs {b}");
            }
        }
    }

    #[test]
    fn build_metadata_does_not_count() {
        assert_eq!(v("1.0.0+a").precedence(&v("1.0.0+b")), Ordering::Equal);
        assert_eq!(
            v("1.0.0-rc.1+a").precedence(&v("1.0.0-rc.1")),
            Ordering::Equal
        );
    }
}
