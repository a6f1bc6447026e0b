//! One batch's rules, free of I/O: the event a batch becomes, how big it
//! may grow, and which of its messages a function's answer lets go.

use std::collections::HashSet;

use bytes::Bytes;
use serde_json::Value;

use super::SqsRecord;

/// A synchronous invocation's payload limit (6 MB), which bounds a batch.
pub const MAX_BATCH_PAYLOAD: usize = 6 * 1024 * 1024;
/// `{"Records":[` and `]}` around the records.
const EVENT_FRAME_BYTES: usize = r#"{"Records":[]}"#.len();

/// The event a batch is invoked with: `{"Records":[...]}`, in receive
/// (or stream) order. SQS and stream events share this frame.
pub fn records_event<'a>(records: impl IntoIterator<Item = &'a Value>) -> Bytes {
    let records: Vec<&Value> = records.into_iter().collect();
    Bytes::from(serde_json::json!({ "Records": records }).to_string())
}

/// The SQS event a batch is invoked with.
pub fn sqs_event(records: &[SqsRecord]) -> Bytes {
    records_event(records.iter().map(|r| &r.record))
}

/// Bytes a record adds to the event (its JSON and a separating comma).
pub fn record_size(record: &Value) -> usize {
    record.to_string().len() + 1
}

/// The size of an event with records totalling `records_bytes`.
pub fn event_size(records_bytes: usize) -> usize {
    EVENT_FRAME_BYTES + records_bytes
}

/// What a function that reports batch item failures said about its batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchVerdict {
    /// Every message was processed.
    AllSucceeded,
    /// Nothing may be deleted.
    AllFailed,
    /// These message ids failed; the others succeeded.
    Failed(HashSet<String>),
}

/// AWS's reading of a `ReportBatchItemFailures` answer: no answer, `null`,
/// an empty object, a missing or `null` `batchItemFailures` or an empty
/// list mean success; an answer that is not JSON, a `batchItemFailures`
/// that is not a list, or an entry whose `itemIdentifier` is missing, not a
/// string, empty, or not an item of the batch (`ids`: message ids of an
/// SQS batch, sequence numbers of a stream batch) fail the whole batch.
pub fn read_batch_item_failures<'a>(
    payload: &[u8],
    ids: impl IntoIterator<Item = &'a str>,
) -> BatchVerdict {
    if payload.iter().all(u8::is_ascii_whitespace) {
        return BatchVerdict::AllSucceeded;
    }
    let Ok(answer) = serde_json::from_slice::<Value>(payload) else {
        return BatchVerdict::AllFailed;
    };
    let failures = match answer.get("batchItemFailures") {
        None | Some(Value::Null) => return BatchVerdict::AllSucceeded,
        Some(Value::Array(entries)) => entries,
        Some(_) => return BatchVerdict::AllFailed,
    };
    if failures.is_empty() {
        return BatchVerdict::AllSucceeded;
    }
    let ids: HashSet<&str> = ids.into_iter().collect();
    let mut failed = HashSet::new();
    for entry in failures {
        match entry.get("itemIdentifier").and_then(Value::as_str) {
            Some(id) if ids.contains(id) => {
                failed.insert(id.to_string());
            }
            _ => return BatchVerdict::AllFailed,
        }
    }
    BatchVerdict::Failed(failed)
}

/// The receipt handles of the batch's messages that may be deleted when
/// `failed` failed. On a FIFO queue a message after a failed one of its
/// group is kept too, so the group is redelivered in order from its first
/// failure.
pub fn deletable(batch: &[SqsRecord], failed: &HashSet<String>, fifo: bool) -> Vec<String> {
    let mut stopped_groups: HashSet<&str> = HashSet::new();
    let mut out = Vec::new();
    for record in batch {
        let group = record.group_id.as_deref();
        let failed_here = failed.contains(&record.message_id);
        if fifo {
            if let Some(group) = group {
                if failed_here || stopped_groups.contains(group) {
                    stopped_groups.insert(group);
                    continue;
                }
            }
        }
        if !failed_here {
            out.push(record.receipt_handle.clone());
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn record(id: &str, group: Option<&str>) -> SqsRecord {
        SqsRecord {
            message_id: id.into(),
            receipt_handle: format!("rh-{id}"),
            group_id: group.map(str::to_string),
            record: serde_json::json!({ "messageId": id, "body": "b" }),
        }
    }

    fn ids(batch: &[SqsRecord]) -> Vec<&str> {
        batch.iter().map(|r| r.message_id.as_str()).collect()
    }

    fn batch() -> Vec<SqsRecord> {
        vec![record("a", None), record("b", None), record("c", None)]
    }

    fn failed(ids: &[&str]) -> BatchVerdict {
        BatchVerdict::Failed(ids.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn the_event_wraps_records_in_receive_order() {
        let event: Value = serde_json::from_slice(&sqs_event(&batch())).unwrap();
        let ids: Vec<&str> = event["Records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["messageId"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["a", "b", "c"]);
    }

    #[test]
    fn event_size_is_the_sum_of_record_sizes_and_its_frame() {
        let records = batch();
        let sum: usize = records.iter().map(|r| record_size(&r.record)).sum();
        // The last record has no comma after it.
        assert_eq!(event_size(sum) - 1, sqs_event(&records).len());
    }

    #[test]
    fn no_answer_null_empty_object_and_empty_list_are_success() {
        for answer in [
            "",
            "null",
            "{}",
            r#"{"batchItemFailures":null}"#,
            r#"{"batchItemFailures":[]}"#,
        ] {
            assert_eq!(
                read_batch_item_failures(answer.as_bytes(), ids(&batch())),
                BatchVerdict::AllSucceeded,
                "{answer}"
            );
        }
    }

    #[test]
    fn invalid_json_fails_the_whole_batch() {
        assert_eq!(
            read_batch_item_failures(b"{not json", ids(&batch())),
            BatchVerdict::AllFailed
        );
    }

    #[test]
    fn empty_null_unknown_or_misnamed_identifiers_fail_the_whole_batch() {
        for answer in [
            r#"{"batchItemFailures":[{"itemIdentifier":""}]}"#,
            r#"{"batchItemFailures":[{"itemIdentifier":null}]}"#,
            r#"{"batchItemFailures":[{"itemIdentifier":"zzz"}]}"#,
            r#"{"batchItemFailures":[{"itemId":"a"}]}"#,
            r#"{"batchItemFailures":[{"itemIdentifier":"a"},{"itemIdentifier":"zzz"}]}"#,
            r#"{"batchItemFailures":"a"}"#,
        ] {
            assert_eq!(
                read_batch_item_failures(answer.as_bytes(), ids(&batch())),
                BatchVerdict::AllFailed,
                "{answer}"
            );
        }
    }

    #[test]
    fn known_identifiers_fail_only_their_messages() {
        let answer = br#"{"batchItemFailures":[{"itemIdentifier":"b"},{"itemIdentifier":"b"}]}"#;
        assert_eq!(
            read_batch_item_failures(answer, ids(&batch())),
            failed(&["b"])
        );
    }

    #[test]
    fn standard_queues_delete_every_message_but_the_failed_ones() {
        let failed: HashSet<String> = ["b".to_string()].into();
        assert_eq!(deletable(&batch(), &failed, false), ["rh-a", "rh-c"]);
    }

    #[test]
    fn fifo_keeps_a_groups_messages_after_its_first_failure() {
        let batch = vec![
            record("g1-1", Some("g1")),
            record("g2-1", Some("g2")),
            record("g1-2", Some("g1")),
            record("g1-3", Some("g1")),
            record("g2-2", Some("g2")),
        ];
        let failed: HashSet<String> = ["g1-2".to_string()].into();
        assert_eq!(
            deletable(&batch, &failed, true),
            ["rh-g1-1", "rh-g2-1", "rh-g2-2"]
        );
    }
}
