//! The service end to end, with recording stand-ins for SQS and Lambda.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use strato_engine::async_invoke::{DeliveryError, ServiceEvent, ServiceEventError, ServiceEvents};
use strato_model::wire::Doc;
use strato_model::Caller;
use strato_queue::{Durability, SqliteQueueEngine};
use strato_store::{SqliteStore, Store};

use crate::{QueueDelivery, QueueTargets, SnsConfig, SnsRequest, SnsService};

/// Queues that take every message, after failing the first `.1` sends
/// (as a queue whose storage is full does).
#[derive(Default)]
struct Queues(Mutex<Vec<QueueDelivery>>, AtomicUsize);

#[async_trait::async_trait]
impl QueueTargets for Queues {
    fn queue_fifo(&self, arn: &str) -> Option<bool> {
        Some(arn.ends_with(".fifo"))
    }

    async fn send(&self, delivery: QueueDelivery) -> Result<(), DeliveryError> {
        if take_failure(&self.1) {
            return Err(DeliveryError::Failed {
                destination: delivery.queue_arn,
                reason: "the queue's storage is full".into(),
            });
        }
        self.0.lock().unwrap().push(delivery);
        Ok(())
    }
}

/// Functions that accept every event, after failing to queue the first `.1`.
#[derive(Default)]
struct Functions(Mutex<Vec<ServiceEvent>>, AtomicUsize);

fn take_failure(failures: &AtomicUsize) -> bool {
    failures
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

#[async_trait::async_trait]
impl ServiceEvents for Functions {
    async fn invoke_event(&self, event: ServiceEvent) -> Result<String, ServiceEventError> {
        if take_failure(&self.1) {
            return Err(ServiceEventError::Unavailable("the store is busy".into()));
        }
        self.0.lock().unwrap().push(event);
        Ok("request".into())
    }

    async fn authorize(&self, _event: &ServiceEvent) -> Result<(), ServiceEventError> {
        Ok(())
    }

    fn role_allows(&self, _: &strato_engine::RoleUse<'_>) -> bool {
        true
    }
}

struct Fixture {
    sns: Arc<SnsService>,
    queues: Arc<Queues>,
    functions: Arc<Functions>,
    _dir: tempfile::TempDir,
}

/// The store, with the account documents belong to.
async fn store(dir: &std::path::Path) -> Arc<SqliteStore> {
    let store = Arc::new(SqliteStore::open(&dir.join("strato.db")).unwrap());
    // A second open finds the account already there.
    let _ = store
        .create_account(&strato_model::Account {
            id: "000000000000".into(),
            name: "default".into(),
            concurrency_limit: 1000,
            created_at: chrono::Utc::now(),
        })
        .await;
    store
}

/// The service on the state in `dir` (a second call is a restart).
async fn open(
    dir: &std::path::Path,
    queues: Arc<Queues>,
    functions: Arc<Functions>,
) -> Arc<SnsService> {
    let store = store(dir).await;
    let engine = SqliteQueueEngine::open(&dir.join("queues.db"), Durability::ProcessCrash).unwrap();
    SnsService::open(SnsConfig {
        store,
        queues: engine,
        targets: queues,
        functions,
        data_dir: dir.to_path_buf(),
        time_scale: 1,
    })
    .await
    .unwrap()
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let queues = Arc::new(Queues::default());
    let functions = Arc::new(Functions::default());
    let sns = open(dir.path(), queues.clone(), functions.clone()).await;
    Fixture {
        sns,
        queues,
        functions,
        _dir: dir,
    }
}

fn caller() -> Caller {
    Caller {
        account_id: "000000000000".into(),
        region: "us-east-1".into(),
        access_key_id: "test".into(),
    }
}

async fn call(sns: &SnsService, operation: &str, input: serde_json::Value) -> Doc {
    try_call(sns, operation, input).await.unwrap()
}

fn text(doc: &Doc, key: &str) -> String {
    doc.get(key).and_then(Doc::as_str).unwrap().to_string()
}

#[tokio::test]
async fn sqs_subscribers_get_the_envelope_in_aws_order() {
    let f = fixture().await;
    let topic = text(
        &call(&f.sns, "CreateTopic", serde_json::json!({"Name": "t"})).await,
        "TopicArn",
    );
    call(
        &f.sns,
        "Subscribe",
        serde_json::json!({"TopicArn": topic, "Protocol": "sqs",
            "Endpoint": "arn:aws:sqs:us-east-1:000000000000:q"}),
    )
    .await;
    call(
        &f.sns,
        "Publish",
        serde_json::json!({"TopicArn": topic, "Message": "hi", "Subject": "s"}),
    )
    .await;
    let sent = f.queues.0.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    let body = &sent[0].body;
    let keys: Vec<usize> = [
        "\"Type\"",
        "\"MessageId\"",
        "\"TopicArn\"",
        "\"Subject\"",
        "\"Message\"",
        "\"Timestamp\"",
        "\"SignatureVersion\"",
        "\"Signature\"",
        "\"SigningCertURL\"",
        "\"UnsubscribeURL\"",
    ]
    .iter()
    .map(|k| body.find(k).unwrap())
    .collect();
    assert!(keys.windows(2).all(|w| w[0] < w[1]), "{body}");
    let parsed: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(parsed["Message"], "hi");
    assert!(parsed.get("MessageAttributes").is_none());
    assert!(parsed["SigningCertURL"]
        .as_str()
        .unwrap()
        .starts_with("http://localhost:9000/strato/sns/SimpleNotificationService-"));
}

#[tokio::test]
async fn lambda_subscribers_get_the_sns_event_as_the_service_principal() {
    let f = fixture().await;
    let topic = text(
        &call(&f.sns, "CreateTopic", serde_json::json!({"Name": "t"})).await,
        "TopicArn",
    );
    let function = "arn:aws:lambda:us-east-1:000000000000:function:f";
    let sub = text(
        &call(
            &f.sns,
            "Subscribe",
            serde_json::json!({"TopicArn": topic, "Protocol": "lambda", "Endpoint": function}),
        )
        .await,
        "SubscriptionArn",
    );
    call(
        &f.sns,
        "Publish",
        serde_json::json!({"TopicArn": topic, "Message": "m",
            "MessageAttributes": {"k": {"DataType": "Number", "StringValue": "1"}}}),
    )
    .await;
    let events = f.functions.0.lock().unwrap().clone();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].function_arn, function);
    assert_eq!(events[0].principal, "sns.amazonaws.com");
    assert_eq!(events[0].source_arn.as_deref(), Some(topic.as_str()));
    let event: serde_json::Value = serde_json::from_slice(&events[0].payload).unwrap();
    let record = &event["Records"][0];
    assert_eq!(record["EventSource"], "aws:sns");
    assert_eq!(record["EventVersion"], "1.0");
    assert_eq!(record["EventSubscriptionArn"], sub.as_str());
    assert_eq!(record["Sns"]["Subject"], serde_json::Value::Null);
    assert_eq!(
        record["Sns"]["MessageAttributes"]["k"],
        serde_json::json!({"Type": "Number", "Value": "1"})
    );
    assert!(record["Sns"]["SigningCertUrl"].is_string());
    assert!(record["Sns"]["UnsubscribeUrl"].is_string());
}

#[tokio::test]
async fn attribute_filters_drop_what_does_not_match() {
    let f = fixture().await;
    let topic = text(
        &call(&f.sns, "CreateTopic", serde_json::json!({"Name": "t"})).await,
        "TopicArn",
    );
    call(
        &f.sns,
        "Subscribe",
        serde_json::json!({"TopicArn": topic, "Protocol": "sqs",
            "Endpoint": "arn:aws:sqs:us-east-1:000000000000:q",
            "Attributes": {"RawMessageDelivery": "true", "FilterPolicy": "{\"color\": [\"red\"]}"}}),
    )
    .await;
    for color in ["blue", "red"] {
        call(
            &f.sns,
            "Publish",
            serde_json::json!({"TopicArn": topic, "Message": color,
                "MessageAttributes": {"color": {"DataType": "String", "StringValue": color}}}),
        )
        .await;
    }
    let sent = f.queues.0.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].body, "red");
    assert_eq!(sent[0].attributes.len(), 1);
}

#[tokio::test]
async fn topics_and_subscriptions_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let queues = Arc::new(Queues::default());
    let reopen = || open(dir.path(), queues.clone(), Arc::new(Functions::default()));
    let sns = reopen().await;
    let topic = text(
        &call(&sns, "CreateTopic", serde_json::json!({"Name": "t"})).await,
        "TopicArn",
    );
    call(
        &sns,
        "Subscribe",
        serde_json::json!({"TopicArn": topic, "Protocol": "sqs",
            "Endpoint": "arn:aws:sqs:us-east-1:000000000000:q"}),
    )
    .await;
    drop(sns);
    let sns = reopen().await;
    assert!(sns.topic_exists("000000000000", "us-east-1", &topic));
    let listed = call(
        &sns,
        "ListSubscriptionsByTopic",
        serde_json::json!({"TopicArn": topic}),
    )
    .await;
    assert_eq!(
        listed
            .get("Subscriptions")
            .and_then(Doc::as_list)
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn fifo_deduplication_outlives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let queues = Arc::new(Queues::default());
    let reopen = || open(dir.path(), queues.clone(), Arc::new(Functions::default()));
    let sns = reopen().await;
    let topic = text(
        &call(
            &sns,
            "CreateTopic",
            serde_json::json!({"Name": "t.fifo",
                "Attributes": {"FifoTopic": "true"}}),
        )
        .await,
        "TopicArn",
    );
    call(
        &sns,
        "Subscribe",
        serde_json::json!({"TopicArn": topic, "Protocol": "sqs",
            "Endpoint": "arn:aws:sqs:us-east-1:000000000000:q.fifo"}),
    )
    .await;
    let publish = serde_json::json!({"TopicArn": topic, "Message": "m",
        "MessageGroupId": "g", "MessageDeduplicationId": "d1"});
    let first = call(&sns, "Publish", publish.clone()).await;
    drop(sns);
    let sns = reopen().await;
    let again = call(&sns, "Publish", publish).await;
    assert_eq!(text(&first, "MessageId"), text(&again, "MessageId"));
    assert_eq!(
        text(&first, "SequenceNumber"),
        text(&again, "SequenceNumber")
    );
    assert_eq!(queues.0.lock().unwrap().len(), 1);
    // Another deduplication id is another message, later in the sequence.
    let other = call(
        &sns,
        "Publish",
        serde_json::json!({"TopicArn": topic, "Message": "m",
            "MessageGroupId": "g", "MessageDeduplicationId": "d2"}),
    )
    .await;
    assert!(text(&other, "SequenceNumber") > text(&first, "SequenceNumber"));
    assert_eq!(queues.0.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn a_service_publishes_only_where_the_topic_policy_admits_it() {
    use strato_engine::async_invoke::{EventSink, ServiceOrigin};

    let f = fixture().await;
    let topic = text(
        &call(&f.sns, "CreateTopic", serde_json::json!({"Name": "t"})).await,
        "TopicArn",
    );
    call(
        &f.sns,
        "Subscribe",
        serde_json::json!({"TopicArn": topic, "Protocol": "sqs",
            "Endpoint": "arn:aws:sqs:us-east-1:000000000000:q"}),
    )
    .await;
    let rule = "arn:aws:events:us-east-1:000000000000:rule/r";
    let events = ServiceOrigin {
        principal: "events.amazonaws.com",
        source_arn: rule,
        source_account: "000000000000",
        source_owner: None,
    };
    let alarms = ServiceOrigin {
        principal: "cloudwatch.amazonaws.com",
        source_arn: "arn:aws:cloudwatch:us-east-1:000000000000:alarm:a",
        source_account: "000000000000",
        source_owner: Some("000000000000"),
    };
    let publish = |origin| {
        let sns = f.sns.clone();
        let topic = topic.clone();
        async move {
            sns.deliver_as(
                "000000000000",
                "us-east-1",
                &topic,
                bytes::Bytes::from_static(b"{}"),
                origin,
            )
            .await
        }
    };
    // AWS's default policy admits the owner (CloudWatch acts as it), not
    // EventBridge.
    assert!(matches!(
        publish(events).await,
        Err(DeliveryError::Denied(_))
    ));
    publish(alarms).await.unwrap();
    let policy = serde_json::json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
        "Action": "sns:Publish", "Resource": topic,
        "Condition": {"ArnEquals": {"aws:SourceArn": rule}}}]});
    call(
        &f.sns,
        "SetTopicAttributes",
        serde_json::json!({"TopicArn": topic, "AttributeName": "Policy",
            "AttributeValue": policy.to_string()}),
    )
    .await;
    publish(events).await.unwrap();
    let other_rule = ServiceOrigin {
        source_arn: "arn:aws:events:us-east-1:000000000000:rule/other",
        ..events
    };
    assert!(publish(other_rule).await.is_err());
    assert_eq!(f.queues.0.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn add_and_remove_permission_edit_the_topic_policy() {
    let f = fixture().await;
    let topic = text(
        &call(&f.sns, "CreateTopic", serde_json::json!({"Name": "t"})).await,
        "TopicArn",
    );
    let add = serde_json::json!({"TopicArn": topic, "Label": "partner",
        "AWSAccountId": ["111111111111"], "ActionName": ["Publish"]});
    call(&f.sns, "AddPermission", add.clone()).await;
    let caller = caller();
    let request = SnsRequest {
        caller: &caller,
        endpoint: "http://localhost:9000",
    };
    let again = f
        .sns
        .operation(request, "AddPermission", Doc::from_json(&add))
        .await
        .unwrap_err();
    assert_eq!(again.message, "Invalid parameter: Statement already exists");
    let attributes = call(
        &f.sns,
        "GetTopicAttributes",
        serde_json::json!({"TopicArn": topic}),
    )
    .await;
    let policy: serde_json::Value =
        serde_json::from_str(&text(attributes.get("Attributes").unwrap(), "Policy")).unwrap();
    let statements = policy["Statement"].as_array().unwrap();
    assert_eq!(statements.len(), 2);
    assert_eq!(
        statements[1],
        serde_json::json!({"Sid": "partner", "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::111111111111:root"},
            "Action": "SNS:Publish", "Resource": topic})
    );
    call(
        &f.sns,
        "RemovePermission",
        serde_json::json!({"TopicArn": topic, "Label": "partner"}),
    )
    .await;
    let attributes = call(
        &f.sns,
        "GetTopicAttributes",
        serde_json::json!({"TopicArn": topic}),
    )
    .await;
    assert!(!text(attributes.get("Attributes").unwrap(), "Policy").contains("partner"));
}

/// What an operation answers, or its error's message.
async fn try_call(
    sns: &SnsService,
    operation: &str,
    input: serde_json::Value,
) -> Result<Doc, String> {
    let caller = caller();
    let request = SnsRequest {
        caller: &caller,
        endpoint: "http://localhost:9000",
    };
    sns.operation(request, operation, Doc::from_json(&input))
        .await
        .map_err(|e| e.message)
}

#[tokio::test]
async fn delivery_policies_are_validated_in_aws_words() {
    let f = fixture().await;
    let topic = text(
        &call(&f.sns, "CreateTopic", serde_json::json!({"Name": "t"})).await,
        "TopicArn",
    );
    let set_topic = |policy: serde_json::Value| {
        serde_json::json!({"TopicArn": topic, "AttributeName": "DeliveryPolicy",
            "AttributeValue": policy.to_string()})
    };
    let too_many = serde_json::json!({"http": {"defaultHealthyRetryPolicy": {
        "minDelayTarget": 1, "maxDelayTarget": 1, "numRetries": 101}}});
    assert_eq!(
        try_call(&f.sns, "SetTopicAttributes", set_topic(too_many)).await.unwrap_err(),
        "Invalid parameter: DeliveryPolicy: http.defaultHealthyRetryPolicy.numRetries must be less than or equal to 100"
    );
    let subscription_shaped = serde_json::json!({"throttlePolicy": {"maxReceivesPerSecond": 1}});
    assert_eq!(
        try_call(&f.sns, "SetTopicAttributes", set_topic(subscription_shaped))
            .await
            .unwrap_err(),
        "Invalid parameter: DeliveryPolicy: Unexpected JSON member: throttlePolicy"
    );
    let text_delay = serde_json::json!({"http": {"defaultHealthyRetryPolicy": {
        "minDelayTarget": "5", "maxDelayTarget": 5, "numRetries": 1}}});
    assert_eq!(
        try_call(&f.sns, "SetTopicAttributes", set_topic(text_delay)).await.unwrap_err(),
        "Invalid parameter: DeliveryPolicy: http.defaultHealthyRetryPolicy.minDelayTarget type mismatch, expecting integer, received a string"
    );
    let zero = serde_json::json!({"healthyRetryPolicy": {
        "minDelayTarget": 0, "maxDelayTarget": 0, "numRetries": 0}});
    let subscribe = serde_json::json!({"TopicArn": topic, "Protocol": "https",
        "Endpoint": "https://example.com/hook",
        "Attributes": {"DeliveryPolicy": zero.to_string()}});
    assert_eq!(
        try_call(&f.sns, "Subscribe", subscribe).await.unwrap_err(),
        "Invalid parameter: Attributes Reason: DeliveryPolicy: healthyRetryPolicy.minDelayTarget must be greater than or equal to 1"
    );
    let phases = serde_json::json!({"healthyRetryPolicy": {"minDelayTarget": 2,
        "maxDelayTarget": 3, "numRetries": 20, "numNoDelayRetries": 7,
        "numMinDelayRetries": 7, "numMaxDelayRetries": 7}});
    let subscribe = serde_json::json!({"TopicArn": topic, "Protocol": "https",
        "Endpoint": "https://example.com/hook",
        "Attributes": {"DeliveryPolicy": phases.to_string()}});
    assert_eq!(
        try_call(&f.sns, "Subscribe", subscribe).await.unwrap_err(),
        "Invalid parameter: Attributes Reason: DeliveryPolicy: healthyRetryPolicy.numRetries must be greater than or equal to total of numMinDelayRetries, numNoDelayRetries and numMaxDelayRetries"
    );
}

#[tokio::test]
async fn effective_delivery_policy_layers_subscription_over_topic_over_default() {
    let f = fixture().await;
    let topic = text(
        &call(&f.sns, "CreateTopic", serde_json::json!({"Name": "t"})).await,
        "TopicArn",
    );
    let topic_policy = serde_json::json!({"http": {
        "defaultHealthyRetryPolicy": {"minDelayTarget": 5, "maxDelayTarget": 5, "numRetries": 2},
        "defaultThrottlePolicy": {"maxReceivesPerSecond": 4}}});
    call(
        &f.sns,
        "SetTopicAttributes",
        serde_json::json!({"TopicArn": topic, "AttributeName": "DeliveryPolicy",
            "AttributeValue": topic_policy.to_string()}),
    )
    .await;
    let attributes = call(
        &f.sns,
        "GetTopicAttributes",
        serde_json::json!({"TopicArn": topic}),
    )
    .await;
    assert_eq!(
        text(
            attributes.get("Attributes").unwrap(),
            "EffectiveDeliveryPolicy"
        ),
        r#"{"http":{"defaultHealthyRetryPolicy":{"minDelayTarget":5,"maxDelayTarget":5,"numRetries":2,"numMaxDelayRetries":0,"numNoDelayRetries":0,"numMinDelayRetries":0,"backoffFunction":"linear"},"disableSubscriptionOverrides":false,"defaultThrottlePolicy":{"maxReceivesPerSecond":4},"defaultRequestPolicy":{"headerContentType":"text/plain; charset=UTF-8"}}}"#
    );
    let own = serde_json::json!({"healthyRetryPolicy": {"minDelayTarget": 1,
        "maxDelayTarget": 8, "numRetries": 4, "backoffFunction": "exponential"}});
    let arn = text(
        &call(
            &f.sns,
            "Subscribe",
            serde_json::json!({"TopicArn": topic, "Protocol": "https",
                "Endpoint": "https://example.com/hook", "ReturnSubscriptionArn": true,
                "Attributes": {"DeliveryPolicy": own.to_string()}}),
        )
        .await,
        "SubscriptionArn",
    );
    let attributes = call(
        &f.sns,
        "GetSubscriptionAttributes",
        serde_json::json!({"SubscriptionArn": arn}),
    )
    .await;
    assert_eq!(
        text(
            attributes.get("Attributes").unwrap(),
            "EffectiveDeliveryPolicy"
        ),
        r#"{"healthyRetryPolicy":{"minDelayTarget":1,"maxDelayTarget":8,"numRetries":4,"numMaxDelayRetries":0,"numNoDelayRetries":0,"numMinDelayRetries":0,"backoffFunction":"exponential"},"sicklyRetryPolicy":null,"throttlePolicy":{"maxReceivesPerSecond":4},"guaranteed":false}"#
    );
}

#[test]
fn the_aws_managed_policy_retries_at_once_then_backs_off_to_twenty_seconds() {
    use crate::delivery_policy::RetryPolicy;
    use std::time::Duration;

    let managed = RetryPolicy::AWS_MANAGED;
    let waits: Vec<u64> = (1..=16).map(|n| managed.delay(n).as_secs()).collect();
    assert_eq!(&waits[..5], &[0, 0, 0, 1, 1]);
    assert!(waits[5..15].windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(waits[14], 20);
    assert_eq!(managed.delay(100_015), Duration::from_secs(20));
    assert_eq!(RetryPolicy::HTTP_DEFAULT.delay(3), Duration::from_secs(20));
}

/// Waits (a readiness poll) until `done` holds.
async fn until(mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "not done in time");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn lambda_and_sqs_deliveries_that_fail_on_the_endpoint_side_are_retried() {
    let f = fixture().await;
    let _worker = f.sns.start();
    let topic = text(
        &call(&f.sns, "CreateTopic", serde_json::json!({"Name": "t"})).await,
        "TopicArn",
    );
    call(
        &f.sns,
        "Subscribe",
        serde_json::json!({"TopicArn": topic, "Protocol": "sqs",
            "Endpoint": "arn:aws:sqs:us-east-1:000000000000:q"}),
    )
    .await;
    call(
        &f.sns,
        "Subscribe",
        serde_json::json!({"TopicArn": topic, "Protocol": "lambda",
            "Endpoint": "arn:aws:lambda:us-east-1:000000000000:function:f"}),
    )
    .await;
    // Three failures each: the first attempt and the immediate retries.
    f.queues.1.store(3, Ordering::SeqCst);
    f.functions.1.store(3, Ordering::SeqCst);
    call(
        &f.sns,
        "Publish",
        serde_json::json!({"TopicArn": topic, "Message": "hello"}),
    )
    .await;
    until(|| f.queues.0.lock().unwrap().len() == 1 && f.functions.0.lock().unwrap().len() == 1)
        .await;
    let queued = f.queues.0.lock().unwrap()[0].body.clone();
    let envelope: serde_json::Value = serde_json::from_str(&queued).unwrap();
    assert_eq!(envelope["Message"], "hello");
    let event: serde_json::Value =
        serde_json::from_slice(&f.functions.0.lock().unwrap()[0].payload).unwrap();
    assert_eq!(event["Records"][0]["Sns"]["Message"], "hello");
    assert_eq!(f.queues.1.load(Ordering::SeqCst), 0);
    assert_eq!(f.functions.1.load(Ordering::SeqCst), 0);
}
