//! The engine writes ARNs with a fixed region and account of its own;
//! Strato's callers see theirs. Requests are translated to the engine's
//! form and answers back, as text: the ARN prefix is distinctive enough that
//! only ARNs carry it.

/// The region the engine writes in ARNs and stream records.
const ENGINE_REGION: &str = dynoxide::streams::LOCAL_REGION;
/// The account the engine writes in ARNs.
const ENGINE_ACCOUNT: &str = dynoxide::streams::LOCAL_ACCOUNT;

/// The engine's shard ids (`shardId-00000001-<table>`) are shorter than
/// the 28 characters the SDKs insist on for a short table name; callers see
/// them with twelve more digits, AWS's length.
const ENGINE_SHARD: &str = "shardId-00000001-";
const STRATO_SHARD: &str = "shardId-00000001000000000000-";

/// One caller's account and region, and how ARNs translate for it.
#[derive(Debug, Clone)]
pub struct Scope {
    pub region: String,
    strato_prefix: String,
    engine_prefix: String,
}

impl Scope {
    pub fn new(account: &str, region: &str) -> Scope {
        Scope {
            region: region.to_string(),
            strato_prefix: format!("arn:aws:dynamodb:{region}:{account}:"),
            engine_prefix: format!("arn:aws:dynamodb:{ENGINE_REGION}:{ENGINE_ACCOUNT}:"),
        }
    }

    /// A request body as the engine reads it.
    pub fn to_engine(&self, body: &str) -> String {
        let mut body = if body.contains(&self.strato_prefix) {
            body.replace(&self.strato_prefix, &self.engine_prefix)
        } else {
            body.to_string()
        };
        if body.contains(STRATO_SHARD) {
            body = body.replace(STRATO_SHARD, ENGINE_SHARD);
        }
        body
    }

    /// An answer body as the caller reads it.
    pub fn for_caller(&self, body: String) -> String {
        let mut body = if body.contains(&self.engine_prefix) {
            body.replace(&self.engine_prefix, &self.strato_prefix)
        } else {
            body
        };
        if body.contains(ENGINE_SHARD) {
            body = body.replace(ENGINE_SHARD, STRATO_SHARD);
        }
        let engine_region = format!("\"awsRegion\":\"{ENGINE_REGION}\"");
        if body.contains(&engine_region) {
            body = body.replace(
                &engine_region,
                &format!("\"awsRegion\":\"{}\"", self.region),
            );
        }
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_translate_both_ways() {
        let scope = Scope::new("123456789012", "eu-west-1");
        let request = r#"{"StreamArn":"arn:aws:dynamodb:eu-west-1:123456789012:table/t/stream/x"}"#;
        let engine = scope.to_engine(request);
        assert!(engine.contains(&format!(
            "arn:aws:dynamodb:{ENGINE_REGION}:{ENGINE_ACCOUNT}:table/t"
        )));
        assert_eq!(scope.for_caller(engine), request);
        let record = format!(r#"{{"awsRegion":"{ENGINE_REGION}"}}"#);
        assert_eq!(scope.for_caller(record), r#"{"awsRegion":"eu-west-1"}"#);
    }

    #[test]
    fn shard_ids_are_aws_long() {
        let scope = Scope::new("123456789012", "eu-west-1");
        let answer = scope.for_caller(r#"{"ShardId":"shardId-00000001-t"}"#.to_string());
        assert_eq!(answer, r#"{"ShardId":"shardId-00000001000000000000-t"}"#);
        assert_eq!(
            scope.to_engine(&answer),
            r#"{"ShardId":"shardId-00000001-t"}"#
        );
    }

    #[test]
    fn another_accounts_arn_is_left_alone() {
        let scope = Scope::new("123456789012", "eu-west-1");
        let request = r#"{"ResourceArn":"arn:aws:dynamodb:eu-west-1:999999999999:table/t"}"#;
        assert_eq!(scope.to_engine(request), request);
    }
}
