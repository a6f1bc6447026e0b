//! What a target receives: the event, or its `Input`, `InputPath` or
//! `InputTransformer` rendering.
//!
//! `InputTemplate` substitution follows AWS's rules: a `<name>` placeholder
//! inside a JSON string takes the value's text (a string without its
//! quotes, anything else as JSON), outside a string the value as JSON; a
//! path that matches nothing gives `null` (empty text inside a string).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::records::Target;

/// Placeholders every template may use without declaring them.
const RESERVED: [&str; 5] = [
    "aws.events.rule-arn",
    "aws.events.rule-name",
    "aws.events.event.ingestion-time",
    "aws.events.event",
    "aws.events.event.json",
];

/// The value a simple JSONPath (`$`, `$.a.b`, `$.a[0].b`) selects.
pub use strato_pattern::json_path::select;

/// Placeholders a template uses that neither its map nor AWS defines.
pub fn undefined_placeholder(template: &str, paths: &BTreeMap<String, String>) -> Option<String> {
    placeholders(template)
        .into_iter()
        .map(|(_, _, name)| name)
        .find(|name| !paths.contains_key(name) && !RESERVED.contains(&name.as_str()))
}

/// (start, end, name) of every `<name>` in the template.
fn placeholders(template: &str) -> Vec<(usize, usize, String)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(open) = template[from..].find('<').map(|i| i + from) {
        let Some(close) = template[open + 1..].find('>').map(|i| i + open + 1) else {
            break;
        };
        let name = &template[open + 1..close];
        if !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            out.push((open, close + 1, name.to_string()));
            from = close + 1;
        } else {
            from = open + 1;
        }
    }
    out
}

/// Where the event came from, for the reserved placeholders.
pub struct Origin<'a> {
    pub rule_arn: &'a str,
    pub rule_name: &'a str,
}

/// The payload a target gets for an event.
pub fn render(target: &Target, event: &Value, origin: &Origin<'_>) -> String {
    if let Some(input) = &target.input {
        return input.clone();
    }
    if let Some(path) = &target.input_path {
        return select(event, path).map_or_else(|| "null".into(), Value::to_string);
    }
    let Some(transformer) = &target.input_transformer else {
        return event.to_string();
    };
    let template = &transformer.input_template;
    let mut out = String::with_capacity(template.len());
    let mut last = 0;
    for (start, end, name) in placeholders(template) {
        out.push_str(&template[last..start]);
        last = end;
        let value = match name.as_str() {
            "aws.events.rule-arn" => Some(Value::String(origin.rule_arn.into())),
            "aws.events.rule-name" => Some(Value::String(origin.rule_name.into())),
            "aws.events.event.ingestion-time" => event.get("time").cloned(),
            "aws.events.event" | "aws.events.event.json" => Some(event.clone()),
            other => match transformer.input_paths_map.get(other) {
                Some(path) => select(event, path).cloned(),
                None => {
                    // Not a placeholder of ours: kept as written.
                    out.push_str(&template[start..end]);
                    continue;
                }
            },
        };
        let in_string = inside_string(&template[..start]);
        match (value, in_string) {
            (Some(Value::String(s)), true) => {
                let quoted = Value::String(s).to_string();
                out.push_str(&quoted[1..quoted.len() - 1]);
            }
            (Some(other), true) => {
                let quoted = Value::String(other.to_string()).to_string();
                out.push_str(&quoted[1..quoted.len() - 1]);
            }
            (Some(v), false) => out.push_str(&v.to_string()),
            (None, true) => {}
            (None, false) => out.push_str("null"),
        }
    }
    out.push_str(&template[last..]);
    out
}

/// Whether the text so far leaves us inside a JSON string.
fn inside_string(before: &str) -> bool {
    let mut inside = false;
    let mut escaped = false;
    for c in before.chars() {
        match (c, escaped) {
            (_, true) => escaped = false,
            ('\\', false) => escaped = inside,
            ('"', false) => inside = !inside,
            _ => {}
        }
    }
    inside
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::InputTransformer;
    use serde_json::json;

    fn transformer(paths: &[(&str, &str)], template: &str) -> Target {
        Target {
            input_transformer: Some(InputTransformer {
                input_paths_map: paths
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                input_template: template.into(),
            }),
            ..Target::new("t", "arn:aws:sqs:us-east-1:000000000000:q")
        }
    }

    const ORIGIN: Origin<'static> = Origin {
        rule_arn: "arn:aws:events:us-east-1:000000000000:rule/r",
        rule_name: "r",
    };

    #[test]
    fn template_quotes_strings_outside_quotes_and_not_inside() {
        let event = json!({"detail": {"instance": "i-1", "state": "running", "n": 3}});
        let target = transformer(
            &[
                ("instance", "$.detail.instance"),
                ("state", "$.detail.state"),
                ("n", "$.detail.n"),
            ],
            r#"{"instance": <instance>, "text": "<instance> is <state>", "n": <n>, "m": "<n>"}"#,
        );
        let out: Value = serde_json::from_str(&render(&target, &event, &ORIGIN)).unwrap();
        assert_eq!(
            out,
            json!({"instance": "i-1", "text": "i-1 is running", "n": 3, "m": "3"})
        );
    }

    #[test]
    fn missing_values_are_null_or_empty() {
        let target = transformer(&[("x", "$.detail.none")], r#"{"a": <x>, "b": "<x>"}"#);
        let out = render(&target, &json!({"detail": {}}), &ORIGIN);
        assert_eq!(out, r#"{"a": null, "b": ""}"#);
    }

    #[test]
    fn reserved_placeholders_need_no_declaration() {
        let paths = BTreeMap::new();
        assert_eq!(undefined_placeholder("<aws.events.rule-arn>", &paths), None);
        assert_eq!(
            undefined_placeholder(r#"{"a": <notdefinedkey>}"#, &paths),
            Some("notdefinedkey".into())
        );
        let target = transformer(&[], r#""<aws.events.rule-name>""#);
        assert_eq!(render(&target, &json!({}), &ORIGIN), r#""r""#);
    }
}
