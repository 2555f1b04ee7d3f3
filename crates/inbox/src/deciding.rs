//! Deciding: the decision is written to the store (and its request leaves
//! the inbox) first, then delivered at once if the platform answers, else
//! left queued for the sync engine to retry.

use crate::{Inbox, InboxError, RequestDetail, RequestView, Result};
use countersign_model::{Decision, DecisionDraft, Delivery, Outcome};
use countersign_store::{HistoryQuery, PendingQuery};
use serde_json::Value;
use std::time::Duration;

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

    /// Ended requests, newest first.
    pub fn history(&self, q: &HistoryQuery) -> Result<Vec<RequestView>> {
        self.views(self.store.history(q)?)
    }

    /// One request with everything known about it.
    pub fn detail(&self, id: i64) -> Result<RequestDetail> {
        let r = self.store.request(id)?;
        let decisions = self.store.decisions_for(id)?;
        Ok(RequestDetail {
            request: RequestView::new(&r, decisions.last()),
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
        requests
            .iter()
            .map(|r| {
                let decisions = if r.status.is_pending() {
                    Vec::new()
                } else {
                    self.store.decisions_for(r.id)?
                };
                Ok(RequestView::new(r, decisions.last()))
            })
            .collect()
    }
}
