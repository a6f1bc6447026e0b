//! The data plane's view of REST APIs, keys and plans: compiled from the
//! store documents after every control-plane write (and at start), read
//! without a database round trip or a global lock per request.
//!
//! Why over 800 lines: about 120 of them are unit tests.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Datelike, Utc};
use dashmap::DashMap;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use strato_store::{DocumentKey, StoreExt};

use super::error::RestResult;
use super::model::{
    AccessLogSettings, ApiKey, DeploymentRecord, Method, Resource, RestApiRecord, Stage,
    UsagePlanRecord, KIND_API_KEY, KIND_DEPLOYMENT, KIND_QUOTA_USAGE, KIND_REST_API, KIND_STAGE,
    KIND_USAGE_PLAN,
};
use super::patch::unescape_segment;
use super::RestApiService;
use crate::throttle::TokenBucket;

/// Everything the data plane reads.
#[derive(Default)]
pub struct LiveIndex {
    /// REST APIs by id (ids are unique across accounts).
    pub apis: DashMap<String, Arc<LiveApi>>,
    /// API keys and usage plans by (account, region).
    pub keys: DashMap<(String, String), Arc<AccountKeys>>,
    /// Quota use by (usage plan id, API key id); survives rebuilds.
    pub quota_used: DashMap<(String, String), Arc<QuotaCounter>>,
    /// A usage plan's throttle for one key, by (usage plan id, API key id).
    pub plan_buckets: DashMap<(String, String), Arc<TokenBucket>>,
    /// Serializes rebuilds (control plane only), so a rebuild that read
    /// older documents cannot replace a newer one.
    rebuilding: tokio::sync::Mutex<()>,
}

pub struct LiveApi {
    pub account: String,
    pub region: String,
    pub id: String,
    pub name: String,
    pub binary_media_types: Vec<String>,
    pub disable_execute_api_endpoint: bool,
    pub stages: HashMap<String, Arc<LiveStage>>,
}

pub struct LiveStage {
    pub name: String,
    pub deployment_id: String,
    pub variables: BTreeMap<String, String>,
    pub tree: ResourceTree,
    pub throttles: StageThrottles,
    pub access_log: Option<AccessLogSettings>,
}

/// A stage's throttles from its method settings: `*/*` for every method,
/// overridden by a setting for the method itself.
#[derive(Default)]
pub struct StageThrottles {
    pub every_method: Option<TokenBucket>,
    /// By `{resource path}/{METHOD}` (e.g. `/items/{id}/GET`).
    pub by_method: HashMap<String, TokenBucket>,
}

impl StageThrottles {
    fn from_stage(stage: &Stage) -> StageThrottles {
        let mut throttles = StageThrottles::default();
        for (key, setting) in &stage.method_settings {
            let bucket = TokenBucket::new(
                setting.throttling_rate_limit,
                u32::try_from(setting.throttling_burst_limit.max(0)).unwrap_or(u32::MAX),
            );
            if key == "*/*" {
                throttles.every_method = Some(bucket);
            } else if let Some((resource, method)) = key.rsplit_once('/') {
                throttles
                    .by_method
                    .insert(format!("{}/{method}", unescape_segment(resource)), bucket);
            }
        }
        throttles
    }

    /// Takes a token for `method` on `resource_path`; false means 429.
    pub fn admit(&self, resource_path: &str, method: &str) -> bool {
        let specific = self
            .by_method
            .get(&format!("{resource_path}/{method}"))
            .or_else(|| self.by_method.get(&format!("{resource_path}/*")));
        match specific.or(self.every_method.as_ref()) {
            Some(bucket) => bucket.try_take(),
            None => true,
        }
    }
}

/// A deployment's resources as a tree to match request paths against.
pub struct ResourceTree {
    nodes: Vec<ResourceNode>,
    root: Option<usize>,
}

pub struct ResourceNode {
    pub id: String,
    pub path: String,
    literal: HashMap<String, usize>,
    variable: Option<(String, usize)>,
    greedy: Option<(String, usize)>,
    pub methods: HashMap<String, Arc<Method>>,
}

/// A request matched to a resource and method.
pub struct RouteMatch<'a> {
    pub resource: &'a ResourceNode,
    pub method: &'a Arc<Method>,
    /// The method's own name (`GET`, or `ANY`).
    pub method_key: &'a str,
    pub path_parameters: BTreeMap<String, String>,
}

impl ResourceTree {
    pub fn build(resources: &BTreeMap<String, Resource>) -> ResourceTree {
        let mut nodes = Vec::with_capacity(resources.len());
        let mut index_of = HashMap::new();
        for resource in resources.values() {
            index_of.insert(resource.id.clone(), nodes.len());
            nodes.push(ResourceNode {
                id: resource.id.clone(),
                path: resource.path.clone(),
                literal: HashMap::new(),
                variable: None,
                greedy: None,
                methods: resource
                    .resource_methods
                    .iter()
                    .map(|(name, method)| (name.clone(), Arc::new(method.clone())))
                    .collect(),
            });
        }
        let mut root = None;
        for resource in resources.values() {
            let Some(&child) = index_of.get(&resource.id) else {
                continue;
            };
            let Some(parent_id) = &resource.parent_id else {
                root = Some(child);
                continue;
            };
            let Some(&parent) = index_of.get(parent_id) else {
                continue;
            };
            let part = resource.path_part.clone().unwrap_or_default();
            let node = &mut nodes[parent];
            match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                Some(inner) => match inner.strip_suffix('+') {
                    Some(name) => node.greedy = Some((name.to_string(), child)),
                    None => node.variable = Some((inner.to_string(), child)),
                },
                None => {
                    node.literal.insert(part, child);
                }
            }
        }
        ResourceTree { nodes, root }
    }

    /// The most specific resource for `segments` (decoded path segments
    /// after the stage) that has `method` or `ANY`: literal parts before
    /// variables before greedy `{name+}`.
    pub fn find(&self, segments: &[String], method: &str) -> Option<RouteMatch<'_>> {
        let root = self.root?;
        let mut params = Vec::new();
        let node = self.walk(root, segments, method, &mut params)?;
        let resource = &self.nodes[node];
        let (method_key, found) = resource
            .methods
            .get_key_value(method)
            .or_else(|| resource.methods.get_key_value("ANY"))?;
        Some(RouteMatch {
            resource,
            method: found,
            method_key: method_key.as_str(),
            path_parameters: params.into_iter().collect(),
        })
    }

    fn walk(
        &self,
        node: usize,
        segments: &[String],
        method: &str,
        params: &mut Vec<(String, String)>,
    ) -> Option<usize> {
        let current = &self.nodes[node];
        let Some((first, rest)) = segments.split_first() else {
            let has_method =
                current.methods.contains_key(method) || current.methods.contains_key("ANY");
            return has_method.then_some(node);
        };
        if let Some(&child) = current.literal.get(first.as_str()) {
            if let Some(found) = self.walk(child, rest, method, params) {
                return Some(found);
            }
        }
        if let Some((name, child)) = &current.variable {
            if !first.is_empty() {
                params.push((name.clone(), first.clone()));
                if let Some(found) = self.walk(*child, rest, method, params) {
                    return Some(found);
                }
                params.pop();
            }
        }
        if let Some((name, child)) = &current.greedy {
            let target = &self.nodes[*child];
            if target.methods.contains_key(method) || target.methods.contains_key("ANY") {
                params.push((name.clone(), segments.join("/")));
                return Some(*child);
            }
        }
        None
    }
}

/// An account's API keys (by value) with the plans each belongs to.
#[derive(Default)]
pub struct AccountKeys {
    pub by_value: HashMap<String, LiveKey>,
}

pub struct LiveKey {
    pub id: String,
    pub enabled: bool,
    pub plans: Vec<Arc<LivePlan>>,
}

pub struct LivePlan {
    pub id: String,
    /// (api id, stage name) pairs the plan admits.
    pub stages: HashSet<(String, String)>,
    /// (rate, burst).
    pub throttle: Option<(f64, u32)>,
    pub quota: Option<LiveQuota>,
}

#[derive(Debug, Clone, Copy)]
pub struct LiveQuota {
    pub limit: u64,
    pub period: QuotaPeriod,
    pub offset_days: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaPeriod {
    Day,
    Week,
    Month,
}

impl LiveQuota {
    /// Which quota period `at` falls in (a number that changes when the
    /// period does); weeks start on Monday, months on the 1st, each shifted
    /// by the plan's offset in days.
    pub fn period_id(&self, at: DateTime<Utc>) -> u64 {
        let shifted = at - chrono::Duration::days(self.offset_days);
        let days = shifted.timestamp().div_euclid(86_400);
        let id = match self.period {
            QuotaPeriod::Day => days,
            // 1970-01-01 was a Thursday; +3 puts boundaries on Mondays.
            QuotaPeriod::Week => (days + 3).div_euclid(7),
            QuotaPeriod::Month => i64::from(shifted.year()) * 12 + i64::from(shifted.month0()),
        };
        u64::try_from(id).unwrap_or(0)
    }
}

/// Requests used in the current quota period: the period id in the high 24
/// bits, the count in the low 40, so one atomic word holds both. The
/// account and region own the usage plan; `persisted` is the state last
/// written to the store (see [`RestApiService::flush_quota_usage`]).
pub struct QuotaCounter {
    state: AtomicU64,
    persisted: AtomicU64,
    pub account: String,
    pub region: String,
}

const COUNT_BITS: u32 = 40;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;

/// How a quota counter is stored (`usage-plan-quota`, id `{plan}/{key}`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct QuotaUsage {
    /// The period the count belongs to (low 24 bits of its id).
    pub period: u64,
    pub used: u64,
}

/// How often quota use is written to the store.
pub const QUOTA_FLUSH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

impl QuotaCounter {
    pub fn new(account: &str, region: &str) -> QuotaCounter {
        QuotaCounter::restored(account, region, QuotaUsage { period: 0, used: 0 })
    }

    /// A counter that continues a stored count.
    pub fn restored(account: &str, region: &str, usage: QuotaUsage) -> QuotaCounter {
        let state = ((usage.period & 0xFF_FFFF) << COUNT_BITS) | usage.used.min(COUNT_MASK);
        QuotaCounter {
            state: AtomicU64::new(state),
            persisted: AtomicU64::new(state),
            account: account.to_string(),
            region: region.to_string(),
        }
    }

    /// The count to store, if it changed since the last store.
    fn unpersisted(&self) -> Option<(u64, QuotaUsage)> {
        let state = self.state.load(Ordering::Acquire);
        (state != self.persisted.load(Ordering::Acquire)).then_some((
            state,
            QuotaUsage {
                period: state >> COUNT_BITS,
                used: state & COUNT_MASK,
            },
        ))
    }

    /// Counts one request if the period's `limit` is not reached.
    pub fn try_use(&self, period_id: u64, limit: u64) -> bool {
        let period_tag = period_id & 0xFF_FFFF;
        let mut current = self.state.load(Ordering::Acquire);
        loop {
            let (tag, used) = (current >> COUNT_BITS, current & COUNT_MASK);
            let used = if tag == period_tag { used } else { 0 };
            if used >= limit {
                return false;
            }
            let next = (period_tag << COUNT_BITS) | (used + 1).min(COUNT_MASK);
            match self.state.compare_exchange_weak(
                current,
                next,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(actual) => current = actual,
            }
        }
    }

    /// Requests counted in `period_id` so far.
    pub fn used(&self, period_id: u64) -> u64 {
        let current = self.state.load(Ordering::Acquire);
        if current >> COUNT_BITS == period_id & 0xFF_FFFF {
            current & COUNT_MASK
        } else {
            0
        }
    }
}

fn build_api(
    record: &RestApiRecord,
    account: &str,
    region: &str,
    stages: Vec<Stage>,
    deployments: &HashMap<String, DeploymentRecord>,
) -> LiveApi {
    let mut live_stages = HashMap::new();
    for stage in stages {
        let Some(deployment) = deployments.get(&stage.deployment_id) else {
            continue;
        };
        live_stages.insert(
            stage.stage_name.clone(),
            Arc::new(LiveStage {
                name: stage.stage_name.clone(),
                deployment_id: stage.deployment_id.clone(),
                variables: stage.variables.clone(),
                tree: ResourceTree::build(&deployment.resources),
                throttles: StageThrottles::from_stage(&stage),
                access_log: stage.access_log_settings.clone(),
            }),
        );
    }
    LiveApi {
        account: account.to_string(),
        region: region.to_string(),
        id: record.api.id.clone(),
        name: record.api.name.clone(),
        binary_media_types: record.api.binary_media_types.clone(),
        disable_execute_api_endpoint: record.api.disable_execute_api_endpoint,
        stages: live_stages,
    }
}

fn build_keys(keys: &[ApiKey], plans: &[UsagePlanRecord]) -> AccountKeys {
    let live_plans: Vec<(Vec<String>, Arc<LivePlan>)> = plans
        .iter()
        .map(|record| {
            let plan = &record.plan;
            let throttle = plan.throttle.as_ref().and_then(|t| {
                let rate = t.rate_limit?;
                let burst = match t.burst_limit {
                    Some(burst) => u32::try_from(burst.max(0)).unwrap_or(u32::MAX),
                    None => u32::try_from(crate::throttle::saturating_u64(rate.ceil()))
                        .unwrap_or(u32::MAX),
                };
                Some((rate, burst))
            });
            let quota = plan.quota.as_ref().and_then(|q| {
                let period = match q.period.as_deref()? {
                    "DAY" => QuotaPeriod::Day,
                    "WEEK" => QuotaPeriod::Week,
                    "MONTH" => QuotaPeriod::Month,
                    _ => return None,
                };
                Some(LiveQuota {
                    limit: u64::try_from(q.limit?).unwrap_or(0),
                    period,
                    offset_days: q.offset.unwrap_or(0),
                })
            });
            let stages = plan
                .api_stages
                .iter()
                .filter_map(|s| Some((s.api_id.clone()?, s.stage.clone()?)))
                .collect();
            (
                record.key_ids.clone(),
                Arc::new(LivePlan {
                    id: plan.id.clone(),
                    stages,
                    throttle,
                    quota,
                }),
            )
        })
        .collect();
    let mut by_value = HashMap::new();
    for key in keys {
        let Some(value) = &key.value else { continue };
        by_value.insert(
            value.clone(),
            LiveKey {
                id: key.id.clone(),
                enabled: key.enabled,
                plans: live_plans
                    .iter()
                    .filter(|(ids, _)| ids.contains(&key.id))
                    .map(|(_, plan)| plan.clone())
                    .collect(),
            },
        );
    }
    AccountKeys { by_value }
}

/// (api id, rest) of a document id `{api-id}/{rest}`.
fn api_of(id: &str) -> Option<(&str, &str)> {
    id.split_once('/')
}

async fn all_documents<T: DeserializeOwned>(
    service: &RestApiService,
    kind: &str,
) -> RestResult<Vec<(DocumentKey, T)>> {
    let mut out = Vec::new();
    for document in service.store.list_all_documents(kind).await? {
        match serde_json::from_value(document.doc) {
            Ok(value) => out.push((document.key, value)),
            Err(err) => {
                tracing::warn!(kind, id = %document.key.id, error = %err, "skipping unreadable document")
            }
        }
    }
    Ok(out)
}

/// Loads every REST API, stage, deployment, key and plan.
pub async fn load_all(service: &RestApiService) -> RestResult<()> {
    let apis: Vec<(DocumentKey, RestApiRecord)> = all_documents(service, KIND_REST_API).await?;
    let stages: Vec<(DocumentKey, Stage)> = all_documents(service, KIND_STAGE).await?;
    let deployments: Vec<(DocumentKey, DeploymentRecord)> =
        all_documents(service, KIND_DEPLOYMENT).await?;
    let mut stages_by_api: HashMap<String, Vec<Stage>> = HashMap::new();
    for (key, stage) in stages {
        if let Some((api_id, _)) = api_of(&key.id) {
            stages_by_api
                .entry(api_id.to_string())
                .or_default()
                .push(stage);
        }
    }
    let mut deployments_by_api: HashMap<String, HashMap<String, DeploymentRecord>> = HashMap::new();
    for (key, deployment) in deployments {
        if let Some((api_id, deployment_id)) = api_of(&key.id) {
            deployments_by_api
                .entry(api_id.to_string())
                .or_default()
                .insert(deployment_id.to_string(), deployment);
        }
    }
    for (key, record) in apis {
        let live = build_api(
            &record,
            &key.account,
            &key.region,
            stages_by_api.remove(&key.id).unwrap_or_default(),
            &deployments_by_api.remove(&key.id).unwrap_or_default(),
        );
        service.live.apis.insert(key.id.clone(), Arc::new(live));
    }
    let keys: Vec<(DocumentKey, ApiKey)> = all_documents(service, KIND_API_KEY).await?;
    let plans: Vec<(DocumentKey, UsagePlanRecord)> =
        all_documents(service, KIND_USAGE_PLAN).await?;
    let mut grouped: HashMap<(String, String), (Vec<ApiKey>, Vec<UsagePlanRecord>)> =
        HashMap::new();
    for (key, api_key) in keys {
        grouped
            .entry((key.account, key.region))
            .or_default()
            .0
            .push(api_key);
    }
    for (key, plan) in plans {
        grouped
            .entry((key.account, key.region))
            .or_default()
            .1
            .push(plan);
    }
    let usage: Vec<(DocumentKey, QuotaUsage)> = all_documents(service, KIND_QUOTA_USAGE).await?;
    for (key, usage) in usage {
        if let Some((plan_id, key_id)) = key.id.split_once('/') {
            service.live.quota_used.insert(
                (plan_id.to_string(), key_id.to_string()),
                Arc::new(QuotaCounter::restored(&key.account, &key.region, usage)),
            );
        }
    }
    for (scope, (keys, plans)) in grouped {
        service
            .live
            .keys
            .insert(scope, Arc::new(build_keys(&keys, &plans)));
    }
    Ok(())
}

impl RestApiService {
    /// Rebuilds one API's live entry from the store (or drops it when the
    /// API is gone). A failure leaves the previous entry and is logged.
    pub async fn refresh_api(&self, account: &str, region: &str, api_id: &str) {
        if let Err(err) = self.try_refresh_api(account, region, api_id).await {
            tracing::error!(api_id, error = %err, "could not refresh a REST API's live view");
        }
    }

    async fn try_refresh_api(&self, account: &str, region: &str, api_id: &str) -> RestResult<()> {
        let _rebuilding = self.live.rebuilding.lock().await;
        let key = DocumentKey::new(account, region, KIND_REST_API, api_id);
        let Some(doc) = self.store.get_document(&key).await? else {
            self.live.apis.remove(api_id);
            return Ok(());
        };
        let record: RestApiRecord = serde_json::from_value(doc)?;
        let prefix = format!("{api_id}/");
        let stages: Vec<(String, Stage)> = self
            .store
            .list_typed(account, region, KIND_STAGE, &prefix)
            .await?;
        let mut deployments = HashMap::new();
        for (_, stage) in &stages {
            if deployments.contains_key(&stage.deployment_id) {
                continue;
            }
            let key = DocumentKey::new(
                account,
                region,
                KIND_DEPLOYMENT,
                format!("{api_id}/{}", stage.deployment_id),
            );
            if let Some(doc) = self.store.get_document(&key).await? {
                deployments.insert(
                    stage.deployment_id.clone(),
                    serde_json::from_value::<DeploymentRecord>(doc)?,
                );
            }
        }
        let live = build_api(
            &record,
            account,
            region,
            stages.into_iter().map(|(_, s)| s).collect(),
            &deployments,
        );
        self.live.apis.insert(api_id.to_string(), Arc::new(live));
        Ok(())
    }

    /// Writes the quota counts that changed since the last flush, so a
    /// restart continues the period's count (at most one flush interval of
    /// use can be lost with the process).
    pub async fn flush_quota_usage(&self) {
        let dirty: Vec<((String, String), Arc<QuotaCounter>)> = self
            .live
            .quota_used
            .iter()
            .filter(|entry| entry.value().unpersisted().is_some())
            .map(|entry| (entry.key().clone(), entry.value().clone()))
            .collect();
        for ((plan_id, key_id), counter) in dirty {
            let Some((state, usage)) = counter.unpersisted() else {
                continue;
            };
            let key = DocumentKey::new(
                &counter.account,
                &counter.region,
                KIND_QUOTA_USAGE,
                format!("{plan_id}/{key_id}"),
            );
            let stored = match serde_json::to_value(usage) {
                Ok(doc) => self
                    .store
                    .put_document(&key, &doc)
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match stored {
                Ok(()) => counter.persisted.store(state, Ordering::Release),
                Err(error) => {
                    tracing::warn!(
                        plan_id,
                        key_id,
                        error,
                        "could not store usage-plan quota use"
                    )
                }
            }
        }
    }

    /// Rebuilds an account's keys and plans from the store.
    pub async fn refresh_keys(&self, account: &str, region: &str) {
        let _rebuilding = self.live.rebuilding.lock().await;
        let loaded = async {
            let keys: Vec<(String, ApiKey)> = self
                .store
                .list_typed(account, region, KIND_API_KEY, "")
                .await?;
            let plans: Vec<(String, UsagePlanRecord)> = self
                .store
                .list_typed(account, region, KIND_USAGE_PLAN, "")
                .await?;
            RestResult::Ok((keys, plans))
        }
        .await;
        match loaded {
            Ok((keys, plans)) => {
                let keys: Vec<ApiKey> = keys.into_iter().map(|(_, k)| k).collect();
                let plans: Vec<UsagePlanRecord> = plans.into_iter().map(|(_, p)| p).collect();
                // Plan throttles restart from full buckets with new settings.
                self.live
                    .plan_buckets
                    .retain(|(plan_id, _), _| !plans.iter().any(|p| &p.plan.id == plan_id));
                self.live.keys.insert(
                    (account.to_string(), region.to_string()),
                    Arc::new(build_keys(&keys, &plans)),
                );
            }
            Err(err) => {
                tracing::error!(account, error = %err, "could not refresh API keys' live view")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rest_api::model::{AuthorizationType, Method};

    fn method(name: &str) -> Method {
        Method {
            http_method: name.into(),
            authorization_type: AuthorizationType::None,
            authorizer_id: None,
            api_key_required: false,
            request_validator_id: None,
            operation_name: None,
            request_parameters: BTreeMap::new(),
            request_models: BTreeMap::new(),
            method_responses: BTreeMap::new(),
            method_integration: None,
            authorization_scopes: Vec::new(),
        }
    }

    fn resource(
        id: &str,
        parent: Option<&str>,
        part: Option<&str>,
        path: &str,
        methods: &[&str],
    ) -> Resource {
        Resource {
            id: id.into(),
            parent_id: parent.map(Into::into),
            path_part: part.map(Into::into),
            path: path.into(),
            resource_methods: methods.iter().map(|m| (m.to_string(), method(m))).collect(),
        }
    }

    fn tree() -> ResourceTree {
        let resources = [
            resource("root", None, None, "/", &["GET"]),
            resource("items", Some("root"), Some("items"), "/items", &["GET"]),
            resource("item", Some("items"), Some("{id}"), "/items/{id}", &["GET"]),
            resource(
                "special",
                Some("items"),
                Some("special"),
                "/items/special",
                &["GET"],
            ),
            resource(
                "proxy",
                Some("root"),
                Some("{proxy+}"),
                "/{proxy+}",
                &["ANY"],
            ),
        ];
        ResourceTree::build(&resources.into_iter().map(|r| (r.id.clone(), r)).collect())
    }

    fn segments(path: &str) -> Vec<String> {
        path.split('/')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    }

    #[test]
    fn literal_beats_variable_beats_greedy() {
        let tree = tree();
        let m = tree.find(&segments("/items/special"), "GET").unwrap();
        assert_eq!(m.resource.path, "/items/special");
        let m = tree.find(&segments("/items/7"), "GET").unwrap();
        assert_eq!(m.resource.path, "/items/{id}");
        assert_eq!(m.path_parameters["id"], "7");
        let m = tree.find(&segments("/a/b/c"), "POST").unwrap();
        assert_eq!(m.resource.path, "/{proxy+}");
        assert_eq!(m.path_parameters["proxy"], "a/b/c");
        assert_eq!(m.method_key, "ANY");
        let m = tree.find(&segments("/"), "GET").unwrap();
        assert_eq!(m.resource.path, "/");
    }

    #[test]
    fn a_method_the_specific_resource_lacks_falls_back_to_greedy() {
        let tree = tree();
        let m = tree.find(&segments("/items/7"), "DELETE").unwrap();
        assert_eq!(m.resource.path, "/{proxy+}");
        assert_eq!(m.path_parameters["proxy"], "items/7");
    }

    #[test]
    fn quota_counts_per_period() {
        let counter = QuotaCounter::new("000000000000", "us-east-1");
        assert!(counter.try_use(10, 2));
        assert!(counter.try_use(10, 2));
        assert!(!counter.try_use(10, 2));
        assert_eq!(counter.used(10), 2);
        assert!(counter.try_use(11, 2));
        assert_eq!(counter.used(11), 1);
    }

    #[test]
    fn week_periods_start_on_monday() {
        let quota = LiveQuota {
            limit: 1,
            period: QuotaPeriod::Week,
            offset_days: 0,
        };
        let sunday = DateTime::parse_from_rfc3339("2026-11-29T23:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let monday = DateTime::parse_from_rfc3339("2026-11-30T01:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let tuesday = DateTime::parse_from_rfc3339("2026-12-01T01:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_ne!(quota.period_id(sunday), quota.period_id(monday));
        assert_eq!(quota.period_id(monday), quota.period_id(tuesday));
    }
}
