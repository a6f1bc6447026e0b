//! Items past their TTL attribute's time are deleted by a background sweep
//! (AWS deletes them within days; Strato within one sweep interval), and
//! the engine writes their REMOVE stream records as the service's own.

use std::sync::Arc;
use std::time::Duration;

use crate::DynamoDbService;

/// Sweeps every open database each `every`, until the runtime ends. The
/// handle lets the server stop it.
pub fn spawn_ttl_sweeper(
    service: Arc<DynamoDbService>,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            for db in service.open_databases() {
                let swept = tokio::task::spawn_blocking(move || db.sweep_ttl()).await;
                match swept {
                    Ok(Ok(0)) => {}
                    Ok(Ok(deleted)) => tracing::debug!(deleted, "dynamodb ttl sweep"),
                    Ok(Err(e)) => tracing::warn!(error = %e, "dynamodb ttl sweep"),
                    Err(e) => tracing::warn!(error = %e, "dynamodb ttl sweep task"),
                }
            }
        }
    })
}
