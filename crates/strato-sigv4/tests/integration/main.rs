//! Integration tests: AWS's published vectors, round trips through the real
//! `aws-sigv4` signer, and the failure answers.

mod common;
mod errors;
mod roundtrip;
mod vectors;
