//! HTTP_PROXY integrations: the request passes through to an HTTP backend
//! (an EC2 or Elastic Beanstalk service, or any URL) and its answer comes
//! back as it is, minus hop-by-hop headers.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};

use crate::proxy::ProxyResponse;

/// Why a backend call produced no answer.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("integration URI {0:?} is not an http(s) URL")]
    InvalidUrl(String),
    #[error("the backend did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the backend is unreachable: {0}")]
    Unreachable(String),
}

/// One call to a backend.
#[derive(Debug, Clone)]
pub struct BackendRequest {
    pub method: Method,
    /// The full URL, query included.
    pub url: String,
    /// The headers to send (hop-by-hop ones are dropped here).
    pub headers: HeaderMap,
    pub body: Bytes,
    pub timeout: Duration,
}

/// Headers that describe one connection, not the message: never forwarded.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "host"
            | "content-length"
    )
}

/// A shared HTTP client (connection pooling, TCP_NODELAY, no redirects
/// followed: the client sees the backend's own redirects).
#[derive(Clone)]
pub struct HttpBackend {
    client: reqwest::Client,
}

impl HttpBackend {
    pub fn new() -> Result<HttpBackend, BackendError> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .tcp_nodelay(true)
            .build()
            .map_err(|e| BackendError::Unreachable(e.to_string()))?;
        Ok(HttpBackend { client })
    }

    /// Forwards a request and returns the backend's answer.
    pub async fn forward(&self, request: BackendRequest) -> Result<ProxyResponse, BackendError> {
        let url = reqwest::Url::parse(&request.url)
            .map_err(|_| BackendError::InvalidUrl(request.url.clone()))?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(BackendError::InvalidUrl(request.url.clone()));
        }
        let mut headers = reqwest::header::HeaderMap::new();
        for (name, value) in &request.headers {
            if !is_hop_by_hop(name) {
                headers.append(name.clone(), value.clone());
            }
        }
        let call = self
            .client
            .request(request.method.clone(), url)
            .headers(headers)
            .body(request.body.clone())
            .send();
        let timeout = request.timeout;
        let answer = tokio::time::timeout(timeout, async move {
            let response = call.await?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, headers, body))
        })
        .await
        .map_err(|_| BackendError::Timeout(timeout))?
        .map_err(|e| {
            if e.is_timeout() {
                BackendError::Timeout(timeout)
            } else {
                BackendError::Unreachable(e.to_string())
            }
        })?;
        let (status, headers, body) = answer;
        let headers: Vec<(HeaderName, HeaderValue)> = headers
            .iter()
            .filter(|(name, _)| !is_hop_by_hop(name))
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect();
        Ok(ProxyResponse {
            status: StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY),
            headers,
            body,
        })
    }
}

/// Replaces `{name}` (and `{name+}`) placeholders in a URL template with the
/// values given (path parameters, or `${stageVariables.x}` already
/// resolved), leaving unknown placeholders as they are.
pub fn fill_template(template: &str, values: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                let name = &after[..close];
                match values(name) {
                    Some(value) => out.push_str(&value),
                    None => {
                        out.push('{');
                        out.push_str(name);
                        out.push('}');
                    }
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Replaces `${stageVariables.name}` with the stage's variable (empty when
/// the stage has none of that name, as AWS does).
pub fn substitute_stage_variables(
    text: &str,
    variables: &std::collections::BTreeMap<String, String>,
) -> String {
    const OPEN: &str = "${stageVariables.";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(OPEN) {
        out.push_str(&rest[..start]);
        let after = &rest[start + OPEN.len()..];
        match after.find('}') {
            Some(end) => {
                if let Some(value) = variables.get(&after[..end]) {
                    out.push_str(value);
                }
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn templates_fill_known_placeholders() {
        let filled = fill_template("http://h/{proxy}/x/{id}/{other}", &|n| match n {
            "proxy" => Some("a/b".into()),
            "id" => Some("7".into()),
            _ => None,
        });
        assert_eq!(filled, "http://h/a/b/x/7/{other}");
    }

    #[test]
    fn stage_variables_substitute_and_missing_ones_vanish() {
        let vars = BTreeMap::from([("host".to_string(), "127.0.0.1:8080".to_string())]);
        assert_eq!(
            substitute_stage_variables(
                "http://${stageVariables.host}/p${stageVariables.no}",
                &vars
            ),
            "http://127.0.0.1:8080/p"
        );
    }
}
