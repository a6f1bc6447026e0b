//! SQS's errors, as AWS words them. SQS is awsQueryCompatible: the JSON
//! protocol names the error shape in `__type` and the query protocol's code
//! in `x-amzn-query-error`, so each error carries both.

use strato_model::wire::ServiceError;

fn sqs(shape: &'static str, query: &'static str, message: impl Into<String>) -> ServiceError {
    ServiceError::new(shape, message).query_compatible(query)
}

/// The query protocol words a missing queue its own way.
pub const NON_EXISTENT_QUEUE_QUERY_MESSAGE: &str =
    "The specified queue does not exist for this wsdl version.";

pub fn queue_does_not_exist() -> ServiceError {
    sqs(
        "QueueDoesNotExist",
        "AWS.SimpleQueueService.NonExistentQueue",
        "The specified queue does not exist.",
    )
}

pub fn invalid_parameter_value(message: impl Into<String>) -> ServiceError {
    sqs(
        "InvalidParameterValueException",
        "InvalidParameterValue",
        message,
    )
}

/// `Value {value} for parameter {parameter} is invalid. Reason: {reason}`
pub fn invalid_value(parameter: &str, value: &str, reason: &str) -> ServiceError {
    invalid_parameter_value(format!(
        "Value {value} for parameter {parameter} is invalid. Reason: {reason}"
    ))
}

pub fn missing_parameter(parameter: &str) -> ServiceError {
    sqs(
        "MissingRequiredParameterException",
        "MissingParameter",
        format!("The request must contain the parameter {parameter}."),
    )
}

pub fn invalid_attribute_name(message: impl Into<String>) -> ServiceError {
    sqs("InvalidAttributeName", "InvalidAttributeName", message)
}

pub fn unknown_attribute(name: &str) -> ServiceError {
    invalid_attribute_name(format!("Unknown Attribute {name}."))
}

pub fn invalid_attribute_value(message: impl Into<String>) -> ServiceError {
    sqs("InvalidAttributeValue", "InvalidAttributeValue", message)
}

pub fn queue_name_exists(attribute: &str) -> ServiceError {
    sqs(
        "QueueNameExists",
        "QueueAlreadyExists",
        format!(
            "A queue already exists with the same name and a different value for attribute {attribute}"
        ),
    )
}

pub fn queue_deleted_recently() -> ServiceError {
    sqs(
        "QueueDeletedRecently",
        "AWS.SimpleQueueService.QueueDeletedRecently",
        "You must wait 60 seconds after deleting a queue before you can create another queue with the same name.",
    )
}

pub fn purge_in_progress(queue: &str) -> ServiceError {
    let mut e = sqs(
        "PurgeQueueInProgress",
        "AWS.SimpleQueueService.PurgeQueueInProgress",
        format!("Only one PurgeQueue operation on {queue} is allowed every 60 seconds."),
    );
    e.status = 403;
    e
}

pub fn receipt_handle_is_invalid(handle: &str) -> ServiceError {
    sqs(
        "ReceiptHandleIsInvalid",
        "ReceiptHandleIsInvalid",
        format!("The input receipt handle \"{handle}\" is not a valid receipt handle."),
    )
}

pub fn receipt_handle_expired(handle: &str) -> ServiceError {
    invalid_value("ReceiptHandle", handle, "The receipt handle has expired.")
}

pub fn message_not_inflight(handle: &str) -> ServiceError {
    sqs(
        "MessageNotInflight",
        "AWS.SimpleQueueService.MessageNotInflight",
        format!(
            "Value {handle} for parameter ReceiptHandle is invalid. Reason: Message does not exist or is not available for visibility timeout change."
        ),
    )
}

pub fn invalid_message_contents() -> ServiceError {
    sqs(
        "InvalidMessageContents",
        "InvalidMessageContents",
        "Invalid characters found. Valid unicode characters are #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF",
    )
}

pub fn message_too_long(max: usize) -> ServiceError {
    invalid_parameter_value(format!(
        "One or more parameters are invalid. Reason: Message must be shorter than {max} bytes."
    ))
}

pub fn too_many_entries(sent: usize) -> ServiceError {
    sqs(
        "TooManyEntriesInBatchRequest",
        "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
        format!("Maximum number of entries per request are 10. You have sent {sent}."),
    )
}

pub fn empty_batch(entry: &str) -> ServiceError {
    sqs(
        "EmptyBatchRequest",
        "AWS.SimpleQueueService.EmptyBatchRequest",
        format!("There should be at least one {entry} in the request."),
    )
}

pub fn invalid_batch_entry_id() -> ServiceError {
    sqs(
        "InvalidBatchEntryId",
        "AWS.SimpleQueueService.InvalidBatchEntryId",
        "A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long.",
    )
}

pub fn batch_ids_not_distinct(id: &str) -> ServiceError {
    sqs(
        "BatchEntryIdsNotDistinct",
        "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
        format!("Id {id} repeated."),
    )
}

pub fn batch_request_too_long(sent: usize) -> ServiceError {
    sqs(
        "BatchRequestTooLong",
        "AWS.SimpleQueueService.BatchRequestTooLong",
        format!("Batch requests cannot be longer than 1048576 bytes. You have sent {sent} bytes."),
    )
}

pub fn resource_not_found(message: impl Into<String>) -> ServiceError {
    let mut e = sqs(
        "ResourceNotFoundException",
        "ResourceNotFoundException",
        message,
    );
    e.status = 404;
    e
}

pub fn unsupported_operation(message: impl Into<String>) -> ServiceError {
    sqs(
        "UnsupportedOperation",
        "AWS.SimpleQueueService.UnsupportedOperation",
        message,
    )
}

pub fn internal(message: impl Into<String>) -> ServiceError {
    let mut e = sqs("InternalError", "InternalError", message);
    e.status = 500;
    e
}

pub fn invalid_action(operation: &str) -> ServiceError {
    sqs(
        "InvalidAction",
        "InvalidAction",
        format!("The action {operation} is not valid for this endpoint."),
    )
}
