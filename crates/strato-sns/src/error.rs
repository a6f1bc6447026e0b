//! SNS's errors, worded as AWS words them (see the recorded answers in
//! `shared/reference/sns-errors.txt`).

use strato_model::wire::ServiceError;

/// `InvalidParameter` (400) with AWS's full message.
pub fn invalid_parameter(message: impl Into<String>) -> ServiceError {
    ServiceError::new("InvalidParameter", message)
}

/// `Invalid parameter: <what>`.
pub fn invalid(what: &str) -> ServiceError {
    invalid_parameter(format!("Invalid parameter: {what}"))
}

/// `ParameterValueInvalid` (400): message attribute problems.
pub fn parameter_value_invalid(message: impl Into<String>) -> ServiceError {
    ServiceError::new("ParameterValueInvalid", message)
}

fn not_found_code(code: &'static str, message: &str) -> ServiceError {
    ServiceError {
        status: 404,
        ..ServiceError::new(code, message)
    }
}

pub fn topic_not_found() -> ServiceError {
    not_found_code("NotFound", "Topic does not exist")
}

pub fn subscription_not_found() -> ServiceError {
    not_found_code("NotFound", "Subscription does not exist")
}

pub fn resource_not_found() -> ServiceError {
    not_found_code("ResourceNotFound", "Resource does not exist")
}

pub fn validation(message: impl Into<String>) -> ServiceError {
    ServiceError::new("ValidationError", message)
}

pub fn internal(message: impl Into<String>) -> ServiceError {
    ServiceError {
        status: 500,
        ..ServiceError::new("InternalError", message)
    }
}

pub fn invalid_action(action: &str) -> ServiceError {
    ServiceError::new(
        "InvalidAction",
        format!("The action {action} is not valid for this endpoint."),
    )
}

/// An ARN parameter with too few parts:
/// `Invalid parameter: TopicArn Reason: An ARN must have at least 6 elements, not 1`.
pub fn short_arn(parameter: &str, parts: usize) -> ServiceError {
    invalid(&format!(
        "{parameter} Reason: An ARN must have at least 6 elements, not {parts}"
    ))
}
