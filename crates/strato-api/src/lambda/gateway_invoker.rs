//! The gateway's [`LambdaInvoker`]: API Gateway integrations and function
//! URLs invoke functions through the same resolution as Lambda's Invoke
//! ([`super::invoke::invocation_target`]), after the function's resource
//! policy has admitted the caller, as on AWS.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use strato_engine::async_invoke::{QueuedEvent, ServiceEvent, ServiceEventError, ServiceEvents};
use strato_engine::{Engine, EngineError, InvokeRequest, InvokeResponse, InvokeTarget};
use strato_gateway::invoker::{
    GatewayInvocation, InvocationOutcome, InvokeAction, InvokeFailure, InvokePrincipal,
    LambdaInvoker,
};
use strato_model::policy::{Policy, PolicyRequest, RequestPrincipal};
use strato_model::response_stream::StreamedPart;
use strato_model::{ErrorCode, FunctionRecord, FunctionRef, Qualifier};
use strato_store::FunctionCatalog;

/// Invokes functions for the gateway from the catalog's in-memory view.
pub struct EngineInvoker {
    catalog: Arc<FunctionCatalog>,
    engine: Arc<Engine>,
}

impl EngineInvoker {
    pub fn new(catalog: Arc<FunctionCatalog>, engine: Arc<Engine>) -> EngineInvoker {
        EngineInvoker { catalog, engine }
    }
}

/// The policy that governs an invocation through `r`: a version's or
/// alias's own policy when the ARN is qualified with one, the function's
/// otherwise.
pub(super) fn governing_policy<'a>(
    record: &'a FunctionRecord,
    r: &FunctionRef,
) -> Option<&'a Policy> {
    match &r.qualifier {
        None | Some(Qualifier::Latest) => Some(&record.policy),
        Some(q) => record.qualified_policies.get(&q.as_string()),
    }
}

/// Whether the function's resource policy (or, for a caller of the
/// function's own account, its identity) admits the invocation.
fn admitted(
    record: &FunctionRecord,
    r: &FunctionRef,
    resource: &str,
    request: &GatewayInvocation,
) -> bool {
    let principal = match &request.principal {
        InvokePrincipal::Service(name) => RequestPrincipal::Service(name),
        // Strato's access keys act as their account's administrator: the
        // identity policy of a same-account caller allows everything.
        InvokePrincipal::Account(account) if *account == record.account => return true,
        InvokePrincipal::Account(account) => RequestPrincipal::Account(account),
        InvokePrincipal::Anonymous => RequestPrincipal::Anonymous,
    };
    let Some(policy) = governing_policy(record, r) else {
        return false;
    };
    let ask = |action: &str| {
        let (auth_type, via_url) = match request.action {
            InvokeAction::InvokeFunction => (None, false),
            InvokeAction::InvokeFunctionUrl { auth_type } => (Some(auth_type.as_str()), true),
        };
        policy.allows(&PolicyRequest {
            principal: principal.clone(),
            action,
            resource,
            source_arn: request.source_arn.as_deref(),
            source_account: request.source_account.as_deref(),
            source_owner: None,
            function_url_auth_type: auth_type,
            invoked_via_function_url: via_url,
        })
    };
    match request.action {
        InvokeAction::InvokeFunction => ask("lambda:InvokeFunction"),
        // Function URLs need both permissions (AWS, since October 2025).
        InvokeAction::InvokeFunctionUrl { .. } => {
            ask("lambda:InvokeFunctionUrl") && ask("lambda:InvokeFunction")
        }
    }
}

impl EngineInvoker {
    /// The version `request` runs, once its caller is admitted.
    async fn target(&self, request: &GatewayInvocation) -> Result<InvokeTarget, InvokeFailure> {
        let r = FunctionRef::parse(&request.function_arn, 256)
            .map_err(|_| InvokeFailure::InvalidArn(request.function_arn.clone()))?;
        let (Some(account), Some(region)) = (r.account.clone(), r.region.clone()) else {
            return Err(InvokeFailure::InvalidArn(request.function_arn.clone()));
        };
        let record = self
            .catalog
            .get(&account, &region, &r.name)
            .await
            .map_err(|e| InvokeFailure::Service(e.to_string()))?
            .ok_or_else(|| InvokeFailure::FunctionNotFound(request.function_arn.clone()))?;
        let resource = strato_model::arn::qualified_function_arn(
            &region,
            &account,
            &r.name,
            r.qualifier.as_ref(),
        );
        if !admitted(&record, &r, &resource, request) {
            let action = match request.action {
                InvokeAction::InvokeFunction => "lambda:InvokeFunction",
                InvokeAction::InvokeFunctionUrl { .. } => "lambda:InvokeFunctionUrl",
            };
            return Err(InvokeFailure::AccessDenied(format!(
                "no resource-based policy allows the {action} action on resource: {resource}"
            )));
        }
        let target = super::invoke::invocation_target(&record, &account, &region, &r).map_err(
            |e| match e.code {
                ErrorCode::ResourceNotFoundException => {
                    InvokeFailure::FunctionNotFound(request.function_arn.clone())
                }
                _ => InvokeFailure::NotReady(e.message.to_string()),
            },
        )?;
        Ok(target)
    }
}

fn invoke_failure(e: EngineError) -> InvokeFailure {
    match e.as_throttle() {
        Some(throttle) => {
            if !matches!(e, EngineError::Throttled(_)) {
                tracing::warn!(error = %e, "gateway invocation refused");
            }
            InvokeFailure::Throttled(throttle.reason().to_string())
        }
        None => InvokeFailure::Service(e.to_string()),
    }
}

fn gateway_request(payload: Bytes) -> InvokeRequest {
    InvokeRequest {
        payload,
        client_context: None,
        cognito_identity: None,
        tail_log: false,
        request_id: None,
        trace_header: None,
    }
}

fn outcome(result: InvokeResponse) -> InvocationOutcome {
    InvocationOutcome {
        payload: result.payload,
        function_error: result.function_error.map(str::to_string),
        executed_version: result.executed_version,
        request_id: result.request_id,
    }
}

#[async_trait]
impl LambdaInvoker for EngineInvoker {
    async fn invoke(&self, request: GatewayInvocation) -> Result<InvocationOutcome, InvokeFailure> {
        let target = self.target(&request).await?;
        self.engine
            .invoke(target, gateway_request(request.payload))
            .await
            .map(outcome)
            .map_err(invoke_failure)
    }

    async fn invoke_streaming(
        &self,
        request: GatewayInvocation,
        stream: tokio::sync::mpsc::Sender<StreamedPart>,
    ) -> Result<InvocationOutcome, InvokeFailure> {
        let target = self.target(&request).await?;
        self.engine
            .invoke_streaming(target, gateway_request(request.payload), stream)
            .await
            .map(outcome)
            .map_err(invoke_failure)
    }
}

/// Built-in services (SNS, EventBridge, S3) invoke functions asynchronously
/// as their service principal: the function's resource policy must admit
/// the principal and source, as on AWS; the event then waits in the
/// function's durable queue like an `Event` Invoke's.
#[async_trait]
impl ServiceEvents for EngineInvoker {
    async fn invoke_event(&self, event: ServiceEvent) -> Result<String, ServiceEventError> {
        let (account, region, r) = self.admit(&event).await?;
        let hop = strato_model::recursion::next_hop(
            event.trace_header.as_deref(),
            &strato_model::arn::function_arn(&region, &account, &r.name),
        );
        let request_id = uuid::Uuid::new_v4().to_string();
        let queued = QueuedEvent {
            request_id: request_id.clone(),
            account,
            region,
            function: r.name.clone(),
            qualifier: r.qualifier.as_ref().map(Qualifier::as_string),
            client_context: None,
            invocations: 0,
            backoff_ms: 0,
            trace_header: Some(hop.trace_header),
            lineage_count: hop.count,
        };
        self.engine
            .enqueue_event(queued, event.payload)
            .await
            .map_err(|e| ServiceEventError::Unavailable(e.to_string()))?;
        Ok(request_id)
    }

    async fn authorize(&self, event: &ServiceEvent) -> Result<(), ServiceEventError> {
        self.admit(event).await.map(|_| ())
    }

    fn role_allows(&self, role_use: &strato_engine::RoleUse<'_>) -> bool {
        self.engine.role_allows(role_use)
    }
}

/// Who a service event's principal is to the resource policy: an AWS
/// service (`sns.amazonaws.com`), or, when a service acts with a role
/// (EventBridge Scheduler invokes as its target's `RoleArn`), the role's
/// account, which is admitted as any caller of that account is.
fn service_principal(principal: &str) -> InvokePrincipal {
    match principal
        .strip_prefix("arn:aws:iam::")
        .and_then(|rest| rest.split_once(":role/"))
    {
        Some((account, _role)) => InvokePrincipal::Account(account.to_string()),
        None => InvokePrincipal::Service(principal.to_string()),
    }
}

impl EngineInvoker {
    /// The function a service event names, if its policy admits the
    /// service: (account, region, reference).
    async fn admit(
        &self,
        event: &ServiceEvent,
    ) -> Result<(String, String, FunctionRef), ServiceEventError> {
        let invalid = || ServiceEventError::InvalidArn(event.function_arn.clone());
        let r = FunctionRef::parse(&event.function_arn, 256).map_err(|_| invalid())?;
        let (Some(account), Some(region)) = (r.account.clone(), r.region.clone()) else {
            return Err(invalid());
        };
        let record = self
            .catalog
            .get(&account, &region, &r.name)
            .await
            .map_err(|e| ServiceEventError::Unavailable(e.to_string()))?
            .filter(|record| record.resolve(r.qualifier.as_ref()).is_some())
            .ok_or_else(|| ServiceEventError::FunctionNotFound(event.function_arn.clone()))?;
        let resource = strato_model::arn::qualified_function_arn(
            &region,
            &account,
            &r.name,
            r.qualifier.as_ref(),
        );
        let request = GatewayInvocation {
            function_arn: event.function_arn.clone(),
            principal: service_principal(&event.principal),
            action: InvokeAction::InvokeFunction,
            source_arn: event.source_arn.clone(),
            source_account: event.source_account.clone(),
            payload: Bytes::new(),
        };
        if !admitted(&record, &r, &resource, &request) {
            return Err(ServiceEventError::AccessDenied(format!(
                "no resource-based policy allows the lambda:InvokeFunction action on resource: {resource} for {}",
                event.principal
            )));
        }
        Ok((account, region, r))
    }
}
