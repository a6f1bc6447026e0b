//! The error every Strato front end answers with, shaped as AWS shapes it.
//!
//! On the wire (REST-JSON services such as Lambda) an error is an HTTP status,
//! an `x-amzn-ErrorType` header naming the code, and a JSON body
//! `{"Type": "User", "message": "..."}` (plus extra members such as `Reason`).

use std::borrow::Cow;
use std::fmt;

/// The AWS error codes Strato produces. Each knows its HTTP status and
/// whether AWS tags it `"Type": "User"` (client fault) or `"Type": "Service"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidParameterValueException,
    ValidationException,
    SerializationException,
    ResourceNotFoundException,
    ResourceConflictException,
    PreconditionFailedException,
    RequestTooLargeException,
    RequestEntityTooLargeException,
    /// An event whose payload is within the limit but whose request as
    /// queued (payload plus client context) is not.
    SerializedRequestEntityTooLargeException,
    TooManyRequestsException,
    ServiceException,
    UnrecognizedClientException,
    /// Session credentials past their expiry.
    ExpiredTokenException,
    InvalidSignatureException,
    MissingAuthenticationTokenException,
    IncompleteSignatureException,
    AccessDeniedException,
    UnknownOperationException,
    PolicyLengthExceededException,
    InvalidRequestContentException,
    InvalidRuntimeException,
    ResourceNotReadyException,
    UnsupportedMediaTypeException,
    CodeSigningConfigNotFoundException,
    ProvisionedConcurrencyConfigNotFoundException,
    ResourceInUseException,
    /// Code refused by a code signing configuration set to `Enforce`.
    CodeVerificationFailedException,
    /// An invocation stopped as part of a recursive loop.
    RecursiveInvocationException,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidParameterValueException => "InvalidParameterValueException",
            Self::ValidationException => "ValidationException",
            Self::SerializationException => "SerializationException",
            Self::ResourceNotFoundException => "ResourceNotFoundException",
            Self::ResourceConflictException => "ResourceConflictException",
            Self::PreconditionFailedException => "PreconditionFailedException",
            Self::RequestTooLargeException => "RequestTooLargeException",
            Self::RequestEntityTooLargeException => "RequestEntityTooLargeException",
            Self::SerializedRequestEntityTooLargeException => {
                "SerializedRequestEntityTooLargeException"
            }
            Self::TooManyRequestsException => "TooManyRequestsException",
            Self::ServiceException => "ServiceException",
            Self::UnrecognizedClientException => "UnrecognizedClientException",
            Self::ExpiredTokenException => "ExpiredTokenException",
            Self::InvalidSignatureException => "InvalidSignatureException",
            Self::MissingAuthenticationTokenException => "MissingAuthenticationTokenException",
            Self::IncompleteSignatureException => "IncompleteSignatureException",
            Self::AccessDeniedException => "AccessDeniedException",
            Self::UnknownOperationException => "UnknownOperationException",
            Self::PolicyLengthExceededException => "PolicyLengthExceededException",
            Self::InvalidRequestContentException => "InvalidRequestContentException",
            Self::InvalidRuntimeException => "InvalidRuntimeException",
            Self::ResourceNotReadyException => "ResourceNotReadyException",
            Self::UnsupportedMediaTypeException => "UnsupportedMediaTypeException",
            Self::CodeSigningConfigNotFoundException => "CodeSigningConfigNotFoundException",
            Self::ProvisionedConcurrencyConfigNotFoundException => {
                "ProvisionedConcurrencyConfigNotFoundException"
            }
            Self::ResourceInUseException => "ResourceInUseException",
            Self::CodeVerificationFailedException => "CodeVerificationFailedException",
            Self::RecursiveInvocationException => "RecursiveInvocationException",
        }
    }

    pub fn status(self) -> u16 {
        match self {
            Self::InvalidParameterValueException
            | Self::ValidationException
            | Self::SerializationException
            | Self::InvalidRequestContentException
            | Self::PolicyLengthExceededException
            | Self::IncompleteSignatureException
            | Self::ResourceInUseException
            | Self::CodeVerificationFailedException
            | Self::RecursiveInvocationException => 400,
            Self::UnrecognizedClientException
            | Self::ExpiredTokenException
            | Self::InvalidSignatureException
            | Self::MissingAuthenticationTokenException
            | Self::AccessDeniedException => 403,
            Self::ResourceNotFoundException
            | Self::UnknownOperationException
            | Self::CodeSigningConfigNotFoundException
            | Self::ProvisionedConcurrencyConfigNotFoundException => 404,
            Self::ResourceConflictException => 409,
            Self::PreconditionFailedException => 412,
            Self::RequestTooLargeException
            | Self::RequestEntityTooLargeException
            | Self::SerializedRequestEntityTooLargeException => 413,
            Self::UnsupportedMediaTypeException => 415,
            Self::TooManyRequestsException => 429,
            Self::ServiceException | Self::InvalidRuntimeException => 500,
            Self::ResourceNotReadyException => 502,
        }
    }

    /// AWS marks most client errors `"Type": "User"` in the body; the
    /// validation family and auth errors carry no `Type`.
    pub fn type_field(self) -> Option<&'static str> {
        match self {
            Self::ValidationException
            | Self::SerializationException
            | Self::RequestEntityTooLargeException
            | Self::UnrecognizedClientException
            | Self::ExpiredTokenException
            | Self::InvalidSignatureException
            | Self::MissingAuthenticationTokenException
            | Self::IncompleteSignatureException
            | Self::AccessDeniedException
            | Self::UnknownOperationException => None,
            Self::ServiceException
            | Self::InvalidRuntimeException
            | Self::ResourceNotReadyException => Some("Service"),
            _ => Some("User"),
        }
    }

    /// The body member the message travels in, per error type as AWS sends
    /// it (`/work/shared/reference/lambda-errors.txt`): `Message` for
    /// ResourceNotFoundException and CodeSigningConfigNotFoundException,
    /// whose model member botocore and the Java and Go SDKs read; `message`
    /// for every other error.
    pub fn message_key(self) -> MessageKey {
        match self {
            // The last two are not in the recordings; AWS's Lambda model
            // gives them a capitalized `Message` member.
            Self::ResourceNotFoundException
            | Self::CodeSigningConfigNotFoundException
            | Self::CodeVerificationFailedException
            | Self::RecursiveInvocationException => MessageKey::Capitalized,
            _ => MessageKey::Lowercase,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How an error body spells its message member ([`ErrorCode::message_key`]).
/// botocore hands the member on under the name it was sent with, so
/// clients can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MessageKey {
    #[default]
    Lowercase,
    Capitalized,
}

impl MessageKey {
    fn as_str(self) -> &'static str {
        match self {
            Self::Lowercase => "message",
            Self::Capitalized => "Message",
        }
    }
}

/// An error as AWS reports it: a code, a message, and any extra body members.
#[derive(Debug, Clone, PartialEq)]
pub struct AwsError {
    pub code: ErrorCode,
    pub message: Cow<'static, str>,
    /// Extra top-level body members, e.g. `Reason` on TooManyRequestsException.
    pub extra: Vec<(&'static str, String)>,
}

impl AwsError {
    pub fn new(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            message: message.into(),
            extra: Vec::new(),
        }
    }

    pub fn with(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.extra.push((key, value.into()));
        self
    }

    pub fn invalid_parameter(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidParameterValueException, message)
    }

    pub fn validation(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::ValidationException, message)
    }

    pub fn serialization(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::SerializationException, message)
    }

    pub fn not_found(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::ResourceNotFoundException, message)
    }

    pub fn conflict(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::ResourceConflictException, message)
    }

    pub fn precondition_failed(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::PreconditionFailedException, message)
    }

    pub fn service(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::ServiceException, message)
    }

    /// `Function not found: {arn}` — AWS's answer for a missing function or version.
    pub fn function_not_found(arn: &str) -> Self {
        Self::not_found(format!("Function not found: {arn}"))
    }

    /// The 409 AWS gives while a previous update is still being applied.
    pub fn update_in_progress(arn: &str) -> Self {
        Self::conflict(format!(
            "The operation cannot be performed at this time. An update is in progress for resource: {arn}"
        ))
    }

    /// The 412 for a stale `RevisionId` on function operations.
    pub fn stale_revision(api: &str) -> Self {
        Self::precondition_failed(format!(
            "The Revision Id provided does not match the latest Revision Id. Call the {api} API to retrieve the latest Revision Id"
        ))
    }

    /// Body of the error as AWS sends it.
    pub fn body(&self) -> serde_json::Value {
        let mut body = serde_json::Map::new();
        if let Some(kind) = self.code.type_field() {
            body.insert("Type".into(), kind.into());
        }
        body.insert(
            self.code.message_key().as_str().into(),
            self.message.as_ref().into(),
        );
        for (key, value) in &self.extra {
            body.insert((*key).into(), value.clone().into());
        }
        serde_json::Value::Object(body)
    }
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for AwsError {}

/// Builds AWS's "N validation error(s) detected: ..." messages, which join
/// every failed constraint of a request with "; ".
#[derive(Debug, Default)]
pub struct ValidationErrors {
    failures: Vec<String>,
}

impl ValidationErrors {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `Value '{value}' at '{field}' failed to satisfy constraint: {constraint}`.
    pub fn push(&mut self, value: &str, field: &str, constraint: &str) {
        self.failures.push(format!(
            "Value '{value}' at '{field}' failed to satisfy constraint: {constraint}"
        ));
    }

    /// Records a failure whose value AWS prints without quotes (`null`, numbers).
    pub fn push_raw(&mut self, value: &str, field: &str, constraint: &str) {
        self.failures.push(format!(
            "Value {value} at '{field}' failed to satisfy constraint: {constraint}"
        ));
    }

    /// Records AWS's length failure when `value` has more than `max`
    /// characters; true when it did.
    pub fn check_max_length(&mut self, value: &str, max: usize, field: &str) -> bool {
        let over = value.chars().count() > max;
        if over {
            self.push(
                value,
                field,
                &format!("Member must have length less than or equal to {max}"),
            );
        }
        over
    }

    /// Records AWS's failure for a value outside the member's `pattern`.
    pub fn push_pattern(&mut self, value: &str, field: &str, pattern: &str) {
        self.push(
            value,
            field,
            &format!("Member must satisfy regular expression pattern: {pattern}"),
        );
    }

    /// Records a failure when `value` is outside `[min, max]`, in AWS's
    /// wording for a range constraint.
    pub fn check_range<N>(&mut self, value: i64, min: N, max: N, field: &str)
    where
        N: Into<i64> + Copy + std::fmt::Display,
    {
        let shown = value.to_string();
        if value < min.into() {
            self.push(
                &shown,
                field,
                &format!("Member must have value greater than or equal to {min}"),
            );
        } else if value > max.into() {
            self.push(
                &shown,
                field,
                &format!("Member must have value less than or equal to {max}"),
            );
        }
    }

    pub fn is_empty(&self) -> bool {
        self.failures.is_empty()
    }

    /// The accumulated failures as one error, or `Ok` when there were none.
    /// `code` lets callers choose between ValidationException and
    /// InvalidParameterValueException, as AWS does per field.
    pub fn into_result(self, code: ErrorCode) -> Result<(), AwsError> {
        if self.failures.is_empty() {
            return Ok(());
        }
        let n = self.failures.len();
        let noun = if n == 1 { "error" } else { "errors" };
        Err(AwsError::new(
            code,
            format!(
                "{n} validation {noun} detected: {}",
                self.failures.join("; ")
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_body_carries_user_type_and_capitalized_message() {
        let err = AwsError::function_not_found("arn:aws:lambda:us-east-1:000000000000:function:f");
        assert_eq!(err.code.status(), 404);
        assert_eq!(
            err.body(),
            serde_json::json!({"Type": "User", "Message": "Function not found: arn:aws:lambda:us-east-1:000000000000:function:f"})
        );
    }

    #[test]
    fn each_error_type_has_the_message_member_aws_sends() {
        let body = |code| AwsError::new(code, "m").body();
        assert_eq!(
            body(ErrorCode::CodeSigningConfigNotFoundException),
            serde_json::json!({"Type": "User", "Message": "m"})
        );
        for code in [
            ErrorCode::InvalidParameterValueException,
            ErrorCode::ResourceConflictException,
            ErrorCode::PreconditionFailedException,
            ErrorCode::ProvisionedConcurrencyConfigNotFoundException,
            ErrorCode::TooManyRequestsException,
        ] {
            assert_eq!(
                body(code),
                serde_json::json!({"Type": "User", "message": "m"})
            );
        }
        assert_eq!(
            body(ErrorCode::ValidationException),
            serde_json::json!({"message": "m"})
        );
    }

    #[test]
    fn validation_errors_are_counted_and_joined() {
        let mut v = ValidationErrors::new();
        v.push("x", "a", "c1");
        v.push_raw("null", "b", "c2");
        let err = v.into_result(ErrorCode::ValidationException).unwrap_err();
        assert_eq!(
            err.message,
            "2 validation errors detected: Value 'x' at 'a' failed to satisfy constraint: c1; Value null at 'b' failed to satisfy constraint: c2"
        );
        assert_eq!(err.body(), serde_json::json!({"message": err.message}));
    }
}
