//! CloudWatch Logs filter patterns: terms, quoted phrases, `?term`
//! alternatives, `-term` exclusions, and JSON patterns such as
//! `{ $.level = "ERROR" && $.latency > 100 }`.

use serde_json::Value;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("Invalid filter pattern: {0}")]
pub struct PatternError(pub String);

/// A parsed filter pattern.
#[derive(Debug, Clone, PartialEq)]
pub enum FilterPattern {
    /// Matches every event (an empty pattern).
    All,
    Terms {
        /// Every one must occur.
        required: Vec<String>,
        /// At least one must occur, when there are any.
        any_of: Vec<String>,
        /// None may occur.
        excluded: Vec<String>,
    },
    Json(JsonExpr),
}

#[derive(Debug, Clone, PartialEq)]
pub enum JsonExpr {
    And(Box<JsonExpr>, Box<JsonExpr>),
    Or(Box<JsonExpr>, Box<JsonExpr>),
    Compare {
        selector: Vec<PathStep>,
        op: CompareOp,
        value: Literal,
    },
    IsNull(Vec<PathStep>),
    NotExists(Vec<PathStep>),
    IsBool(Vec<PathStep>, bool),
}

#[derive(Debug, Clone, PartialEq)]
pub enum PathStep {
    Field(String),
    Index(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Number(f64),
    /// A string; `*` matches any run of characters.
    Text(String),
}

impl FilterPattern {
    pub fn parse(pattern: &str) -> Result<FilterPattern, PatternError> {
        let trimmed = pattern.trim();
        if trimmed.is_empty() {
            return Ok(FilterPattern::All);
        }
        if trimmed.starts_with('{') {
            let inner = trimmed
                .strip_prefix('{')
                .and_then(|s| s.strip_suffix('}'))
                .ok_or_else(|| PatternError("a JSON pattern must end with '}'".into()))?;
            let tokens = tokenize(inner)?;
            let mut parser = JsonParser { tokens, pos: 0 };
            let expr = parser.or_expr()?;
            if parser.pos != parser.tokens.len() {
                return Err(PatternError(format!(
                    "unexpected {:?}",
                    parser.tokens[parser.pos]
                )));
            }
            return Ok(FilterPattern::Json(expr));
        }
        let mut required = Vec::new();
        let mut any_of = Vec::new();
        let mut excluded = Vec::new();
        for term in split_terms(trimmed)? {
            match term {
                Term::Plain(t) => {
                    if let Some(rest) = t.strip_prefix('?') {
                        if !rest.is_empty() {
                            any_of.push(rest.to_string());
                        }
                    } else if let Some(rest) = t.strip_prefix('-') {
                        if !rest.is_empty() {
                            excluded.push(rest.to_string());
                        }
                    } else {
                        required.push(t);
                    }
                }
                Term::Quoted { prefix, text } => match prefix {
                    Some('?') => any_of.push(text),
                    Some('-') => excluded.push(text),
                    _ => required.push(text),
                },
            }
        }
        Ok(FilterPattern::Terms {
            required,
            any_of,
            excluded,
        })
    }

    pub fn matches(&self, message: &str) -> bool {
        match self {
            FilterPattern::All => true,
            FilterPattern::Terms {
                required,
                any_of,
                excluded,
            } => {
                required.iter().all(|t| message.contains(t.as_str()))
                    && (any_of.is_empty() || any_of.iter().any(|t| message.contains(t.as_str())))
                    && !excluded.iter().any(|t| message.contains(t.as_str()))
            }
            FilterPattern::Json(expr) => match serde_json::from_str::<Value>(message.trim()) {
                Ok(doc) => eval(expr, &doc),
                Err(_) => false,
            },
        }
    }
}

enum Term {
    Plain(String),
    Quoted { prefix: Option<char>, text: String },
}

fn split_terms(pattern: &str) -> Result<Vec<Term>, PatternError> {
    let mut terms = Vec::new();
    let mut chars = pattern.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut prefix = None;
        if c == '?' || c == '-' {
            let mut lookahead = chars.clone();
            lookahead.next();
            if lookahead.peek() == Some(&'"') {
                prefix = Some(c);
                chars.next();
            }
        }
        if chars.peek() == Some(&'"') {
            chars.next();
            let mut text = String::new();
            let mut closed = false;
            while let Some(ch) = chars.next() {
                match ch {
                    '\\' => {
                        if let Some(escaped) = chars.next() {
                            text.push(escaped);
                        }
                    }
                    '"' => {
                        closed = true;
                        break;
                    }
                    other => text.push(other),
                }
            }
            if !closed {
                return Err(PatternError("unterminated quoted term".into()));
            }
            terms.push(Term::Quoted { prefix, text });
        } else {
            let mut text = String::new();
            while let Some(&ch) = chars.peek() {
                if ch.is_whitespace() {
                    break;
                }
                text.push(ch);
                chars.next();
            }
            terms.push(Term::Plain(text));
        }
    }
    Ok(terms)
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Selector(Vec<PathStep>),
    Op(CompareOp),
    And,
    Or,
    Open,
    Close,
    Text(String),
    Word(String),
}

fn tokenize(input: &str) -> Result<Vec<Token>, PatternError> {
    let chars: Vec<char> = input.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                tokens.push(Token::Open);
                i += 1;
            }
            ')' => {
                tokens.push(Token::Close);
                i += 1;
            }
            '&' if chars.get(i + 1) == Some(&'&') => {
                tokens.push(Token::And);
                i += 2;
            }
            '|' if chars.get(i + 1) == Some(&'|') => {
                tokens.push(Token::Or);
                i += 2;
            }
            '=' => {
                tokens.push(Token::Op(CompareOp::Eq));
                i += 1;
            }
            '!' if chars.get(i + 1) == Some(&'=') => {
                tokens.push(Token::Op(CompareOp::Ne));
                i += 2;
            }
            '<' | '>' => {
                let or_equal = chars.get(i + 1) == Some(&'=');
                let op = match (c, or_equal) {
                    ('<', true) => CompareOp::Le,
                    ('<', false) => CompareOp::Lt,
                    (_, true) => CompareOp::Ge,
                    _ => CompareOp::Gt,
                };
                tokens.push(Token::Op(op));
                i += if or_equal { 2 } else { 1 };
            }
            '"' => {
                let mut text = String::new();
                i += 1;
                let mut closed = false;
                while i < chars.len() {
                    match chars[i] {
                        '\\' if i + 1 < chars.len() => {
                            text.push(chars[i + 1]);
                            i += 2;
                        }
                        '"' => {
                            closed = true;
                            i += 1;
                            break;
                        }
                        other => {
                            text.push(other);
                            i += 1;
                        }
                    }
                }
                if !closed {
                    return Err(PatternError("unterminated string".into()));
                }
                tokens.push(Token::Text(text));
            }
            '$' => {
                let start = i;
                i += 1;
                while i < chars.len()
                    && (chars[i].is_alphanumeric()
                        || matches!(chars[i], '.' | '_' | '[' | ']' | '-'))
                {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                tokens.push(Token::Selector(parse_selector(&text)?));
            }
            _ => {
                let start = i;
                while i < chars.len()
                    && !chars[i].is_whitespace()
                    && !matches!(chars[i], '(' | ')' | '=' | '!' | '<' | '>' | '&' | '|')
                {
                    i += 1;
                }
                if start == i {
                    return Err(PatternError(format!("unexpected '{c}'")));
                }
                tokens.push(Token::Word(chars[start..i].iter().collect()));
            }
        }
    }
    Ok(tokens)
}

fn parse_selector(text: &str) -> Result<Vec<PathStep>, PatternError> {
    let rest = text
        .strip_prefix('$')
        .ok_or_else(|| PatternError(format!("bad selector {text}")))?;
    let mut steps = Vec::new();
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '.' => {
                let mut name = String::new();
                while let Some(&ch) = chars.peek() {
                    if ch == '.' || ch == '[' {
                        break;
                    }
                    name.push(ch);
                    chars.next();
                }
                if name.is_empty() {
                    return Err(PatternError(format!("bad selector {text}")));
                }
                steps.push(PathStep::Field(name));
            }
            '[' => {
                let mut digits = String::new();
                for ch in chars.by_ref() {
                    if ch == ']' {
                        break;
                    }
                    digits.push(ch);
                }
                let index = digits
                    .parse()
                    .map_err(|_| PatternError(format!("bad index in {text}")))?;
                steps.push(PathStep::Index(index));
            }
            _ => return Err(PatternError(format!("bad selector {text}"))),
        }
    }
    Ok(steps)
}

struct JsonParser {
    tokens: Vec<Token>,
    pos: usize,
}

impl JsonParser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        token
    }

    fn or_expr(&mut self) -> Result<JsonExpr, PatternError> {
        let mut left = self.and_expr()?;
        while self.peek() == Some(&Token::Or) {
            self.pos += 1;
            let right = self.and_expr()?;
            left = JsonExpr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and_expr(&mut self) -> Result<JsonExpr, PatternError> {
        let mut left = self.term()?;
        while self.peek() == Some(&Token::And) {
            self.pos += 1;
            let right = self.term()?;
            left = JsonExpr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn term(&mut self) -> Result<JsonExpr, PatternError> {
        match self.next() {
            Some(Token::Open) => {
                let inner = self.or_expr()?;
                match self.next() {
                    Some(Token::Close) => Ok(inner),
                    _ => Err(PatternError("missing ')'".into())),
                }
            }
            Some(Token::Selector(selector)) => match self.next() {
                Some(Token::Op(op)) => {
                    let value = match self.next() {
                        Some(Token::Text(text)) => Literal::Text(text),
                        Some(Token::Word(word)) => match word.parse::<f64>() {
                            Ok(n) => Literal::Number(n),
                            Err(_) => Literal::Text(word),
                        },
                        other => {
                            return Err(PatternError(format!("expected a value, got {other:?}")))
                        }
                    };
                    Ok(JsonExpr::Compare {
                        selector,
                        op,
                        value,
                    })
                }
                Some(Token::Word(word)) if word.eq_ignore_ascii_case("IS") => match self.next() {
                    Some(Token::Word(w)) if w.eq_ignore_ascii_case("NULL") => {
                        Ok(JsonExpr::IsNull(selector))
                    }
                    Some(Token::Word(w)) if w.eq_ignore_ascii_case("TRUE") => {
                        Ok(JsonExpr::IsBool(selector, true))
                    }
                    Some(Token::Word(w)) if w.eq_ignore_ascii_case("FALSE") => {
                        Ok(JsonExpr::IsBool(selector, false))
                    }
                    other => Err(PatternError(format!("unexpected {other:?} after IS"))),
                },
                Some(Token::Word(word)) if word.eq_ignore_ascii_case("NOT") => match self.next() {
                    Some(Token::Word(w)) if w.eq_ignore_ascii_case("EXISTS") => {
                        Ok(JsonExpr::NotExists(selector))
                    }
                    other => Err(PatternError(format!("unexpected {other:?} after NOT"))),
                },
                other => Err(PatternError(format!("expected an operator, got {other:?}"))),
            },
            other => Err(PatternError(format!("expected a selector, got {other:?}"))),
        }
    }
}

fn select<'a>(doc: &'a Value, path: &[PathStep]) -> Option<&'a Value> {
    let mut current = doc;
    for step in path {
        current = match step {
            PathStep::Field(name) => current.get(name)?,
            PathStep::Index(index) => current.get(*index)?,
        };
    }
    Some(current)
}

fn eval(expr: &JsonExpr, doc: &Value) -> bool {
    match expr {
        JsonExpr::And(a, b) => eval(a, doc) && eval(b, doc),
        JsonExpr::Or(a, b) => eval(a, doc) || eval(b, doc),
        JsonExpr::IsNull(path) => matches!(select(doc, path), Some(Value::Null)),
        JsonExpr::NotExists(path) => select(doc, path).is_none(),
        JsonExpr::IsBool(path, want) => select(doc, path) == Some(&Value::Bool(*want)),
        JsonExpr::Compare {
            selector,
            op,
            value,
        } => {
            let Some(found) = select(doc, selector) else {
                return false;
            };
            match value {
                Literal::Number(n) => {
                    let Some(actual) = found.as_f64() else {
                        return false;
                    };
                    match op {
                        CompareOp::Eq => actual == *n,
                        CompareOp::Ne => actual != *n,
                        CompareOp::Lt => actual < *n,
                        CompareOp::Le => actual <= *n,
                        CompareOp::Gt => actual > *n,
                        CompareOp::Ge => actual >= *n,
                    }
                }
                Literal::Text(pattern) => {
                    let actual = match found {
                        Value::String(s) => s.clone(),
                        Value::Bool(b) => b.to_string(),
                        Value::Number(n) => n.to_string(),
                        _ => return false,
                    };
                    match op {
                        CompareOp::Eq => wildcard_match(pattern, &actual),
                        CompareOp::Ne => !wildcard_match(pattern, &actual),
                        _ => false,
                    }
                }
            }
        }
    }
}

/// `*` matches any run of characters; everything else literally.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let mut rest = text;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(pos) => rest = &rest[pos + part.len()..],
                None => return false,
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, message: &str) -> bool {
        FilterPattern::parse(pattern).unwrap().matches(message)
    }

    #[test]
    fn every_plain_term_must_occur() {
        assert!(matches("ERROR timeout", "ERROR: a timeout happened"));
        assert!(!matches("ERROR timeout", "ERROR: all good"));
    }

    #[test]
    fn quoted_phrases_match_exactly() {
        assert!(matches("\"disk full\"", "warning: disk full now"));
        assert!(!matches("\"disk full\"", "disk is full"));
    }

    #[test]
    fn question_mark_terms_are_alternatives() {
        assert!(matches("?ERROR ?WARN", "WARN low memory"));
        assert!(!matches("?ERROR ?WARN", "INFO fine"));
    }

    #[test]
    fn minus_terms_exclude() {
        assert!(matches("ERROR -retry", "ERROR fatal"));
        assert!(!matches("ERROR -retry", "ERROR will retry"));
    }

    #[test]
    fn json_patterns_compare_fields() {
        let msg = r#"{"level":"ERROR","latency":250,"user":{"id":"u-7"},"tags":["a","b"]}"#;
        assert!(matches(r#"{ $.level = "ERROR" }"#, msg));
        assert!(matches("{ $.latency > 100 && $.user.id = u-* }", msg));
        assert!(!matches("{ $.latency < 100 }", msg));
        assert!(matches("{ ($.latency < 100) || $.tags[1] = \"b\" }", msg));
        assert!(matches("{ $.missing NOT EXISTS }", msg));
        assert!(!matches(r#"{ $.level = "ERROR" }"#, "not json"));
    }

    #[test]
    fn malformed_json_patterns_are_errors() {
        assert!(FilterPattern::parse("{ $.a = }").is_err());
        assert!(FilterPattern::parse("{ $.a = 1").is_err());
    }
}
