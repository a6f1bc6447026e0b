//! The one harness every integration test in `crates/strato/tests/` uses:
//! an in-process Strato server on an ephemeral port ([`server`]), AWS SDK
//! clients and raw SigV4 requests pointed at it ([`clients`]), the functions
//! and archives tests deploy ([`functions`], [`fixtures`]), invocations and
//! what every runtime must report ([`invocations`]), and polling for state that
//! settles in the background ([`waits`]).
//!
//! Each test binary compiles this module and uses a part of it, hence the
//! `dead_code` allowance.

// A panic in a test (or its helpers) is a failed test, not a crashed server.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(dead_code)]

/// The tests every runtime's test function passes, whatever its language:
/// hello with Lambda's log framing, the reserved environment, a warm
/// instance keeping its globals, concurrent invocations on distinct
/// instances. Expands, in a test module, to one `#[tokio::test]` each;
/// `$deploy(&TestServer, &str)` deploys the module's function under a name,
/// `$prefix` starts the names, `$hello` is what `hello` answers and
/// `$handler` the function's handler.
#[macro_export]
macro_rules! runtime_conformance_tests {
    ($prefix:ident, $deploy:ident, $hello:literal, $handler:literal) => {
        #[tokio::test]
        async fn says_hello_with_lambda_log_framing() {
            let engine = TestServer::start_own_runtimes().await;
            let name = unique_name(concat!(stringify!($prefix), "-hello"));
            $deploy(&engine, &name).await;
            assert_says_hello(&engine.client, &name, $hello).await;
            engine.stop().await;
        }

        #[tokio::test]
        async fn environment_has_lambda_and_user_variables() {
            let engine = TestServer::start_own_runtimes().await;
            let name = unique_name(concat!(stringify!($prefix), "-env"));
            $deploy(&engine, &name).await;
            assert_environment(&engine.client, &name, $handler).await;
            engine.stop().await;
        }

        #[tokio::test]
        async fn warm_instance_keeps_its_globals() {
            let engine = TestServer::start_own_runtimes().await;
            let name = unique_name(concat!(stringify!($prefix), "-warm"));
            $deploy(&engine, &name).await;
            assert_warm_reuse(&engine.client, &name).await;
            engine.stop().await;
        }

        #[tokio::test]
        async fn concurrent_invocations_run_on_distinct_instances() {
            let engine = TestServer::start_own_runtimes().await;
            let name = unique_name(concat!(stringify!($prefix), "-conc"));
            $deploy(&engine, &name).await;
            assert_concurrent_invocations_use_distinct_instances(&engine.client, &name, 3).await;
            engine.stop().await;
        }
    };
}

pub mod clients;
pub mod fixtures;
pub mod functions;
pub mod invocations;
pub mod server;
pub mod waits;

// Each test binary uses a part of these; a part unused is not an error.
#[allow(unused_imports)]
pub use clients::*;
#[allow(unused_imports)]
pub use fixtures::*;
#[allow(unused_imports)]
pub use functions::*;
#[allow(unused_imports)]
pub use invocations::*;
#[allow(unused_imports)]
pub use server::*;
#[allow(unused_imports)]
pub use waits::*;

/// The region every test server serves and every client signs for.
pub const REGION: &str = "us-east-1";
/// The local account a fresh data directory starts with (key `test`/`test`).
pub const ACCOUNT: &str = "000000000000";
/// An execution role in [`ACCOUNT`]; Strato records it without assuming it.
pub const ROLE: &str = "arn:aws:iam::000000000000:role/lambda-role";
