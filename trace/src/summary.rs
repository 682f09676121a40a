//! Bounded one-line summaries of any `Serialize` value.
//!
//! A custom serde [`Serializer`] writes a short, readable rendering and stops
//! as soon as a budget is spent: each container shows its first items, long
//! strings are cut, nesting is limited, and the whole line is capped. When a
//! container has shown enough, the serializer returns an error to its
//! `Serialize` implementation, which stops iterating; the caller one level up
//! catches it and goes on. So the cost depends on the budget, never on the size
//! of the value. ndarray arrays (which serialize as a struct `Array` with
//! fields `v`, `dim`, `data`) are recognised and shown as dtype, shape and a
//! few values. jobcache's shelved handles (a struct `Shelved` with fields
//! `function`, `key`, `location`) show as `generate@2824532d`: the
//! function's last path segment and the key's first 8 hex digits.

use serde::ser::{self, Serialize, Serializer};
use std::fmt::{self, Write as _};

/// Limits of a summary (see [`summarize_with`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SummaryOptions {
    /// Maximum length of the whole summary in bytes (then `…`).
    pub max_len: usize,
    /// Items shown per sequence, map, tuple or struct.
    pub max_items: usize,
    /// Characters shown of a string.
    pub max_str: usize,
    /// Containers nested deeper than this show as `…`.
    pub max_depth: usize,
    /// Values shown of an array.
    pub array_values: usize,
}

impl Default for SummaryOptions {
    fn default() -> Self {
        SummaryOptions {
            max_len: 200,
            max_items: 6,
            max_str: 40,
            max_depth: 4,
            array_values: 4,
        }
    }
}

/// A bounded, one-line, readable summary of `value` with the default limits.
///
/// Arrays show as `array(float64, shape=[1024, 1024], [0.0, 1.0, 2.0, 3.0, …])`,
/// long strings are cut, containers show their first items and their length.
/// The time spent depends on the limits, not on the size of the value.
///
/// ```
/// let s = jobcache_trace::summarize(&(vec![1, 2, 3], "x".repeat(1000)));
/// assert!(s.starts_with("([1, 2, 3], \"xxxx"));
/// assert!(s.len() < 200);
/// ```
pub fn summarize<T: Serialize + ?Sized>(value: &T) -> String {
    summarize_with(value, &SummaryOptions::default())
}

/// Like [`summarize`], with explicit limits.
pub fn summarize_with<T: Serialize + ?Sized>(value: &T, opts: &SummaryOptions) -> String {
    let mut s = Summarizer {
        out: String::new(),
        opts: *opts,
        depth: 0,
    };
    match s.nested(value) {
        Ok(()) => {}
        Err(Error::Full) => {
            let mut cut = opts.max_len.saturating_sub(ELLIPSIS.len()).min(s.out.len());
            while !s.out.is_char_boundary(cut) {
                cut -= 1;
            }
            s.out.truncate(cut);
            s.out.push_str(ELLIPSIS);
        }
        Err(Error::Custom(msg)) => {
            let _ = write!(s.out, "<unserializable: {}>", cut_str(&msg, opts.max_str));
            if s.out.len() > opts.max_len {
                return summarize_with(&"<unserializable>", opts);
            }
        }
        Err(Error::Done | Error::NotScalar) => {}
    }
    s.out
}

const ELLIPSIS: &str = "…";

#[derive(Debug)]
enum Error {
    /// The whole summary reached its length: stop everything.
    Full,
    /// This container has shown enough: its parent goes on.
    Done,
    /// A scalar was expected (array element probe).
    NotScalar,
    /// The value's own `Serialize` failed.
    Custom(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Full => f.write_str("summary budget reached"),
            Error::Done => f.write_str("container budget reached"),
            Error::NotScalar => f.write_str("not a scalar"),
            Error::Custom(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}

impl ser::Error for Error {
    fn custom<M: fmt::Display>(msg: M) -> Self {
        Error::Custom(msg.to_string())
    }
}

fn cut_str(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((at, _)) => format!("{}{ELLIPSIS}", s.get(..at).unwrap_or_default()),
        None => s.to_string(),
    }
}

struct Summarizer {
    out: String,
    opts: SummaryOptions,
    depth: usize,
}

impl Summarizer {
    fn push(&mut self, s: &str) -> Result<(), Error> {
        self.out.push_str(s);
        if self.out.len() > self.opts.max_len {
            Err(Error::Full)
        } else {
            Ok(())
        }
    }

    fn push_fmt(&mut self, args: fmt::Arguments<'_>) -> Result<(), Error> {
        let _ = self.out.write_fmt(args);
        if self.out.len() > self.opts.max_len {
            Err(Error::Full)
        } else {
            Ok(())
        }
    }

    /// Serializes a child value; a child container that stopped early is fine.
    fn nested<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        match value.serialize(&mut *self) {
            Ok(()) | Err(Error::Done) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn open(
        &mut self,
        prefix: &str,
        open: &'static str,
        close: &'static str,
        len: Option<usize>,
    ) -> Result<Compound<'_>, Error> {
        self.push(prefix)?;
        if self.depth >= self.opts.max_depth {
            self.push(open)?;
            self.push(ELLIPSIS)?;
            self.push(close)?;
            return Err(Error::Done);
        }
        self.push(open)?;
        self.depth += 1;
        Ok(Compound {
            s: self,
            count: 0,
            len,
            close,
        })
    }
}

struct Compound<'a> {
    s: &'a mut Summarizer,
    count: usize,
    len: Option<usize>,
    close: &'static str,
}

impl Compound<'_> {
    /// Starts an item: a separator, or ends the container once enough shown.
    fn item(&mut self) -> Result<(), Error> {
        if self.count >= self.s.opts.max_items {
            if self.count > 0 {
                self.s.push(", ")?;
            }
            self.s.push(ELLIPSIS)?;
            if let Some(n) = self.len {
                self.s.push_fmt(format_args!(" ({n} items)"))?;
            }
            self.finish()?;
            return Err(Error::Done);
        }
        if self.count > 0 {
            self.s.push(", ")?;
        }
        self.count += 1;
        Ok(())
    }

    fn finish(&mut self) -> Result<(), Error> {
        self.s.depth = self.s.depth.saturating_sub(1);
        self.s.push(self.close)
    }

    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.item()?;
        self.s.nested(value)
    }

    fn field<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<(), Error> {
        self.item()?;
        self.s.push(key)?;
        self.s.push(": ")?;
        self.s.nested(value)
    }
}

impl<'a> Serializer for &'a mut Summarizer {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Compound<'a>;
    type SerializeTuple = Compound<'a>;
    type SerializeTupleStruct = Compound<'a>;
    type SerializeTupleVariant = Compound<'a>;
    type SerializeMap = Compound<'a>;
    type SerializeStruct = StructCompound<'a>;
    type SerializeStructVariant = Compound<'a>;

    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.push(if v { "true" } else { "false" })
    }
    fn serialize_i8(self, v: i8) -> Result<(), Error> {
        self.push_fmt(format_args!("{v}"))
    }
    fn serialize_i16(self, v: i16) -> Result<(), Error> {
        self.push_fmt(format_args!("{v}"))
    }
    fn serialize_i32(self, v: i32) -> Result<(), Error> {
        self.push_fmt(format_args!("{v}"))
    }
    fn serialize_i64(self, v: i64) -> Result<(), Error> {
        self.push_fmt(format_args!("{v}"))
    }
    fn serialize_i128(self, v: i128) -> Result<(), Error> {
        self.push_fmt(format_args!("{v}"))
    }
    fn serialize_u8(self, v: u8) -> Result<(), Error> {
        self.push_fmt(format_args!("{v}"))
    }
    fn serialize_u16(self, v: u16) -> Result<(), Error> {
        self.push_fmt(format_args!("{v}"))
    }
    fn serialize_u32(self, v: u32) -> Result<(), Error> {
        self.push_fmt(format_args!("{v}"))
    }
    fn serialize_u64(self, v: u64) -> Result<(), Error> {
        self.push_fmt(format_args!("{v}"))
    }
    fn serialize_u128(self, v: u128) -> Result<(), Error> {
        self.push_fmt(format_args!("{v}"))
    }
    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        self.push_fmt(format_args!("{v:?}"))
    }
    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        self.push_fmt(format_args!("{v:?}"))
    }
    fn serialize_char(self, v: char) -> Result<(), Error> {
        self.push_fmt(format_args!("{v:?}"))
    }
    fn serialize_str(self, v: &str) -> Result<(), Error> {
        let max = self.opts.max_str;
        match v.char_indices().nth(max) {
            None => self.push_fmt(format_args!("{v:?}")),
            Some((at, _)) => {
                let head = v.get(..at).unwrap_or_default();
                self.push_fmt(format_args!("{head:?}"))?;
                self.out.pop(); // the closing quote
                self.push_fmt(format_args!("{ELLIPSIS}\" ({} bytes)", v.len()))
            }
        }
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), Error> {
        self.push_fmt(format_args!("<{} bytes: ", v.len()))?;
        for b in v.iter().take(8) {
            self.push_fmt(format_args!("{b:02x}"))?;
        }
        if v.len() > 8 {
            self.push(ELLIPSIS)?;
        }
        self.push(">")
    }
    fn serialize_none(self) -> Result<(), Error> {
        self.push("None")
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        self.push("Some(")?;
        self.nested(value)?;
        self.push(")")
    }
    fn serialize_unit(self) -> Result<(), Error> {
        self.push("()")
    }
    fn serialize_unit_struct(self, name: &'static str) -> Result<(), Error> {
        self.push(name)
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        self.push(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.push(name)?;
        self.push("(")?;
        self.nested(value)?;
        self.push(")")
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.push(variant)?;
        self.push("(")?;
        self.nested(value)?;
        self.push(")")
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Compound<'a>, Error> {
        self.open("", "[", "]", len)
    }
    fn serialize_tuple(self, len: usize) -> Result<Compound<'a>, Error> {
        self.open("", "(", ")", Some(len))
    }
    fn serialize_tuple_struct(self, name: &'static str, len: usize) -> Result<Compound<'a>, Error> {
        self.open(name, "(", ")", Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Compound<'a>, Error> {
        self.open(variant, "(", ")", Some(len))
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Compound<'a>, Error> {
        self.open("", "{", "}", len)
    }
    fn serialize_struct(self, name: &'static str, len: usize) -> Result<StructCompound<'a>, Error> {
        if name == "Array" && len == 3 {
            return Ok(StructCompound::Array(Box::new(ArrayState {
                s: self,
                dims: None,
                data: None,
                ok: true,
            })));
        }
        if name == "Shelved" && len == 3 {
            return Ok(StructCompound::Shelved(ShelvedState {
                s: self,
                function: None,
                key: None,
                ok: true,
            }));
        }
        let mut prefix = String::with_capacity(name.len() + 1);
        prefix.push_str(name);
        prefix.push(' ');
        self.open(&prefix, "{ ", " }", Some(len))
            .map(StructCompound::Plain)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Compound<'a>, Error> {
        let prefix = format!("{variant} ");
        self.open(&prefix, "{ ", " }", Some(len))
    }
    fn collect_str<T: fmt::Display + ?Sized>(self, value: &T) -> Result<(), Error> {
        // Bounded: render into a capped writer, then show as a string.
        let mut w = Capped::new(self.opts.max_str * 4 + 8);
        let _ = write!(w, "{value}");
        self.serialize_str(&w.buf)
    }
}

impl ser::SerializeSeq for Compound<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }
    fn end(mut self) -> Result<(), Error> {
        self.finish()
    }
}

impl ser::SerializeTuple for Compound<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }
    fn end(mut self) -> Result<(), Error> {
        self.finish()
    }
}

impl ser::SerializeTupleStruct for Compound<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }
    fn end(mut self) -> Result<(), Error> {
        self.finish()
    }
}

impl ser::SerializeTupleVariant for Compound<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }
    fn end(mut self) -> Result<(), Error> {
        self.finish()
    }
}

impl ser::SerializeMap for Compound<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        self.element(key)?;
        self.s.push(": ")
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.s.nested(value)
    }
    fn end(mut self) -> Result<(), Error> {
        self.finish()
    }
}

impl ser::SerializeStructVariant for Compound<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.field(key, value)
    }
    fn end(mut self) -> Result<(), Error> {
        self.finish()
    }
}

/// A struct: plain, or an ndarray array recognised by its serde shape.
enum StructCompound<'a> {
    Plain(Compound<'a>),
    Array(Box<ArrayState<'a>>),
    Shelved(ShelvedState<'a>),
}

/// A shelved handle: its function and key, read as the fields go by.
struct ShelvedState<'a> {
    s: &'a mut Summarizer,
    function: Option<String>,
    /// `Some(None)`: a handle with no key (held in memory only).
    key: Option<Option<String>>,
    /// Still looks like a handle (fields `function`, `key`, `location`).
    ok: bool,
}

struct ArrayState<'a> {
    s: &'a mut Summarizer,
    dims: Option<Vec<usize>>,
    data: Option<DataProbe>,
    /// Still looks like an ndarray array (fields `v`, `dim`, `data`).
    ok: bool,
}

impl ser::SerializeStruct for StructCompound<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        match self {
            StructCompound::Plain(c) => c.field(key, value),
            StructCompound::Array(a) => {
                match key {
                    "v" => {}
                    "dim" => {
                        let mut d = DimProbe(Vec::new());
                        match value.serialize(&mut d) {
                            Ok(()) => a.dims = Some(d.0),
                            Err(_) => a.ok = false,
                        }
                    }
                    "data" => {
                        let mut p = DataProbe::new(a.s.opts);
                        match value.serialize(&mut p) {
                            Ok(()) | Err(Error::Done) => a.data = Some(p),
                            Err(_) => a.ok = false,
                        }
                    }
                    _ => a.ok = false,
                }
                Ok(())
            }
            StructCompound::Shelved(h) => {
                let probe = StrProbe { max: 200 };
                match (key, value.serialize(probe)) {
                    ("function", Ok(Some(f))) => h.function = Some(f),
                    ("key", Ok(k)) => h.key = Some(k),
                    ("location", Ok(_)) => {}
                    _ => h.ok = false,
                }
                Ok(())
            }
        }
    }
    fn end(self) -> Result<(), Error> {
        match self {
            StructCompound::Plain(mut c) => c.finish(),
            StructCompound::Array(a) => {
                let ArrayState { s, dims, data, ok } = *a;
                match (ok, dims, data) {
                    (true, Some(dims), Some(data)) => {
                        s.push_fmt(format_args!("array({}, shape={dims:?}, [", data.dtype))?;
                        s.push(&data.values.join(", "))?;
                        let total: Option<usize> =
                            dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
                        if total.is_none_or(|t| t > data.values.len()) {
                            if !data.values.is_empty() {
                                s.push(", ")?;
                            }
                            s.push(ELLIPSIS)?;
                        }
                        s.push("])")
                    }
                    _ => s.push("Array { … }"),
                }
            }
            StructCompound::Shelved(h) => match (h.ok, h.function, h.key) {
                (true, Some(function), Some(key)) => {
                    let name = function.rsplit("::").next().unwrap_or(&function);
                    let key = match &key {
                        Some(k) => k.get(..8).unwrap_or(k),
                        None => "unstored",
                    };
                    h.s.push_fmt(format_args!("{name}@{key}"))
                }
                _ => h.s.push("Shelved { … }"),
            },
        }
    }
}

/// A `fmt::Write` that keeps at most `cap` bytes.
struct Capped {
    buf: String,
    cap: usize,
}

impl Capped {
    fn new(cap: usize) -> Self {
        Capped {
            buf: String::new(),
            cap,
        }
    }
}

impl fmt::Write for Capped {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.cap.saturating_sub(self.buf.len());
        if room == 0 {
            return Err(fmt::Error);
        }
        let mut take = s.len().min(room);
        while !s.is_char_boundary(take) {
            take -= 1;
        }
        self.buf.push_str(s.get(..take).unwrap_or_default());
        if take < s.len() {
            Err(fmt::Error)
        } else {
            Ok(())
        }
    }
}

mod probes;
use probes::{DataProbe, DimProbe, StrProbe};

#[cfg(test)]
mod tests;
