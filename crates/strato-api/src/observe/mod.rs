//! CloudWatch Logs, CloudWatch metrics, `/metrics` for Prometheus and the
//! cost report, over Strato's observability stores (`strato-observe`).

pub mod cloudwatch;
pub mod gateway;
pub mod logs;
pub mod put_metric_data;
pub mod report;
