//! The simple JSONPath that AWS's JSON-reading features share: EventBridge's
//! `InputPath` and `InputPathsMap`, and API Gateway's mapping templates
//! (`$input.path('$.a.b')`, `$input.json('$')`). `$` is the document; `.name`
//! descends into a member, `[0]` into an element, `['name']` / `["name"]`
//! into a member whose name is not an identifier.

use serde_json::Value;

/// The value `path` selects in `document`, if any.
pub fn select<'a>(document: &'a Value, path: &str) -> Option<&'a Value> {
    let rest = path.strip_prefix('$')?;
    let mut current = document;
    let mut chars = rest;
    while !chars.is_empty() {
        if let Some(after) = chars.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            let (key, tail) = after.split_at(end);
            current = current.get(key)?;
            chars = tail;
        } else if let Some(after) = chars.strip_prefix('[') {
            let (index, tail) = after.split_once(']')?;
            if let Some(key) = index
                .strip_prefix('\'')
                .and_then(|k| k.strip_suffix('\''))
                .or_else(|| index.strip_prefix('"').and_then(|k| k.strip_suffix('"')))
            {
                current = current.get(key)?;
            } else {
                current = current.get(index.parse::<usize>().ok()?)?;
            }
            chars = tail;
        } else {
            return None;
        }
    }
    Some(current)
}

#[cfg(test)]
mod tests {
    use super::select;
    use serde_json::json;

    #[test]
    fn paths_select_members_and_indexes() {
        let event = json!({"detail": {"a": [{"b": 1}], "c d": 2}});
        assert_eq!(select(&event, "$.detail.a[0].b"), Some(&json!(1)));
        assert_eq!(select(&event, "$.detail['c d']"), Some(&json!(2)));
        assert_eq!(select(&event, "$"), Some(&event));
        assert_eq!(select(&event, "$.missing"), None);
        assert_eq!(select(&event, "detail"), None);
    }
}
