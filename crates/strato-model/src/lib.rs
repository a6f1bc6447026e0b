//! Strato's domain model, free of I/O: what a function is, how it is named and
//! validated, and how an error looks on the AWS wire.
//!
//! Every other crate speaks these types; the HTTP layer only serializes them.

pub mod account;
pub mod arn;
pub mod code;
pub mod code_signing;
pub mod durability;
pub mod error;
pub mod event_invoke;
pub mod event_source_mapping;
pub mod function;
pub mod layer;
pub mod limits;
pub mod message_attribute;
pub mod policy;
pub mod recursion;
pub mod response_stream;
pub mod runtime;
pub mod telemetry;
pub mod time;
pub mod validate;
pub mod wire;

pub use account::{AccessKey, Account, AccountId, Caller};
pub use arn::{FunctionRef, Qualifier};
pub use code::{CodePackage, CodePackageError};
pub use error::{AwsError, ErrorCode, MessageKey};
pub use event_invoke::EventInvokeConfig;
pub use function::{
    Alias, FunctionConfig, FunctionRecord, FunctionState, LastUpdateStatus, ProvisionedConcurrency,
    RecursiveLoop, Resolved, RuntimeUpdate, LATEST,
};
pub use runtime::{Runtime, RuntimeFamily};
