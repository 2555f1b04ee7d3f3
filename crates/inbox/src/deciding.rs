//! Deciding: the decision is written to the store (and its request leaves
//! the inbox) first, then delivered at once if the platform answers, else
//! left queued for the sync engine to retry.

use crate::{HistoryPageView, Inbox, InboxError, RequestDetail, RequestRow, RequestView, Result};
use countersign_model::{Decision, DecisionDraft, Delivery, Outcome};
use countersign_store::{HistoryCursor, HistoryQuery, PendingQuery};
use serde_json::Value;
use std::time::Duration;

/// (members still in play, of them decided) per (account, group key).
type GroupCounts = std::collections::HashMap<(i64, String), (usize, usize)>;

/// Longest comment accepted; platforms and terminals choke on more.
const MAX_COMMENT: usize = 10_000;

/// A decision as the user makes it.
#[derive(Debug, Clone)]
pub struct DecisionInput {
    pub request_id: i64,
    pub outcome: Outcome,
    pub comment: Option<String>,
    pub edited_arguments: Option<Value>,
    pub response: Option<String>,
}

/// Refuses, before anything is stored or sent, a decision the request does
/// not offer, one the account may not make, and an answer that does not fit
/// the request's schema: a wrong answer can wedge an agent for good.
fn check_allowed(request: &countersign_model::Request, input: &DecisionInput) -> Result<()> {
    if !request.status.is_pending() {
        return Err(InboxError::Invalid(format!(
            "request {} is already {}",
            request.id, request.status
        )));
    }
    if let Some(why) = &request.extra.read_only {
        return Err(InboxError::Invalid(format!(
            "you cannot answer this request: {why}"
        )));
    }
    if !request.allows(input.outcome.requires()) {
        let offered: Vec<&str> = request
            .allowed_decisions
            .iter()
            .map(|d| d.as_str())
            .collect();
        return Err(InboxError::Invalid(format!(
            "{} cannot `{}` this request; it accepts only: {}",
            request.platform,
            input.outcome,
            if offered.is_empty() {
                "nothing".into()
            } else {
                offered.join(", ")
            }
        )));
    }
    if let (Outcome::Respond, Some(schema), Some(text)) =
        (input.outcome, &request.extra.answer_schema, &input.response)
    {
        let value: Value = serde_json::from_str(text).map_err(|e| {
            InboxError::Invalid(format!(
                "the answer must be JSON matching the request's schema: {e}"
            ))
        })?;
        let validator = jsonschema::validator_for(schema).map_err(|e| {
            InboxError::Invalid(format!(
                "the request's answer schema is not valid JSON Schema: {e}"
            ))
        })?;
        let problem = validator.iter_errors(&value).next().map(|err| {
            let at = err.instance_path().to_string();
            let at = if at.is_empty() {
                "the root".to_owned()
            } else {
                at
            };
            format!("the answer does not match the request's schema: {err} (at {at})")
        });
        if let Some(problem) = problem {
            return Err(InboxError::Invalid(problem));
        }
    }
    Ok(())
}

impl Inbox {
    /// Records a decision and tries to deliver it now. The returned
    /// decision says where it stands: confirmed, queued (with the reason in
    /// `error`), or failed.
    pub async fn decide(&self, input: DecisionInput) -> Result<Decision> {
        let request = self.store.request(input.request_id)?;
        check_allowed(&request, &input)?;
        let comment = input
            .comment
            .as_deref()
            .map(|c| c.trim().to_owned())
            .filter(|c| !c.is_empty());
        if comment
            .as_ref()
            .is_some_and(|c| c.chars().count() > MAX_COMMENT)
        {
            return Err(InboxError::Invalid(format!(
                "a comment is at most {MAX_COMMENT} characters"
            )));
        }
        if input.outcome == Outcome::Edit && input.edited_arguments.is_none() {
            return Err(InboxError::Invalid(
                "an edit needs the edited arguments".into(),
            ));
        }
        if input.outcome == Outcome::Respond && input.response.is_none() {
            return Err(InboxError::Invalid("a response needs its text".into()));
        }
        let account = self.store.account(request.account_id)?;
        let decision = self.store.record_decision(&DecisionDraft {
            request_id: request.id,
            outcome: input.outcome,
            comment,
            edited_arguments: input.edited_arguments,
            response: input.response,
            decided_by: account.reviewer.clone(),
            decided_at: self.clock.now(),
        })?;
        if let Some(held) = self.held_note(&request)? {
            return Ok(Decision {
                error: Some(held),
                ..decision
            });
        }
        self.deliver_now(&account, decision).await
    }

    /// Decides every pending request of `request_id`'s group (a SurfSense
    /// thread) the same way, then sends them together. Refuses, before
    /// storing anything, when any of them does not offer that decision.
    pub async fn decide_group(
        &self,
        request_id: i64,
        outcome: Outcome,
        comment: Option<String>,
    ) -> Result<Vec<Decision>> {
        let request = self.store.request(request_id)?;
        let Some(group) = &request.extra.group else {
            return Err(InboxError::Invalid(format!(
                "request {request_id} is not part of a group; decide it on its own"
            )));
        };
        let pending: Vec<_> = self
            .store
            .group_members(request.account_id, &group.key)?
            .into_iter()
            .filter(|r| r.status.is_pending())
            .collect();
        if pending.is_empty() {
            return Err(InboxError::Invalid(format!(
                "nothing in {} waits for a decision",
                group.label
            )));
        }
        if matches!(outcome, Outcome::Edit | Outcome::Respond) {
            return Err(InboxError::Invalid(
                "a whole group can only be approved, denied or always-allowed; edit or answer each request".into(),
            ));
        }
        let inputs: Vec<DecisionInput> = pending
            .iter()
            .map(|r| DecisionInput {
                request_id: r.id,
                outcome,
                comment: comment.clone(),
                edited_arguments: None,
                response: None,
            })
            .collect();
        for (r, input) in pending.iter().zip(&inputs) {
            check_allowed(r, input)
                .map_err(|e| InboxError::Invalid(format!("request {} ({}): {e}", r.id, r.title)))?;
        }
        let mut ids = Vec::new();
        for input in inputs {
            ids.push(self.decide(input).await?.id);
        }
        // The last one sent them all: report where each stands now.
        Ok(ids
            .into_iter()
            .map(|id| self.store.decision(id))
            .collect::<Result<_, _>>()?)
    }

    /// Why a decision on `request` waits before it is sent: other requests
    /// of its group still need a decision.
    pub(crate) fn held_note(&self, request: &countersign_model::Request) -> Result<Option<String>> {
        let Some(group) = &request.extra.group else {
            return Ok(None);
        };
        let waiting = self
            .store
            .group_members(request.account_id, &group.key)?
            .iter()
            .filter(|r| r.status.is_pending() && r.id != request.id)
            .count();
        Ok((waiting > 0).then(|| {
            format!(
                "held: {} takes its decisions only together; waiting for {waiting} more",
                group.label
            )
        }))
    }

    async fn deliver_now(
        &self,
        account: &countersign_model::Account,
        decision: Decision,
    ) -> Result<Decision> {
        let account = account.clone();
        let connector = match self.connector_for(&account).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(account = %account.name, "decision {} stays queued: {e}", decision.id);
                return Ok(Decision {
                    error: Some(e.to_string()),
                    ..decision
                });
            }
        };
        let mut decision = self
            .engine
            .deliver_decision(&account, connector.as_ref(), decision.id)
            .await
            .map_err(|e| InboxError::Invalid(e.to_string()))?;
        // Another Countersign process (the app) may have claimed it first:
        // wait a little for its answer rather than report a guess.
        for _ in 0..40 {
            if decision.delivery != Delivery::Sent {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
            decision = self.store.decision(decision.id)?;
        }
        Ok(decision)
    }

    /// Pending requests, most urgent first.
    pub fn pending(&self, q: &PendingQuery) -> Result<Vec<RequestView>> {
        self.views(self.store.pending(q)?)
    }

    /// Snoozes a pending request until `until` (capped before its
    /// deadline); returns when it comes back.
    pub fn snooze(
        &self,
        id: i64,
        until: chrono::DateTime<chrono::Utc>,
    ) -> Result<chrono::DateTime<chrono::Utc>> {
        let now = self.clock().now();
        if until <= now {
            return Err(InboxError::Invalid("a snooze ends in the future".into()));
        }
        Ok(self.store.snooze(id, until, now)?)
    }

    /// [`Inbox::pending`] as list rows: no payloads, long text clipped.
    pub fn pending_rows(&self, q: &PendingQuery) -> Result<Vec<RequestRow>> {
        Ok(self
            .views(self.store.pending_list(q)?)?
            .into_iter()
            .map(RequestRow::from)
            .collect())
    }

    /// Ended requests, newest first.
    pub fn history(&self, q: &HistoryQuery) -> Result<Vec<RequestView>> {
        self.views(self.store.history(q)?)
    }

    /// One page of history, with the cursor of the next and how many
    /// ended requests the store holds in all.
    pub fn history_page(&self, q: &HistoryQuery) -> Result<HistoryPageView> {
        let page = self.store.history_list_page(q)?;
        Ok(HistoryPageView {
            rows: self
                .views(page.rows)?
                .into_iter()
                .map(RequestRow::from)
                .collect(),
            next: page.next.map(|c| c.to_string()),
            total: self.store.history_total()?,
        })
    }

    /// Calls `f` with every history row `q` selects, newest first, a page
    /// at a time (memory stays at one page). Stops when `f` breaks; returns
    /// where the walk would go on when it stopped at `q.limit`.
    pub fn for_each_history(
        &self,
        q: &HistoryQuery,
        mut f: impl FnMut(RequestView) -> std::ops::ControlFlow<()>,
    ) -> Result<Option<HistoryCursor>> {
        let mut failed = None;
        let next = self
            .store
            .for_each_history_page(q, |rows| match self.views(rows) {
                Ok(views) => {
                    for v in views {
                        f(v)?;
                    }
                    std::ops::ControlFlow::Continue(())
                }
                Err(e) => {
                    failed = Some(e);
                    std::ops::ControlFlow::Break(())
                }
            })?;
        match failed {
            Some(e) => Err(e),
            None => Ok(next),
        }
    }

    /// One request with everything known about it.
    pub fn detail(&self, id: i64) -> Result<RequestDetail> {
        let r = self.store.request(id)?;
        let decisions = self.store.decisions_for(id)?;
        Ok(RequestDetail {
            request: self.view(&r, decisions.last(), &mut GroupCounts::new())?,
            link: r.link.clone(),
            raw: r.raw.clone(),
            first_seen_at: r.first_seen_at,
            decisions,
            reports: self
                .store
                .activity_for_request(r.account_id, &r.remote_id)?,
        })
    }

    fn views(&self, requests: Vec<countersign_model::Request>) -> Result<Vec<RequestView>> {
        // A pending request may carry a failed decision (refused, then put
        // back): its error is shown in the list too.
        let ids: Vec<i64> = requests.iter().map(|r| r.id).collect();
        let latest = self.store.latest_decisions(&ids)?;
        // Each group is counted once, however many of its rows are listed.
        let mut groups = GroupCounts::new();
        requests
            .iter()
            .map(|r| self.view(r, latest.get(&r.id), &mut groups))
            .collect()
    }

    fn view(
        &self,
        r: &countersign_model::Request,
        latest: Option<&Decision>,
        groups: &mut GroupCounts,
    ) -> Result<RequestView> {
        let mut view = RequestView::new(r, latest);
        view.group_note = self.group_note(r, latest, groups)?;
        Ok(view)
    }

    /// Where the request's group stands, while it is in play.
    fn group_note(
        &self,
        r: &countersign_model::Request,
        latest: Option<&Decision>,
        groups: &mut GroupCounts,
    ) -> Result<Option<String>> {
        let Some(group) = &r.extra.group else {
            return Ok(None);
        };
        let open = r.status.is_pending()
            || latest.is_some_and(|d| matches!(d.delivery, Delivery::Queued | Delivery::Sent));
        if !open {
            return Ok(None);
        }
        let key = (r.account_id, group.key.clone());
        let (total, decided) = match groups.get(&key) {
            Some(counts) => *counts,
            None => {
                let members = self.store.group_members(r.account_id, &group.key)?;
                let counts = (
                    members.len(),
                    members.iter().filter(|m| !m.status.is_pending()).count(),
                );
                groups.insert(key, counts);
                counts
            }
        };
        if total < 2 {
            return Ok(None);
        }
        Ok(Some(format!(
            "{}: {decided} of {total} decided; they are sent together once all are",
            group.label
        )))
    }
}

/// What happens next to a decision that is not delivered yet, and when, in
/// words for the reviewer (the CLI and the app say the same). `None` once
/// it is confirmed or failed, or while it is held for its group.
pub fn next_step(
    d: &Decision,
    account: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<String> {
    if !matches!(d.delivery, Delivery::Queued | Delivery::Sent)
        || d.error.as_deref().is_some_and(|e| e.starts_with("held:"))
    {
        return None;
    }
    let why = d.error.as_deref().unwrap_or("in progress");
    let at = d
        .next_attempt_at
        .filter(|t| *t > now)
        .map(|t| {
            let secs = (t - now).num_seconds().max(1);
            if secs < 120 {
                format!("in {secs} s")
            } else {
                format!("in {} min", (secs + 59) / 60)
            }
        })
        .unwrap_or_else(|| "now".into());
    Some(match (d.delivery, d.unsure_since) {
        (_, Some(_)) => format!(
            "queued: it was sent to {account}, but no answer came back ({why}). It may already be applied, so it \
             is not sent again until {account} shows how it ended; the next check is {at}, while the \
             app or `countersign sync` runs"
        ),
        (Delivery::Sent, None) => format!("being sent to {account} right now"),
        _ => format!(
            "queued, not delivered yet: nothing reached {account} ({why}), so sending it again is safe. It \
             goes out as soon as {account} answers: within seconds while the app or `countersign sync` \
             runs (next try {at}), or with the next `countersign sync --once`"
        ),
    })
}

impl Inbox {
    /// [`next_step`] for a stored decision, naming its account.
    pub fn next_step(&self, d: &Decision) -> Option<String> {
        let request = self.store.request(d.request_id).ok()?;
        let account = self.store.account(request.account_id).ok()?;
        next_step(d, &account.name, self.clock.now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn queued(unsure: bool) -> Decision {
        let t = Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap();
        Decision {
            id: 1,
            request_id: 1,
            outcome: Outcome::Deny,
            comment: None,
            edited_arguments: None,
            response: None,
            decided_by: "dana".into(),
            decided_at: t,
            delivery: Delivery::Queued,
            error: Some(
                "platform unavailable: not sent, could not connect: Connection refused".into(),
            ),
            attempts: 1,
            next_attempt_at: Some(t + chrono::Duration::seconds(15)),
            confirmed_at: None,
            note: None,
            unsure_since: unsure.then_some(t),
        }
    }

    #[test]
    fn the_next_step_says_whether_it_may_go_again_and_when() {
        let now = Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap();
        let not_sent = next_step(&queued(false), "acme", now).unwrap();
        assert!(
            not_sent.contains("nothing reached acme")
                && not_sent.contains("as soon as acme answers")
                && not_sent.contains("in 15 s"),
            "not sent: it goes again as soon as the platform answers: {not_sent}"
        );
        let unsure = next_step(&queued(true), "acme", now).unwrap();
        assert!(
            unsure.contains("may already be applied")
                && unsure.contains("not sent again until acme shows how it ended"),
            "sent without answer: checked before any re-send: {unsure}"
        );
        let done = Decision {
            delivery: Delivery::Confirmed,
            ..queued(false)
        };
        assert_eq!(
            next_step(&done, "acme", now),
            None,
            "nothing left to happen"
        );
    }
}
