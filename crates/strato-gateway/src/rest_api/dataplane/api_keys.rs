//! API keys on data-plane requests: the key's usage plan, its throttle
//! and its quota.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::rest_api::live::{LiveApi, QuotaCounter};
use crate::rest_api::RestApiService;

pub(super) enum KeyVerdict {
    Admitted { key_id: String },
    Forbidden,
    Throttled,
    QuotaExceeded,
}

/// A key must exist, be enabled and belong to a usage plan that covers this
/// API stage; that plan's throttle and quota then apply.
pub(super) fn check_api_key(
    service: &RestApiService,
    api: &LiveApi,
    stage: &str,
    presented: Option<&str>,
    now: DateTime<Utc>,
) -> KeyVerdict {
    let Some(value) = presented else {
        return KeyVerdict::Forbidden;
    };
    let Some(keys) = service
        .live
        .keys
        .get(&(api.account.clone(), api.region.clone()))
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
    let stage_id = (api.id.clone(), stage.to_string());
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
            .or_insert_with(|| Arc::new(QuotaCounter::new(&api.account, &api.region)))
            .clone();
        if !counter.try_use(quota.period_id(now), quota.limit) {
            return KeyVerdict::QuotaExceeded;
        }
    }
    KeyVerdict::Admitted {
        key_id: key.id.clone(),
    }
}
