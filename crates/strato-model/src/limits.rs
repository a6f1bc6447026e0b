//! AWS Lambda's quotas, as Strato enforces them.

/// A `ZipFile` uploaded directly (AWS: 50 MB).
pub const MAX_ZIPPED_CODE_BYTES: u64 = 52_428_800;
/// A function's code and layers once extracted (AWS: 250 MB).
pub const MAX_UNZIPPED_CODE_BYTES: u64 = 262_144_000;
/// The largest CreateFunction request body AWS accepts.
pub const MAX_CREATE_REQUEST_BYTES: usize = 70_167_211;
/// Environment variables, measured as their JSON (AWS: 4 KB).
pub const MAX_ENVIRONMENT_BYTES: usize = 4096;
pub const MIN_MEMORY_MB: i64 = 128;
pub const MAX_MEMORY_MB: i64 = 10_240;
pub const DEFAULT_MEMORY_MB: i64 = 128;
pub const MIN_TIMEOUT_S: i64 = 1;
pub const MAX_TIMEOUT_S: i64 = 900;
pub const DEFAULT_TIMEOUT_S: i64 = 3;
pub const MIN_EPHEMERAL_MB: i64 = 512;
pub const MAX_EPHEMERAL_MB: i64 = 10_240;
pub const DEFAULT_EPHEMERAL_MB: i64 = 512;
/// Concurrency limit of a new account per region.
pub const DEFAULT_ACCOUNT_CONCURRENCY: u32 = 1000;
/// AWS keeps at least this many executions unreserved.
pub const MIN_UNRESERVED_CONCURRENCY: u32 = 100;
/// Tags per resource.
pub const MAX_TAGS: usize = 50;
/// A resource policy document (AWS: 20 KB).
pub const MAX_POLICY_BYTES: usize = 20_480;
/// Payload of a synchronous invocation, request and response (6 MB).
pub const MAX_SYNC_PAYLOAD_BYTES: usize = 6_291_456;
/// Payload of an asynchronous invocation (1 MB).
pub const MAX_ASYNC_PAYLOAD_BYTES: usize = 1_048_576;
/// Default and maximum page size of list operations.
pub const DEFAULT_LIST_PAGE: usize = 50;
pub const MAX_LIST_PAGE: usize = 10_000;
/// One vCPU per this much memory, as on AWS.
pub const MEMORY_MB_PER_VCPU: u64 = 1769;
