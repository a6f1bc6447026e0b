//! EventBridge's and Scheduler's errors, worded as AWS words them.

use strato_model::wire::ServiceError;

pub fn validation(message: impl Into<String>) -> ServiceError {
    ServiceError::new("ValidationException", message)
}

pub fn bus_not_found(name: &str) -> ServiceError {
    ServiceError::new(
        "ResourceNotFoundException",
        format!("Event bus {name} does not exist."),
    )
}

pub fn rule_not_found(name: &str, bus: &str) -> ServiceError {
    ServiceError::new(
        "ResourceNotFoundException",
        format!("Rule {name} does not exist on EventBus {bus}."),
    )
}

pub fn bus_exists(name: &str) -> ServiceError {
    ServiceError::new(
        "ResourceAlreadyExistsException",
        format!("Event bus {name} already exists."),
    )
}

pub fn limit_exceeded() -> ServiceError {
    ServiceError::new(
        "LimitExceededException",
        "The requested resource exceeds the maximum number allowed.",
    )
}

pub fn invalid_pattern(message: String) -> ServiceError {
    ServiceError::new("InvalidEventPatternException", message)
}

pub fn internal(message: impl Into<String>) -> ServiceError {
    with_status(ServiceError::new("InternalException", message), 500)
}

/// `1 validation error detected: Value '{value}' at '{at}' failed to
/// satisfy constraint: {constraint}`.
pub fn constraint(value: &str, at: &str, constraint: &str) -> ServiceError {
    validation(format!(
        "1 validation error detected: Value '{value}' at '{at}' failed to satisfy constraint: {constraint}"
    ))
}

pub const NAME_PATTERN: &str = r"Member must satisfy regular expression pattern: [\.\-_A-Za-z0-9]+";
pub const MAX_64: &str = "Member must have length less than or equal to 64";

/// Scheduler's (REST-JSON) errors.
pub mod scheduler {
    use super::ServiceError;

    pub fn validation(message: impl Into<String>) -> ServiceError {
        ServiceError::new("ValidationException", message)
    }

    pub fn invalid_expression(expression: &str) -> ServiceError {
        validation(format!("Invalid Schedule Expression {expression}."))
    }

    pub fn not_found(message: impl Into<String>) -> ServiceError {
        super::with_status(ServiceError::new("ResourceNotFoundException", message), 404)
    }

    pub fn conflict(message: impl Into<String>) -> ServiceError {
        super::with_status(ServiceError::new("ConflictException", message), 409)
    }
}

/// A Scheduler or internal error with its own HTTP status.
fn with_status(mut error: ServiceError, status: u16) -> ServiceError {
    error.status = status;
    error
}

pub fn unknown_operation(operation: &str) -> ServiceError {
    ServiceError::new(
        "UnknownOperationException",
        format!("Unknown operation {operation}"),
    )
}
