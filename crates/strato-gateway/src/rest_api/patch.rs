//! `patchOperations`: the JSON-Patch-like bodies of `apigateway`'s Update*
//! operations (`op`, `path`, `value`), with `~1` for `/` and `~0` for `~`
//! inside a path segment.

use serde::Deserialize;

use super::error::{RestError, RestResult};

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PatchOperation {
    pub op: String,
    pub path: String,
    #[serde(default)]
    pub value: Option<String>,
    #[serde(default)]
    pub from: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PatchRequest {
    #[serde(default)]
    pub patch_operations: Vec<PatchOperation>,
}

/// What a patch operation does with its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchOp {
    Add,
    Remove,
    Replace,
    Copy,
}

/// Segments as `&str`s, to match a path on slice patterns
/// (`(PatchOp::Replace, ["variables", name])`).
pub fn as_strs(segments: &[String]) -> Vec<&str> {
    segments.iter().map(String::as_str).collect()
}

impl PatchOperation {
    pub fn kind(&self) -> RestResult<PatchOp> {
        match self.op.as_str() {
            "add" => Ok(PatchOp::Add),
            "remove" => Ok(PatchOp::Remove),
            "replace" => Ok(PatchOp::Replace),
            "copy" => Ok(PatchOp::Copy),
            other => Err(RestError::bad_request(format!(
                "Invalid patch operation specified. Must be 'add'|'remove'|'replace'|'copy'; got '{other}'"
            ))),
        }
    }

    /// The path's segments, unescaped (`/~1items/GET` → `["/items", "GET"]`).
    pub fn segments(&self) -> Vec<String> {
        self.path
            .trim_start_matches('/')
            .split('/')
            .map(unescape_segment)
            .collect()
    }

    /// The value, required for add/replace.
    pub fn value(&self) -> RestResult<&str> {
        self.value.as_deref().ok_or_else(|| {
            RestError::bad_request(format!(
                "Invalid null or empty value in patch operation '{}' for path '{}'",
                self.op, self.path
            ))
        })
    }

    pub fn bool_value(&self) -> RestResult<bool> {
        match self.value()? {
            "true" | "TRUE" | "True" => Ok(true),
            "false" | "FALSE" | "False" => Ok(false),
            other => Err(RestError::bad_request(format!(
                "Invalid value '{other}' for path '{}'; expected a boolean",
                self.path
            ))),
        }
    }

    pub fn int_value(&self) -> RestResult<i64> {
        let value = self.value()?;
        value.trim().parse::<i64>().map_err(|_| {
            RestError::bad_request(format!(
                "Invalid value '{value}' for path '{}'; expected an integer",
                self.path
            ))
        })
    }

    pub fn double_value(&self) -> RestResult<f64> {
        let value = self.value()?;
        value
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| {
                RestError::bad_request(format!(
                    "Invalid value '{value}' for path '{}'; expected a number",
                    self.path
                ))
            })
    }

    /// AWS's answer for a path the resource does not support.
    pub fn unsupported(&self) -> RestError {
        RestError::bad_request(format!(
            "Invalid patch path '{}' specified for op '{}'",
            self.path, self.op
        ))
    }
}

pub fn unescape_segment(segment: &str) -> String {
    segment.replace("~1", "/").replace("~0", "~")
}

pub fn escape_segment(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_unescaped() {
        let op = PatchOperation {
            op: "replace".into(),
            path: "/~1items~1{id}/GET/throttling/rateLimit".into(),
            value: Some("5".into()),
            from: None,
        };
        assert_eq!(
            op.segments(),
            vec!["/items/{id}", "GET", "throttling", "rateLimit"]
        );
        assert_eq!(escape_segment("/items/{id}"), "~1items~1{id}");
    }
}
