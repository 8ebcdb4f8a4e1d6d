//! The function table of a template: each function's Go parameter types (which decide how
//! literal and computed arguments are checked and converted, as Go's reflection does) and its
//! implementation. Builtins and maand functions are both registered here.

use std::collections::HashMap;

use super::value::Value;

/// Go parameter types that appear in the builtin and maand function signatures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParamType {
    /// `interface{}` or `reflect.Value`: any value, nil included.
    Any,
    String,
    Int,
    /// `[]string`
    Strings,
}

impl ParamType {
    pub fn go_name(self) -> &'static str {
        match self {
            ParamType::Any => "interface {}",
            ParamType::String => "string",
            ParamType::Int => "int",
            ParamType::Strings => "[]string",
        }
    }

    /// Go `canBeNil`: an untyped nil may be passed.
    pub fn can_be_nil(self) -> bool {
        matches!(self, ParamType::Any | ParamType::Strings)
    }

    /// Go assignability of a computed value to the parameter.
    pub fn accepts(self, value: &Value) -> bool {
        match self {
            ParamType::Any => true,
            ParamType::String => matches!(value, Value::Str(_)),
            ParamType::Int => matches!(value, Value::Int(_)),
            ParamType::Strings => matches!(value, Value::Strings(_)),
        }
    }
}

pub(crate) type FuncResult = Result<Value, String>;
pub(crate) type FuncImpl<'a> = Box<dyn Fn(&[Value]) -> FuncResult + 'a>;

pub(crate) struct Function<'a> {
    /// Fixed parameters.
    pub params: &'static [ParamType],
    /// Type of the trailing variadic parameter, if any.
    pub variadic: Option<ParamType>,
    /// A text/template builtin (`and`/`or` short-circuit only as builtins).
    pub builtin: bool,
    pub call: FuncImpl<'a>,
}

#[derive(Default)]
pub(crate) struct FuncTable<'a> {
    functions: HashMap<&'static str, Function<'a>>,
}

impl<'a> FuncTable<'a> {
    pub fn add(
        &mut self,
        name: &'static str,
        params: &'static [ParamType],
        variadic: Option<ParamType>,
        builtin: bool,
        call: FuncImpl<'a>,
    ) {
        self.functions.insert(name, Function { params, variadic, builtin, call });
    }

    pub fn get(&self, name: &str) -> Option<&Function<'a>> {
        self.functions.get(name)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.functions.contains_key(name)
    }
}
