//! The asynchronous half of create and update: AWS answers first
//! (`State: Pending`, `LastUpdateStatus: InProgress`) and settles the change
//! afterwards. Settling prepares the code (extracts the package once, so cold
//! starts bind it directly) and then reports `Active` / `Successful`, or
//! `Failed` with a reason.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use strato_model::{FunctionConfig, FunctionRecord, FunctionState, LastUpdateStatus};

use crate::ApiState;

/// What a settle task needs to find the change it settles.
pub struct PendingChange {
    pub account: String,
    pub region: String,
    pub name: String,
    /// Guards against settling a function that was deleted and created again.
    pub created_at: DateTime<Utc>,
    pub code_id: String,
    /// The layer packages of `$LATEST`, in order: their merged `/opt` tree
    /// is built while settling, as the code is extracted.
    pub layer_ids: Vec<String>,
}

impl PendingChange {
    /// The change a function record is settling.
    pub fn of(record: &FunctionRecord) -> PendingChange {
        PendingChange {
            account: record.account.clone(),
            region: record.region.clone(),
            name: record.name().to_string(),
            created_at: record.created_at,
            code_id: record.latest.code.sha256_hex.clone(),
            layer_ids: record
                .latest
                .layers
                .iter()
                .map(|l| l.code.sha256_hex.clone())
                .collect(),
        }
    }
}

/// Settles every function a previous process left `Pending` or
/// `InProgress` (it stopped between answering and settling), so none stays
/// stuck refusing updates. Returns how many were resumed.
pub async fn resume_settling(state: &Arc<ApiState>) -> Result<usize, strato_store::StoreError> {
    let unsettled: Vec<_> = state
        .catalog
        .store()
        .list_all_functions()
        .await?
        .into_iter()
        .filter(|record| record.is_settling())
        .collect();
    for record in &unsettled {
        spawn_settle(state.clone(), PendingChange::of(record));
    }
    Ok(unsettled.len())
}

pub fn spawn_settle(state: Arc<ApiState>, change: PendingChange) {
    tokio::spawn(async move {
        let code = state.code.clone();
        let code_id = change.code_id.clone();
        let layer_ids = change.layer_ids.clone();
        let prepare = move || {
            code.extract(&code_id)?;
            if !layer_ids.is_empty() {
                code.merged_layers(&layer_ids)?;
            }
            Ok::<(), strato_store::CodeStoreError>(())
        };
        let prepared = match tokio::task::spawn_blocking(prepare).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(err)) => Err(err.to_string()),
            Err(err) => Err(format!("code preparation stopped: {err}")),
        };
        let PendingChange {
            account,
            region,
            name,
            created_at,
            code_id,
            ..
        } = change;
        let result = state
            .catalog
            .update(
                &account,
                &region,
                &name,
                Box::new(move |record| {
                    if record.created_at != created_at {
                        return Ok(());
                    }
                    // Versions published with the change settle with it.
                    for version in record.versions.values_mut() {
                        if version.code.sha256_hex == code_id && version.is_settling() {
                            settle_config(version, &prepared);
                        }
                    }
                    let latest = &mut record.latest;
                    if latest.code.sha256_hex != code_id || !latest.is_settling() {
                        return Ok(());
                    }
                    settle_config(latest, &prepared);
                    Ok(())
                }),
            )
            .await;
        if let Err(err) = result {
            // The function may have been deleted meanwhile; nothing to settle.
            tracing::debug!(function = %name, error = %err, "settle skipped");
        }
    });
}

/// Applies the outcome of preparing the code to one version.
fn settle_config(latest: &mut FunctionConfig, prepared: &Result<(), String>) {
    match prepared.clone() {
        Ok(()) => {
            latest.state = FunctionState::Active;
            latest.state_reason = None;
            latest.state_reason_code = None;
            latest.last_update_status = Some(LastUpdateStatus::Successful);
            latest.last_update_status_reason = None;
            latest.last_update_status_reason_code = None;
        }
        Err(reason) => {
            if latest.state == FunctionState::Pending {
                latest.state = FunctionState::Failed;
                latest.state_reason = Some(reason.clone());
                latest.state_reason_code = Some("InvalidZipFileException".into());
            }
            latest.last_update_status = Some(LastUpdateStatus::Failed);
            latest.last_update_status_reason = Some(reason);
            latest.last_update_status_reason_code = Some("InvalidZipFileException".into());
        }
    }
    latest.revision_id = uuid::Uuid::new_v4().to_string();
}
