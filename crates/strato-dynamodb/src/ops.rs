//! One request of either API: parse into the engine's request type, run,
//! answer in DynamoDB's JSON 1.0 form (`__type` + message on errors).

use dynoxide::{Database, DynoxideError};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::arns::Scope;
use crate::{STREAMS_TARGET_PREFIX, TARGET_PREFIX};

/// An answer: HTTP status and JSON body (the front end adds the headers).
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: String,
}

impl Reply {
    fn ok(body: String) -> Reply {
        Reply { status: 200, body }
    }

    fn error(e: &DynoxideError) -> Reply {
        Reply {
            status: e.status_code(),
            body: e.to_json(),
        }
    }

    /// `UnknownOperationException`, as DynamoDB answers a target it has not.
    pub fn unknown_operation() -> Reply {
        Reply {
            status: 400,
            body: r#"{"__type":"com.amazon.coral.service#UnknownOperationException"}"#.to_string(),
        }
    }

    pub fn internal_error() -> Reply {
        Reply {
            status: 500,
            body: r#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"Internal server error"}"#
                .to_string(),
        }
    }
}

/// Runs `operation` of the API `prefix` names against `db`.
pub fn run(db: &Database, scope: &Scope, prefix: &str, operation: &str, body: &str) -> Reply {
    let body = if body.trim().is_empty() { "{}" } else { body };
    let body = scope.to_engine(body);
    let result = match prefix {
        TARGET_PREFIX => table_operation(db, scope, operation, &body),
        STREAMS_TARGET_PREFIX => stream_operation(db, operation, &body),
        _ => return Reply::unknown_operation(),
    };
    match result {
        Some(Ok(json)) => Reply::ok(scope.for_caller(json)),
        Some(Err(e)) => {
            let mut reply = Reply::error(&e);
            reply.body = scope.for_caller(reply.body);
            reply
        }
        None => Reply::unknown_operation(),
    }
}

/// Parses the request, calls the engine, writes the answer.
macro_rules! call {
    ($db:expr, $body:expr, $method:ident) => {
        parse($body)
            .and_then(|request| $db.$method(request))
            .and_then(|r| write(&r))
    };
}

fn table_operation(
    db: &Database,
    scope: &Scope,
    operation: &str,
    body: &str,
) -> Option<Result<String, DynoxideError>> {
    Some(match operation {
        "CreateTable" => call!(db, body, create_table),
        "DeleteTable" => call!(db, body, delete_table),
        "DescribeTable" => call!(db, body, describe_table),
        "ListTables" => call!(db, body, list_tables),
        "UpdateTable" => call!(db, body, update_table),
        "PutItem" => call!(db, body, put_item),
        "GetItem" => call!(db, body, get_item),
        "DeleteItem" => call!(db, body, delete_item),
        "UpdateItem" => call!(db, body, update_item),
        "Query" => call!(db, body, query),
        "Scan" => call!(db, body, scan),
        "BatchGetItem" => call!(db, body, batch_get_item),
        "BatchWriteItem" => call!(db, body, batch_write_item),
        "TransactWriteItems" => call!(db, body, transact_write_items),
        "TransactGetItems" => call!(db, body, transact_get_items),
        "UpdateTimeToLive" => call!(db, body, update_time_to_live),
        "DescribeTimeToLive" => call!(db, body, describe_time_to_live),
        "ExecuteStatement" => call!(db, body, execute_statement),
        "ExecuteTransaction" => call!(db, body, execute_transaction),
        "BatchExecuteStatement" => call!(db, body, batch_execute_statement),
        "TagResource" => call!(db, body, tag_resource),
        "UntagResource" => call!(db, body, untag_resource),
        "ListTagsOfResource" => call!(db, body, list_tags_of_resource),
        "DescribeLimits" => Ok(describe_limits()),
        "DescribeEndpoints" => Ok(describe_endpoints(&scope.region)),
        _ => return None,
    })
}

fn stream_operation(
    db: &Database,
    operation: &str,
    body: &str,
) -> Option<Result<String, DynoxideError>> {
    Some(match operation {
        "ListStreams" => call!(db, body, list_streams),
        "DescribeStream" => call!(db, body, describe_stream),
        "GetShardIterator" => call!(db, body, get_shard_iterator),
        "GetRecords" => call!(db, body, get_records).and_then(|json| identity_members(&json)),
        _ => return None,
    })
}

/// The Streams API's `Identity` has the members `PrincipalId` and `Type`
/// (the engine writes them as Lambda's event does, `principalId` and
/// `type`, which the SDKs do not read).
fn identity_members(json: &str) -> Result<String, DynoxideError> {
    let mut answer: serde_json::Value = serde_json::from_str(json)
        .map_err(|e| DynoxideError::InternalServerError(e.to_string()))?;
    let records = answer.get_mut("Records").and_then(|r| r.as_array_mut());
    for record in records.into_iter().flatten() {
        if let Some(identity) = record
            .get_mut("userIdentity")
            .and_then(|i| i.as_object_mut())
        {
            for (from, to) in [("principalId", "PrincipalId"), ("type", "Type")] {
                if let Some(value) = identity.remove(from) {
                    identity.insert(to.to_string(), value);
                }
            }
        }
    }
    write(&answer)
}

/// On-demand accounts answer DescribeLimits with the default quotas.
fn describe_limits() -> String {
    serde_json::json!({
        "AccountMaxReadCapacityUnits": 80000,
        "AccountMaxWriteCapacityUnits": 80000,
        "TableMaxReadCapacityUnits": 40000,
        "TableMaxWriteCapacityUnits": 40000,
    })
    .to_string()
}

fn describe_endpoints(region: &str) -> String {
    serde_json::json!({
        "Endpoints": [{"Address": format!("dynamodb.{region}.amazonaws.com"), "CachePeriodInMinutes": 1440}]
    })
    .to_string()
}

/// A request body in the engine's type. The engine's own deserializers say
/// which error a value is by a marker before the message; otherwise, as
/// DynamoDB does, a missing or null required member or an unknown enum value
/// is a ValidationException, and a member of the wrong JSON type a
/// SerializationException.
fn parse<T: DeserializeOwned>(body: &str) -> Result<T, DynoxideError> {
    serde_json::from_str(body).map_err(|e| classify(&e.to_string()))
}

/// Markers the engine's deserializers put before a message, longest first,
/// and whether the message names a validation error.
const MARKERS: [(&str, bool); 5] = [
    ("SERIALIZATION_AS_READ:", false),
    ("VALIDATION_AS_READ:", true),
    ("VALIDATION_REQUEST:", true),
    ("SERIALIZATION:", false),
    ("VALIDATION:", true),
];

fn classify(text: &str) -> DynoxideError {
    let without_position = |m: &str| match m.rfind(" at line ") {
        Some(at) => m[..at].to_string(),
        None => m.to_string(),
    };
    for (marker, validation) in MARKERS {
        if let Some(message) = text.strip_prefix(marker) {
            let message = without_position(message);
            return if validation {
                DynoxideError::ValidationException(message)
            } else {
                DynoxideError::SerializationException(message)
            };
        }
    }
    let message = without_position(text);
    let validation = [
        "missing field",
        "unknown variant",
        "invalid type: null",
        "AttributeValue",
    ];
    if validation.iter().any(|v| text.contains(v)) {
        DynoxideError::ValidationException(message)
    } else {
        DynoxideError::SerializationException(message)
    }
}

fn write<T: Serialize>(response: &T) -> Result<String, DynoxideError> {
    serde_json::to_string(response).map_err(|e| DynoxideError::InternalServerError(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> Scope {
        Scope::new("123456789012", "eu-west-1")
    }

    fn call(db: &Database, operation: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        let reply = run(db, &scope(), TARGET_PREFIX, operation, &body.to_string());
        (reply.status, serde_json::from_str(&reply.body).unwrap())
    }

    fn table(db: &Database) {
        let (status, body) = call(
            db,
            "CreateTable",
            serde_json::json!({
                "TableName": "tbl",
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                "BillingMode": "PAY_PER_REQUEST",
                "StreamSpecification": {"StreamEnabled": true, "StreamViewType": "NEW_AND_OLD_IMAGES"}
            }),
        );
        assert_eq!(status, 200, "{body}");
        let arn = body["TableDescription"]["TableArn"].as_str().unwrap();
        assert_eq!(arn, "arn:aws:dynamodb:eu-west-1:123456789012:table/tbl");
        let stream = body["TableDescription"]["LatestStreamArn"]
            .as_str()
            .unwrap();
        assert!(stream.starts_with("arn:aws:dynamodb:eu-west-1:123456789012:table/tbl/stream/"));
    }

    #[test]
    fn table_arns_are_the_callers() {
        let db = Database::memory().unwrap();
        table(&db);
        let (status, body) = call(
            &db,
            "DescribeTable",
            serde_json::json!({"TableName": "tbl"}),
        );
        assert_eq!(status, 200);
        assert_eq!(body["Table"]["TableStatus"], "ACTIVE");
    }

    #[test]
    fn conditional_put_fails_with_aws_type() {
        let db = Database::memory().unwrap();
        table(&db);
        let put = serde_json::json!({
            "TableName": "tbl",
            "Item": {"pk": {"S": "a"}},
            "ConditionExpression": "attribute_not_exists(pk)"
        });
        assert_eq!(call(&db, "PutItem", put.clone()).0, 200);
        let (status, body) = call(&db, "PutItem", put);
        assert_eq!(status, 400);
        assert_eq!(
            body["__type"],
            "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException"
        );
    }

    #[test]
    fn missing_member_is_a_validation_error_and_unknown_op_is_refused() {
        let db = Database::memory().unwrap();
        let (status, body) = call(&db, "GetItem", serde_json::json!({}));
        assert_eq!(status, 400);
        assert!(
            body["__type"]
                .as_str()
                .unwrap()
                .ends_with("ValidationException"),
            "{body}"
        );
        let reply = run(&db, &scope(), TARGET_PREFIX, "Frobnicate", "{}");
        assert_eq!(reply, Reply::unknown_operation());
    }

    #[test]
    fn stream_records_carry_the_callers_region() {
        let db = Database::memory().unwrap();
        table(&db);
        let put = serde_json::json!({"TableName": "tbl", "Item": {"pk": {"S": "a"}}});
        assert_eq!(call(&db, "PutItem", put).0, 200);
        let (_, described) = call(
            &db,
            "DescribeTable",
            serde_json::json!({"TableName": "tbl"}),
        );
        let stream = described["Table"]["LatestStreamArn"]
            .as_str()
            .unwrap()
            .to_string();
        let streams = |op: &str, body: serde_json::Value| {
            let reply = run(&db, &scope(), STREAMS_TARGET_PREFIX, op, &body.to_string());
            assert_eq!(reply.status, 200, "{}", reply.body);
            serde_json::from_str::<serde_json::Value>(&reply.body).unwrap()
        };
        let described = streams("DescribeStream", serde_json::json!({"StreamArn": stream}));
        let shard = described["StreamDescription"]["Shards"][0]["ShardId"].clone();
        let iterator = streams(
            "GetShardIterator",
            serde_json::json!({"StreamArn": stream, "ShardId": shard, "ShardIteratorType": "TRIM_HORIZON"}),
        );
        let records = streams(
            "GetRecords",
            serde_json::json!({"ShardIterator": iterator["ShardIterator"]}),
        );
        let record = &records["Records"][0];
        assert_eq!(record["eventName"], "INSERT");
        assert_eq!(record["awsRegion"], "eu-west-1");
    }
}
