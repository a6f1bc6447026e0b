//! Delivery policies: how often, and how far apart, SNS retries a delivery
//! that failed on the endpoint's side.
//!
//! AWS-managed endpoints (Lambda, SQS) follow AWS's fixed policy: 3
//! immediate retries, 2 one second apart, 10 backing off exponentially
//! from 1 to 20 seconds, then 100,000 twenty seconds apart. HTTP/HTTPS
//! endpoints follow the `DeliveryPolicy` of their subscription, else of
//! their topic (`http.default...`), else AWS's default (3 retries, 20 s
//! apart, linear), with a throttle (`maxReceivesPerSecond`) and the
//! request's content type. Both documents are validated as AWS validates
//! them, in AWS's words (`healthyRetryPolicy.numRetries must be less than
//! or equal to 100`), and [`Effective`] is what `EffectiveDeliveryPolicy`
//! reports.

use std::time::Duration;

use serde_json::Value;

use crate::delivery::{json_string, ordered_object};
use crate::{SubscriptionRecord, TopicRecord};

/// AWS's ceiling on `numRetries` of an HTTP/S policy.
const MAX_RETRIES: u64 = 100;
/// AWS's ceiling on a delay target, and on a policy's whole retry time.
const MAX_DELAY: u64 = 3600;
/// What an HTTP/S notification is posted as without a request policy.
pub(crate) const DEFAULT_CONTENT_TYPE: &str = "text/plain; charset=UTF-8";
/// The media types `headerContentType` may name (with `; charset=UTF-8`).
const CONTENT_TYPES: &[&str] = &[
    "application/json",
    "application/xml",
    "text/html",
    "text/plain",
    "text/xml",
];
const BACKOFFS: &str = "arithmetic, exponential, geometric, linear";

/// How delays grow across the backoff phase, from `minDelayTarget` to
/// `maxDelayTarget`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backoff {
    Linear,
    Arithmetic,
    Geometric,
    Exponential,
}

impl Backoff {
    fn parse(name: &str) -> Option<Backoff> {
        match name {
            "linear" => Some(Backoff::Linear),
            "arithmetic" => Some(Backoff::Arithmetic),
            "geometric" => Some(Backoff::Geometric),
            "exponential" => Some(Backoff::Exponential),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Backoff::Linear => "linear",
            Backoff::Arithmetic => "arithmetic",
            Backoff::Geometric => "geometric",
            Backoff::Exponential => "exponential",
        }
    }

    /// The delay (seconds) of retry `k` of the `n` in the backoff phase,
    /// growing from `min` so that the last one waits `max`: by equal steps
    /// (linear), by growing steps (arithmetic: 1, 2, 3, ... units), by a
    /// constant ratio (geometric), or by doubling steps (exponential).
    #[allow(clippy::cast_precision_loss)]
    fn delay(self, k: u64, n: u64, min: u64, max: u64) -> f64 {
        let (k, n, min, max) = (k as f64, n as f64, min as f64, max as f64);
        let span = max - min;
        match self {
            Backoff::Linear => min + span * k / n,
            Backoff::Arithmetic => min + span * (k * (k + 1.0)) / (n * (n + 1.0)),
            Backoff::Geometric => min * (max / min).powf(k / n),
            Backoff::Exponential => min + span * (2f64.powf(k) - 1.0) / (2f64.powf(n) - 1.0),
        }
    }
}

/// A retry policy (`healthyRetryPolicy`), in seconds and retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub min_delay: u64,
    pub max_delay: u64,
    /// Retries after the first attempt, over every phase.
    pub retries: u64,
    pub no_delay_retries: u64,
    pub min_delay_retries: u64,
    pub max_delay_retries: u64,
    pub backoff: Backoff,
}

impl RetryPolicy {
    /// AWS's default for HTTP/HTTPS: 3 retries, 20 seconds apart.
    pub const HTTP_DEFAULT: RetryPolicy = RetryPolicy {
        min_delay: 20,
        max_delay: 20,
        retries: 3,
        no_delay_retries: 0,
        min_delay_retries: 0,
        max_delay_retries: 0,
        backoff: Backoff::Linear,
    };

    /// AWS's fixed policy for AWS-managed endpoints (Lambda, SQS): 100,015
    /// retries over 23 days.
    pub const AWS_MANAGED: RetryPolicy = RetryPolicy {
        min_delay: 1,
        max_delay: 20,
        retries: 100_015,
        no_delay_retries: 3,
        min_delay_retries: 2,
        max_delay_retries: 100_000,
        backoff: Backoff::Exponential,
    };

    fn backoff_retries(&self) -> u64 {
        self.retries
            .saturating_sub(self.no_delay_retries + self.min_delay_retries + self.max_delay_retries)
    }

    /// The wait before retry `n` (1 is the first retry): no delay, then the
    /// minimum delay, then the backoff phase, then the maximum delay.
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    pub fn delay(&self, n: u64) -> Duration {
        let immediate = self.no_delay_retries;
        let at_min = immediate + self.min_delay_retries;
        let backoff = self.backoff_retries();
        let seconds = if n <= immediate {
            0
        } else if n <= at_min {
            self.min_delay
        } else if n <= at_min + backoff {
            let seconds = self
                .backoff
                .delay(n - at_min, backoff, self.min_delay, self.max_delay);
            seconds.round() as u64
        } else {
            self.max_delay
        };
        Duration::from_secs(seconds)
    }

    /// Every retry's wait added up.
    fn total(&self) -> Duration {
        (1..=self.retries.min(MAX_RETRIES))
            .map(|n| self.delay(n))
            .sum()
    }

    /// As AWS writes it, members in AWS's order.
    fn to_json(self) -> String {
        ordered_object(&[
            ("minDelayTarget", self.min_delay.to_string()),
            ("maxDelayTarget", self.max_delay.to_string()),
            ("numRetries", self.retries.to_string()),
            ("numMaxDelayRetries", self.max_delay_retries.to_string()),
            ("numNoDelayRetries", self.no_delay_retries.to_string()),
            ("numMinDelayRetries", self.min_delay_retries.to_string()),
            ("backoffFunction", json_string(self.backoff.as_str())),
        ])
    }
}

/// What a delivery to one subscription follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effective {
    pub retry: RetryPolicy,
    /// `maxReceivesPerSecond`.
    pub throttle: Option<u64>,
    /// `headerContentType`, when a policy sets it.
    pub content_type: Option<String>,
}

impl Effective {
    /// The `Content-Type` of an HTTP/HTTPS notification.
    pub fn content_type(&self) -> &str {
        self.content_type.as_deref().unwrap_or(DEFAULT_CONTENT_TYPE)
    }

    /// A subscription's `EffectiveDeliveryPolicy`.
    pub fn to_json(&self) -> String {
        let mut members = vec![
            ("healthyRetryPolicy", self.retry.to_json()),
            ("sicklyRetryPolicy", "null".to_string()),
            ("throttlePolicy", throttle_json(self.throttle)),
        ];
        if let Some(content_type) = &self.content_type {
            members.push(("requestPolicy", request_json(content_type)));
        }
        members.push(("guaranteed", "false".to_string()));
        ordered_object(&members)
    }
}

fn throttle_json(throttle: Option<u64>) -> String {
    throttle.map_or_else(
        || "null".to_string(),
        |n| ordered_object(&[("maxReceivesPerSecond", n.to_string())]),
    )
}

fn request_json(content_type: &str) -> String {
    ordered_object(&[("headerContentType", json_string(content_type))])
}

/// The parts of a policy document that a delivery follows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Parts {
    retry: Option<RetryPolicy>,
    throttle: Option<u64>,
    content_type: Option<String>,
}

/// A topic's `DeliveryPolicy` (`{"http": {"defaultHealthyRetryPolicy": ...}}`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct TopicPolicy {
    defaults: Parts,
    disable_overrides: bool,
}

/// Why a policy document was refused: AWS's text after `DeliveryPolicy: `.
pub(crate) type Refusal = String;

fn object<'a>(
    value: &'a Value,
    path: &str,
    members: &[&str],
) -> Result<&'a serde_json::Map<String, Value>, Refusal> {
    let Value::Object(object) = value else {
        return Err(format!(
            "{path} type mismatch, expecting object, received {}",
            kind(value)
        ));
    };
    if let Some(unexpected) = object.keys().find(|k| !members.contains(&k.as_str())) {
        return Err(format!("Unexpected JSON member: {unexpected}"));
    }
    Ok(object)
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "a null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A non-negative integer member, absent when missing or null.
fn integer(
    object: &serde_json::Map<String, Value>,
    path: &str,
    name: &str,
) -> Result<Option<u64>, Refusal> {
    match object.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match (n.as_u64(), n.as_i64()) {
            (Some(v), _) => Ok(Some(v)),
            (None, Some(_)) => Err(format!("{path}.{name} must be greater than or equal to 0")),
            (None, None) => Err(format!(
                "{path}.{name} type mismatch, expecting integer, received a number"
            )),
        },
        Some(other) => Err(format!(
            "{path}.{name} type mismatch, expecting integer, received {}",
            kind(other)
        )),
    }
}

fn retry_policy(value: &Value, path: &str) -> Result<RetryPolicy, Refusal> {
    let object = object(
        value,
        path,
        &[
            "minDelayTarget",
            "maxDelayTarget",
            "numRetries",
            "numNoDelayRetries",
            "numMinDelayRetries",
            "numMaxDelayRetries",
            "backoffFunction",
        ],
    )?;
    let required = |name: &str| -> Result<u64, Refusal> {
        integer(object, path, name)?.ok_or_else(|| format!("{path}.{name} must be specified"))
    };
    let min_delay = required("minDelayTarget")?;
    let max_delay = required("maxDelayTarget")?;
    let retries = required("numRetries")?;
    let optional = |name: &str| integer(object, path, name).map(Option::unwrap_or_default);
    let no_delay_retries = optional("numNoDelayRetries")?;
    let min_delay_retries = optional("numMinDelayRetries")?;
    let max_delay_retries = optional("numMaxDelayRetries")?;
    let backoff = match object.get("backoffFunction") {
        None | Some(Value::Null) => Backoff::Linear,
        Some(Value::String(name)) => Backoff::parse(name).ok_or_else(|| {
            format!("{path}.backoffFunction must be one of the following values: {BACKOFFS}")
        })?,
        Some(other) => {
            return Err(format!(
                "{path}.backoffFunction type mismatch, expecting string, received {}",
                kind(other)
            ))
        }
    };
    if min_delay < 1 {
        return Err(format!(
            "{path}.minDelayTarget must be greater than or equal to 1"
        ));
    }
    if max_delay > MAX_DELAY {
        return Err(format!(
            "{path}.maxDelayTarget must be less than or equal to {MAX_DELAY}"
        ));
    }
    if max_delay < min_delay {
        return Err(format!(
            "{path}.maxDelayTarget must be greater than or equal to minDelayTarget"
        ));
    }
    if retries > MAX_RETRIES {
        return Err(format!(
            "{path}.numRetries must be less than or equal to {MAX_RETRIES}"
        ));
    }
    if no_delay_retries + min_delay_retries + max_delay_retries > retries {
        return Err(format!(
            "{path}.numRetries must be greater than or equal to total of numMinDelayRetries, numNoDelayRetries and numMaxDelayRetries"
        ));
    }
    let policy = RetryPolicy {
        min_delay,
        max_delay,
        retries,
        no_delay_retries,
        min_delay_retries,
        max_delay_retries,
        backoff,
    };
    if policy.total() > Duration::from_secs(MAX_DELAY) {
        return Err(format!(
            "{path}: the total retry time must be less than or equal to {MAX_DELAY} seconds"
        ));
    }
    Ok(policy)
}

fn throttle_policy(value: &Value, path: &str) -> Result<Option<u64>, Refusal> {
    if value.is_null() {
        return Ok(None);
    }
    let object = object(value, path, &["maxReceivesPerSecond"])?;
    match integer(object, path, "maxReceivesPerSecond")? {
        Some(0) => Err(format!(
            "{path}.maxReceivesPerSecond must be greater than or equal to 1"
        )),
        other => Ok(other),
    }
}

fn request_policy(value: &Value, path: &str) -> Result<Option<String>, Refusal> {
    if value.is_null() {
        return Ok(None);
    }
    let object = object(value, path, &["headerContentType"])?;
    match object.get("headerContentType") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(content_type)) => {
            let (base, parameters) = content_type
                .split_once(';')
                .map_or((content_type.as_str(), None), |(b, p)| (b, Some(p.trim())));
            let charset_ok = parameters.is_none_or(|p| p.eq_ignore_ascii_case("charset=UTF-8"));
            if CONTENT_TYPES.contains(&base.trim()) && charset_ok {
                Ok(Some(content_type.clone()))
            } else {
                Err(format!(
                    "{path}.headerContentType {content_type} is not supported"
                ))
            }
        }
        Some(other) => Err(format!(
            "{path}.headerContentType type mismatch, expecting string, received {}",
            kind(other)
        )),
    }
}

fn parse_json(text: &str) -> Result<Value, Refusal> {
    serde_json::from_str(text).map_err(|e| format!("failed to parse JSON. {e}"))
}

/// Validates a subscription's `DeliveryPolicy`.
fn subscription_policy(text: &str) -> Result<Parts, Refusal> {
    let value = parse_json(text)?;
    let object = object(
        &value,
        "DeliveryPolicy",
        &[
            "healthyRetryPolicy",
            "sicklyRetryPolicy",
            "throttlePolicy",
            "requestPolicy",
            "guaranteed",
        ],
    )?;
    let mut parts = Parts::default();
    if let Some(v) = object.get("healthyRetryPolicy").filter(|v| !v.is_null()) {
        parts.retry = Some(retry_policy(v, "healthyRetryPolicy")?);
    }
    if let Some(v) = object.get("sicklyRetryPolicy").filter(|v| !v.is_null()) {
        retry_policy(v, "sicklyRetryPolicy")?;
    }
    if let Some(v) = object.get("throttlePolicy") {
        parts.throttle = throttle_policy(v, "throttlePolicy")?;
    }
    if let Some(v) = object.get("requestPolicy") {
        parts.content_type = request_policy(v, "requestPolicy")?;
    }
    if let Some(v) = object.get("guaranteed").filter(|v| !v.is_null()) {
        if !v.is_boolean() {
            return Err(format!(
                "guaranteed type mismatch, expecting boolean, received {}",
                kind(v)
            ));
        }
    }
    Ok(parts)
}

/// Validates a topic's `DeliveryPolicy`.
fn topic_policy(text: &str) -> Result<TopicPolicy, Refusal> {
    let value = parse_json(text)?;
    let root = object(&value, "DeliveryPolicy", &["http"])?;
    let Some(http) = root.get("http").filter(|v| !v.is_null()) else {
        return Ok(TopicPolicy::default());
    };
    let http = object(
        http,
        "http",
        &[
            "defaultHealthyRetryPolicy",
            "defaultSicklyRetryPolicy",
            "defaultThrottlePolicy",
            "defaultRequestPolicy",
            "disableSubscriptionOverrides",
        ],
    )?;
    let mut policy = TopicPolicy::default();
    if let Some(v) = http
        .get("defaultHealthyRetryPolicy")
        .filter(|v| !v.is_null())
    {
        policy.defaults.retry = Some(retry_policy(v, "http.defaultHealthyRetryPolicy")?);
    }
    if let Some(v) = http
        .get("defaultSicklyRetryPolicy")
        .filter(|v| !v.is_null())
    {
        retry_policy(v, "http.defaultSicklyRetryPolicy")?;
    }
    if let Some(v) = http.get("defaultThrottlePolicy") {
        policy.defaults.throttle = throttle_policy(v, "http.defaultThrottlePolicy")?;
    }
    if let Some(v) = http.get("defaultRequestPolicy") {
        policy.defaults.content_type = request_policy(v, "http.defaultRequestPolicy")?;
    }
    match http.get("disableSubscriptionOverrides") {
        None | Some(Value::Null) => {}
        Some(Value::Bool(b)) => policy.disable_overrides = *b,
        Some(other) => {
            return Err(format!(
                "http.disableSubscriptionOverrides type mismatch, expecting boolean, received {}",
                kind(other)
            ))
        }
    }
    Ok(policy)
}

/// Checks a topic's `DeliveryPolicy` (an empty value removes it).
pub(crate) fn check_topic(text: &str) -> Result<(), Refusal> {
    if text.is_empty() {
        return Ok(());
    }
    topic_policy(text).map(|_| ())
}

/// Checks a subscription's `DeliveryPolicy` (an empty value removes it).
pub(crate) fn check_subscription(text: &str) -> Result<(), Refusal> {
    if text.is_empty() {
        return Ok(());
    }
    subscription_policy(text).map(|_| ())
}

fn stored_topic_policy(topic: Option<&TopicRecord>) -> TopicPolicy {
    topic
        .and_then(|t| t.attributes.get("DeliveryPolicy"))
        .and_then(|text| topic_policy(text).ok())
        .unwrap_or_default()
}

/// The topic's `EffectiveDeliveryPolicy`: its HTTP defaults over AWS's.
pub(crate) fn topic_effective(topic: &TopicRecord) -> String {
    let policy = stored_topic_policy(Some(topic));
    let defaults = policy.defaults;
    let mut http = vec![
        (
            "defaultHealthyRetryPolicy",
            defaults
                .retry
                .unwrap_or(RetryPolicy::HTTP_DEFAULT)
                .to_json(),
        ),
        (
            "disableSubscriptionOverrides",
            policy.disable_overrides.to_string(),
        ),
    ];
    if let Some(n) = defaults.throttle {
        http.push(("defaultThrottlePolicy", throttle_json(Some(n))));
    }
    http.push((
        "defaultRequestPolicy",
        request_json(
            defaults
                .content_type
                .as_deref()
                .unwrap_or(DEFAULT_CONTENT_TYPE),
        ),
    ));
    ordered_object(&[("http", ordered_object(&http))])
}

/// What a delivery to this subscription follows: AWS's fixed policy for
/// Lambda and SQS; for HTTP/HTTPS the subscription's policy over the
/// topic's (unless the topic disables overrides) over AWS's default.
pub(crate) fn effective(
    topic: Option<&TopicRecord>,
    subscription: &SubscriptionRecord,
) -> Effective {
    if !matches!(subscription.protocol.as_str(), "http" | "https") {
        return Effective {
            retry: RetryPolicy::AWS_MANAGED,
            throttle: None,
            content_type: None,
        };
    }
    let topic_policy = stored_topic_policy(topic);
    let mut parts = topic_policy.defaults;
    if !topic_policy.disable_overrides {
        let own = subscription
            .attributes
            .get("DeliveryPolicy")
            .and_then(|text| subscription_policy(text).ok())
            .unwrap_or_default();
        parts.retry = own.retry.or(parts.retry);
        parts.throttle = own.throttle.or(parts.throttle);
        parts.content_type = own.content_type.or(parts.content_type);
    }
    Effective {
        retry: parts.retry.unwrap_or(RetryPolicy::HTTP_DEFAULT),
        throttle: parts.throttle,
        content_type: parts.content_type,
    }
}
