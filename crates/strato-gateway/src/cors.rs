//! CORS for HTTP APIs and function URLs: preflight `OPTIONS` requests are
//! answered by the gateway itself, and the configured headers are added to
//! (and override) the integration's answer for an allowed origin.

use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};

use crate::http_api::model::Cors;

fn allowed_origin(cors: &Cors, origin: &str) -> Option<String> {
    let origins = cors.allow_origins.as_ref()?;
    if origins.iter().any(|o| o == "*") {
        return Some("*".into());
    }
    origins
        .iter()
        .any(|o| o.eq_ignore_ascii_case(origin) || wildcard_origin(o, origin))
        .then(|| origin.to_string())
}

/// `https://*.example.com` admits any subdomain.
fn wildcard_origin(pattern: &str, origin: &str) -> bool {
    match pattern.split_once("*.") {
        Some((scheme, domain)) => {
            origin.starts_with(scheme)
                && origin.len() > scheme.len() + domain.len()
                && origin.ends_with(&format!(".{domain}"))
        }
        None => false,
    }
}

fn header(value: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(value).ok()
}

/// True for a CORS preflight request.
pub fn is_preflight(method: &Method, headers: &HeaderMap) -> bool {
    method == Method::OPTIONS
        && headers.contains_key(http::header::ORIGIN)
        && headers.contains_key(http::header::ACCESS_CONTROL_REQUEST_METHOD)
}

/// The answer to a preflight request: 204 with the configured headers when
/// the origin is allowed, a bare 204 otherwise.
pub fn preflight(cors: &Cors, headers: &HeaderMap) -> (StatusCode, Vec<(HeaderName, HeaderValue)>) {
    let mut out = Vec::new();
    let origin = headers
        .get(http::header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(allowed) = allowed_origin(cors, origin) else {
        return (StatusCode::NO_CONTENT, out);
    };
    if let Some(v) = header(&allowed) {
        out.push((http::header::ACCESS_CONTROL_ALLOW_ORIGIN, v));
    }
    if let Some(methods) = cors.allow_methods.as_ref().filter(|m| !m.is_empty()) {
        if let Some(v) = header(&methods.join(",")) {
            out.push((http::header::ACCESS_CONTROL_ALLOW_METHODS, v));
        }
    }
    if let Some(allow_headers) = cors.allow_headers.as_ref().filter(|h| !h.is_empty()) {
        let value = if allow_headers.iter().any(|h| h == "*") {
            headers
                .get(http::header::ACCESS_CONTROL_REQUEST_HEADERS)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("*")
                .to_string()
        } else {
            allow_headers.join(",").to_ascii_lowercase()
        };
        if let Some(v) = header(&value) {
            out.push((http::header::ACCESS_CONTROL_ALLOW_HEADERS, v));
        }
    }
    if let Some(age) = cors.max_age.filter(|a| *a >= 0) {
        if let Some(v) = header(&age.to_string()) {
            out.push((http::header::ACCESS_CONTROL_MAX_AGE, v));
        }
    }
    if cors.allow_credentials == Some(true) {
        out.push((
            http::header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        ));
    }
    (StatusCode::NO_CONTENT, out)
}

/// [`decorate`]s an integration's answer headers: when CORS has headers to
/// add, they replace every `access-control-*` header the answer carried.
pub fn decorate_answer(
    cors: &Cors,
    request: &HeaderMap,
    answer: &mut Vec<(HeaderName, HeaderValue)>,
) {
    let mut extra = HeaderMap::new();
    decorate(cors, request, &mut extra);
    if !extra.is_empty() {
        answer.retain(|(name, _)| !name.as_str().starts_with("access-control-"));
        answer.extend(extra.iter().map(|(n, v)| (n.clone(), v.clone())));
    }
}

/// Adds the CORS headers of an actual (non-preflight) request's answer,
/// replacing any the integration set.
pub fn decorate(cors: &Cors, request: &HeaderMap, response: &mut HeaderMap) {
    let Some(origin) = request
        .get(http::header::ORIGIN)
        .and_then(|v| v.to_str().ok())
    else {
        return;
    };
    let Some(allowed) = allowed_origin(cors, origin) else {
        return;
    };
    if let Some(v) = header(&allowed) {
        response.insert(http::header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
    }
    if let Some(expose) = cors.expose_headers.as_ref().filter(|h| !h.is_empty()) {
        if let Some(v) = header(&expose.join(",")) {
            response.insert(http::header::ACCESS_CONTROL_EXPOSE_HEADERS, v);
        }
    }
    if cors.allow_credentials == Some(true) {
        response.insert(
            http::header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cors() -> Cors {
        Cors {
            allow_credentials: None,
            allow_headers: Some(vec!["Content-Type".into()]),
            allow_methods: Some(vec!["GET".into(), "POST".into()]),
            allow_origins: Some(vec!["https://example.com".into()]),
            expose_headers: Some(vec!["x-a".into()]),
            max_age: Some(60),
        }
    }

    #[test]
    fn preflight_answers_allowed_origins_only() {
        let mut h = HeaderMap::new();
        h.insert("origin", "https://example.com".parse().unwrap());
        h.insert("access-control-request-method", "GET".parse().unwrap());
        assert!(is_preflight(&Method::OPTIONS, &h));
        let (status, headers) = preflight(&cors(), &h);
        assert_eq!(status, StatusCode::NO_CONTENT);
        assert!(headers
            .iter()
            .any(|(n, v)| n == "access-control-allow-methods" && v == "GET,POST"));
        h.insert("origin", "https://evil.com".parse().unwrap());
        assert!(preflight(&cors(), &h).1.is_empty());
    }

    #[test]
    fn subdomain_wildcards_match() {
        assert!(wildcard_origin(
            "https://*.example.com",
            "https://a.example.com"
        ));
        assert!(!wildcard_origin(
            "https://*.example.com",
            "https://example.com"
        ));
    }
}
