//! Batches run through the engine: the mapping's function is resolved as a
//! queued asynchronous event's is ([`AsyncTargets`], from the catalog's
//! in-memory view), then invoked synchronously under the function's
//! concurrency, so a full function throttles its mappings' batches. Each
//! poll round first asks whether the function's execution role may poll
//! the source, through [`Engine::role_allows`] (the seam destinations use).

use std::sync::Arc;

use bytes::Bytes;

use super::poller::{BatchInvokeError, BatchResponse, BatchTarget, PollerSpec};
use crate::async_invoke::{AsyncTarget, AsyncTargetError, AsyncTargets};
use crate::{Engine, InvokeRequest, RoleUse};

/// The engine as the pollers' [`BatchTarget`].
pub struct EngineBatchTarget {
    engine: Arc<Engine>,
    targets: Arc<dyn AsyncTargets>,
}

impl EngineBatchTarget {
    pub fn new(engine: Arc<Engine>, targets: Arc<dyn AsyncTargets>) -> EngineBatchTarget {
        EngineBatchTarget { engine, targets }
    }

    /// The function version the mapping invokes now.
    async fn resolve(&self, spec: &PollerSpec) -> Result<AsyncTarget, AsyncTargetError> {
        self.targets
            .resolve(
                &spec.account,
                &spec.region,
                &spec.function,
                spec.qualifier.as_deref(),
            )
            .await
    }
}

#[async_trait::async_trait]
impl BatchTarget for EngineBatchTarget {
    async fn invoke(
        &self,
        spec: &PollerSpec,
        event: Bytes,
    ) -> Result<BatchResponse, BatchInvokeError> {
        let resolved = self
            .resolve(spec)
            .await
            .map_err(|e| BatchInvokeError::Unavailable(e.to_string()))?;
        let request = InvokeRequest {
            payload: event,
            ..InvokeRequest::default()
        };
        match self.engine.invoke(resolved.target, request).await {
            Ok(response) => Ok(BatchResponse {
                payload: response.payload,
                function_error: response.function_error.is_some(),
                executed_version: response.executed_version,
            }),
            Err(e) if e.as_throttle().is_some() => Err(BatchInvokeError::Throttled),
            Err(e) => Err(BatchInvokeError::Unavailable(e.to_string())),
        }
    }

    fn reserved_concurrency(&self, spec: &PollerSpec) -> Option<u32> {
        self.engine
            .concurrency()
            .reserved(&spec.account, &spec.region, &spec.function)
    }

    async fn role_refusal(&self, spec: &PollerSpec, is_stream: bool) -> Option<String> {
        // A function that does not resolve now fails its batch's
        // invocation instead, as before.
        let resolved = self.resolve(spec).await.ok()?;
        let config = &resolved.target.config;
        super::role_refusal(&spec.source_arn, is_stream, |action| {
            self.engine.role_allows(&RoleUse {
                service: "lambda.amazonaws.com",
                role: &config.role,
                session: &config.name,
                action,
                resource: &spec.source_arn,
            })
        })
    }
}
