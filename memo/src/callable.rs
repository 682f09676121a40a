//! Calling a function with its arguments as one value.
//!
//! A function of one argument takes it directly; a function of several takes
//! a tuple. The second type parameter of [`Callable`] (a function-pointer
//! type naming the arity) keeps the implementations apart, so that a function
//! taking one tuple and a function taking two arguments never overlap, and
//! type inference picks the one the function actually has.

/// A function that can be called with `Args`.
///
/// Implemented for every `Fn` of one to six arguments; `Marker` is inferred
/// and never written by users.
pub trait Callable<Args, Marker> {
    /// What the function returns.
    type Output;

    /// Calls the function.
    fn call_with(&self, args: Args) -> Self::Output;

    /// The name (and source, when known) that identifies the function in the
    /// cache: by default its type name, which for a function item is its path.
    fn identity(&self) -> crate::Identity {
        crate::Identity::of_type::<Self>()
    }

    /// How many arguments the function takes (a function of several takes
    /// them as one tuple): each gets its own digest (see
    /// [`why`](crate::why)).
    fn arity(&self) -> usize {
        1
    }
}

impl<F, A, R> Callable<A, fn(A) -> R> for F
where
    F: Fn(A) -> R,
{
    type Output = R;

    fn call_with(&self, args: A) -> R {
        self(args)
    }
}

macro_rules! callable_tuple {
    ($($arg:ident),+) => {
        impl<F, $($arg,)+ R> Callable<($($arg,)+), fn($($arg),+) -> R> for F
        where
            F: Fn($($arg),+) -> R,
        {
            type Output = R;

            #[allow(non_snake_case)]
            fn call_with(&self, ($($arg,)+): ($($arg,)+)) -> R {
                self($($arg),+)
            }

            fn arity(&self) -> usize {
                [$(stringify!($arg)),+].len()
            }
        }
    };
}

callable_tuple!(A, B);
callable_tuple!(A, B, C);
callable_tuple!(A, B, C, D);
callable_tuple!(A, B, C, D, E);
callable_tuple!(A, B, C, D, E, G);

#[cfg(test)]
mod tests {
    use super::*;

    fn call<F: Callable<Args, M>, Args, M>(f: &F, args: Args) -> F::Output {
        f.call_with(args)
    }

    fn one(x: &str) -> usize {
        x.len()
    }
    fn two(x: &[f64], scale: f64) -> f64 {
        x.iter().sum::<f64>() * scale
    }
    fn tuple_arg(pair: (u8, u8)) -> u8 {
        pair.0 + pair.1
    }

    #[test]
    fn arity_is_inferred_from_the_function() {
        assert_eq!(call(&one, "abc"), 3);
        assert_eq!(call(&two, (&[1.0, 2.0][..], 2.0)), 6.0);
        assert_eq!(call(&tuple_arg, (1, 2)), 3);
        let closure = |a: u32, b: u32, c: u32| a + b + c;
        assert_eq!(call(&closure, (1, 2, 3)), 6);
    }
}
