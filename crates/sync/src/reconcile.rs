//! Reconciling: make the store's pending set for an account match the
//! platform's, and learn how the requests that vanished ended.

use crate::{Engine, SyncError, SyncEvent};
use countersign_connector::{Connector, Update};
use countersign_model::{Account, ObservedActivity, ObservedRequest};
use std::collections::HashSet;

/// What one reconcile found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Reconciled {
    /// Requests pending on the platform.
    pub pending: usize,
    /// Of those, first seen now.
    pub new: usize,
    /// Requests that left the pending list since the last look.
    pub resolved: usize,
}

impl Engine {
    /// Reads everything pending now and brings the store in line.
    pub(crate) async fn reconcile(
        &self,
        account: &Account,
        connector: &dyn Connector,
    ) -> Result<Reconciled, SyncError> {
        let snapshot = connector.reconcile().await?;
        let mut report = Reconciled {
            pending: snapshot.pending.len(),
            ..Default::default()
        };
        // One transaction for the whole snapshot; events only for what is
        // new or changed.
        let now = self.now();
        for up in self
            .shared
            .store
            .upsert_requests(account.id, &snapshot.pending, now)?
        {
            if up.created {
                report.new += 1;
                self.emit(SyncEvent::RequestAdded(up.request));
            } else if up.changed {
                self.emit(SyncEvent::RequestUpdated(up.request));
            }
        }
        for item in &snapshot.activity {
            self.add_activity(account, item)?;
        }
        if let Some(note) = &snapshot.note {
            if self.shared.store.set_health_note(account.id, note)? {
                if let Some(health) = self.shared.store.health(account.id)? {
                    self.emit(SyncEvent::Health {
                        account: account.name.clone(),
                        health,
                    });
                }
            }
        }

        let listed: HashSet<&str> = snapshot
            .pending
            .iter()
            .map(|r| r.remote_id.as_str())
            .collect();
        let mut gone: Vec<_> = self
            .shared
            .store
            .pending_for_account(account.id)?
            .into_iter()
            .filter(|r| !listed.contains(r.remote_id.as_str()))
            .collect();
        if snapshot.truncated {
            // A capped list holds the newest rows; only a request newer than
            // the oldest listed one is known to be gone.
            let oldest = snapshot.pending.iter().map(|r| r.created_at).min();
            gone.retain(|r| oldest.is_some_and(|o| r.created_at > o));
        }
        if !gone.is_empty() {
            for res in connector.resolve_missing(&gone).await? {
                self.apply_resolution(account, &res)?;
                report.resolved += 1;
            }
        }
        Ok(report)
    }

    /// Stores a request, then announces it. True when it is new.
    pub(crate) fn upsert(
        &self,
        account: &Account,
        observed: &ObservedRequest,
    ) -> Result<bool, SyncError> {
        let up = self
            .shared
            .store
            .upsert_request(account.id, observed, self.now())?;
        if up.created {
            self.emit(SyncEvent::RequestAdded(up.request));
        } else if up.changed {
            self.emit(SyncEvent::RequestUpdated(up.request));
        }
        Ok(up.created)
    }

    pub(crate) fn add_activity(
        &self,
        account: &Account,
        item: &ObservedActivity,
    ) -> Result<(), SyncError> {
        if let Some(stored) = self.shared.store.insert_activity(account.id, item)? {
            self.emit(SyncEvent::Activity(stored));
        }
        Ok(())
    }

    /// Applies one live update. `Ok(true)` asks for a reconcile.
    pub(crate) fn apply_update(
        &self,
        account: &Account,
        update: Update,
    ) -> Result<bool, SyncError> {
        match update {
            Update::Request(observed) => {
                self.upsert(account, observed.as_ref())?;
            }
            Update::Resolved(res) => self.apply_resolution(account, &res)?,
            Update::Activity(item) => self.add_activity(account, &item)?,
            Update::Resync => return Ok(true),
        }
        Ok(false)
    }
}
