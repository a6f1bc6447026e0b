//! Field validation for function requests, with AWS's messages.

use std::collections::BTreeMap;

use crate::error::{AwsError, ErrorCode, ValidationErrors};
use crate::limits::*;

pub const ROLE_PATTERN: &str = r"arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+";

fn one(value: &str, field: &str, constraint: &str, code: ErrorCode) -> AwsError {
    let mut v = ValidationErrors::new();
    v.push(value, field, constraint);
    match v.into_result(code) {
        Err(e) => e,
        Ok(()) => AwsError::new(code, constraint.to_string()),
    }
}

/// A function name at creation: at most 64 characters.
pub fn function_name_for_create(name: &str) -> Result<(), AwsError> {
    if name.len() > 64 {
        return Err(one(
            name,
            "functionName",
            "Member must have length less than or equal to 64",
            ErrorCode::InvalidParameterValueException,
        ));
    }
    Ok(())
}

/// `arn:aws:iam::123456789012:role/name`
pub fn role(role: &str) -> Result<(), AwsError> {
    let ok = (|| {
        let rest = role.strip_prefix("arn:")?;
        let (partition, rest) = rest.split_once(':')?;
        if !partition.is_empty() && !partition.starts_with("aws") {
            return None;
        }
        let rest = rest.strip_prefix("iam::")?;
        let (account, rest) = rest.split_once(':')?;
        if !(account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())) {
            return None;
        }
        let path = rest.strip_prefix("role")?;
        let path = path.strip_prefix('/').unwrap_or(path);
        let valid = !path.is_empty()
            && path
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-/".contains(c));
        valid.then_some(())
    })();
    ok.ok_or_else(|| {
        one(
            role,
            "role",
            &format!("Member must satisfy regular expression pattern: {ROLE_PATTERN}"),
            ErrorCode::ValidationException,
        )
    })
}

/// Handler: up to 128 characters without whitespace.
pub fn handler(handler: &str) -> Result<(), AwsError> {
    if handler.len() > 128 {
        return Err(one(
            handler,
            "handler",
            "Member must have length less than or equal to 128",
            ErrorCode::ValidationException,
        ));
    }
    if handler.is_empty() || handler.chars().any(char::is_whitespace) {
        return Err(one(
            handler,
            "handler",
            r"Member must satisfy regular expression pattern: [^\s]+",
            ErrorCode::ValidationException,
        ));
    }
    Ok(())
}

pub fn description(description: &str) -> Result<(), AwsError> {
    if description.chars().count() > 256 {
        return Err(one(
            description,
            "description",
            "Member must have length less than or equal to 256",
            ErrorCode::ValidationException,
        ));
    }
    Ok(())
}

/// A bounded integer: below the model's minimum AWS answers with a
/// ValidationException; above the service's maximum with
/// InvalidParameterValueException naming the member.
fn bounded(value: i64, field: &str, member: &str, min: i64, max: i64) -> Result<(), AwsError> {
    if value < min {
        let mut v = ValidationErrors::new();
        v.push(
            &value.to_string(),
            field,
            &format!("Member must have value greater than or equal to {min}"),
        );
        return v.into_result(ErrorCode::ValidationException);
    }
    if value > max {
        return Err(AwsError::invalid_parameter(format!(
            "'{member}' value failed to satisfy constraint: Member must have value less than or equal to {max}"
        )));
    }
    Ok(())
}

pub fn memory_size(mb: i64) -> Result<(), AwsError> {
    bounded(mb, "memorySize", "MemorySize", MIN_MEMORY_MB, MAX_MEMORY_MB)
}

pub fn timeout(seconds: i64) -> Result<(), AwsError> {
    bounded(seconds, "timeout", "Timeout", MIN_TIMEOUT_S, MAX_TIMEOUT_S)
}

pub fn ephemeral_storage(mb: i64) -> Result<(), AwsError> {
    let mut v = ValidationErrors::new();
    if mb < MIN_EPHEMERAL_MB {
        v.push(
            &mb.to_string(),
            "ephemeralStorage.size",
            &format!("Member must have value greater than or equal to {MIN_EPHEMERAL_MB}"),
        );
    } else if mb > MAX_EPHEMERAL_MB {
        v.push(
            &mb.to_string(),
            "ephemeralStorage.size",
            &format!("Member must have value less than or equal to {MAX_EPHEMERAL_MB}"),
        );
    }
    v.into_result(ErrorCode::ValidationException)
}

/// Variables Lambda sets itself and refuses to let a function override.
pub const RESERVED_ENV_KEYS: &[&str] = &[
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
];

/// Environment variables: names as AWS allows them, no reserved names, and
/// at most 4 KB measured as the JSON object AWS measures.
pub fn environment(vars: &BTreeMap<String, String>) -> Result<(), AwsError> {
    let mut v = ValidationErrors::new();
    for key in vars.keys() {
        let mut chars = key.chars();
        let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            && key.len() >= 2
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            v.push(
                key,
                "environment.variables",
                "Member must satisfy regular expression pattern: [a-zA-Z]([a-zA-Z0-9_])+",
            );
        }
    }
    v.into_result(ErrorCode::ValidationException)?;
    let reserved: Vec<&str> = vars
        .keys()
        .map(String::as_str)
        .filter(|k| RESERVED_ENV_KEYS.contains(k))
        .collect();
    if !reserved.is_empty() {
        return Err(AwsError::invalid_parameter(format!(
            "Lambda was unable to configure your environment variables because the environment variables you have provided contains reserved keys that are currently not supported for modification. Reserved keys used in this request: {}",
            reserved.join(", ")
        )));
    }
    let measured = serde_json::to_string(vars).unwrap_or_default();
    if measured.len() > MAX_ENVIRONMENT_BYTES {
        return Err(AwsError::invalid_parameter(format!(
            "Lambda was unable to configure your environment variables because the environment variables you have provided exceeded the 4KB limit. String measured: {measured}"
        )));
    }
    Ok(())
}

/// `Architectures`: exactly one of `x86_64`, `arm64`.
pub fn architectures(list: &[String]) -> Result<(), AwsError> {
    if list.len() > 1 {
        return Err(one(
            &format!("[{}]", list.join(", ")),
            "architectures",
            "Member must have length less than or equal to 1",
            ErrorCode::ValidationException,
        ));
    }
    if list.iter().any(|a| a != "x86_64" && a != "arm64") {
        return Err(one(
            &format!("[{}]", list.join(", ")),
            "architectures",
            "Member must satisfy constraint: [Member must satisfy enum value set: [x86_64, arm64], Member must not be null]",
            ErrorCode::ValidationException,
        ));
    }
    Ok(())
}

/// Tags: at most 50 per resource.
pub fn tag_count(count: usize) -> Result<(), AwsError> {
    if count > MAX_TAGS {
        return Err(AwsError::invalid_parameter(
            "Number of tags exceeds resource tag limit.",
        ));
    }
    Ok(())
}

/// A statement id: `[a-zA-Z0-9-_]+`, at most 100 characters.
pub fn statement_id(sid: &str) -> Result<(), AwsError> {
    let valid = !sid.is_empty()
        && sid.len() <= 100
        && sid
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid {
        return Err(one(
            sid,
            "statementId",
            "Member must satisfy regular expression pattern: ([a-zA-Z0-9-_]+)",
            ErrorCode::ValidationException,
        ));
    }
    Ok(())
}

/// An action: `lambda:Name`, `lambda:*` or `*`.
pub fn action(action: &str) -> Result<(), AwsError> {
    let valid = action == "*"
        || action == "lambda:*"
        || action
            .strip_prefix("lambda:")
            .is_some_and(|a| !a.is_empty() && a.chars().all(|c| c.is_ascii_alphabetic()));
    if !valid {
        return Err(one(
            action,
            "action",
            "Member must satisfy regular expression pattern: (lambda:[*]|lambda:[a-zA-Z]+|[*])",
            ErrorCode::ValidationException,
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_arn_shapes() {
        assert!(role("arn:aws:iam::123456789012:role/lambda-role").is_ok());
        assert!(role("arn:aws:iam::123456789012:role/path/to/role").is_ok());
        let err = role("r1").unwrap_err();
        assert_eq!(
            err.message,
            r"1 validation error detected: Value 'r1' at 'role' failed to satisfy constraint: Member must satisfy regular expression pattern: arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+"
        );
    }

    #[test]
    fn memory_above_maximum_names_the_member() {
        let err = memory_size(20_000).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidParameterValueException);
        assert_eq!(
            err.message,
            "'MemorySize' value failed to satisfy constraint: Member must have value less than or equal to 10240"
        );
    }

    #[test]
    fn memory_below_minimum_is_a_validation_error() {
        let err = memory_size(64).unwrap_err();
        assert_eq!(err.code, ErrorCode::ValidationException);
        assert!(err.message.contains("Value '64' at 'memorySize'"));
    }

    #[test]
    fn oversized_environment_quotes_the_measured_string() {
        let mut vars = BTreeMap::new();
        vars.insert("LARGE_VAR".to_string(), "x".repeat(5000));
        let err = environment(&vars).unwrap_err();
        assert!(err.message.starts_with(
            "Lambda was unable to configure your environment variables because the environment variables you have provided exceeded the 4KB limit. String measured: {\"LARGE_VAR\":\"xxx"
        ));
    }

    #[test]
    fn reserved_environment_key_is_refused() {
        let mut vars = BTreeMap::new();
        vars.insert("AWS_REGION".to_string(), "x".to_string());
        assert!(environment(&vars)
            .unwrap_err()
            .message
            .ends_with("Reserved keys used in this request: AWS_REGION"));
    }

    #[test]
    fn handler_with_space_is_refused() {
        assert!(handler("index handler").is_err());
        assert!(handler("index.handler").is_ok());
    }

    #[test]
    fn actions() {
        assert!(action("lambda:InvokeFunction").is_ok());
        assert!(action("*").is_ok());
        assert!(action("s3:GetObject").is_err());
    }
}
