//! What the gateway reports per request, for the metrics store
//! (`AWS/ApiGateway`'s Count, 4XXError, 5XXError, Latency,
//! IntegrationLatency by ApiId/ApiName, Stage, Method, Resource/Route).

use std::time::Duration;

/// One served request.
#[derive(Debug, Clone)]
pub struct ApiRequestMetric<'a> {
    /// The account and region that own the API.
    pub account: &'a str,
    pub region: &'a str,
    pub api_id: &'a str,
    pub api_name: &'a str,
    pub stage: &'a str,
    pub method: &'a str,
    /// The REST resource path or the HTTP API route key.
    pub resource: &'a str,
    pub status: u16,
    /// From the request's arrival to the response.
    pub latency: Duration,
    /// Time spent in the integration, if one was called.
    pub integration_latency: Option<Duration>,
}

/// Receives request metrics; the metrics store implements it.
pub trait ApiMetricsSink: Send + Sync + 'static {
    fn record(&self, metric: &ApiRequestMetric<'_>);
}

/// Discards metrics (until a metrics store is wired in).
pub struct NoMetrics;

impl ApiMetricsSink for NoMetrics {
    fn record(&self, _metric: &ApiRequestMetric<'_>) {}
}
