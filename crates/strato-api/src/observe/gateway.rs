//! The gateway's request metrics, recorded as CloudWatch's AWS/ApiGateway
//! series: REST APIs by `ApiName` (+`Stage`, +`Method`+`Resource`), HTTP
//! APIs by `ApiId` (+`Stage`, +`Route`).

use std::sync::Arc;

use strato_gateway::metrics::{ApiMetricsSink, ApiRequestMetric};
use strato_observe::{ApiRequestSample, Observe};

/// Which kind of API a sink reports for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiKind {
    Rest,
    Http,
}

/// An [`ApiMetricsSink`] over the metrics store; never blocks.
pub struct GatewayMetrics {
    observe: Arc<Observe>,
    kind: ApiKind,
}

impl GatewayMetrics {
    pub fn new(observe: Arc<Observe>, kind: ApiKind) -> Arc<GatewayMetrics> {
        Arc::new(GatewayMetrics { observe, kind })
    }
}

impl ApiMetricsSink for GatewayMetrics {
    fn record(&self, m: &ApiRequestMetric<'_>) {
        let rest = self.kind == ApiKind::Rest;
        self.observe.record_api_request(ApiRequestSample {
            account: m.account.to_string(),
            region: m.region.to_string(),
            api_id: m.api_id.to_string(),
            api_name: rest.then(|| m.api_name.to_string()),
            stage: m.stage.to_string(),
            method: rest.then(|| m.method.to_string()),
            resource: rest.then(|| m.resource.to_string()),
            route: (!rest).then(|| m.resource.to_string()),
            status: m.status,
            latency_ms: m.latency.as_secs_f64() * 1000.0,
            integration_latency_ms: m.integration_latency.map(|d| d.as_secs_f64() * 1000.0),
            at_ms: chrono::Utc::now().timestamp_millis(),
        });
    }
}
