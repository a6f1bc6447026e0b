//! End-to-end: HTTP APIs (`apigatewayv2`) and function URLs, created with
//! the AWS SDK for Rust and called over plain HTTP with reqwest, in front of
//! real Node.js functions and small HTTP backends started by the tests.

// A panic in a test (or its helpers) is a failed test, not a crashed server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;

use std::net::SocketAddr;
use std::sync::Arc;

use aws_sdk_apigatewayv2::operation::create_api::CreateApiOutput;
use aws_sdk_apigatewayv2::operation::update_stage::builders::UpdateStageFluentBuilder;
use aws_sdk_apigatewayv2::types::{
    AuthorizationType, AuthorizerType, Cors, IntegrationType, JwtConfiguration, ProtocolType,
    RouteSettings,
};
use aws_sdk_lambda::types::FunctionUrlAuthType;
use base64::Engine as _;
use harness::*;
use serde_json::{json, Value};

/// Echoes the event unless the path asks for something else.
const ECHO_FUNCTION: &str = r#"
exports.handler = async (event) => {
  const path = event.rawPath || event.path || '';
  if (path.endsWith('/plain')) return { hello: 'world' };
  if (path.endsWith('/malformed')) return { statusCode: 'not-a-number', body: 'x' };
  if (path.endsWith('/crash')) throw new Error('boom');
  if (path.endsWith('/binary')) {
    return {
      statusCode: 200,
      headers: { 'content-type': 'application/octet-stream' },
      body: Buffer.from([0, 1, 2, 255]).toString('base64'),
      isBase64Encoded: true,
    };
  }
  const answer = {
    statusCode: 200,
    headers: { 'content-type': 'application/json', 'x-echo': 'yes' },
    body: JSON.stringify(event),
  };
  if (event.version === '2.0') answer.cookies = ['a=1', 'b=2'];
  else answer.multiValueHeaders = { 'x-multi': ['one', 'two'] };
  return answer;
};
"#;

/// A Lambda authorizer: simple or IAM-policy answers (by `x-answer`),
/// allowing the token `allow`.
const AUTHORIZER_FUNCTION: &str = r#"
let calls = 0;
exports.handler = async (event) => {
  calls += 1;
  const headers = event.headers || {};
  const allowed = headers.authorization === 'allow';
  if (headers['x-answer'] === 'policy') {
    return {
      principalId: 'bob',
      policyDocument: {
        Version: '2012-10-17',
        Statement: [{ Action: 'execute-api:Invoke', Effect: allowed ? 'Allow' : 'Deny', Resource: event.routeArn }],
      },
      context: { role: 'admin' },
    };
  }
  return { isAuthorized: allowed, context: { user: 'alice', calls } };
};
"#;

fn apigw(server: &TestServer) -> aws_sdk_apigatewayv2::Client {
    aws_sdk_apigatewayv2::Client::new(&server.sdk_config())
}

/// An HTTP client that reaches `*.localhost` names on the server (Rust's
/// resolver, like Python's, does not resolve them by itself).
fn http_for(addr: SocketAddr, hosts: &[String]) -> reqwest::Client {
    let mut builder = reqwest::Client::builder();
    for host in hosts {
        builder = builder.resolve(host, addr);
    }
    builder.build().expect("http client")
}

fn host_of(url: &str) -> String {
    url.trim_start_matches("http://")
        .split(['/', ':'])
        .next()
        .unwrap_or("")
        .to_string()
}

async fn deploy_node(engine: &TestServer, prefix: &str, source: &str) -> String {
    let name = unique_name(prefix);
    deploy(&engine.client, &name, FunctionSpec::node(source)).await;
    name
}

async fn allow_apigateway(engine: &TestServer, name: &str, api_id: &str) {
    engine
        .client
        .add_permission()
        .function_name(name)
        .statement_id(format!("apigw-{api_id}"))
        .action("lambda:InvokeFunction")
        .principal("apigateway.amazonaws.com")
        .source_arn(format!("arn:aws:execute-api:{REGION}:{ACCOUNT}:{api_id}/*"))
        .send()
        .await
        .expect("add permission");
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| {
            panic!(
                "not JSON ({}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

async fn send(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.bytes().await.expect("body").to_vec();
    Answer {
        status,
        headers,
        body,
    }
}

/// A quick-created API in front of the echo function, with permission.
async fn quick_api(engine: &TestServer) -> (String, String, String) {
    let name = deploy_node(engine, "gw-echo", ECHO_FUNCTION).await;
    let target = function_arn(ACCOUNT, &name);
    let (api_id, endpoint) = quick_create(&apigw(engine), "quick", target).await;
    (name, api_id, endpoint)
}

/// A quick-created HTTP API in front of a fresh echo backend: its client,
/// id and endpoint.
async fn echo_backend_api(
    engine: &TestServer,
    name: &str,
) -> (aws_sdk_apigatewayv2::Client, String, String) {
    let backend = echo_backend().await;
    let client = apigw(engine);
    let (api_id, endpoint) = quick_create(&client, name, format!("http://{backend}/")).await;
    (client, api_id, endpoint)
}

/// An UpdateStage request for the `$default` stage, to add settings to.
fn update_default_stage(
    client: &aws_sdk_apigatewayv2::Client,
    api_id: &str,
) -> UpdateStageFluentBuilder {
    client.update_stage().api_id(api_id).stage_name("$default")
}

/// An HTTP API with no routes yet.
async fn create_http_api(client: &aws_sdk_apigatewayv2::Client, name: &str) -> CreateApiOutput {
    let request = client.create_api().name(name);
    let request = request.protocol_type(ProtocolType::Http);
    request.send().await.expect("create api")
}

/// A quick-created HTTP API (`$default` route and stage) in front of
/// `target`; its id and endpoint.
async fn quick_create(
    client: &aws_sdk_apigatewayv2::Client,
    name: &str,
    target: String,
) -> (String, String) {
    let request = client.create_api().name(name);
    let request = request.protocol_type(ProtocolType::Http).target(target);
    let api = request.send().await.expect("create api");
    let api_id = api.api_id().expect("api id").to_string();
    let endpoint = api.api_endpoint().expect("endpoint").to_string();
    (api_id, endpoint)
}

#[tokio::test]
async fn quick_create_serves_payload_2_with_request_ids_after_add_permission() {
    let engine = TestServer::start_own_runtimes().await;
    let (name, api_id, endpoint) = quick_api(&engine).await;
    let addr = engine.server().local_addr;
    // Path-style on the address the client used: every HTTP client reaches it.
    assert_eq!(
        endpoint,
        format!("http://{addr}/_strato/execute-api/{api_id}")
    );
    let http = http_for(addr, &[host_of(&endpoint)]);

    // Without AddPermission the gateway may not invoke the function.
    let denied = send(http.get(format!("{endpoint}/items?x=1"))).await;
    assert_eq!(denied.status, 500);
    assert_eq!(denied.json(), json!({"message": "Internal Server Error"}));

    allow_apigateway(&engine, &name, &api_id).await;
    let answer = send(
        http.post(format!("{endpoint}/items/7?a=1&a=2&b=x"))
            .header("cookie", "c1=v1; c2=v2")
            .header("x-one", "1")
            .header("content-type", "application/json")
            .body(r#"{"k":"v"}"#),
    )
    .await;
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    assert!(answer.header("apigw-requestid").is_some());
    assert!(answer.header("x-amzn-requestid").is_some());
    assert_eq!(answer.header("x-echo"), Some("yes"));
    let cookies: Vec<_> = answer.headers.get_all("set-cookie").iter().collect();
    assert_eq!(cookies.len(), 2);
    let event = answer.json();
    assert_eq!(event["version"], "2.0");
    assert_eq!(event["routeKey"], "$default");
    assert_eq!(event["rawPath"], "/items/7");
    assert_eq!(event["rawQueryString"], "a=1&a=2&b=x");
    assert_eq!(event["queryStringParameters"]["a"], "1,2");
    assert_eq!(event["cookies"], json!(["c1=v1", "c2=v2"]));
    assert_eq!(event["headers"]["x-one"], "1");
    assert_eq!(event["headers"]["x-forwarded-for"], "127.0.0.1");
    assert_eq!(event["headers"]["x-forwarded-proto"], "http");
    assert!(event["headers"]["x-amzn-trace-id"]
        .as_str()
        .is_some_and(|t| t.starts_with("Root=1-")));
    assert_eq!(event["body"], r#"{"k":"v"}"#);
    assert_eq!(event["isBase64Encoded"], false);
    assert_eq!(event["requestContext"]["http"]["method"], "POST");
    assert_eq!(event["requestContext"]["stage"], "$default");
    assert_eq!(event["requestContext"]["apiId"], api_id.as_str());
    assert_eq!(
        event["requestContext"]["requestId"].as_str(),
        answer.header("apigw-requestid")
    );

    // Path-style addressing reaches the same API.
    let path_style =
        send(http.get(format!("http://{addr}/_strato/execute-api/{api_id}/plain"))).await;
    assert_eq!(path_style.status, 200);
    engine.stop().await;
}

#[tokio::test]
async fn payload_2_infers_json_answers_and_carries_binary_both_ways() {
    let engine = TestServer::start_own_runtimes().await;
    let (name, api_id, endpoint) = quick_api(&engine).await;
    allow_apigateway(&engine, &name, &api_id).await;
    let http = http_for(engine.server().local_addr, &[host_of(&endpoint)]);

    let plain = send(http.get(format!("{endpoint}/plain"))).await;
    assert_eq!(plain.status, 200);
    assert_eq!(plain.header("content-type"), Some("application/json"));
    assert_eq!(plain.json(), json!({"hello": "world"}));

    let binary = send(http.get(format!("{endpoint}/binary"))).await;
    assert_eq!(binary.status, 200);
    assert_eq!(binary.body, vec![0, 1, 2, 255]);

    let upload = send(
        http.post(format!("{endpoint}/upload"))
            .header("content-type", "application/octet-stream")
            .body(vec![0u8, 159, 146, 150]),
    )
    .await;
    let event = upload.json();
    assert_eq!(event["isBase64Encoded"], true);
    assert_eq!(
        event["body"],
        base64::engine::general_purpose::STANDARD.encode([0u8, 159, 146, 150])
    );
    engine.stop().await;
}

#[tokio::test]
async fn function_errors_and_malformed_answers_are_internal_server_errors() {
    let engine = TestServer::start_own_runtimes().await;
    let (name, api_id, endpoint) = quick_api(&engine).await;
    allow_apigateway(&engine, &name, &api_id).await;
    let http = http_for(engine.server().local_addr, &[host_of(&endpoint)]);
    for path in ["crash", "malformed"] {
        let answer = send(http.get(format!("{endpoint}/{path}"))).await;
        assert_eq!(answer.status, 500, "{path}");
        assert_eq!(answer.json(), json!({"message": "Internal Server Error"}));
    }
    engine.stop().await;
}

/// Creates an HTTP API with explicit routes to the echo function and a
/// `$default` auto-deploy stage; returns (client, api id, endpoint).
async fn api_with_routes(
    engine: &TestServer,
    function: &str,
    payload: &str,
    route_keys: &[&str],
) -> (aws_sdk_apigatewayv2::Client, String, String) {
    let client = apigw(engine);
    let api = create_http_api(&client, "routes").await;
    let api_id = api.api_id().expect("id").to_string();
    let integration = client
        .create_integration()
        .api_id(&api_id)
        .integration_type(IntegrationType::AwsProxy)
        .integration_uri(function_arn(ACCOUNT, function))
        .payload_format_version(payload)
        .send()
        .await
        .expect("create integration");
    let target = format!("integrations/{}", integration.integration_id().expect("id"));
    for key in route_keys {
        client
            .create_route()
            .api_id(&api_id)
            .route_key(*key)
            .target(&target)
            .send()
            .await
            .expect("create route");
    }
    client
        .create_stage()
        .api_id(&api_id)
        .stage_name("$default")
        .auto_deploy(true)
        .send()
        .await
        .expect("create stage");
    let endpoint = client
        .get_api()
        .api_id(&api_id)
        .send()
        .await
        .expect("get api")
        .api_endpoint()
        .expect("endpoint")
        .to_string();
    (client, api_id, endpoint)
}

#[tokio::test]
async fn the_most_specific_route_is_chosen_as_aws_orders_routes() {
    let engine = TestServer::start_own_runtimes().await;
    let name = deploy_node(&engine, "gw-routes", ECHO_FUNCTION).await;
    let (_, api_id, endpoint) = api_with_routes(
        &engine,
        &name,
        "2.0",
        &[
            "GET /pets/dog/1",
            "GET /pets/dog/{id}",
            "GET /pets/{proxy+}",
            "ANY /{proxy+}",
            "$default",
        ],
    )
    .await;
    allow_apigateway(&engine, &name, &api_id).await;
    let http = http_for(engine.server().local_addr, &[host_of(&endpoint)]);
    for (method, path, expected) in [
        ("GET", "/pets/dog/1", "GET /pets/dog/1"),
        ("GET", "/pets/dog/2", "GET /pets/dog/{id}"),
        ("GET", "/pets/cat/1", "GET /pets/{proxy+}"),
        ("POST", "/pets/dog/1", "ANY /{proxy+}"),
        ("GET", "/", "$default"),
    ] {
        let answer =
            send(http.request(method.parse().expect("method"), format!("{endpoint}{path}"))).await;
        assert_eq!(answer.status, 200, "{method} {path}");
        assert_eq!(answer.json()["routeKey"], expected, "{method} {path}");
    }
    let answer = send(http.get(format!("{endpoint}/pets/dog/2"))).await;
    assert_eq!(answer.json()["pathParameters"], json!({"id": "2"}));
    let answer = send(http.get(format!("{endpoint}/pets/a/b/c"))).await;
    assert_eq!(answer.json()["pathParameters"], json!({"proxy": "a/b/c"}));
    engine.stop().await;
}

#[tokio::test]
async fn payload_1_events_and_answers_follow_the_1_0_contract() {
    let engine = TestServer::start_own_runtimes().await;
    let name = deploy_node(&engine, "gw-v1", ECHO_FUNCTION).await;
    let (_, api_id, endpoint) = api_with_routes(&engine, &name, "1.0", &["GET /items/{id}"]).await;
    allow_apigateway(&engine, &name, &api_id).await;
    let http = http_for(engine.server().local_addr, &[host_of(&endpoint)]);
    let answer = send(
        http.get(format!("{endpoint}/items/9?q=1&q=2"))
            .header("x-h", "v"),
    )
    .await;
    assert_eq!(answer.status, 200);
    let multi: Vec<_> = answer.headers.get_all("x-multi").iter().collect();
    assert_eq!(multi.len(), 2);
    let event = answer.json();
    assert_eq!(event["version"], "1.0");
    assert_eq!(event["resource"], "/items/{id}");
    assert_eq!(event["path"], "/items/9");
    assert_eq!(event["httpMethod"], "GET");
    assert_eq!(event["pathParameters"], json!({"id": "9"}));
    assert_eq!(event["queryStringParameters"]["q"], "2");
    assert_eq!(
        event["multiValueQueryStringParameters"]["q"],
        json!(["1", "2"])
    );
    assert_eq!(event["multiValueHeaders"]["x-h"], json!(["v"]));
    assert_eq!(event["requestContext"]["stage"], "$default");
    assert!(event["requestContext"]["requestId"].is_string());
    assert_eq!(event["body"], Value::Null);
    engine.stop().await;
}

/// A backend that answers with what it received.
async fn echo_backend() -> SocketAddr {
    use axum::extract::Request;
    let app = axum::Router::new().fallback(|request: Request| async move {
        let headers: serde_json::Map<String, Value> = request
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.to_string(),
                    Value::String(v.to_str().unwrap_or("").to_string()),
                )
            })
            .collect();
        let body = json!({
            "method": request.method().as_str(),
            "path": request.uri().path(),
            "query": request.uri().query(),
            "headers": headers,
        });
        (
            [("content-type", "application/json"), ("x-backend", "yes")],
            body.to_string(),
        )
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind backend");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

#[tokio::test]
async fn http_proxy_forwards_with_stage_variables_and_parameter_mapping() {
    let engine = TestServer::start_own_runtimes().await;
    let backend = echo_backend().await;
    let client = apigw(&engine);
    let api_id = create_http_api(&client, "proxy")
        .await
        .api_id()
        .expect("id")
        .to_string();
    let integration = client
        .create_integration()
        .api_id(&api_id)
        .integration_type(IntegrationType::HttpProxy)
        .integration_method("ANY")
        .integration_uri("http://${stageVariables.backend}/base/{proxy}")
        .payload_format_version("1.0")
        .request_parameters("append:header.x-mapped", "from-$request.header.x-in")
        .request_parameters("overwrite:querystring.added", "yes")
        .send()
        .await
        .expect("create integration");
    client
        .create_route()
        .api_id(&api_id)
        .route_key("ANY /svc/{proxy+}")
        .target(format!(
            "integrations/{}",
            integration.integration_id().expect("id")
        ))
        .send()
        .await
        .expect("route");
    client
        .create_stage()
        .api_id(&api_id)
        .stage_name("beta")
        .stage_variables("backend", backend.to_string())
        .send()
        .await
        .expect("stage");
    // A named stage without auto-deploy serves nothing until deployed.
    let endpoint = format!(
        "http://{api_id}.execute-api.localhost:{}",
        engine.server().local_addr.port()
    );
    let http = http_for(engine.server().local_addr, &[host_of(&endpoint)]);
    let before = send(http.get(format!("{endpoint}/beta/svc/a/b"))).await;
    assert_eq!(before.status, 404);
    assert_eq!(before.json(), json!({"message": "Not Found"}));
    client
        .create_deployment()
        .api_id(&api_id)
        .stage_name("beta")
        .send()
        .await
        .expect("deploy");
    let answer = send(
        http.put(format!("{endpoint}/beta/svc/a/b?x=1"))
            .header("x-in", "abc")
            .body("payload"),
    )
    .await;
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    assert_eq!(answer.header("x-backend"), Some("yes"));
    let seen = answer.json();
    assert_eq!(seen["method"], "PUT");
    assert_eq!(seen["path"], "/base/a/b");
    let query = seen["query"].as_str().unwrap_or("");
    assert!(
        query.contains("x=1") && query.contains("added=yes"),
        "{query}"
    );
    assert_eq!(seen["headers"]["x-mapped"], "from-abc");
    engine.stop().await;
}

#[tokio::test]
async fn throttling_refuses_requests_beyond_the_burst_with_429() {
    let engine = TestServer::start_own_runtimes().await;
    let (client, api_id, endpoint) = echo_backend_api(&engine, "throttled").await;
    // One token per 1000 seconds: exactly the burst passes, whatever the timing.
    update_default_stage(&client, &api_id)
        .default_route_settings(
            RouteSettings::builder()
                .throttling_rate_limit(0.001)
                .throttling_burst_limit(3)
                .build(),
        )
        .send()
        .await
        .expect("update stage");
    let http = http_for(engine.server().local_addr, &[host_of(&endpoint)]);
    let mut statuses = Vec::new();
    for _ in 0..8 {
        let answer = send(http.get(format!("{endpoint}/x"))).await;
        if answer.status == 429 {
            assert_eq!(answer.json(), json!({"message": "Too Many Requests"}));
        }
        statuses.push(answer.status);
    }
    assert_eq!(statuses, vec![200, 200, 200, 429, 429, 429, 429, 429]);

    // A route's own settings override the stage's defaults.
    update_default_stage(&client, &api_id)
        .route_settings(
            "$default",
            RouteSettings::builder()
                .throttling_rate_limit(0.001)
                .throttling_burst_limit(1)
                .build(),
        )
        .send()
        .await
        .expect("route settings");
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(send(http.get(format!("{endpoint}/y"))).await.status);
    }
    assert_eq!(statuses, vec![200, 429, 429]);
    engine.stop().await;
}

#[tokio::test]
async fn cors_preflight_is_answered_by_the_gateway() {
    let engine = TestServer::start_own_runtimes().await;
    let backend = echo_backend().await;
    let client = apigw(&engine);
    let api = client
        .create_api()
        .name("cors")
        .protocol_type(ProtocolType::Http)
        .target(format!("http://{backend}/"))
        .cors_configuration(
            Cors::builder()
                .allow_origins("https://example.com")
                .allow_methods("GET")
                .allow_methods("POST")
                .allow_headers("content-type")
                .expose_headers("x-backend")
                .max_age(300)
                .build(),
        )
        .send()
        .await
        .expect("create api");
    let endpoint = api.api_endpoint().expect("endpoint").to_string();
    let http = http_for(engine.server().local_addr, &[host_of(&endpoint)]);
    let preflight = send(
        http.request(reqwest::Method::OPTIONS, format!("{endpoint}/anything"))
            .header("origin", "https://example.com")
            .header("access-control-request-method", "POST"),
    )
    .await;
    assert_eq!(preflight.status, 204);
    assert_eq!(
        preflight.header("access-control-allow-origin"),
        Some("https://example.com")
    );
    assert_eq!(
        preflight.header("access-control-allow-methods"),
        Some("GET,POST")
    );
    assert_eq!(
        preflight.header("access-control-allow-headers"),
        Some("content-type")
    );
    assert_eq!(preflight.header("access-control-max-age"), Some("300"));
    let actual = send(
        http.get(format!("{endpoint}/anything"))
            .header("origin", "https://example.com"),
    )
    .await;
    assert_eq!(actual.status, 200);
    assert_eq!(
        actual.header("access-control-allow-origin"),
        Some("https://example.com")
    );
    assert_eq!(
        actual.header("access-control-expose-headers"),
        Some("x-backend")
    );
    let foreign = send(
        http.request(reqwest::Method::OPTIONS, format!("{endpoint}/anything"))
            .header("origin", "https://evil.example")
            .header("access-control-request-method", "POST"),
    )
    .await;
    assert!(foreign.header("access-control-allow-origin").is_none());
    engine.stop().await;
}

#[tokio::test]
async fn lambda_authorizer_simple_and_policy_answers_gate_routes() {
    let engine = TestServer::start_own_runtimes().await;
    let echo = deploy_node(&engine, "gw-authz-echo", ECHO_FUNCTION).await;
    let authorizer_fn = deploy_node(&engine, "gw-authz", AUTHORIZER_FUNCTION).await;
    let (client, api_id, endpoint) = api_with_routes(&engine, &echo, "2.0", &[]).await;
    allow_apigateway(&engine, &echo, &api_id).await;
    allow_apigateway(&engine, &authorizer_fn, &api_id).await;
    let integration_id = client
        .get_integrations()
        .api_id(&api_id)
        .send()
        .await
        .expect("integrations")
        .items()[0]
        .integration_id()
        .expect("id")
        .to_string();
    let uri = format!(
        "arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/{}/invocations",
        function_arn(ACCOUNT, &authorizer_fn)
    );
    for (route, simple, ttl) in [
        ("GET /simple", true, 0),
        ("GET /policy", false, 0),
        ("GET /cached", true, 300),
    ] {
        let authorizer = client
            .create_authorizer()
            .api_id(&api_id)
            .name(route.trim_start_matches("GET /"))
            .authorizer_result_ttl_in_seconds(ttl)
            .authorizer_type(AuthorizerType::Request)
            .authorizer_uri(&uri)
            .authorizer_payload_format_version("2.0")
            .enable_simple_responses(simple)
            .identity_source("$request.header.Authorization")
            .send()
            .await
            .expect("create authorizer");
        client
            .create_route()
            .api_id(&api_id)
            .route_key(route)
            .target(format!("integrations/{integration_id}"))
            .authorization_type(AuthorizationType::Custom)
            .authorizer_id(authorizer.authorizer_id().expect("id"))
            .send()
            .await
            .expect("create route");
    }
    let http = http_for(engine.server().local_addr, &[host_of(&endpoint)]);
    // No identity: 401 without calling the authorizer.
    let missing = send(http.get(format!("{endpoint}/simple"))).await;
    assert_eq!(missing.status, 401);
    assert_eq!(missing.json(), json!({"message": "Unauthorized"}));
    let denied = send(
        http.get(format!("{endpoint}/simple"))
            .header("authorization", "nope"),
    )
    .await;
    assert_eq!(denied.status, 403);
    assert_eq!(denied.json(), json!({"message": "Forbidden"}));
    let allowed = send(
        http.get(format!("{endpoint}/simple"))
            .header("authorization", "allow"),
    )
    .await;
    assert_eq!(allowed.status, 200);
    assert_eq!(
        allowed.json()["requestContext"]["authorizer"]["lambda"]["user"],
        "alice"
    );
    let policy_denied = send(
        http.get(format!("{endpoint}/policy"))
            .header("authorization", "nope")
            .header("x-answer", "policy"),
    )
    .await;
    assert_eq!(policy_denied.status, 403);
    let policy_allowed = send(
        http.get(format!("{endpoint}/policy"))
            .header("authorization", "allow")
            .header("x-answer", "policy"),
    )
    .await;
    assert_eq!(policy_allowed.status, 200);
    assert_eq!(
        policy_allowed.json()["requestContext"]["authorizer"]["lambda"]["role"],
        "admin"
    );
    // With a TTL the answer for the same identity comes from the cache:
    // the authorizer's own call count does not move.
    let calls =
        |answer: &Answer| answer.json()["requestContext"]["authorizer"]["lambda"]["calls"].clone();
    let first = send(
        http.get(format!("{endpoint}/cached"))
            .header("authorization", "allow"),
    )
    .await;
    let second = send(
        http.get(format!("{endpoint}/cached"))
            .header("authorization", "allow"),
    )
    .await;
    assert_eq!(first.status, 200);
    assert_eq!(calls(&first), calls(&second));
    let uncached_a = send(
        http.get(format!("{endpoint}/simple"))
            .header("authorization", "allow"),
    )
    .await;
    let uncached_b = send(
        http.get(format!("{endpoint}/simple"))
            .header("authorization", "allow"),
    )
    .await;
    assert_ne!(calls(&uncached_a), calls(&uncached_b));
    engine.stop().await;
}

/// The test's signing key and its JWKS, served with an OpenID configuration.
struct Issuer {
    url: String,
    key: ring::signature::RsaKeyPair,
}

impl Issuer {
    async fn start() -> Issuer {
        let der = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/gateway_jwt_rsa.der"
        ))
        .expect("test key");
        let key = ring::signature::RsaKeyPair::from_der(&der).expect("RSA key");
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let public = ring::rsa::PublicKeyComponents::<Vec<u8>>::from(key.public());
        let jwk = json!({
            "kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256",
            "n": b64.encode(&public.n),
            "e": b64.encode(&public.e),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind issuer");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let config = json!({ "issuer": url, "jwks_uri": format!("{url}/jwks.json") });
        let jwks = Arc::new(json!({ "keys": [jwk] }).to_string());
        let config = Arc::new(config.to_string());
        let app = axum::Router::new()
            .route(
                "/.well-known/openid-configuration",
                axum::routing::get(move || {
                    let c = config.clone();
                    async move { c.to_string() }
                }),
            )
            .route(
                "/jwks.json",
                axum::routing::get(move || {
                    let j = jwks.clone();
                    async move { j.to_string() }
                }),
            );
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Issuer { url, key }
    }

    fn token(&self, claims: Value) -> String {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header = b64.encode(json!({"alg": "RS256", "typ": "JWT", "kid": "k1"}).to_string());
        let payload = b64.encode(claims.to_string());
        let signed = format!("{header}.{payload}");
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(
                &ring::signature::RSA_PKCS1_SHA256,
                &ring::rand::SystemRandom::new(),
                signed.as_bytes(),
                &mut signature,
            )
            .expect("sign");
        format!("{signed}.{}", b64.encode(signature))
    }
}

#[tokio::test]
async fn jwt_authorizer_checks_signature_issuer_audience_expiry_and_scopes() {
    let engine = TestServer::start_own_runtimes().await;
    let backend = echo_backend().await;
    let issuer = Issuer::start().await;
    let client = apigw(&engine);
    let (api_id, endpoint) = quick_create(&client, "jwt", format!("http://{backend}/")).await;
    let authorizer = client
        .create_authorizer()
        .api_id(&api_id)
        .name("jwt")
        .authorizer_type(AuthorizerType::Jwt)
        .identity_source("$request.header.Authorization")
        .jwt_configuration(
            JwtConfiguration::builder()
                .issuer(&issuer.url)
                .audience("my-app")
                .build(),
        )
        .send()
        .await
        .expect("create authorizer");
    let routes = client
        .get_routes()
        .api_id(&api_id)
        .send()
        .await
        .expect("routes");
    let route_id = routes.items()[0].route_id().expect("id").to_string();
    client
        .update_route()
        .api_id(&api_id)
        .route_id(&route_id)
        .authorization_type(AuthorizationType::Jwt)
        .authorizer_id(authorizer.authorizer_id().expect("id"))
        .authorization_scopes("read")
        .send()
        .await
        .expect("update route");
    let http = http_for(engine.server().local_addr, &[host_of(&endpoint)]);
    let now = chrono::Utc::now().timestamp();
    let claims = |aud: &str, exp: i64, scope: &str| json!({"iss": issuer.url, "aud": aud, "sub": "user-1", "exp": exp, "iat": now, "scope": scope});
    let call = |token: Option<String>| {
        let mut request = http.get(format!("{endpoint}/data"));
        if let Some(t) = token {
            request = request.header("authorization", format!("Bearer {t}"));
        }
        send(request)
    };
    assert_eq!(call(None).await.status, 401);
    let good = call(Some(issuer.token(claims(
        "my-app",
        now + 600,
        "read write",
    ))))
    .await;
    assert_eq!(good.status, 200, "{}", String::from_utf8_lossy(&good.body));
    assert_eq!(
        call(Some(issuer.token(claims("other", now + 600, "read"))))
            .await
            .status,
        401
    );
    assert_eq!(
        call(Some(issuer.token(claims("my-app", now - 10, "read"))))
            .await
            .status,
        401
    );
    assert_eq!(
        call(Some(issuer.token(claims("my-app", now + 600, "write"))))
            .await
            .status,
        403
    );
    // Claims that were not signed: another token's signature on them.
    let signed = issuer.token(claims("my-app", now + 600, "read"));
    let other = issuer.token(claims("my-app", now + 900, "read write"));
    let signature = signed.rsplit('.').next().unwrap_or("");
    let unsigned_part = other.rsplit_once('.').map(|(p, _)| p).unwrap_or("");
    let forged = format!("{unsigned_part}.{signature}");
    assert_eq!(call(Some(forged)).await.status, 401);
    engine.stop().await;
}

#[tokio::test]
async fn function_url_with_auth_none_needs_public_permissions() {
    let engine = TestServer::start_own_runtimes().await;
    let name = deploy_node(&engine, "url-none", ECHO_FUNCTION).await;
    let config = engine
        .client
        .create_function_url_config()
        .function_name(&name)
        .auth_type(FunctionUrlAuthType::None)
        .send()
        .await
        .expect("create url");
    let url = config.function_url().to_string();
    assert_eq!(
        url,
        format!(
            "http://{}/_strato/lambda-url/{}/",
            engine.server().local_addr,
            url.trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or_default()
        )
    );
    let got = engine
        .client
        .get_function_url_config()
        .function_name(&name)
        .send()
        .await
        .expect("get url");
    assert_eq!(got.function_url(), url);
    assert_eq!(got.auth_type(), &FunctionUrlAuthType::None);
    let http = http_for(engine.server().local_addr, &[host_of(&url)]);
    let before = send(http.get(format!("{url}hello?q=1"))).await;
    assert_eq!(before.status, 403);

    engine
        .client
        .add_permission()
        .function_name(&name)
        .statement_id("url")
        .action("lambda:InvokeFunctionUrl")
        .principal("*")
        .function_url_auth_type(FunctionUrlAuthType::None)
        .send()
        .await
        .expect("permission");
    engine
        .client
        .add_permission()
        .function_name(&name)
        .statement_id("invoke")
        .action("lambda:InvokeFunction")
        .principal("*")
        .invoked_via_function_url(true)
        .send()
        .await
        .expect("permission");
    let answer = send(http.get(format!("{url}hello?q=1"))).await;
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let event = answer.json();
    assert_eq!(event["version"], "2.0");
    assert_eq!(event["rawPath"], "/hello");
    assert_eq!(event["rawQueryString"], "q=1");
    assert_eq!(event["routeKey"], "$default");
    engine
        .client
        .update_function_url_config()
        .function_name(&name)
        .cors(
            aws_sdk_lambda::types::Cors::builder()
                .allow_origins("https://site.example")
                .allow_methods("GET")
                .max_age(10)
                .build(),
        )
        .send()
        .await
        .expect("update url");
    let preflight = send(
        http.request(reqwest::Method::OPTIONS, format!("{url}hello"))
            .header("origin", "https://site.example")
            .header("access-control-request-method", "GET"),
    )
    .await;
    assert_eq!(
        preflight.header("access-control-allow-origin"),
        Some("https://site.example")
    );
    assert_eq!(
        preflight.header("access-control-allow-methods"),
        Some("GET")
    );
    let with_origin = send(
        http.get(format!("{url}hello"))
            .header("origin", "https://site.example"),
    )
    .await;
    assert_eq!(with_origin.status, 200);
    assert_eq!(
        with_origin.header("access-control-allow-origin"),
        Some("https://site.example")
    );
    let listed = engine
        .client
        .list_function_url_configs()
        .function_name(&name)
        .send()
        .await
        .expect("list urls");
    assert_eq!(listed.function_url_configs().len(), 1);
    engine
        .client
        .delete_function_url_config()
        .function_name(&name)
        .send()
        .await
        .expect("delete url");
    let gone = send(http.get(format!("{url}hello"))).await;
    assert_eq!(gone.status, 403);
    engine.stop().await;
}

#[tokio::test]
async fn function_url_with_aws_iam_accepts_only_signed_requests() {
    let engine = TestServer::start_own_runtimes().await;
    let name = deploy_node(&engine, "url-iam", ECHO_FUNCTION).await;
    let url = engine
        .client
        .create_function_url_config()
        .function_name(&name)
        .auth_type(FunctionUrlAuthType::AwsIam)
        .send()
        .await
        .expect("create url")
        .function_url()
        .to_string();
    let http = http_for(engine.server().local_addr, &[host_of(&url)]);
    let unsigned = send(http.get(format!("{url}private"))).await;
    assert_eq!(unsigned.status, 403);

    let signed = send(signed_get(&http, &format!("{url}private"), "lambda")).await;
    assert_eq!(
        signed.status,
        200,
        "{}",
        String::from_utf8_lossy(&signed.body)
    );
    let event = signed.json();
    assert_eq!(
        event["requestContext"]["authorizer"]["iam"]["accountId"],
        ACCOUNT
    );
    engine.stop().await;
}

#[tokio::test]
async fn a_throttled_function_is_a_429_at_the_gateway() {
    let engine = TestServer::start_own_runtimes().await;
    let (name, api_id, endpoint) = quick_api(&engine).await;
    allow_apigateway(&engine, &name, &api_id).await;
    engine
        .client
        .put_function_concurrency()
        .function_name(&name)
        .reserved_concurrent_executions(0)
        .send()
        .await
        .expect("reserve zero");
    let http = http_for(engine.server().local_addr, &[host_of(&endpoint)]);
    let answer = send(http.get(format!("{endpoint}/x"))).await;
    assert_eq!(answer.status, 429);
    assert_eq!(answer.json(), json!({"message": "Too Many Requests"}));
    engine.stop().await;
}

#[tokio::test]
async fn stage_access_logs_are_written_to_the_named_log_group() {
    let engine = TestServer::start_own_runtimes().await;
    let (client, api_id, endpoint) = echo_backend_api(&engine, "logged").await;
    update_default_stage(&client, &api_id)
        .access_log_settings(
            aws_sdk_apigatewayv2::types::AccessLogSettings::builder()
                .destination_arn(format!(
                    "arn:aws:logs:{REGION}:{ACCOUNT}:log-group:gw-access-{api_id}"
                ))
                .format(r#"{"requestId":"$context.requestId","method":"$context.httpMethod","status":"$context.status","route":"$context.routeKey","ip":"$context.identity.sourceIp"}"#)
                .build(),
        )
        .send()
        .await
        .expect("update stage");
    let http = http_for(engine.server().local_addr, &[host_of(&endpoint)]);
    let answer = send(http.get(format!("{endpoint}/logged"))).await;
    assert_eq!(answer.status, 200);
    let request_id = answer.header("apigw-requestid").expect("id").to_string();
    let page = engine
        .server()
        .observe
        .logs()
        .filter_events(
            strato_engine::logs::LogOwner {
                account: ACCOUNT.into(),
                region: REGION.into(),
            },
            format!("gw-access-{api_id}"),
            strato_observe::logstore::FilterQuery {
                stream_names: None,
                stream_prefix: None,
                start_ms: None,
                end_ms: None,
                pattern: None,
                next_token: None,
                limit: 100,
            },
        )
        .await
        .expect("read logs")
        .expect("log group exists");
    let lines: Vec<Value> = page
        .events
        .iter()
        .map(|e| serde_json::from_str(&e.message).expect("JSON access log line"))
        .collect();
    assert_eq!(
        lines,
        vec![json!({
            "requestId": request_id,
            "method": "GET",
            "status": "200",
            "route": "$default",
            "ip": "127.0.0.1",
        })]
    );
    engine.stop().await;
}

/// Signs a GET for `service` with the test account's key.
fn signed_get(http: &reqwest::Client, url: &str, service: &str) -> reqwest::RequestBuilder {
    sign_get(http, url, service, "test", "test")
}

#[tokio::test]
async fn aws_iam_routes_take_only_requests_signed_for_execute_api() {
    let engine = TestServer::start_own_runtimes().await;
    let (name, api_id, endpoint) = quick_api(&engine).await;
    allow_apigateway(&engine, &name, &api_id).await;
    let client = apigw(&engine);
    let route_id = client
        .get_routes()
        .api_id(&api_id)
        .send()
        .await
        .expect("routes")
        .items()[0]
        .route_id()
        .expect("id")
        .to_string();
    client
        .update_route()
        .api_id(&api_id)
        .route_id(&route_id)
        .authorization_type(AuthorizationType::AwsIam)
        .send()
        .await
        .expect("update route");
    let http = http_for(engine.server().local_addr, &[host_of(&endpoint)]);
    let unsigned = send(http.get(format!("{endpoint}/private"))).await;
    assert_eq!(unsigned.status, 403);
    let wrong_service = send(signed_get(&http, &format!("{endpoint}/private"), "lambda")).await;
    assert_eq!(wrong_service.status, 403);
    let signed = send(signed_get(
        &http,
        &format!("{endpoint}/private"),
        "execute-api",
    ))
    .await;
    assert_eq!(
        signed.status,
        200,
        "{}",
        String::from_utf8_lossy(&signed.body)
    );
    assert_eq!(
        signed.json()["requestContext"]["authorizer"]["iam"]["accountId"],
        ACCOUNT
    );
    engine.stop().await;
}

#[tokio::test]
async fn a_function_url_on_an_alias_invokes_the_alias_and_goes_with_the_function() {
    let engine = TestServer::start_own_runtimes().await;
    let name = deploy_node(&engine, "url-alias", ECHO_FUNCTION).await;
    publish_version(&engine.client, &name).await;
    engine
        .client
        .create_alias()
        .function_name(&name)
        .name("live")
        .function_version("1")
        .send()
        .await
        .expect("alias");
    let config = engine
        .client
        .create_function_url_config()
        .function_name(&name)
        .qualifier("live")
        .auth_type(FunctionUrlAuthType::AwsIam)
        .send()
        .await
        .expect("create url");
    assert_eq!(
        config.function_arn(),
        format!("{}:live", function_arn(ACCOUNT, &name))
    );
    let url = config.function_url().to_string();
    let http = http_for(engine.server().local_addr, &[host_of(&url)]);
    let answer = send(signed_get(&http, &format!("{url}x"), "lambda")).await;
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    // The unqualified function has no URL of its own.
    let missing = engine
        .client
        .get_function_url_config()
        .function_name(&name)
        .send()
        .await;
    assert!(missing.is_err());
    engine
        .client
        .delete_function()
        .function_name(&name)
        .send()
        .await
        .expect("delete function");
    let gone = send(signed_get(&http, &format!("{url}x"), "lambda")).await;
    assert_eq!(gone.status, 403);
    engine.stop().await;
}

#[tokio::test]
async fn apis_and_their_stages_survive_a_restart() {
    let backend = echo_backend().await;
    let mut engine = TestServer::start_own_runtimes().await;
    let api_id = apigw(&engine)
        .create_api()
        .name("durable")
        .protocol_type(ProtocolType::Http)
        .target(format!("http://{backend}/"))
        .send()
        .await
        .expect("create api")
        .api_id()
        .expect("id")
        .to_string();
    engine.restart().await;
    let endpoint = apigw(&engine)
        .get_api()
        .api_id(&api_id)
        .send()
        .await
        .expect("get api after restart")
        .api_endpoint()
        .expect("endpoint")
        .to_string();
    let http = http_for(engine.addr(), &[host_of(&endpoint)]);
    let answer = send(http.get(format!("{endpoint}/again"))).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json()["path"], "/");
    engine.stop().await;
}
