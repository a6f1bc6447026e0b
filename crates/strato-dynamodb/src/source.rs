//! DynamoDB Streams as the source of Lambda stream event source mappings:
//! the engine's pollers read shards through the same Streams API callers
//! use (DescribeStream, GetShardIterator, GetRecords), in the stream's
//! own account and region, so ARNs and records are exactly what a caller
//! would see, with the `eventSourceARN` Lambda's event adds.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{json, Value};
use strato_engine::event_source::{ShardPosition, StreamRecord, StreamSource, StreamSourceError};
use strato_model::account::Caller;
use strato_model::event_source_mapping::DynamoDbStreamArn;

use crate::{DynamoDbService, STREAMS_TARGET_PREFIX, TARGET_PREFIX};

/// The streams of every account, as mappings read them.
pub struct StreamReader {
    service: Arc<DynamoDbService>,
    /// The partition (HASH) key attribute of each stream's table.
    hash_keys: parking_lot::Mutex<HashMap<String, String>>,
}

impl StreamReader {
    pub fn new(service: Arc<DynamoDbService>) -> Arc<StreamReader> {
        Arc::new(StreamReader {
            service,
            hash_keys: parking_lot::Mutex::new(HashMap::new()),
        })
    }

    /// One Streams API call in the stream's account and region.
    async fn call(
        &self,
        arn: &str,
        operation: &str,
        body: Value,
    ) -> Result<Value, StreamSourceError> {
        self.call_api(arn, STREAMS_TARGET_PREFIX, operation, body)
            .await
    }

    /// One call of either API in the stream's account and region.
    async fn call_api(
        &self,
        arn: &str,
        prefix: &str,
        operation: &str,
        body: Value,
    ) -> Result<Value, StreamSourceError> {
        let parsed = DynamoDbStreamArn::parse(arn)
            .ok_or_else(|| StreamSourceError::NoSuchStream(arn.into()))?;
        let caller = Caller {
            account_id: parsed.account.to_string(),
            region: parsed.region.to_string(),
            access_key_id: String::new(),
        };
        let reply = self
            .service
            .operation(&caller, prefix, operation, body.to_string().as_bytes())
            .await;
        let answer: Value = serde_json::from_str(&reply.body)
            .map_err(|e| StreamSourceError::Unavailable(e.to_string()))?;
        if reply.status == 200 {
            return Ok(answer);
        }
        let kind = answer["__type"].as_str().unwrap_or_default();
        if kind.ends_with("ResourceNotFoundException") {
            Err(StreamSourceError::NoSuchStream(arn.into()))
        } else {
            Err(StreamSourceError::Unavailable(reply.body))
        }
    }

    async fn iterator(
        &self,
        arn: &str,
        shard: &str,
        kind: &str,
        sequence_number: Option<&str>,
    ) -> Result<String, StreamSourceError> {
        let mut body = json!({"StreamArn": arn, "ShardId": shard, "ShardIteratorType": kind});
        if let Some(sequence_number) = sequence_number {
            body["SequenceNumber"] = sequence_number.into();
        }
        let answer = self.call(arn, "GetShardIterator", body).await?;
        answer["ShardIterator"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| StreamSourceError::Unavailable("no shard iterator".into()))
    }

    fn hash_key(&self, arn: &str) -> Option<String> {
        self.hash_keys.lock().get(arn).cloned()
    }
}

#[async_trait::async_trait]
impl StreamSource for StreamReader {
    async fn shards(&self, arn: &str) -> Result<Vec<String>, StreamSourceError> {
        let answer = self
            .call(arn, "DescribeStream", json!({"StreamArn": arn}))
            .await?;
        let description = &answer["StreamDescription"];
        if description["StreamStatus"] == "DISABLED" {
            return Err(StreamSourceError::NoSuchStream(arn.into()));
        }
        // The engine's DescribeStream has no KeySchema; the table's is the
        // stream's.
        let table = description["TableName"].as_str().unwrap_or_default();
        let described = self
            .call_api(
                arn,
                TARGET_PREFIX,
                "DescribeTable",
                json!({"TableName": table}),
            )
            .await?;
        let hash_key = described["Table"]["KeySchema"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|k| k["KeyType"] == "HASH")
            .and_then(|k| k["AttributeName"].as_str());
        if let Some(hash_key) = hash_key {
            self.hash_keys
                .lock()
                .insert(arn.to_string(), hash_key.to_string());
        }
        Ok(description["Shards"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["ShardId"].as_str().map(str::to_string))
            .collect())
    }

    async fn pin(
        &self,
        arn: &str,
        shard: &str,
        position: ShardPosition,
    ) -> Result<ShardPosition, StreamSourceError> {
        match position {
            // Strato's shard iterators do not expire, so one taken now
            // stays the place after the current last record.
            ShardPosition::Latest => Ok(ShardPosition::Marker(
                self.iterator(arn, shard, "LATEST", None).await?,
            )),
            other => Ok(other),
        }
    }

    async fn read(
        &self,
        arn: &str,
        shard: &str,
        position: &ShardPosition,
        max: usize,
    ) -> Result<Vec<StreamRecord>, StreamSourceError> {
        let iterator = match position {
            ShardPosition::TrimHorizon => self.iterator(arn, shard, "TRIM_HORIZON", None).await?,
            ShardPosition::Latest => self.iterator(arn, shard, "LATEST", None).await?,
            ShardPosition::After(sequence_number) => {
                self.iterator(arn, shard, "AFTER_SEQUENCE_NUMBER", Some(sequence_number))
                    .await?
            }
            ShardPosition::Marker(iterator) => iterator.clone(),
        };
        let answer = self
            .call(
                arn,
                "GetRecords",
                json!({"ShardIterator": iterator, "Limit": max.clamp(1, 1000)}),
            )
            .await?;
        let hash_key = self.hash_key(arn);
        let Some(Value::Array(records)) = answer.get("Records").cloned() else {
            return Ok(Vec::new());
        };
        Ok(records
            .into_iter()
            .map(|record| lambda_record(record, arn, hash_key.as_deref()))
            .collect())
    }

    fn writes(&self, arn: &str) -> Option<tokio::sync::watch::Receiver<()>> {
        let parsed = DynamoDbStreamArn::parse(arn)?;
        self.service.writes(parsed.account, parsed.region).ok()
    }
}

/// A Streams API record as Lambda's event carries it: with
/// `eventSourceARN`, and `userIdentity` members in the event's casing
/// (`type`, `principalId`; the Streams API's are `Type`, `PrincipalId`).
fn lambda_record(mut record: Value, arn: &str, hash_key: Option<&str>) -> StreamRecord {
    if let Some(identity) = record
        .get_mut("userIdentity")
        .and_then(Value::as_object_mut)
    {
        for (from, to) in [("PrincipalId", "principalId"), ("Type", "type")] {
            if let Some(value) = identity.remove(from) {
                identity.insert(to.to_string(), value);
            }
        }
    }
    record["eventSourceARN"] = arn.into();
    let dynamodb = &record["dynamodb"];
    let keys = &dynamodb["Keys"];
    let partition_key = match hash_key.map(|k| &keys[k]) {
        Some(value) if !value.is_null() => value.to_string(),
        _ => keys.to_string(),
    };
    StreamRecord {
        sequence_number: dynamodb["SequenceNumber"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        partition_key,
        created: dynamodb["ApproximateCreationDateTime"]
            .as_f64()
            .unwrap_or_default(),
        record,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strato_model::durability::Durability;

    fn caller() -> Caller {
        Caller {
            account_id: "123456789012".into(),
            region: "eu-west-1".into(),
            access_key_id: String::new(),
        }
    }

    async fn call(service: &Arc<DynamoDbService>, operation: &str, body: Value) -> Value {
        let reply = service
            .operation(
                &caller(),
                crate::TARGET_PREFIX,
                operation,
                body.to_string().as_bytes(),
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        serde_json::from_str(&reply.body).unwrap()
    }

    #[tokio::test]
    async fn records_are_read_in_order_with_the_lambda_event_members() {
        let dir = tempfile::tempdir().unwrap();
        let service = DynamoDbService::new(dir.path().to_path_buf(), Durability::Fsync);
        let created = call(
            &service,
            "CreateTable",
            json!({
                "TableName": "tbl",
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "N"}],
                "BillingMode": "PAY_PER_REQUEST",
                "StreamSpecification": {"StreamEnabled": true, "StreamViewType": "NEW_IMAGE"}
            }),
        )
        .await;
        let arn = created["TableDescription"]["LatestStreamArn"]
            .as_str()
            .unwrap()
            .to_string();
        let reader = StreamReader::new(service.clone());
        let shards = reader.shards(&arn).await.unwrap();
        assert_eq!(shards.len(), 1);
        let latest = reader
            .pin(&arn, &shards[0], ShardPosition::Latest)
            .await
            .unwrap();
        for i in 0..3 {
            call(
                &service,
                "PutItem",
                json!({"TableName": "tbl", "Item": {"pk": {"S": "k"}, "sk": {"N": i.to_string()}}}),
            )
            .await;
        }
        let all = reader
            .read(&arn, &shards[0], &ShardPosition::TrimHorizon, 10)
            .await
            .unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].record["eventSourceARN"], arn.as_str());
        assert_eq!(all[0].record["eventSource"], "aws:dynamodb");
        assert_eq!(all[0].partition_key, r#"{"S":"k"}"#);
        // A pinned LATEST reads what came after it.
        assert_eq!(
            reader
                .read(&arn, &shards[0], &latest, 10)
                .await
                .unwrap()
                .len(),
            3
        );
        let after = ShardPosition::After(all[0].sequence_number.clone());
        let rest = reader.read(&arn, &shards[0], &after, 10).await.unwrap();
        assert_eq!(rest, all[1..].to_vec());
        let missing = arn.replace("table/tbl/", "table/nope/");
        assert!(matches!(
            reader.shards(&missing).await,
            Err(StreamSourceError::NoSuchStream(_))
        ));
    }
}
