//! API keys on data-plane requests: the key's usage plan, its throttle
//! and its quota. REST API methods and WebSocket APIs' `$connect` both
//! check keys here (usage plans name stages of either kind).

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::rest_api::live::QuotaCounter;
use crate::rest_api::RestApiService;

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
/// API stage; that plan's throttle and quota then apply.
pub fn check_api_key(
    service: &RestApiService,
    scope: KeyScope<'_>,
    presented: Option<&str>,
    now: DateTime<Utc>,
) -> KeyVerdict {
    let Some(value) = presented else {
        return KeyVerdict::Forbidden;
    };
    let Some(keys) = service
        .live
        .keys
        .get(&(scope.account.to_string(), scope.region.to_string()))
        .map(|k| k.value().clone())
    else {
        return KeyVerdict::Forbidden;
    };
    let Some(key) = keys.by_value.get(value) else {
        return KeyVerdict::Forbidden;
    };
    if !key.enabled {
        return KeyVerdict::Forbidden;
    }
    let stage_id = (scope.api_id.to_string(), scope.stage.to_string());
    let Some(plan) = key.plans.iter().find(|p| p.stages.contains(&stage_id)) else {
        return KeyVerdict::Forbidden;
    };
    let usage_id = (plan.id.clone(), key.id.clone());
    if let Some((rate, burst)) = plan.throttle {
        let bucket = service
            .live
            .plan_buckets
            .entry(usage_id.clone())
            .or_insert_with(|| Arc::new(crate::throttle::TokenBucket::new(rate, burst)))
            .clone();
        if !bucket.try_take() {
            return KeyVerdict::Throttled;
        }
    }
    if let Some(quota) = plan.quota {
        let counter = service
            .live
            .quota_used
            .entry(usage_id)
            .or_insert_with(|| Arc::new(QuotaCounter::new(scope.account, scope.region)))
            .clone();
        if !counter.try_use(quota.period_id(now), quota.limit) {
            return KeyVerdict::QuotaExceeded;
        }
    }
    KeyVerdict::Admitted {
        key_id: key.id.clone(),
    }
}
