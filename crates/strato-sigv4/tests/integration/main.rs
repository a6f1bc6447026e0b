//! Integration tests: AWS's published vectors, round trips through the real
//! `aws-sigv4` signer, and the failure answers.

// A panic in a test (or its helpers) is a failed test, not a crashed server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod errors;
mod roundtrip;
mod vectors;
