//! Changes made by other processes on the same database (PostgreSQL's `LISTEN`/`NOTIFY`,
//! [`Store::listen`]): a key, an account's settings or credits, guardrails or a preset changed
//! on another gateway or with the CLI is forgotten here within milliseconds, instead of when
//! its cache entry expires. A lost connection is made again (backing off up to
//! [`MAX_BACKOFF`]); whatever may have changed meanwhile is forgotten, and the caches' short
//! lifetimes remain the fallback while it is down.
//!
//! [`Store::listen`]: switchyard_store::Store::listen

use std::time::Duration;

use switchyard_store::{Change, Heard};

use crate::state::SharedState;

/// The longest wait between two attempts to listen again.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Listens until the task is dropped (returns at once on SQLite).
pub async fn listen(state: SharedState) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match state.store.listen().await {
            Ok(None) => return,
            Ok(Some(mut listener)) => {
                tracing::debug!("listening to change notifications");
                // Anything may have changed before the listener was there.
                forget_everything(&state);
                backoff = Duration::from_millis(100);
                loop {
                    match listener.recv().await {
                        Ok(Heard::Change(change)) => apply(&state, change).await,
                        Ok(Heard::Lost) => {
                            tracing::warn!("change notifications were interrupted");
                            forget_everything(&state);
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "listening to change notifications failed");
                            break;
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "listening to change notifications failed"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Forgets what this gateway cached of `change`.
pub async fn apply(state: &SharedState, change: Change) {
    match change {
        Change::Key(hash) => {
            state.keys.invalidate(&hash).await;
            state.ledger.return_lease_soon(&hash);
        }
        Change::Settings(account) => state.settings.invalidate(&account).await,
        Change::Credits(account) => state.ledger.account_changed(&account),
        Change::Guardrails(_) => state.guardrails.clear(),
        Change::Preset { account, slug } => state.presets.invalidate(&account, &slug).await,
    }
}

fn forget_everything(state: &SharedState) {
    state.keys.clear();
    state.settings.clear();
    state.guardrails.clear();
    state.presets.clear();
}
