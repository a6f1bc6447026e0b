//! The Strato binary's library half: configuration, account administration
//! and the server, so integration tests can start a server in-process.

pub mod accounts;
mod listener;
pub mod observe_cli;
pub mod sandbox_ca;
pub mod server;
mod sns_queues;

pub use server::{RunningServer, ServerConfig, ServerError};
