//! Which function a cache entry belongs to: its name and its version.
//!
//! A function item is named by its path (`std::any::type_name` of its type).
//! [`memoize!`](crate::memoize) also records the function's source tokens in
//! a registry assembled at link time (the `inventory` crate), found again
//! from that path, so that the source becomes part of the version without
//! changing how the function is written, called or cached.

/// One function's source, recorded by [`memoize!`](crate::memoize).
#[doc(hidden)]
#[derive(Debug)]
pub struct SourceRecord {
    /// `module_path!()` where the function is defined.
    pub module: &'static str,
    /// The function's name.
    pub name: &'static str,
    /// Its tokens, as `stringify!` renders them.
    pub source: &'static str,
}

inventory::collect!(SourceRecord);

/// What names a function in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The function's path (`my_crate::stats::square`).
    pub name: String,
    /// Its source tokens, when it was defined with
    /// [`memoize!`](crate::memoize).
    pub source: Option<String>,
}

impl Identity {
    /// The identity of a function item from its type name, with its source
    /// if [`memoize!`](crate::memoize) recorded it.
    pub fn of_type<F: ?Sized>() -> Identity {
        let name = std::any::type_name::<F>().to_string();
        let source = recorded_source(&name);
        Identity { name, source }
    }

    /// Why this name cannot tell functions apart, if it cannot: closures and
    /// function pointers have type names shared by many functions.
    pub fn ambiguity(&self) -> Option<&'static str> {
        if self.name.contains("{{closure}}") {
            Some("a closure")
        } else if self.name.starts_with("fn(") || self.name.starts_with("unsafe fn(") {
            Some("a function pointer")
        } else if self.name.starts_with('&') || self.name.starts_with('<') {
            Some("a reference or generic wrapper")
        } else {
            None
        }
    }
}

/// The recorded source of the function whose type name is `type_name`.
///
/// A function defined inside another function has that function in its
/// type name (`app::main::step`) but not in its `module_path!()` (`app`),
/// so a record matches when the type name starts with its module and ends
/// with its name. Two memoized functions of one name inside two functions
/// of one module both match: their sources are then both used, so editing
/// either invalidates the results of both (never a stale result).
fn recorded_source(type_name: &str) -> Option<String> {
    // A generic function's type name ends with its type arguments.
    let path = type_name.split('<').next().unwrap_or(type_name);
    let (_, last) = path.rsplit_once("::")?;
    let mut sources: Vec<&str> = inventory::iter::<SourceRecord>
        .into_iter()
        .filter(|r| r.name == last && path.starts_with(r.module))
        .filter(|r| path[r.module.len()..].starts_with("::"))
        .map(|r| r.source)
        .collect();
    sources.sort_unstable();
    sources.dedup();
    (!sources.is_empty()).then(|| sources.join("\n"))
}

/// Defines a function whose source is part of its cache key: editing the
/// body (its tokens; comments and formatting aside) invalidates the results
/// the old body stored. The tokens are hashed as `stringify!` renders them,
/// so a new compiler that renders them differently recomputes once (never
/// returns a stale result).
///
/// The function is an ordinary function — call it, pass it around, cache it
/// with `memory.cache(f)` — only its definition is wrapped:
///
/// ```
/// use jobcache_memo::{memoize, Memory};
///
/// memoize! {
///     /// The square of every element.
///     pub fn square(values: &[f64]) -> Vec<f64> {
///         values.iter().map(|x| x * x).collect()
///     }
/// }
///
/// # fn main() -> Result<(), jobcache_memo::Error> {
/// # let dir = tempfile::tempdir().map_err(|_| jobcache_memo::Error::Disabled)?;
/// assert_eq!(square(&[3.0]), vec![9.0]);
/// let mem = Memory::builder(dir.path()).verbose(0).build()?;
/// let square = mem.cache(square);
/// assert_eq!(square.call(&[3.0][..]), vec![9.0]);
/// # Ok(())
/// # }
/// ```
///
/// # Limitations
/// - Only the tokens of this definition are hashed: a change in a function
///   it calls, or in a constant it reads, is not seen. Give such a function
///   an explicit version too ([`Cached::version`](crate::Cached::version))
///   and bump it by hand.
/// - Free functions only (not methods in an `impl` block); `async fn`s too
///   (cache them with [`Cached::call_async`](crate::Cached::call_async)).
#[macro_export]
macro_rules! memoize {
    ($(#[$meta:meta])* $vis:vis async fn $name:ident $($rest:tt)*) => {
        $(#[$meta])*
        $vis async fn $name $($rest)*

        $crate::__private::inventory::submit! {
            $crate::__private::SourceRecord {
                module: module_path!(),
                name: stringify!($name),
                source: stringify!(async fn $name $($rest)*),
            }
        }
    };
    ($(#[$meta:meta])* $vis:vis fn $name:ident $($rest:tt)*) => {
        $(#[$meta])*
        $vis fn $name $($rest)*

        $crate::__private::inventory::submit! {
            $crate::__private::SourceRecord {
                module: module_path!(),
                name: stringify!($name),
                source: stringify!(fn $name $($rest)*),
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use crate::Callable;

    fn plain(x: u8) -> u8 {
        x
    }

    #[test]
    fn function_items_are_named_by_path_and_closures_are_refused() {
        let id = plain.identity();
        assert_eq!(id.name, "jobcache_memo::identity::tests::plain");
        assert_eq!(id.source, None);
        assert_eq!(id.ambiguity(), None);
        let closure = |x: u8| x;
        assert_eq!(closure.identity().ambiguity(), Some("a closure"));
        let pointer: fn(u8) -> u8 = plain;
        assert_eq!(pointer.identity().ambiguity(), Some("a function pointer"));
    }

    memoize! {
        fn add(a: u32, b: u32) -> u32 { a + b }
    }

    memoize! {
        fn generic<T: Clone>(x: &T, mut n: usize) -> Vec<T> {
            let mut out = Vec::new();
            while n > 0 { out.push(x.clone()); n -= 1; }
            out
        }
    }

    #[test]
    fn memoize_records_the_source_under_the_path() {
        let id = add.identity();
        assert_eq!(id.name, "jobcache_memo::identity::tests::add");
        // `stringify!`'s spacing is the compiler's: compare without it.
        let squeezed: String = id.source.unwrap_or_default().split_whitespace().collect();
        assert_eq!(squeezed, "fnadd(a:u32,b:u32)->u32{a+b}");
        assert_eq!(add.call_with((2, 3)), 5);
        let g = generic::<u8>;
        assert!(g.identity().source.is_some_and(|s| s.contains("out.push")));
        assert_eq!(generic(&1u8, 2), vec![1, 1]);
    }

    #[test]
    fn functions_nested_in_functions_are_found() {
        memoize! {
            fn inner(x: u8) -> u8 { x + 1 }
        }
        let id = inner.identity();
        assert!(id
            .name
            .ends_with("tests::functions_nested_in_functions_are_found::inner"));
        let squeezed: String = id.source.unwrap_or_default().split_whitespace().collect();
        assert_eq!(squeezed, "fninner(x:u8)->u8{x+1}");
    }
}
