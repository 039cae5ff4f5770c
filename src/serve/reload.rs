//! Hot reload: notice a new index generation and switch to it without dropping a request.
//!
//! Owns the cheap poll of the store's live version (`CURRENT`'s few bytes, or one small Milvus
//! query, once a second) and the switch: the new generation
//! is opened and its engine built on a blocking thread with the already loaded model, then swapped
//! in under a short write lock. A request holds the engine it started with (an `Arc`), so it
//! finishes on that generation and never sees a mix. A generation that fails to open leaves the
//! old one serving, and `/readyz` says why.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::error::{public_message, ServeError, ServeResult};
use super::{AppState, Slot};
use crate::error::{Error, Result};
use crate::sync::RecoverRw;

pub const POLL: Duration = Duration::from_secs(1);

/// Poll forever; the server's lifetime ends it.
pub async fn watch(state: AppState) {
    // A broken CURRENT is reported once, not once a second.
    let mut last_error = None;
    loop {
        tokio::time::sleep(POLL).await;
        match reload_if_changed(&state).await {
            Ok(_) => last_error = None,
            Err(e) => {
                let message = e.to_string();
                if last_error.as_ref() != Some(&message) {
                    tracing::warn!(
                        "index reload: {message}; still serving the previous generation"
                    );
                    last_error = Some(message);
                }
            }
        }
    }
}

/// Switch to the live generation if it is not the one being served. `Ok(true)` when it switched.
pub async fn reload_if_changed(state: &AppState) -> ServeResult<bool> {
    let _one_at_a_time = state.reloading.lock().await;
    let Ok(engine) = state.engine() else {
        return Ok(false);
    };
    let Some(build) = state.build.get().cloned() else {
        return Ok(false);
    };
    let Some(store) = state.store.clone() else {
        return Ok(false);
    };
    let served = engine.index().version().to_string();
    let model = engine.index().manifest().model_id.clone();
    let opened = tokio::task::spawn_blocking(move || -> Result<Option<_>> {
        match store.live_version()? {
            Some(live) if live != served => match store.open(Some(&model))? {
                Some(index) => Ok(Some(build.build(index)?)),
                None => Ok(None),
            },
            _ => Ok(None),
        }
    })
    .await
    .map_err(|e| Error::Worker(e.to_string()));
    match opened.and_then(|r| r) {
        Ok(None) => {
            *state.reload_error.write_recovered() = None;
            Ok(false)
        }
        Ok(Some(next)) => {
            let generation = next.index().location();
            *state.engine.write_recovered() = Slot::Ready(Arc::new(next));
            *state.reload_error.write_recovered() = None;
            state.metrics.reloads.fetch_add(1, Ordering::Relaxed);
            tracing::info!("serving generation {generation}");
            Ok(true)
        }
        Err(e) => {
            let e = ServeError::from(e);
            *state.reload_error.write_recovered() = Some(public_message(&e));
            Err(e)
        }
    }
}
