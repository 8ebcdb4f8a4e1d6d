//! The template lexer: a port of Go's `text/template/parse/lex.go` state machine, including trim
//! markers (`{{- ` / ` -}}`), comments, and the token kinds of the action language. Lexing is
//! eager; a lexical error ends the token list with an `Error` token, as Go's channel would.

use super::limits::Budget;

/// Token kinds (Go `itemType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenKind {
    Error,
    Bool,
    Char,
    CharConstant,
    Complex,
    Assign,
    Declare,
    Eof,
    Field,
    Identifier,
    LeftDelim,
    LeftParen,
    Number,
    Pipe,
    RawString,
    RightDelim,
    RightParen,
    Space,
    String,
    Text,
    Variable,
    // Keywords.
    Block,
    Break,
    Continue,
    Dot,
    Define,
    Else,
    End,
    If,
    Nil,
    Range,
    Template,
    With,
}

impl TokenKind {
    fn is_keyword(self) -> bool {
        matches!(
            self,
            TokenKind::Block
                | TokenKind::Break
                | TokenKind::Continue
                | TokenKind::Dot
                | TokenKind::Define
                | TokenKind::Else
                | TokenKind::End
                | TokenKind::If
                | TokenKind::Nil
                | TokenKind::Range
                | TokenKind::Template
                | TokenKind::With
        )
    }
}

/// One token: kind, byte offset in the source, text (or error message) and starting line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    pub kind: TokenKind,
    pub pos: usize,
    pub val: String,
    pub line: usize,
}

impl std::fmt::Display for Token {
    /// Go `item.String()`, used in "unexpected …" parse errors.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            TokenKind::Eof => f.write_str("EOF"),
            TokenKind::Error => f.write_str(&self.val),
            kind if kind.is_keyword() => write!(f, "<{}>", self.val),
            _ if self.val.len() > 10 => {
                let head: String = self.val.chars().take(10).collect();
                let quoted = super::go_strconv::quote(&head, false);
                write!(f, "{quoted}...")
            }
            _ => f.write_str(&super::go_strconv::quote(&self.val, false)),
        }
    }
}

const LEFT_DELIM: &str = "{{";
const RIGHT_DELIM: &str = "}}";
const LEFT_COMMENT: &str = "/*";
const RIGHT_COMMENT: &str = "*/";
/// Length of a trim marker plus its space (`- ` or ` -`).
const TRIM_MARKER_LEN: usize = 2;

/// Lexes the whole input. The list always ends with an `Eof` or an `Error` token (also when the
/// rendering's time is up: the error then says so).
pub(crate) fn lex(input: &str, budget: &Budget) -> Vec<Token> {
    let mut lexer = Lexer { input, pos: 0, start: 0, line: 1, start_line: 1, paren_depth: 0, tokens: Vec::new() };
    let mut state = State::Text;
    loop {
        if let Err(message) = budget.step() {
            lexer.error(message);
            break;
        }
        state = match state {
            State::Text => lexer.lex_text(),
            State::LeftDelim => lexer.lex_left_delim(),
            State::Comment => lexer.lex_comment(),
            State::RightDelim => lexer.lex_right_delim(),
            State::InsideAction => lexer.lex_inside_action(),
            State::Done => break,
        };
    }
    lexer.tokens
}

/// Go's state functions, as an enum.
enum State {
    Text,
    LeftDelim,
    Comment,
    RightDelim,
    InsideAction,
    Done,
}

struct Lexer<'s> {
    input: &'s str,
    pos: usize,
    start: usize,
    line: usize,
    start_line: usize,
    paren_depth: i32,
    tokens: Vec<Token>,
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// Go `isAlphaNumeric`: `_`, letters and digits (Unicode letter/digit approximated by Rust's
/// alphabetic/numeric properties).
fn is_alpha_numeric(c: char) -> bool {
    c == '_' || c.is_alphabetic() || c.is_numeric()
}

fn has_left_trim_marker(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2 && b[0] == b'-' && is_space(char::from(b[1]))
}

fn has_right_trim_marker(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2 && is_space(char::from(b[0])) && b[1] == b'-'
}

fn count_newlines(s: &str) -> usize {
    s.bytes().filter(|&b| b == b'\n').count()
}

impl<'s> Lexer<'s> {
    fn rest(&self) -> &'s str {
        self.input.get(self.pos..).unwrap_or("")
    }

    fn next(&mut self) -> Option<char> {
        let c = self.rest().chars().next()?;
        self.pos += c.len_utf8();
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    /// Steps back over the character just consumed (`c`, as returned by `next`).
    fn backup(&mut self, c: Option<char>) {
        if let Some(c) = c {
            self.pos -= c.len_utf8();
            if c == '\n' {
                self.line -= 1;
            }
        }
    }

    fn emit(&mut self, kind: TokenKind) {
        let val = self.input.get(self.start..self.pos).unwrap_or("").to_string();
        self.tokens.push(Token { kind, pos: self.start, val, line: self.start_line });
        self.start = self.pos;
        self.start_line = self.line;
    }

    fn ignore(&mut self) {
        self.line += count_newlines(self.input.get(self.start..self.pos).unwrap_or(""));
        self.start = self.pos;
        self.start_line = self.line;
    }

    fn accept(&mut self, valid: &str) -> bool {
        let c = self.next();
        if c.is_some_and(|c| valid.contains(c)) {
            return true;
        }
        self.backup(c);
        false
    }

    fn accept_run(&mut self, valid: &str) {
        while self.accept(valid) {}
    }

    fn error(&mut self, message: String) -> State {
        self.tokens.push(Token { kind: TokenKind::Error, pos: self.start, val: message, line: self.start_line });
        State::Done
    }

    fn lex_text(&mut self) -> State {
        if let Some(x) = self.rest().find(LEFT_DELIM) {
            let delim_at = self.pos + x;
            let mut text_end = delim_at;
            if has_left_trim_marker(&self.input[delim_at + LEFT_DELIM.len()..]) {
                let text = &self.input[self.start..delim_at];
                text_end = self.start + text.trim_end_matches(is_space).len();
            }
            self.pos = text_end;
            if self.pos > self.start {
                self.line += count_newlines(&self.input[self.start..self.pos]);
                self.emit(TokenKind::Text);
            }
            self.pos = delim_at;
            self.ignore();
            return State::LeftDelim;
        }
        self.pos = self.input.len();
        if self.pos > self.start {
            self.line += count_newlines(&self.input[self.start..self.pos]);
            self.emit(TokenKind::Text);
        }
        self.emit(TokenKind::Eof);
        State::Done
    }

    /// Go `atRightDelim`: (at a right delimiter, it carries a trim marker).
    fn at_right_delim(&self) -> (bool, bool) {
        let rest = self.rest();
        if has_right_trim_marker(rest) && rest[TRIM_MARKER_LEN..].starts_with(RIGHT_DELIM) {
            return (true, true);
        }
        (rest.starts_with(RIGHT_DELIM), false)
    }

    fn lex_left_delim(&mut self) -> State {
        self.pos += LEFT_DELIM.len();
        let trim = has_left_trim_marker(self.rest());
        let after_marker = if trim { TRIM_MARKER_LEN } else { 0 };
        if self.rest()[after_marker..].starts_with(LEFT_COMMENT) {
            self.pos += after_marker;
            self.ignore();
            return State::Comment;
        }
        self.emit(TokenKind::LeftDelim);
        self.pos += after_marker;
        self.ignore();
        self.paren_depth = 0;
        State::InsideAction
    }

    fn lex_comment(&mut self) -> State {
        self.pos += LEFT_COMMENT.len();
        let Some(i) = self.rest().find(RIGHT_COMMENT) else {
            return self.error("unclosed comment".to_string());
        };
        self.pos += i + RIGHT_COMMENT.len();
        let (delim, trim) = self.at_right_delim();
        if !delim {
            return self.error("comment ends before closing delimiter".to_string());
        }
        if trim {
            self.pos += TRIM_MARKER_LEN;
        }
        self.pos += RIGHT_DELIM.len();
        if trim {
            self.pos += self.rest().len() - self.rest().trim_start_matches(is_space).len();
        }
        self.ignore();
        State::Text
    }

    fn lex_right_delim(&mut self) -> State {
        let trim = has_right_trim_marker(self.rest());
        if trim {
            self.pos += TRIM_MARKER_LEN;
            self.ignore();
        }
        self.pos += RIGHT_DELIM.len();
        self.emit(TokenKind::RightDelim);
        if trim {
            self.pos += self.rest().len() - self.rest().trim_start_matches(is_space).len();
            self.ignore();
        }
        State::Text
    }

    fn lex_inside_action(&mut self) -> State {
        let (delim, _) = self.at_right_delim();
        if delim {
            if self.paren_depth == 0 {
                return State::RightDelim;
            }
            return self.error("unclosed left paren".to_string());
        }
        let c = self.next();
        let Some(r) = c else {
            return self.error("unclosed action".to_string());
        };
        match r {
            _ if is_space(r) => {
                self.backup(c);
                return self.lex_space();
            }
            '=' => self.emit(TokenKind::Assign),
            ':' => {
                if self.next() != Some('=') {
                    return self.error("expected :=".to_string());
                }
                self.emit(TokenKind::Declare);
            }
            '|' => self.emit(TokenKind::Pipe),
            '"' => return self.lex_quote(),
            '`' => return self.lex_raw_quote(),
            '$' => return self.lex_variable(),
            '\'' => return self.lex_char(),
            '.' if self.peek().is_some_and(|n| !n.is_ascii_digit()) => {
                return self.lex_field_or_variable(TokenKind::Field);
            }
            '.' | '+' | '-' | '0'..='9' => {
                self.backup(c);
                return self.lex_number();
            }
            _ if is_alpha_numeric(r) => {
                self.backup(c);
                return self.lex_identifier();
            }
            '(' => {
                self.emit(TokenKind::LeftParen);
                self.paren_depth += 1;
            }
            ')' => {
                self.emit(TokenKind::RightParen);
                self.paren_depth -= 1;
                if self.paren_depth < 0 {
                    return self.error("unexpected right paren U+0029 ')'".to_string());
                }
            }
            _ if r.is_ascii() && super::go_strconv::is_print(r) => self.emit(TokenKind::Char),
            _ => return self.error(format!("unrecognized character in action: U+{:04X}", u32::from(r))),
        }
        State::InsideAction
    }

    fn lex_space(&mut self) -> State {
        let mut spaces = 0;
        while self.peek().is_some_and(is_space) {
            self.next();
            spaces += 1;
        }
        // A trim-marked right delimiter starts with a space: leave it for lexRightDelim.
        let before = &self.input[self.pos - 1..];
        if has_right_trim_marker(before) && before[TRIM_MARKER_LEN..].starts_with(RIGHT_DELIM) {
            let last_space = char::from(self.input.as_bytes()[self.pos - 1]);
            self.backup(Some(last_space));
            if spaces == 1 {
                return State::RightDelim;
            }
        }
        self.emit(TokenKind::Space);
        State::InsideAction
    }

    fn lex_identifier(&mut self) -> State {
        loop {
            let c = self.next();
            if c.is_some_and(is_alpha_numeric) {
                continue;
            }
            self.backup(c);
            if !self.at_terminator() {
                return self.bad_character(c);
            }
            let word = &self.input[self.start..self.pos];
            let kind = match word {
                "block" => TokenKind::Block,
                "break" => TokenKind::Break,
                "continue" => TokenKind::Continue,
                "define" => TokenKind::Define,
                "else" => TokenKind::Else,
                "end" => TokenKind::End,
                "if" => TokenKind::If,
                "range" => TokenKind::Range,
                "nil" => TokenKind::Nil,
                "template" => TokenKind::Template,
                "with" => TokenKind::With,
                "true" | "false" => TokenKind::Bool,
                _ => TokenKind::Identifier,
            };
            self.emit(kind);
            return State::InsideAction;
        }
    }

    fn bad_character(&mut self, c: Option<char>) -> State {
        let code = c.map_or(0, u32::from);
        self.error(format!("bad character U+{code:04X}"))
    }

    fn lex_variable(&mut self) -> State {
        if self.at_terminator() {
            self.emit(TokenKind::Variable);
            return State::InsideAction;
        }
        self.lex_field_or_variable(TokenKind::Variable)
    }

    fn lex_field_or_variable(&mut self, kind: TokenKind) -> State {
        if self.at_terminator() {
            self.emit(if kind == TokenKind::Variable { TokenKind::Variable } else { TokenKind::Dot });
            return State::InsideAction;
        }
        let mut c;
        loop {
            c = self.next();
            if !c.is_some_and(is_alpha_numeric) {
                self.backup(c);
                break;
            }
        }
        if !self.at_terminator() {
            return self.bad_character(c);
        }
        self.emit(kind);
        State::InsideAction
    }

    /// Go `atTerminator`: a character that may follow an identifier.
    fn at_terminator(&self) -> bool {
        match self.peek() {
            None => true,
            Some(c) if is_space(c) => true,
            Some('.' | ',' | '|' | ':' | ')' | '(') => true,
            Some(_) => self.rest().starts_with(RIGHT_DELIM),
        }
    }

    fn lex_char(&mut self) -> State {
        loop {
            match self.next() {
                Some('\\') => {
                    if matches!(self.next(), None | Some('\n')) {
                        return self.error("unterminated character constant".to_string());
                    }
                }
                None | Some('\n') => return self.error("unterminated character constant".to_string()),
                Some('\'') => break,
                Some(_) => {}
            }
        }
        self.emit(TokenKind::CharConstant);
        State::InsideAction
    }

    fn lex_number(&mut self) -> State {
        if !self.scan_number() {
            let text = self.input[self.start..self.pos].to_string();
            return self.error(format!("bad number syntax: {}", super::go_strconv::quote(&text, false)));
        }
        if matches!(self.peek(), Some('+' | '-')) {
            // Complex: 1+2i. No spaces, must end in 'i'.
            if !self.scan_number() || !self.input[..self.pos].ends_with('i') {
                let text = self.input[self.start..self.pos].to_string();
                return self.error(format!("bad number syntax: {}", super::go_strconv::quote(&text, false)));
            }
            self.emit(TokenKind::Complex);
        } else {
            self.emit(TokenKind::Number);
        }
        State::InsideAction
    }

    fn scan_number(&mut self) -> bool {
        self.accept("+-");
        let mut digits = "0123456789_";
        if self.accept("0") {
            if self.accept("xX") {
                digits = "0123456789abcdefABCDEF_";
            } else if self.accept("oO") {
                digits = "01234567_";
            } else if self.accept("bB") {
                digits = "01_";
            }
        }
        self.accept_run(digits);
        if self.accept(".") {
            self.accept_run(digits);
        }
        if digits.len() == 11 && self.accept("eE") {
            self.accept("+-");
            self.accept_run("0123456789_");
        }
        if digits.len() == 23 && self.accept("pP") {
            self.accept("+-");
            self.accept_run("0123456789_");
        }
        self.accept("i");
        if self.peek().is_some_and(is_alpha_numeric) {
            self.next();
            return false;
        }
        true
    }

    fn lex_quote(&mut self) -> State {
        loop {
            match self.next() {
                Some('\\') => {
                    if matches!(self.next(), None | Some('\n')) {
                        return self.error("unterminated quoted string".to_string());
                    }
                }
                None | Some('\n') => return self.error("unterminated quoted string".to_string()),
                Some('"') => break,
                Some(_) => {}
            }
        }
        self.emit(TokenKind::String);
        State::InsideAction
    }

    fn lex_raw_quote(&mut self) -> State {
        loop {
            match self.next() {
                None => return self.error("unterminated raw quoted string".to_string()),
                Some('`') => break,
                Some(_) => {}
            }
        }
        self.emit(TokenKind::RawString);
        State::InsideAction
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<(TokenKind, String)> {
        lex(src, &Budget::unlimited()).into_iter().map(|t| (t.kind, t.val)).collect()
    }

    #[test]
    fn trim_markers_remove_surrounding_whitespace() {
        use TokenKind::*;
        assert_eq!(
            kinds("a \n {{- .X -}} \n b"),
            vec![
                (Text, "a".into()),
                (LeftDelim, "{{".into()),
                (Field, ".X".into()),
                (RightDelim, "}}".into()),
                (Text, "b".into()),
                (Eof, std::string::String::new())
            ]
        );
    }

    #[test]
    fn minus_without_space_is_a_number() {
        use TokenKind::*;
        assert_eq!(kinds("{{-3}}")[1], (Number, "-3".into()));
    }

    #[test]
    fn comments_are_dropped_and_may_trim() {
        use TokenKind::*;
        assert_eq!(
            kinds("a {{- /* c */ -}} b"),
            vec![(Text, "a".into()), (Text, "b".into()), (Eof, std::string::String::new())]
        );
        assert_eq!(lex("{{/* c */ x}}", &Budget::unlimited()).last().map(|t| t.kind), Some(Error));
    }

    #[test]
    fn lines_are_tracked() {
        let tokens = lex("a\nb\n{{ .X }}", &Budget::unlimited());
        let field = tokens.iter().find(|t| t.kind == TokenKind::Field).unwrap();
        assert_eq!(field.line, 3);
    }

    #[test]
    fn errors_end_the_stream() {
        assert_eq!(lex("{{ \"abc }}", &Budget::unlimited()).last().map(|t| t.kind), Some(TokenKind::Error));
        assert_eq!(lex("{{ .X ", &Budget::unlimited()).last().map(|t| t.val.clone()), Some("unclosed action".into()));
        assert_eq!(
            lex("{{ (.X }}", &Budget::unlimited()).last().map(|t| t.val.clone()),
            Some("unclosed left paren".into())
        );
    }
}
