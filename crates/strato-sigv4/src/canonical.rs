//! The SigV4 canonical request, rebuilt from the request as received.
//!
//! Every rule here is one a real signer applies on its side; a difference of a
//! single byte makes every request from that signer fail, so each rule names
//! the signer behaviour it mirrors.

use http::{HeaderMap, Uri};
use percent_encoding::{percent_decode, percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Everything but RFC 3986's unreserved characters (`A-Za-z0-9-_.~`) is
/// percent-encoded in canonical query strings and paths.
const URI_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Paths keep their `/` separators.
const PATH_ENCODE: &AsciiSet = &URI_ENCODE.remove(b'/');

/// How the path becomes the canonical URI; it differs by service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathStyle {
    /// Every service but S3: the path as sent (already percent-encoded by the
    /// client) has its dot segments and empty segments removed and is then
    /// URI-encoded again, so `%3A` on the wire becomes `%253A` in the
    /// canonical request. botocore, the Java SDK and `aws-sigv4` (its
    /// `PercentEncodingMode::Double` with path normalisation) all do this.
    Normalized,
    /// S3: no normalisation (`a//b/./c` is a different object key from
    /// `a/b/c`) and a single encoding of the object path. The path is decoded
    /// and re-encoded, so a client that sends `:` raw and one that sends
    /// `%3A` both canonicalise to `%3A`, as S3 does.
    S3,
}

impl PathStyle {
    /// The style AWS uses for a service named in a credential scope.
    pub fn for_service(service: &str) -> Self {
        match service {
            "s3" | "s3-object-lambda" => Self::S3,
            _ => Self::Normalized,
        }
    }
}

/// The canonical URI for `path` (the raw path as received, not decoded).
pub(crate) fn canonical_uri(path: &str, style: PathStyle) -> String {
    let path = if path.is_empty() { "/" } else { path };
    match style {
        PathStyle::Normalized => {
            let normalized = remove_dot_segments(path);
            percent_encode(normalized.as_bytes(), PATH_ENCODE).to_string()
        }
        PathStyle::S3 => {
            let decoded: Vec<u8> = percent_decode(path.as_bytes()).collect();
            percent_encode(&decoded, PATH_ENCODE).to_string()
        }
    }
}

/// RFC 3986 §5.2.4 dot-segment removal plus the collapse of empty segments
/// (`//`) that AWS applies to non-S3 paths. A trailing slash survives, as in
/// `aws-sigv4`: `/a/b/.` and `/a/b/` both give `/a/b/`.
fn remove_dot_segments(path: &str) -> String {
    if !path.contains('.') && !path.contains("//") && path.starts_with('/') {
        return path.to_owned();
    }
    let mut kept: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                kept.pop();
            }
            other => kept.push(other),
        }
    }
    let mut out = String::with_capacity(path.len() + 1);
    out.push('/');
    out.push_str(&kept.join("/"));
    let trailing = ["/", "/.", "/.."].iter().any(|end| path.ends_with(end));
    if trailing && !out.ends_with('/') {
        out.push('/');
    }
    out
}

/// One `name=value` pair of a query string, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QueryParam {
    pub(crate) name: Vec<u8>,
    pub(crate) value: Vec<u8>,
}

/// Split a raw query string into decoded pairs, as `form_urlencoded` does for
/// `aws-sigv4`: empty pieces between `&` are dropped, a piece without `=` is
/// a name with an empty value, `+` is a space, and a malformed `%` escape is
/// kept literally.
pub(crate) fn parse_query(query: &str) -> Vec<QueryParam> {
    query
        .split('&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| {
            let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
            QueryParam {
                name: form_decode(name),
                value: form_decode(value),
            }
        })
        .collect()
}

fn form_decode(raw: &str) -> Vec<u8> {
    let spaced = raw.replace('+', " ");
    percent_decode(spaced.as_bytes()).collect()
}

/// The canonical query string: every pair re-encoded with AWS's URI encoding
/// (so `%20`, never `+`), sorted by encoded name and then encoded value,
/// empty values kept as `name=`. `skip` names a parameter left out entirely
/// (`X-Amz-Signature` for presigned URLs).
pub(crate) fn canonical_query(params: &[QueryParam], skip: Option<&[u8]>) -> String {
    let mut encoded: Vec<(String, String)> = params
        .iter()
        .filter(|param| Some(param.name.as_slice()) != skip)
        .map(|param| {
            (
                percent_encode(&param.name, URI_ENCODE).to_string(),
                percent_encode(&param.value, URI_ENCODE).to_string(),
            )
        })
        .collect();
    encoded.sort();
    let mut out = String::new();
    for (i, (name, value)) in encoded.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    out
}

/// The canonical headers block (`name:value\n` per signed header) for the
/// signed header names, in the order the client listed them.
///
/// Values of a repeated header are joined with `,` in arrival order; each is
/// trimmed of spaces and inner runs of spaces are collapsed to one (AWS's
/// "Trimall"). A signed `host` that is absent from the headers (HTTP/2 puts
/// it in `:authority`) is taken from the request URI's authority.
pub(crate) fn canonical_headers(signed: &[String], headers: &HeaderMap, uri: &Uri) -> Vec<u8> {
    let mut out = Vec::new();
    for name in signed {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        let mut values = headers.get_all(name.as_str()).iter().peekable();
        if values.peek().is_none() && name == "host" {
            if let Some(authority) = uri.authority() {
                out.extend_from_slice(&trim_all(authority.as_str().as_bytes()));
            }
        }
        for (i, value) in values.enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&trim_all(value.as_bytes()));
        }
        out.push(b'\n');
    }
    out
}

/// Trim leading and trailing spaces and collapse inner runs of spaces. Only
/// the space character is touched, as in `aws-sigv4` and AWS's description.
fn trim_all(value: &[u8]) -> Vec<u8> {
    let start = value.iter().position(|&b| b != b' ').unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|&b| b != b' ')
        .map_or(start, |i| i + 1);
    let mut out = Vec::with_capacity(end - start);
    for &b in &value[start..end] {
        if b == b' ' && out.last() == Some(&b' ') {
            continue;
        }
        out.push(b);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn query(raw: &str) -> String {
        canonical_query(&parse_query(raw), None)
    }

    #[test]
    fn non_s3_paths_are_normalized_then_encoded_again() {
        let cases = [
            ("", "/"),
            ("/", "/"),
            ("/example/..", "/"),
            ("/example1/example2/../..", "/"),
            ("/./", "/"),
            ("/./example", "/example"),
            ("//example//", "/example/"),
            ("/a/b/.", "/a/b/"),
            ("/a/b/..", "/a/"),
            ("/../a", "/a"),
            ("/example%20space/", "/example%2520space/"),
            ("/%E1%88%B4", "/%25E1%2588%25B4"),
            (
                "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-west-2%3A123456789012%3Afunction%3Afoo/invocations",
                "/2015-03-31/functions/arn%253Aaws%253Alambda%253Aus-west-2%253A123456789012%253Afunction%253Afoo/invocations",
            ),
            ("/test/@connections/JBDvjfGEIAMCERw%3D", "/test/%40connections/JBDvjfGEIAMCERw%253D"),
            ("/functions/f/invocations:$LATEST", "/functions/f/invocations%3A%24LATEST"),
            ("/-_.~", "/-_.~"),
        ];
        assert_canonical_uris(&cases, PathStyle::Normalized);
    }

    fn assert_canonical_uris(cases: &[(&str, &str)], style: PathStyle) {
        for (path, expected) in cases {
            assert_eq!(canonical_uri(path, style), *expected, "path {path:?}");
        }
    }

    #[test]
    fn s3_paths_are_neither_normalized_nor_double_encoded() {
        let cases = [
            ("//example//", "//example//"),
            ("/bucket/a/./b/../c", "/bucket/a/./b/../c"),
            ("/bucket/a%3Ab", "/bucket/a%3Ab"),
            ("/bucket/a:b", "/bucket/a%3Ab"),
            ("/bucket/with%20space", "/bucket/with%20space"),
            ("/bucket/%E1%88%B4", "/bucket/%E1%88%B4"),
            ("/bucket/100%25", "/bucket/100%25"),
        ];
        assert_canonical_uris(&cases, PathStyle::S3);
    }

    #[test]
    fn path_style_by_service() {
        assert_eq!(PathStyle::for_service("s3"), PathStyle::S3);
        assert_eq!(PathStyle::for_service("lambda"), PathStyle::Normalized);
    }

    #[test]
    fn query_is_sorted_by_encoded_name_then_value() {
        assert_eq!(query(""), "");
        assert_eq!(
            query("Param2=value2&Param1=value1"),
            "Param1=value1&Param2=value2"
        );
        assert_eq!(
            query("Param1=value2&Param1=Value1"),
            "Param1=Value1&Param1=value2"
        );
        assert_eq!(
            query("Param1=value1&param1=value2"),
            "Param1=value1&param1=value2"
        );
        assert_eq!(query("a=2&a=1&a="), "a=&a=1&a=2");
        assert_eq!(query("Qualifier=%24LATEST"), "Qualifier=%24LATEST");
        assert_eq!(query("Qualifier=$LATEST"), "Qualifier=%24LATEST");
    }

    #[test]
    fn query_keeps_empty_values_and_drops_empty_pieces() {
        assert_eq!(query("Param1"), "Param1=");
        assert_eq!(query("Param1=&&b=1&"), "Param1=&b=1");
    }

    #[test]
    fn query_space_forms_all_become_percent_20() {
        assert_eq!(query("a=b+c"), "a=b%20c");
        assert_eq!(query("a=b%20c"), "a=b%20c");
        assert_eq!(query("a=b%2Bc"), "a=b%2Bc");
        assert_eq!(query("%E1%88%B4=bar"), "%E1%88%B4=bar");
        assert_eq!(query("k=%7e%2d"), "k=~-");
        assert_eq!(query("k=%zz"), "k=%25zz");
    }

    #[test]
    fn presign_signature_is_skipped() {
        let params = parse_query("b=1&X-Amz-Signature=abc&a=2");
        assert_eq!(
            canonical_query(&params, Some(b"X-Amz-Signature")),
            "a=2&b=1"
        );
    }

    #[test]
    fn headers_are_trimmed_collapsed_and_joined() {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("example.amazonaws.com"));
        headers.append("my-header1", HeaderValue::from_static("value2"));
        headers.append("my-header1", HeaderValue::from_static("value2"));
        headers.append("my-header1", HeaderValue::from_static("  value1  a   b "));
        let signed = vec!["host".to_string(), "my-header1".to_string()];
        let uri = Uri::from_static("/");
        assert_eq!(
            String::from_utf8_lossy(&canonical_headers(&signed, &headers, &uri)),
            "host:example.amazonaws.com\nmy-header1:value2,value2,value1 a b\n"
        );
    }

    #[test]
    fn host_falls_back_to_authority() {
        let uri = Uri::from_static("https://lambda.us-east-1.amazonaws.com/x");
        let signed = vec!["host".to_string()];
        assert_eq!(
            canonical_headers(&signed, &HeaderMap::new(), &uri),
            b"host:lambda.us-east-1.amazonaws.com\n"
        );
    }

    #[test]
    fn trim_all_edge_cases() {
        assert_eq!(trim_all(b""), b"");
        assert_eq!(trim_all(b"   "), b"");
        assert_eq!(trim_all(b" a "), b"a");
        assert_eq!(trim_all(b"a\tb"), b"a\tb");
    }
}
