//! Which run last answered an interrupt id: the part of an ask's identity
//! that tells a later ask under a reused id from the one before it.
//!
//! LangGraph derives an interrupt's id from the namespace of the task
//! that raised it, so a node that calls `interrupt()` again after a resume
//! asks under the same id, on the same checkpoint. What changed is that a
//! run answered that id: `GET /threads/{id}/runs` lists every run with
//! `kwargs.command.resume` as sent (`langgraph.md`, "Confirming"). Only
//! runs newer than the thread's checkpoint can have answered one of its
//! pending interrupts: older ones answered tasks of an earlier step.

use chrono::{DateTime, Utc};
use serde_json::Value;
use std::collections::HashMap;

/// An interrupt id as LangGraph mints them: 32 lowercase hex characters.
/// A resume map is one whose keys all look like this (else it is a plain
/// resume value that happens to be an object).
fn is_interrupt_id(k: &str) -> bool {
    k.len() == 32
        && k.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// When a run (or a thread state) was created, from its `created_at`.
pub fn created_at(v: &Value) -> Option<DateTime<Utc>> {
    v.get("created_at")
        .and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// Whether this run answered `interrupt_id`: it succeeded and resumed
/// either by a map naming that id, or with a plain value (which LangGraph
/// takes only while exactly one interrupt is pending, and fails the run
/// otherwise).
pub fn answered(run: &Value, interrupt_id: &str) -> bool {
    if run.get("status").and_then(Value::as_str) != Some("success") {
        return false;
    }
    let Some(resume) = run
        .pointer("/kwargs/command/resume")
        .filter(|v| !v.is_null())
    else {
        return false;
    };
    match resume.as_object() {
        Some(map) if map.keys().all(|k| is_interrupt_id(k)) => map.contains_key(interrupt_id),
        _ => true,
    }
}

/// Folds one page of runs into `found`: for each of `ids`, the newest run
/// created after `since` that answered it, as `(created_at, run_id)`.
/// Returns whether the page held a run from `since` or before, after
/// which (newest first) no later page can matter.
pub fn fold_page(
    runs: &[Value],
    since: DateTime<Utc>,
    ids: &[&str],
    found: &mut HashMap<String, (DateTime<Utc>, String)>,
) -> bool {
    let mut reached_older = false;
    for run in runs {
        let (Some(at), Some(run_id)) = (created_at(run), run.get("run_id").and_then(Value::as_str))
        else {
            continue;
        };
        if at <= since {
            reached_older = true;
            continue;
        }
        for id in ids {
            if answered(run, id) && found.get(*id).is_none_or(|(t, _)| at > *t) {
                found.insert((*id).to_owned(), (at, run_id.to_owned()));
            }
        }
    }
    reached_older
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const A: &str = "a3f1c0d29e8b47f6b1c2d3e4f5a6b7c8";
    const B: &str = "0b1c2d3e4f5a69788796a5b4c3d2e1f0";

    fn run(id: &str, at: &str, status: &str, resume: Value) -> Value {
        json!({"run_id": id, "created_at": at, "status": status,
               "kwargs": {"input": null, "command": {"resume": resume}}})
    }

    #[test]
    fn a_run_answers_the_ids_its_map_names_or_the_one_pending_with_a_plain_value() {
        let keyed = run(
            "r",
            "2026-01-05T10:00:00+00:00",
            "success",
            json!({A: [{"type": "accept", "args": null}]}),
        );
        assert!(answered(&keyed, A), "the map names A");
        assert!(
            !answered(&keyed, B),
            "a map answers only the ids it names; B is raised again"
        );
        let plain = run(
            "r",
            "2026-01-05T10:00:00+00:00",
            "success",
            json!([{"type": "accept", "args": null}]),
        );
        assert!(
            answered(&plain, A) && answered(&plain, B),
            "a plain resume succeeds only with one interrupt pending, so it answered whichever that was"
        );
        let object = run(
            "r",
            "2026-01-05T10:00:00+00:00",
            "success",
            json!({"type": "approve"}),
        );
        assert!(
            answered(&object, A),
            "an object whose keys are not interrupt ids is a plain value"
        );
        let failed = run(
            "r",
            "2026-01-05T10:00:00+00:00",
            "error",
            json!({A: {"type": "approve"}}),
        );
        assert!(!answered(&failed, A), "a failed run answered nothing");
        let input = json!({"run_id": "r", "created_at": "2026-01-05T10:00:00+00:00", "status": "success",
                           "kwargs": {"input": {"messages": []}, "command": null}});
        assert!(!answered(&input, A), "a run with new input resumes nothing");
    }

    #[test]
    fn the_newest_answer_after_the_checkpoint_wins_and_older_runs_end_the_search() {
        let since = DateTime::parse_from_rfc3339("2026-01-05T10:00:00+00:00")
            .unwrap()
            .with_timezone(&Utc);
        let page = [
            run(
                "r3",
                "2026-01-05T10:00:03+00:00",
                "success",
                json!({B: {"type": "approve"}}),
            ),
            run(
                "r2",
                "2026-01-05T10:00:02+00:00",
                "success",
                json!({A: {"type": "approve"}}),
            ),
            run(
                "r1",
                "2026-01-05T10:00:01+00:00",
                "success",
                json!({A: {"type": "approve"}}),
            ),
            run(
                "r0",
                "2026-01-05T09:59:59+00:00",
                "success",
                json!([{"type": "accept", "args": null}]),
            ),
        ];
        let mut found = HashMap::new();
        assert!(
            fold_page(&page, since, &[A, B], &mut found),
            "r0 predates the checkpoint, so later pages are older still"
        );
        assert_eq!(found[A].1, "r2", "the newest of the runs that answered A");
        assert_eq!(found[B].1, "r3");
        let mut none = HashMap::new();
        fold_page(&page[3..], since, &[A], &mut none);
        assert!(
            none.is_empty(),
            "a plain resume before the checkpoint answered an interrupt of an earlier step"
        );
    }
}
