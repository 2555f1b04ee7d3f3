//! The `harn serve api` connector against the fake server: list, stream,
//! respond, reconnect with resume.

use countersign_connector::{Connector, ConnectorError, Delivered, Update};
use countersign_fakes::harn::api::FakeHarnApi;
use countersign_fakes::harn::{approval_payload, ApprovalOptions};
use countersign_harn::api::parse_remote_id;
use countersign_harn::{HarnApi, HarnApiConfig};
use countersign_model::{
    Decision, Delivery, Kind, ObservedRequest, Outcome, Platform, Request, Secret, Status,
};
use futures::StreamExt;
use serde_json::json;
use std::time::Duration;

fn api(fake: &FakeHarnApi, key: &str, reviewer: &str) -> HarnApi {
    HarnApi::new(HarnApiConfig {
        base_url: fake.url(),
        api_key: Some(Secret::new(key)),
        key_header: false,
        reviewer: reviewer.into(),
        http: countersign_connector::http::client(),
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
        decided_by: "alice".into(),
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

fn approval(fake: &FakeHarnApi, n: u32) -> String {
    let id = format!("hitl_approval_01a2011f-{n:04}");
    let o = ApprovalOptions {
        args: Some(json!({"environment": "prod"})),
        reviewers: vec!["alice".into(), "bob".into()],
        ..Default::default()
    };
    fake.add_hitl(
        &id,
        approval_payload(&id, "deploy production", &o, chrono::Utc::now()),
    )
}

/// The server's id part of a remote id (`<id>@<created_at>`).
fn server_id(r: &ObservedRequest) -> &str {
    parse_remote_id(&r.remote_id).0
}

async fn next_update(
    s: &mut countersign_connector::UpdateStream,
) -> Option<Result<Update, ConnectorError>> {
    tokio::time::timeout(Duration::from_secs(2), s.next())
        .await
        .expect("an update within 2 s")
}

#[tokio::test]
async fn lists_only_pending_requests_with_their_details() {
    let fake = FakeHarnApi::start(Some("dev")).await.unwrap();
    let a = approval(&fake, 1);
    let b = approval(&fake, 2);
    let q = fake.add_hitl(
        "hitl_question_01a2011f-0003",
        json!({"prompt": "Which colour?", "schema": {"type": "string"}, "default": null, "timeout_ms": 900000}),
    );
    fake.answer_elsewhere(&b, true, "bob");
    let snap = api(&fake, "dev", "alice").reconcile().await.unwrap();
    let ids: Vec<&str> = snap.pending.iter().map(server_id).collect();
    assert_eq!(
        ids.len(),
        2,
        "the list holds every status; only pending ones are requests: {ids:?}"
    );
    assert!(ids.contains(&a.as_str()) && ids.contains(&q.as_str()));
    let r = snap.pending.iter().find(|r| server_id(r) == a).unwrap();
    assert_eq!(
        (r.kind, r.action.as_str()),
        (Kind::Approval, "deploy production")
    );
    assert_eq!(r.arguments, json!({"environment": "prod"}));
    let question = snap.pending.iter().find(|r| server_id(r) == q).unwrap();
    assert_eq!(question.kind, Kind::Question);

    let err = api(&fake, "wrong", "alice").reconcile().await.unwrap_err();
    assert!(
        matches!(err, ConnectorError::Auth(_)),
        "a wrong key is an auth failure: {err:?}"
    );
}

#[tokio::test]
async fn x_api_key_auth_is_accepted() {
    let fake = FakeHarnApi::start(Some("dev")).await.unwrap();
    approval(&fake, 1);
    let c = HarnApi::new(HarnApiConfig {
        base_url: fake.url(),
        api_key: Some(Secret::new("dev")),
        key_header: true,
        reviewer: "alice".into(),
        http: countersign_connector::http::client(),
    });
    assert_eq!(c.reconcile().await.unwrap().pending.len(), 1);
}

#[tokio::test]
async fn responding_sends_harns_body_and_a_second_answer_is_resolved_elsewhere() {
    let fake = FakeHarnApi::start(Some("dev")).await.unwrap();
    let a = approval(&fake, 1);
    let q = fake.add_hitl(
        "hitl_question_01a2011f-0002",
        json!({"prompt": "Which colour?", "schema": null, "default": null, "timeout_ms": 900000}),
    );
    let c = api(&fake, "dev", "alice");
    let snap = c.reconcile().await.unwrap();
    let req = |id: &str| {
        Request::observed_as_pending(
            snap.pending.iter().find(|r| server_id(r) == id).unwrap(),
            1,
            "h",
            Platform::Harn,
        )
    };

    let d = c
        .deliver(&req(&a), &decision(Outcome::Approve, Some("ship it"), None))
        .await
        .unwrap();
    assert_eq!(d, Delivered::Confirmed);
    assert_eq!(
        fake.responses()[0],
        json!({"approved": true, "reviewer": "alice", "reason": "ship it"}),
        "the reviewer and reason go with the answer"
    );
    c.deliver(
        &req(&q),
        &decision(Outcome::Respond, None, Some("\"green\"")),
    )
    .await
    .unwrap();
    assert_eq!(
        fake.responses()[1],
        json!({"approved": true, "reviewer": "alice", "answer": "green"}),
        "a question answer carries approved:true, or harn lists it as denied"
    );
    assert_eq!(fake.item(&q).unwrap()["status"], json!("approved"));

    // Someone answers before us: we learn how it ended, and send nothing.
    let b = approval(&fake, 3);
    let rb = Request::observed_as_pending(
        &c.reconcile()
            .await
            .unwrap()
            .pending
            .into_iter()
            .find(|r| server_id(r) == b)
            .unwrap(),
        2,
        "h",
        Platform::Harn,
    );
    fake.answer_elsewhere(&b, false, "bob");
    let d = c
        .deliver(&rb, &decision(Outcome::Approve, None, None))
        .await
        .unwrap();
    let Delivered::ResolvedElsewhere(res) = d else {
        panic!("{d:?}")
    };
    assert_eq!(
        (
            res.status,
            res.outcome.as_deref(),
            res.decided_by.as_deref()
        ),
        (Status::ResolvedElsewhere, Some("denied"), Some("bob"))
    );
}

#[tokio::test]
async fn the_stream_reports_new_requests_and_resumes_after_a_drop() {
    let fake = FakeHarnApi::start(Some("dev")).await.unwrap();
    approval(&fake, 1);
    let c = api(&fake, "dev", "alice");
    let mut s = c.subscribe().await.unwrap().expect("serve api pushes");
    // History first: the existing request's events ask for a re-list.
    assert!(matches!(
        next_update(&mut s).await,
        Some(Ok(Update::Resync))
    ));
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(200), s.next()).await {}
    let resume_at = c.last_event_id().expect("event ids are remembered");
    assert!(resume_at.starts_with("event_"), "{resume_at}");

    let second = approval(&fake, 2);
    assert!(
        matches!(next_update(&mut s).await, Some(Ok(Update::Resync))),
        "a new permission asks for a re-list"
    );
    assert!(c
        .reconcile()
        .await
        .unwrap()
        .pending
        .iter()
        .any(|r| server_id(r) == second));
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(200), s.next()).await {}

    fake.drop_streams();
    assert!(
        tokio::time::timeout(Duration::from_secs(2), s.next())
            .await
            .unwrap()
            .is_none(),
        "the stream ends when dropped"
    );
    let before = c.last_event_id();
    let third = approval(&fake, 3); // while disconnected
    let mut s = c.subscribe().await.unwrap().unwrap();
    assert!(
        matches!(next_update(&mut s).await, Some(Ok(Update::Resync))),
        "the missed events are replayed after the resume point"
    );
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(200), s.next()).await {}
    assert_ne!(
        c.last_event_id(),
        before,
        "the resume point moved past the missed events"
    );
    assert!(
        c.reconcile()
            .await
            .unwrap()
            .pending
            .iter()
            .any(|r| server_id(r) == third),
        "nothing lost across the drop"
    );
}

#[tokio::test]
async fn events_lost_by_a_lagging_stream_are_found_by_the_re_list() {
    let fake = FakeHarnApi::start(None).await.unwrap();
    let c = api(&fake, "unused", "alice");
    let mut s = c.subscribe().await.unwrap().unwrap();
    fake.lose_live_events(4);
    let lost = approval(&fake, 1);
    assert!(
        tokio::time::timeout(Duration::from_millis(400), s.next())
            .await
            .is_err(),
        "the lagging stream saw nothing"
    );
    assert!(
        c.reconcile()
            .await
            .unwrap()
            .pending
            .iter()
            .any(|r| server_id(r) == lost),
        "the periodic re-list finds it"
    );
}

fn payload(args: serde_json::Value) -> (String, serde_json::Value) {
    let id = "hitl_approval_01a2011f-0009".to_owned();
    let o = ApprovalOptions {
        args: Some(args),
        reviewers: vec!["alice".into()],
        ..Default::default()
    };
    let p = approval_payload(&id, "deploy production", &o, chrono::Utc::now());
    (id, p)
}

#[tokio::test]
async fn the_remote_id_is_the_id_and_the_registration_time() {
    let fake = FakeHarnApi::start(None).await.unwrap();
    let a = approval(&fake, 1);
    let c = api(&fake, "unused", "alice");
    let listed = c.reconcile().await.unwrap().pending;
    let created = fake.item(&a).unwrap()["created_at"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        listed[0].remote_id,
        format!("{a}@{created}"),
        "serve api keeps one record per id, replaced when the id is registered again; \
         its created_at names the registration"
    );

    tokio::time::sleep(Duration::from_millis(5)).await;
    let (_, p) = payload(json!({"environment": "prod"}));
    fake.add_hitl(&a, p);
    let again = fake.item(&a).unwrap()["created_at"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(again, created, "registering again sets a new created_at");
    assert_eq!(
        c.reconcile().await.unwrap().pending[0].remote_id,
        format!("{a}@{again}"),
        "a registration under the same id is a new ask"
    );
}

#[tokio::test]
async fn an_ask_registered_again_before_the_decision_is_sent_gets_nothing() {
    let fake = FakeHarnApi::start(None).await.unwrap();
    let (id, first) = payload(json!({"environment": "staging"}));
    fake.add_hitl(&id, first);
    let c = api(&fake, "unused", "alice");
    let decided = Request::observed_as_pending(
        &c.reconcile().await.unwrap().pending[0],
        1,
        "h",
        Platform::Harn,
    );

    // The task's handler re-runs and asks again under the same id.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let (_, second) = payload(json!({"environment": "prod"}));
    fake.add_hitl(&id, second);
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
    assert!(
        fake.responses().is_empty(),
        "respond goes by id: sending would approve the new ask, so nothing is sent"
    );
    assert_eq!(fake.item(&id).unwrap()["status"], json!("pending"));

    let now = c.reconcile().await.unwrap().pending;
    assert_eq!(now.len(), 1, "one ask is listed under the id");
    assert_ne!(now[0].remote_id, decided.remote_id, "as a new request");
    assert_eq!(now[0].arguments, json!({"environment": "prod"}));
    let gone = c
        .resolve_missing(std::slice::from_ref(&decided))
        .await
        .unwrap();
    assert_eq!(
        (gone[0].status, gone[0].remote_id.as_str()),
        (Status::ResolvedElsewhere, decided.remote_id.as_str()),
        "the old ask left the list resolved elsewhere"
    );

    let second = Request::observed_as_pending(&now[0], 2, "h", Platform::Harn);
    assert_eq!(
        c.deliver(&second, &decision(Outcome::Approve, None, None))
            .await
            .unwrap(),
        Delivered::Confirmed,
        "a decision on the new ask is sent"
    );
    assert_eq!(
        fake.responses().len(),
        1,
        "exactly one answer reached the server"
    );
}

#[tokio::test]
async fn an_ask_whose_content_differs_from_what_was_decided_is_not_sent() {
    let fake = FakeHarnApi::start(None).await.unwrap();
    let a = approval(&fake, 1);
    let c = api(&fake, "unused", "alice");
    let mut decided = Request::observed_as_pending(
        &c.reconcile().await.unwrap().pending[0],
        1,
        "h",
        Platform::Harn,
    );
    // The server changes a record only by registering it again, so the
    // copy the reviewer saw differing under the same registration is what
    // an id stored without its registration time (or a clock that did not
    // move between two registrations) looks like.
    decided.remote_id = a.clone();
    decided.raw["request"]["args"] = json!({"environment": "staging"});
    let err = c
        .deliver(&decided, &decision(Outcome::Approve, None, None))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ConnectorError::Rejected(ref m) if m.contains("changed since you decided")),
        "{err:?}"
    );
    assert!(fake.responses().is_empty(), "nothing is sent");
}

#[path = "api/fuzz.rs"]
mod fuzz;
