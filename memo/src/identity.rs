//! Which function a cache entry belongs to: its name and its version.

use crate::Callable;

/// A function definition whose source is part of its identity: what
/// [`memoize!`](crate::memoize) makes. Editing the body changes the source,
/// so the cache keys of the new code never meet the old entries.
///
/// It is a constant holding a plain function pointer: call the function
/// directly with `(square.func)(&a)`, or cache it with `memory.cache(square)`.
#[derive(Debug, Clone, Copy)]
pub struct Definition<F> {
    /// The function.
    pub func: F,
    /// Its full path (`my_crate::stats::square`).
    pub name: &'static str,
    /// Its source tokens, as `stringify!` renders them.
    pub source: &'static str,
}

impl<F> Definition<F> {
    /// A definition; normally written by [`memoize!`](crate::memoize).
    pub const fn new(func: F, name: &'static str, source: &'static str) -> Definition<F> {
        Definition { func, name, source }
    }
}

impl<F, Args, M> Callable<Args, M> for Definition<F>
where
    F: Callable<Args, M>,
{
    type Output = F::Output;

    fn call_with(&self, args: Args) -> Self::Output {
        self.func.call_with(args)
    }

    fn identity(&self) -> Identity {
        Identity {
            name: self.name.to_string(),
            source: Some(self.source),
        }
    }
}

/// What names a function in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The function's path, or the name given to a closure.
    pub name: String,
    /// Its source tokens, when known ([`memoize!`](crate::memoize)).
    pub source: Option<&'static str>,
}

impl Identity {
    /// The identity of a function item from its type name (`my_crate::square`).
    pub fn of_type<F: ?Sized>() -> Identity {
        Identity {
            name: std::any::type_name::<F>().to_string(),
            source: None,
        }
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

/// Wraps a function definition so that its source is part of its cache key:
/// editing the body invalidates the entries the old body made.
///
/// ```
/// use jobcache_memo::memoize;
///
/// memoize! {
///     /// The square of every element.
///     pub fn square(values: &[f64]) -> Vec<f64> {
///         values.iter().map(|x| x * x).collect()
///     }
/// }
///
/// // `square` is a constant holding the function, its path and its source.
/// assert_eq!((square.func)(&[3.0]), vec![9.0]);
/// assert!(square.name.ends_with("::square"));
/// assert!(square.source.contains("x * x"));
/// ```
///
/// Then `memory.cache(square)` caches it like any function. Parameters are
/// plain `name: Type` (write `let mut x = x;` in the body for a mutable one);
/// generic functions are not supported.
///
/// # Limitations
/// Only the tokens of this definition are hashed: a change in a function it
/// calls, or in a constant it reads, is not seen. Give such a function an
/// explicit version (`Memory::cache_versioned`) and bump it by hand.
#[macro_export]
macro_rules! memoize {
    (
        $(#[$meta:meta])*
        $vis:vis fn $name:ident ( $($arg:ident : $ty:ty),* $(,)? ) -> $ret:ty $body:block
    ) => {
        $(#[$meta])*
        #[allow(non_upper_case_globals)]
        $vis const $name: $crate::Definition<fn($($ty),*) -> $ret> = $crate::Definition::new(
            {
                fn $name($($arg: $ty),*) -> $ret $body
                $name
            },
            concat!(module_path!(), "::", stringify!($name)),
            stringify!(fn $name($($arg: $ty),*) -> $ret $body),
        );
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(x: u8) -> u8 {
        x
    }

    #[test]
    fn function_items_are_named_by_path_and_closures_are_refused() {
        let id = plain.identity();
        assert_eq!(id.name, "jobcache_memo::identity::tests::plain");
        assert_eq!(id.ambiguity(), None);
        let closure = |x: u8| x;
        assert_eq!(closure.identity().ambiguity(), Some("a closure"));
        let pointer: fn(u8) -> u8 = plain;
        assert_eq!(pointer.identity().ambiguity(), Some("a function pointer"));
    }

    memoize! {
        fn add(a: u32, b: u32) -> u32 { a + b }
    }

    #[test]
    fn memoize_keeps_the_source_and_the_path() {
        let id = add.identity();
        assert_eq!(id.name, "jobcache_memo::identity::tests::add");
        assert_eq!(
            id.source,
            Some("fn add (a : u32, b : u32) -> u32 { a + b }")
        );
        assert_eq!(add.call_with((2, 3)), 5);
    }
}
