//! API keys on data-plane requests: the key's usage plan, its throttle
//! and its quota. REST API methods and WebSocket APIs' `$connect` both
//! check keys here (usage plans name stages of either kind).

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::rest_api::live::{LiveQuota, QuotaCounter};
use crate::rest_api::RestApiService;
use crate::throttle::TokenBucket;

pub enum KeyVerdict {
    Admitted { key_id: String },
    Forbidden,
    Throttled,
    QuotaExceeded,
}

/// The API stage a key is presented to.
#[derive(Debug, Clone, Copy)]
pub struct KeyScope<'a> {
    pub account: &'a str,
    pub region: &'a str,
    pub api_id: &'a str,
    pub stage: &'a str,
}

/// A key must exist, be enabled and belong to a usage plan that covers this
/// API stage; that plan's throttle and quota then count this request.
pub fn check_api_key(
    service: &RestApiService,
    scope: KeyScope<'_>,
    presented: Option<&str>,
    now: DateTime<Utc>,
) -> KeyVerdict {
    match plan_usage(service, scope, presented) {
        Some(usage) => usage.count(now),
        None => KeyVerdict::Forbidden,
    }
}

/// An admitted key's usage of its plan: its throttle bucket and quota
/// counter, shared by every request the key makes. A WebSocket connection
/// keeps one, so that each message counts without looking the key up.
#[derive(Clone)]
pub struct PlanUsage {
    pub key_id: String,
    bucket: Option<Arc<TokenBucket>>,
    quota: Option<(Arc<QuotaCounter>, LiveQuota)>,
}

impl PlanUsage {
    /// Counts one request against the plan's throttle and quota.
    pub fn count(&self, now: DateTime<Utc>) -> KeyVerdict {
        if self.bucket.as_ref().is_some_and(|b| !b.try_take()) {
            return KeyVerdict::Throttled;
        }
        if let Some((counter, quota)) = &self.quota {
            if !counter.try_use(quota.period_id(now), quota.limit) {
                return KeyVerdict::QuotaExceeded;
            }
        }
        KeyVerdict::Admitted {
            key_id: self.key_id.clone(),
        }
    }
}

/// The usage plan `presented` may use on this stage: `None` when the key
/// does not exist, is disabled, or is in no plan that covers the stage.
pub fn plan_usage(
    service: &RestApiService,
    scope: KeyScope<'_>,
    presented: Option<&str>,
) -> Option<PlanUsage> {
    let keys = service
        .live
        .keys
        .get(&(scope.account.to_string(), scope.region.to_string()))
        .map(|k| k.value().clone())?;
    let key = keys.by_value.get(presented?)?;
    if !key.enabled {
        return None;
    }
    let stage_id = (scope.api_id.to_string(), scope.stage.to_string());
    let plan = key.plans.iter().find(|p| p.stages.contains(&stage_id))?;
    let usage_id = (plan.id.clone(), key.id.clone());
    let bucket = plan.throttle.map(|(rate, burst)| {
        service
            .live
            .plan_buckets
            .entry(usage_id.clone())
            .or_insert_with(|| Arc::new(TokenBucket::new(rate, burst)))
            .clone()
    });
    let quota = plan.quota.map(|quota| {
        let counter = service
            .live
            .quota_used
            .entry(usage_id)
            .or_insert_with(|| Arc::new(QuotaCounter::new(scope.account, scope.region)))
            .clone();
        (counter, quota)
    });
    Some(PlanUsage {
        key_id: key.id.clone(),
        bucket,
        quota,
    })
}
