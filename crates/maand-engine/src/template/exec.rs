//! Template execution: a port of Go's `text/template/exec.go`. It walks the parse tree with a
//! variable stack (marks and pops exactly where Go does, so `$v = x` inside `range` changes the
//! outer variable), evaluates pipelines, checks and converts arguments against the Go parameter
//! types of each function, short-circuits `and`/`or`, and tracks the node being evaluated so an
//! error names the line and the action that failed. Every node walked and every `range` iteration
//! counts against the rendering's time limit; the output and every value a function returns are
//! measured against its size limit.

use super::ast::{
    Arg, BranchKind, BranchNode, CommandNode, ListNode, Node, NumberNode, PipeNode, TemplateNode, VariableNode,
};
use super::functions::{FuncTable, Function, ParamType};
use super::go_fmt::print_action_value;
use super::limits::Budget;
use super::parser::TreeSet;
use super::value::Value;

/// A failed execution: where (byte offset of the node), the node as source text, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExecError {
    pub pos: usize,
    pub context: String,
    pub message: String,
}

/// Deepest nesting of executed bodies (`if`/`with`/`range` bodies and `{{template}}` calls)
/// before execution stops with an error: Go allows 100000 template calls on its growable
/// stacks; this bound keeps a 2 MiB thread stack safe.
pub(crate) const MAX_EXEC_DEPTH: usize = 500;

/// Runs template `name` of `trees` with `data` as dot and `$`, within `budget`.
pub(crate) fn execute(
    trees: &TreeSet,
    name: &str,
    funcs: &FuncTable<'_>,
    data: Value,
    budget: &Budget,
) -> Result<String, ExecError> {
    let Some(tree) = trees.get(name) else {
        return Err(ExecError {
            pos: 0,
            context: String::new(),
            message: format!("{name:?} is an incomplete or empty template"),
        });
    };
    let mut executor =
        Executor { trees, funcs, budget, vars: vec![("$", data.clone())], node: None, depth: 0, out: String::new() };
    match executor.walk_list(&data, tree) {
        Ok(()) => Ok(executor.out),
        Err(Flow::Error(e)) => Err(*e),
        Err(Flow::Break | Flow::Continue) => {
            Err(ExecError { pos: 0, context: String::new(), message: "break or continue outside range".to_string() })
        }
    }
}

/// Non-local exits: `{{break}}`, `{{continue}}` and errors.
enum Flow {
    Break,
    Continue,
    Error(Box<ExecError>),
}

type Exec<T> = Result<T, Flow>;

/// The node being evaluated (Go `state.node`), for error reports.
#[derive(Clone, Copy)]
enum At<'t> {
    Node(&'t Node),
    Pipe(&'t PipeNode),
    Arg(&'t Arg),
    Command(&'t CommandNode),
}

impl At<'_> {
    fn pos(&self) -> usize {
        match self {
            At::Node(n) => n.pos(),
            At::Pipe(p) => p.pos,
            At::Arg(a) => a.pos(),
            At::Command(c) => c.pos,
        }
    }

    fn context(&self) -> String {
        match self {
            At::Node(n) => n.to_string(),
            At::Pipe(p) => p.to_string(),
            At::Arg(a) => a.to_string(),
            At::Command(c) => c.to_string(),
        }
    }
}

struct Executor<'t, 'f> {
    trees: &'t TreeSet,
    funcs: &'t FuncTable<'f>,
    budget: &'t Budget,
    /// The variable stack: `$`, then declarations in scope, innermost last.
    vars: Vec<(&'t str, Value)>,
    node: Option<At<'t>>,
    depth: usize,
    out: String,
}

impl<'t> Executor<'t, '_> {
    fn at(&mut self, at: At<'t>) {
        self.node = Some(at);
    }

    fn error<T>(&self, message: impl Into<String>) -> Exec<T> {
        let (pos, context) = self.node.map_or((0, String::new()), |n| (n.pos(), n.context()));
        Err(Flow::Error(Box::new(ExecError { pos, context, message: message.into() })))
    }

    fn walk_list(&mut self, dot: &Value, list: &'t ListNode) -> Exec<()> {
        list.nodes.iter().try_for_each(|node| self.walk(dot, node))
    }

    /// One step of execution counted against the time limit.
    fn step(&self) -> Exec<()> {
        self.budget.step().or_else(|message| self.error(message))
    }

    /// Append to the output, within the size limit.
    fn write(&mut self, text: &str) -> Exec<()> {
        self.budget.output(self.out.len() + text.len()).or_else(|message| self.error(message))?;
        self.out.push_str(text);
        Ok(())
    }

    fn walk(&mut self, dot: &Value, node: &'t Node) -> Exec<()> {
        self.at(At::Node(node));
        self.step()?;
        match node {
            Node::Text(t) => self.write(&t.text),
            Node::Action(action) => {
                let value = self.eval_pipeline(dot, &action.pipe)?;
                if action.pipe.decl.is_empty() {
                    self.at(At::Node(node));
                    self.write(&print_action_value(&value))?;
                }
                Ok(())
            }
            Node::Branch(branch) if branch.kind == BranchKind::Range => self.walk_range(dot, node, branch),
            Node::Branch(branch) => self.walk_if_or_with(dot, branch),
            Node::Template(t) => self.walk_template(dot, node, t),
            Node::Break(_) => Err(Flow::Break),
            Node::Continue(_) => Err(Flow::Continue),
        }
    }

    /// Runs `body` one level deeper, refusing to go past [`MAX_EXEC_DEPTH`].
    fn nested<T>(&mut self, body: impl FnOnce(&mut Self) -> Exec<T>) -> Exec<T> {
        if self.depth >= MAX_EXEC_DEPTH {
            return self.error(format!("exceeded maximum template depth ({MAX_EXEC_DEPTH})"));
        }
        self.depth += 1;
        let result = body(self);
        self.depth -= 1;
        result
    }

    fn walk_if_or_with(&mut self, dot: &Value, branch: &'t BranchNode) -> Exec<()> {
        let mark = self.vars.len();
        let result = self.nested(|ex| ex.if_or_with_body(dot, branch));
        self.vars.truncate(mark);
        result
    }

    fn if_or_with_body(&mut self, dot: &Value, branch: &'t BranchNode) -> Exec<()> {
        let value = self.eval_pipeline(dot, &branch.pipe)?;
        if value.is_true() {
            let body_dot = if branch.kind == BranchKind::With { &value } else { dot };
            self.walk_list(body_dot, &branch.list)
        } else if let Some(else_list) = &branch.else_list {
            self.walk_list(dot, else_list)
        } else {
            Ok(())
        }
    }

    fn walk_range(&mut self, dot: &Value, node: &'t Node, range: &'t BranchNode) -> Exec<()> {
        let mark = self.vars.len();
        let result = match self.range_body(dot, node, range) {
            Err(Flow::Break) => Ok(()),
            other => other,
        };
        self.vars.truncate(mark);
        result
    }

    fn range_body(&mut self, dot: &Value, node: &'t Node, range: &'t BranchNode) -> Exec<()> {
        let value = self.eval_pipeline(dot, &range.pipe)?;
        let mark = self.vars.len();
        match &value {
            Value::Strings(items) if !items.is_empty() => {
                for (i, item) in items.iter().enumerate() {
                    self.one_iteration(node, range, mark, Value::Int(i as i64), Value::string(item.as_str()))?;
                }
                return Ok(());
            }
            Value::Int(_) | Value::Byte(_) => {
                // Go 1.22+: range over an integer counts from 0.
                if range.pipe.decl.len() > 1 {
                    return self.error("can't use an integer to iterate over more than one variable");
                }
                let count = value.as_integer().unwrap_or(0);
                if count > 0 {
                    for i in 0..count {
                        let counter = match value {
                            Value::Byte(_) => Value::Byte(u8::try_from(i).unwrap_or(u8::MAX)),
                            _ => Value::Int(i),
                        };
                        self.one_iteration(node, range, mark, counter.clone(), counter)?;
                    }
                    return Ok(());
                }
            }
            Value::Strings(_) | Value::Nil => {}
            other => return self.error(format!("range can't iterate over a value of type {}", other.type_name())),
        }
        match &range.else_list {
            Some(else_list) => self.walk_list(dot, else_list),
            None => Ok(()),
        }
    }

    /// One pass of `range` (`node`, whose `BranchNode` is `range`) over its body.
    fn one_iteration(
        &mut self,
        node: &'t Node,
        range: &'t BranchNode,
        mark: usize,
        index: Value,
        elem: Value,
    ) -> Exec<()> {
        self.at(At::Node(node));
        self.step()?;
        let decl = &range.pipe.decl;
        if range.pipe.is_assign {
            // `range $i, $v = …` assigns the outer variables (Go ≥ 1.22 semantics).
            match decl.as_slice() {
                [single] => self.set_var(var_name(single), elem.clone())?,
                [first, second, ..] => {
                    self.set_var(var_name(first), index)?;
                    self.set_var(var_name(second), elem.clone())?;
                }
                [] => {}
            }
        } else {
            if !decl.is_empty() {
                self.set_top_var(1, elem.clone());
            }
            if decl.len() > 1 {
                self.set_top_var(2, index);
            }
        }
        let result = self.nested(|ex| ex.walk_list(&elem, &range.list));
        self.vars.truncate(mark);
        match result {
            Err(Flow::Continue) => Ok(()),
            other => other,
        }
    }

    fn walk_template(&mut self, dot: &Value, node: &'t Node, t: &'t TemplateNode) -> Exec<()> {
        let trees = self.trees;
        let Some(tree) = trees.get(&t.name) else {
            return self.error(format!("template {:?} not defined", t.name));
        };
        let new_dot = match &t.pipe {
            Some(pipe) => self.eval_pipeline(dot, pipe)?,
            None => Value::Nil,
        };
        self.at(At::Node(node));
        // No dynamic scoping: the called template sees only `$`.
        let saved_vars = std::mem::replace(&mut self.vars, vec![("$", new_dot.clone())]);
        let saved_node = self.node;
        let result = self.nested(|ex| ex.walk_list(&new_dot, tree));
        self.vars = saved_vars;
        self.node = saved_node;
        result
    }

    fn set_var(&mut self, name: &str, value: Value) -> Exec<()> {
        match self.vars.iter_mut().rev().find(|(n, _)| *n == name) {
            Some(slot) => {
                slot.1 = value;
                Ok(())
            }
            None => self.error(format!("undefined variable: {name}")),
        }
    }

    fn set_top_var(&mut self, n: usize, value: Value) {
        let len = self.vars.len();
        if let Some(slot) = len.checked_sub(n).and_then(|i| self.vars.get_mut(i)) {
            slot.1 = value;
        }
    }

    fn var_value(&self, name: &str) -> Exec<Value> {
        match self.vars.iter().rev().find(|(n, _)| *n == name) {
            Some((_, value)) => Ok(value.clone()),
            None => self.error(format!("undefined variable: {name}")),
        }
    }

    fn eval_pipeline(&mut self, dot: &Value, pipe: &'t PipeNode) -> Exec<Value> {
        self.at(At::Pipe(pipe));
        let mut value = None;
        for cmd in &pipe.cmds {
            value = Some(self.eval_command(dot, cmd, value)?);
        }
        let value = value.unwrap_or(Value::Nil);
        for variable in &pipe.decl {
            if pipe.is_assign {
                self.set_var(var_name(variable), value.clone())?;
            } else {
                self.vars.push((var_name(variable), value.clone()));
            }
        }
        Ok(value)
    }

    fn not_a_function(&self, first: &Arg, rest: &[Arg], piped: &Option<Value>) -> Exec<()> {
        if !rest.is_empty() || piped.is_some() {
            return self.error(format!("can't give argument to non-function {first}"));
        }
        Ok(())
    }

    /// One pipeline stage; `piped` is the previous stage's value, passed as the last argument.
    fn eval_command(&mut self, dot: &Value, cmd: &'t CommandNode, piped: Option<Value>) -> Exec<Value> {
        let Some((first, rest)) = cmd.args.split_first() else {
            return self.error("empty command");
        };
        match first {
            Arg::Field { ident, .. } => return self.eval_field_node(dot, first, ident, rest, piped),
            Arg::Chain { .. } => return self.eval_chain_node(dot, first, rest, piped),
            Arg::Identifier { name, .. } => return self.eval_function(dot, first, name, At::Command(cmd), rest, piped),
            Arg::Pipe(pipe) => {
                self.not_a_function(first, rest, &piped)?;
                return self.eval_pipeline(dot, pipe);
            }
            Arg::Variable(variable) => return self.eval_variable_node(first, variable, rest, piped),
            _ => {}
        }
        self.at(At::Arg(first));
        self.not_a_function(first, rest, &piped)?;
        match first {
            Arg::Bool(_, b) => Ok(Value::Bool(*b)),
            Arg::Dot(_) => Ok(dot.clone()),
            Arg::Nil(_) => self.error("nil is not a command"),
            Arg::Number(n) => self.ideal_constant(first, n),
            Arg::String { text, .. } => Ok(Value::string(text.as_str())),
            _ => self.error(format!("can't evaluate command {first}")),
        }
    }

    /// Go `idealConstant`: a number literal with no type context.
    fn ideal_constant(&mut self, node: &'t Arg, n: &NumberNode) -> Exec<Value> {
        self.at(At::Arg(node));
        let text = n.text.as_str();
        let is_hex_int =
            text.len() > 2 && text.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("0x")) && !text.contains(['p', 'P']);
        let is_rune = text.starts_with('\'');
        if n.is_float && !is_hex_int && !is_rune && text.contains(['.', 'e', 'E', 'p', 'P']) {
            return Ok(Value::Float(n.float64));
        }
        if n.is_int {
            return Ok(Value::Int(n.int64));
        }
        if n.is_uint {
            return self.error(format!("{text} overflows int"));
        }
        Ok(Value::Nil)
    }

    fn eval_function(
        &mut self,
        dot: &Value,
        node: &'t Arg,
        name: &str,
        call_at: At<'t>,
        rest: &'t [Arg],
        piped: Option<Value>,
    ) -> Exec<Value> {
        self.at(At::Arg(node));
        let funcs = self.funcs;
        let Some(function) = funcs.get(name) else {
            return self.error(format!("{name:?} is not a defined function"));
        };
        self.eval_call(dot, function, name, call_at, rest, piped)
    }

    /// Go `evalCall`: arity check, argument evaluation against the parameter types, the call.
    fn eval_call(
        &mut self,
        dot: &Value,
        function: &Function<'_>,
        name: &str,
        call_at: At<'t>,
        rest: &'t [Arg],
        piped: Option<Value>,
    ) -> Exec<Value> {
        let params = function.params;
        let num_in = rest.len() + usize::from(piped.is_some());
        match function.variadic {
            Some(_) if num_in < params.len() => {
                return self.error(format!(
                    "wrong number of args for {name}: want at least {} got {}",
                    params.len(),
                    rest.len()
                ));
            }
            None if num_in != params.len() => {
                return self.error(format!("wrong number of args for {name}: want {} got {num_in}", params.len()));
            }
            _ => {}
        }

        if function.builtin && (name == "and" || name == "or") {
            let stop_when = name == "or";
            let mut value = Value::Nil;
            for arg in rest {
                value = self.eval_arg(dot, Some(ParamType::Any), arg)?;
                if value.is_true() == stop_when {
                    return Ok(value);
                }
            }
            if let Some(last) = piped {
                value = self.validate_type(last, Some(ParamType::Any))?;
            }
            return Ok(value);
        }

        let num_fixed = if function.variadic.is_some() { params.len() } else { rest.len() };
        let mut argv = Vec::with_capacity(num_in);
        for (i, arg) in rest.iter().enumerate() {
            let typ = if i < num_fixed { params.get(i).copied() } else { function.variadic };
            argv.push(self.eval_arg(dot, typ, arg)?);
        }
        if let Some(last) = piped {
            let typ = match function.variadic {
                Some(variadic) if num_in > num_fixed => variadic,
                _ => params.get(num_in - 1).copied().unwrap_or(ParamType::Any),
            };
            argv.push(self.validate_type(last, Some(typ))?);
        }
        let result = (function.call)(&argv).and_then(|value| self.budget.output(value.size()).map(|()| value));
        match result {
            Ok(value) => Ok(value),
            Err(message) => {
                self.at(call_at);
                self.error(message)
            }
        }
    }

    /// Go `evalArg`: evaluates an argument and checks it against the parameter type (`None` =
    /// untyped, for the receiver of a field chain).
    fn eval_arg(&mut self, dot: &Value, typ: Option<ParamType>, arg: &'t Arg) -> Exec<Value> {
        self.at(At::Arg(arg));
        let value = match arg {
            Arg::Dot(_) => dot.clone(),
            Arg::Nil(_) => {
                return match typ {
                    Some(t) if t.can_be_nil() => Ok(zero_value(t)),
                    Some(t) => self.error(format!("cannot assign nil to {}", t.go_name())),
                    None => self.error(format!("indirection through explicit nil in {arg}")),
                };
            }
            Arg::Field { ident, .. } => self.eval_field_node(dot, arg, ident, &[], None)?,
            Arg::Variable(variable) => self.eval_variable_node(arg, variable, &[], None)?,
            Arg::Pipe(pipe) => self.eval_pipeline(dot, pipe)?,
            Arg::Identifier { name, .. } => self.eval_function(dot, arg, name, At::Arg(arg), &[], None)?,
            Arg::Chain { .. } => self.eval_chain_node(dot, arg, &[], None)?,
            Arg::Bool(..) | Arg::Number(_) | Arg::String { .. } => return self.eval_literal(typ, arg),
        };
        self.validate_type(value, typ)
    }

    /// A literal argument: Go converts it to the parameter type or rejects it.
    fn eval_literal(&mut self, typ: Option<ParamType>, arg: &'t Arg) -> Exec<Value> {
        match (typ, arg) {
            (Some(ParamType::Int), Arg::Number(n)) if n.is_int => Ok(Value::Int(n.int64)),
            (Some(ParamType::Int), _) => self.error(format!("expected integer; found {arg}")),
            (Some(ParamType::String), Arg::String { text, .. }) => Ok(Value::string(text.as_str())),
            (Some(ParamType::String), _) => self.error(format!("expected string; found {arg}")),
            (Some(ParamType::Any), Arg::Bool(_, b)) => Ok(Value::Bool(*b)),
            (Some(ParamType::Any), Arg::Number(n)) => self.ideal_constant(arg, n),
            (Some(ParamType::Any), Arg::String { text, .. }) => Ok(Value::string(text.as_str())),
            (Some(t), _) => self.error(format!("can't handle {arg} for arg of type {}", t.go_name())),
            (None, _) => self.error(format!("can't evaluate {arg}")),
        }
    }

    /// Go `validateType`: the value must be assignable to the parameter type.
    fn validate_type(&self, value: Value, typ: Option<ParamType>) -> Exec<Value> {
        let Some(typ) = typ else {
            return Ok(value);
        };
        if let Value::Nil = value {
            if typ.can_be_nil() {
                return Ok(zero_value(typ));
            }
            return self.error(format!("invalid value; expected {}", typ.go_name()));
        }
        if !typ.accepts(&value) {
            return self.error(format!("wrong type for value; expected {}; got {}", typ.go_name(), value.type_name()));
        }
        Ok(value)
    }

    fn eval_field_node(
        &mut self,
        dot: &Value,
        node: &'t Arg,
        ident: &'t [String],
        rest: &'t [Arg],
        piped: Option<Value>,
    ) -> Exec<Value> {
        self.at(At::Arg(node));
        self.eval_field_chain(dot.clone(), ident, rest, piped)
    }

    fn eval_chain_node(&mut self, dot: &Value, node: &'t Arg, rest: &'t [Arg], piped: Option<Value>) -> Exec<Value> {
        self.at(At::Arg(node));
        let Arg::Chain { node: receiver, fields, .. } = node else {
            return self.error("internal error: not a chain");
        };
        if let Arg::Nil(_) = **receiver {
            return self.error(format!("indirection through explicit nil in {node}"));
        }
        let value = self.eval_arg(dot, None, receiver)?;
        self.at(At::Arg(node));
        self.eval_field_chain(value, fields, rest, piped)
    }

    fn eval_variable_node(
        &mut self,
        node: &'t Arg,
        variable: &'t VariableNode,
        rest: &'t [Arg],
        piped: Option<Value>,
    ) -> Exec<Value> {
        self.at(At::Arg(node));
        let value = self.var_value(var_name(variable))?;
        match variable.ident.get(1..) {
            Some(fields) if !fields.is_empty() => self.eval_field_chain(value, fields, rest, piped),
            _ => {
                self.not_a_function(node, rest, &piped)?;
                Ok(value)
            }
        }
    }

    /// `.A.B.C` on `receiver`; only the last field could take arguments (and ours never do).
    fn eval_field_chain(
        &mut self,
        receiver: Value,
        fields: &[String],
        rest: &[Arg],
        piped: Option<Value>,
    ) -> Exec<Value> {
        let mut value = receiver;
        for (i, name) in fields.iter().enumerate() {
            let last = i + 1 == fields.len();
            let has_args = last && (!rest.is_empty() || piped.is_some());
            value = self.eval_field(name, has_args, value)?;
        }
        Ok(value)
    }

    fn eval_field(&self, name: &str, has_args: bool, receiver: Value) -> Exec<Value> {
        match &receiver {
            Value::Nil => Ok(Value::Nil),
            Value::Struct(s) => match s.field(name) {
                Some(_) if has_args => self.error(format!("{name} has arguments but cannot be invoked as function")),
                Some(value) => Ok(value.clone()),
                None => self.error(format!("can't evaluate field {name} in type {}", receiver.type_name())),
            },
            other => self.error(format!("can't evaluate field {name} in type {}", other.type_name())),
        }
    }
}

fn var_name(variable: &VariableNode) -> &str {
    variable.ident.first().map_or("$", String::as_str)
}

/// Go `reflect.Zero` of a parameter type that can be nil.
fn zero_value(typ: ParamType) -> Value {
    match typ {
        ParamType::Strings => Value::strings(Vec::new()),
        _ => Value::Nil,
    }
}
