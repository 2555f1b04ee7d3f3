//! Exports requests and their decisions as JSON Lines or CSV, for archiving
//! and spreadsheets. Streamed: rows are read and written a page at a time,
//! so memory stays at one page however large the store is, and each page's
//! decisions and reports are fetched together rather than once per row.

use crate::{Inbox, InboxError, RequestDetail, RequestView};
use countersign_model::{Request, Status};
use countersign_store::{HistoryQuery, PendingQuery};
use std::io::Write;
use std::ops::ControlFlow;

/// Rows read, then written, together.
const BATCH: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per request, with its decisions.
    Jsonl,
    /// One row per request, the latest decision's delivery state included.
    Csv,
}

/// Why an export stopped.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Inbox(#[from] InboxError),
    /// Writing failed (a full disk, a closed pipe).
    #[error("export failed: {0}")]
    Write(#[from] std::io::Error),
}

impl From<countersign_store::StoreError> for ExportError {
    fn from(e: countersign_store::StoreError) -> Self {
        Self::Inbox(e.into())
    }
}

impl From<csv::Error> for ExportError {
    fn from(e: csv::Error) -> Self {
        match e.into_kind() {
            csv::ErrorKind::Io(io) => Self::Write(io),
            other => Self::Write(std::io::Error::other(format!("{other:?}"))),
        }
    }
}

/// Whether `q` selects anything less than every request.
fn filtered(q: &HistoryQuery) -> bool {
    !q.statuses.is_empty()
        || q.account.is_some()
        || q.platform.is_some()
        || q.agent.is_some()
        || q.search.is_some()
        || q.since.is_some()
        || q.until.is_some()
        || q.before.is_some()
        || q.limit.is_some()
}

const CSV_HEADER: [&str; 19] = [
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
];

/// The writer of one format.
#[allow(clippy::large_enum_variant)] // one per export, never moved around
enum Out<'a> {
    Jsonl(&'a mut dyn Write),
    Csv(csv::Writer<&'a mut dyn Write>),
}

/// Where rows go, a batch at a time.
struct Sink<'a> {
    inbox: &'a Inbox,
    out: Out<'a>,
    batch: Vec<Request>,
    written: u64,
    progress: &'a mut dyn FnMut(u64),
    failed: Option<ExportError>,
}

impl<'a> Sink<'a> {
    fn new(
        inbox: &'a Inbox,
        format: Format,
        out: &'a mut dyn Write,
        progress: &'a mut dyn FnMut(u64),
    ) -> Result<Self, ExportError> {
        let out = match format {
            Format::Jsonl => Out::Jsonl(out),
            Format::Csv => {
                let mut w = csv::Writer::from_writer(out);
                w.write_record(CSV_HEADER)?;
                Out::Csv(w)
            }
        };
        Ok(Self {
            inbox,
            out,
            batch: Vec::with_capacity(BATCH),
            written: 0,
            progress,
            failed: None,
        })
    }

    /// Adds one row; on failure keeps the error and says to stop.
    fn take(&mut self, r: Request) -> ControlFlow<()> {
        self.batch.push(r);
        if self.batch.len() < BATCH {
            return ControlFlow::Continue(());
        }
        match self.write_batch() {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => {
                self.failed = Some(e);
                ControlFlow::Break(())
            }
        }
    }

    fn write_batch(&mut self) -> Result<(), ExportError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let store = self.inbox.store();
        let ids: Vec<i64> = self.batch.iter().map(|r| r.id).collect();
        let mut decisions = store.decisions_for_requests(&ids)?;
        match &mut self.out {
            Out::Jsonl(out) => {
                let keys: Vec<(i64, &str)> = self
                    .batch
                    .iter()
                    .map(|r| (r.account_id, r.remote_id.as_str()))
                    .collect();
                let mut reports = store.activity_for_requests(&keys)?;
                for r in self.batch.drain(..) {
                    let decisions = decisions.remove(&r.id).unwrap_or_default();
                    let detail = RequestDetail {
                        request: RequestView::new(&r, decisions.last()),
                        link: r.link.clone(),
                        raw: r.raw.clone(),
                        first_seen_at: r.first_seen_at,
                        reports: reports
                            .remove(&(r.account_id, r.remote_id.clone()))
                            .unwrap_or_default(),
                        decisions,
                    };
                    serde_json::to_writer(&mut **out, &detail).map_err(std::io::Error::from)?;
                    out.write_all(b"\n")?;
                }
            }
            Out::Csv(w) => {
                for r in self.batch.drain(..) {
                    let latest = decisions.get(&r.id).and_then(|d| d.last());
                    let v = RequestView::new(&r, latest);
                    w.write_record(csv_row(&v))?;
                }
            }
        }
        self.written += ids.len() as u64;
        (self.progress)(self.written);
        Ok(())
    }

    fn finish(mut self) -> Result<u64, ExportError> {
        self.write_batch()?;
        match &mut self.out {
            Out::Jsonl(out) => out.flush()?,
            Out::Csv(w) => w.flush()?,
        }
        Ok(self.written)
    }
}

fn csv_row(r: &RequestView) -> [String; 19] {
    let time =
        |t: Option<chrono::DateTime<chrono::Utc>>| t.map(|t| t.to_rfc3339()).unwrap_or_default();
    [
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
    ]
}

impl Inbox {
    /// Writes the requests `q` selects and returns how many. With no
    /// filter: every request, pending and ended, oldest first. With
    /// filters: the ended requests history would list (newest first, ended
    /// within `since`/`until`), then the pending ones that match (created
    /// within `since`/`until`; none when a status other than pending is
    /// asked for, or a cursor given). `progress` hears the running count
    /// after each batch.
    pub fn export(
        &self,
        format: Format,
        q: &HistoryQuery,
        out: &mut dyn Write,
        progress: &mut dyn FnMut(u64),
    ) -> Result<u64, ExportError> {
        let mut sink = Sink::new(self, format, out, progress)?;
        if !filtered(q) {
            self.store().for_each_request(|r| sink.take(r))?;
        } else {
            let ended: Vec<Status> = q
                .statuses
                .iter()
                .copied()
                .filter(|s| !s.is_pending())
                .collect();
            if q.statuses.is_empty() || !ended.is_empty() {
                let hq = HistoryQuery {
                    statuses: ended,
                    ..q.clone()
                };
                self.store().for_each_history(&hq, |r| sink.take(r))?;
            }
            let wants_pending = q.before.is_none()
                && (q.statuses.is_empty() || q.statuses.iter().any(|s| s.is_pending()));
            if wants_pending && sink.failed.is_none() {
                // The inbox is small (it is what awaits a reviewer), so it
                // is read in one go.
                let pending = self.store().pending(&PendingQuery {
                    account: q.account.clone(),
                    platform: q.platform,
                    agent: q.agent.clone(),
                    search: q.search.clone(),
                    ..Default::default()
                })?;
                for r in pending {
                    let inside = q.since.is_none_or(|s| r.created_at >= s)
                        && q.until.is_none_or(|u| r.created_at < u);
                    if inside && sink.take(r).is_break() {
                        break;
                    }
                }
            }
        }
        if let Some(e) = sink.failed.take() {
            return Err(e);
        }
        sink.finish()
    }
}
