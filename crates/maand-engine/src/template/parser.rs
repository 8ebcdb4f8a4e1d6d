//! The template parser: a port of Go's `text/template/parse/parse.go`. It builds one tree per
//! template name (the file itself plus every `define`/`block`), checks at parse time that
//! functions exist and variables are declared, and reports errors with the line Go reports.

use std::collections::HashMap;

use super::ast::{
    ActionNode, Arg, BranchKind, BranchNode, CommandNode, ListNode, Node, PipeNode, TemplateNode, TextNode,
    VariableNode,
};
use super::go_strconv::{quote, unquote};
use super::lexer::{lex, Token, TokenKind};
use super::limits::Budget;
use super::number::new_number;

/// Every template of one source file by name.
pub(crate) type TreeSet = HashMap<String, ListNode>;

/// A parse failure: the line and Go's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParseError {
    pub line: usize,
    pub message: String,
}

/// Deepest nesting of control actions and parenthesised pipelines accepted (keeps recursion,
/// here and during execution, far from the stack limit).
const MAX_NESTING: usize = 200;

/// Parses `src` as template `name`; `has_function` tells which identifiers are functions. Lexing
/// and parsing count their steps against `budget` (running out is an error at that line).
pub(crate) fn parse(
    name: &str,
    src: &str,
    has_function: &dyn Fn(&str) -> bool,
    budget: &Budget,
) -> Result<TreeSet, ParseError> {
    let tokens = lex(src, budget);
    let mut parser = Parser {
        budget,
        tokens,
        cursor: 0,
        furthest: 0,
        vars: vec!["$".to_string()],
        range_depth: 0,
        action_line: 0,
        nesting: 0,
        tree_set: TreeSet::new(),
        has_function,
    };
    let root = parser.parse_top()?;
    parser.add(name, root)?;
    Ok(parser.tree_set)
}

/// What `textOrAction` returns: a node, or the `{{end}}`/`{{else}}` that closes a list.
enum Item {
    Node(Node),
    End,
    Else,
}

impl Item {
    fn describe(&self) -> String {
        match self {
            Item::Node(n) => n.to_string(),
            Item::End => "{{end}}".to_string(),
            Item::Else => "{{else}}".to_string(),
        }
    }
}

struct Parser<'f> {
    budget: &'f Budget,
    tokens: Vec<Token>,
    cursor: usize,
    /// Index of the furthest token read: Go reports errors at the line of its lookahead token.
    furthest: usize,
    /// Variables declared at this point of the current tree.
    vars: Vec<String>,
    range_depth: usize,
    action_line: usize,
    nesting: usize,
    tree_set: TreeSet,
    has_function: &'f dyn Fn(&str) -> bool,
}

type Parsed<T> = Result<T, ParseError>;

impl Parser<'_> {
    fn token_at(&self, index: usize) -> Token {
        let last = self.tokens.len().saturating_sub(1);
        self.tokens.get(index.min(last)).cloned().unwrap_or(Token {
            kind: TokenKind::Eof,
            pos: 0,
            val: String::new(),
            line: 1,
        })
    }

    fn next(&mut self) -> Token {
        let token = self.token_at(self.cursor);
        self.furthest = self.furthest.max(self.cursor);
        self.cursor += 1;
        token
    }

    fn backup(&mut self) {
        self.cursor = self.cursor.saturating_sub(1);
    }

    fn peek(&mut self) -> Token {
        let token = self.next();
        self.backup();
        token
    }

    fn next_non_space(&mut self) -> Token {
        loop {
            let token = self.next();
            if token.kind != TokenKind::Space {
                return token;
            }
        }
    }

    fn peek_non_space(&mut self) -> Token {
        let token = self.next_non_space();
        self.backup();
        token
    }

    fn error<T>(&self, message: impl Into<String>) -> Parsed<T> {
        Err(ParseError { line: self.token_at(self.furthest).line, message: message.into() })
    }

    /// One step of parsing counted against the rendering's time limit.
    fn step(&self) -> Parsed<()> {
        self.budget.step().or_else(|message| self.error(message))
    }

    fn expect(&mut self, kind: TokenKind, context: &str) -> Parsed<Token> {
        let token = self.next_non_space();
        if token.kind != kind {
            return self.unexpected(&token, context);
        }
        Ok(token)
    }

    fn unexpected<T>(&self, token: &Token, context: &str) -> Parsed<T> {
        if token.kind == TokenKind::Error {
            let mut extra = String::new();
            if self.action_line != 0 && self.action_line != token.line {
                extra = format!(" in action started at line {}", self.action_line);
                if token.val.ends_with(" action") {
                    extra = extra.replacen(" in action", "", 1);
                }
            }
            return self.error(format!("{token}{extra}"));
        }
        self.error(format!("unexpected {token} in {context}"))
    }

    fn enter(&mut self) -> Parsed<()> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            return self.error(format!("template nesting exceeds {MAX_NESTING} levels"));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.nesting -= 1;
    }

    /// Go `Tree.add`: a name may be defined twice only if one of the bodies is empty.
    fn add(&mut self, name: &str, root: ListNode) -> Parsed<()> {
        match self.tree_set.get(name) {
            Some(existing) if !existing.is_empty_tree() => {
                if !root.is_empty_tree() {
                    return self.error(format!("template: multiple definition of template {}", quote(name, false)));
                }
            }
            _ => {
                self.tree_set.insert(name.to_string(), root);
            }
        }
        Ok(())
    }

    /// Runs `body` as the parse of a separate tree (`define`/`block`): fresh variables and range depth.
    fn in_new_tree<T>(&mut self, body: impl FnOnce(&mut Self) -> Parsed<T>) -> Parsed<T> {
        let vars = std::mem::replace(&mut self.vars, vec!["$".to_string()]);
        let range_depth = std::mem::replace(&mut self.range_depth, 0);
        let result = body(self);
        self.vars = vars;
        self.range_depth = range_depth;
        result
    }

    fn parse_top(&mut self) -> Parsed<ListNode> {
        let mut root = ListNode::default();
        while self.peek().kind != TokenKind::Eof {
            if self.peek().kind == TokenKind::LeftDelim {
                let save = self.cursor;
                self.next();
                if self.next_non_space().kind == TokenKind::Define {
                    self.in_new_tree(Self::parse_definition)?;
                    continue;
                }
                self.cursor = save;
            }
            match self.text_or_action()? {
                Item::Node(n) => root.nodes.push(n),
                other => return self.error(format!("unexpected {}", other.describe())),
            }
        }
        Ok(root)
    }

    fn parse_definition(&mut self) -> Parsed<()> {
        const CONTEXT: &str = "define clause";
        let token = self.next_non_space();
        if !matches!(token.kind, TokenKind::String | TokenKind::RawString) {
            return self.unexpected(&token, CONTEXT);
        }
        let name = self.unquote(&token.val)?;
        self.expect(TokenKind::RightDelim, CONTEXT)?;
        let (list, end) = self.item_list()?;
        if !matches!(end, Item::End) {
            return self.error(format!("unexpected {} in {CONTEXT}", end.describe()));
        }
        self.add(&name, list)
    }

    fn unquote(&self, token: &str) -> Parsed<String> {
        unquote(token).or_else(|e| self.error(e))
    }

    fn item_list(&mut self) -> Parsed<(ListNode, Item)> {
        let mut list = ListNode::default();
        while self.peek_non_space().kind != TokenKind::Eof {
            match self.text_or_action()? {
                Item::Node(n) => list.nodes.push(n),
                end => return Ok((list, end)),
            }
        }
        self.error("unexpected EOF")
    }

    fn text_or_action(&mut self) -> Parsed<Item> {
        self.step()?;
        let token = self.next_non_space();
        match token.kind {
            TokenKind::Text => Ok(Item::Node(Node::Text(TextNode { pos: token.pos, text: token.val }))),
            TokenKind::LeftDelim => {
                self.action_line = token.line;
                let item = self.action();
                self.action_line = 0;
                item
            }
            _ => self.unexpected(&token, "input"),
        }
    }

    fn action(&mut self) -> Parsed<Item> {
        let token = self.next_non_space();
        match token.kind {
            TokenKind::Block => return self.block_control().map(Item::Node),
            TokenKind::Break | TokenKind::Continue => return self.loop_control(&token).map(Item::Node),
            TokenKind::Else => return self.else_control(),
            TokenKind::End => {
                self.expect(TokenKind::RightDelim, "end")?;
                return Ok(Item::End);
            }
            TokenKind::If => return self.branch(BranchKind::If).map(Item::Node),
            TokenKind::Range => return self.branch(BranchKind::Range).map(Item::Node),
            TokenKind::Template => return self.template_control().map(Item::Node),
            TokenKind::With => return self.branch(BranchKind::With).map(Item::Node),
            _ => {}
        }
        self.backup();
        let pos = self.peek().pos;
        let pipe = self.pipeline("command", TokenKind::RightDelim)?;
        Ok(Item::Node(Node::Action(ActionNode { pos, pipe })))
    }

    fn loop_control(&mut self, keyword: &Token) -> Parsed<Node> {
        let name = keyword.val.as_str();
        let token = self.next_non_space();
        if token.kind != TokenKind::RightDelim {
            return self.unexpected(&token, &format!("{{{{{name}}}}}"));
        }
        if self.range_depth == 0 {
            return self.error(format!("{{{{{name}}}}} outside {{{{range}}}}"));
        }
        Ok(if keyword.kind == TokenKind::Break { Node::Break(keyword.pos) } else { Node::Continue(keyword.pos) })
    }

    fn else_control(&mut self) -> Parsed<Item> {
        // "{{else if …" and "{{else with …" leave the keyword pending for parse_control.
        let peek = self.peek_non_space();
        if matches!(peek.kind, TokenKind::If | TokenKind::With) {
            return Ok(Item::Else);
        }
        self.expect(TokenKind::RightDelim, "else")?;
        Ok(Item::Else)
    }

    fn branch(&mut self, kind: BranchKind) -> Parsed<Node> {
        self.enter()?;
        let result = self.parse_control(kind);
        self.leave();
        result.map(Node::Branch)
    }

    fn parse_control(&mut self, kind: BranchKind) -> Parsed<BranchNode> {
        let context = match kind {
            BranchKind::If => "if",
            BranchKind::Range => "range",
            BranchKind::With => "with",
        };
        let vars_mark = self.vars.len();
        let result = self.parse_control_body(kind, context);
        self.vars.truncate(vars_mark);
        result
    }

    fn parse_control_body(&mut self, kind: BranchKind, context: &str) -> Parsed<BranchNode> {
        let pipe = self.pipeline(context, TokenKind::RightDelim)?;
        if kind == BranchKind::Range {
            self.range_depth += 1;
        }
        let listed = self.item_list();
        if kind == BranchKind::Range {
            self.range_depth -= 1;
        }
        let (list, next) = listed?;
        let mut else_list = None;
        if let Item::Else = next {
            let chained = match (kind, self.peek().kind) {
                (BranchKind::If, TokenKind::If) => Some(BranchKind::If),
                (BranchKind::With, TokenKind::With) => Some(BranchKind::With),
                _ => None,
            };
            if let Some(chained) = chained {
                self.next();
                else_list = Some(ListNode { nodes: vec![self.branch(chained)?] });
            } else {
                let (list, next) = self.item_list()?;
                if !matches!(next, Item::End) {
                    return self.error(format!("expected end; found {}", next.describe()));
                }
                else_list = Some(list);
            }
        }
        Ok(BranchNode { kind, pos: pipe.pos, pipe, list, else_list })
    }

    fn block_control(&mut self) -> Parsed<Node> {
        const CONTEXT: &str = "block clause";
        let token = self.next_non_space();
        let name = self.template_name(&token, CONTEXT)?;
        let pipe = self.pipeline(CONTEXT, TokenKind::RightDelim)?;
        self.enter()?;
        let body = self.in_new_tree(Self::item_list);
        self.leave();
        let (list, end) = body?;
        if !matches!(end, Item::End) {
            return self.error(format!("unexpected {} in {CONTEXT}", end.describe()));
        }
        self.add(&name, list)?;
        Ok(Node::Template(TemplateNode { pos: token.pos, name, pipe: Some(pipe) }))
    }

    fn template_control(&mut self) -> Parsed<Node> {
        const CONTEXT: &str = "template clause";
        let token = self.next_non_space();
        let name = self.template_name(&token, CONTEXT)?;
        let pipe = if self.next_non_space().kind != TokenKind::RightDelim {
            self.backup();
            Some(self.pipeline(CONTEXT, TokenKind::RightDelim)?)
        } else {
            None
        };
        Ok(Node::Template(TemplateNode { pos: token.pos, name, pipe }))
    }

    fn template_name(&self, token: &Token, context: &str) -> Parsed<String> {
        match token.kind {
            TokenKind::String | TokenKind::RawString => self.unquote(&token.val),
            _ => self.unexpected(token, context),
        }
    }

    fn pipeline(&mut self, context: &str, end: TokenKind) -> Parsed<PipeNode> {
        let pos = self.peek_non_space().pos;
        let mut pipe = PipeNode { pos, is_assign: false, decl: Vec::new(), cmds: Vec::new() };
        self.declarations(&mut pipe, context)?;
        loop {
            self.step()?;
            let token = self.next_non_space();
            if token.kind == end {
                self.check_pipeline(&pipe, context)?;
                return Ok(pipe);
            }
            match token.kind {
                TokenKind::Bool
                | TokenKind::CharConstant
                | TokenKind::Complex
                | TokenKind::Dot
                | TokenKind::Field
                | TokenKind::Identifier
                | TokenKind::Number
                | TokenKind::Nil
                | TokenKind::RawString
                | TokenKind::String
                | TokenKind::Variable
                | TokenKind::LeftParen => {
                    self.backup();
                    let command = self.command()?;
                    pipe.cmds.push(command);
                }
                _ => return self.unexpected(&token, context),
            }
        }
    }

    /// The `$x :=` / `$x =` / `$i, $v :=` prefix of a pipeline, if any.
    fn declarations(&mut self, pipe: &mut PipeNode, context: &str) -> Parsed<()> {
        loop {
            if self.peek_non_space().kind != TokenKind::Variable {
                return Ok(());
            }
            let variable_at = self.cursor;
            let v = self.next();
            let next = self.peek_non_space();
            let declare = |p: &mut Self, pipe: &mut PipeNode| {
                pipe.decl.push(VariableNode { pos: v.pos, ident: v.val.split('.').map(str::to_string).collect() });
                p.vars.push(v.val.clone());
            };
            match next.kind {
                TokenKind::Assign | TokenKind::Declare => {
                    pipe.is_assign = next.kind == TokenKind::Assign;
                    self.next_non_space();
                    declare(self, pipe);
                    return Ok(());
                }
                TokenKind::Char if next.val == "," => {
                    self.next_non_space();
                    declare(self, pipe);
                    if context == "range" && pipe.decl.len() < 2 {
                        match self.peek_non_space().kind {
                            TokenKind::Variable | TokenKind::RightDelim | TokenKind::RightParen => continue,
                            _ => return self.error("range can only initialize variables"),
                        }
                    }
                    return self.error(format!("too many declarations in {context}"));
                }
                _ => {
                    // `$x` is an operand, not a declaration: push it back.
                    self.cursor = variable_at;
                    return Ok(());
                }
            }
        }
    }

    fn check_pipeline(&self, pipe: &PipeNode, context: &str) -> Parsed<()> {
        if pipe.cmds.is_empty() {
            return self.error(format!("missing value for {context}"));
        }
        for (i, cmd) in pipe.cmds.iter().enumerate().skip(1) {
            if matches!(
                cmd.args.first(),
                Some(Arg::Bool(..) | Arg::Dot(_) | Arg::Nil(_) | Arg::Number(_) | Arg::String { .. })
            ) {
                return self.error(format!("non executable command in pipeline stage {}", i + 1));
            }
        }
        Ok(())
    }

    fn command(&mut self) -> Parsed<CommandNode> {
        let pos = self.peek_non_space().pos;
        let mut cmd = CommandNode { pos, args: Vec::new() };
        loop {
            self.step()?;
            self.peek_non_space();
            if let Some(operand) = self.operand()? {
                cmd.args.push(operand);
            }
            let token = self.next();
            match token.kind {
                TokenKind::Space => continue,
                TokenKind::RightDelim | TokenKind::RightParen => self.backup(),
                TokenKind::Pipe => {}
                _ => return self.unexpected(&token, "operand"),
            }
            break;
        }
        if cmd.args.is_empty() {
            return self.error("empty command");
        }
        Ok(cmd)
    }

    fn operand(&mut self) -> Parsed<Option<Arg>> {
        let Some(node) = self.term()? else {
            return Ok(None);
        };
        if self.peek().kind != TokenKind::Field {
            return Ok(Some(node));
        }
        let pos = self.peek().pos;
        let mut fields = Vec::new();
        while self.peek().kind == TokenKind::Field {
            let token = self.next();
            fields.push(token.val.trim_start_matches('.').to_string());
        }
        Ok(Some(match node {
            Arg::Field { mut ident, .. } => {
                ident.extend(fields);
                Arg::Field { pos, ident }
            }
            Arg::Variable(mut v) => {
                v.ident.extend(fields);
                Arg::Variable(VariableNode { pos, ident: v.ident })
            }
            Arg::Bool(..) | Arg::String { .. } | Arg::Number(_) | Arg::Nil(_) | Arg::Dot(_) => {
                return self.error(format!("unexpected . after term {}", quote(&node.to_string(), false)));
            }
            other => Arg::Chain { pos, node: Box::new(other), fields },
        }))
    }

    fn term(&mut self) -> Parsed<Option<Arg>> {
        let token = self.next_non_space();
        let pos = token.pos;
        let arg = match token.kind {
            TokenKind::Identifier => {
                if !(self.has_function)(&token.val) {
                    return self.error(format!("function {} not defined", quote(&token.val, false)));
                }
                Arg::Identifier { pos, name: token.val }
            }
            TokenKind::Dot => Arg::Dot(pos),
            TokenKind::Nil => Arg::Nil(pos),
            TokenKind::Variable => {
                let ident: Vec<String> = token.val.split('.').map(str::to_string).collect();
                if !self.vars.iter().any(|v| Some(v) == ident.first()) {
                    return self.error(format!("undefined variable {}", quote(&ident[0], false)));
                }
                Arg::Variable(VariableNode { pos, ident })
            }
            TokenKind::Field => Arg::Field { pos, ident: token.val[1..].split('.').map(str::to_string).collect() },
            TokenKind::Bool => Arg::Bool(pos, token.val == "true"),
            TokenKind::CharConstant | TokenKind::Complex | TokenKind::Number => {
                Arg::Number(new_number(pos, &token.val, token.kind).or_else(|e| self.error(e))?)
            }
            TokenKind::LeftParen => {
                self.enter()?;
                let pipe = self.pipeline("parenthesized pipeline", TokenKind::RightParen);
                self.leave();
                Arg::Pipe(Box::new(pipe?))
            }
            TokenKind::String | TokenKind::RawString => {
                let text = self.unquote(&token.val)?;
                Arg::String { pos, quoted: token.val, text }
            }
            _ => {
                self.backup();
                return Ok(None);
            }
        };
        Ok(Some(arg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(name: &str) -> bool {
        matches!(name, "get" | "printf" | "eq" | "and")
    }

    fn parse_err(src: &str) -> ParseError {
        parse("t", src, &known, &Budget::unlimited()).unwrap_err()
    }

    #[test]
    fn defines_become_separate_trees() {
        let set =
            parse("t", "a{{define \"x\"}}b{{end}}c{{block \"y\" .}}d{{end}}", &known, &Budget::unlimited()).unwrap();
        let mut names: Vec<_> = set.keys().cloned().collect();
        names.sort();
        assert_eq!(names, vec!["t", "x", "y"]);
        assert_eq!(set["t"].to_string(), "ac{{template \"y\" .}}");
    }

    #[test]
    fn undefined_functions_and_variables_are_parse_errors() {
        assert_eq!(parse_err("{{ nope 1 }}").message, "function \"nope\" not defined");
        assert_eq!(parse_err("\n{{ $x }}").message, "undefined variable \"$x\"");
        assert_eq!(parse_err("\n{{ $x }}").line, 2);
    }

    #[test]
    fn variables_go_out_of_scope_at_end() {
        assert!(parse("t", "{{if 1}}{{$x := 1}}{{end}}{{$x}}", &known, &Budget::unlimited()).is_err());
        assert!(parse("t", "{{$x := 1}}{{if 1}}{{$x = 2}}{{end}}{{$x}}", &known, &Budget::unlimited()).is_ok());
        assert!(parse("t", "{{define \"d\"}}{{$x}}{{end}}{{$x := 1}}", &known, &Budget::unlimited()).is_err());
    }

    #[test]
    fn structural_errors() {
        assert_eq!(parse_err("{{if 1}}x").message, "unexpected EOF");
        assert_eq!(parse_err("{{end}}").message, "unexpected {{end}}");
        assert_eq!(parse_err("{{break}}").message, "{{break}} outside {{range}}");
        assert_eq!(parse_err("{{ 1 | 2 }}").message, "non executable command in pipeline stage 2");
        assert_eq!(
            parse_err("{{define \"a\"}}x{{end}}{{define \"a\"}}y{{end}}").message,
            "template: multiple definition of template \"a\""
        );
        assert!(parse("t", "{{define \"a\"}}x{{end}}{{define \"a\"}} {{end}}", &known, &Budget::unlimited()).is_ok());
        assert_eq!(parse_err("{{range $a, $b, $c := 1}}{{end}}").message, "too many declarations in range");
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = format!("{{{{ {}1{} }}}}", "(".repeat(MAX_NESTING), ")".repeat(MAX_NESTING));
        assert!(parse("t", &deep, &known, &Budget::unlimited()).is_ok());
        let src = format!("{{{{ {}1{} }}}}", "(".repeat(MAX_NESTING + 1), ")".repeat(MAX_NESTING + 1));
        assert!(parse_err(&src).message.contains("nesting"));
    }
}
