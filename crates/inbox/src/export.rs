//! Exports the whole history (every request and decision) as JSON Lines or
//! CSV, for archiving and spreadsheets.

use crate::{Inbox, Result};
use countersign_store::{HistoryQuery, PendingQuery};
use std::io::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per request, with its decisions.
    Jsonl,
    /// One row per request, the latest decision's delivery state included.
    Csv,
}

impl Inbox {
    /// Writes every request (pending and ended, oldest first).
    pub fn export(&self, format: Format, out: &mut dyn Write) -> Result<usize> {
        let mut all = self.history(&HistoryQuery::default())?;
        all.extend(self.pending(&PendingQuery::default())?);
        all.sort_by_key(|r| (r.created_at, r.id));
        let io = |e: std::io::Error| crate::InboxError::Invalid(format!("export failed: {e}"));
        match format {
            Format::Jsonl => {
                for r in &all {
                    let detail = self.detail(r.id)?;
                    let line = serde_json::to_string(&detail)
                        .map_err(|e| crate::InboxError::Invalid(e.to_string()))?;
                    writeln!(out, "{line}").map_err(io)?;
                }
            }
            Format::Csv => {
                let mut w = csv::Writer::from_writer(out);
                let csv_err =
                    |e: csv::Error| crate::InboxError::Invalid(format!("export failed: {e}"));
                w.write_record([
                    "id",
                    "account",
                    "platform",
                    "remote_id",
                    "kind",
                    "title",
                    "action",
                    "agent",
                    "status",
                    "outcome",
                    "created_at",
                    "deadline",
                    "decided_by",
                    "decided_at",
                    "comment",
                    "delivery",
                    "delivery_error",
                    "arguments",
                    "delivery_note",
                ])
                .map_err(csv_err)?;
                for r in &all {
                    let time = |t: Option<chrono::DateTime<chrono::Utc>>| {
                        t.map(|t| t.to_rfc3339()).unwrap_or_default()
                    };
                    w.write_record([
                        r.id.to_string(),
                        r.account.clone(),
                        r.platform.to_string(),
                        r.remote_id.clone(),
                        r.kind.to_string(),
                        r.title.clone(),
                        r.action.clone(),
                        r.agent.clone().unwrap_or_default(),
                        r.status.to_string(),
                        r.outcome.clone().unwrap_or_default(),
                        r.created_at.to_rfc3339(),
                        time(r.deadline),
                        r.decided_by.clone().unwrap_or_default(),
                        time(r.decided_at),
                        r.comment.clone().unwrap_or_default(),
                        r.delivery.map(|d| d.to_string()).unwrap_or_default(),
                        r.delivery_error.clone().unwrap_or_default(),
                        r.arguments.to_string(),
                        r.delivery_note.clone().unwrap_or_default(),
                    ])
                    .map_err(csv_err)?;
                }
                w.flush().map_err(io)?;
            }
        }
        Ok(all.len())
    }
}
