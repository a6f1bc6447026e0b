//! From pattern text to the tree that matches: validation with AWS's reasons, per dialect.

use serde_json::{Map, Value};

use crate::error::{after_first_token, invalid, json_reason, Reason};
use crate::leaf::{
    lowercase, AnythingBut, Bound, CidrBlock, Matcher, NumericRange, Precision, Wildcard,
};
use crate::{sns, Dialect, SnsScope};

/// The fields one object of the pattern requires, and its `$or` groups.
#[derive(Debug, Clone)]
pub(crate) struct ObjectNode {
    fields: Vec<(String, FieldNode)>,
    /// Each group is one `$or`: one of its objects must match.
    or_groups: Vec<Vec<ObjectNode>>,
}

#[derive(Debug, Clone)]
enum FieldNode {
    Object(ObjectNode),
    /// The field's match values: any one matching is enough.
    Leaf(Vec<Matcher>),
}

impl ObjectNode {
    /// Whether the event value at this object's place matches. An array of objects matches when
    /// one element matches the whole object (fields are never combined across elements).
    pub(crate) fn matches(&self, value: Option<&Value>) -> bool {
        match value {
            Some(Value::Object(map)) => self.matches_fields(Some(map)),
            Some(Value::Array(items)) if !items.is_empty() => {
                items.iter().any(|item| self.matches(Some(item)))
            }
            _ => self.matches_fields(None),
        }
    }

    fn matches_fields(&self, map: Option<&Map<String, Value>>) -> bool {
        let fields_match = self.fields.iter().all(|(name, node)| {
            let value = map.and_then(|map| map.get(name));
            match node {
                FieldNode::Object(object) => object.matches(value),
                FieldNode::Leaf(matchers) => match value {
                    None => matchers
                        .iter()
                        .any(|matcher| matches!(matcher, Matcher::Exists(false))),
                    Some(value) => matchers
                        .iter()
                        .any(|matcher| matcher.matches_present(value)),
                },
            }
        });
        fields_match
            && self
                .or_groups
                .iter()
                .all(|group| group.iter().any(|object| object.matches_fields(map)))
    }

    /// Whether a field (here or in an `$or` object) holds a nested object rather than values.
    fn has_nested_object(&self) -> bool {
        self.fields
            .iter()
            .any(|(_, node)| matches!(node, FieldNode::Object(_)))
            || self
                .or_groups
                .iter()
                .flatten()
                .any(ObjectNode::has_nested_object)
    }

    /// The summed [`Wildcard::complexity`] of every wildcard in the pattern.
    fn wildcard_complexity(&self) -> usize {
        let fields: usize = self
            .fields
            .iter()
            .map(|(_, node)| match node {
                FieldNode::Object(object) => object.wildcard_complexity(),
                FieldNode::Leaf(matchers) => matchers
                    .iter()
                    .map(|matcher| match matcher {
                        Matcher::Wildcard(wildcard) => wildcard.complexity(),
                        Matcher::AnythingBut(AnythingBut::Wildcards(wildcards)) => {
                            wildcards.iter().map(Wildcard::complexity).sum()
                        }
                        _ => 0,
                    })
                    .sum(),
            })
            .sum();
        let alternatives: usize = self
            .or_groups
            .iter()
            .flatten()
            .map(ObjectNode::wildcard_complexity)
            .sum();
        fields + alternatives
    }

    /// The distinct leaf field paths, for SNS's key limit.
    pub(crate) fn leaf_paths<'a>(&'a self, prefix: &mut Vec<&'a str>, into: &mut Vec<String>) {
        for (name, node) in &self.fields {
            prefix.push(name);
            match node {
                FieldNode::Object(object) => object.leaf_paths(prefix, into),
                FieldNode::Leaf(_) => {
                    let path = prefix.join("\u{0}");
                    if !into.contains(&path) {
                        into.push(path);
                    }
                }
            }
            prefix.pop();
        }
        for group in &self.or_groups {
            for object in group {
                object.leaf_paths(prefix, into);
            }
        }
    }

    /// SNS's "total combination of values": the product of the number of values of every field,
    /// an `$or` counting the sum of its objects' combinations. Saturates rather than overflows.
    pub(crate) fn combinations(&self) -> u64 {
        let fields = self.fields.iter().fold(1u64, |total, (_, node)| {
            let count = match node {
                FieldNode::Object(object) => object.combinations(),
                FieldNode::Leaf(matchers) => u64::try_from(matchers.len()).unwrap_or(u64::MAX),
            };
            total.saturating_mul(count)
        });
        self.or_groups.iter().fold(fields, |total, group| {
            let sum = group.iter().fold(0u64, |sum, object| {
                sum.saturating_add(object.combinations())
            });
            total.saturating_mul(sum)
        })
    }
}

/// Parses and validates pattern text for a dialect.
pub(crate) fn compile(text: &str, dialect: Dialect) -> Result<ObjectNode, Reason> {
    let value: Value = serde_json::from_str(text).map_err(|error| json_reason(text, error))?;
    let Value::Object(map) = value else {
        return Err(Reason::NotAnObject(after_first_token(text)));
    };
    let compiler = Compiler::for_dialect(dialect);
    let root = compiler.object(&map)?;
    if root.wildcard_complexity() > MAX_WILDCARD_COMPLEXITY {
        return Err(invalid(
            "Rule is too complex - try using fewer wildcard characters or fewer repeating character sequences after a wildcard character",
        ));
    }
    // AWS validates the whole policy first: a malformed nested policy gets the malformed reason.
    if dialect == Dialect::SnsFilterPolicy(SnsScope::MessageAttributes) && root.has_nested_object()
    {
        return Err(Reason::NestedAttributesPolicy);
    }
    if let Dialect::SnsFilterPolicy(_) = dialect {
        sns::check_limits(&root)?;
    }
    Ok(root)
}

/// What a dialect allows beyond the common core.
struct Compiler {
    dialect: Dialect,
    precision: Precision,
}

impl Compiler {
    fn for_dialect(dialect: Dialect) -> Compiler {
        let precision = match dialect {
            Dialect::SnsFilterPolicy(_) => Precision::SNS,
            Dialect::EventBridge | Dialect::LambdaFilterCriteria => Precision::EVENTBRIDGE,
        };
        Compiler { dialect, precision }
    }

    fn is_eventbridge(&self) -> bool {
        self.dialect == Dialect::EventBridge
    }

    fn is_lambda(&self) -> bool {
        self.dialect == Dialect::LambdaFilterCriteria
    }

    fn object(&self, map: &Map<String, Value>) -> Result<ObjectNode, Reason> {
        if map.is_empty() {
            return Err(invalid("Empty objects are not allowed"));
        }
        let mut node = ObjectNode {
            fields: Vec::with_capacity(map.len()),
            or_groups: Vec::new(),
        };
        for (name, value) in map {
            if name == OR_KEYWORD {
                if let Some(objects) = self.or_objects(value)? {
                    let group = objects
                        .into_iter()
                        .map(|object| self.or_branch(object))
                        .collect::<Result<Vec<_>, _>>()?;
                    node.or_groups.push(group);
                    continue;
                }
            }
            let field = match value {
                Value::Object(nested) => FieldNode::Object(self.object(nested)?),
                Value::Array(values) if values.is_empty() => {
                    return Err(invalid("Empty arrays are not allowed"));
                }
                Value::Array(values) => FieldNode::Leaf(
                    values
                        .iter()
                        .map(|value| self.match_value(value))
                        .collect::<Result<_, _>>()?,
                ),
                _ => return Err(invalid(format!("\"{name}\" must be an object or an array"))),
            };
            node.fields.push((name.clone(), field));
        }
        Ok(node)
    }

    /// The objects of an `$or`. EventBridge and Lambda always read `$or` as the operator and refuse
    /// a malformed one; SNS reads it as an ordinary field name unless it holds two objects or more
    /// none of which names a field after an operator (as SNS documents), so `None` there means
    /// "a field".
    fn or_objects<'v>(
        &self,
        value: &'v Value,
    ) -> Result<Option<Vec<&'v Map<String, Value>>>, Reason> {
        let strict = !matches!(self.dialect, Dialect::SnsFilterPolicy(_));
        let Value::Array(items) = value else {
            return if strict {
                Err(invalid("It must be an Array followed with $or."))
            } else {
                Ok(None)
            };
        };
        let objects: Option<Vec<_>> = items.iter().map(Value::as_object).collect();
        let names_reserved = |objects: &[&Map<String, Value>]| {
            objects.iter().any(|object| {
                object
                    .keys()
                    .any(|name| RESERVED_IN_OR.contains(&name.as_str()))
            })
        };
        match objects {
            Some(objects) if objects.len() >= 2 && (strict || !names_reserved(&objects)) => {
                Ok(Some(objects))
            }
            _ if !strict => Ok(None),
            None => Err(invalid(
                "Only JSON object is allowed in array of $or relationship.",
            )),
            Some(_) => Err(invalid(
                "There must have at least 2 Objects in $or relationship.",
            )),
        }
    }

    /// One object of an `$or`, where operator names cannot be field names.
    fn or_branch(&self, map: &Map<String, Value>) -> Result<ObjectNode, Reason> {
        if let Some(reserved) = map
            .keys()
            .find(|name| RESERVED_IN_OR.contains(&name.as_str()))
        {
            return Err(invalid(format!(
                "{reserved} is Ruler reserved fieldName which cannot be used inside $or."
            )));
        }
        self.object(map)
    }

    fn match_value(&self, value: &Value) -> Result<Matcher, Reason> {
        Ok(match value {
            Value::String(text) => match text.parse() {
                // AWS compares a value that is an IP address as an address (`::1` = `0:0::1`).
                Ok(address) => Matcher::ExactAddress(text.clone(), address),
                Err(_) => Matcher::ExactString(text.clone()),
            },
            Value::Number(number) => {
                Matcher::ExactNumber(self.precision.key(number_value(number)), self.precision)
            }
            Value::Bool(flag) => Matcher::ExactBool(*flag),
            Value::Null => Matcher::ExactNull,
            Value::Array(_) => {
                return Err(invalid(
                    "Match value must be String, number, true, false, or null",
                ))
            }
            Value::Object(operator) => self.operator(operator)?,
        })
    }

    fn operator(&self, operator: &Map<String, Value>) -> Result<Matcher, Reason> {
        let mut entries = operator.iter();
        let Some((name, argument)) = entries.next() else {
            return Err(invalid("Empty objects are not allowed"));
        };
        if entries.next().is_some() {
            return Err(invalid("Only one key allowed in match expression"));
        }
        let unrecognized = || invalid(format!("Unrecognized match type {name}"));
        match name.as_str() {
            "prefix" => self.prefix_or_suffix(name, argument, true),
            "suffix" => self.prefix_or_suffix(name, argument, false),
            "equals-ignore-case" => match argument {
                Value::String(text) => Ok(Matcher::EqualsIgnoreCase(lowercase(text))),
                _ => Err(invalid("equals-ignore-case match pattern must be a string")),
            },
            "wildcard" if self.is_eventbridge() => match argument {
                Value::String(text) => {
                    Ok(Matcher::Wildcard(Wildcard::parse(text).map_err(invalid)?))
                }
                _ => Err(invalid("wildcard match pattern must be a string")),
            },
            "anything-but" => self.anything_but(argument).map(Matcher::AnythingBut),
            "numeric" => self.numeric(argument).map(Matcher::Numeric),
            "exists" => match argument {
                Value::Bool(wanted) => Ok(Matcher::Exists(*wanted)),
                _ => Err(invalid(
                    "exists match pattern must be either true or false.",
                )),
            },
            // AWS words a non-string CIDR as a prefix error; its parser shares that path.
            "cidr" if !self.is_lambda() => match argument {
                Value::String(text) => Ok(Matcher::Cidr(CidrBlock::parse(text).map_err(invalid)?)),
                _ => Err(invalid("prefix match pattern must be a string")),
            },
            _ => Err(unrecognized()),
        }
    }

    fn prefix_or_suffix(
        &self,
        name: &str,
        argument: &Value,
        prefix: bool,
    ) -> Result<Matcher, Reason> {
        match argument {
            Value::String(text) if prefix => Ok(Matcher::Prefix(text.clone())),
            Value::String(text) => Ok(Matcher::Suffix(text.clone())),
            Value::Object(options) => {
                let mut entries = options.iter();
                let Some((option, value)) = entries.next() else {
                    let which = if prefix { "Prefix" } else { "Suffix" };
                    return Err(invalid(format!("{which} expression name not found")));
                };
                if option != "equals-ignore-case" {
                    return Err(invalid(format!("Unsupported {name} pattern: {option}")));
                }
                let Value::String(text) = value else {
                    return Err(invalid("equals-ignore-case match pattern must be a string"));
                };
                if entries.next().is_some() {
                    return Err(invalid("Only one key allowed in match expression"));
                }
                let lowered = lowercase(text);
                Ok(if prefix {
                    Matcher::PrefixIgnoreCase(lowered)
                } else {
                    Matcher::SuffixIgnoreCase(lowered)
                })
            }
            _ => Err(invalid(format!("{name} match pattern must be a string"))),
        }
    }

    fn anything_but(&self, argument: &Value) -> Result<AnythingBut, Reason> {
        let bad_value =
            || invalid("Value of anything-but must be an array or single string/number value.");
        let mut strings = Vec::new();
        let mut numbers = Vec::new();
        match argument {
            Value::String(text) => strings.push(text.clone()),
            Value::Number(number) => numbers.push(self.precision.key(number_value(number))),
            Value::Array(values) => {
                for value in values {
                    match value {
                        Value::String(text) => strings.push(text.clone()),
                        Value::Number(number) => {
                            numbers.push(self.precision.key(number_value(number)))
                        }
                        _ => {
                            return Err(invalid(
                                "Inside anything but list, start|null|boolean is not supported.",
                            ))
                        }
                    }
                }
            }
            Value::Object(options) => return self.anything_but_operator(options),
            Value::Null | Value::Bool(_) => return Err(bad_value()),
        }
        if strings.is_empty() == numbers.is_empty() {
            return Err(invalid(
                "Inside anything but list, either all values are number or string, mixed type is not supported",
            ));
        }
        Ok(AnythingBut::Values {
            strings,
            numbers,
            precision: self.precision,
        })
    }

    fn anything_but_operator(&self, options: &Map<String, Value>) -> Result<AnythingBut, Reason> {
        let mut entries = options.iter();
        let Some((name, argument)) = entries.next() else {
            return Err(invalid("Empty objects are not allowed"));
        };
        if entries.next().is_some() {
            return Err(invalid("Only one key allowed in match expression"));
        }
        let unsupported = || invalid(format!("Unsupported anything-but pattern: {name}"));
        let supported = match name.as_str() {
            "prefix" => !self.is_lambda(),
            "suffix" | "equals-ignore-case" | "wildcard" => self.is_eventbridge(),
            _ => false,
        };
        if !supported {
            return Err(unsupported());
        }
        let string_error = match (name.as_str(), self.dialect) {
            ("prefix", Dialect::SnsFilterPolicy(_)) => "prefix match pattern must be a string",
            ("prefix" | "suffix", _) => "prefix/suffix match pattern must be a string",
            ("wildcard", _) => "wildcard match pattern must be a string",
            _ => "Inside anything-but/equals-ignore-case list, number|start|null|boolean is not supported.",
        };
        let not_a_value =
            || invalid("Value of anything-but must be an array or single string/number value.");
        let texts = match argument {
            Value::String(text) => vec![text.clone()],
            Value::Array(values) => values
                .iter()
                .map(|value| match value {
                    Value::String(text) => Ok(text.clone()),
                    _ => Err(invalid(string_error)),
                })
                .collect::<Result<Vec<_>, _>>()?,
            Value::Number(_) => return Err(invalid(string_error)),
            // SNS words a non-string prefix as a prefix error; EventBridge refuses the value kind.
            Value::Null | Value::Bool(_) if matches!(self.dialect, Dialect::SnsFilterPolicy(_)) => {
                return Err(invalid(string_error))
            }
            Value::Null | Value::Bool(_) | Value::Object(_) => return Err(not_a_value()),
        };
        match name.as_str() {
            "prefix" | "suffix" => {
                if texts.iter().any(String::is_empty) {
                    return Err(invalid("Null prefix/suffix not allowed"));
                }
                Ok(if name == "prefix" {
                    AnythingBut::Prefixes(texts)
                } else {
                    AnythingBut::Suffixes(texts)
                })
            }
            "wildcard" => Ok(AnythingBut::Wildcards(
                texts
                    .iter()
                    .map(|text| Wildcard::parse(text).map_err(invalid))
                    .collect::<Result<_, _>>()?,
            )),
            _ => Ok(AnythingBut::IgnoreCase(
                texts.iter().map(|text| lowercase(text)).collect(),
            )),
        }
    }

    /// `["=", n]`, `[op, n]` or `[lower-op, n, upper-op, m]`, with AWS's reasons for each way to
    /// get it wrong.
    fn numeric(&self, argument: &Value) -> Result<NumericRange, Reason> {
        let Value::Array(terms) = argument else {
            return Err(invalid("Value of numeric must be an array."));
        };
        let mut terms = terms.iter();
        let first = terms
            .next()
            .ok_or_else(|| invalid("Invalid member in numeric match: ]"))?;
        let Value::String(first_operator) = first else {
            return Err(invalid(format!(
                "Invalid member in numeric match: {}",
                token_text(first)
            )));
        };
        let operator = RangeOperator::parse(first_operator).ok_or_else(|| {
            invalid(format!(
                "Unrecognized numeric range operator: {first_operator}"
            ))
        })?;
        let first_key = self.operand(operator, terms.next())?;
        let mut range = NumericRange {
            lower: None,
            upper: None,
            precision: self.precision,
        };
        match operator {
            RangeOperator::Equals => {
                let bound = Bound {
                    key: first_key,
                    inclusive: true,
                };
                range.lower = Some(bound);
                range.upper = Some(bound);
            }
            RangeOperator::Below { inclusive } => {
                range.upper = Some(Bound {
                    key: first_key,
                    inclusive,
                })
            }
            RangeOperator::Above { inclusive } => {
                range.lower = Some(Bound {
                    key: first_key,
                    inclusive,
                })
            }
        }
        let Some(second) = terms.next() else {
            return Ok(range);
        };
        if !matches!(operator, RangeOperator::Above { .. }) {
            return Err(invalid("Too many elements in numeric expression"));
        }
        let Value::String(second_operator) = second else {
            return Err(invalid(format!(
                "Bad value in numeric range: {}",
                token_text(second)
            )));
        };
        let upper = match RangeOperator::parse(second_operator) {
            Some(upper @ RangeOperator::Below { .. }) => upper,
            _ => {
                return Err(invalid(format!(
                    "Bad numeric range operator: {second_operator}"
                )))
            }
        };
        let second_key = self.operand(upper, terms.next())?;
        if range.lower.is_some_and(|lower| lower.key >= second_key) {
            return Err(invalid("Bottom must be less than top"));
        }
        if let RangeOperator::Below { inclusive } = upper {
            range.upper = Some(Bound {
                key: second_key,
                inclusive,
            });
        }
        if terms.next().is_some() {
            return Err(invalid("Too many terms in numeric range expression"));
        }
        Ok(range)
    }

    fn operand(&self, operator: RangeOperator, term: Option<&Value>) -> Result<f64, Reason> {
        match term {
            Some(Value::Number(number)) => Ok(self.precision.key(number_value(number))),
            _ => Err(invalid(format!(
                "Value of {} must be numeric",
                operator.name()
            ))),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum RangeOperator {
    Equals,
    Below { inclusive: bool },
    Above { inclusive: bool },
}

impl RangeOperator {
    fn parse(text: &str) -> Option<RangeOperator> {
        Some(match text {
            "=" => RangeOperator::Equals,
            "<" => RangeOperator::Below { inclusive: false },
            "<=" => RangeOperator::Below { inclusive: true },
            ">" => RangeOperator::Above { inclusive: false },
            ">=" => RangeOperator::Above { inclusive: true },
            _ => return None,
        })
    }

    /// As AWS names the operator in "Value of ... must be numeric".
    fn name(self) -> &'static str {
        match self {
            RangeOperator::Equals => "equals",
            RangeOperator::Below { inclusive: false } => "<",
            RangeOperator::Below { inclusive: true } => "<=",
            RangeOperator::Above { inclusive: false } => ">",
            RangeOperator::Above { inclusive: true } => ">=",
        }
    }
}

const OR_KEYWORD: &str = "$or";

/// How many wildcard positions may be live at once across a pattern before AWS calls it too
/// complex. AWS does not publish its figure; this bound admits every documented example and
/// refuses long runs of repeated characters between stars.
const MAX_WILDCARD_COMPLEXITY: usize = 100;

/// Names AWS reserves for operators (present and announced), refused as field names inside `$or`.
const RESERVED_IN_OR: &[&str] = &[
    "exactly",
    "equals-ignore-case",
    "prefix",
    "suffix",
    "anything-but",
    "exists",
    "wildcard",
    "numeric",
    "cidr",
    "=",
    "<",
    "<=",
    ">",
    ">=",
    "regex",
    "not-wildcard",
    "not-equals-ignore-case",
    "date-after",
    "date-on-or-after",
    "date-before",
    "date-on-or-before",
    "in-date-range",
    "ip-address-in-range",
    "ip-address-not-in-range",
];

/// A JSON number as the f64 AWS compares (serde_json numbers always have one).
fn number_value(number: &serde_json::Number) -> f64 {
    number.as_f64().unwrap_or(f64::NAN)
}

/// How Jackson prints the token it stopped at.
fn token_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Array(_) => "[".to_owned(),
        Value::Object(_) => "{".to_owned(),
        other => other.to_string(),
    }
}
