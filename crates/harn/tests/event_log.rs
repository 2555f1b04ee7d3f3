//! The event-log connector against the fake harn: every HITL kind, harn's
//! resolution rules, and the rows Countersign writes.

use countersign_connector::{Connector, ConnectorError, Delivered, Update};
use countersign_fakes::harn::{verify_log, ApprovalOptions, FakeHarnLog, WaitOutcome};
use countersign_harn::hitl::parse_remote_id;
use countersign_harn::{HarnLog, HarnLogConfig};
use countersign_model::{
    AllowedDecision, Decision, Delivery, Kind, ObservedRequest, Outcome, Platform, Request, Status,
    SystemClock,
};
use futures::StreamExt;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn connector(log: &FakeHarnLog, reviewer: &str) -> HarnLog {
    HarnLog::new(HarnLogConfig {
        path: log.path().to_owned(),
        reviewer: reviewer.into(),
        poll: Duration::from_millis(50),
        clock: Arc::new(SystemClock),
    })
}

fn decision(outcome: Outcome, comment: Option<&str>, response: Option<&str>) -> Decision {
    Decision {
        id: 1,
        request_id: 1,
        outcome,
        comment: comment.map(str::to_owned),
        edited_arguments: None,
        response: response.map(str::to_owned),
        decided_by: "countersign".into(),
        decided_at: chrono::Utc::now(),
        delivery: Delivery::Queued,
        error: None,
        attempts: 1,
        next_attempt_at: None,
        confirmed_at: None,
        note: None,
        unsure_since: None,
    }
}

async fn pending(c: &HarnLog) -> Vec<ObservedRequest> {
    c.reconcile().await.expect("reconcile").pending
}

/// The request id part of a remote id (`<request id>@<event id>`).
fn request_id(r: &ObservedRequest) -> &str {
    parse_remote_id(&r.remote_id).0
}

/// The pending ask under harn request id `id`, as the store would hold it.
async fn find(c: &HarnLog, id: &str) -> Request {
    let o = pending(c)
        .await
        .into_iter()
        .find(|r| request_id(r) == id)
        .unwrap_or_else(|| panic!("{id} should be pending"));
    Request::observed_as_pending(&o, 1, "harn", Platform::Harn)
}

/// The event id of the `n`-th request event (0-based) for `id` on `topic`.
fn request_event(log: &FakeHarnLog, topic: &str, id: &str, n: usize) -> i64 {
    log.rows(topic)
        .into_iter()
        .filter(|r| {
            r.1.ends_with("_requested") || r.1.ends_with("_asked") || r.1.ends_with("_issued")
        })
        .filter(|r| r.2["request_id"] == id)
        .nth(n)
        .unwrap_or_else(|| panic!("request event {n} of {id}"))
        .0
}

fn reviewers(list: &[&str], quorum: u64) -> ApprovalOptions {
    ApprovalOptions {
        args: Some(json!({"environment": "prod", "service": "api"})),
        detail: Some(json!({"ticket": "OPS-1"})),
        reviewers: list.iter().map(|s| s.to_string()).collect(),
        quorum: Some(quorum),
        deadline: Some(Duration::from_secs(900)),
        capabilities: vec!["deploy.production".into()],
        evidence: vec![json!({"kind": "url", "uri": "https://ci.example/run/1"})],
        ..Default::default()
    }
}

fn count(log: &FakeHarnLog, topic: &str, kind: &str) -> usize {
    log.rows(topic).iter().filter(|r| r.1 == kind).count()
}

#[tokio::test]
async fn an_approval_shows_its_details_and_approving_it_releases_the_waiting_script() {
    let dir = tempfile::tempdir().unwrap();
    let log = FakeHarnLog::create(dir.path());
    let id = log.request_approval("deploy production", &reviewers(&["alice", "bob"], 1));
    let waiter = log.wait(&id);
    let c = connector(&log, "alice");

    let r = find(&c, &id).await;
    assert_eq!(r.kind, Kind::Approval, "an approval request is an approval");
    assert_eq!(r.action, "deploy production");
    assert_eq!(
        r.arguments,
        json!({"environment": "prod", "service": "api"}),
        "args are the arguments"
    );
    assert_eq!(
        r.allowed_decisions,
        vec![AllowedDecision::Approve, AllowedDecision::Deny]
    );
    assert!(
        r.deadline.is_some(),
        "a 15-minute deadline is shown as a countdown"
    );
    let facts: Vec<&str> = r.extra.facts.iter().map(|f| f.name.as_str()).collect();
    for name in [
        "Trace",
        "Reviewers",
        "Capabilities requested",
        "Evidence",
        "Detail",
    ] {
        assert!(
            facts.contains(&name),
            "the detail pane shows {name}: {facts:?}"
        );
    }
    assert!(!r.extra.proposal, "someone waits on a request_approval");

    let answered = Instant::now();
    let d = c
        .deliver(&r, &decision(Outcome::Approve, Some("looks fine"), None))
        .await
        .unwrap();
    assert_eq!(d, Delivered::Confirmed);
    let answered_at = Instant::now();
    let (outcome, seen) = waiter
        .result(Duration::from_secs(3))
        .expect("the script returns");
    let WaitOutcome::Completed(record) = outcome else {
        panic!("approved, got {outcome:?}")
    };
    assert_eq!(
        record["reviewers"],
        json!(["alice"]),
        "the record names the reviewer"
    );
    assert_eq!(
        record["reason"],
        json!("looks fine"),
        "the comment is harn's reason"
    );
    assert!(record["signatures"][0]["signature"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    assert!(
        seen.duration_since(answered_at.min(answered)) < Duration::from_secs(1),
        "a waiter started before the answer returns within a second of it"
    );
    assert!(
        log.hitl_pending().is_empty(),
        "harn's own pending list agrees it is resolved"
    );
    verify_log(log.path()).expect("every row Countersign wrote carries valid provenance hashes");
    assert!(pending(&c).await.is_empty(), "it leaves the inbox");
}

#[tokio::test]
async fn dual_control_shows_progress_after_the_first_approval_and_completes_on_the_second() {
    let dir = tempfile::tempdir().unwrap();
    let log = FakeHarnLog::create(dir.path());
    let id = log.dual_control(2, 3, "release", &["alice", "bob", "carol"]);
    let waiter = log.wait(&id);
    let (alice, bob) = (connector(&log, "alice"), connector(&log, "bob"));

    let r = find(&alice, &id).await;
    assert_eq!(r.extra.label.as_deref(), Some("dual control"));
    let p = r
        .extra
        .progress
        .clone()
        .expect("dual control shows progress");
    assert_eq!(
        (p.approvals, p.required),
        (0, 2),
        "nothing counted yet; 2 of 3 needed"
    );
    assert_eq!(
        alice
            .deliver(&r, &decision(Outcome::Approve, None, None))
            .await
            .unwrap(),
        Delivered::Confirmed
    );

    let r = find(&bob, &id).await;
    let p = r.extra.progress.clone().expect("progress");
    assert_eq!(
        (p.approvals, p.required, p.approvers.clone()),
        (1, 2, vec!["alice".to_owned()]),
        "1 of 2 after alice"
    );
    assert!(r.allows(AllowedDecision::Approve), "bob may still approve");
    assert!(
        waiter.result(Duration::from_millis(300)).is_none(),
        "one approval of two does not release the script"
    );
    assert_eq!(
        count(&log, "hitl.dual_control", "hitl.dual_control_approved"),
        0
    );

    assert_eq!(
        bob.deliver(&r, &decision(Outcome::Approve, None, None))
            .await
            .unwrap(),
        Delivered::Confirmed
    );
    let (outcome, _) = waiter.result(Duration::from_secs(2)).expect("released");
    let WaitOutcome::Completed(record) = outcome else {
        panic!("approved, got {outcome:?}")
    };
    assert_eq!(
        record["reviewers"],
        json!(["alice", "bob"]),
        "both reviewers are in the record"
    );
    assert!(pending(&alice).await.is_empty());
    let res = alice
        .resolve_missing(std::slice::from_ref(&r))
        .await
        .unwrap();
    assert_eq!(
        res[0].status,
        Status::Approved,
        "alice is one of the approvers, so it counts as hers"
    );
    verify_log(log.path()).expect("valid provenance");
}

#[tokio::test]
async fn a_question_answer_reaches_the_waiting_script() {
    let dir = tempfile::tempdir().unwrap();
    let log = FakeHarnLog::create(dir.path());
    let id = log.ask_user(
        "Which colour?",
        Some(json!({"type": "string"})),
        Some(json!("blue")),
        Duration::from_secs(900),
    );
    let waiter = log.wait(&id);
    let c = connector(&log, "alice");
    let r = find(&c, &id).await;
    assert_eq!(r.kind, Kind::Question);
    assert_eq!(r.title, "Which colour?");
    assert_eq!(
        r.allowed_decisions,
        vec![AllowedDecision::Respond],
        "a question is answered, not approved"
    );
    assert_eq!(
        r.extra.answer_schema,
        Some(json!({"type": "string"})),
        "the schema drives the answer form"
    );
    c.deliver(&r, &decision(Outcome::Respond, None, Some("\"green\"")))
        .await
        .unwrap();
    let (outcome, _) = waiter.result(Duration::from_secs(2)).expect("answered");
    assert_eq!(
        outcome,
        WaitOutcome::Completed(json!("green")),
        "the script gets the answer value"
    );
}

#[tokio::test]
async fn an_escalation_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let log = FakeHarnLog::create(dir.path());
    let id = log.escalate_to("sre-oncall", "disk almost full");
    let waiter = log.wait(&id);
    let c = connector(&log, "alice");
    let r = find(&c, &id).await;
    assert_eq!(r.kind, Kind::Escalation);
    assert_eq!(r.title, "Escalation to sre-oncall");
    assert_eq!(r.description.as_deref(), Some("disk almost full"));
    c.deliver(&r, &decision(Outcome::Approve, Some("on it"), None))
        .await
        .unwrap();
    let (outcome, _) = waiter.result(Duration::from_secs(2)).expect("accepted");
    let WaitOutcome::Completed(v) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(v["accepted"], json!(true));
    assert_eq!(
        count(&log, "hitl.escalations", "hitl.escalation_accepted"),
        1,
        "harn's own event kind is used"
    );
}

#[tokio::test]
async fn a_reviewer_outside_the_allow_list_sees_why_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = FakeHarnLog::create(dir.path());
    let id = log.request_approval("deploy production", &reviewers(&["alice", "bob"], 1));
    let c = connector(&log, "mallory");
    let r = find(&c, &id).await;
    assert!(
        r.allowed_decisions.is_empty(),
        "no buttons for a reviewer harn would ignore"
    );
    assert!(
        r.extra.read_only.as_deref().unwrap().contains("alice, bob"),
        "the reason names who may answer: {:?}",
        r.extra.read_only
    );
    let rows_before = log.rows("hitl.approvals").len();
    let mut forced = r.clone();
    forced.allowed_decisions = vec![AllowedDecision::Deny];
    let err = c
        .deliver(&forced, &decision(Outcome::Deny, None, None))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ConnectorError::Rejected(ref m) if m.contains("alice, bob")),
        "{err:?}"
    );
    assert_eq!(log.rows("hitl.approvals").len(), rows_before, "a denial from outside the list would end the request in harn's pending view; nothing is written");
    assert_eq!(log.hitl_pending(), vec![id], "still pending for harn");
}

#[tokio::test]
async fn a_deny_ends_a_quorum_request_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let log = FakeHarnLog::create(dir.path());
    let id = log.request_approval("drop table", &reviewers(&["alice", "bob", "carol"], 2));
    let waiter = log.wait(&id);
    let c = connector(&log, "carol");
    let r = find(&c, &id).await;
    assert_eq!(
        r.extra.progress.as_ref().map(|p| p.required),
        Some(2),
        "quorum 2 shows progress"
    );
    c.deliver(&r, &decision(Outcome::Deny, Some("not today"), None))
        .await
        .unwrap();
    let (outcome, _) = waiter
        .result(Duration::from_secs(2))
        .expect("denied at once");
    assert_eq!(
        outcome,
        WaitOutcome::Denied {
            reviewer: Some("carol".into()),
            reason: Some("not today".into())
        }
    );
    assert_eq!(count(&log, "hitl.approvals", "hitl.approval_denied"), 1);
    let res = c.resolve_missing(&[r]).await.unwrap();
    assert_eq!(res[0].status, Status::Denied, "carol's own denial");
}

#[tokio::test]
async fn two_reviewers_answering_at_once_finalize_exactly_once() {
    for _ in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let log = FakeHarnLog::create(dir.path());
        let id = log.request_approval("deploy", &reviewers(&["alice", "bob"], 1));
        let (alice, bob) = (connector(&log, "alice"), connector(&log, "bob"));
        let (ra, rb) = (find(&alice, &id).await, find(&bob, &id).await);
        let da = decision(Outcome::Approve, None, None);
        let db = decision(Outcome::Approve, None, None);
        let (a, b) = tokio::join!(alice.deliver(&ra, &da), bob.deliver(&rb, &db));
        let outcomes = [a.unwrap(), b.unwrap()];
        assert_eq!(
            outcomes
                .iter()
                .filter(|d| **d == Delivered::Confirmed)
                .count(),
            1,
            "one answer wins; the other learns it was resolved elsewhere: {outcomes:?}"
        );
        assert_eq!(
            count(&log, "hitl.approvals", "hitl.approval_approved"),
            1,
            "one outcome event"
        );
        let states = log.rows(&format!("waitpoint.state.{id}"));
        assert_eq!(states.len(), 2, "open, then completed once");
        assert_eq!(
            count(&log, "hitl.approvals", "hitl.response_received"),
            1,
            "the loser writes nothing"
        );
        verify_log(log.path()).expect("concurrent writers keep the hash chain intact");
    }
}

#[tokio::test]
async fn a_replayed_request_is_one_row_showing_the_newest_envelope() {
    let dir = tempfile::tempdir().unwrap();
    let log = FakeHarnLog::create(dir.path());
    let id = log.request_approval("deploy", &ApprovalOptions::default());
    let c = connector(&log, "alice");
    let first = find(&c, &id).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    log.replay(&id);
    let all = pending(&c).await;
    assert_eq!(
        all.len(),
        1,
        "a replay re-appends the same id: one inbox row"
    );
    assert!(
        all[0].created_at > first.created_at,
        "the newest envelope is shown"
    );
    assert_eq!(
        all[0].remote_id, first.remote_id,
        "a replay that only moves timestamps is the same ask, so it keeps its identity"
    );
    assert_eq!(log.hitl_pending(), vec![id.clone()]);
    let waiter = log.wait(&id);
    assert_eq!(
        c.deliver(&first, &decision(Outcome::Approve, None, None))
            .await
            .unwrap(),
        Delivered::Confirmed,
        "a decision on the ask as first seen still reaches it after a replay of the same content"
    );
    assert!(
        matches!(
            waiter.result(Duration::from_secs(2)),
            Some((WaitOutcome::Completed(_), _))
        ),
        "the waiting script is released"
    );
}

#[tokio::test]
async fn a_timed_out_request_shows_as_expired_and_cannot_be_answered() {
    let dir = tempfile::tempdir().unwrap();
    let log = FakeHarnLog::create(dir.path());
    let id = log.ask_user("Proceed?", None, None, Duration::from_millis(400));
    let waiter = log.wait(&id);
    let c = connector(&log, "alice");
    let r = find(&c, &id).await;
    let mut live = c.subscribe().await.unwrap().expect("the log is watched");
    let (outcome, _) = waiter.result(Duration::from_secs(3)).expect("times out");
    assert_eq!(outcome, WaitOutcome::TimedOut);
    let update = tokio::time::timeout(Duration::from_secs(2), live.next())
        .await
        .expect("reported")
        .unwrap()
        .unwrap();
    let Update::Resolved(res) = update else {
        panic!("{update:?}")
    };
    assert_eq!(
        res.status,
        Status::Expired,
        "a timed-out request shows as expired"
    );
    let rows_before = log.rows("hitl.questions").len();
    let d = c
        .deliver(&r, &decision(Outcome::Respond, None, Some("\"yes\"")))
        .await
        .unwrap();
    assert!(
        matches!(d, Delivered::ResolvedElsewhere(ref r) if r.status == Status::Expired),
        "{d:?}"
    );
    assert_eq!(
        log.rows("hitl.questions").len(),
        rows_before,
        "a late answer is not written"
    );
}

#[tokio::test]
async fn a_request_past_its_deadline_with_a_dead_script_is_expired() {
    let dir = tempfile::tempdir().unwrap();
    let log = FakeHarnLog::create(dir.path());
    let opts = ApprovalOptions {
        deadline: Some(Duration::from_millis(200)),
        ..Default::default()
    };
    let id = log.request_approval("deploy", &opts);
    let c = connector(&log, "alice");
    let r = find(&c, &id).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        pending(&c).await.is_empty(),
        "no script will write hitl.timeout; the deadline alone expires it"
    );
    let res = c.resolve_missing(std::slice::from_ref(&r)).await.unwrap();
    assert_eq!(res[0].status, Status::Expired);
    let d = c
        .deliver(&r, &decision(Outcome::Approve, None, None))
        .await
        .unwrap();
    assert!(matches!(d, Delivered::ResolvedElsewhere(ref r) if r.status == Status::Expired));
}

#[tokio::test]
async fn new_requests_and_answers_from_elsewhere_arrive_on_the_live_channel() {
    let dir = tempfile::tempdir().unwrap();
    let log = FakeHarnLog::create(dir.path());
    let c = connector(&log, "alice");
    assert!(pending(&c).await.is_empty());
    let mut live = c.subscribe().await.unwrap().unwrap();
    let started = Instant::now();
    let id = log.request_approval("deploy", &reviewers(&["alice", "bob"], 1));
    let Some(Ok(Update::Request(r))) = tokio::time::timeout(Duration::from_secs(1), live.next())
        .await
        .unwrap()
    else {
        panic!("a new request is reported")
    };
    assert_eq!(request_id(&r), id);
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "within a poll or two of harn writing it"
    );
    log.respond(json!({"request_id": id, "approved": true, "reviewer": "bob"}))
        .unwrap();
    let Some(Ok(Update::Resolved(res))) = tokio::time::timeout(Duration::from_secs(1), live.next())
        .await
        .unwrap()
    else {
        panic!("the answer is reported")
    };
    assert_eq!(
        (res.status, res.decided_by.as_deref()),
        (Status::ResolvedElsewhere, Some("bob")),
        "bob answered elsewhere"
    );
}

#[tokio::test]
async fn pending_matches_harns_own_algorithm_and_skips_malformed_rows() {
    let dir = tempfile::tempdir().unwrap();
    let log = FakeHarnLog::create(dir.path());
    let a = log.request_approval("a", &ApprovalOptions::default());
    let q = log.ask_user("q?", None, None, Duration::from_secs(600));
    log.inject_malformed("hitl.approvals");
    let e = log.escalate_to("sre", "why");
    let d = log.dual_control(1, 2, "closure", &[]);
    log.respond(json!({"request_id": d, "approved": true, "reviewer": "zed"}))
        .unwrap();
    let cancelled = log.request_approval("cancel me", &ApprovalOptions::default());
    log.cancel_upstream(&cancelled);
    let c = connector(&log, "alice");
    let mut ours: Vec<String> = pending(&c)
        .await
        .iter()
        .map(|r| request_id(r).to_owned())
        .collect();
    ours.sort();
    let mut harns: Vec<String> = log
        .hitl_pending()
        .into_iter()
        .filter(|id| *id != cancelled)
        .collect();
    harns.sort();
    assert_eq!(
        ours, harns,
        "the same set as hitl_pending, minus the upstream-cancelled waitpoint"
    );
    for id in [&a, &q, &e] {
        assert!(ours.contains(id), "{id} is pending");
    }
}

#[tokio::test]
async fn suggest_tier_requests_are_proposals_and_trust_records_feed_activity() {
    let dir = tempfile::tempdir().unwrap();
    let log = FakeHarnLog::create(dir.path());
    let id = log.suggest(
        "triage-bot",
        "write_file",
        "fs.write",
        json!(["notes.md", "hello"]),
    );
    log.trust_record(
        "triage-bot",
        "fs.write",
        "act_auto",
        "success",
        None,
        "auto",
    );
    let c = connector(&log, "alice");
    let snap = c.reconcile().await.unwrap();
    let r = snap
        .pending
        .iter()
        .find(|r| request_id(r) == id)
        .expect("listed");
    assert!(r.extra.proposal, "nobody waits on a suggest-tier request");
    assert_eq!(r.tier.as_deref(), Some("suggest"));
    let kinds: Vec<&str> = snap
        .activity
        .iter()
        .map(|a| a.event_type.as_str())
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "trust_recorded").count(),
        2,
        "trust records are deduped across the four topics they are written to: {kinds:?}"
    );
    assert!(
        kinds.contains(&"dispatch_proposed"),
        "shadow/suggest proposals feed activity"
    );
    let auto = snap
        .activity
        .iter()
        .find(|a| a.title.contains("act_auto"))
        .expect("the auto-executed action");
    assert!(auto.title.contains("success"), "{}", auto.title);
    let rec: Value = snap
        .activity
        .iter()
        .find(|a| a.request_remote_id.as_deref() == Some(r.remote_id.as_str()))
        .expect("the trust record links to the request by its remote id, as the store looks it up")
        .details
        .clone();
    assert_eq!(rec["autonomy_tier"], json!("suggest"));
}

/// The re-run handler of a dispatch asks for something else under its
/// deterministic request id.
fn other_service(p: &mut Value) {
    let args = json!({"environment": "prod", "service": "billing"});
    p["args"] = args.clone();
    p["approval_request"]["args"] = args;
}

#[tokio::test]
async fn the_remote_id_is_the_request_id_and_the_event_id_of_the_ask() {
    let dir = tempfile::tempdir().unwrap();
    let log = FakeHarnLog::create(dir.path());
    let a = log.request_approval("deploy", &reviewers(&["alice"], 1));
    let q = log.ask_user("q?", None, None, Duration::from_secs(600));
    let e = log.escalate_to("sre", "why");
    let d = log.dual_control(2, 2, "release", &["alice", "bob"]);
    let c = connector(&log, "alice");
    let listed = pending(&c).await;
    for (id, topic) in [
        (&a, "hitl.approvals"),
        (&q, "hitl.questions"),
        (&e, "hitl.escalations"),
        (&d, "hitl.dual_control"),
    ] {
        let expected = format!("{id}@{}", request_event(&log, topic, id, 0));
        assert!(
            listed.iter().any(|r| r.remote_id == expected),
            "an ask is known by harn's request id and the event id of its request event on {topic}: \
             expected {expected} in {:?}",
            listed.iter().map(|r| &r.remote_id).collect::<Vec<_>>()
        );
    }

    let again = log.reissue(&a, other_service);
    log.replay(&a);
    let r = find(&c, &a).await;
    assert_eq!(
        r.remote_id,
        format!("{a}@{again}"),
        "asked again with other content, the ask is the new request event; \
         a replay of that content after it changes nothing"
    );
}

#[tokio::test]
async fn an_ask_replaced_under_its_id_before_the_decision_is_sent_gets_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = FakeHarnLog::create(dir.path());
    let id = log.request_approval("deploy production", &reviewers(&["alice"], 1));
    let waiter = log.wait(&id);
    let c = connector(&log, "alice");
    let decided = find(&c, &id).await;

    // harn asks again under the same id before the approval goes out.
    log.reissue(&id, other_service);
    let d = c
        .deliver(&decided, &decision(Outcome::Approve, None, None))
        .await
        .unwrap();
    let Delivered::ResolvedElsewhere(res) = d else {
        panic!("the decided ask is no longer pending: {d:?}")
    };
    assert_eq!(
        (res.status, res.remote_id.as_str()),
        (Status::ResolvedElsewhere, decided.remote_id.as_str()),
        "the decided ask ends resolved elsewhere"
    );
    assert_eq!(
        count(&log, "hitl.approvals", "hitl.response_received"),
        0,
        "an approval of the first ask would release the second: nothing is written"
    );
    assert_eq!(
        log.rows(&format!("waitpoint.state.{id}")).len(),
        1,
        "the waitpoint stays as harn opened it"
    );
    assert!(
        waiter.result(Duration::from_millis(300)).is_none(),
        "the script asking the second time keeps waiting"
    );

    let now = pending(&c).await;
    assert_eq!(now.len(), 1, "one ask is pending under the id: {now:?}");
    assert_ne!(
        now[0].remote_id, decided.remote_id,
        "the new ask is a new request"
    );
    assert_eq!(
        now[0].arguments,
        json!({"environment": "prod", "service": "billing"}),
        "with what harn asks now"
    );
    let gone = c
        .resolve_missing(std::slice::from_ref(&decided))
        .await
        .unwrap();
    assert_eq!(
        gone[0].status,
        Status::ResolvedElsewhere,
        "the old ask left the list resolved elsewhere"
    );
    assert!(
        gone[0]
            .outcome
            .as_deref()
            .is_some_and(|o| o.contains("asked again")),
        "and says why: {:?}",
        gone[0].outcome
    );

    let second = Request::observed_as_pending(&now[0], 2, "harn", Platform::Harn);
    assert_eq!(
        c.deliver(&second, &decision(Outcome::Approve, None, None))
            .await
            .unwrap(),
        Delivered::Confirmed,
        "a decision on the new ask is delivered"
    );
    assert!(
        matches!(
            waiter.result(Duration::from_secs(2)),
            Some((WaitOutcome::Completed(_), _))
        ),
        "and releases the script"
    );
    verify_log(log.path()).expect("valid provenance");
}

#[tokio::test]
async fn the_live_channel_reports_a_replaced_ask_gone_and_the_new_one_new() {
    let dir = tempfile::tempdir().unwrap();
    let log = FakeHarnLog::create(dir.path());
    let id = log.request_approval("deploy production", &reviewers(&["alice"], 1));
    let c = connector(&log, "alice");
    let first = find(&c, &id).await;
    let mut live = c.subscribe().await.unwrap().unwrap();
    let again = log.reissue(&id, other_service);
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let next = tokio::time::timeout(Duration::from_secs(2), live.next())
            .await
            .expect("both changes are reported")
            .unwrap()
            .unwrap();
        seen.push(next);
    }
    assert!(
        seen.iter().any(|u| matches!(u, Update::Request(r)
            if r.remote_id == format!("{id}@{again}"))),
        "the new ask arrives as a new request: {seen:?}"
    );
    assert!(
        seen.iter().any(|u| matches!(u, Update::Resolved(r)
            if r.remote_id == first.remote_id && r.status == Status::ResolvedElsewhere)),
        "the old one is resolved elsewhere: {seen:?}"
    );
}

#[tokio::test]
async fn a_decision_stored_under_a_bare_request_id_is_checked_by_content() {
    let dir = tempfile::tempdir().unwrap();
    let log = FakeHarnLog::create(dir.path());
    let same = log.request_approval("deploy", &reviewers(&["alice"], 1));
    let changed = log.request_approval("deploy", &reviewers(&["alice"], 1));
    let c = connector(&log, "alice");
    // As stored before remote ids carried the ask's event id.
    let legacy = |mut r: Request, id: &str| {
        r.remote_id = id.to_owned();
        r
    };
    let (rs, rc) = (
        legacy(find(&c, &same).await, &same),
        legacy(find(&c, &changed).await, &changed),
    );

    log.reissue(&changed, other_service);
    let err = c
        .deliver(&rc, &decision(Outcome::Approve, None, None))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ConnectorError::Rejected(ref m) if m.contains("changed since you decided")),
        "without an event id to compare, different content is refused: {err:?}"
    );
    assert_eq!(
        count(&log, "hitl.approvals", "hitl.response_received"),
        0,
        "nothing is written for the changed request"
    );

    assert_eq!(
        c.deliver(&rs, &decision(Outcome::Approve, None, None))
            .await
            .unwrap(),
        Delivered::Confirmed,
        "the same content is the ask decided, so it is answered"
    );
    assert_eq!(
        count(&log, "hitl.approvals", "hitl.approval_approved"),
        1,
        "only the unchanged request was approved"
    );
}

#[tokio::test]
async fn approvals_given_to_an_earlier_ask_under_the_id_are_pointed_out() {
    let dir = tempfile::tempdir().unwrap();
    let log = FakeHarnLog::create(dir.path());
    let id = log.request_approval("drop table", &reviewers(&["alice", "bob"], 2));
    let (alice, bob) = (connector(&log, "alice"), connector(&log, "bob"));
    let r = find(&alice, &id).await;
    alice
        .deliver(&r, &decision(Outcome::Approve, None, None))
        .await
        .unwrap();
    log.reissue(&id, other_service);

    let seen_by_bob = find(&bob, &id).await;
    let fact = seen_by_bob
        .extra
        .facts
        .iter()
        .find(|f| f.name == "Approved an earlier version");
    assert_eq!(
        fact.map(|f| &f.value),
        Some(&json!(["alice"])),
        "harn counts alice's approval of the first ask towards the new one; bob is told"
    );
    let seen_by_alice = find(&alice, &id).await;
    assert!(
        seen_by_alice
            .extra
            .read_only
            .as_deref()
            .is_some_and(|m| m.contains("earlier version")),
        "alice cannot answer again and is told why: {:?}",
        seen_by_alice.extra.read_only
    );
}

#[path = "event_log/fuzz.rs"]
mod fuzz;
