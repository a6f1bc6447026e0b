//! Evaluating a parsed template: variables, `#set`, `#if`, `#foreach`, the
//! methods API Gateway's templates call, and values rendered as Java
//! renders them (`{a=1, b=x}` for a map, `[1, 2]` for a list), since
//! `$input.path` hands templates Java objects.

use std::cell::OnceCell;
use std::collections::HashMap;

use base64::Engine as _;
use serde_json::{Map, Number, Value};
use strato_pattern::json_path;

use super::parse::{Expr, Node, Op, Part, Reference};
use super::{TemplateError, TemplateInput};

/// Most a template may write: API Gateway's payload limit.
const MAX_OUTPUT: usize = 10 * 1024 * 1024;
/// Most nodes and loop turns one rendering may take, so that a template
/// looping over a huge range fails instead of holding a worker.
const MAX_STEPS: u64 = 1_000_000;

/// What an expression evaluates to.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Val {
    Null,
    /// `$input`, before a member or method of it.
    Input,
    /// `$util`, before a method of it.
    Util,
    Json(Value),
}

impl Val {
    fn json(self) -> Value {
        match self {
            Val::Json(v) => v,
            Val::Null | Val::Input | Val::Util => Value::Null,
        }
    }

    fn truthy(&self) -> bool {
        !matches!(
            self,
            Val::Null | Val::Json(Value::Null) | Val::Json(Value::Bool(false))
        )
    }

    /// The value as text, as Java's `toString` writes it; `None` for null.
    fn text(&self) -> Option<String> {
        match self {
            Val::Json(Value::Null) | Val::Null | Val::Input | Val::Util => None,
            Val::Json(v) => Some(java_text(v)),
        }
    }
}

fn string(s: impl Into<String>) -> Val {
    Val::Json(Value::String(s.into()))
}

/// Java's `toString` of what `$input.path` returns: strings as they are,
/// maps `{a=1, b=x}`, lists `[1, 2]`.
pub(super) fn java_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(java_text).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(map) => {
            let entries: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{k}={}", java_text(v)))
                .collect();
            format!("{{{}}}", entries.join(", "))
        }
        other => other.to_string(),
    }
}

enum Flow {
    Next,
    Break,
    Stop,
}

#[derive(Clone, Copy)]
enum Num {
    Int(i64),
    Float(f64),
}

impl Num {
    fn of(value: &Val) -> Option<Num> {
        match value {
            Val::Json(Value::Number(n)) => Some(match n.as_i64() {
                Some(i) => Num::Int(i),
                None => Num::Float(n.as_f64()?),
            }),
            _ => None,
        }
    }

    fn float(self) -> f64 {
        match self {
            // A template's integers are small enough to be exact.
            #[allow(clippy::cast_precision_loss)]
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }

    fn value(self) -> Val {
        match self {
            Num::Int(i) => Val::Json(i.into()),
            Num::Float(f) => Number::from_f64(f).map_or(Val::Null, |n| Val::Json(Value::Number(n))),
        }
    }
}

pub(super) struct Eval<'a> {
    input: &'a TemplateInput<'a>,
    vars: HashMap<String, Val>,
    body: OnceCell<Value>,
    out: String,
    steps: u64,
}

impl<'a> Eval<'a> {
    pub(super) fn new(input: &'a TemplateInput<'a>) -> Eval<'a> {
        let vars = HashMap::from([
            ("input".to_string(), Val::Input),
            ("util".to_string(), Val::Util),
            ("context".to_string(), Val::Json(input.context.clone())),
            (
                "stageVariables".to_string(),
                Val::Json(serde_json::json!(input.stage_variables)),
            ),
        ]);
        Eval {
            input,
            vars,
            body: OnceCell::new(),
            out: String::new(),
            steps: 0,
        }
    }

    /// Renders `nodes`; the text written and `$context` as the template
    /// left it.
    pub(super) fn run(mut self, nodes: &[Node]) -> Result<(String, Value), TemplateError> {
        self.nodes(nodes)?;
        let context = self.vars.remove("context").map_or(Value::Null, Val::json);
        Ok((self.out, context))
    }

    fn step(&mut self, count: u64) -> Result<(), TemplateError> {
        self.steps += count;
        if self.steps > MAX_STEPS {
            return Err(TemplateError::Runtime(format!(
                "the template took more than {MAX_STEPS} steps"
            )));
        }
        Ok(())
    }

    fn write(&mut self, text: &str) -> Result<(), TemplateError> {
        if self.out.len() + text.len() > MAX_OUTPUT {
            return Err(TemplateError::Runtime(format!(
                "the template wrote more than {MAX_OUTPUT} bytes"
            )));
        }
        self.out.push_str(text);
        Ok(())
    }

    fn nodes(&mut self, nodes: &[Node]) -> Result<Flow, TemplateError> {
        for node in nodes {
            self.step(1)?;
            match node {
                Node::Text(text) => self.write(text)?,
                Node::Ref(reference) => match self.reference(reference)? {
                    None if reference.quiet => {}
                    None => self.write(&reference.raw)?,
                    Some(value) => {
                        if let Some(text) = value.text() {
                            self.write(&text)?;
                        }
                    }
                },
                Node::Set(target, value) => {
                    let value = self.expr(value)?;
                    self.assign(target, value);
                }
                Node::If(branches, otherwise) => {
                    let mut chosen = otherwise;
                    for (condition, body) in branches {
                        if self.expr(condition)?.truthy() {
                            chosen = body;
                            break;
                        }
                    }
                    match self.nodes(chosen)? {
                        Flow::Next => {}
                        flow => return Ok(flow),
                    }
                }
                Node::Foreach(name, list, body) => {
                    if let Flow::Stop = self.foreach(name, list, body)? {
                        return Ok(Flow::Stop);
                    }
                }
                Node::Break => return Ok(Flow::Break),
                Node::Stop => return Ok(Flow::Stop),
            }
        }
        Ok(Flow::Next)
    }

    fn foreach(&mut self, name: &str, list: &Expr, body: &[Node]) -> Result<Flow, TemplateError> {
        let items = match self.expr(list)? {
            Val::Json(Value::Array(items)) => items,
            Val::Json(Value::Object(map)) => map.into_iter().map(|(_, v)| v).collect(),
            _ => Vec::new(),
        };
        let names = [name, "foreach", "velocityCount", "velocityHasNext"];
        let saved: Vec<Option<Val>> = names.iter().map(|n| self.vars.remove(*n)).collect();
        let count = items.len();
        let mut flow = Flow::Next;
        for (index, item) in items.into_iter().enumerate() {
            self.step(1)?;
            let has_next = index + 1 < count;
            self.vars.insert(name.to_string(), Val::Json(item));
            self.vars.insert(
                "foreach".into(),
                Val::Json(serde_json::json!({
                    "index": index, "count": index + 1, "hasNext": has_next,
                    "first": index == 0, "last": !has_next,
                })),
            );
            self.vars
                .insert("velocityCount".into(), Val::Json((index + 1).into()));
            self.vars
                .insert("velocityHasNext".into(), Val::Json(has_next.into()));
            match self.nodes(body)? {
                Flow::Next => {}
                Flow::Break => break,
                Flow::Stop => {
                    flow = Flow::Stop;
                    break;
                }
            }
        }
        for (name, old) in names.iter().zip(saved) {
            match old {
                Some(old) => self.vars.insert(name.to_string(), old),
                None => self.vars.remove(*name),
            };
        }
        Ok(flow)
    }

    /// `#set($a = v)`, `#set($a.b.c = v)` (members made as needed).
    fn assign(&mut self, target: &Reference, value: Val) {
        let members: Vec<&str> = target
            .parts
            .iter()
            .filter_map(|p| match p {
                Part::Member(m) => Some(m.as_str()),
                _ => None,
            })
            .collect();
        let Some((last, path)) = members.split_last() else {
            self.vars.insert(target.root.clone(), value);
            return;
        };
        let root = self
            .vars
            .entry(target.root.clone())
            .or_insert_with(|| Val::Json(Value::Object(Map::new())));
        if !matches!(root, Val::Json(Value::Object(_))) {
            *root = Val::Json(Value::Object(Map::new()));
        }
        let Val::Json(root) = root else {
            return;
        };
        let mut at: &mut Value = root;
        for member in path {
            let Value::Object(map) = at else {
                return;
            };
            let next = map
                .entry(member.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if !next.is_object() {
                *next = Value::Object(Map::new());
            }
            at = next;
        }
        if let Value::Object(map) = at {
            map.insert(last.to_string(), value.json());
        }
    }

    /// A reference's value, or `None` when its root names nothing.
    fn reference(&mut self, reference: &Reference) -> Result<Option<Val>, TemplateError> {
        if let Some(value) = self.mutation(reference)? {
            return Ok(Some(value));
        }
        let Some(mut value) = self.vars.get(&reference.root).cloned() else {
            return Ok(None);
        };
        for part in &reference.parts {
            value = match part {
                Part::Member(name) => self.member(value, name),
                Part::Index(index) => {
                    let index = self.expr(index)?;
                    match (value, index) {
                        (Val::Json(Value::Array(items)), Val::Json(Value::Number(n))) => n
                            .as_u64()
                            .and_then(|i| items.into_iter().nth(usize::try_from(i).ok()?))
                            .map_or(Val::Null, Val::Json),
                        (Val::Json(Value::Object(mut map)), key) => key
                            .text()
                            .and_then(|k| map.remove(&k))
                            .map_or(Val::Null, Val::Json),
                        _ => Val::Null,
                    }
                }
                Part::Call(name, args) => {
                    let args = args
                        .iter()
                        .map(|a| self.expr(a))
                        .collect::<Result<Vec<_>, _>>()?;
                    self.call(value, name, args)
                }
            };
        }
        Ok(Some(value))
    }

    /// `$map.put(k, v)` and `$list.add(v)` on a variable (or a member of
    /// one) change it in place; `None` for any other reference.
    fn mutation(&mut self, reference: &Reference) -> Result<Option<Val>, TemplateError> {
        let Some((Part::Call(method, args), path)) = reference.parts.split_last() else {
            return Ok(None);
        };
        if !matches!(method.as_str(), "put" | "add")
            || !path.iter().all(|p| matches!(p, Part::Member(_)))
            || !self.vars.contains_key(&reference.root)
        {
            return Ok(None);
        }
        let args = args
            .iter()
            .map(|a| self.expr(a))
            .collect::<Result<Vec<_>, _>>()?;
        let Some(Val::Json(root)) = self.vars.get_mut(&reference.root) else {
            return Ok(Some(Val::Null));
        };
        let mut at: &mut Value = root;
        for part in path {
            let Part::Member(name) = part else {
                return Ok(Some(Val::Null));
            };
            match at.get_mut(name.as_str()) {
                Some(next) => at = next,
                None => return Ok(Some(Val::Null)),
            }
        }
        let mut args = args.into_iter();
        Ok(Some(match (at, method.as_str()) {
            (Value::Object(map), "put") => {
                let key = args.next().and_then(|k| k.text()).unwrap_or_default();
                let value = args.next().map_or(Value::Null, Val::json);
                map.insert(key, value).map_or(Val::Null, Val::Json)
            }
            (Value::Array(items), "add") => {
                items.push(args.next().map_or(Value::Null, Val::json));
                Val::Json(Value::Bool(true))
            }
            _ => Val::Null,
        }))
    }

    fn body_json(&self) -> &Value {
        self.body.get_or_init(|| {
            if self.input.body.trim().is_empty() {
                Value::Object(Map::new())
            } else {
                serde_json::from_str(self.input.body).unwrap_or(Value::Null)
            }
        })
    }

    fn member(&self, on: Val, name: &str) -> Val {
        match on {
            Val::Input if name == "body" => string(self.input.body),
            Val::Json(Value::Object(mut map)) => map.remove(name).map_or(Val::Null, Val::Json),
            _ => Val::Null,
        }
    }

    fn call(&self, on: Val, method: &str, args: Vec<Val>) -> Val {
        let first = args.first().and_then(Val::text);
        match on {
            Val::Input => match method {
                "json" | "path" => {
                    let path = first.unwrap_or_else(|| "$".into());
                    let Some(selected) = json_path::select(self.body_json(), &path) else {
                        return Val::Null;
                    };
                    if method == "json" {
                        string(selected.to_string())
                    } else {
                        Val::Json(selected.clone())
                    }
                }
                "params" => match first {
                    Some(name) => self.input.param(&name).map_or(Val::Null, string),
                    None => Val::Json(self.input.params()),
                },
                _ => Val::Null,
            },
            Val::Util => first.map_or(Val::Null, |text| utility(method, &text)),
            Val::Json(value) => json_method(value, method, &args),
            Val::Null => Val::Null,
        }
    }

    fn expr(&mut self, expr: &Expr) -> Result<Val, TemplateError> {
        Ok(match expr {
            Expr::Ref(reference) => self.reference(reference)?.unwrap_or(Val::Null),
            Expr::Literal(value) => Val::Json(value.clone()),
            Expr::Interpolated(nodes) => {
                let outer = std::mem::take(&mut self.out);
                let flow = self.nodes(nodes);
                let text = std::mem::replace(&mut self.out, outer);
                flow?;
                string(text)
            }
            Expr::List(items) => {
                let items = items
                    .iter()
                    .map(|i| self.expr(i).map(Val::json))
                    .collect::<Result<Vec<_>, _>>()?;
                Val::Json(Value::Array(items))
            }
            Expr::Map(entries) => {
                let mut map = Map::new();
                for (key, value) in entries {
                    let key = self.expr(key)?.text().unwrap_or_default();
                    map.insert(key, self.expr(value)?.json());
                }
                Val::Json(Value::Object(map))
            }
            Expr::Range(first, last) => {
                let (Some(Num::Int(first)), Some(Num::Int(last))) =
                    (Num::of(&self.expr(first)?), Num::of(&self.expr(last)?))
                else {
                    return Ok(Val::Null);
                };
                self.step(first.abs_diff(last))?;
                let items: Vec<Value> = if first <= last {
                    (first..=last).map(Value::from).collect()
                } else {
                    (last..=first).rev().map(Value::from).collect()
                };
                Val::Json(Value::Array(items))
            }
            Expr::Not(inner) => Val::Json(Value::Bool(!self.expr(inner)?.truthy())),
            Expr::Neg(inner) => match Num::of(&self.expr(inner)?) {
                Some(Num::Int(i)) => Num::Int(i.saturating_neg()).value(),
                Some(Num::Float(f)) => Num::Float(-f).value(),
                None => Val::Null,
            },
            Expr::Binary(Op::Or, left, right) => {
                let truth = self.expr(left)?.truthy() || self.expr(right)?.truthy();
                Val::Json(Value::Bool(truth))
            }
            Expr::Binary(Op::And, left, right) => {
                let truth = self.expr(left)?.truthy() && self.expr(right)?.truthy();
                Val::Json(Value::Bool(truth))
            }
            Expr::Binary(op, left, right) => {
                let left = self.expr(left)?;
                let right = self.expr(right)?;
                binary(*op, &left, &right)
            }
        })
    }
}

/// Velocity's `==`: numbers by value, otherwise by their text (so `1 ==
/// "1"`); null equals only null.
fn equal(left: &Val, right: &Val) -> bool {
    if let (Some(a), Some(b)) = (Num::of(left), Num::of(right)) {
        return a.float() == b.float();
    }
    match (left.text(), right.text()) {
        (None, None) => true,
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

fn binary(op: Op, left: &Val, right: &Val) -> Val {
    let boolean = |b: bool| Val::Json(Value::Bool(b));
    let order = || match (Num::of(left), Num::of(right)) {
        (Some(a), Some(b)) => a.float().partial_cmp(&b.float()),
        _ => match (left, right) {
            (Val::Json(Value::String(a)), Val::Json(Value::String(b))) => Some(a.cmp(b)),
            _ => None,
        },
    };
    match op {
        Op::Eq => boolean(equal(left, right)),
        Op::Ne => boolean(!equal(left, right)),
        Op::Lt => boolean(order().is_some_and(std::cmp::Ordering::is_lt)),
        Op::Le => boolean(order().is_some_and(std::cmp::Ordering::is_le)),
        Op::Gt => boolean(order().is_some_and(std::cmp::Ordering::is_gt)),
        Op::Ge => boolean(order().is_some_and(std::cmp::Ordering::is_ge)),
        Op::Add
            if matches!(left, Val::Json(Value::String(_)))
                || matches!(right, Val::Json(Value::String(_))) =>
        {
            string(format!(
                "{}{}",
                left.text().unwrap_or_else(|| "null".into()),
                right.text().unwrap_or_else(|| "null".into())
            ))
        }
        _ => arithmetic(op, left, right),
    }
}

fn arithmetic(op: Op, left: &Val, right: &Val) -> Val {
    let (Some(a), Some(b)) = (Num::of(left), Num::of(right)) else {
        return Val::Null;
    };
    if let (Num::Int(a), Num::Int(b)) = (a, b) {
        let result = match op {
            Op::Add => a.checked_add(b),
            Op::Sub => a.checked_sub(b),
            Op::Mul => a.checked_mul(b),
            Op::Div => a.checked_div(b),
            Op::Mod => a.checked_rem(b),
            _ => None,
        };
        return result.map_or(Val::Null, |r| Num::Int(r).value());
    }
    let (a, b) = (a.float(), b.float());
    let result = match op {
        Op::Add => a + b,
        Op::Sub => a - b,
        Op::Mul => a * b,
        Op::Div if b != 0.0 => a / b,
        Op::Mod if b != 0.0 => a % b,
        _ => return Val::Null,
    };
    Num::Float(result).value()
}

/// The Java methods templates call on strings, lists and maps.
fn json_method(value: Value, method: &str, args: &[Val]) -> Val {
    let text = |i: usize| args.get(i).and_then(Val::text).unwrap_or_default();
    let int = |i: usize| {
        args.get(i).and_then(Num::of).and_then(|n| match n {
            Num::Int(i) => usize::try_from(i).ok(),
            Num::Float(_) => None,
        })
    };
    let boolean = |b: bool| Val::Json(Value::Bool(b));
    let index_of = |found: Option<usize>| {
        Val::Json(found.map_or(-1, |i| i64::try_from(i).unwrap_or(-1)).into())
    };
    match method {
        "toString" => return Val::Json(value).text().map_or(Val::Null, string),
        "equals" => return boolean(equal(&Val::Json(value), args.first().unwrap_or(&Val::Null))),
        _ => {}
    }
    match value {
        Value::String(s) => {
            let chars = || s.chars();
            match method {
                "length" => Val::Json(chars().count().into()),
                "isEmpty" => boolean(s.is_empty()),
                "toLowerCase" => string(s.to_lowercase()),
                "toUpperCase" => string(s.to_uppercase()),
                "trim" => string(s.trim()),
                "contains" => boolean(s.contains(&text(0))),
                "startsWith" => boolean(s.starts_with(&text(0))),
                "endsWith" => boolean(s.ends_with(&text(0))),
                "equalsIgnoreCase" => boolean(s.to_lowercase() == text(0).to_lowercase()),
                "indexOf" => index_of(s.find(&text(0)).map(|b| s[..b].chars().count())),
                "lastIndexOf" => index_of(s.rfind(&text(0)).map(|b| s[..b].chars().count())),
                "concat" => string(format!("{s}{}", text(0))),
                "replace" => string(s.replace(&text(0), &text(1))),
                "charAt" => int(0)
                    .and_then(|i| chars().nth(i))
                    .map_or(Val::Null, |c| string(c.to_string())),
                "substring" => {
                    let count = chars().count();
                    let start = int(0).unwrap_or(0);
                    let end = int(1).unwrap_or(count);
                    if start > end || end > count {
                        return Val::Null;
                    }
                    string(chars().skip(start).take(end - start).collect::<String>())
                }
                "split" => {
                    let separator = text(0);
                    let mut parts: Vec<Value> = if separator.is_empty() {
                        chars().map(|c| Value::String(c.to_string())).collect()
                    } else {
                        s.split(separator.as_str())
                            .map(|p| Value::String(p.into()))
                            .collect()
                    };
                    // Java drops trailing empty strings.
                    while parts.last().is_some_and(|p| p.as_str() == Some("")) {
                        parts.pop();
                    }
                    Val::Json(Value::Array(parts))
                }
                _ => Val::Null,
            }
        }
        Value::Array(items) => match method {
            "size" => Val::Json(items.len().into()),
            "isEmpty" => boolean(items.is_empty()),
            "get" => int(0)
                .and_then(|i| items.into_iter().nth(i))
                .map_or(Val::Null, Val::Json),
            "contains" => {
                let wanted = args.first().unwrap_or(&Val::Null);
                boolean(items.into_iter().any(|i| equal(&Val::Json(i), wanted)))
            }
            "indexOf" => {
                let wanted = args.first().unwrap_or(&Val::Null);
                index_of(items.into_iter().position(|i| equal(&Val::Json(i), wanted)))
            }
            _ => Val::Null,
        },
        Value::Object(mut map) => match method {
            "size" => Val::Json(map.len().into()),
            "isEmpty" => boolean(map.is_empty()),
            "get" => map.remove(&text(0)).map_or(Val::Null, Val::Json),
            "containsKey" => boolean(map.contains_key(&text(0))),
            "keySet" => Val::Json(Value::Array(
                map.into_iter().map(|(k, _)| Value::String(k)).collect(),
            )),
            "values" => Val::Json(Value::Array(map.into_iter().map(|(_, v)| v).collect())),
            "entrySet" => Val::Json(Value::Array(
                map.into_iter()
                    .map(|(k, v)| serde_json::json!({"key": k, "value": v}))
                    .collect(),
            )),
            _ => Val::Null,
        },
        _ => Val::Null,
    }
}

fn utility(name: &str, text: &str) -> Val {
    match name {
        "escapeJavaScript" => string(escape_javascript(text)),
        "base64Encode" => string(base64::engine::general_purpose::STANDARD.encode(text)),
        "base64Decode" => base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_or(Val::Null, |b| string(String::from_utf8_lossy(&b))),
        "urlEncode" => string(url_encode(text)),
        "urlDecode" => string(crate::proxy::form_decode(text)),
        "parseJson" => serde_json::from_str(text).map_or(Val::Null, Val::Json),
        _ => Val::Null,
    }
}

/// Java's `StringEscapeUtils.escapeJavaScript`, which API Gateway uses:
/// quotes, backslash, slash and control characters escaped, non-ASCII as
/// `\uXXXX`.
fn escape_javascript(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '/' => out.push_str("\\/"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04X}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// Java's `URLEncoder.encode(text, "UTF-8")`: unreserved `A-Za-z0-9.-*_`
/// kept, space as `+`, the rest percent-encoded.
pub(crate) fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'*' | b'_' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}
