//! Waiting for state that settles in the background. Every wait polls
//! until the state is reached and fails only after [`SETTLE_DEADLINE`] (or
//! the caller's bound), a limit far above what a loaded machine needs: how
//! long something took is never what a test asserts.

use std::future::Future;
use std::time::{Duration, Instant};

use aws_sdk_lambda::types::{LastUpdateStatus, State};
use aws_sdk_lambda::Client;

use super::functions::get_configuration;

/// How long [`wait_active`] and [`wait_update_settled`] poll before they
/// give up: a hang guard, not a performance expectation.
pub const SETTLE_DEADLINE: Duration = Duration::from_secs(180);

/// How often the waits poll.
const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// Polls `check` until it returns Some, for at most `limit`.
pub async fn poll<T, F, Fut>(limit: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Polls GetFunctionConfiguration until `State` is Active; any state other
/// than Pending on the way fails the test.
pub async fn wait_active(client: &Client, name: &str) {
    let active = poll(SETTLE_DEADLINE, || async {
        let config = get_configuration(client, name).await;
        match config.state() {
            Some(State::Active) => Some(()),
            Some(State::Pending) => None,
            other => panic!("{name} settled in state {other:?}: {config:?}"),
        }
    })
    .await;
    assert!(active.is_some(), "{name} never became Active");
}

/// Polls until `LastUpdateStatus` is no longer InProgress and returns it.
pub async fn wait_update_settled(client: &Client, name: &str) -> LastUpdateStatus {
    poll(SETTLE_DEADLINE, || async {
        let config = get_configuration(client, name).await;
        match config.last_update_status() {
            Some(LastUpdateStatus::InProgress) => None,
            Some(status) => Some(status.clone()),
            None => panic!("{name} has no LastUpdateStatus: {config:?}"),
        }
    })
    .await
    .unwrap_or_else(|| panic!("{name} update never settled"))
}
