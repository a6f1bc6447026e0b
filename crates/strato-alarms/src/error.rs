//! CloudWatch's error answers, with the query-protocol codes its
//! awsQueryCompatible trait sends (`InvalidParameterValue`, ...).

use strato_model::wire::ServiceError;

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
