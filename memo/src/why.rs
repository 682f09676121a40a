//! Why a call missed: what differs between a call and the nearest cached
//! call of the same function.
//!
//! Every stored result keeps, in its metadata, one short digest per
//! argument, the digest of the function's code ([`memoize!`] source) and its
//! explicit version ([`fields`]). The per-argument digests are
//! the ones the key is made of (the key hashes them, not the arguments
//! again), so keeping them costs no hashing, and a bounded number of bytes
//! per entry (16 hex digits per argument).
//!
//! [`explain`] compares a call with earlier ones and says what changed in one
//! line: "argument 2 (`scale`) changed; code unchanged", "code changed
//! (memoize! source)", "version 3 → 4", "no earlier call". A miss logs it at
//! debug level (target `jobcache`), and `jobcache why FUNCTION` prints it.
//!
//! [`memoize!`]: crate::memoize

use crate::cached::fields;
use jobcache_hash::Digest;
use jobcache_store::EntryMeta;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;

/// Hex digits kept of each argument's digest in the metadata.
pub(crate) const ARG_DIGEST_HEX: usize = 16;
/// Arguments whose digests are kept (a function has at most six; more
/// would come from a tuple-like single argument, which is not split).
const ARGS_KEPT: usize = 16;
/// Bytes kept of a user version or of the argument names.
const TEXT_KEPT: usize = 256;

/// What one call was made of, as far as [`explain`] compares calls.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallRecord {
    /// The short digest of each argument, in order.
    pub args: Vec<String>,
    /// The argument names, when the function's source is known
    /// ([`memoize!`](crate::memoize)); may be shorter than `args`.
    pub arg_names: Vec<String>,
    /// The short digest of the function's source (empty when unknown).
    pub code: String,
    /// The explicit version ([`Cached::version`](crate::Cached::version)).
    pub version: String,
    /// The function's type name (empty when unknown): two functions cached
    /// under one name differ here.
    pub identity: String,
}

impl CallRecord {
    /// The record kept in a result's metadata, if the result has one
    /// (results stored before per-argument digests were kept do not).
    pub fn from_meta(meta: &EntryMeta) -> Option<CallRecord> {
        CallRecord::from_fields(&meta.fields)
    }

    /// The record kept in metadata fields, if there is one.
    pub fn from_fields(fields: &BTreeMap<String, String>) -> Option<CallRecord> {
        let args = fields.get(fields::ARG_DIGESTS)?;
        let split = |s: Option<&String>, sep: char| -> Vec<String> {
            s.filter(|s| !s.is_empty())
                .map(|s| s.split(sep).map(str::to_string).collect())
                .unwrap_or_default()
        };
        Some(CallRecord {
            args: split(Some(args), ' '),
            arg_names: split(fields.get(fields::ARG_NAMES), ','),
            code: fields.get(fields::CODE).cloned().unwrap_or_default(),
            version: fields
                .get(fields::USER_VERSION)
                .cloned()
                .unwrap_or_default(),
            identity: fields.get(fields::IDENTITY).cloned().unwrap_or_default(),
        })
    }

    /// The metadata fields that keep this record.
    pub(crate) fn fields(&self) -> [(&'static str, String); 5] {
        [
            (fields::IDENTITY, keep(&self.identity)),
            (fields::ARG_DIGESTS, self.args.join(" ")),
            (fields::ARG_NAMES, keep(&self.arg_names.join(","))),
            (fields::CODE, self.code.clone()),
            (fields::USER_VERSION, keep(&self.version)),
        ]
    }

    /// How many parts differ from `other` (arguments, code, version).
    fn distance(&self, other: &CallRecord) -> usize {
        let args = if self.args.len() == other.args.len() {
            self.args
                .iter()
                .zip(&other.args)
                .filter(|(a, b)| a != b)
                .count()
        } else {
            self.args.len().max(other.args.len())
        };
        args + usize::from(self.code != other.code)
            + usize::from(self.version != other.version)
            + usize::from(self.identity != other.identity)
    }
}

/// What differs between a call and the nearest earlier call of the same
/// function; its `Display` is the one-line answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Explanation {
    /// The function has no earlier cached call (with a record to compare).
    NoEarlierCall,
    /// The nearest earlier call differs in these ways.
    Differs {
        /// The arguments that changed: 1-based position and name, if known.
        args: Vec<(usize, Option<String>)>,
        /// The number of arguments changed (from, to).
        arity: Option<(usize, usize)>,
        /// The function's source changed.
        code: bool,
        /// Whether the function's source is known ([`memoize!`](crate::memoize)):
        /// only then does the answer say "code unchanged".
        code_known: bool,
        /// The explicit version changed (from, to).
        version: Option<(String, String)>,
        /// Another function was cached under this name (its type name).
        function: Option<String>,
    },
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Explanation::Differs {
            args,
            arity,
            code,
            code_known,
            version,
            function,
        } = self
        else {
            return f.write_str("no earlier call");
        };
        let mut parts = Vec::new();
        if let Some(other) = function {
            parts.push(format!(
                "another function (`{other}`) is cached under this name"
            ));
        }
        if let Some((from, to)) = version {
            let shown = |v: &str| {
                if v.is_empty() {
                    "(none)".to_string()
                } else {
                    v.to_string()
                }
            };
            parts.push(format!("version {} → {}", shown(from), shown(to)));
        }
        if *code {
            parts.push("code changed (memoize! source)".to_string());
        }
        if let Some((from, to)) = arity {
            parts.push(format!("number of arguments {from} → {to}"));
        }
        if !args.is_empty() {
            let named: Vec<String> = args
                .iter()
                .map(|(i, name)| match name {
                    Some(n) => format!("{i} (`{n}`)"),
                    None => i.to_string(),
                })
                .collect();
            let (noun, verb) = if named.len() == 1 {
                ("argument", "changed")
            } else {
                ("arguments", "changed")
            };
            parts.push(format!("{noun} {} {verb}", list(&named)));
            if *code_known && !*code && version.is_none() && function.is_none() {
                parts.push("code unchanged".to_string());
            }
        }
        if parts.is_empty() {
            return f.write_str(
                "same arguments, code and version as a call cached before: that result was \
                 removed (cleared, evicted, expired or rejected)",
            );
        }
        f.write_str(&parts.join("; "))
    }
}

/// "1", "1 and 2", "1, 2 and 3".
fn list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// Compares `call` with the nearest of `earlier` (fewest differing parts;
/// among equals, the first given, so pass the most recent first).
pub fn explain<'a>(
    call: &CallRecord,
    earlier: impl IntoIterator<Item = &'a CallRecord>,
) -> Explanation {
    let Some(nearest) = earlier
        .into_iter()
        .enumerate()
        .min_by_key(|(i, e)| (call.distance(e), *i))
        .map(|(_, e)| e)
    else {
        return Explanation::NoEarlierCall;
    };
    let (args, arity) = if call.args.len() == nearest.args.len() {
        let changed = call
            .args
            .iter()
            .zip(&nearest.args)
            .enumerate()
            .filter(|(_, (a, b))| a != b)
            .map(|(i, _)| (i + 1, call.arg_names.get(i).cloned()))
            .collect();
        (changed, None)
    } else {
        (Vec::new(), Some((nearest.args.len(), call.args.len())))
    };
    Explanation::Differs {
        args,
        arity,
        code: call.code != nearest.code,
        code_known: !call.code.is_empty(),
        version: (call.version != nearest.version)
            .then(|| (nearest.version.clone(), call.version.clone())),
        function: (call.identity != nearest.identity && !nearest.identity.is_empty())
            .then(|| nearest.identity.clone()),
    }
}

fn keep(text: &str) -> String {
    if text.len() <= TEXT_KEPT {
        return text.to_string();
    }
    let mut end = TEXT_KEPT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

/// The short form of an argument digest kept in the metadata.
pub(crate) fn short(d: &Digest) -> String {
    let mut s = d.to_string();
    s.truncate(ARG_DIGEST_HEX);
    s
}

/// One digest per argument: for a function of several arguments (`arity`
/// above 1, given as a tuple), one per tuple element; otherwise one for the
/// whole argument. Each argument's bytes are hashed once.
pub(crate) fn arg_digests<A: Serialize + ?Sized>(
    args: &A,
    arity: usize,
) -> Result<Vec<Digest>, jobcache_hash::Error> {
    crate::shelved::hashing_key(|| {
        if arity > 1 {
            if let Some(digests) = jobcache_hash::hash_elements(args, ARGS_KEPT)? {
                return Ok(digests);
            }
        }
        Ok(vec![jobcache_hash::hash(args)?])
    })
}

/// The parameter names of a function from its `stringify!`-ed source
/// (`fn f(values: &[f64], mut scale: f64) -> …` gives `values`, `scale`);
/// empty when the source does not parse as expected.
pub(crate) fn param_names(source: &str) -> Vec<String> {
    let Some(open) = params_start(source) else {
        return Vec::new();
    };
    let mut names = Vec::new();
    let mut depth = 0usize;
    let mut current = String::new();
    let mut chars = source[open + 1..].chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '-' if chars.peek() == Some(&'>') => {
                chars.next();
                current.push_str("->");
                continue;
            }
            '(' | '[' | '{' | '<' => depth += 1,
            ')' | ']' | '}' | '>' if depth > 0 => depth -= 1,
            ')' => {
                names.extend(param_name(&current));
                return names;
            }
            ',' if depth == 0 => {
                names.extend(param_name(&current));
                current.clear();
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    Vec::new()
}

/// Where the parameter list's `(` is: the first `(` outside the generics.
fn params_start(source: &str) -> Option<usize> {
    let mut depth = 0usize;
    let bytes = source.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'<' => depth += 1,
            b'>' if i > 0 && bytes[i - 1] == b'-' => {}
            b'>' => depth = depth.saturating_sub(1),
            b'(' if depth == 0 => return Some(i),
            _ => {}
        }
    }
    None
}

/// The name bound by one parameter (`mut scale: f64` gives `scale`).
fn param_name(param: &str) -> Option<String> {
    let param = param.trim();
    if param.is_empty() {
        return None;
    }
    let pattern = param.split(':').next().unwrap_or(param).trim();
    let pattern = pattern.strip_prefix("mut ").unwrap_or(pattern).trim();
    // Names are kept comma-separated: a tuple pattern's commas become `|`.
    Some(
        pattern
            .split_whitespace()
            .collect::<String>()
            .replace(',', "|"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn record(args: &[&str], code: &str, version: &str) -> CallRecord {
        CallRecord {
            args: args.iter().map(|s| s.to_string()).collect(),
            arg_names: vec!["values".into(), "scale".into()],
            code: code.into(),
            version: version.into(),
            identity: "app::f".into(),
        }
    }

    #[test]
    fn the_one_line_answers() {
        let now = record(&["a", "b"], "c1", "");
        assert_eq!(explain(&now, []).to_string(), "no earlier call");
        let earlier = [record(&["a", "x"], "c1", ""), record(&["y", "z"], "c2", "")];
        assert_eq!(
            explain(&now, &earlier).to_string(),
            "argument 2 (`scale`) changed; code unchanged"
        );
        let edited = [record(&["a", "b"], "c0", "")];
        assert_eq!(
            explain(&now, &edited).to_string(),
            "code changed (memoize! source)"
        );
        let bumped = record(&["a", "b"], "c1", "4");
        assert_eq!(
            explain(&bumped, &[record(&["a", "b"], "c1", "3")]).to_string(),
            "version 3 → 4"
        );
        let both = [record(&["q", "r"], "c1", "")];
        assert_eq!(
            explain(&now, &both).to_string(),
            "arguments 1 (`values`) and 2 (`scale`) changed; code unchanged"
        );
        let other = CallRecord {
            identity: "app::g".into(),
            ..record(&["a", "b"], "c1", "")
        };
        assert_eq!(
            explain(&now, [&other]).to_string(),
            "another function (`app::g`) is cached under this name"
        );
        let fewer = [record(&["a"], "c1", "")];
        assert_eq!(
            explain(&now, &fewer).to_string(),
            "number of arguments 1 → 2"
        );
    }

    #[test]
    fn records_round_trip_through_fields() {
        let r = record(&["0123456789abcdef", "fedcba9876543210"], "c", "v 2");
        let fields: BTreeMap<String, String> = r
            .fields()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        assert_eq!(CallRecord::from_fields(&fields), Some(r));
        assert_eq!(CallRecord::from_fields(&BTreeMap::new()), None);
    }

    #[test]
    fn parameter_names_from_source() {
        assert_eq!(
            param_names("fn total(values : & [f64], mut scale : f64) -> f64 { 0.0 }"),
            ["values", "scale"]
        );
        assert_eq!(
            param_names("fn g < F : Fn(u8) -> u8, T > (f : F, x : Vec < T >) -> u8 { 1 }"),
            ["f", "x"]
        );
        assert_eq!(param_names("fn unit() {}"), Vec::<String>::new());
        assert_eq!(
            param_names("fn pair((a, b) : (u8, u8), c : u8) -> u8 { a }"),
            ["(a|b)", "c"]
        );
        assert_eq!(param_names("garbage"), Vec::<String>::new());
    }

    #[test]
    fn tuples_split_into_their_elements() {
        let whole = arg_digests(&(1u8, "x"), 1).unwrap();
        assert_eq!(whole.len(), 1);
        let split = arg_digests(&(1u8, "x"), 2).unwrap();
        assert_eq!(
            split,
            [
                jobcache_hash::hash(&1u8).unwrap(),
                jobcache_hash::hash("x").unwrap()
            ]
        );
        // Not a tuple: hashed whole.
        assert_eq!(arg_digests(&vec![1u8, 2], 2).unwrap().len(), 1);
    }

    proptest! {
        #[test]
        fn records_round_trip_through_their_fields(
            args in proptest::collection::vec("[0-9a-f]{16}", 0..6),
            arg_names in proptest::collection::vec("[a-z_(|)]{1,8}", 0..6),
            code in "([0-9a-f]{16})?",
            version in "\\PC{0,60}",
            identity in "[a-z:_{}]{0,40}",
        ) {
            let record = CallRecord { args, arg_names, code, version, identity };
            let fields: BTreeMap<String, String> = record
                .fields()
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
            prop_assert_eq!(CallRecord::from_fields(&fields), Some(record));
        }

        #[test]
        fn arbitrary_fields_never_panic(
            fields in proptest::collection::btree_map("[a-z_]{1,12}", "\\PC{0,40}", 0..8),
        ) {
            if let Some(r) = CallRecord::from_fields(&fields) {
                let _ = explain(&r, [&r]).to_string();
            }
        }

        #[test]
        fn split_digests_are_the_elements_digests(a in any::<u64>(), b in ".{0,20}", c in any::<bool>()) {
            let split = arg_digests(&(a, &b, c), 3).unwrap();
            prop_assert_eq!(
                split,
                vec![
                    jobcache_hash::hash(&a).unwrap(),
                    jobcache_hash::hash(&b).unwrap(),
                    jobcache_hash::hash(&c).unwrap(),
                ]
            );
        }

        #[test]
        fn parsing_never_panics(source in ".{0,200}") {
            let _ = param_names(&source);
        }

        #[test]
        fn explanation_is_total(
            a in proptest::collection::vec("[ab]", 0..4),
            b in proptest::collection::vec("[ab]", 0..4),
            code in any::<bool>(),
        ) {
            let now = CallRecord { args: a, code: "c".into(), ..CallRecord::default() };
            let then = CallRecord {
                args: b,
                code: if code { "c".into() } else { "d".into() },
                ..CallRecord::default()
            };
            prop_assert!(!explain(&now, [&then]).to_string().is_empty());
        }
    }
}
