//! What a queued asynchronous event runs ([`AsyncTargets`] for the engine):
//! the function version its qualifier names now, resolved from the
//! catalog's in-memory view exactly as Invoke resolves it, with the
//! qualifier's `EventInvokeConfig` and the function's dead-letter queue.

use std::sync::Arc;

use async_trait::async_trait;
use strato_engine::async_invoke::{AsyncTarget, AsyncTargetError, AsyncTargets};
use strato_model::{ErrorCode, EventInvokeConfig, FunctionRef, Qualifier, LATEST};
use strato_store::FunctionCatalog;

/// Resolves queued events from the function catalog.
pub struct CatalogAsyncTargets {
    catalog: Arc<FunctionCatalog>,
}

impl CatalogAsyncTargets {
    pub fn new(catalog: Arc<FunctionCatalog>) -> Self {
        CatalogAsyncTargets { catalog }
    }
}

#[async_trait]
impl AsyncTargets for CatalogAsyncTargets {
    async fn resolve(
        &self,
        account: &str,
        region: &str,
        function: &str,
        qualifier: Option<&str>,
    ) -> Result<AsyncTarget, AsyncTargetError> {
        let gone = || {
            AsyncTargetError::Gone(strato_model::arn::qualified_function_arn(
                region, account, function, None,
            ))
        };
        let parsed = match qualifier {
            Some(q) => Some(Qualifier::parse(q).map_err(|_| gone())?),
            None => None,
        };
        let record = self
            .catalog
            .get(account, region, function)
            .await
            .map_err(|e| AsyncTargetError::NotReady(e.to_string()))?
            .ok_or_else(gone)?;
        let r = FunctionRef {
            name: function.to_string(),
            qualifier: parsed,
            account: Some(account.to_string()),
            region: Some(region.to_string()),
        };
        let target = super::invoke::invocation_target(&record, account, region, &r).map_err(
            |e| match e.code {
                ErrorCode::ResourceNotFoundException => {
                    AsyncTargetError::Gone(e.message.to_string())
                }
                _ => AsyncTargetError::NotReady(e.message.to_string()),
            },
        )?;
        let settings = record
            .event_invoke_configs
            .get(qualifier.unwrap_or(LATEST))
            .cloned()
            .unwrap_or_else(EventInvokeConfig::default);
        let dead_letter_arn = target.config.dead_letter_target_arn.clone();
        Ok(AsyncTarget {
            target,
            settings,
            dead_letter_arn,
            recursive_loop: record.recursive_loop,
        })
    }
}
