//! Asynchronous invocation settings: PutFunctionEventInvokeConfig,
//! UpdateFunctionEventInvokeConfig, GetFunctionEventInvokeConfig,
//! DeleteFunctionEventInvokeConfig and ListFunctionEventInvokeConfigs.
//!
//! One configuration per qualifier (`$LATEST`, a published version or an
//! alias) lives on the function record
//! (`FunctionRecord::event_invoke_configs`), so the asynchronous dispatcher
//! reads it from the in-memory catalog together with the function, and it
//! goes when its version, alias or function is deleted.
//!
//! The not-found answers follow what AWS sends: a missing function, version
//! or alias is "The function doesn't exist." on Put, Update and List, while
//! Get and Delete answer "The function ... doesn't have an EventInvokeConfig"
//! whatever is missing. Both carry the message in a `Message` member.
//!
//! Why over 800 lines: about 270 of them are the unit tests of AWS's
//! validation order and messages.

use std::sync::Arc;

use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Value};
use strato_model::arn::function_arn;
use strato_model::error::ValidationErrors;
use strato_model::event_invoke::{DEFAULT_MAXIMUM_EVENT_AGE_SECONDS, MINIMUM_EVENT_AGE_SECONDS};
use strato_model::time::epoch_seconds;
use strato_model::{
    AwsError, ErrorCode, EventInvokeConfig, FunctionRecord, FunctionRef, Qualifier,
};

use super::versions::PageQuery;
use super::{function_ref, update_function_or, ResourceRequest};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::wire::{json as json_response, AwsJson};
use crate::ApiState;

/// AWS's pattern for `DestinationArn`, quoted verbatim in its validation
/// message.
const DESTINATION_PATTERN: &str = r"$|kafka://([^.]([a-zA-Z0-9\-_.]{0,248}))|arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9\-])+:((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1})?:(\d{12})?:(.*)";
/// The longest `DestinationArn` AWS accepts.
const MAX_DESTINATION_LEN: usize = 350;
/// The most retries AWS allows (its default too).
const MAX_RETRY_ATTEMPTS: u32 = 2;
/// `MaxItems` of ListFunctionEventInvokeConfigs is 1–50.
const MAX_LIST_ITEMS: u16 = 50;
/// Services an asynchronous invocation's outcome can be sent to.
const DESTINATION_SERVICES: [&str; 4] = ["lambda", "sqs", "sns", "events"];

#[derive(Deserialize)]
pub struct ConfigQuery {
    #[serde(rename = "Qualifier")]
    qualifier: Option<String>,
}

/// The body of Put and Update.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct ConfigRequest {
    maximum_retry_attempts: Option<i64>,
    maximum_event_age_in_seconds: Option<i64>,
    destination_config: Option<DestinationConfigRequest>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct DestinationConfigRequest {
    on_success: Option<DestinationRequest>,
    on_failure: Option<DestinationRequest>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct DestinationRequest {
    destination: Option<String>,
}

impl DestinationConfigRequest {
    /// The destinations given, in AWS's order, with the member each came in.
    fn given(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            ("destinationConfig.onSuccess.destination", &self.on_success),
            ("destinationConfig.onFailure.destination", &self.on_failure),
        ]
        .into_iter()
        .filter_map(|(field, d)| Some((field, d.as_ref()?.destination.as_deref()?)))
    }

    /// The configuration as AWS's service prints it in "The provided
    /// destination config ... is invalid." (its Java `toString`).
    fn describe(&self) -> String {
        let side = |kind: &str, d: &Option<DestinationRequest>| match d {
            None => "null".to_string(),
            Some(d) => format!(
                "{kind}(destination={})",
                d.destination.as_deref().unwrap_or("null")
            ),
        };
        format!(
            "DestinationConfig(onSuccess={}, onFailure={})",
            side("OnSuccess", &self.on_success),
            side("OnFailure", &self.on_failure)
        )
    }
}

/// A request's members once AWS's validation passed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Settings {
    maximum_retry_attempts: Option<u32>,
    maximum_event_age_seconds: Option<u32>,
    /// `Some` when the request carried `DestinationConfig`, which then sets
    /// both destinations (an empty `Destination` is none).
    destinations: Option<Destinations>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Destinations {
    on_success: Option<String>,
    on_failure: Option<String>,
}

impl Settings {
    /// The whole configuration Put stores.
    fn replace(self, now: chrono::DateTime<chrono::Utc>) -> EventInvokeConfig {
        let destinations = self.destinations.unwrap_or(Destinations {
            on_success: None,
            on_failure: None,
        });
        EventInvokeConfig {
            maximum_retry_attempts: self.maximum_retry_attempts,
            maximum_event_age_seconds: self.maximum_event_age_seconds,
            on_success: destinations.on_success,
            on_failure: destinations.on_failure,
            last_modified: now,
        }
    }

    /// Update: the members given replace the current ones, the rest stay.
    fn apply(self, config: &mut EventInvokeConfig, now: chrono::DateTime<chrono::Utc>) {
        if let Some(n) = self.maximum_retry_attempts {
            config.maximum_retry_attempts = Some(n);
        }
        if let Some(n) = self.maximum_event_age_seconds {
            config.maximum_event_age_seconds = Some(n);
        }
        if let Some(destinations) = self.destinations {
            config.on_success = destinations.on_success;
            config.on_failure = destinations.on_failure;
        }
        config.last_modified = now;
    }
}

/// True when `region` matches `(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}`.
fn is_destination_region(region: &str) -> bool {
    let region = region.strip_prefix("eusc-").unwrap_or(region);
    let bytes = region.as_bytes();
    if bytes.len() < 2 || !bytes[..2].iter().all(u8::is_ascii_lowercase) {
        return false;
    }
    let rest = &region[2..];
    // `-[a-z]+-\d` after the optional partition infix.
    let tail = |s: &str| {
        s.strip_prefix('-')
            .and_then(|s| s.rsplit_once('-'))
            .is_some_and(|(word, digit)| {
                !word.is_empty()
                    && word.bytes().all(|b| b.is_ascii_lowercase())
                    && digit.len() == 1
                    && digit.bytes().all(|b| b.is_ascii_digit())
            })
    };
    let mut infixes = vec![String::new(), "-gov".into(), "-iso".into()];
    infixes.extend(('a'..='z').map(|c| format!("-iso{c}")));
    infixes
        .iter()
        .any(|infix| rest.strip_prefix(infix.as_str()).is_some_and(tail))
}

/// True when `arn` matches AWS's `DestinationArn` pattern (as a whole, as
/// Java's `matches` does; `.` there stops at line terminators).
fn matches_destination_pattern(arn: &str) -> bool {
    if arn.is_empty() {
        return true;
    }
    if let Some(topic) = arn.strip_prefix("kafka://") {
        let mut chars = topic.chars();
        return chars.next().is_some_and(|c| c != '.')
            && chars.clone().count() <= 248
            && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    }
    let Some([_, _, _, region, _, resource]) = strato_model::arn::general_arn_parts(arn) else {
        return false;
    };
    (region.is_empty() || is_destination_region(region))
        && !resource
            .chars()
            .any(|c| matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}'))
}

/// AWS's validation of a Put or Update body: the members' constraints (one
/// ValidationException naming every failure), then that something is set.
fn validate(req: &ConfigRequest) -> Result<Settings, AwsError> {
    let mut errors = ValidationErrors::new();
    if let Some(n) = req.maximum_retry_attempts {
        errors.check_range(n, 0, MAX_RETRY_ATTEMPTS, "maximumRetryAttempts");
    }
    if let Some(n) = req.maximum_event_age_in_seconds {
        errors.check_range(
            n,
            MINIMUM_EVENT_AGE_SECONDS,
            DEFAULT_MAXIMUM_EVENT_AGE_SECONDS,
            "maximumEventAgeInSeconds",
        );
    }
    if let Some(config) = &req.destination_config {
        for (field, arn) in config.given() {
            if !errors.check_max_length(arn, MAX_DESTINATION_LEN, field)
                && !matches_destination_pattern(arn)
            {
                errors.push_pattern(arn, field, DESTINATION_PATTERN);
            }
        }
    }
    errors.into_result(ErrorCode::ValidationException)?;
    if req.maximum_retry_attempts.is_none()
        && req.maximum_event_age_in_seconds.is_none()
        && req.destination_config.is_none()
    {
        return Err(AwsError::invalid_parameter(
            "You must specify at least one of error handling or destination setting.",
        ));
    }
    // In range, as just checked.
    let to_u32 = |n: Option<i64>| n.and_then(|n| u32::try_from(n).ok());
    let destination = |d: &Option<DestinationRequest>| {
        d.as_ref()
            .and_then(|d| d.destination.clone())
            .filter(|arn| !arn.is_empty())
    };
    Ok(Settings {
        maximum_retry_attempts: to_u32(req.maximum_retry_attempts),
        maximum_event_age_seconds: to_u32(req.maximum_event_age_in_seconds),
        destinations: req.destination_config.as_ref().map(|c| Destinations {
            on_success: destination(&c.on_success),
            on_failure: destination(&c.on_failure),
        }),
    })
}

/// The service a destination ARN names (`arn:partition:service:...`).
fn destination_service(arn: &str) -> Option<&str> {
    let mut parts = arn.split(':');
    (parts.next() == Some("arn"))
        .then(|| parts.nth(1))
        .flatten()
}

/// Refuses destinations of services an asynchronous invocation cannot send
/// to, with AWS's message naming the whole configuration.
fn check_services(config: &DestinationConfigRequest) -> Result<(), AwsError> {
    let supported = |arn: &str| {
        destination_service(arn).is_some_and(|service| DESTINATION_SERVICES.contains(&service))
    };
    if config
        .given()
        .filter(|(_, arn)| !arn.is_empty())
        .all(|(_, arn)| supported(arn))
    {
        return Ok(());
    }
    Err(AwsError::invalid_parameter(format!(
        "The provided destination config {} is invalid.",
        config.describe()
    )))
}

/// The function named by a Lambda destination ARN, when it parses as one.
fn destination_function(arn: &str) -> Option<FunctionRef> {
    FunctionRef::parse(arn, MAX_DESTINATION_LEN)
        .ok()
        .filter(|target| target.account.is_some() && target.region.is_some())
}

/// Refuses a destination that is the configured function itself (under any
/// qualifier).
fn refuse_self(caller: &Caller, function: &str, arn: &str) -> Result<(), AwsError> {
    let is_self = destination_service(arn) == Some("lambda")
        && destination_function(arn).is_some_and(|target| {
            target.name == function
                && target.account.as_deref() == Some(caller.account_id.as_str())
                && target.region.as_deref() == Some(caller.region.as_str())
        });
    if is_self {
        return Err(AwsError::invalid_parameter(
            "You can't specify the function as a destination for itself.",
        ));
    }
    Ok(())
}

/// Whether the resource a destination ARN names exists for the caller: a
/// Lambda function (and its version or alias) or an SQS queue in the
/// caller's account and region. The one place that decides which
/// destinations exist.
pub(crate) async fn check_destination(
    state: &ApiState,
    caller: &Caller,
    arn: &str,
) -> Result<(), AwsError> {
    let invalid = || AwsError::invalid_parameter(format!("The destination ARN {arn} is invalid."));
    let (account, region) = (&caller.account_id, &caller.region);
    let exists = match destination_service(arn) {
        Some("sqs") => state.sqs.queue_exists(account, region, arn),
        Some("sns") => state.sns.topic_exists(account, region, arn),
        Some("events") => state.events.bus_exists(account, region, arn),
        Some("lambda") => true,
        _ => false,
    };
    if !exists {
        return Err(invalid());
    }
    if destination_service(arn) != Some("lambda") {
        return Ok(());
    }
    let Some(target) = destination_function(arn) else {
        return Err(invalid());
    };
    if target.account.as_deref() != Some(caller.account_id.as_str())
        || target.region.as_deref() != Some(caller.region.as_str())
    {
        return Err(invalid());
    }
    let record = state
        .catalog
        .get(&caller.account_id, &caller.region, &target.name)
        .await
        .map_err(|e| ApiError::from(e).0)?;
    match record {
        Some(record) if record.resolve(target.qualifier.as_ref()).is_some() => Ok(()),
        _ => Err(invalid()),
    }
}

/// Every destination check of a request for `function`, in AWS's order.
async fn check_destinations(
    state: &ApiState,
    caller: &Caller,
    function: &str,
    config: &DestinationConfigRequest,
) -> Result<(), AwsError> {
    check_services(config)?;
    for (_, arn) in config.given().filter(|(_, arn)| !arn.is_empty()) {
        refuse_self(caller, function, arn)?;
        check_destination(state, caller, arn).await?;
    }
    Ok(())
}

/// `$LATEST` for an unqualified reference.
fn qualifier_key(r: &FunctionRef) -> String {
    r.qualifier
        .as_ref()
        .map_or_else(|| Qualifier::Latest.as_string(), Qualifier::as_string)
}

fn qualified_arn(caller: &Caller, function: &str, qualifier: &str) -> String {
    format!(
        "{}:{qualifier}",
        function_arn(&caller.region, &caller.account_id, function)
    )
}

/// Put, Update and List's answer for a missing function, version or alias.
fn function_missing() -> AwsError {
    AwsError::not_found("The function doesn't exist.")
}

/// Get, Delete and Update's answer when the qualifier has no configuration.
fn config_missing(caller: &Caller, function: &str, qualifier: &str) -> AwsError {
    AwsError::not_found(format!(
        "The function {} doesn't have an EventInvokeConfig",
        qualified_arn(caller, function, qualifier)
    ))
}

/// The `FunctionEventInvokeConfig` shape: unset settings are left out,
/// `DestinationConfig` is always there with both sides.
fn wire(caller: &Caller, function: &str, qualifier: &str, config: &EventInvokeConfig) -> Value {
    let side = |destination: &Option<String>| match destination {
        Some(arn) => json!({ "Destination": arn }),
        None => json!({}),
    };
    let mut body = json!({
        "LastModified": epoch_seconds(config.last_modified),
        "FunctionArn": qualified_arn(caller, function, qualifier),
        "DestinationConfig": {
            "OnSuccess": side(&config.on_success),
            "OnFailure": side(&config.on_failure),
        },
    });
    if let Some(n) = config.maximum_retry_attempts {
        body["MaximumRetryAttempts"] = json!(n);
    }
    if let Some(n) = config.maximum_event_age_seconds {
        body["MaximumEventAgeInSeconds"] = json!(n);
    }
    body
}

/// The function a reference names, with the qualifier existing.
async fn load_target(
    state: &ApiState,
    caller: &Caller,
    r: &FunctionRef,
) -> ApiResult<Arc<FunctionRecord>> {
    let record = state
        .catalog
        .get(&caller.account_id, &caller.region, &r.name)
        .await?
        .ok_or_else(function_missing)?;
    if record.resolve(r.qualifier.as_ref()).is_none() {
        return Err(function_missing().into());
    }
    Ok(record)
}

/// Put and Update: validation, the function and its qualifier, the
/// destinations, then the change inside the store's transaction.
async fn write(
    state: &ApiState,
    caller: &Caller,
    r: FunctionRef,
    req: ConfigRequest,
    replace: bool,
) -> ApiResult<Response> {
    let settings = validate(&req)?;
    let record = load_target(state, caller, &r).await?;
    let qualifier = qualifier_key(&r);
    if !replace && !record.event_invoke_configs.contains_key(&qualifier) {
        return Err(config_missing(caller, &r.name, &qualifier).into());
    }
    if let Some(config) = &req.destination_config {
        check_destinations(state, caller, &r.name, config).await?;
    }
    let key = qualifier.clone();
    let target = r.qualifier.clone();
    let missing_config = config_missing(caller, &r.name, &qualifier);
    let record = update_function_or(
        state,
        caller,
        &r.name,
        Box::new(move |record| {
            if record.resolve(target.as_ref()).is_none() {
                return Err(function_missing());
            }
            let now = chrono::Utc::now();
            if replace {
                record
                    .event_invoke_configs
                    .insert(key, settings.replace(now));
            } else {
                let config = record
                    .event_invoke_configs
                    .get_mut(&key)
                    .ok_or(missing_config)?;
                settings.apply(config, now);
            }
            Ok(())
        }),
        function_missing(),
    )
    .await?;
    let config = record
        .event_invoke_configs
        .get(&qualifier)
        .ok_or_else(|| AwsError::service("the written EventInvokeConfig vanished"))?;
    Ok(json_response(
        StatusCode::OK,
        wire(caller, &r.name, &qualifier, config),
    ))
}

pub async fn put(
    on: ResourceRequest,
    Query(q): Query<ConfigQuery>,
    AwsJson(req): AwsJson<ConfigRequest>,
) -> ApiResult<Response> {
    let r = function_ref(
        &on.caller,
        &on.name,
        q.qualifier.as_deref(),
        "PutFunctionEventInvokeConfig",
    )?;
    write(&on.state, &on.caller, r, req, true).await
}

pub async fn update(
    on: ResourceRequest,
    Query(q): Query<ConfigQuery>,
    AwsJson(req): AwsJson<ConfigRequest>,
) -> ApiResult<Response> {
    let r = function_ref(
        &on.caller,
        &on.name,
        q.qualifier.as_deref(),
        "UpdateFunctionEventInvokeConfig",
    )?;
    write(&on.state, &on.caller, r, req, false).await
}

pub async fn get(on: ResourceRequest, Query(q): Query<ConfigQuery>) -> ApiResult<Response> {
    let r = function_ref(
        &on.caller,
        &on.name,
        q.qualifier.as_deref(),
        "GetFunctionEventInvokeConfig",
    )?;
    let qualifier = qualifier_key(&r);
    let record = on
        .state
        .catalog
        .get(&on.caller.account_id, &on.caller.region, &r.name)
        .await?;
    let config = record
        .as_ref()
        .and_then(|record| record.event_invoke_configs.get(&qualifier))
        .ok_or_else(|| config_missing(&on.caller, &r.name, &qualifier))?;
    Ok(json_response(
        StatusCode::OK,
        wire(&on.caller, &r.name, &qualifier, config),
    ))
}

pub async fn delete(on: ResourceRequest, Query(q): Query<ConfigQuery>) -> ApiResult<Response> {
    let r = function_ref(
        &on.caller,
        &on.name,
        q.qualifier.as_deref(),
        "DeleteFunctionEventInvokeConfig",
    )?;
    let qualifier = qualifier_key(&r);
    let missing = config_missing(&on.caller, &r.name, &qualifier);
    let in_mutation = missing.clone();
    update_function_or(
        &on.state,
        &on.caller,
        &r.name,
        Box::new(move |record| {
            record
                .event_invoke_configs
                .remove(&qualifier)
                .map(drop)
                .ok_or(in_mutation)
        }),
        missing,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `MaxItems` of ListFunctionEventInvokeConfigs: 1–50, 50 when absent.
fn list_page_size(raw: Option<&str>) -> Result<usize, AwsError> {
    let Some(raw) = raw else {
        return Ok(usize::from(MAX_LIST_ITEMS));
    };
    let n: i64 = raw
        .parse()
        .map_err(|_| AwsError::serialization(format!("Could not parse MaxItems '{raw}'")))?;
    let mut errors = ValidationErrors::new();
    errors.check_range(n, 1, u32::from(MAX_LIST_ITEMS), "maxItems");
    errors.into_result(ErrorCode::ValidationException)?;
    usize::try_from(n).map_err(|_| AwsError::validation("maxItems out of range"))
}

/// Lists every configuration of the function, in qualifier order
/// (`$LATEST`, versions, aliases as strings sort). A qualifier in the name
/// does not narrow the list: the operation is about the function.
pub async fn list(on: ResourceRequest, Query(q): Query<PageQuery>) -> ApiResult<Response> {
    let r = function_ref(&on.caller, &on.name, None, "ListFunctionEventInvokeConfigs")?;
    let limit = list_page_size(q.max_items.as_deref())?;
    let record = on
        .state
        .catalog
        .get(&on.caller.account_id, &on.caller.region, &r.name)
        .await?
        .ok_or_else(function_missing)?;
    let items = record
        .event_invoke_configs
        .iter()
        .map(|(qualifier, config)| {
            (
                qualifier.clone(),
                wire(&on.caller, &r.name, qualifier, config),
            )
        })
        .collect();
    let (page, next) = super::versions::page_of(items, q.marker.as_deref(), limit)?;
    let mut body = json!({ "FunctionEventInvokeConfigs": page });
    if let Some(next) = next {
        body["NextMarker"] = json!(next);
    }
    Ok(json_response(StatusCode::OK, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(body: &str) -> ConfigRequest {
        serde_json::from_str(body).unwrap()
    }

    fn caller() -> Caller {
        Caller {
            account_id: "000000000000".into(),
            region: "us-east-1".into(),
            access_key_id: "test".into(),
        }
    }

    #[test]
    fn retry_attempts_above_two_get_awss_message() {
        let err = validate(&request(r#"{"MaximumRetryAttempts": 3}"#)).unwrap_err();
        assert_eq!(err.code, ErrorCode::ValidationException);
        assert_eq!(
            err.message,
            "1 validation error detected: Value '3' at 'maximumRetryAttempts' failed to satisfy constraint: Member must have value less than or equal to 2"
        );
    }

    #[test]
    fn negative_retry_attempts_are_below_the_minimum() {
        let err = validate(&request(r#"{"MaximumRetryAttempts": -1}"#)).unwrap_err();
        assert!(err
            .message
            .ends_with("Value '-1' at 'maximumRetryAttempts' failed to satisfy constraint: Member must have value greater than or equal to 0"));
    }

    #[test]
    fn event_age_bounds_are_60_and_21600() {
        for (age, constraint) in [
            (59, "greater than or equal to 60"),
            (21_601, "less than or equal to 21600"),
        ] {
            let body = format!(r#"{{"MaximumEventAgeInSeconds": {age}}}"#);
            let err = validate(&request(&body)).unwrap_err();
            assert_eq!(
                err.message,
                format!("1 validation error detected: Value '{age}' at 'maximumEventAgeInSeconds' failed to satisfy constraint: Member must have value {constraint}")
            );
        }
        let ok = validate(&request(
            r#"{"MaximumEventAgeInSeconds": 60, "MaximumRetryAttempts": 0}"#,
        ))
        .unwrap();
        assert_eq!(ok.maximum_event_age_seconds, Some(60));
        assert_eq!(ok.maximum_retry_attempts, Some(0));
    }

    #[test]
    fn every_failed_member_is_counted() {
        let err = validate(&request(
            r#"{"MaximumRetryAttempts": 5, "MaximumEventAgeInSeconds": 1}"#,
        ))
        .unwrap_err();
        assert!(err
            .message
            .starts_with("2 validation errors detected: Value '5' at 'maximumRetryAttempts'"));
        assert!(err
            .message
            .contains("; Value '1' at 'maximumEventAgeInSeconds'"));
    }

    #[test]
    fn an_empty_request_must_set_something() {
        let err = validate(&request("{}")).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidParameterValueException);
        assert_eq!(
            err.message,
            "You must specify at least one of error handling or destination setting."
        );
    }

    #[test]
    fn a_destination_config_without_arns_is_a_setting() {
        let settings = validate(&request(r#"{"DestinationConfig": {"OnSuccess": {}}}"#)).unwrap();
        assert_eq!(
            settings.destinations,
            Some(Destinations {
                on_success: None,
                on_failure: None
            })
        );
    }

    #[test]
    fn a_malformed_destination_arn_gets_the_pattern_message() {
        let arn = "arn:aws:_-/!lambda:us-east-1:000000000000:function:f";
        let body =
            format!(r#"{{"DestinationConfig": {{"OnFailure": {{"Destination": "{arn}"}}}}}}"#);
        let err = validate(&request(&body)).unwrap_err();
        assert_eq!(err.code, ErrorCode::ValidationException);
        assert_eq!(
            err.message,
            format!("1 validation error detected: Value '{arn}' at 'destinationConfig.onFailure.destination' failed to satisfy constraint: Member must satisfy regular expression pattern: {DESTINATION_PATTERN}")
        );
    }

    #[test]
    fn destination_pattern_accepts_what_aws_accepts() {
        for arn in [
            "",
            "arn:aws:lambda:us-east-1:000000000000:function:f",
            "arn:aws:sqs:us-east-1:000000000000:queue",
            "arn:aws-us-gov:sns:us-gov-west-1:000000000000:topic",
            "arn:aws:events:eusc-de-east-1:000000000000:event-bus/default",
            "arn:aws:s3:::bucket",
            "arn:aws:iam:us-east-1:000000000000:function:f",
            "kafka://topic.name",
        ] {
            assert!(matches_destination_pattern(arn), "{arn}");
        }
        for arn in [
            "arn:aws:_-/!lambda:us-east-1:000000000000:function:f",
            "arn:gcp:lambda:us-east-1:000000000000:function:f",
            "arn:aws:lambda:useast1:000000000000:function:f",
            "arn:aws:lambda:us-east-1:0000:function:f",
            "arn:aws:lambda:us-east-1:000000000000",
            "kafka://.topic",
            "queue",
        ] {
            assert!(!matches_destination_pattern(arn), "{arn}");
        }
    }

    #[test]
    fn an_overlong_destination_gets_the_length_message() {
        let arn = format!("arn:aws:sqs:us-east-1:000000000000:{}", "q".repeat(330));
        let body =
            format!(r#"{{"DestinationConfig": {{"OnSuccess": {{"Destination": "{arn}"}}}}}}"#);
        let err = validate(&request(&body)).unwrap_err();
        assert!(err
            .message
            .ends_with("at 'destinationConfig.onSuccess.destination' failed to satisfy constraint: Member must have length less than or equal to 350"));
    }

    #[test]
    fn an_unsupported_service_names_the_whole_config() {
        let arn = "arn:aws:iam:us-east-1:000000000000:function:f";
        let body =
            format!(r#"{{"DestinationConfig": {{"OnSuccess": {{"Destination": "{arn}"}}}}}}"#);
        let err = check_services(request(&body).destination_config.as_ref().unwrap()).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidParameterValueException);
        assert_eq!(
            err.message,
            format!("The provided destination config DestinationConfig(onSuccess=OnSuccess(destination={arn}), onFailure=null) is invalid.")
        );
        let both = r#"{"DestinationConfig": {"OnSuccess": {}, "OnFailure": {"Destination": "kafka://t"}}}"#;
        let err = check_services(request(both).destination_config.as_ref().unwrap()).unwrap_err();
        assert_eq!(
            err.message,
            "The provided destination config DestinationConfig(onSuccess=OnSuccess(destination=null), onFailure=OnFailure(destination=kafka://t)) is invalid."
        );
    }

    #[test]
    fn the_four_destination_services_pass_the_service_check() {
        for service in DESTINATION_SERVICES {
            let arn = format!("arn:aws:{service}:us-east-1:000000000000:x");
            let body =
                format!(r#"{{"DestinationConfig": {{"OnFailure": {{"Destination": "{arn}"}}}}}}"#);
            check_services(request(&body).destination_config.as_ref().unwrap()).unwrap();
        }
    }

    #[test]
    fn the_function_itself_is_no_destination() {
        let caller = caller();
        for arn in [
            "arn:aws:lambda:us-east-1:000000000000:function:f",
            "arn:aws:lambda:us-east-1:000000000000:function:f:live",
        ] {
            let err = refuse_self(&caller, "f", arn).unwrap_err();
            assert_eq!(
                err.message,
                "You can't specify the function as a destination for itself."
            );
        }
        refuse_self(
            &caller,
            "f",
            "arn:aws:lambda:us-east-1:000000000000:function:g",
        )
        .unwrap();
        refuse_self(
            &caller,
            "f",
            "arn:aws:lambda:us-east-1:111111111111:function:f",
        )
        .unwrap();
    }

    #[test]
    fn update_keeps_what_it_is_not_given() {
        let now = chrono::Utc::now();
        let mut config = validate(&request(
            r#"{"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 60, "DestinationConfig": {"OnFailure": {"Destination": "arn:aws:sqs:us-east-1:000000000000:q"}}}"#,
        ))
        .unwrap()
        .replace(now);
        validate(&request(r#"{"MaximumRetryAttempts": 0}"#))
            .unwrap()
            .apply(&mut config, now);
        assert_eq!(config.maximum_retry_attempts, Some(0));
        assert_eq!(config.maximum_event_age_seconds, Some(60));
        assert_eq!(
            config.on_failure.as_deref(),
            Some("arn:aws:sqs:us-east-1:000000000000:q")
        );
    }

    #[test]
    fn put_replaces_the_whole_config() {
        let config = validate(&request(r#"{"MaximumRetryAttempts": 0}"#))
            .unwrap()
            .replace(chrono::Utc::now());
        assert_eq!(config.maximum_event_age_seconds, None);
        assert_eq!(config.on_success, None);
        assert_eq!(config.retries(), 0);
        assert_eq!(config.max_event_age_seconds(), 21_600);
    }

    #[test]
    fn wire_leaves_out_unset_settings_but_not_destinations() {
        let config = validate(&request(r#"{"MaximumRetryAttempts": 1}"#))
            .unwrap()
            .replace(chrono::Utc::now());
        let body = wire(&caller(), "f", "$LATEST", &config);
        assert_eq!(
            body["FunctionArn"],
            "arn:aws:lambda:us-east-1:000000000000:function:f:$LATEST"
        );
        assert_eq!(body["MaximumRetryAttempts"], 1);
        assert!(body.get("MaximumEventAgeInSeconds").is_none());
        assert_eq!(
            body["DestinationConfig"],
            json!({"OnSuccess": {}, "OnFailure": {}})
        );
        assert!(body["LastModified"].is_f64());
    }

    #[test]
    fn missing_config_message_is_capitalized() {
        let err = config_missing(&caller(), "f", "1");
        assert_eq!(
            err.body(),
            json!({"Type": "User", "Message": "The function arn:aws:lambda:us-east-1:000000000000:function:f:1 doesn't have an EventInvokeConfig"})
        );
    }

    #[test]
    fn list_page_size_is_one_to_fifty() {
        assert_eq!(list_page_size(None).unwrap(), 50);
        assert_eq!(list_page_size(Some("2")).unwrap(), 2);
        assert!(list_page_size(Some("51"))
            .unwrap_err()
            .message
            .ends_with("Value '51' at 'maxItems' failed to satisfy constraint: Member must have value less than or equal to 50"));
        assert!(list_page_size(Some("0"))
            .unwrap_err()
            .message
            .ends_with("Member must have value greater than or equal to 1"));
    }
}
