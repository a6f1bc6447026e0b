//! The one place every authenticated request is authorized: what it asks
//! (the IAM action and resource ARN each service's operation stands for)
//! and, when IAM is enforced and the caller is an IAM principal (a user, a
//! role session, a function's execution role), whether its policies allow
//! it. A refusal answers in the service's own AccessDenied shape.
//!
//! Account root keys never get here past one map lookup (and, on a queue,
//! topic or function with a policy, a look at whether it has a Deny).
//!
//! Why over 800 lines: every service's naming of its IAM action and
//! resource ARN (Lambda's REST paths, SQS, SNS, Logs, CloudWatch, IAM, API
//! Gateway) sits here with its case table, so that a request is named once,
//! in one place, before it is decided.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ConnectInfo;
use axum::http::request::Parts;
use axum::response::Response;
use strato_iam::policy::{Connection, RequestContext};
use strato_model::{AwsError, ErrorCode, FunctionRef, Qualifier};
use strato_sigv4::VerifiedRequest;

use crate::auth::Caller;
use crate::error::aws_error_response;
use crate::protocol::{query_response, ServiceError, Wire};
use crate::ApiState;

/// How a refusal goes back.
enum Shape {
    /// REST-JSON (Lambda, API Gateway): `AccessDeniedException`, 403.
    Rest,
    /// awsJson: code, status and (for query-compatible services) the
    /// query protocol's code.
    Json {
        wire: Wire,
        code: &'static str,
        status: u16,
        query_code: Option<&'static str>,
    },
    /// awsQuery: `<ErrorResponse>` with `code` (`AccessDenied`; SNS says
    /// `AuthorizationError`), 403.
    Query {
        namespace: &'static str,
        code: &'static str,
        action: String,
    },
}

/// What a request asks: `service:Action` on a resource ARN.
struct Ask {
    action: String,
    resource: String,
    shape: Shape,
}

/// What the request may do once it is authorized.
#[derive(Debug, Default)]
pub(crate) struct Admitted {
    /// The account whose function a caller of another account was let in
    /// to by the function's resource policy: the request acts in it (an
    /// invocation runs, is logged and metered there), as on AWS.
    pub act_in: Option<String>,
}

/// `Ok` when the request may proceed; otherwise the refusal.
///
/// Requests on resources that carry their own policy (SQS queues, SNS
/// topics, Lambda functions, versions and aliases) are decided with it,
/// whoever signs them: from another account the resource policy must allow
/// (and, for an IAM principal under enforcement, its identity policies
/// too); in the owner's account its explicit deny binds every principal,
/// the root included, and its allow admits an IAM principal its identity
/// policies do not. Everything else is decided by the caller's identity
/// policies alone, and only for IAM principals under enforcement.
pub(crate) async fn check(
    state: &ApiState,
    caller: &Caller,
    verified: &VerifiedRequest,
    parts: &Parts,
    body: &[u8],
) -> Result<Admitted, Response> {
    let iam = &state.iam;
    let governed = iam.enforcing() && iam.governs(&caller.access_key_id);
    let policy_bearing = matches!(
        verified.service.as_str(),
        strato_sqs::SIGNING_NAME | strato_sns::SIGNING_NAME | LAMBDA_SIGNING_NAME
    );
    if !governed && !policy_bearing {
        return Ok(Admitted::default());
    }
    let Some(ask) = ask(caller, &verified.service, parts, body) else {
        return Ok(Admitted::default());
    };
    let owner = arn_account(&ask.resource).unwrap_or(&caller.account_id);
    // A queue, topic or function that does not exist is the service's to
    // answer (NonExistentQueue, NotFound, ResourceNotFoundException) once
    // the caller's own policies allow.
    let found = if policy_bearing {
        resource_policy(state, &ask.resource).await
    } else {
        None
    };
    let outcome = match &found {
        Some(found) => iam.authorize_access(
            &caller.access_key_id,
            &caller.account_id,
            &strato_iam::ResourceAccess {
                action: &ask.action,
                resource: found.resource(&ask.resource),
                owner,
                policy: found.text(),
            },
            request_context(caller, parts),
        ),
        None if governed => iam.authorize(
            &caller.access_key_id,
            &ask.action,
            &ask.resource,
            request_context(caller, parts),
        ),
        None => return Ok(Admitted::default()),
    };
    if let Err(denied) = outcome {
        return Err(refuse(ask.shape, denied.message));
    }
    let crosses = owner != caller.account_id;
    Ok(Admitted {
        act_in: match found {
            Some(Found::Function { .. }) if crosses => Some(owner.to_string()),
            _ => None,
        },
    })
}

/// Lambda's SigV4 signing name.
const LAMBDA_SIGNING_NAME: &str = "lambda";

/// The global condition keys of a request.
fn request_context(caller: &Caller, parts: &Parts) -> RequestContext {
    let mut context = connection(&parts.uri, &parts.headers, &parts.extensions).context();
    context.insert("aws:RequestedRegion", caller.region.as_str());
    context
}

/// What a request's connection tells IAM (`aws:SecureTransport`,
/// `aws:SourceIp`), for every service: this one's checks here, S3's
/// carried to it as a request extension.
pub(crate) fn connection(
    uri: &axum::http::Uri,
    headers: &axum::http::HeaderMap,
    extensions: &axum::http::Extensions,
) -> Connection {
    let secure = uri.scheme_str() == Some("https")
        || headers
            .get("x-forwarded-proto")
            .is_some_and(|v| v.as_bytes() == b"https");
    let source_ip = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(remote)| remote.ip());
    Connection { secure, source_ip }
}

/// The account field of an ARN, when it has one.
fn arn_account(arn: &str) -> Option<&str> {
    arn.split(':').nth(4).filter(|a| !a.is_empty())
}

/// The resource a request names, with its own policy.
enum Found {
    /// A queue's or topic's policy text, if one is set.
    Text(Option<String>),
    /// A function's record, and whether the request names `$LATEST`
    /// (which the function's policy covers by its unqualified ARN).
    Function {
        record: Arc<strato_model::FunctionRecord>,
        qualifier: Option<Qualifier>,
    },
}

impl Found {
    fn text(&self) -> Option<&str> {
        match self {
            Found::Text(text) => text.as_deref(),
            Found::Function { record, qualifier } => record
                .policy_for(qualifier.as_ref())
                .filter(|p| !p.is_empty())
                .map(|p| p.text()),
        }
    }

    /// The ARN decided on: a function's `$LATEST` is decided as the
    /// function, whose policy statements name it unqualified.
    fn resource<'a>(&self, asked: &'a str) -> &'a str {
        match self {
            Found::Function {
                qualifier: Some(Qualifier::Latest),
                ..
            } => asked.strip_suffix(":$LATEST").unwrap_or(asked),
            _ => asked,
        }
    }
}

/// The queue, topic or function an ARN names, with its policy; `None` when
/// there is no such resource (or the ARN names none of these).
async fn resource_policy(state: &ApiState, arn: &str) -> Option<Found> {
    match arn.split(':').nth(2)? {
        "sqs" => state.sqs.queue_policy(arn).map(Found::Text),
        "sns" => state.sns.topic_policy(arn).map(Found::Text),
        "lambda" if arn.split(':').nth(5) == Some("function") => {
            let r = FunctionRef::parse(arn, 256).ok()?;
            let record = state
                .catalog
                .get(r.account.as_deref()?, r.region.as_deref()?, &r.name)
                .await
                .ok()??;
            Some(Found::Function {
                record,
                qualifier: r.qualifier,
            })
        }
        _ => None,
    }
}

fn refuse(shape: Shape, message: String) -> Response {
    match shape {
        Shape::Rest => {
            aws_error_response(&AwsError::new(ErrorCode::AccessDeniedException, message))
        }
        Shape::Json {
            wire,
            code,
            status,
            query_code,
        } => wire.respond(Err(ServiceError {
            status,
            query_code,
            ..ServiceError::new(code, message)
        })),
        Shape::Query {
            namespace,
            code,
            action,
        } => query_response(
            namespace,
            &action,
            Err(ServiceError {
                status: 403,
                ..ServiceError::new(code, message)
            }),
        ),
    }
}

/// A request whose credentials were refused before anything was asked
/// (a bad signature, an unknown key, a session's missing or expired
/// token), answered in the protocol the client speaks: awsQuery services
/// (STS, IAM, SQS's query form, CloudWatch's) with `<ErrorResponse>` and
/// the query code (`InvalidClientTokenId`, `ExpiredToken`, ...), awsJson
/// services with `__type`, REST services as before.
pub(crate) fn refuse_credentials(
    parts: &Parts,
    service: Option<&str>,
    code: ErrorCode,
    message: &str,
) -> Response {
    let query_code = match code {
        ErrorCode::UnrecognizedClientException => "InvalidClientTokenId",
        ErrorCode::ExpiredTokenException => "ExpiredToken",
        ErrorCode::MissingAuthenticationTokenException => "MissingAuthenticationToken",
        ErrorCode::IncompleteSignatureException => "IncompleteSignature",
        ErrorCode::AccessDeniedException => "AccessDenied",
        _ => "SignatureDoesNotMatch",
    };
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let content_type = header("content-type").unwrap_or_default();
    if let Some((prefix, _)) = header("x-amz-target").and_then(|t| t.split_once('.')) {
        let wire = if content_type.contains("1.0") {
            Wire::Json("application/x-amz-json-1.0")
        } else {
            Wire::Json("application/x-amz-json-1.1")
        };
        return wire.respond(Err(ServiceError {
            status: 400,
            query_code: (prefix == strato_sqs::TARGET_PREFIX).then_some(query_code),
            ..ServiceError::new(code.as_str(), message)
        }));
    }
    if content_type.starts_with("application/x-www-form-urlencoded")
        && parts.method == axum::http::Method::POST
    {
        let namespace = match service {
            Some(strato_iam::IAM_SIGNING_NAME) => strato_iam::IAM_XML_NAMESPACE,
            Some(strato_sqs::SIGNING_NAME) => strato_sqs::XML_NAMESPACE,
            Some("sns") => strato_sns::XML_NAMESPACE,
            Some("monitoring") => crate::observe::cloudwatch::XML_NAMESPACE,
            _ => strato_iam::STS_XML_NAMESPACE,
        };
        return query_response(
            namespace,
            "",
            Err(ServiceError {
                status: if code == ErrorCode::IncompleteSignatureException {
                    400
                } else {
                    403
                },
                ..ServiceError::new(query_code, message)
            }),
        );
    }
    aws_error_response(&AwsError::new(code, message.to_string()))
}

/// The members of an SQS JSON request that name its queue (the rest of
/// the body is skipped, not kept).
#[derive(Default, serde::Deserialize)]
struct SqsNames {
    #[serde(rename = "QueueUrl")]
    queue_url: Option<String>,
    #[serde(rename = "QueueName")]
    queue_name: Option<String>,
    #[serde(rename = "QueueOwnerAWSAccountId")]
    queue_owner: Option<String>,
}

fn json_member(body: &[u8], member: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    value.get(member)?.as_str().map(str::to_string)
}

/// `arn:aws:sqs:REGION:ACCOUNT:NAME` of a queue URL (`http://h/ACCOUNT/NAME`).
fn queue_arn(caller: &Caller, url: &str) -> Option<String> {
    let mut segments = url.rsplit('/');
    let name = segments.next()?;
    let account = segments.next()?;
    Some(format!("arn:aws:sqs:{}:{account}:{name}", caller.region))
}

/// The queue an SQS request names: its `QueueUrl`, or `QueueName` (in
/// `QueueOwnerAWSAccountId`'s account for GetQueueUrl).
fn sqs_resource(
    caller: &Caller,
    action: &str,
    queue_url: Option<String>,
    name: Option<String>,
    owner: Option<String>,
) -> String {
    match (action, queue_url, name) {
        (_, Some(url), _) => queue_arn(caller, &url).unwrap_or_else(|| "*".into()),
        ("CreateQueue" | "GetQueueUrl", None, Some(name)) => format!(
            "arn:aws:sqs:{}:{}:{name}",
            caller.region,
            owner.as_deref().unwrap_or(&caller.account_id)
        ),
        _ => "*".into(),
    }
}

fn ask(caller: &Caller, service: &str, parts: &Parts, body: &[u8]) -> Option<Ask> {
    let path = parts.uri.path();
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok());
    if let Some((prefix, operation)) = target.and_then(|t| t.split_once('.')) {
        return Some(json_ask(caller, prefix, operation, parts, body));
    }
    let is_form = parts
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    if is_form && parts.method == axum::http::Method::POST {
        return query_ask(caller, service, path, body);
    }
    if path.starts_with("/strato/") {
        return None;
    }
    if let Some(ask) = lambda_ask(caller, parts, body) {
        return Some(ask);
    }
    if path.starts_with("/restapis")
        || path.starts_with("/v2/")
        || path.starts_with("/apikeys")
        || path.starts_with("/usageplans")
        || path.starts_with("/domainnames")
        || (path.starts_with("/tags/") && service != strato_events::SCHEDULER_SIGNING_NAME)
        || path.starts_with("/account")
    {
        return Some(Ask {
            action: format!("apigateway:{}", parts.method.as_str()),
            resource: format!("arn:aws:apigateway:{}::{path}", caller.region),
            shape: Shape::Rest,
        });
    }
    None
}

fn json_ask(caller: &Caller, prefix: &str, operation: &str, parts: &Parts, body: &[u8]) -> Ask {
    let content_type = parts
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let wire = if content_type.contains("1.0") {
        Wire::Json("application/x-amz-json-1.0")
    } else {
        Wire::Json("application/x-amz-json-1.1")
    };
    match prefix {
        strato_sqs::TARGET_PREFIX => {
            let path_url =
                (parts.uri.path().matches('/').count() == 2).then(|| parts.uri.path().to_string());
            let named: SqsNames = serde_json::from_slice(body).unwrap_or_default();
            let url = named.queue_url.or(path_url);
            let resource =
                sqs_resource(caller, operation, url, named.queue_name, named.queue_owner);
            Ask {
                // SQS words its actions in lower case in refusals.
                action: format!("sqs:{}", operation.to_ascii_lowercase()),
                resource,
                shape: Shape::Json {
                    wire,
                    code: "AccessDeniedException",
                    status: 403,
                    query_code: Some("AccessDenied"),
                },
            }
        }
        crate::observe::logs::TARGET_PREFIX => {
            let group = json_member(body, "logGroupName");
            let stream = json_member(body, "logStreamName");
            let resource = match (group, stream) {
                (Some(g), Some(s)) => format!(
                    "arn:aws:logs:{}:{}:log-group:{g}:log-stream:{s}",
                    caller.region, caller.account_id
                ),
                (Some(g), None) => format!(
                    "arn:aws:logs:{}:{}:log-group:{g}",
                    caller.region, caller.account_id
                ),
                _ => "*".into(),
            };
            Ask {
                action: format!("logs:{operation}"),
                resource,
                shape: Shape::Json {
                    wire,
                    code: "AccessDeniedException",
                    status: 400,
                    query_code: None,
                },
            }
        }
        crate::observe::cloudwatch::SERVICE => Ask {
            action: format!("cloudwatch:{operation}"),
            resource: "*".into(),
            shape: Shape::Json {
                wire,
                code: "AccessDenied",
                status: 403,
                query_code: Some("AccessDenied"),
            },
        },
        other => {
            // Services that join later: their signing name is the prefix's
            // lower-cased first word (`DynamoDB_20120810` is `dynamodb`).
            let service = other
                .split('_')
                .next()
                .unwrap_or(other)
                .trim_start_matches("AWS")
                .trim_start_matches("Amazon")
                .to_ascii_lowercase();
            Ask {
                action: format!("{service}:{operation}"),
                resource: "*".into(),
                shape: Shape::Json {
                    wire,
                    code: "AccessDeniedException",
                    status: 400,
                    query_code: None,
                },
            }
        }
    }
}

fn query_ask(caller: &Caller, service: &str, path: &str, body: &[u8]) -> Option<Ask> {
    let (action, input) = crate::protocol::decode_form(body);
    let text = |member: &str| {
        input
            .get(member)
            .and_then(strato_model::wire::Doc::as_str)
            .map(str::to_string)
    };
    let acct = &caller.account_id;
    match service {
        strato_iam::STS_SIGNING_NAME => None,
        strato_sqs::SIGNING_NAME => {
            let path_url = (path.matches('/').count() == 2).then(|| path.to_string());
            let url = text("QueueUrl").or(path_url);
            Some(Ask {
                resource: sqs_resource(
                    caller,
                    &action,
                    url,
                    text("QueueName"),
                    text("QueueOwnerAWSAccountId"),
                ),
                action: format!("sqs:{}", action.to_ascii_lowercase()),
                shape: Shape::Query {
                    code: "AccessDenied",
                    namespace: strato_sqs::XML_NAMESPACE,
                    action,
                },
            })
        }
        strato_iam::IAM_SIGNING_NAME => {
            let resource = if let Some(arn) = text("PolicyArn") {
                arn
            } else if let Some(role) = text("RoleName") {
                format!("arn:aws:iam::{acct}:role/{role}")
            } else if let Some(user) = text("UserName") {
                format!("arn:aws:iam::{acct}:user/{user}")
            } else if let Some(group) = text("GroupName") {
                format!("arn:aws:iam::{acct}:group/{group}")
            } else if let Some(policy) = text("PolicyName") {
                format!("arn:aws:iam::{acct}:policy/{policy}")
            } else {
                "*".into()
            };
            Some(Ask {
                action: format!("iam:{action}"),
                resource,
                shape: Shape::Query {
                    code: "AccessDenied",
                    namespace: strato_iam::IAM_XML_NAMESPACE,
                    action,
                },
            })
        }
        strato_sns::SIGNING_NAME => Some(Ask {
            // SNS names its topic (TopicArn; Publish may say TargetArn).
            resource: text("TopicArn")
                .or_else(|| text("TargetArn"))
                .unwrap_or_else(|| "*".into()),
            // SNS words its actions `SNS:Publish` in refusals.
            action: format!("SNS:{action}"),
            shape: Shape::Query {
                namespace: strato_sns::XML_NAMESPACE,
                code: "AuthorizationError",
                action,
            },
        }),
        "monitoring" => Some(Ask {
            action: format!("cloudwatch:{action}"),
            resource: "*".into(),
            shape: Shape::Query {
                code: "AccessDenied",
                namespace: crate::observe::cloudwatch::XML_NAMESPACE,
                action,
            },
        }),
        other => Some(Ask {
            action: format!("{other}:{action}"),
            resource: "*".into(),
            shape: Shape::Query {
                code: "AccessDenied",
                namespace: "https://strato.invalid/",
                action,
            },
        }),
    }
}

/// A query parameter, percent-decoded.
fn query_param(parts: &Parts, name: &str) -> Option<String> {
    parts.uri.query()?.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == name).then(|| {
            percent_encoding::percent_decode_str(value)
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

/// Lambda's REST paths: `/{date}/functions/{name}/...` and friends.
fn lambda_ask(caller: &Caller, parts: &Parts, body: &[u8]) -> Option<Ask> {
    use axum::http::Method;
    let path = parts.uri.path();
    let mut segments = path.trim_matches('/').split('/');
    let version = segments.next()?;
    if !(version.len() == 10 && version.starts_with("20")) {
        return None;
    }
    let rest: Vec<&str> = segments.filter(|s| !s.is_empty()).collect();
    let m = &parts.method;
    let qualifier = query_param(parts, "Qualifier");
    let function_arn = |name: &str| {
        let name = percent_encoding::percent_decode_str(name).decode_utf8_lossy();
        let base = if name.starts_with("arn:") {
            name.to_string()
        } else if let Some((account, fname)) = name.split_once(":function:") {
            format!(
                "arn:aws:lambda:{}:{account}:function:{fname}",
                caller.region
            )
        } else {
            format!(
                "arn:aws:lambda:{}:{}:function:{name}",
                caller.region, caller.account_id
            )
        };
        match &qualifier {
            Some(q) if base.matches(':').count() == 6 => format!("{base}:{q}"),
            _ => base,
        }
    };
    // A layer (version) ARN: `arn:aws:lambda:R:A:layer:NAME[:N]`; the name
    // may be given as the layer's ARN.
    let layer_arn = |name: &str, version: Option<&str>| {
        let name = percent_encoding::percent_decode_str(name).decode_utf8_lossy();
        let base = if name.starts_with("arn:") {
            name.to_string()
        } else {
            format!(
                "arn:aws:lambda:{}:{}:layer:{name}",
                caller.region, caller.account_id
            )
        };
        match version {
            Some(n) => format!("{base}:{n}"),
            None => base,
        }
    };
    let (action, resource) = match (rest.as_slice(), m) {
        (["functions"], &Method::POST) => (
            "CreateFunction",
            function_arn(&json_member(body, "FunctionName").unwrap_or_default()),
        ),
        (["functions"], _) => ("ListFunctions", "*".into()),
        (["functions", name], &Method::GET) => ("GetFunction", function_arn(name)),
        (["functions", name], &Method::DELETE) => ("DeleteFunction", function_arn(name)),
        (
            ["functions", name, "invocations" | "response-streaming-invocations" | "invoke-async"],
            _,
        ) => ("InvokeFunction", function_arn(name)),
        (["functions", name, "configuration"], &Method::GET) => {
            ("GetFunctionConfiguration", function_arn(name))
        }
        (["functions", name, "configuration"], _) => {
            ("UpdateFunctionConfiguration", function_arn(name))
        }
        (["functions", name, "code"], _) => ("UpdateFunctionCode", function_arn(name)),
        (["functions", name, "policy"], &Method::GET) => ("GetPolicy", function_arn(name)),
        (["functions", name, "policy"], _) => ("AddPermission", function_arn(name)),
        (["functions", name, "policy", _], _) => ("RemovePermission", function_arn(name)),
        (["functions", name, "versions"], &Method::GET) => {
            ("ListVersionsByFunction", function_arn(name))
        }
        (["functions", name, "versions"], _) => ("PublishVersion", function_arn(name)),
        (["functions", name, "aliases"], &Method::GET) => ("ListAliases", function_arn(name)),
        (["functions", name, "aliases"], _) => ("CreateAlias", function_arn(name)),
        (["functions", name, "aliases", alias], m) => (
            match *m {
                Method::GET => "GetAlias",
                Method::DELETE => "DeleteAlias",
                _ => "UpdateAlias",
            },
            format!("{}:{alias}", function_arn(name)),
        ),
        (["functions", name, "concurrency"], &Method::GET) => {
            ("GetFunctionConcurrency", function_arn(name))
        }
        (["functions", name, "concurrency"], &Method::DELETE) => {
            ("DeleteFunctionConcurrency", function_arn(name))
        }
        (["functions", name, "concurrency"], _) => ("PutFunctionConcurrency", function_arn(name)),
        (["functions", name, "url"], m) => (
            match *m {
                Method::GET => "GetFunctionUrlConfig",
                Method::DELETE => "DeleteFunctionUrlConfig",
                Method::POST => "CreateFunctionUrlConfig",
                _ => "UpdateFunctionUrlConfig",
            },
            function_arn(name),
        ),
        (["functions", name, sub, ..], m) => {
            let verb = match *m {
                Method::GET => "Get",
                Method::DELETE => "Delete",
                _ => "Put",
            };
            // Smaller sub-resources: `event-invoke-config` is
            // `lambda:GetFunctionEventInvokeConfig`, and so on.
            let noun: String = sub
                .split('-')
                .map(|w| {
                    let mut c = w.chars();
                    c.next()
                        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                        .unwrap_or_default()
                })
                .collect();
            return Some(Ask {
                action: format!("lambda:{verb}Function{noun}"),
                resource: function_arn(name),
                shape: Shape::Rest,
            });
        }
        (["event-source-mappings"], &Method::POST) => ("CreateEventSourceMapping", "*".into()),
        (["event-source-mappings"], _) => ("ListEventSourceMappings", "*".into()),
        (["event-source-mappings", uuid], m) => (
            match *m {
                Method::GET => "GetEventSourceMapping",
                Method::DELETE => "DeleteEventSourceMapping",
                _ => "UpdateEventSourceMapping",
            },
            format!(
                "arn:aws:lambda:{}:{}:event-source-mapping:{uuid}",
                caller.region, caller.account_id
            ),
        ),
        (["account-settings"], _) => ("GetAccountSettings", "*".into()),
        (["layers"], _) => match query_param(parts, "Arn") {
            // GetLayerVersionByArn (`?find=LayerVersion&Arn=...`).
            Some(arn) => ("GetLayerVersion", arn),
            None => ("ListLayers", "*".into()),
        },
        (["layers", _, "versions"], &Method::GET) => ("ListLayerVersions", "*".into()),
        (["layers", name, "versions"], _) => ("PublishLayerVersion", layer_arn(name, None)),
        (["layers", name, "versions", n], m) => (
            if *m == Method::DELETE {
                "DeleteLayerVersion"
            } else {
                "GetLayerVersion"
            },
            layer_arn(name, Some(n)),
        ),
        (["layers", name, "versions", n, "policy", ..], m) => (
            match *m {
                Method::GET => "GetLayerVersionPolicy",
                Method::DELETE => "RemoveLayerVersionPermission",
                _ => "AddLayerVersionPermission",
            },
            layer_arn(name, Some(n)),
        ),
        (["resource-policy", arn], m) => (
            match *m {
                Method::GET => "GetResourcePolicy",
                Method::DELETE => "DeleteResourcePolicy",
                _ => "PutResourcePolicy",
            },
            percent_encoding::percent_decode_str(arn)
                .decode_utf8_lossy()
                .to_string(),
        ),
        (["tags", arn], m) => (
            match *m {
                Method::GET => "ListTags",
                Method::DELETE => "UntagResource",
                _ => "TagResource",
            },
            percent_encoding::percent_decode_str(arn)
                .decode_utf8_lossy()
                .to_string(),
        ),
        _ => ("UnknownOperation", "*".into()),
    };
    Some(Ask {
        action: format!("lambda:{action}"),
        resource,
        shape: Shape::Rest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller() -> Caller {
        Caller {
            account_id: "111111111111".into(),
            region: "us-east-1".into(),
            access_key_id: "AKIA".into(),
        }
    }

    fn asked(
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: &str,
        service: &str,
    ) -> (String, String) {
        let mut builder = axum::http::Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let (parts, ()) = builder.body(()).unwrap().into_parts();
        let ask = ask(&caller(), service, &parts, body.as_bytes()).unwrap();
        (ask.action, ask.resource)
    }

    const FN: &str = "arn:aws:lambda:us-east-1:111111111111:function:f";

    #[test]
    fn lambda_paths_name_their_action_and_function() {
        let cases = [
            ("POST", "/2015-03-31/functions/f/invocations", "lambda:InvokeFunction", FN.to_string()),
            ("POST", "/2015-03-31/functions/f/invocations?Qualifier=live", "lambda:InvokeFunction", format!("{FN}:live")),
            ("POST", "/2021-11-15/functions/f/response-streaming-invocations", "lambda:InvokeFunction", FN.to_string()),
            ("GET", "/2015-03-31/functions/", "lambda:ListFunctions", "*".to_string()),
            ("GET", "/2015-03-31/functions/f", "lambda:GetFunction", FN.to_string()),
            ("DELETE", "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A111111111111%3Afunction%3Af", "lambda:DeleteFunction", FN.to_string()),
            ("PUT", "/2015-03-31/functions/f/configuration", "lambda:UpdateFunctionConfiguration", FN.to_string()),
            ("POST", "/2015-03-31/functions/f/policy", "lambda:AddPermission", FN.to_string()),
            ("GET", "/2015-03-31/functions/f/aliases/live", "lambda:GetAlias", format!("{FN}:live")),
            ("PUT", "/2019-09-25/functions/f/event-invoke-config", "lambda:PutFunctionEventInvokeConfig", FN.to_string()),
            ("GET", "/2015-03-31/event-source-mappings/", "lambda:ListEventSourceMappings", "*".to_string()),
            ("GET", "/2018-10-31/layers/lib/versions/3", "lambda:GetLayerVersion", "arn:aws:lambda:us-east-1:111111111111:layer:lib:3".to_string()),
            ("GET", "/2018-10-31/layers?find=LayerVersion&Arn=arn%3Aaws%3Alambda%3Aus-east-1%3A222222222222%3Alayer%3Alib%3A1", "lambda:GetLayerVersion", "arn:aws:lambda:us-east-1:222222222222:layer:lib:1".to_string()),
            ("POST", "/2018-10-31/layers/lib/versions/3/policy", "lambda:AddLayerVersionPermission", "arn:aws:lambda:us-east-1:111111111111:layer:lib:3".to_string()),
            ("POST", "/2018-10-31/layers/lib/versions", "lambda:PublishLayerVersion", "arn:aws:lambda:us-east-1:111111111111:layer:lib".to_string()),
            ("GET", "/2018-10-31/layers", "lambda:ListLayers", "*".to_string()),
            ("PUT", "/2026-07-09/resource-policy/arn%3Aaws%3Alambda%3Aus-east-1%3A111111111111%3Afunction%3Af%3A1", "lambda:PutResourcePolicy", format!("{FN}:1")),
            ("DELETE", "/2026-07-09/resource-policy/arn%3Aaws%3Alambda%3Aus-east-1%3A111111111111%3Afunction%3Af", "lambda:DeleteResourcePolicy", FN.to_string()),
        ];
        for (method, uri, action, resource) in cases {
            assert_eq!(
                asked(method, uri, &[], "", "lambda"),
                (action.to_string(), resource),
                "{method} {uri}"
            );
        }
        assert_eq!(
            asked(
                "POST",
                "/2015-03-31/functions",
                &[],
                r#"{"FunctionName":"g"}"#,
                "lambda"
            ),
            (
                "lambda:CreateFunction".into(),
                "arn:aws:lambda:us-east-1:111111111111:function:g".into()
            )
        );
    }

    #[test]
    fn json_and_query_services_name_their_action_and_resource() {
        let json = [("content-type", "application/x-amz-json-1.0")];
        let target = |t: &'static str| [json[0], ("x-amz-target", t)];
        assert_eq!(
            asked(
                "POST",
                "/",
                &target("AmazonSQS.SendMessage"),
                r#"{"QueueUrl":"http://h:1/111111111111/q"}"#,
                "sqs"
            ),
            (
                "sqs:sendmessage".into(),
                "arn:aws:sqs:us-east-1:111111111111:q".into()
            )
        );
        assert_eq!(
            asked(
                "POST",
                "/",
                &target("Logs_20140328.PutLogEvents"),
                r#"{"logGroupName":"g","logStreamName":"s"}"#,
                "logs"
            ),
            (
                "logs:PutLogEvents".into(),
                "arn:aws:logs:us-east-1:111111111111:log-group:g:log-stream:s".into()
            )
        );
        let form = [("content-type", "application/x-www-form-urlencoded")];
        assert_eq!(
            asked("POST", "/", &form, "Action=AttachRolePolicy&RoleName=r&PolicyArn=arn%3Aaws%3Aiam%3A%3Aaws%3Apolicy%2FX", "iam"),
            ("iam:AttachRolePolicy".into(), "arn:aws:iam::aws:policy/X".into())
        );
        assert_eq!(
            asked("POST", "/", &form, "Action=CreateUser&UserName=bob", "iam"),
            (
                "iam:CreateUser".into(),
                "arn:aws:iam::111111111111:user/bob".into()
            )
        );
        assert_eq!(
            asked(
                "POST",
                "/111111111111/q",
                &form,
                "Action=ReceiveMessage",
                "sqs"
            ),
            (
                "sqs:receivemessage".into(),
                "arn:aws:sqs:us-east-1:111111111111:q".into()
            )
        );
        let mut builder = axum::http::Request::builder().method("POST").uri("/");
        builder = builder.header("content-type", "application/x-www-form-urlencoded");
        let (parts, ()) = builder.body(()).unwrap().into_parts();
        assert!(ask(&caller(), "sts", &parts, b"Action=GetCallerIdentity").is_none());
    }
}
