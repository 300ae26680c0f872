//! Typed calls of wasm exports with numeric parameters and results, as
//! wasmtime's `TypedFunc` (whose types stay out of this crate's API): the
//! signature is checked once, each call runs under the interpreter's limits.

use std::marker::PhantomData;

use wasmtime::ValType;

use super::*;

mod sealed {
    use wasmtime::{Val, ValType};

    /// One numeric wasm value.
    pub trait Scalar: Sized {
        const TYPE: ValType;
        fn into_val(self) -> Val;
        fn from_val(v: &Val) -> Option<Self>;
    }

    /// A list of numeric wasm values: `()`, a scalar, or a tuple of them.
    pub trait Values: Sized {
        fn types() -> Vec<ValType>;
        fn into_vals(self) -> Vec<Val>;
        fn from_vals(v: &[Val]) -> Option<Self>;
    }
}

use sealed::{Scalar, Values};

/// The parameter or result list of a typed call: `()`, `i32`, `i64`, `f32`,
/// `f64`, or a tuple of up to four of them.
pub trait WasmValues: Values {}
impl<T: Values> WasmValues for T {}

macro_rules! scalar {
    ($t:ty, $vt:ident, $get:ident) => {
        impl Scalar for $t {
            const TYPE: ValType = ValType::$vt;
            fn into_val(self) -> Val {
                Val::from(self)
            }
            fn from_val(v: &Val) -> Option<Self> {
                v.$get()
            }
        }
        impl Values for $t {
            fn types() -> Vec<ValType> {
                vec![<$t as Scalar>::TYPE]
            }
            fn into_vals(self) -> Vec<Val> {
                vec![self.into_val()]
            }
            fn from_vals(v: &[Val]) -> Option<Self> {
                match v {
                    [x] => <$t as Scalar>::from_val(x),
                    _ => None,
                }
            }
        }
    };
}
scalar!(i32, I32, i32);
scalar!(i64, I64, i64);
scalar!(f32, F32, f32);
scalar!(f64, F64, f64);

impl Values for () {
    fn types() -> Vec<ValType> {
        Vec::new()
    }
    fn into_vals(self) -> Vec<Val> {
        Vec::new()
    }
    fn from_vals(v: &[Val]) -> Option<Self> {
        v.is_empty().then_some(())
    }
}

macro_rules! tuple {
    ($($n:ident $i:tt),+) => {
        impl<$($n: Scalar),+> Values for ($($n,)+) {
            fn types() -> Vec<ValType> {
                vec![$($n::TYPE),+]
            }
            fn into_vals(self) -> Vec<Val> {
                vec![$(self.$i.into_val()),+]
            }
            fn from_vals(v: &[Val]) -> Option<Self> {
                let n = [$($i),+].len();
                if v.len() != n {
                    return None;
                }
                Some(($($n::from_val(&v[$i])?,)+))
            }
        }
    };
}
tuple!(A 0);
tuple!(A 0, B 1);
tuple!(A 0, B 1, C 2);
tuple!(A 0, B 1, C 2, D 3);

/// A wasm export with a checked numeric signature, from
/// [`Interpreter::typed`]. Cheap to clone; each call is a run of its
/// interpreter, under its limits.
#[derive(Debug, Clone)]
pub struct TypedCall<P, R> {
    interp: Interpreter,
    name: String,
    _types: PhantomData<fn(P) -> R>,
}

fn signature(types: &[ValType]) -> String {
    let names: Vec<String> = types.iter().map(ToString::to_string).collect();
    format!("({})", names.join(", "))
}

impl Interpreter {
    /// The export `name` as a typed call taking `P` and returning `R`
    /// (`()`, `i32`, `i64`, `f32`, `f64`, or tuples of up to four), as
    /// wasmtime's `TypedFunc`.
    ///
    /// # Errors
    /// [`Error::NoSuchExport`] when there is no such function,
    /// [`Error::WrongSignature`] when its type is not `P -> R`,
    /// [`Error::InterpreterClosed`] / [`Error::InterpreterRunning`].
    pub fn typed<P: WasmValues, R: WasmValues>(
        &self,
        name: &str,
    ) -> Result<TypedCall<P, R>, Error> {
        self.with_live(|_, live| {
            let Some(func) = live.instance.get_func(&mut live.store, name) else {
                return (Err(Error::NoSuchExport(name.to_string())), false);
            };
            let ty = func.ty(&live.store);
            let (params, results): (Vec<ValType>, Vec<ValType>) =
                (ty.params().collect(), ty.results().collect());
            let same = |a: &[ValType], b: &[ValType]| {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| ValType::eq(x, y))
            };
            if !same(&params, &P::types()) || !same(&results, &R::types()) {
                return (
                    Err(Error::WrongSignature {
                        name: name.to_string(),
                        expected: format!(
                            "{} -> {}",
                            signature(&P::types()),
                            signature(&R::types())
                        ),
                        found: format!("{} -> {}", signature(&params), signature(&results)),
                    }),
                    false,
                );
            }
            (Ok(()), false)
        })?;
        Ok(TypedCall {
            interp: self.clone(),
            name: name.to_string(),
            _types: PhantomData,
        })
    }
}

impl<P: WasmValues, R: WasmValues> TypedCall<P, R> {
    /// Calls it with `params`.
    ///
    /// # Errors
    /// As [`Interpreter::run`], plus [`Error::Guest`] when the call failed
    /// (a trap, a limit).
    pub fn call(&self, params: P) -> Result<R, Error> {
        let name = &self.name;
        self.interp.with_live(|me, live| {
            let Some(func) = live.instance.get_func(&mut live.store, name) else {
                return (Err(Error::NoSuchExport(name.clone())), false);
            };
            me.prepare(&mut live.store, (None, None));
            let started = Instant::now();
            let mut results = vec![Val::I32(0); R::types().len()];
            let prev = CURRENT.with(|c| c.replace(me.inner.id));
            let stop = live.store.data().stopper();
            let call =
                stop.drive(func.call_async(&mut live.store, &params.into_vals(), &mut results));
            CURRENT.with(|c| c.set(prev));
            let outcome = match call {
                Ok(()) => Outcome::default(),
                Err(e) => classify(&e),
            };
            let r = me.finish(&mut live.store, outcome, None, started.elapsed());
            let r = r.check().and_then(|_| {
                R::from_vals(&results).ok_or_else(|| Error::NoSuchExport(name.clone()))
            });
            (r, false)
        })
    }
}
