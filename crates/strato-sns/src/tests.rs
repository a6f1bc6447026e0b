//! The service end to end, with recording stand-ins for SQS and Lambda.

use std::sync::{Arc, Mutex};

use strato_engine::async_invoke::{DeliveryError, ServiceEvent, ServiceEventError, ServiceEvents};
use strato_model::wire::Doc;
use strato_model::Caller;
use strato_queue::{Durability, SqliteQueueEngine};
use strato_store::{SqliteStore, Store};

use crate::{QueueDelivery, QueueTargets, SnsConfig, SnsRequest, SnsService};

#[derive(Default)]
struct Queues(Mutex<Vec<QueueDelivery>>);

#[async_trait::async_trait]
impl QueueTargets for Queues {
    fn queue_fifo(&self, arn: &str) -> Option<bool> {
        Some(arn.ends_with(".fifo"))
    }

    async fn send(&self, delivery: QueueDelivery) -> Result<(), DeliveryError> {
        self.0.lock().unwrap().push(delivery);
        Ok(())
    }
}

#[derive(Default)]
struct Functions(Mutex<Vec<ServiceEvent>>);

#[async_trait::async_trait]
impl ServiceEvents for Functions {
    async fn invoke_event(&self, event: ServiceEvent) -> Result<String, ServiceEventError> {
        self.0.lock().unwrap().push(event);
        Ok("request".into())
    }

    async fn authorize(&self, _event: &ServiceEvent) -> Result<(), ServiceEventError> {
        Ok(())
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

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path()).await;
    let engine =
        SqliteQueueEngine::open(&dir.path().join("queues.db"), Durability::ProcessCrash).unwrap();
    let queues = Arc::new(Queues::default());
    let functions = Arc::new(Functions::default());
    let sns = SnsService::open(SnsConfig {
        store,
        queues: engine,
        targets: queues.clone(),
        functions: functions.clone(),
        data_dir: dir.path().to_path_buf(),
        time_scale: 1,
    })
    .await
    .unwrap();
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
    let caller = caller();
    let request = SnsRequest {
        caller: &caller,
        endpoint: "http://localhost:9000",
    };
    sns.operation(request, operation, Doc::from_json(&input))
        .await
        .unwrap()
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
    let open = || async {
        let store = store(dir.path()).await;
        let engine =
            SqliteQueueEngine::open(&dir.path().join("queues.db"), Durability::ProcessCrash)
                .unwrap();
        SnsService::open(SnsConfig {
            store,
            queues: engine,
            targets: Arc::new(Queues::default()),
            functions: Arc::new(Functions::default()),
            data_dir: dir.path().to_path_buf(),
            time_scale: 1,
        })
        .await
        .unwrap()
    };
    let sns = open().await;
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
    let sns = open().await;
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
