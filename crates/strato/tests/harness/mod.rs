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
