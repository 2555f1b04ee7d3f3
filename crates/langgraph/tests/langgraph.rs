//! The LangGraph connector against the fake server: the three payload
//! formats, several interrupts on one thread, the resume shapes, answers
//! refused before they could wedge a thread, silent no-ops, and asks
//! identified as LangGraph reuses interrupt ids.

use chrono::Utc;
use countersign_connector::{Connector, ConnectorError, Delivered};
use countersign_fakes::langgraph::{payloads, Config, FakeLangGraph};
use countersign_langgraph::{LangGraph, LangGraphConfig, Settings};
use countersign_model::{
    AllowedDecision, Decision, Delivery, ObservedRequest, Outcome, Platform, Request, Secret,
    SystemClock,
};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

fn connector(fake: &FakeLangGraph, key: Option<&str>) -> LangGraph {
    LangGraph::new(LangGraphConfig {
        base_url: fake.url(),
        api_key: key.map(Secret::new),
        settings: Settings::default(),
        http: countersign_connector::http::client(),
        clock: Arc::new(SystemClock),
        run_wait: Duration::from_secs(5),
    })
}

fn decision(outcome: Outcome) -> Decision {
    Decision {
        id: 1,
        request_id: 1,
        outcome,
        comment: None,
        edited_arguments: None,
        response: None,
        decided_by: "dana".into(),
        decided_at: Utc::now(),
        delivery: Delivery::Sent,
        error: None,
        attempts: 1,
        next_attempt_at: None,
        confirmed_at: None,
        note: None,
        unsure_since: None,
    }
}

fn stored(o: &ObservedRequest) -> Request {
    Request::observed_as_pending(o, 1, "lg", Platform::Langgraph)
}

fn of<'a>(pending: &'a [ObservedRequest], thread: &str) -> Vec<&'a ObservedRequest> {
    let mut v: Vec<_> = pending
        .iter()
        .filter(|r| r.remote_id.starts_with(thread))
        .collect();
    v.sort_by(|a, b| a.remote_id.cmp(&b.remote_id));
    v
}

#[tokio::test]
async fn interrupts_of_all_three_formats_appear_with_their_own_decisions() {
    let fake = FakeLangGraph::start(Config::default()).await.unwrap();
    let (inbox_t, _) = fake.interrupted(
        "approvals",
        vec![(
            payloads::agent_inbox(
                "send_email",
                json!({"to": "a@example.com"}),
                true,
                true,
                true,
                false,
            ),
            None,
        )],
    );
    let (batched_t, _) = fake.interrupted(
        "agent",
        vec![(
            payloads::batched(&[
                (
                    "send_email",
                    json!({"to": "c@example.com"}),
                    &["approve", "edit", "reject", "respond"],
                ),
                (
                    "delete_file",
                    json!({"path": "reports/q3.txt"}),
                    &["approve", "reject"],
                ),
            ]),
            None,
        )],
    );
    let (value, schema) = payloads::per_call(
        "delete_file",
        json!({"path": "old.txt"}),
        &["approve", "reject"],
    );
    let (per_call_t, _) = fake.interrupted("agent", vec![(value, Some(schema))]);
    fake.idle_thread();
    let c = connector(&fake, None);
    let snap = c.reconcile().await.expect("reconcile");
    assert_eq!(
        snap.pending.len(),
        4,
        "one + two batched tool calls + one per-call"
    );
    let inbox = of(&snap.pending, &inbox_t);
    assert_eq!(inbox[0].action, "send_email");
    assert_eq!(
        inbox[0].allowed_decisions,
        vec![
            AllowedDecision::Approve,
            AllowedDecision::Edit,
            AllowedDecision::Respond
        ],
        "accept, edit and respond; ignore is off in this config"
    );
    let batched = of(&snap.pending, &batched_t);
    assert_eq!(
        batched.len(),
        2,
        "each tool call of a batched interrupt is its own request"
    );
    assert_eq!(
        batched[1].allowed_decisions,
        vec![AllowedDecision::Approve, AllowedDecision::Deny]
    );
    assert!(
        batched[0].extra.group.is_some() && batched[0].extra.group == batched[1].extra.group,
        "the tool calls of one interrupt are answered together"
    );
    let per_call = of(&snap.pending, &per_call_t);
    assert_eq!(
        per_call[0].allowed_decisions,
        vec![AllowedDecision::Approve, AllowedDecision::Deny]
    );
    assert_eq!(snap.note.as_deref(), Some("3 interrupted threads"));
}

#[tokio::test]
async fn a_thread_with_two_interrupts_is_two_requests_resumed_by_interrupt_id() {
    let fake = FakeLangGraph::start(Config::default()).await.unwrap();
    let (t, ids) = fake.interrupted(
        "approvals",
        vec![
            (
                payloads::agent_inbox("deploy", json!({"env": "prod"}), true, false, true, true),
                None,
            ),
            (
                payloads::agent_inbox(
                    "notify",
                    json!({"channel": "#ops"}),
                    true,
                    false,
                    true,
                    true,
                ),
                None,
            ),
        ],
    );
    let c = connector(&fake, None);
    let snap = c.reconcile().await.unwrap();
    assert_eq!(
        snap.pending.len(),
        2,
        "every pending interrupt, not just the first"
    );
    let first = snap
        .pending
        .iter()
        .find(|r| r.remote_id.ends_with(&ids[0]))
        .unwrap();
    let second = snap
        .pending
        .iter()
        .find(|r| r.remote_id.ends_with(&ids[1]))
        .unwrap();

    assert_eq!(
        c.deliver(&stored(first), &decision(Outcome::Approve)).await,
        Ok(Delivered::Confirmed)
    );
    let mut respond = decision(Outcome::Respond);
    respond.response = Some("not today".into());
    assert_eq!(
        c.deliver(&stored(second), &respond).await,
        Ok(Delivered::Confirmed)
    );

    let runs = fake.runs();
    assert_eq!(
        runs[0].resume,
        json!({ids[0].clone(): [{"type": "accept", "args": null}]})
    );
    assert_eq!(
        runs[1].resume,
        json!({ids[1].clone(): [{"type": "response", "args": "not today"}]})
    );
    assert_eq!(
        runs[0].assistant_id,
        countersign_fakes::langgraph::assistant_id("approvals")
    );
    assert_eq!(fake.thread(&t).unwrap().0, "idle");
}

#[tokio::test]
async fn an_edit_reaches_the_graph_in_each_format() {
    let fake = FakeLangGraph::start(Config::default()).await.unwrap();
    let (t1, ids1) = fake.interrupted(
        "approvals",
        vec![(
            payloads::agent_inbox(
                "send_email",
                json!({"to": "a@example.com"}),
                true,
                true,
                false,
                false,
            ),
            None,
        )],
    );
    let (t2, ids2) = fake.interrupted(
        "agent",
        vec![(
            payloads::batched(&[
                (
                    "send_email",
                    json!({"to": "c@example.com"}),
                    &["approve", "edit", "reject"],
                ),
                (
                    "delete_file",
                    json!({"path": "q3.txt"}),
                    &["approve", "reject"],
                ),
            ]),
            None,
        )],
    );
    let c = connector(&fake, None);
    let snap = c.reconcile().await.unwrap();
    let mut edit = decision(Outcome::Edit);
    edit.edited_arguments = Some(json!({"to": "b@example.com"}));
    assert_eq!(
        c.deliver(&stored(of(&snap.pending, &t1)[0]), &edit).await,
        Ok(Delivered::Confirmed)
    );
    assert_eq!(
        fake.answers(&t1)[0]["resume"],
        json!([{"type": "edit", "args": {"action": "send_email", "args": {"to": "b@example.com"}}}])
    );
    let _ = ids1;

    let b = of(&snap.pending, &t2);
    let mut reject = decision(Outcome::Deny);
    reject.comment = Some("keep the report".into());
    let items = [(stored(b[1]), reject), (stored(b[0]), edit.clone())];
    assert_eq!(
        c.deliver_group(&items).await,
        vec![Ok(Delivered::Confirmed); 2],
        "one resume answers both actions of the interrupt"
    );
    assert_eq!(
        fake.runs().last().unwrap().resume,
        json!({ids2[0].clone(): {"decisions": [
            {"type": "edit", "edited_action": {"name": "send_email", "args": {"to": "b@example.com"}}},
            {"type": "reject", "message": "keep the report"}]}}),
        "one decision per tool call, in the interrupt's order"
    );
}

#[tokio::test]
async fn a_partial_batched_answer_is_refused_before_it_can_wedge_the_thread() {
    let fake = FakeLangGraph::start(Config::default()).await.unwrap();
    let (t, _) = fake.interrupted(
        "agent",
        vec![(
            payloads::batched(&[
                ("a", json!({}), &["approve", "reject"]),
                ("b", json!({}), &["approve", "reject"]),
            ]),
            None,
        )],
    );
    let c = connector(&fake, None);
    let snap = c.reconcile().await.unwrap();
    let one = of(&snap.pending, &t)[0];
    match c.deliver(&stored(one), &decision(Outcome::Approve)).await {
        Err(ConnectorError::Rejected(msg)) => assert!(
            msg.contains("one decision for each of its 2 tool calls"),
            "{msg}"
        ),
        other => panic!("a partial answer must be refused, got {other:?}"),
    }
    assert!(fake.runs().is_empty(), "nothing was sent");
    assert_eq!(
        fake.thread(&t).unwrap().0,
        "interrupted",
        "the thread is not wedged"
    );
}

#[tokio::test]
async fn a_per_call_answer_is_checked_against_its_response_schema() {
    let fake = FakeLangGraph::start(Config::default()).await.unwrap();
    let (value, schema) = payloads::per_call(
        "delete_file",
        json!({"path": "old.txt"}),
        &["approve", "reject"],
    );
    let (t, ids) = fake.interrupted("agent", vec![(value, Some(schema))]);
    let c = connector(&fake, None);
    let snap = c.reconcile().await.unwrap();
    let r = stored(of(&snap.pending, &t)[0]);
    let mut respond = decision(Outcome::Respond);
    respond.response = Some("hm".into());
    assert!(
        matches!(c.deliver(&r, &respond).await, Err(ConnectorError::Rejected(m)) if m.contains("response_schema")),
        "respond is not in the schema"
    );
    let mut reject = decision(Outcome::Deny);
    reject.comment = Some("no".into());
    assert_eq!(c.deliver(&r, &reject).await, Ok(Delivered::Confirmed));
    assert_eq!(
        fake.runs()[0].resume,
        json!({ids[0].clone(): {"type": "reject", "message": "no"}}),
        "per-call answers are a single decision, keyed by interrupt id"
    );
}

#[tokio::test]
async fn an_already_idle_thread_ends_as_resolved_elsewhere_without_a_run() {
    let fake = FakeLangGraph::start(Config::default()).await.unwrap();
    let (t, _) = fake.interrupted(
        "approvals",
        vec![(
            payloads::agent_inbox("deploy", json!({}), true, false, false, true),
            None,
        )],
    );
    let c = connector(&fake, None);
    let snap = c.reconcile().await.unwrap();
    fake.resolve_elsewhere(&t);
    assert!(matches!(
        c.deliver(&stored(&snap.pending[0]), &decision(Outcome::Approve))
            .await,
        Ok(Delivered::ResolvedElsewhere(_))
    ));
    assert!(
        fake.runs().is_empty(),
        "a resume on an idle thread would silently do nothing"
    );
    assert!(c.reconcile().await.unwrap().pending.is_empty());
}

#[tokio::test]
async fn the_state_is_read_even_when_the_thread_list_is_stale() {
    let fake = FakeLangGraph::start(Config::default()).await.unwrap();
    let (t, ids) = fake.interrupted(
        "approvals",
        vec![(
            payloads::agent_inbox("deploy", json!({}), true, false, false, false),
            None,
        )],
    );
    fake.make_stale(&t);
    let c = connector(&fake, None);
    let snap = c.reconcile().await.unwrap();
    assert_eq!(
        snap.pending
            .iter()
            .map(|r| r.remote_id.clone())
            .collect::<Vec<_>>(),
        vec![format!("{t}:{}", ids[0])],
        "/state is authoritative when thread.interrupts is {{}}"
    );
}

#[tokio::test]
async fn an_api_key_is_sent_and_a_wrong_one_is_an_auth_failure() {
    let fake = FakeLangGraph::start(Config {
        api_key: Some("lsv2_key".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    fake.interrupted(
        "approvals",
        vec![(
            payloads::agent_inbox("x", json!({}), true, false, false, false),
            None,
        )],
    );
    assert_eq!(
        connector(&fake, Some("lsv2_key"))
            .reconcile()
            .await
            .unwrap()
            .pending
            .len(),
        1
    );
    assert!(matches!(
        connector(&fake, Some("nope")).reconcile().await,
        Err(ConnectorError::Auth(_))
    ));
    assert!(matches!(
        connector(&fake, None).reconcile().await,
        Err(ConnectorError::Auth(_))
    ));
}

#[tokio::test]
async fn many_interrupted_threads_are_paged_and_only_changed_ones_are_read_again() {
    let fake = FakeLangGraph::start(Config::default()).await.unwrap();
    for i in 0..230 {
        fake.interrupted(
            "approvals",
            vec![(
                payloads::agent_inbox(&format!("a{i}"), json!({}), true, false, false, false),
                None,
            )],
        );
    }
    let c = connector(&fake, None);
    let snap = c.reconcile().await.unwrap();
    assert_eq!(snap.pending.len(), 230, "all pages are read");
    assert_eq!(fake.state_calls(), 230);
    let second = c.reconcile().await.unwrap();
    assert_eq!(second.pending.len(), 230);
    assert_eq!(
        fake.state_calls(),
        230,
        "unchanged threads are not read again"
    );
}

#[tokio::test]
async fn an_ask_made_again_under_the_same_interrupt_id_is_new_and_the_old_decision_is_not_sent() {
    let fake = FakeLangGraph::start(Config::default()).await.unwrap();
    let c = connector(&fake, None);
    let first = || {
        payloads::agent_inbox(
            "send_email",
            json!({"to": "a@example.com"}),
            true,
            true,
            false,
            false,
        )
    };
    let others = payloads::agent_inbox(
        "send_email",
        json!({"to": "everyone@example.com"}),
        true,
        true,
        false,
        false,
    );
    for (case, second) in [
        ("other arguments", others),
        ("the very same payload", first()),
    ] {
        let (t, ids) = fake.interrupted("approvals", vec![(first(), None)]);
        // The node asks again after its resume: LangGraph keeps the id.
        fake.ask_again_after_resume(&t, second.clone(), None);
        let snap = c.reconcile().await.unwrap();
        let decided = of(&snap.pending, &t)[0].clone();
        assert_eq!(decided.remote_id, format!("{t}:{}", ids[0]), "{case}");

        let other = fake
            .answer_elsewhere(&t, json!([{"type": "accept", "args": null}]))
            .unwrap();
        assert_eq!(
            fake.thread(&t).unwrap(),
            ("interrupted".into(), vec![ids[0].clone()]),
            "{case}: the second ask is pending under the first one's id"
        );
        assert!(
            matches!(
                c.deliver(&stored(&decided), &decision(Outcome::Approve)).await,
                Ok(Delivered::ResolvedElsewhere(ref r)) if r.remote_id == decided.remote_id
            ),
            "{case}: the ask decided was answered elsewhere; the one pending now was never decided"
        );
        assert!(
            fake.runs().is_empty(),
            "{case}: nothing reached LangGraph, so the second ask was not approved by the first decision"
        );

        let snap = c.reconcile().await.unwrap();
        let now = of(&snap.pending, &t);
        assert_eq!(now.len(), 1, "{case}");
        assert_eq!(
            now[0].remote_id,
            format!("{t}:{}@{other}", ids[0]),
            "{case}: the second ask is a new request, known by the run that answered the first"
        );
        assert_eq!(
            now[0].arguments, second[0]["action_request"]["args"],
            "{case}"
        );
    }

    // A re-interrupt in a new step comes with a new id: the decided one is
    // simply gone.
    let (t, ids) = fake.interrupted("approvals", vec![(first(), None)]);
    fake.reinterrupt_after_resume(&t, vec![(first(), None)]);
    let snap = c.reconcile().await.unwrap();
    let decided = of(&snap.pending, &t)[0].clone();
    fake.answer_elsewhere(&t, json!([{"type": "accept", "args": null}]))
        .unwrap();
    let next = fake.thread(&t).unwrap().1;
    assert_ne!(next, ids, "a new step raises a new id");
    assert!(matches!(
        c.deliver(&stored(&decided), &decision(Outcome::Approve))
            .await,
        Ok(Delivered::ResolvedElsewhere(_))
    ));
    assert!(
        fake.runs().is_empty(),
        "nothing was sent for the answered ask"
    );
    let snap = c.reconcile().await.unwrap();
    assert_eq!(
        of(&snap.pending, &t)
            .iter()
            .map(|r| r.remote_id.clone())
            .collect::<Vec<_>>(),
        vec![format!("{t}:{}", next[0])],
        "the first ask under a new id has no run in its identity"
    );
}

#[tokio::test]
async fn an_ask_whose_arguments_changed_since_the_decision_goes_back_unsent() {
    let fake = FakeLangGraph::start(Config::default()).await.unwrap();
    let (value, schema) = payloads::per_call(
        "delete_file",
        json!({"path": "old.txt"}),
        &["approve", "reject"],
    );
    let (t, ids) = fake.interrupted("agent", vec![(value.clone(), Some(schema))]);
    let c = connector(&fake, None);
    let snap = c.reconcile().await.unwrap();
    let decided = of(&snap.pending, &t)[0].clone();
    // Its task ran again (another interrupt of the thread was answered)
    // and recomputed the payload: same id, same tool call, nothing answered.
    let mut recomputed = value;
    recomputed["args"] = json!({"path": "/"});
    fake.reraise(&t, &ids[0], recomputed);
    match c
        .deliver(&stored(&decided), &decision(Outcome::Approve))
        .await
    {
        Err(ConnectorError::Rejected(m)) => assert!(
            m.contains("arguments changed on LangGraph since you decided"),
            "the reviewer is told why: {m}"
        ),
        other => panic!("an approval of old.txt must not delete /, got {other:?}"),
    }
    assert!(fake.runs().is_empty(), "nothing was sent");
    let snap = c.reconcile().await.unwrap();
    let now = of(&snap.pending, &t);
    assert_eq!(
        now[0].remote_id, decided.remote_id,
        "no run answered it: still the same ask"
    );
    assert_eq!(
        now[0].arguments,
        json!({"path": "/"}),
        "shown as it stands now"
    );
}

#[tokio::test]
async fn a_remote_id_is_the_thread_the_interrupt_id_the_run_that_answered_it_before_and_the_index()
{
    let fake = FakeLangGraph::start(Config::default()).await.unwrap();
    let batch = || {
        payloads::batched(&[
            (
                "send_email",
                json!({"to": "c@example.com"}),
                &["approve", "reject"],
            ),
            (
                "delete_file",
                json!({"path": "q3.txt"}),
                &["approve", "reject"],
            ),
        ])
    };
    let (t, ids) = fake.interrupted("agent", vec![(batch(), None)]);
    fake.ask_again_after_resume(&t, batch(), None);
    let c = connector(&fake, None);
    let snap = c.reconcile().await.unwrap();
    let first = of(&snap.pending, &t);
    assert_eq!(
        first
            .iter()
            .map(|r| r.remote_id.clone())
            .collect::<Vec<_>>(),
        vec![format!("{t}:{}:0", ids[0]), format!("{t}:{}:1", ids[0])],
        "thread_id:interrupt_id:index for the first ask under an id"
    );
    assert_eq!(first[0].route["thread_id"], json!(t));
    assert_eq!(first[0].route["interrupt_id"], json!(ids[0]));
    assert_eq!(
        first[0].route["generation"],
        json!(null),
        "no run answered it yet"
    );

    let items = [
        (stored(first[0]), decision(Outcome::Approve)),
        (stored(first[1]), decision(Outcome::Deny)),
    ];
    assert_eq!(
        c.deliver_group(&items).await,
        vec![Ok(Delivered::Confirmed); 2],
        "our run answered it, even though the node at once asked again under the same id"
    );
    let ours = fake.runs()[0].run_id.clone();
    let snap = c.reconcile().await.unwrap();
    let again = of(&snap.pending, &t);
    assert_eq!(
        again
            .iter()
            .map(|r| r.remote_id.clone())
            .collect::<Vec<_>>(),
        vec![
            format!("{t}:{}@{ours}:0", ids[0]),
            format!("{t}:{}@{ours}:1", ids[0])
        ],
        "thread_id:interrupt_id@run_id:index for the ask after the one our run answered"
    );
    assert_eq!(again[0].route["generation"], json!(ours));
    assert_ne!(
        again[0].extra.group, first[0].extra.group,
        "the new ask's tool calls are answered together, apart from the old ones"
    );
}

#[path = "langgraph/fuzz.rs"]
mod fuzz;
