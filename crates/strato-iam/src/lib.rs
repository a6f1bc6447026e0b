//! IAM and STS for Strato.
pub mod policy;
