//! CloudWatch's error answers, with the query-protocol codes its
//! awsQueryCompatible trait sends (`InvalidParameterValue`, ...).

use strato_model::wire::{Doc, ServiceError};

pub fn invalid_value(message: impl Into<String>) -> ServiceError {
    ServiceError::new("InvalidParameterValueException", message)
        .query_compatible("InvalidParameterValue")
}

pub fn missing(member: &str) -> ServiceError {
    ServiceError::new(
        "MissingRequiredParameterException",
        format!("The parameter {member} is required."),
    )
    .query_compatible("MissingParameter")
}

/// The member `key` of `input` as `read` takes it (`Doc::as_str`,
/// `Doc::as_i64`, ...), or CloudWatch's `MissingParameter` answer naming it.
pub fn required<'a, T>(
    input: &'a Doc,
    key: &str,
    read: fn(&'a Doc) -> Option<T>,
) -> Result<T, ServiceError> {
    required_as(input, key, read, key)
}

/// [`required`] for a member of a nested structure or list, which AWS's
/// answer names by its whole path (`MetricDataQueries.member.Id`).
pub fn required_as<'a, T>(
    input: &'a Doc,
    key: &str,
    read: fn(&'a Doc) -> Option<T>,
    path: &str,
) -> Result<T, ServiceError> {
    input.get(key).and_then(read).ok_or_else(|| missing(path))
}

pub fn combination(message: impl Into<String>) -> ServiceError {
    ServiceError::new("InvalidParameterCombinationException", message)
        .query_compatible("InvalidParameterCombination")
}

pub fn validation(message: impl Into<String>) -> ServiceError {
    ServiceError::new("ValidationException", message).query_compatible("ValidationError")
}

/// `1 validation error detected: Value 'X' at 'member' failed to satisfy
/// constraint: Member must satisfy enum value set: [...]`.
pub fn not_in_enum(value: &str, member: &str, values: &[&str]) -> ServiceError {
    validation(format!(
        "1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
        values.join(", ")
    ))
}

/// What AWS answers for an alarm that does not exist (404, no message).
pub fn not_found() -> ServiceError {
    let mut e = ServiceError::new("ResourceNotFound", "").query_compatible("ResourceNotFound");
    e.status = 404;
    e
}

pub fn invalid_token() -> ServiceError {
    ServiceError::new(
        "InvalidNextToken",
        "The service couldn't process your request because the NextToken is invalid.",
    )
    .query_compatible("InvalidNextToken")
}

pub fn internal() -> ServiceError {
    let mut e = ServiceError::new("InternalServiceFault", "Internal service error.")
        .query_compatible("InternalServiceError");
    e.status = 500;
    e
}
