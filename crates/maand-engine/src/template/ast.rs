//! The parse tree of a template (Go `text/template/parse` nodes). Every node keeps the byte
//! offset it starts at (for error lines) and prints back as template source the way Go's
//! `Node.String()` does (the error context).

use std::fmt;

/// A sequence of nodes: a template body or a branch of a control action.
#[derive(Debug, Clone, Default)]
pub(crate) struct ListNode {
    pub nodes: Vec<Node>,
}

impl ListNode {
    /// Go `parse.IsEmptyTree`: only whitespace text (comments are not kept).
    pub fn is_empty_tree(&self) -> bool {
        self.nodes.iter().all(|n| matches!(n, Node::Text(t) if t.text.trim_matches(is_go_space).is_empty()))
    }
}

/// Go `bytes.TrimSpace` space set (ASCII spaces plus Unicode white space).
fn is_go_space(c: char) -> bool {
    c.is_whitespace()
}

#[derive(Debug, Clone)]
pub(crate) enum Node {
    Text(TextNode),
    Action(ActionNode),
    Branch(BranchNode),
    Template(TemplateNode),
    Break(usize),
    Continue(usize),
}

#[derive(Debug, Clone)]
pub(crate) struct TextNode {
    pub pos: usize,
    pub text: String,
}

/// `{{ pipeline }}`: prints the value unless the pipeline declares variables.
#[derive(Debug, Clone)]
pub(crate) struct ActionNode {
    pub pos: usize,
    pub pipe: PipeNode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BranchKind {
    If,
    Range,
    With,
}

/// `if`, `range` and `with`: a pipeline, a body and an optional `else` body. `else if` and
/// `else with` are an `else` body holding one nested branch.
#[derive(Debug, Clone)]
pub(crate) struct BranchNode {
    pub kind: BranchKind,
    pub pos: usize,
    pub pipe: PipeNode,
    pub list: ListNode,
    pub else_list: Option<ListNode>,
}

/// `{{template "name" pipeline}}` (also the call half of `block`).
#[derive(Debug, Clone)]
pub(crate) struct TemplateNode {
    pub pos: usize,
    pub name: String,
    pub pipe: Option<PipeNode>,
}

/// `$a, $b := cmd | cmd …`.
#[derive(Debug, Clone)]
pub(crate) struct PipeNode {
    pub pos: usize,
    pub is_assign: bool,
    pub decl: Vec<VariableNode>,
    pub cmds: Vec<CommandNode>,
}

/// One stage of a pipeline: an operand possibly followed by arguments.
#[derive(Debug, Clone)]
pub(crate) struct CommandNode {
    pub pos: usize,
    pub args: Vec<Arg>,
}

/// `$x` or `$x.Field.Sub` (`ident[0]` is the variable name, with its `$`).
#[derive(Debug, Clone)]
pub(crate) struct VariableNode {
    pub pos: usize,
    pub ident: Vec<String>,
}

/// A numeric constant with every interpretation Go computes at parse time.
#[derive(Debug, Clone)]
pub(crate) struct NumberNode {
    pub pos: usize,
    pub text: String,
    pub is_int: bool,
    pub is_uint: bool,
    pub is_float: bool,
    pub int64: i64,
    pub float64: f64,
}

/// An operand of a command.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    /// `.A.B`
    Field {
        pos: usize,
        ident: Vec<String>,
    },
    Variable(VariableNode),
    /// `(pipeline).A.B` or `func.A`.
    Chain {
        pos: usize,
        node: Box<Arg>,
        fields: Vec<String>,
    },
    Identifier {
        pos: usize,
        name: String,
    },
    Dot(usize),
    Nil(usize),
    Bool(usize, bool),
    Number(NumberNode),
    String {
        pos: usize,
        quoted: String,
        text: String,
    },
    Pipe(Box<PipeNode>),
}

impl Arg {
    pub fn pos(&self) -> usize {
        match self {
            Arg::Field { pos, .. }
            | Arg::Chain { pos, .. }
            | Arg::Identifier { pos, .. }
            | Arg::Dot(pos)
            | Arg::Nil(pos)
            | Arg::Bool(pos, _)
            | Arg::String { pos, .. } => *pos,
            Arg::Variable(v) => v.pos,
            Arg::Number(n) => n.pos,
            Arg::Pipe(p) => p.pos,
        }
    }
}

impl Node {
    pub fn pos(&self) -> usize {
        match self {
            Node::Text(t) => t.pos,
            Node::Action(a) => a.pos,
            Node::Branch(b) => b.pos,
            Node::Template(t) => t.pos,
            Node::Break(pos) | Node::Continue(pos) => *pos,
        }
    }
}

impl fmt::Display for ListNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.nodes.iter().try_for_each(|n| write!(f, "{n}"))
    }
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Node::Text(t) => f.write_str(&t.text),
            Node::Action(a) => write!(f, "{{{{{}}}}}", a.pipe),
            Node::Branch(b) => write!(f, "{b}"),
            Node::Template(t) => write!(f, "{t}"),
            Node::Break(_) => f.write_str("{{break}}"),
            Node::Continue(_) => f.write_str("{{continue}}"),
        }
    }
}

impl fmt::Display for BranchNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.kind {
            BranchKind::If => "if",
            BranchKind::Range => "range",
            BranchKind::With => "with",
        };
        write!(f, "{{{{{name} {}}}}}{}", self.pipe, self.list)?;
        if let Some(else_list) = &self.else_list {
            write!(f, "{{{{else}}}}{else_list}")?;
        }
        f.write_str("{{end}}")
    }
}

impl fmt::Display for TemplateNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{{template {}", super::go_strconv::quote(&self.name, false))?;
        if let Some(pipe) = &self.pipe {
            write!(f, " {pipe}")?;
        }
        f.write_str("}}")
    }
}

impl fmt::Display for PipeNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.decl.is_empty() {
            for (i, v) in self.decl.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{v}")?;
            }
            f.write_str(" := ")?;
        }
        for (i, c) in self.cmds.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

impl fmt::Display for CommandNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, arg) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{arg}")?;
        }
        Ok(())
    }
}

impl fmt::Display for VariableNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.ident.join("."))
    }
}

impl fmt::Display for Arg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Arg::Field { ident, .. } => ident.iter().try_for_each(|id| write!(f, ".{id}")),
            Arg::Variable(v) => write!(f, "{v}"),
            Arg::Chain { node, fields, .. } => {
                write!(f, "{node}")?;
                fields.iter().try_for_each(|id| write!(f, ".{id}"))
            }
            Arg::Identifier { name, .. } => f.write_str(name),
            Arg::Dot(_) => f.write_str("."),
            Arg::Nil(_) => f.write_str("nil"),
            Arg::Bool(_, b) => write!(f, "{b}"),
            Arg::Number(n) => f.write_str(&n.text),
            Arg::String { quoted, .. } => f.write_str(quoted),
            Arg::Pipe(p) => write!(f, "({p})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_print_back_as_source() {
        let cmd = CommandNode {
            pos: 0,
            args: vec![
                Arg::Identifier { pos: 0, name: "get".into() },
                Arg::String { pos: 4, quoted: "\"maand/bucket\"".into(), text: "maand/bucket".into() },
                Arg::Pipe(Box::new(PipeNode {
                    pos: 20,
                    is_assign: false,
                    decl: vec![],
                    cmds: vec![CommandNode { pos: 20, args: vec![Arg::Field { pos: 20, ident: vec!["Job".into()] }] }],
                })),
            ],
        };
        assert_eq!(cmd.to_string(), "get \"maand/bucket\" (.Job)");
    }

    #[test]
    fn empty_tree_is_whitespace_only() {
        let list = ListNode { nodes: vec![Node::Text(TextNode { pos: 0, text: " \n\t".into() })] };
        assert!(list.is_empty_tree());
        let list = ListNode { nodes: vec![Node::Break(0)] };
        assert!(!list.is_empty_tree());
    }
}
