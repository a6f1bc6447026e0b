//! Bucket CORS as S3 does it: a configuration of rules (origins, methods,
//! headers, each origin or header pattern with at most one `*`), preflight
//! `OPTIONS` requests answered from the first rule that admits the origin,
//! the requested method and every requested header (403 otherwise), and
//! the matching rule's headers added to actual requests that carry an
//! `Origin`.

use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN, VARY,
};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use s3s::dto::{CORSConfiguration, CORSRule};
use s3s::{S3Error, S3ErrorCode};

const METHODS: &[&str] = &["GET", "PUT", "HEAD", "POST", "DELETE"];

/// S3's wording (its typo included) for a preflight no rule admits.
const NOT_ALLOWED: &str = "CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.";

fn invalid_request(message: String) -> S3Error {
    S3Error::with_message(S3ErrorCode::InvalidRequest, message)
}

/// Checks a configuration as PutBucketCors does.
pub fn validate(config: &CORSConfiguration) -> Result<(), S3Error> {
    if config.cors_rules.is_empty() || config.cors_rules.len() > 100 {
        return Err(S3Error::with_message(
            S3ErrorCode::MalformedXML,
            "The XML you provided was not well-formed or did not validate against our published schema",
        ));
    }
    for rule in &config.cors_rules {
        if let Some(bad) = rule
            .allowed_methods
            .iter()
            .find(|m| !METHODS.contains(&m.as_str()))
        {
            return Err(invalid_request(format!(
                "Found unsupported HTTP method in CORS config. Unsupported method is {bad}"
            )));
        }
        if let Some(bad) = rule
            .allowed_origins
            .iter()
            .find(|o| o.matches('*').count() > 1)
        {
            return Err(invalid_request(format!(
                "AllowedOrigin \"{bad}\" can not have more than one wildcard."
            )));
        }
        if let Some(bad) = rule
            .allowed_headers
            .iter()
            .flatten()
            .find(|h| h.matches('*').count() > 1)
        {
            return Err(invalid_request(format!(
                "AllowedHeader \"{bad}\" can not have more than one wildcard."
            )));
        }
    }
    Ok(())
}

/// A pattern with at most one `*` against a value.
fn wildcard(pattern: &str, value: &str, ignore_case: bool) -> bool {
    let eq = |a: &str, b: &str| {
        if ignore_case {
            a.eq_ignore_ascii_case(b)
        } else {
            a == b
        }
    };
    match pattern.split_once('*') {
        None => eq(pattern, value),
        Some((head, tail)) => {
            value.len() >= head.len() + tail.len()
                && value.get(..head.len()).is_some_and(|h| eq(h, head))
                && value
                    .get(value.len() - tail.len()..)
                    .is_some_and(|t| eq(t, tail))
        }
    }
}

/// The first rule admitting `origin`, `method` and each requested header.
fn find_rule<'a>(
    config: &'a CORSConfiguration,
    origin: &str,
    method: &str,
    requested_headers: &[&str],
) -> Option<&'a CORSRule> {
    config.cors_rules.iter().find(|rule| {
        rule.allowed_origins
            .iter()
            .any(|o| wildcard(o, origin, false))
            && rule.allowed_methods.iter().any(|m| m == method)
            && requested_headers.iter().all(|h| {
                rule.allowed_headers
                    .iter()
                    .flatten()
                    .any(|allowed| wildcard(allowed, h, true))
            })
    })
}

fn value(s: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(s).ok()
}

/// The headers a matching rule adds (for preflights and actual requests).
fn rule_headers(rule: &CORSRule, origin: &str, out: &mut HeaderMap) {
    let any_origin = rule.allowed_origins.iter().any(|o| o == "*");
    if let Some(v) = value(if any_origin { "*" } else { origin }) {
        out.insert(ACCESS_CONTROL_ALLOW_ORIGIN, v);
    }
    if let Some(v) = value(&rule.allowed_methods.join(", ")) {
        out.insert(ACCESS_CONTROL_ALLOW_METHODS, v);
    }
    if !any_origin {
        out.insert(
            ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
    if let Some(v) = rule
        .expose_headers
        .as_ref()
        .filter(|e| !e.is_empty())
        .and_then(|e| value(&e.join(", ")))
    {
        out.insert(ACCESS_CONTROL_EXPOSE_HEADERS, v);
    }
    if let Some(v) = rule.max_age_seconds.and_then(|a| value(&a.to_string())) {
        out.insert(ACCESS_CONTROL_MAX_AGE, v);
    }
    out.insert(
        VARY,
        HeaderValue::from_static(
            "Origin, Access-Control-Request-Headers, Access-Control-Request-Method",
        ),
    );
}

/// A refused CORS request: S3's status, code, message and extra members.
#[derive(Debug, PartialEq)]
pub struct Refusal {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub members: Vec<(&'static str, String)>,
}

/// The answer to a preflight `OPTIONS` on a bucket with `config` (none
/// when the bucket has no CORS configuration): the headers to send with a
/// 200, or S3's refusal.
pub fn preflight(
    config: Option<&CORSConfiguration>,
    request: &HeaderMap,
    on_object: bool,
) -> Result<HeaderMap, Refusal> {
    let header = |name| {
        request
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let Some(origin) = header(ORIGIN) else {
        return Err(Refusal {
            status: StatusCode::BAD_REQUEST,
            code: "BadRequest",
            message: "Insufficient information. Origin request header needed.".into(),
            members: Vec::new(),
        });
    };
    let Some(method) = header(ACCESS_CONTROL_REQUEST_METHOD) else {
        return Err(Refusal {
            status: StatusCode::BAD_REQUEST,
            code: "BadRequest",
            message: "Invalid Access-Control-Request-Method: null".into(),
            members: Vec::new(),
        });
    };
    let Some(config) = config else {
        return Err(Refusal {
            status: StatusCode::FORBIDDEN,
            code: "CORSResponse",
            message: "CORS is not enabled for this bucket.".into(),
            members: Vec::new(),
        });
    };
    let requested: Vec<&str> = header(ACCESS_CONTROL_REQUEST_HEADERS)
        .map(|h| {
            h.split(',')
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let Some(rule) = find_rule(config, origin, method, &requested) else {
        return Err(Refusal {
            status: StatusCode::FORBIDDEN,
            code: "AccessForbidden",
            message: NOT_ALLOWED.into(),
            members: vec![
                ("Method", method.to_string()),
                (
                    "ResourceType",
                    if on_object { "OBJECT" } else { "BUCKET" }.to_string(),
                ),
            ],
        });
    };
    let mut out = HeaderMap::new();
    rule_headers(rule, origin, &mut out);
    if let Some(v) = header(ACCESS_CONTROL_REQUEST_HEADERS).and_then(value) {
        out.insert(ACCESS_CONTROL_ALLOW_HEADERS, v);
    }
    Ok(out)
}

/// Adds the CORS headers of the rule admitting an actual request's origin
/// and method to its answer.
pub fn decorate(
    config: &CORSConfiguration,
    method: &Method,
    request: &HeaderMap,
    response: &mut HeaderMap,
) {
    let Some(origin) = request.get(ORIGIN).and_then(|v| v.to_str().ok()) else {
        return;
    };
    if let Some(rule) = find_rule(config, origin, method.as_str(), &[]) {
        rule_headers(rule, origin, response);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> CORSConfiguration {
        CORSConfiguration {
            cors_rules: vec![
                CORSRule {
                    allowed_origins: vec!["https://*.example.com".into()],
                    allowed_methods: vec!["GET".into(), "PUT".into()],
                    allowed_headers: Some(vec!["x-amz-*".into(), "content-type".into()]),
                    expose_headers: Some(vec!["ETag".into()]),
                    max_age_seconds: Some(600),
                    id: None,
                },
                CORSRule {
                    allowed_origins: vec!["*".into()],
                    allowed_methods: vec!["GET".into()],
                    allowed_headers: None,
                    expose_headers: None,
                    max_age_seconds: None,
                    id: None,
                },
            ],
        }
    }

    fn request(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn wildcards_hold_one_star_anywhere() {
        assert!(wildcard(
            "https://*.example.com",
            "https://a.example.com",
            false
        ));
        assert!(!wildcard(
            "https://*.example.com",
            "https://example.com",
            false
        ));
        assert!(wildcard("x-amz-*", "X-Amz-Date", true));
        assert!(wildcard("*", "anything", false));
    }

    #[test]
    fn preflight_takes_the_first_rule_admitting_everything() {
        let ok = preflight(
            Some(&config()),
            &request(&[
                ("origin", "https://app.example.com"),
                ("access-control-request-method", "PUT"),
                ("access-control-request-headers", "content-type, x-amz-date"),
            ]),
            true,
        )
        .unwrap();
        assert_eq!(ok[ACCESS_CONTROL_ALLOW_ORIGIN], "https://app.example.com");
        assert_eq!(ok[ACCESS_CONTROL_ALLOW_METHODS], "GET, PUT");
        assert_eq!(ok[ACCESS_CONTROL_ALLOW_HEADERS], "content-type, x-amz-date");
        assert_eq!(ok[ACCESS_CONTROL_MAX_AGE], "600");
        assert_eq!(ok[ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
        let any = preflight(
            Some(&config()),
            &request(&[
                ("origin", "https://other.org"),
                ("access-control-request-method", "GET"),
            ]),
            true,
        )
        .unwrap();
        assert_eq!(any[ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        assert!(any.get(ACCESS_CONTROL_ALLOW_CREDENTIALS).is_none());
    }

    #[test]
    fn preflight_refusals_are_s3s() {
        let refused = preflight(
            Some(&config()),
            &request(&[
                ("origin", "https://other.org"),
                ("access-control-request-method", "PUT"),
            ]),
            true,
        )
        .unwrap_err();
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        assert_eq!(refused.message, NOT_ALLOWED);
        let off = preflight(
            None,
            &request(&[
                ("origin", "https://a"),
                ("access-control-request-method", "GET"),
            ]),
            false,
        )
        .unwrap_err();
        assert_eq!(off.code, "CORSResponse");
        let no_origin = preflight(None, &request(&[]), false).unwrap_err();
        assert_eq!(no_origin.status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn configurations_are_checked() {
        let mut bad = config();
        bad.cors_rules[0].allowed_methods.push("PATCH".into());
        assert_eq!(
            validate(&bad).unwrap_err().message(),
            Some("Found unsupported HTTP method in CORS config. Unsupported method is PATCH")
        );
        let mut two = config();
        two.cors_rules[0].allowed_origins = vec!["http://*.*.com".into()];
        assert!(validate(&two).is_err());
        assert!(validate(&config()).is_ok());
    }
}
