//! REST APIs end to end: built with the AWS SDK for Rust's `apigateway`
//! client, called over plain HTTP with reqwest (path-style addresses,
//! `/_strato/execute-api/{api-id}/{stage}/...`, and host-style ones with a
//! `Host: {api-id}.execute-api.localhost` header).

// A panic in a test (or its helpers) is a failed test, not a crashed server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;

use aws_sdk_apigateway::error::ProvideErrorMetadata;
use aws_sdk_apigateway::operation::create_resource::CreateResourceOutput;
use aws_sdk_apigateway::operation::create_rest_api::CreateRestApiOutput;
use aws_sdk_apigateway::operation::put_integration::builders::PutIntegrationFluentBuilder;
use aws_sdk_apigateway::types::{
    ApiStage, IntegrationType, Op, PatchOperation, QuotaPeriodType, QuotaSettings, ThrottleSettings,
};
use aws_sdk_apigateway::Client as ApiGateway;
use harness::*;
use serde_json::{json, Value};

const ECHO_FUNCTION: &str = r#"
exports.handler = async (event) => {
  const q = event.queryStringParameters || {};
  if (q.action === 'malformed') return 'not an object';
  if (q.action === 'raise') throw new Error('boom');
  return {
    statusCode: 200,
    headers: { 'content-type': 'application/json', 'x-from': 'lambda' },
    multiValueHeaders: { 'set-cookie': ['a=1', 'b=2'] },
    body: JSON.stringify(event),
  };
};
"#;

async fn create_rest_api(gateway: &ApiGateway, name: &str) -> CreateRestApiOutput {
    let request = gateway.create_rest_api().name(name);
    request.send().await.expect("create rest api")
}

async fn create_resource(
    gateway: &ApiGateway,
    api_id: &str,
    parent_id: &str,
    path_part: &str,
) -> CreateResourceOutput {
    let request = gateway.create_resource().rest_api_id(api_id);
    let request = request.parent_id(parent_id).path_part(path_part);
    request.send().await.expect("create resource")
}

async fn create_deployment(gateway: &ApiGateway, api_id: &str, stage: &str) {
    let request = gateway.create_deployment().rest_api_id(api_id);
    request.stage_name(stage).send().await.expect("deploy");
}

/// A method that needs no authorization.
async fn put_open_method(gateway: &ApiGateway, api_id: &str, resource_id: &str, method: &str) {
    let request = gateway
        .put_method()
        .rest_api_id(api_id)
        .resource_id(resource_id);
    let request = request.http_method(method).authorization_type("NONE");
    request.send().await.expect("put method");
}

/// A PutIntegration request for a method, to add the integration to.
fn integration(
    gateway: &ApiGateway,
    api_id: &str,
    resource_id: &str,
    method: &str,
) -> PutIntegrationFluentBuilder {
    let request = gateway.put_integration().rest_api_id(api_id);
    request.resource_id(resource_id).http_method(method)
}

fn apigateway(engine: &TestServer) -> ApiGateway {
    ApiGateway::new(&engine.sdk_config())
}

fn invoke_url(engine: &TestServer, api_id: &str, stage_path: &str) -> String {
    format!(
        "http://{}/_strato/execute-api/{api_id}{stage_path}",
        engine.server().local_addr
    )
}

fn lambda_uri(function_name: &str) -> String {
    format!(
        "arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function_name}/invocations"
    )
}

fn patch(op: Op, path: &str, value: &str) -> PatchOperation {
    PatchOperation::builder()
        .op(op)
        .path(path)
        .value(value)
        .build()
}

async fn deploy_echo(engine: &TestServer, allow_gateway: bool) -> String {
    let name = unique_name("rest-echo");
    deploy(&engine.client, &name, FunctionSpec::node(ECHO_FUNCTION)).await;
    if allow_gateway {
        engine
            .client
            .add_permission()
            .function_name(&name)
            .statement_id("apigateway")
            .action("lambda:InvokeFunction")
            .principal("apigateway.amazonaws.com")
            .send()
            .await
            .expect("add permission");
    }
    name
}

/// An API whose root `ANY /{proxy+}` and `GET /items/{id}` go to `function`.
async fn proxy_api(gateway: &ApiGateway, function: &str) -> String {
    let api = create_rest_api(gateway, "proxy").await;
    let api_id = api.id().expect("id").to_string();
    let root = api.root_resource_id().expect("root").to_string();
    let items = create_resource(gateway, &api_id, &root, "items").await;
    let item = create_resource(gateway, &api_id, items.id().expect("id"), "{id}").await;
    let greedy = create_resource(gateway, &api_id, &root, "{proxy+}").await;
    for (resource, method) in [
        (item.id().expect("id"), "GET"),
        (greedy.id().expect("id"), "ANY"),
    ] {
        put_open_method(gateway, &api_id, resource, method).await;
        integration(gateway, &api_id, resource, method)
            .r#type(IntegrationType::AwsProxy)
            .integration_http_method("POST")
            .uri(lambda_uri(function))
            .send()
            .await
            .expect("put integration");
    }
    gateway
        .create_deployment()
        .rest_api_id(&api_id)
        .stage_name("prod")
        .variables("tier", "gold")
        .send()
        .await
        .expect("deploy");
    api_id
}

/// An API with `GET /ping` answered by MOCK with `{"pong": true}`.
async fn mock_api(gateway: &ApiGateway, api_key_required: bool) -> String {
    let api = create_rest_api(gateway, "mock").await;
    let api_id = api.id().expect("id").to_string();
    let ping = create_resource(
        gateway,
        &api_id,
        api.root_resource_id().expect("root"),
        "ping",
    )
    .await;
    let ping = ping.id().expect("id");
    gateway
        .put_method()
        .rest_api_id(&api_id)
        .resource_id(ping)
        .http_method("GET")
        .authorization_type("NONE")
        .api_key_required(api_key_required)
        .send()
        .await
        .expect("put method");
    integration(gateway, &api_id, ping, "GET")
        .r#type(IntegrationType::Mock)
        .request_templates("application/json", r#"{"statusCode": 200}"#)
        .send()
        .await
        .expect("put integration");
    gateway
        .put_integration_response()
        .rest_api_id(&api_id)
        .resource_id(ping)
        .http_method("GET")
        .status_code("200")
        .response_templates("application/json", r#"{"pong": true}"#)
        .send()
        .await
        .expect("integration response");
    create_deployment(gateway, &api_id, "prod").await;
    api_id
}

async fn get(url: &str, headers: &[(&str, &str)]) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let mut request = reqwest::Client::new().get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.bytes().await.expect("body").to_vec();
    (status, headers, body)
}

fn json_of(body: &[u8]) -> Value {
    serde_json::from_slice(body).expect("JSON body")
}

#[tokio::test]
async fn lambda_proxy_sends_a_v1_event_and_maps_the_answer() {
    let engine = TestServer::start_own_runtimes().await;
    let gateway = apigateway(&engine);
    let function = deploy_echo(&engine, true).await;
    let api_id = proxy_api(&gateway, &function).await;

    let (status, headers, body) = get(
        &invoke_url(&engine, &api_id, "/prod/items/42?a=1&a=2"),
        &[("x-custom", "yes")],
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(headers["x-from"], "lambda");
    let cookies: Vec<_> = headers.get_all("set-cookie").iter().collect();
    assert_eq!(cookies, ["a=1", "b=2"]);
    let event = json_of(&body);
    assert_eq!(event["resource"], "/items/{id}");
    assert_eq!(event["path"], "/items/42");
    assert_eq!(event["httpMethod"], "GET");
    assert_eq!(event["pathParameters"], json!({"id": "42"}));
    assert_eq!(event["queryStringParameters"], json!({"a": "2"}));
    assert_eq!(
        event["multiValueQueryStringParameters"],
        json!({"a": ["1", "2"]})
    );
    assert_eq!(event["headers"]["x-custom"], "yes");
    assert_eq!(event["stageVariables"], json!({"tier": "gold"}));
    assert_eq!(event["requestContext"]["stage"], "prod");
    assert_eq!(event["requestContext"]["resourcePath"], "/items/{id}");
    assert_eq!(event["requestContext"]["path"], "/prod/items/42");
    assert_eq!(event["requestContext"]["apiId"], api_id.as_str());
    assert_eq!(
        event["requestContext"]["requestId"],
        headers["x-amzn-requestid"].to_str().expect("ascii")
    );

    // The greedy resource takes what the specific one does not.
    let (status, _, body) = get(&invoke_url(&engine, &api_id, "/prod/a/b/c"), &[]).await;
    assert_eq!(status, 200);
    let event = json_of(&body);
    assert_eq!(event["resource"], "/{proxy+}");
    assert_eq!(event["pathParameters"], json!({"proxy": "a/b/c"}));
    engine.stop().await;
}

#[tokio::test]
async fn malformed_answers_and_function_errors_are_502() {
    let engine = TestServer::start_own_runtimes().await;
    let gateway = apigateway(&engine);
    let function = deploy_echo(&engine, true).await;
    let api_id = proxy_api(&gateway, &function).await;
    for action in ["malformed", "raise"] {
        let (status, _, body) = get(
            &invoke_url(&engine, &api_id, &format!("/prod/x?action={action}")),
            &[],
        )
        .await;
        assert_eq!(status, 502, "{action}");
        assert_eq!(json_of(&body), json!({"message": "Internal server error"}));
    }
    engine.stop().await;
}

#[tokio::test]
async fn a_function_without_permission_for_api_gateway_is_not_invoked() {
    let engine = TestServer::start_own_runtimes().await;
    let gateway = apigateway(&engine);
    let function = deploy_echo(&engine, false).await;
    let api_id = proxy_api(&gateway, &function).await;
    let (status, _, body) = get(&invoke_url(&engine, &api_id, "/prod/x"), &[]).await;
    assert_eq!(status, 500);
    assert_eq!(json_of(&body), json!({"message": "Internal server error"}));
    engine.stop().await;
}

#[tokio::test]
async fn mock_answers_and_unknown_paths_are_missing_tokens() {
    let engine = TestServer::start_own_runtimes().await;
    let gateway = apigateway(&engine);
    let api_id = mock_api(&gateway, false).await;
    let (status, _, body) = get(&invoke_url(&engine, &api_id, "/prod/ping"), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(json_of(&body), json!({"pong": true}));

    // Host-style addressing reaches the same stage.
    let host_style = format!("http://{}/prod/ping", engine.server().local_addr);
    let host = format!("{api_id}.execute-api.localhost");
    let (status, _, body) = get(&host_style, &[("host", &host)]).await;
    assert_eq!(status, 200);
    assert_eq!(json_of(&body), json!({"pong": true}));

    let (status, headers, body) = get(&invoke_url(&engine, &api_id, "/prod/other"), &[]).await;
    assert_eq!(status, 403);
    assert_eq!(
        json_of(&body),
        json!({"message": "Missing Authentication Token"})
    );
    assert_eq!(
        headers["x-amzn-errortype"],
        "MissingAuthenticationTokenException"
    );
    engine.stop().await;
}

/// A backend that answers every request with its own name and the path.
async fn backend(name: &'static str) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind backend");
    let addr = listener.local_addr().expect("addr");
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri| async move {
        axum::Json(json!({"backend": name, "uri": uri.to_string()}))
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

#[tokio::test]
async fn stage_variables_choose_the_http_backend() {
    let engine = TestServer::start_own_runtimes().await;
    let gateway = apigateway(&engine);
    let (blue, green) = (backend("blue").await, backend("green").await);
    let api = create_rest_api(&gateway, "http").await;
    let api_id = api.id().expect("id").to_string();
    let proxy = create_resource(
        &gateway,
        &api_id,
        api.root_resource_id().expect("root"),
        "{proxy+}",
    )
    .await;
    let proxy = proxy.id().expect("id");
    put_open_method(&gateway, &api_id, proxy, "ANY").await;
    integration(&gateway, &api_id, proxy, "ANY")
        .r#type(IntegrationType::HttpProxy)
        .integration_http_method("ANY")
        .uri("http://${stageVariables.backend}/v1/{proxy}")
        .request_parameters(
            "integration.request.path.proxy",
            "method.request.path.proxy",
        )
        .send()
        .await
        .expect("put integration");
    let deployment = gateway
        .create_deployment()
        .rest_api_id(&api_id)
        .stage_name("beta")
        .variables("backend", blue.to_string())
        .send()
        .await
        .expect("deploy");
    gateway
        .create_stage()
        .rest_api_id(&api_id)
        .stage_name("prod")
        .deployment_id(deployment.id().expect("id"))
        .variables("backend", green.to_string())
        .send()
        .await
        .expect("prod stage");

    let (status, _, body) = get(&invoke_url(&engine, &api_id, "/beta/x/y?z=1"), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(
        json_of(&body),
        json!({"backend": "blue", "uri": "/v1/x/y?z=1"})
    );
    let (status, _, body) = get(&invoke_url(&engine, &api_id, "/prod/x"), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(json_of(&body), json!({"backend": "green", "uri": "/v1/x"}));

    // Changing a variable takes effect without a new deployment.
    gateway
        .update_stage()
        .rest_api_id(&api_id)
        .stage_name("prod")
        .patch_operations(patch(Op::Replace, "/variables/backend", &blue.to_string()))
        .send()
        .await
        .expect("update stage");
    let (_, _, body) = get(&invoke_url(&engine, &api_id, "/prod/x"), &[]).await;
    assert_eq!(json_of(&body)["backend"], "blue");
    engine.stop().await;
}

#[tokio::test]
async fn method_settings_throttle_requests_beyond_the_burst() {
    let engine = TestServer::start_own_runtimes().await;
    let gateway = apigateway(&engine);
    let api_id = mock_api(&gateway, false).await;
    // So slow a refill that only the burst passes.
    let stage = gateway
        .update_stage()
        .rest_api_id(&api_id)
        .stage_name("prod")
        .patch_operations(patch(Op::Replace, "/*/*/throttling/rateLimit", "0.001"))
        .patch_operations(patch(Op::Replace, "/*/*/throttling/burstLimit", "2"))
        .send()
        .await
        .expect("update stage");
    let setting = &stage.method_settings().expect("settings")["*/*"];
    assert_eq!(setting.throttling_burst_limit(), 2);
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let (status, _, body) = get(&invoke_url(&engine, &api_id, "/prod/ping"), &[]).await;
        if status == 429 {
            assert_eq!(json_of(&body), json!({"message": "Too Many Requests"}));
        }
        statuses.push(status);
    }
    assert_eq!(statuses, [200, 200, 429, 429, 429]);
    engine.stop().await;
}

#[tokio::test]
async fn api_keys_and_usage_plans_guard_a_method() {
    let engine = TestServer::start_own_runtimes().await;
    let gateway = apigateway(&engine);
    let api_id = mock_api(&gateway, true).await;
    let url = invoke_url(&engine, &api_id, "/prod/ping");

    let (status, _, body) = get(&url, &[]).await;
    assert_eq!(status, 403);
    assert_eq!(json_of(&body), json!({"message": "Forbidden"}));

    let key = gateway
        .create_api_key()
        .name("customer")
        .enabled(true)
        .send()
        .await
        .expect("api key");
    let value = key.value().expect("value").to_string();
    let (status, _, _) = get(&url, &[("x-api-key", &value)]).await;
    assert_eq!(status, 403, "a key in no plan for the stage");

    let plan = gateway
        .create_usage_plan()
        .name("basic")
        .api_stages(ApiStage::builder().api_id(&api_id).stage("prod").build())
        .quota(
            QuotaSettings::builder()
                .limit(2)
                .period(QuotaPeriodType::Month)
                .build(),
        )
        .throttle(
            ThrottleSettings::builder()
                .rate_limit(100.0)
                .burst_limit(100)
                .build(),
        )
        .send()
        .await
        .expect("usage plan");
    gateway
        .create_usage_plan_key()
        .usage_plan_id(plan.id().expect("id"))
        .key_id(key.id().expect("id"))
        .key_type("API_KEY")
        .send()
        .await
        .expect("plan key");

    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(get(&url, &[("x-api-key", &value)]).await);
    }
    assert_eq!(
        statuses.iter().map(|(s, _, _)| *s).collect::<Vec<_>>(),
        [200, 200, 429]
    );
    assert_eq!(
        json_of(&statuses[2].2),
        json!({"message": "Limit Exceeded"})
    );

    // Raising the quota admits the key again.
    gateway
        .update_usage_plan()
        .usage_plan_id(plan.id().expect("id"))
        .patch_operations(patch(Op::Replace, "/quota/limit", "3"))
        .send()
        .await
        .expect("update plan");
    let (status, _, _) = get(&url, &[("x-api-key", &value)]).await;
    assert_eq!(status, 200);

    let (status, _, _) = get(&url, &[("x-api-key", "not-a-key-of-this-account-000")]).await;
    assert_eq!(status, 403);
    engine.stop().await;
}

#[tokio::test]
async fn control_plane_errors_are_apigateway_exceptions() {
    let engine = TestServer::start_own_runtimes().await;
    let gateway = apigateway(&engine);
    let err = gateway
        .get_rest_api()
        .rest_api_id("nosuchapi0")
        .send()
        .await
        .expect_err("no such api");
    assert_eq!(err.code(), Some("NotFoundException"));
    assert_eq!(
        err.message(),
        Some(format!("Invalid API identifier specified {ACCOUNT}:nosuchapi0").as_str())
    );
    let api = create_rest_api(&gateway, "errors").await;
    let api_id = api.id().expect("id");
    let err = gateway
        .create_deployment()
        .rest_api_id(api_id)
        .stage_name("prod")
        .send()
        .await
        .expect_err("nothing to deploy");
    assert_eq!(err.code(), Some("BadRequestException"));
    assert_eq!(
        err.message(),
        Some("The REST API doesn't contain any methods")
    );
    let err = gateway
        .create_resource()
        .rest_api_id(api_id)
        .parent_id(api.root_resource_id().expect("root"))
        .path_part("bad path")
        .send()
        .await
        .expect_err("invalid path part");
    assert_eq!(err.code(), Some("BadRequestException"));
    let err = gateway
        .get_usage_plan()
        .usage_plan_id("nope00")
        .send()
        .await
        .expect_err("no such plan");
    assert_eq!(err.code(), Some("NotFoundException"));
    engine.stop().await;
}

#[tokio::test]
async fn deployed_apis_survive_a_restart() {
    let mut harness = TestServer::start().await;
    let api_id = mock_api(&apigateway(&harness), false).await;
    harness.restart().await;
    let url = format!(
        "http://{}/_strato/execute-api/{api_id}/prod/ping",
        harness.addr()
    );
    let (status, _, body) = get(&url, &[]).await;
    assert_eq!(status, 200);
    assert_eq!(json_of(&body), json!({"pong": true}));
    let stages = apigateway(&harness)
        .get_stages()
        .rest_api_id(&api_id)
        .send()
        .await
        .expect("stages");
    assert_eq!(stages.item().len(), 1);
}

/// A GET signed with SigV4 for `execute-api`, and what it got back.
async fn signed_get(url: &str, key: &str, secret: &str) -> (u16, Value) {
    let response = sign_get(&reqwest::Client::new(), url, "execute-api", key, secret)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    let body = response.bytes().await.expect("body");
    (status, json_of(&body))
}

#[tokio::test]
async fn aws_iam_methods_require_a_signature_of_the_apis_account() {
    let harness = TestServer::start().await;
    let gateway = apigateway(&harness);
    let api_id = mock_api(&gateway, false).await;
    let resources = gateway
        .get_resources()
        .rest_api_id(&api_id)
        .send()
        .await
        .expect("resources");
    let ping = resources
        .items()
        .iter()
        .find(|r| r.path() == Some("/ping"))
        .and_then(|r| r.id())
        .expect("ping resource");
    let method = gateway
        .update_method()
        .rest_api_id(&api_id)
        .resource_id(ping)
        .http_method("GET")
        .patch_operations(patch(Op::Replace, "/authorizationType", "AWS_IAM"))
        .send()
        .await
        .expect("update method");
    assert_eq!(method.authorization_type(), Some("AWS_IAM"));
    create_deployment(&gateway, &api_id, "prod").await;
    let url = format!(
        "{}/_strato/execute-api/{api_id}/prod/ping",
        harness.endpoint()
    );

    let (status, _, body) = get(&url, &[]).await;
    assert_eq!(status, 403);
    assert_eq!(
        json_of(&body),
        json!({"message": "Missing Authentication Token"})
    );

    let (status, body) = signed_get(&url, "test", "test").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"pong": true}));

    let (status, body) = signed_get(&url, "test", "wrong-secret").await;
    assert_eq!(status, 403);
    assert!(body["message"]
        .as_str()
        .is_some_and(|m| m.starts_with("The request signature we calculated does not match")));

    let store = strato::server::open_store(harness.dir.path()).expect("store");
    let (other, key) = strato::accounts::create(&store, None, "other")
        .await
        .expect("second account");
    // The other account's first control-plane call makes the server load
    // its key (the data plane only reads the loaded keys).
    let other_gateway = ApiGateway::new(&sdk_config(
        harness.addr(),
        &key.access_key_id,
        &key.secret_access_key,
    ));
    let theirs = other_gateway
        .get_rest_apis()
        .send()
        .await
        .expect("their APIs");
    assert!(
        theirs.items().is_empty(),
        "accounts see only their own APIs"
    );
    let (status, body) = signed_get(&url, &key.access_key_id, &key.secret_access_key).await;
    assert_eq!(status, 403);
    assert_eq!(
        body["message"],
        format!(
            "User: arn:aws:iam::{}:root is not authorized to perform: execute-api:Invoke on resource: arn:aws:execute-api:{REGION}:{ACCOUNT}:{api_id}/prod/GET/ping",
            other.id
        )
    );
}

#[tokio::test]
async fn quota_use_survives_a_restart() {
    use strato_store::Store;
    let mut harness = TestServer::start().await;
    let gateway = apigateway(&harness);
    let api_id = mock_api(&gateway, true).await;
    let key = gateway
        .create_api_key()
        .name("metered")
        .enabled(true)
        .send()
        .await
        .expect("api key");
    let value = key.value().expect("value").to_string();
    let plan = gateway
        .create_usage_plan()
        .name("two-a-day")
        .api_stages(ApiStage::builder().api_id(&api_id).stage("prod").build())
        .quota(
            QuotaSettings::builder()
                .limit(2)
                .period(QuotaPeriodType::Day)
                .build(),
        )
        .send()
        .await
        .expect("usage plan");
    gateway
        .create_usage_plan_key()
        .usage_plan_id(plan.id().expect("id"))
        .key_id(key.id().expect("id"))
        .key_type("API_KEY")
        .send()
        .await
        .expect("plan key");
    let url = |endpoint: &str| format!("{endpoint}/_strato/execute-api/{api_id}/prod/ping");
    for _ in 0..2 {
        let (status, _, _) = get(&url(&harness.endpoint()), &[("x-api-key", &value)]).await;
        assert_eq!(status, 200);
    }
    // Quota use reaches the store in the background; wait until it has.
    let store = strato::server::open_store(harness.dir.path()).expect("store");
    let stored = poll(SETTLE_DEADLINE, || async {
        let stored = store
            .list_all_documents("usage-plan-quota")
            .await
            .expect("quota documents");
        stored.iter().any(|d| d.doc["used"] == 2).then_some(())
    })
    .await;
    assert!(stored.is_some(), "quota use never stored");
    drop(store);
    harness.restart().await;
    let (status, _, body) = get(&url(&harness.endpoint()), &[("x-api-key", &value)]).await;
    assert_eq!(status, 429);
    assert_eq!(json_of(&body), json!({"message": "Limit Exceeded"}));
}

#[tokio::test]
async fn a_throttled_function_is_429_at_the_gateway() {
    let engine = TestServer::start_own_runtimes().await;
    let gateway = apigateway(&engine);
    let function = deploy_echo(&engine, true).await;
    let api_id = proxy_api(&gateway, &function).await;
    engine
        .client
        .put_function_concurrency()
        .function_name(&function)
        .reserved_concurrent_executions(0)
        .send()
        .await
        .expect("reserve zero");
    let (status, _, body) = get(&invoke_url(&engine, &api_id, "/prod/x"), &[]).await;
    assert_eq!(status, 429);
    assert_eq!(json_of(&body), json!({"message": "Too Many Requests"}));
    engine.stop().await;
}

#[tokio::test]
async fn an_integration_slower_than_its_timeout_is_504() {
    let harness = TestServer::start().await;
    let gateway = apigateway(&harness);
    // A backend that accepts connections and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let silent_addr = silent.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let api = create_rest_api(&gateway, "slow").await;
    let api_id = api.id().expect("id");
    let root = api.root_resource_id().expect("root");
    put_open_method(&gateway, api_id, root, "GET").await;
    integration(&gateway, api_id, root, "GET")
        .r#type(IntegrationType::HttpProxy)
        .integration_http_method("GET")
        .uri(format!("http://{silent_addr}/"))
        .timeout_in_millis(100)
        .send()
        .await
        .expect("integration");
    create_deployment(&gateway, api_id, "prod").await;
    let url = format!("{}/_strato/execute-api/{api_id}/prod/", harness.endpoint());
    let (status, _, body) = get(&url, &[]).await;
    assert_eq!(status, 504);
    assert_eq!(
        json_of(&body),
        json!({"message": "Endpoint request timed out"})
    );
}
