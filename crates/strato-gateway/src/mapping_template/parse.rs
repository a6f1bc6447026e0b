//! A mapping template's syntax: text, references (`$a.b`, `${a.b}`,
//! `$!a.b('x')[0]`) and the directives API Gateway's Velocity evaluates
//! (`#set`, `#if/#elseif/#else/#end`, `#foreach`, `#break`, `#stop`,
//! comments `##` and `#* *#`, unparsed `#[[ ]]#`), parsed into a tree
//! once and evaluated by [`super::eval`].
//!
//! A line that holds only a directive (or a comment) and white space
//! leaves nothing in the output, not even its line break, as Velocity's
//! `lines` space gobbling does.

use serde_json::Value;

use super::TemplateError;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Node {
    Text(String),
    Ref(Reference),
    Set(Reference, Expr),
    /// `#if` and its `#elseif`s in order, then the `#else` body.
    If(Vec<(Expr, Vec<Node>)>, Vec<Node>),
    Foreach(String, Expr, Vec<Node>),
    Break,
    Stop,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Reference {
    /// The reference as written, rendered when it names nothing known.
    pub raw: String,
    /// `$!x`: a missing value renders as nothing.
    pub quiet: bool,
    pub root: String,
    pub parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Part {
    Member(String),
    Call(String, Vec<Expr>),
    Index(Expr),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Expr {
    Ref(Reference),
    /// A literal: a single-quoted string, a number, `true`, `false`.
    Literal(Value),
    /// A double-quoted string, with its references rendered.
    Interpolated(Vec<Node>),
    List(Vec<Expr>),
    Map(Vec<(Expr, Expr)>),
    Range(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Neg(Box<Expr>),
    Binary(Op, Box<Expr>, Box<Expr>),
}

/// Parses a whole template.
pub(super) fn parse(template: &str) -> Result<Vec<Node>, TemplateError> {
    let mut parser = Parser {
        src: template,
        at: 0,
    };
    let (nodes, end) = parser.block()?;
    match end {
        BlockEnd::Eof => Ok(nodes),
        other => Err(parser.error_at(parser.at, &format!("unexpected {}", other.name()))),
    }
}

/// What closed a block.
enum BlockEnd {
    Eof,
    End,
    Else,
    ElseIf(Expr),
}

impl BlockEnd {
    fn name(&self) -> &'static str {
        match self {
            BlockEnd::Eof => "end of template",
            BlockEnd::End => "#end",
            BlockEnd::Else => "#else",
            BlockEnd::ElseIf(_) => "#elseif",
        }
    }
}

struct Parser<'s> {
    src: &'s str,
    at: usize,
}

fn is_identifier_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_identifier_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

impl Parser<'_> {
    fn rest(&self) -> &str {
        &self.src[self.at..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn eat(&mut self, prefix: &str) -> bool {
        if self.rest().starts_with(prefix) {
            self.at += prefix.len();
            true
        } else {
            false
        }
    }

    fn error_at(&self, at: usize, message: &str) -> TemplateError {
        let before = &self.src[..at.min(self.src.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        TemplateError::Syntax {
            message: message.to_string(),
            line,
            column,
        }
    }

    fn skip_spaces(&mut self) {
        let trimmed = self.rest().trim_start();
        self.at = self.src.len() - trimmed.len();
    }

    fn identifier(&mut self) -> Option<String> {
        let rest = self.rest();
        if !rest.chars().next().is_some_and(is_identifier_start) {
            return None;
        }
        let end = rest
            .char_indices()
            .find(|(_, c)| !is_identifier_char(*c))
            .map_or(rest.len(), |(i, _)| i);
        let name = rest[..end].to_string();
        self.at += end;
        Some(name)
    }

    /// Text and directives up to `#end`, `#else`, `#elseif` or the end.
    fn block(&mut self) -> Result<(Vec<Node>, BlockEnd), TemplateError> {
        let mut nodes = Vec::new();
        let mut text = String::new();
        let flush = |text: &mut String, nodes: &mut Vec<Node>| {
            if !text.is_empty() {
                nodes.push(Node::Text(std::mem::take(text)));
            }
        };
        while let Some(c) = self.peek() {
            match c {
                '\\' if self.rest()[1..].starts_with(['$', '#']) => {
                    text.push_str(&self.rest()[1..2]);
                    self.at += 2;
                }
                '$' => {
                    let start = self.at;
                    match self.reference()? {
                        Some(reference) => {
                            flush(&mut text, &mut nodes);
                            nodes.push(Node::Ref(reference));
                        }
                        None => {
                            self.at = start + 1;
                            text.push('$');
                        }
                    }
                }
                '#' => {
                    let start = self.at;
                    let Some(directive) = self.directive()? else {
                        self.at = start + 1;
                        text.push('#');
                        continue;
                    };
                    if !matches!(directive, Directive::Node(Node::Text(_))) {
                        self.gobble_line(start, &mut text);
                    }
                    match directive {
                        Directive::Node(Node::Text(unparsed)) => text.push_str(&unparsed),
                        Directive::Node(node) => {
                            flush(&mut text, &mut nodes);
                            nodes.push(node);
                        }
                        Directive::Comment => {}
                        Directive::If(condition) => {
                            flush(&mut text, &mut nodes);
                            nodes.push(self.if_chain(start, condition)?);
                        }
                        Directive::Foreach(name, list) => {
                            flush(&mut text, &mut nodes);
                            let (body, end) = self.block()?;
                            if !matches!(end, BlockEnd::End) {
                                return Err(self.error_at(
                                    start,
                                    &format!("#foreach closed by {}", end.name()),
                                ));
                            }
                            nodes.push(Node::Foreach(name, list, body));
                        }
                        Directive::Close(end) => {
                            flush(&mut text, &mut nodes);
                            return Ok((nodes, end));
                        }
                    }
                }
                _ => {
                    let next = self.rest()[c.len_utf8()..]
                        .find(['$', '#', '\\'])
                        .map_or(self.src.len(), |i| self.at + c.len_utf8() + i);
                    text.push_str(&self.src[self.at..next]);
                    self.at = next;
                }
            }
        }
        flush(&mut text, &mut nodes);
        Ok((nodes, BlockEnd::Eof))
    }

    /// The bodies of an `#if` whose condition was just read, through its
    /// `#end`.
    fn if_chain(&mut self, start: usize, condition: Expr) -> Result<Node, TemplateError> {
        let mut branches = Vec::new();
        let mut condition = condition;
        loop {
            let (body, end) = self.block()?;
            branches.push((condition, body));
            match end {
                BlockEnd::End => return Ok(Node::If(branches, Vec::new())),
                BlockEnd::ElseIf(next) => condition = next,
                BlockEnd::Else => {
                    let (otherwise, end) = self.block()?;
                    if !matches!(end, BlockEnd::End) {
                        return Err(
                            self.error_at(start, &format!("#else closed by {}", end.name()))
                        );
                    }
                    return Ok(Node::If(branches, otherwise));
                }
                BlockEnd::Eof => return Err(self.error_at(start, "#if without #end")),
            }
        }
    }

    /// A directive alone on its line (white space around it) takes the
    /// line with it: the indentation already in `text` and the line break
    /// after it.
    fn gobble_line(&mut self, start: usize, text: &mut String) {
        let line_start = self.src[..start].rfind('\n').map_or(0, |i| i + 1);
        let before = &self.src[line_start..start];
        if !before.chars().all(|c| c == ' ' || c == '\t') || !text.ends_with(before) {
            return;
        }
        let rest = self.rest();
        let line_end = rest.find('\n');
        let after = &rest[..line_end.unwrap_or(rest.len())];
        if !after
            .trim_end_matches('\r')
            .chars()
            .all(|c| c == ' ' || c == '\t')
        {
            return;
        }
        text.truncate(text.len() - before.len());
        self.at += line_end.map_or(rest.len(), |i| i + 1);
    }

    /// At a `#`: a directive or comment, or `None` when the `#` is text.
    fn directive(&mut self) -> Result<Option<Directive>, TemplateError> {
        let start = self.at;
        self.at += 1;
        if self.eat("#") {
            // Up to the line break, which goes too when the comment is
            // alone on its line.
            self.at = self
                .rest()
                .find('\n')
                .map_or(self.src.len(), |i| self.at + i);
            return Ok(Some(Directive::Comment));
        }
        if self.eat("*") {
            let Some(end) = self.rest().find("*#") else {
                return Err(self.error_at(start, "unterminated comment #*"));
            };
            self.at += end + 2;
            return Ok(Some(Directive::Comment));
        }
        if self.eat("[[") {
            let Some(end) = self.rest().find("]]#") else {
                return Err(self.error_at(start, "unterminated #[[ ]]#"));
            };
            let text = self.rest()[..end].to_string();
            self.at += end + 3;
            return Ok(Some(Directive::Node(Node::Text(text))));
        }
        let braced = self.eat("{");
        let Some(name) = self.identifier() else {
            self.at = start;
            return Ok(None);
        };
        if braced && !self.eat("}") {
            self.at = start;
            return Ok(None);
        }
        let directive = match name.as_str() {
            "end" => Directive::Close(BlockEnd::End),
            "else" => Directive::Close(BlockEnd::Else),
            "break" => Directive::Node(Node::Break),
            "stop" => Directive::Node(Node::Stop),
            "elseif" => Directive::Close(BlockEnd::ElseIf(self.condition(&name)?)),
            "if" => Directive::If(self.condition(&name)?),
            "set" => {
                self.open(&name)?;
                self.skip_spaces();
                let at = self.at;
                let target = match self.reference()? {
                    Some(r) if r.parts.iter().all(|p| matches!(p, Part::Member(_))) => r,
                    _ => return Err(self.error_at(at, "#set needs a reference to assign")),
                };
                self.skip_spaces();
                if !self.eat("=") {
                    return Err(self.error_at(self.at, "#set needs '='"));
                }
                let value = self.expression()?;
                self.close(&name)?;
                Directive::Node(Node::Set(target, value))
            }
            "foreach" => {
                self.open(&name)?;
                self.skip_spaces();
                let at = self.at;
                let variable = match self.reference()? {
                    Some(r) if r.parts.is_empty() => r.root,
                    _ => return Err(self.error_at(at, "#foreach needs a variable")),
                };
                self.skip_spaces();
                if !(self.eat("in") && self.rest().starts_with(char::is_whitespace)) {
                    return Err(self.error_at(self.at, "#foreach needs 'in'"));
                }
                let list = self.expression()?;
                self.close(&name)?;
                Directive::Foreach(variable, list)
            }
            // Not a directive Strato knows (`#macro`, `#include`, or
            // plain text such as a colour `#fff`): text.
            _ => {
                self.at = start;
                return Ok(None);
            }
        };
        Ok(Some(directive))
    }

    fn open(&mut self, name: &str) -> Result<(), TemplateError> {
        self.skip_spaces();
        if self.eat("(") {
            Ok(())
        } else {
            Err(self.error_at(self.at, &format!("#{name} needs '('")))
        }
    }

    fn close(&mut self, name: &str) -> Result<(), TemplateError> {
        self.skip_spaces();
        if self.eat(")") {
            Ok(())
        } else {
            Err(self.error_at(self.at, &format!("#{name}( ... ) is not closed")))
        }
    }

    fn condition(&mut self, name: &str) -> Result<Expr, TemplateError> {
        self.open(name)?;
        let condition = self.expression()?;
        self.close(name)?;
        Ok(condition)
    }

    /// At a `$`: a reference, or `None` when what follows names nothing
    /// (`$5`, `$ `), which is then text.
    fn reference(&mut self) -> Result<Option<Reference>, TemplateError> {
        let start = self.at;
        self.at += 1;
        let quiet = self.eat("!");
        let braced = self.eat("{");
        let Some(root) = self.identifier() else {
            self.at = start;
            return Ok(None);
        };
        let mut parts = Vec::new();
        loop {
            let before = self.at;
            if self.eat("[") {
                let index = self.expression()?;
                self.skip_spaces();
                if !self.eat("]") {
                    return Err(self.error_at(before, "index [ ] is not closed"));
                }
                parts.push(Part::Index(index));
                continue;
            }
            if !self.eat(".") {
                break;
            }
            let Some(name) = self.identifier() else {
                self.at = before;
                break;
            };
            if self.eat("(") {
                parts.push(Part::Call(name, self.arguments(before)?));
            } else {
                parts.push(Part::Member(name));
            }
        }
        if braced && !self.eat("}") {
            return Err(self.error_at(start, "${ is not closed by }"));
        }
        Ok(Some(Reference {
            raw: self.src[start..self.at].to_string(),
            quiet,
            root,
            parts,
        }))
    }

    /// A method's arguments, after its `(`, through the `)`.
    fn arguments(&mut self, start: usize) -> Result<Vec<Expr>, TemplateError> {
        let mut args = Vec::new();
        loop {
            self.skip_spaces();
            if self.eat(")") {
                return Ok(args);
            }
            if !args.is_empty() && !self.eat(",") {
                return Err(self.error_at(start, "method arguments are not closed by )"));
            }
            args.push(self.expression()?);
        }
    }

    pub(super) fn expression(&mut self) -> Result<Expr, TemplateError> {
        self.binary(0)
    }

    /// Operators by precedence, lowest first; each level's words too.
    fn operator(&mut self, level: usize) -> Option<Op> {
        const LEVELS: [&[(&str, Op)]; 5] = [
            &[("||", Op::Or), ("or", Op::Or)],
            &[("&&", Op::And), ("and", Op::And)],
            &[
                ("==", Op::Eq),
                ("!=", Op::Ne),
                ("<=", Op::Le),
                (">=", Op::Ge),
                ("<", Op::Lt),
                (">", Op::Gt),
                ("eq", Op::Eq),
                ("ne", Op::Ne),
                ("le", Op::Le),
                ("ge", Op::Ge),
                ("lt", Op::Lt),
                ("gt", Op::Gt),
            ],
            &[("+", Op::Add), ("-", Op::Sub)],
            &[("*", Op::Mul), ("/", Op::Div), ("%", Op::Mod)],
        ];
        self.skip_spaces();
        for (symbol, op) in LEVELS[level] {
            let rest = self.rest();
            let word = symbol.chars().all(|c| c.is_ascii_alphabetic());
            if rest.starts_with(symbol)
                && !(word && rest[symbol.len()..].starts_with(is_identifier_char))
            {
                self.at += symbol.len();
                return Some(*op);
            }
        }
        None
    }

    fn binary(&mut self, level: usize) -> Result<Expr, TemplateError> {
        if level == 5 {
            return self.unary();
        }
        let mut left = self.binary(level + 1)?;
        while let Some(op) = self.operator(level) {
            let right = self.binary(level + 1)?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, TemplateError> {
        self.skip_spaces();
        if self.rest().starts_with('!') && !self.rest().starts_with("!=") {
            self.at += 1;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.rest().starts_with("not") && !self.rest()[3..].starts_with(is_identifier_char) {
            self.at += 3;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.rest().starts_with('-')
            && !self.rest()[1..].starts_with(|c: char| c.is_ascii_digit())
        {
            self.at += 1;
            return Ok(Expr::Neg(Box::new(self.unary()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, TemplateError> {
        self.skip_spaces();
        let start = self.at;
        let Some(c) = self.peek() else {
            return Err(self.error_at(start, "an expression was expected"));
        };
        match c {
            '$' => match self.reference()? {
                Some(reference) => Ok(Expr::Ref(reference)),
                None => Err(self.error_at(start, "a reference was expected after $")),
            },
            '(' => {
                self.at += 1;
                let inner = self.expression()?;
                self.skip_spaces();
                if !self.eat(")") {
                    return Err(self.error_at(start, "( is not closed"));
                }
                Ok(inner)
            }
            '\'' | '"' => self.string(c),
            '[' => self.list(),
            '{' => self.map(),
            c if c.is_ascii_digit() || c == '-' => self.number(),
            _ => {
                for (word, value) in [("true", true), ("false", false)] {
                    if self.rest().starts_with(word)
                        && !self.rest()[word.len()..].starts_with(is_identifier_char)
                    {
                        self.at += word.len();
                        return Ok(Expr::Literal(Value::Bool(value)));
                    }
                }
                Err(self.error_at(start, &format!("unexpected '{c}' in an expression")))
            }
        }
    }

    fn number(&mut self) -> Result<Expr, TemplateError> {
        let start = self.at;
        let rest = self.rest();
        let mut end = usize::from(rest.starts_with('-'));
        end += rest[end..]
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len() - end);
        // A fraction, but not a range's `..`.
        if rest[end..].starts_with('.') && rest[end + 1..].starts_with(|c: char| c.is_ascii_digit())
        {
            end += 1;
            end += rest[end..]
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len() - end);
        }
        let number: Value = serde_json::from_str(&rest[..end])
            .map_err(|_| self.error_at(start, "malformed number"))?;
        self.at += end;
        Ok(Expr::Literal(number))
    }

    fn string(&mut self, quote: char) -> Result<Expr, TemplateError> {
        let start = self.at;
        self.at += 1;
        let body_start = self.at;
        let mut end = None;
        let mut chars = self.rest().char_indices();
        while let Some((i, c)) = chars.next() {
            if c == '\\' && quote == '"' {
                chars.next();
            } else if c == quote {
                end = Some(i);
                break;
            }
        }
        let Some(end) = end else {
            return Err(self.error_at(start, "unterminated string"));
        };
        let body = &self.src[body_start..body_start + end];
        self.at = body_start + end + 1;
        if quote == '\'' || !body.contains(['$', '#', '\\']) {
            return Ok(Expr::Literal(Value::String(body.to_string())));
        }
        let unescaped = body.replace("\\\"", "\"");
        let mut inner = Parser {
            src: &unescaped,
            at: 0,
        };
        match inner.block()? {
            (nodes, BlockEnd::Eof) => Ok(Expr::Interpolated(nodes)),
            (_, end) => {
                Err(self.error_at(start, &format!("unexpected {} in a string", end.name())))
            }
        }
    }

    fn list(&mut self) -> Result<Expr, TemplateError> {
        let start = self.at;
        self.at += 1;
        self.skip_spaces();
        if self.eat("]") {
            return Ok(Expr::List(Vec::new()));
        }
        let first = self.expression()?;
        self.skip_spaces();
        if self.eat("..") {
            let last = self.expression()?;
            self.skip_spaces();
            if !self.eat("]") {
                return Err(self.error_at(start, "range [ .. ] is not closed"));
            }
            return Ok(Expr::Range(Box::new(first), Box::new(last)));
        }
        let mut items = vec![first];
        loop {
            self.skip_spaces();
            if self.eat("]") {
                return Ok(Expr::List(items));
            }
            if !self.eat(",") {
                return Err(self.error_at(start, "list [ ] is not closed"));
            }
            items.push(self.expression()?);
        }
    }

    fn map(&mut self) -> Result<Expr, TemplateError> {
        let start = self.at;
        self.at += 1;
        let mut entries = Vec::new();
        loop {
            self.skip_spaces();
            if self.eat("}") {
                return Ok(Expr::Map(entries));
            }
            if !entries.is_empty() && !self.eat(",") {
                return Err(self.error_at(start, "map { } is not closed"));
            }
            let key = self.expression()?;
            self.skip_spaces();
            if !self.eat(":") {
                return Err(self.error_at(self.at, "a map entry needs ':'"));
            }
            entries.push((key, self.expression()?));
        }
    }
}

enum Directive {
    Node(Node),
    Comment,
    If(Expr),
    Foreach(String, Expr),
    Close(BlockEnd),
}
