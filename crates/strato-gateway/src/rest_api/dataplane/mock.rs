//! MOCK integrations: the request template's status code picks the
//! integration response.

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;

use super::{gateway_answer, header_text, IntegrationCall, INTERNAL_ERROR};
use crate::rest_api::model::Integration;

/// A MOCK integration: the request template (`{"statusCode": 200}`) picks
/// the integration response whose `selectionPattern` matches that status
/// (the one without a pattern by default); its static response template is
/// the body and its `method.response.header.*` literals are headers.
pub(super) fn mock(integration: &Integration, call: &IntegrationCall<'_>) -> Response {
    let content_type = header_text(call.headers, &http::header::CONTENT_TYPE)
        .map(|c| {
            c.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_else(|| "application/json".into());
    let template = integration
        .request_templates
        .get(&content_type)
        .or_else(|| integration.request_templates.get("application/json"));
    let status_code = template
        .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
        .and_then(|v| match v.get("statusCode") {
            Some(serde_json::Value::Number(n)) => n.as_u64().map(|n| n.to_string()),
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            _ => None,
        })
        .unwrap_or_else(|| "200".to_string());
    let responses = &integration.integration_responses;
    let selected = responses
        .values()
        .find(|r| {
            r.selection_pattern
                .as_deref()
                .is_some_and(|p| !p.is_empty() && selection_matches(p, &status_code))
        })
        .or_else(|| {
            responses
                .values()
                .find(|r| r.selection_pattern.as_deref().is_none_or(str::is_empty))
        });
    let Some(selected) = selected else {
        return gateway_answer(&INTERNAL_ERROR, call.ids);
    };
    let Ok(status) = selected
        .status_code
        .parse::<u16>()
        .map(StatusCode::from_u16)
    else {
        return gateway_answer(&INTERNAL_ERROR, call.ids);
    };
    let Ok(status) = status else {
        return gateway_answer(&INTERNAL_ERROR, call.ids);
    };
    let (body_type, body) = selected
        .response_templates
        .get("application/json")
        .map(|b| ("application/json".to_string(), b.clone()))
        .or_else(|| {
            selected
                .response_templates
                .iter()
                .next()
                .map(|(t, b)| (t.clone(), b.clone()))
        })
        .unwrap_or_else(|| ("application/json".to_string(), String::new()));
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    if let Ok(value) = HeaderValue::from_str(&body_type) {
        response
            .headers_mut()
            .insert(http::header::CONTENT_TYPE, value);
    }
    for (target, source) in &selected.response_parameters {
        let Some(name) = target.strip_prefix("method.response.header.") else {
            continue;
        };
        let Some(literal) = source.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) else {
            continue;
        };
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(literal),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

/// `selectionPattern` against a status code: the patterns MOCK integrations
/// use are status codes, with `\d` for any digit and `.` / `.*` wildcards
/// (`2\d{2}`, `4..`, `5.*`).
pub(crate) fn selection_matches(pattern: &str, status: &str) -> bool {
    let mut chars = pattern.chars().peekable();
    // Expand `\d{n}` / `.{n}` repetitions into single-character classes.
    let mut classes: Vec<char> = Vec::new();
    let mut greedy_tail = false;
    while let Some(c) = chars.next() {
        let class = match c {
            '\\' => match chars.next() {
                Some('d') => 'd',
                Some(other) => other,
                None => return false,
            },
            '.' if chars.peek() == Some(&'*') => {
                chars.next();
                greedy_tail = true;
                break;
            }
            '.' => '.',
            other => other,
        };
        if chars.peek() == Some(&'{') {
            chars.next();
            let count: String = chars.by_ref().take_while(|c| *c != '}').collect();
            let Ok(n) = count.parse::<usize>() else {
                return false;
            };
            classes.extend(std::iter::repeat_n(class, n));
        } else {
            classes.push(class);
        }
    }
    let status: Vec<char> = status.chars().collect();
    if greedy_tail {
        if status.len() < classes.len() {
            return false;
        }
    } else if status.len() != classes.len() {
        return false;
    }
    classes
        .iter()
        .zip(status.iter())
        .all(|(class, c)| match class {
            'd' => c.is_ascii_digit(),
            '.' => true,
            literal => literal == c,
        })
}

#[cfg(test)]
mod tests {
    use super::selection_matches;

    #[test]
    fn selection_patterns_match_status_codes() {
        assert!(selection_matches("200", "200"));
        assert!(!selection_matches("200", "201"));
        assert!(selection_matches(r"2\d{2}", "204"));
        assert!(!selection_matches(r"2\d{2}", "404"));
        assert!(selection_matches("4..", "404"));
        assert!(selection_matches("5.*", "503"));
        assert!(!selection_matches("5.*", "403"));
    }
}
