//! Functions as tests create them: unique names, CreateFunction requests
//! with the harness's defaults, and deployment that waits until Active.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_sdk_lambda::operation::create_function::builders::CreateFunctionFluentBuilder;
use aws_sdk_lambda::operation::get_function::GetFunctionOutput;
use aws_sdk_lambda::operation::get_function_configuration::GetFunctionConfigurationOutput;
use aws_sdk_lambda::operation::publish_version::PublishVersionOutput;
use aws_sdk_lambda::operation::update_function_code::builders::UpdateFunctionCodeFluentBuilder;
use aws_sdk_lambda::operation::update_function_configuration::builders::UpdateFunctionConfigurationFluentBuilder;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{Environment, FunctionCode, Runtime};
use aws_sdk_lambda::Client;

use super::fixtures::{handler_zip, zip_of};
use super::waits::wait_active;
use super::{REGION, ROLE};

/// A function name no other test in this process uses.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    format!("{prefix}-{}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

pub fn function_arn(account: &str, name: &str) -> String {
    format!("arn:aws:lambda:{REGION}:{account}:function:{name}")
}

/// The runtime control-plane test functions use: OS-only, so every host can
/// create it whatever language runtimes it has installed.
pub const RUNTIME: Runtime = Runtime::Providedal2023;

/// A CreateFunction request with [`ROLE`] and the given code, and AWS's
/// defaults for everything else.
pub fn create_request(
    client: &Client,
    name: &str,
    runtime: Runtime,
    handler: &str,
    zip: Vec<u8>,
) -> CreateFunctionFluentBuilder {
    client
        .create_function()
        .function_name(name)
        .runtime(runtime)
        .role(ROLE)
        .handler(handler)
        .code(FunctionCode::builder().zip_file(Blob::new(zip)).build())
}

/// A CreateFunction request for [`RUNTIME`] and `index.handler`.
pub fn create_builder(client: &Client, name: &str, zip: Vec<u8>) -> CreateFunctionFluentBuilder {
    create_request(client, name, RUNTIME, "index.handler", zip)
}

/// CreateFunction with [`create_builder`]'s defaults.
pub async fn create_function(client: &Client, name: &str, zip: Vec<u8>) {
    create_builder(client, name, zip)
        .send()
        .await
        .expect("create function");
}

/// Creates a function and waits until it is Active.
pub async fn create_active(client: &Client, name: &str) {
    create_function(client, name, handler_zip(name)).await;
    wait_active(client, name).await;
}

/// What a function that is invoked is created with: 256 MB and 30 s unless
/// the test says otherwise (what [`super::invocations`]'s assertions expect).
pub struct FunctionSpec {
    pub runtime: Runtime,
    pub handler: String,
    pub zip: Vec<u8>,
    pub memory_mb: i32,
    pub timeout_s: i32,
    pub env: Vec<(String, String)>,
}

impl FunctionSpec {
    pub fn new(runtime: Runtime, handler: &str, zip: Vec<u8>) -> FunctionSpec {
        FunctionSpec {
            runtime,
            handler: handler.into(),
            zip,
            memory_mb: 256,
            timeout_s: 30,
            env: Vec::new(),
        }
    }

    /// A Node.js (nodejs20.x) function whose `index.js` is `source`, with
    /// the handler `index.handler`.
    pub fn node(source: &str) -> FunctionSpec {
        FunctionSpec::new(
            Runtime::Nodejs20x,
            "index.handler",
            zip_of(&[("index.js", source.as_bytes())]),
        )
    }

    pub fn memory(mut self, mb: i32) -> Self {
        self.memory_mb = mb;
        self
    }

    pub fn timeout(mut self, seconds: i32) -> Self {
        self.timeout_s = seconds;
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// The CreateFunction request for this function.
    pub fn create_request(self, client: &Client, name: &str) -> CreateFunctionFluentBuilder {
        let mut create = create_request(client, name, self.runtime, &self.handler, self.zip)
            .memory_size(self.memory_mb)
            .timeout(self.timeout_s);
        if !self.env.is_empty() {
            let vars: HashMap<String, String> = self.env.into_iter().collect();
            create = create.environment(Environment::builder().set_variables(Some(vars)).build());
        }
        create
    }
}

/// CreateFunction, then waits until the function is Active.
pub async fn deploy(client: &Client, name: &str, spec: FunctionSpec) {
    spec.create_request(client, name)
        .send()
        .await
        .expect("create function");
    wait_active(client, name).await;
}

/// GetFunction of a function (or qualified ARN) that exists.
pub async fn get_function(client: &Client, name: impl Into<String>) -> GetFunctionOutput {
    let name = name.into();
    let request = client.get_function().function_name(&name);
    request
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetFunction {name}: {e:?}"))
}

/// GetFunctionConfiguration of a function (or qualified ARN) that exists.
pub async fn get_configuration(
    client: &Client,
    name: impl Into<String>,
) -> GetFunctionConfigurationOutput {
    let name = name.into();
    let request = client.get_function_configuration().function_name(&name);
    request
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetFunctionConfiguration {name}: {e:?}"))
}

/// PublishVersion with no conditions; the new version's configuration.
pub async fn publish_version(client: &Client, name: impl Into<String>) -> PublishVersionOutput {
    let name = name.into();
    let request = client.publish_version().function_name(&name);
    request
        .send()
        .await
        .unwrap_or_else(|e| panic!("PublishVersion {name}: {e:?}"))
}

/// An UpdateFunctionConfiguration request for `name`, to add settings to.
pub fn update_configuration(
    client: &Client,
    name: impl Into<String>,
) -> UpdateFunctionConfigurationFluentBuilder {
    client.update_function_configuration().function_name(name)
}

/// An UpdateFunctionCode request for `name`, to add the code to.
pub fn update_code(client: &Client, name: impl Into<String>) -> UpdateFunctionCodeFluentBuilder {
    client.update_function_code().function_name(name)
}
