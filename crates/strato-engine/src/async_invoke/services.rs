//! The seams between the async machinery and the AWS services built into
//! Strato above the engine (SQS, SNS, EventBridge, S3, ...):
//!
//! - [`EventSinks`] routes deliveries (destinations, dead-letter targets,
//!   a rule's or a subscription's target) to the service an ARN names, so
//!   each service registers itself once and nobody matches on ARNs twice.
//! - [`ServiceEvents`] is how a service invokes a function asynchronously
//!   as AWS's service principal (`sns.amazonaws.com`, `events.amazonaws.com`,
//!   `s3.amazonaws.com`): the function's resource policy must allow it, and
//!   the event goes through the same durable queue as an `Event` Invoke.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use bytes::Bytes;

use super::{Delivery, DeliveryError, EventSink};

/// The service part of an ARN (`arn:aws:sqs:...` → `sqs`).
pub fn arn_service(arn: &str) -> Option<&str> {
    let mut parts = arn.splitn(4, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("arn"), Some(_partition), Some(service)) if !service.is_empty() => Some(service),
        _ => None,
    }
}

/// An event an AWS service emits onto an account's default event bus
/// (`source: aws.cloudwatch`, `detail-type: CloudWatch Alarm State
/// Change`, ...), in EventBridge's envelope once the bus takes it.
#[derive(Debug, Clone, PartialEq)]
pub struct AwsServiceEvent {
    pub account: String,
    pub region: String,
    /// `aws.cloudwatch`, `aws.s3`, ...
    pub source: String,
    pub detail_type: String,
    pub resources: Vec<String>,
    pub detail: serde_json::Value,
}

/// The default event bus of every account, implemented by EventBridge.
#[async_trait::async_trait]
pub trait ServiceEventBus: Send + Sync + 'static {
    async fn emit(&self, event: AwsServiceEvent) -> Result<(), DeliveryError>;
}

/// Every [`EventSink`] of the server, by the ARN service each delivers to,
/// and the event bus services emit their own events onto.
#[derive(Default)]
pub struct EventSinks {
    by_service: RwLock<HashMap<String, Arc<dyn EventSink>>>,
    bus: RwLock<Option<Arc<dyn ServiceEventBus>>>,
}

impl EventSinks {
    pub fn new() -> EventSinks {
        EventSinks::default()
    }

    /// Makes `sink` the one that delivers to ARNs of `service` (`sqs`,
    /// `sns`, `events`, ...).
    pub fn register(&self, service: &str, sink: Arc<dyn EventSink>) {
        self.by_service
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(service.to_string(), sink);
    }

    /// Makes `bus` the default event bus services emit onto.
    pub fn register_bus(&self, bus: Arc<dyn ServiceEventBus>) {
        *self
            .bus
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(bus);
    }

    /// Puts a service's own event on the account's default bus. Without
    /// EventBridge no rule can match it, so it goes nowhere, as an event
    /// no rule matches goes nowhere on AWS.
    pub async fn emit(&self, event: AwsServiceEvent) -> Result<(), DeliveryError> {
        let bus = self
            .bus
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        match bus {
            Some(bus) => bus.emit(event).await,
            None => Ok(()),
        }
    }

    /// Whether some service delivers to this ARN's kind.
    pub fn serves(&self, arn: &str) -> bool {
        self.sink(arn).is_ok()
    }

    fn sink(&self, arn: &str) -> Result<Arc<dyn EventSink>, DeliveryError> {
        let service = arn_service(arn).ok_or_else(|| DeliveryError::Unsupported(arn.into()))?;
        self.by_service
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(service)
            .cloned()
            .ok_or_else(|| DeliveryError::Unsupported(arn.into()))
    }
}

#[async_trait::async_trait]
impl EventSink for EventSinks {
    async fn deliver(&self, delivery: Delivery<'_>) -> Result<(), DeliveryError> {
        self.sink(delivery.to.arn)?.deliver(delivery).await
    }
}

/// An asynchronous invocation a built-in AWS service asks for.
#[derive(Debug, Clone)]
pub struct ServiceEvent {
    /// `arn:aws:lambda:{region}:{account}:function:{name}[:{qualifier}]`.
    pub function_arn: String,
    /// The service principal AWS invokes as (`sns.amazonaws.com`).
    pub principal: String,
    /// What triggered it (the topic, rule or bucket ARN), tested against
    /// `AWS:SourceArn` conditions.
    pub source_arn: Option<String>,
    /// The account that owns the source (`AWS:SourceAccount`).
    pub source_account: Option<String>,
    /// The event (JSON).
    pub payload: Bytes,
    /// The X-Ray trace header the event carries on (recursion detection
    /// counts hops through it); `None` starts a new chain.
    pub trace_header: Option<String>,
}

/// Why a service's invocation was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceEventError {
    #[error("invalid function ARN: {0}")]
    InvalidArn(String),
    #[error("function not found: {0}")]
    FunctionNotFound(String),
    /// The function's resource policy does not allow the service.
    #[error("{0}")]
    AccessDenied(String),
    /// The event could not be stored; the caller should retry.
    #[error("the event could not be queued: {0}")]
    Unavailable(String),
}

/// Queues asynchronous invocations for built-in services: implemented
/// above the engine, where the function catalog and policies live.
#[async_trait::async_trait]
pub trait ServiceEvents: Send + Sync + 'static {
    /// Accepts the event durably (it runs with the function's async
    /// settings: retries, destinations, dead-letter queue) and answers the
    /// invocation's request id.
    async fn invoke_event(&self, event: ServiceEvent) -> Result<String, ServiceEventError>;

    /// Whether `invoke_event` would admit this event (the function exists
    /// and its policy allows the principal and source), without queuing
    /// anything: S3 checks its destinations when they are configured.
    async fn authorize(&self, event: &ServiceEvent) -> Result<(), ServiceEventError>;

    /// Whether an AWS service may act with a role as `role_use` says:
    /// EventBridge Scheduler asks before it invokes a target with a
    /// schedule's `RoleArn` ([`crate::CredentialIssuer::role_allows`]).
    fn role_allows(&self, role_use: &crate::RoleUse<'_>) -> bool;
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::async_invoke::Content;

    #[derive(Default)]
    struct Recording(Mutex<Vec<String>>);

    #[async_trait::async_trait]
    impl EventSink for Recording {
        async fn deliver(&self, delivery: Delivery<'_>) -> Result<(), DeliveryError> {
            let seen = match delivery.content {
                Content::DeadLetter { .. } => format!("dlq {}", delivery.to.arn),
                _ => delivery.to.arn.to_string(),
            };
            self.0.lock().unwrap().push(seen);
            Ok(())
        }
    }

    #[test]
    fn arn_service_reads_the_third_field() {
        assert_eq!(arn_service("arn:aws:sqs:us-east-1:1:q"), Some("sqs"));
        assert_eq!(arn_service("arn:aws:sns:us-east-1:1:t"), Some("sns"));
        assert_eq!(arn_service("arn:aws::us-east-1:1:t"), None);
        assert_eq!(arn_service("sqs:us-east-1"), None);
    }

    #[tokio::test]
    async fn deliveries_go_to_the_service_the_arn_names() {
        let sinks = EventSinks::new();
        let sqs = Arc::new(Recording::default());
        sinks.register("sqs", sqs.clone());
        let arn = "arn:aws:sqs:us-east-1:000000000000:q";
        sinks
            .deliver_record("000000000000", "us-east-1", arn, Bytes::new())
            .await
            .unwrap();
        assert_eq!(sqs.0.lock().unwrap().as_slice(), [arn.to_string()]);
        assert!(sinks.serves(arn));
        let topic = "arn:aws:sns:us-east-1:000000000000:t";
        assert!(!sinks.serves(topic));
        let refused = sinks
            .deliver_record("000000000000", "us-east-1", topic, Bytes::new())
            .await;
        assert_eq!(refused, Err(DeliveryError::Unsupported(topic.into())));
    }
}
