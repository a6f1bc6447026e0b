//! The host names a sandbox reaches Strato by: AWS's own service names.
//!
//! Inside an isolated instance these resolve to Strato's in-namespace
//! listener (see [`crate::dns`]), and only these get a certificate from
//! Strato's sandbox CA: every name under `amazonaws.com` (regional and
//! global service endpoints, `{bucket}.s3.{region}.amazonaws.com`,
//! `{id}.execute-api.{region}.amazonaws.com`, ...) and function URLs,
//! `{id}.lambda-url.{region}.on.aws`. Every other name resolves as the host
//! resolves it.

/// The longest name DNS carries, in presentation form without the final dot.
const MAX_NAME_LEN: usize = 253;
const MAX_LABEL_LEN: usize = 63;

/// `name` (any case, with or without the final dot) is one of AWS's names
/// Strato answers for.
pub fn is_aws_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return false;
    }
    let labels: Vec<&str> = name.split('.').collect();
    let valid = labels.iter().all(|label| {
        !label.is_empty()
            && label.len() <= MAX_LABEL_LEN
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    if !valid {
        return false;
    }
    let lower: Vec<String> = labels.iter().map(|l| l.to_ascii_lowercase()).collect();
    match lower.as_slice() {
        // At least one label under the domain: `amazonaws.com` itself is no service.
        [_id, kind, _region, on, aws] if kind == "lambda-url" => on == "on" && aws == "aws",
        [_, .., a, b] => a == "amazonaws" && b == "com",
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_bucket_api_and_function_url_names_are_aws_names() {
        for name in [
            "lambda.us-east-1.amazonaws.com",
            "LAMBDA.us-east-1.amazonaws.com.",
            "sqs.eu-west-1.amazonaws.com",
            "iam.amazonaws.com",
            "sts.amazonaws.com",
            "my.bucket.s3.us-east-1.amazonaws.com",
            "abc123.execute-api.us-east-1.amazonaws.com",
            "u1abc.lambda-url.us-east-1.on.aws",
        ] {
            assert!(is_aws_name(name), "{name}");
        }
    }

    #[test]
    fn other_names_are_not() {
        for name in [
            "amazonaws.com",
            "example.com",
            "amazonaws.com.evil.example",
            "evilamazonaws.com",
            "on.aws",
            "x.on.aws",
            "a.b.lambda-url.us-east-1.on.aws",
            "a..amazonaws.com",
            "a b.amazonaws.com",
            "",
        ] {
            assert!(!is_aws_name(name), "{name}");
        }
        assert!(!is_aws_name(&format!("{}.amazonaws.com", "a".repeat(64))));
    }
}
