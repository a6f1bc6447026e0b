//! The gateway's [`LambdaInvoker`]: API Gateway integrations and function
//! URLs invoke functions through the same resolution as Lambda's Invoke
//! ([`super::invoke::invocation_target`]), after IAM's evaluator has
//! admitted the caller with the function's resource policy, as on AWS.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use strato_engine::async_invoke::{QueuedEvent, ServiceEvent, ServiceEventError, ServiceEvents};
use strato_engine::{Engine, EngineError, InvokeRequest, InvokeResponse, InvokeTarget};
use strato_gateway::invoker::{
    GatewayInvocation, InvocationOutcome, InvokeAction, InvokeFailure, InvokePrincipal,
    LambdaInvoker,
};
use strato_iam::policy::RequestContext;
use strato_iam::{Accessor, Iam, ResourceAccess};
use strato_model::response_stream::StreamedPart;
use strato_model::{ErrorCode, FunctionRecord, FunctionRef, Qualifier};
use strato_store::FunctionCatalog;

/// Invokes functions for the gateway from the catalog's in-memory view.
pub struct EngineInvoker {
    catalog: Arc<FunctionCatalog>,
    engine: Arc<Engine>,
    iam: Arc<Iam>,
}

impl EngineInvoker {
    pub fn new(catalog: Arc<FunctionCatalog>, engine: Arc<Engine>, iam: Arc<Iam>) -> EngineInvoker {
        EngineInvoker {
            catalog,
            engine,
            iam,
        }
    }
}

/// Who asks, as IAM sees it.
fn accessor<'a>(principal: &'a InvokePrincipal) -> Accessor<'a> {
    match principal {
        InvokePrincipal::Service(name) => Accessor::Service(name),
        InvokePrincipal::Caller {
            account,
            access_key_id,
        } => Accessor::Key {
            access_key_id,
            account,
        },
        InvokePrincipal::Anonymous => Accessor::Anonymous,
    }
}

/// Whether the function's resource policy (with, for a caller of an
/// account, its identity policies, as for any request on the function)
/// admits the invocation: IAM's one decision ([`Iam::authorize_as`]) on
/// the policy that comes with the resolved record (no lookup, no lock).
/// Function URLs need both `lambda:InvokeFunctionUrl` and
/// `lambda:InvokeFunction` (AWS, since October 2025).
fn admit(
    iam: &Iam,
    record: &FunctionRecord,
    r: &FunctionRef,
    who: &Accessor<'_>,
    request: &Admission<'_>,
) -> Result<(), String> {
    // A function's `$LATEST` is decided as the function, whose policy
    // statements name it unqualified.
    let resource = strato_model::arn::qualified_function_arn(
        &record.region,
        &record.account,
        &r.name,
        r.qualifier.as_ref().filter(|q| **q != Qualifier::Latest),
    );
    let policy = record
        .policy_for(r.qualifier.as_ref())
        .filter(|p| !p.is_empty())
        .map(|p| p.text());
    let ask = |action: &str| {
        let mut context = RequestContext::new();
        if let Some(source) = request.source_arn {
            context.insert("aws:SourceArn", source);
        }
        if let Some(account) = request.source_account {
            context.insert("aws:SourceAccount", account);
        }
        if let Some(auth_type) = request.url_auth_type {
            context.insert("lambda:FunctionUrlAuthType", auth_type);
        }
        context.insert(
            "lambda:InvokedViaFunctionUrl",
            if request.url_auth_type.is_some() {
                "true"
            } else {
                "false"
            },
        );
        iam.authorize_as(
            who,
            &ResourceAccess {
                action,
                resource: &resource,
                owner: &record.account,
                policy,
            },
            context,
        )
        .map_err(|denied| denied.message)
    };
    if request.url_auth_type.is_some() {
        ask("lambda:InvokeFunctionUrl")?;
    }
    ask("lambda:InvokeFunction")
}

/// What an invocation is asked for besides who asks.
struct Admission<'a> {
    source_arn: Option<&'a str>,
    source_account: Option<&'a str>,
    /// `lambda:FunctionUrlAuthType` of a function URL invocation.
    url_auth_type: Option<&'a str>,
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
        let admission = Admission {
            source_arn: request.source_arn.as_deref(),
            source_account: request.source_account.as_deref(),
            url_auth_type: match request.action {
                InvokeAction::InvokeFunction => None,
                InvokeAction::InvokeFunctionUrl { auth_type } => Some(auth_type.as_str()),
            },
        };
        admit(
            &self.iam,
            &record,
            &r,
            &accessor(&request.principal),
            &admission,
        )
        .map_err(InvokeFailure::AccessDenied)?;
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

/// Who a service event's principal is to IAM: an AWS service
/// (`sns.amazonaws.com`), or, when a service acts with a role (EventBridge
/// Scheduler invokes as its target's `RoleArn`), a session of that role
/// named after the source (the schedule), as Scheduler names it.
fn service_accessor<'a>(principal: &'a str, source_arn: Option<&'a str>) -> Accessor<'a> {
    if strato_iam::parse_role_arn(principal).is_some() {
        let source = source_arn.unwrap_or(principal);
        Accessor::Role {
            role_arn: principal,
            session: source.rsplit(['/', ':']).next().unwrap_or(source),
        }
    } else {
        Accessor::Service(principal)
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
        let admission = Admission {
            source_arn: event.source_arn.as_deref(),
            source_account: event.source_account.as_deref(),
            url_auth_type: None,
        };
        admit(
            &self.iam,
            &record,
            &r,
            &service_accessor(&event.principal, event.source_arn.as_deref()),
            &admission,
        )
        .map_err(|message| {
            ServiceEventError::AccessDenied(format!("{message} (for {})", event.principal))
        })?;
        Ok((account, region, r))
    }
}
