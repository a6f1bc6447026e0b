//! The URLs Strato hands out for function URLs (`FunctionUrl`) and HTTP APIs
//! (`ApiEndpoint`).
//!
//! AWS's host-style shape (`{id}.lambda-url.{region}.on.aws`) needs a name
//! that resolves for every id. `*.localhost` resolves in curl and browsers
//! only: Python, Java, Go and Node ask the system resolver, which does not
//! know it. So by default the URLs are path-style on the address the
//! client used to reach Strato (`http://127.0.0.1:9000/_strato/lambda-url/{id}/`),
//! which every client reaches; `--url-style host` gives AWS's shape under
//! `--public-url`'s domain for users with wildcard DNS (or curl only).

use http::HeaderMap;

use crate::dataplane::{EXECUTE_API_PREFIX, LAMBDA_URL_PREFIX};

/// The shape of the URLs handed out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UrlStyle {
    /// `http://{host}/_strato/lambda-url/{id}/`,
    /// `http://{host}/_strato/execute-api/{id}`.
    #[default]
    Path,
    /// `http://{id}.lambda-url.{region}.{host}/`,
    /// `http://{id}.execute-api.{host}`.
    Host,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PublicUrlError {
    #[error(
        "the public URL {0:?} must be http://HOST[:PORT] or https://HOST[:PORT], without a path"
    )]
    Malformed(String),
}

/// How handed-out URLs are formed: the style, and the base clients reach
/// Strato at (default: the scheme `http` and the `Host` the request named).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublicUrls {
    style: UrlStyle,
    /// (scheme, `host[:port]`).
    base: Option<(String, String)>,
}

impl PublicUrls {
    /// `public_url` is `http[s]://host[:port]` (a trailing `/` is allowed).
    pub fn new(style: UrlStyle, public_url: Option<&str>) -> Result<PublicUrls, PublicUrlError> {
        let base = public_url
            .map(|url| {
                let malformed = || PublicUrlError::Malformed(url.to_string());
                let (scheme, rest) = url.split_once("://").ok_or_else(malformed)?;
                let authority = rest.strip_suffix('/').unwrap_or(rest);
                let valid_scheme = scheme == "http" || scheme == "https";
                if !valid_scheme || authority.is_empty() || authority.contains(['/', '?', '#', '@'])
                {
                    return Err(malformed());
                }
                Ok((scheme.to_string(), authority.to_ascii_lowercase()))
            })
            .transpose()?;
        Ok(PublicUrls { style, base })
    }

    /// The base for an answer to a request with these headers.
    pub fn for_request(&self, headers: &HeaderMap) -> UrlBase {
        let (scheme, authority) = match &self.base {
            Some((scheme, authority)) => (scheme.clone(), authority.clone()),
            None => (
                "http".to_string(),
                headers
                    .get(http::header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .filter(|h| !h.is_empty())
                    .unwrap_or("localhost")
                    .to_ascii_lowercase(),
            ),
        };
        UrlBase {
            style: self.style,
            scheme,
            authority,
        }
    }
}

/// Where one answer's URLs point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlBase {
    style: UrlStyle,
    scheme: String,
    /// `host[:port]`.
    authority: String,
}

impl UrlBase {
    /// The domain under which host-style names are made: an IP address
    /// cannot carry sub-domains, so it becomes `localhost`.
    fn host_style_authority(&self) -> String {
        let (host, port) = split_port(&self.authority);
        let is_ip = host.starts_with('[') || host.parse::<std::net::IpAddr>().is_ok();
        let host = if is_ip { "localhost" } else { host };
        match port {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        }
    }

    /// A function URL, with its trailing `/` as AWS gives it.
    pub fn function_url(&self, url_id: &str, region: &str) -> String {
        match self.style {
            UrlStyle::Path => format!(
                "{}://{}{LAMBDA_URL_PREFIX}{url_id}/",
                self.scheme, self.authority
            ),
            UrlStyle::Host => format!(
                "{}://{url_id}.lambda-url.{region}.{}/",
                self.scheme,
                self.host_style_authority()
            ),
        }
    }

    /// An HTTP API's `ApiEndpoint` (no trailing `/`, as AWS gives it).
    pub fn api_endpoint(&self, api_id: &str) -> String {
        match self.style {
            UrlStyle::Path => format!(
                "{}://{}{EXECUTE_API_PREFIX}{api_id}",
                self.scheme, self.authority
            ),
            UrlStyle::Host => format!(
                "{}://{api_id}.execute-api.{}",
                self.scheme,
                self.host_style_authority()
            ),
        }
    }
}

impl UrlBase {
    /// A WebSocket API's `ApiEndpoint`: the HTTP API form with `ws`/`wss`
    /// for `http`/`https`, as AWS gives `wss://{id}.execute-api...`.
    pub fn websocket_endpoint(&self, api_id: &str) -> String {
        let http = self.api_endpoint(api_id);
        match http.strip_prefix("http") {
            Some(rest) => format!("ws{rest}"),
            None => http,
        }
    }
}

/// (`host`, port) of `host[:port]` (`[::1]:9000` too).
fn split_port(authority: &str) -> (&str, Option<&str>) {
    match authority.rsplit_once(':') {
        Some((host, port))
            if !port.is_empty()
                && port.bytes().all(|b| b.is_ascii_digit())
                && (!host.contains(':') || host.ends_with(']')) =>
        {
            (host, Some(port))
        }
        _ => (authority, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(host: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(http::header::HOST, host.parse().unwrap());
        map
    }

    #[test]
    fn path_style_urls_use_the_address_the_client_used() {
        let base = PublicUrls::default().for_request(&headers("127.0.0.1:9000"));
        assert_eq!(
            base.function_url("abc", "us-east-1"),
            "http://127.0.0.1:9000/_strato/lambda-url/abc/"
        );
        assert_eq!(
            base.api_endpoint("xyz"),
            "http://127.0.0.1:9000/_strato/execute-api/xyz"
        );
        assert_eq!(
            base.websocket_endpoint("xyz"),
            "ws://127.0.0.1:9000/_strato/execute-api/xyz"
        );
    }

    #[test]
    fn host_style_urls_keep_aws_shape() {
        let urls = PublicUrls::new(UrlStyle::Host, None).unwrap();
        let base = urls.for_request(&headers("127.0.0.1:9000"));
        assert_eq!(
            base.function_url("abc", "us-east-1"),
            "http://abc.lambda-url.us-east-1.localhost:9000/"
        );
        assert_eq!(
            base.api_endpoint("xyz"),
            "http://xyz.execute-api.localhost:9000"
        );
        let public = PublicUrls::new(UrlStyle::Host, Some("https://Strato.Example.com/")).unwrap();
        assert_eq!(
            public
                .for_request(&headers("10.0.0.1:9000"))
                .api_endpoint("xyz"),
            "https://xyz.execute-api.strato.example.com"
        );
        let ipv6 = urls.for_request(&headers("[::1]:9000"));
        assert_eq!(
            ipv6.api_endpoint("x"),
            "http://x.execute-api.localhost:9000"
        );
    }

    #[test]
    fn a_public_url_replaces_the_request_host() {
        let urls = PublicUrls::new(UrlStyle::Path, Some("http://strato.lan:8080")).unwrap();
        assert_eq!(
            urls.for_request(&headers("127.0.0.1:9000"))
                .function_url("abc", "eu-west-1"),
            "http://strato.lan:8080/_strato/lambda-url/abc/"
        );
    }

    #[test]
    fn malformed_public_urls_are_refused() {
        for url in [
            "strato.lan",
            "ftp://x",
            "http://",
            "http://x/base",
            "http://u@x",
        ] {
            assert!(PublicUrls::new(UrlStyle::Path, Some(url)).is_err(), "{url}");
        }
    }
}
