//! The SurfSense connector against the fake server: discovery across
//! workspaces and threads, what each card offers, resuming a thread in one
//! call, the resume stream, and tokens that expire and rotate.

use chrono::Utc;
use countersign_connector::{Connector, ConnectorError, Delivered};
use countersign_fakes::surfsense::{fixtures, Config, FakeSurfSense, ResumeOutcome};
use countersign_model::{
    AllowedDecision, Decision, Delivery, ObservedRequest, Outcome, Platform, Request, Secret,
    SystemClock,
};
use countersign_surfsense::{Settings, SurfSense, SurfSenseConfig};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

fn connector(fake: &FakeSurfSense, secret: &str) -> SurfSense {
    SurfSense::new(SurfSenseConfig {
        base_url: fake.url(),
        secret: Some(Secret::new(secret)),
        settings: Settings {
            email: fake.seed.email.clone(),
            ..Default::default()
        },
        http: countersign_connector::http::client(),
        clock: Arc::new(SystemClock),
    })
}

async fn start() -> (FakeSurfSense, SurfSense) {
    let fake = FakeSurfSense::start(Config::default()).await.unwrap();
    let c = connector(&fake, &fake.seed.password.clone());
    (fake, c)
}

fn find<'a>(pending: &'a [ObservedRequest], remote: &str) -> &'a ObservedRequest {
    pending
        .iter()
        .find(|r| r.remote_id == remote)
        .unwrap_or_else(|| panic!("{remote} should be listed"))
}

fn decided(
    o: &ObservedRequest,
    id: i64,
    outcome: Outcome,
    edited: Option<Value>,
) -> (Request, Decision) {
    let request = Request::observed_as_pending(o, id, "ss", Platform::Surfsense);
    let decision = Decision {
        id,
        request_id: id,
        outcome,
        comment: None,
        edited_arguments: edited,
        response: None,
        decided_by: "kim".into(),
        decided_at: Utc::now(),
        delivery: Delivery::Sent,
        error: None,
        attempts: 1,
        next_attempt_at: None,
        confirmed_at: None,
    };
    (request, decision)
}

#[tokio::test]
async fn asks_from_every_thread_of_every_workspace_appear() {
    let (fake, c) = start().await;
    let snap = c.reconcile().await.expect("reconcile");
    let s = &fake.seed;
    let mut remote: Vec<&str> = snap.pending.iter().map(|r| r.remote_id.as_str()).collect();
    remote.sort_unstable();
    let doom_key = fake.pending(s.doom_thread)[0]["interrupt_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut expected = vec![
        "318:call_Qm81xv".to_owned(),
        "318:call_Hd20pe".to_owned(),
        "319:call_Lx02aa".to_owned(),
        format!("412:{doom_key}"),
        "413:call_Au77qz".to_owned(),
        "414:call_Lg19kk".to_owned(),
    ];
    expected.sort();
    assert_eq!(
        remote, expected,
        "every pending interrupt of the five paused threads in both workspaces is one request"
    );
    let rm = find(&snap.pending, "318:call_Qm81xv");
    assert_eq!(rm.action, "rm");
    assert_eq!(
        rm.arguments,
        json!({"path": "/documents/archive/2025-notes.md"})
    );
    assert_eq!(rm.agent.as_deref(), Some("Research › Clean up drafts"));
    let patterns = rm.extra.facts.iter().find(|f| f.name == "rule patterns");
    assert_eq!(
        patterns.map(|f| f.value.clone()),
        Some(json!(["rm"])),
        "the rule patterns that caused the ask are shown"
    );
    assert_eq!(
        rm.extra.group.as_ref().map(|g| g.key.as_str()),
        Some("thread:318"),
        "both asks of the thread are one group, answered together"
    );
    let doom = find(&snap.pending, &format!("412:{doom_key}"));
    assert_eq!(
        doom.action, "unknown_tool",
        "the doom-loop guard shows the tool as unknown_tool"
    );
    assert_eq!(doom.extra.label.as_deref(), Some("doom-loop guard"));
    let legacy = find(&snap.pending, "414:call_Lg19kk");
    assert_eq!(
        legacy.action, "create_ticket",
        "legacy values are shown normalised"
    );
    assert_eq!(
        legacy.description.as_deref(),
        Some("Allow the MCP tool `create_ticket`?")
    );
    assert_eq!(
        snap.note.as_deref(),
        Some("watching 6 threads in 2 workspaces, 5 paused"),
        "the health line says how many threads are watched"
    );
}

#[tokio::test]
async fn approve_always_is_offered_only_where_the_card_allows_it() {
    let (_fake, c) = start().await;
    let snap = c.reconcile().await.unwrap();
    for r in &snap.pending {
        let always = r.allowed_decisions.contains(&AllowedDecision::AlwaysAllow);
        assert_eq!(
            always,
            r.remote_id == "319:call_Lx02aa",
            "{}: only the MCP ask lists approve_always",
            r.remote_id
        );
    }
    let gmail = find(&snap.pending, "318:call_Hd20pe");
    assert_eq!(
        gmail.allowed_decisions,
        vec![
            AllowedDecision::Approve,
            AllowedDecision::Deny,
            AllowedDecision::Edit
        ]
    );
}

#[tokio::test]
async fn a_thread_with_two_asks_is_resumed_once_with_both_decisions_matched_by_tool_call_id() {
    let (fake, c) = start().await;
    let snap = c.reconcile().await.unwrap();
    let rm = find(&snap.pending, "318:call_Qm81xv");
    let gmail = find(&snap.pending, "318:call_Hd20pe");
    // Given in the reverse of pending order: matching must be by id.
    let items = [
        decided(
            gmail,
            2,
            Outcome::Edit,
            Some(json!({"subject": "Q3 plan (v2)"})),
        ),
        decided(rm, 1, Outcome::Deny, None),
    ];
    let result = c.deliver_group(&items).await;
    assert_eq!(result, Ok(Delivered::Confirmed));
    let resumes = fake.received_resumes();
    assert_eq!(
        resumes.len(),
        1,
        "one /resume call answers the whole thread"
    );
    assert_eq!(resumes[0].outcome, ResumeOutcome::Applied);
    let sent = &resumes[0].body;
    assert_eq!(sent["workspace_id"], 7);
    assert_eq!(
        sent["decisions"],
        json!([
            {"type": "reject", "edited_action": null, "tool_call_id": "call_Qm81xv"},
            {"type": "edit", "edited_action": {"name": "send_gmail_email", "args": {"subject": "Q3 plan (v2)"}},
             "tool_call_id": "call_Hd20pe"}
        ]),
        "one decision per pending ask, in pending order, each with its tool_call_id"
    );
    let applied = fake.applied();
    let mail = applied
        .iter()
        .find(|a| a.action == "send_gmail_email")
        .unwrap();
    assert_eq!(
        mail.args["subject"], "Q3 plan (v2)",
        "the edit is shallow-merged over the original arguments"
    );
    assert_eq!(
        mail.args["to"], "ops@example.net",
        "keys not edited keep their value"
    );
    assert_eq!(
        applied.iter().find(|a| a.action == "rm").unwrap().effect,
        "rejected"
    );
    assert!(
        fake.pending(318).is_empty(),
        "the thread is no longer paused"
    );
    let again = c.reconcile().await.unwrap();
    assert!(
        again
            .pending
            .iter()
            .all(|r| !r.remote_id.starts_with("318:")),
        "the answered asks leave the pending list"
    );
}

#[tokio::test]
async fn a_parent_side_doom_loop_is_answered_by_position() {
    let (fake, c) = start().await;
    let snap = c.reconcile().await.unwrap();
    let doom = snap
        .pending
        .iter()
        .find(|r| r.remote_id.starts_with("412:"))
        .unwrap();
    let result = c
        .deliver(
            &decided(doom, 1, Outcome::Approve, None).0,
            &decided(doom, 1, Outcome::Approve, None).1,
        )
        .await;
    assert_eq!(result, Ok(Delivered::Confirmed));
    let applied = fake.applied();
    assert_eq!(applied.len(), 1);
    assert_eq!(
        applied[0].effect, "continued",
        "approve on the doom-loop guard is 'continue anyway'"
    );
}

#[tokio::test]
async fn always_allow_on_an_mcp_ask_trusts_the_tool() {
    let (fake, c) = start().await;
    let snap = c.reconcile().await.unwrap();
    let mcp = find(&snap.pending, "319:call_Lx02aa");
    let (r, d) = decided(mcp, 1, Outcome::AlwaysAllow, None);
    assert_eq!(c.deliver(&r, &d).await, Ok(Delivered::Confirmed));
    assert_eq!(
        fake.received_resumes()[0].body["decisions"][0]["type"],
        "approve_always"
    );
    assert_eq!(
        fake.trusted_tools(),
        vec!["linear_search_issues".to_owned()]
    );
}

#[tokio::test]
async fn an_error_frame_inside_a_200_is_a_failed_delivery_with_its_message() {
    let (fake, c) = start().await;
    let snap = c.reconcile().await.unwrap();
    let auto = find(&snap.pending, "413:call_Au77qz");
    fake.fail_next_resume("PREMIUM_QUOTA_EXHAUSTED", "Your premium quota is used up.");
    let (r, d) = decided(auto, 1, Outcome::Approve, None);
    let result = c.deliver(&r, &d).await;
    match result {
        Err(ConnectorError::Rejected(msg)) => assert!(
            msg.contains("Your premium quota is used up.")
                && msg.contains("PREMIUM_QUOTA_EXHAUSTED"),
            "the error frame's message is what the user sees: {msg}"
        ),
        other => panic!("an error frame must fail the delivery, got {other:?}"),
    }
    assert_eq!(
        fake.pending(413).len(),
        1,
        "the pause stays after an error frame"
    );
}

#[tokio::test]
async fn a_busy_thread_asks_for_a_retry_after_its_wait() {
    let (fake, c) = start().await;
    let snap = c.reconcile().await.unwrap();
    let auto = find(&snap.pending, "413:call_Au77qz");
    fake.busy_for(413, 1);
    let (r, d) = decided(auto, 1, Outcome::Approve, None);
    assert_eq!(
        c.deliver(&r, &d).await,
        Err(ConnectorError::RateLimited {
            retry_after: Duration::from_millis(1000)
        }),
        "409 THREAD_BUSY is retried after retry-after-ms"
    );
    assert_eq!(
        c.deliver(&r, &d).await,
        Ok(Delivered::Confirmed),
        "the retry goes through"
    );
}

#[tokio::test]
async fn the_resume_stream_is_read_to_its_end_through_a_silent_gap() {
    let (fake, c) = start().await;
    let snap = c.reconcile().await.unwrap();
    let auto = find(&snap.pending, "413:call_Au77qz");
    // The fake cancels the run (applying nothing) if the client leaves
    // during the silence.
    fake.set_stream_gap(Duration::from_millis(700));
    let (r, d) = decided(auto, 1, Outcome::Approve, None);
    assert_eq!(c.deliver(&r, &d).await, Ok(Delivered::Confirmed));
    assert_eq!(fake.received_resumes()[0].outcome, ResumeOutcome::Applied);
    assert_eq!(
        fake.applied().len(),
        1,
        "the decision was applied, not cancelled"
    );
}

#[tokio::test]
async fn a_thread_resumed_elsewhere_ends_as_resolved_elsewhere() {
    let (fake, c) = start().await;
    let snap = c.reconcile().await.unwrap();
    let auto = find(&snap.pending, "413:call_Au77qz");
    fake.resume_elsewhere(413, "reject");
    let (r, d) = decided(auto, 1, Outcome::Approve, None);
    assert!(
        matches!(c.deliver(&r, &d).await, Ok(Delivered::ResolvedElsewhere(_))),
        "nothing is sent when the ask is gone"
    );
    assert!(fake.received_resumes().is_empty());
}

#[tokio::test]
async fn a_new_ask_in_a_thread_holds_back_its_decided_siblings() {
    let (fake, c) = start().await;
    let snap = c.reconcile().await.unwrap();
    let auto = find(&snap.pending, "413:call_Au77qz");
    fake.interrupt(413, fixtures::kb_rm("call_New001", "/documents/x.md"));
    let (r, d) = decided(auto, 1, Outcome::Approve, None);
    assert!(
        matches!(c.deliver(&r, &d).await, Err(ConnectorError::Unavailable(_))),
        "a partial answer would fail on the server; wait for the new ask to be decided"
    );
    assert!(fake.received_resumes().is_empty(), "nothing was sent");
}

#[tokio::test]
async fn a_resumed_thread_that_pauses_again_shows_the_new_ask() {
    let (fake, c) = start().await;
    let snap = c.reconcile().await.unwrap();
    let auto = find(&snap.pending, "413:call_Au77qz");
    fake.reinterrupt_after_resume(
        413,
        vec![fixtures::gmail_send(
            "call_Again1",
            "cfo@example.net",
            "Digest",
        )],
    );
    let (r, d) = decided(auto, 1, Outcome::Approve, None);
    assert_eq!(c.deliver(&r, &d).await, Ok(Delivered::Confirmed));
    let again = c.reconcile().await.unwrap();
    assert!(again
        .pending
        .iter()
        .any(|r| r.remote_id == "413:call_Again1"));
    assert!(again
        .pending
        .iter()
        .all(|r| r.remote_id != "413:call_Au77qz"));
}

#[tokio::test]
async fn unchanged_idle_threads_are_not_asked_again_until_the_sweep() {
    let (fake, c) = start().await;
    c.reconcile().await.unwrap();
    let first = fake.pending_calls();
    assert_eq!(first, 6, "the first pass asks every thread");
    c.reconcile().await.unwrap();
    assert_eq!(
        fake.pending_calls() - first,
        5,
        "a second pass asks only the five paused threads, not the idle one"
    );
    let before = fake.pending_calls();
    let key = fake
        .interrupt(
            fake.seed.idle_thread,
            fixtures::kb_rm("call_Idle01", "/documents/y.md"),
        )
        .unwrap();
    let snap = c.reconcile().await.unwrap();
    assert_eq!(
        fake.pending_calls() - before,
        6,
        "the idle thread changed, so it is asked too"
    );
    assert!(snap
        .pending
        .iter()
        .any(|r| r.remote_id == format!("415:{key}")));
}

#[tokio::test]
async fn a_token_that_expires_mid_sync_is_refreshed_and_nothing_is_lost() {
    let (fake, c) = start().await;
    let n = c.reconcile().await.unwrap().pending.len();
    fake.expire_access_tokens();
    let again = c.reconcile().await.expect("the sync survives the expiry");
    assert_eq!(again.pending.len(), n, "every ask is still listed");
    assert_eq!(fake.logins(), 1, "a refresh, not a new login");
    let refreshes = fake.refreshes();
    assert_eq!(refreshes.len(), 1);
    assert_eq!(refreshes[0].outcome, "rotated");

    fake.expire_access_tokens();
    c.reconcile().await.expect("second expiry");
    let refreshes = fake.refreshes();
    assert_eq!(refreshes.len(), 2);
    assert_ne!(
        refreshes[1].token, refreshes[0].token,
        "the rotated refresh token is used next time"
    );
    assert_eq!(
        refreshes[1].outcome, "rotated",
        "a replay of the old token would have been answered with null or revoked the family"
    );
}

#[tokio::test]
async fn a_short_lived_token_is_refreshed_before_it_expires() {
    let fake = FakeSurfSense::start(Config {
        access_lifetime: Duration::from_secs(4),
        ..Default::default()
    })
    .await
    .unwrap();
    let c = connector(&fake, &fake.seed.password.clone());
    c.reconcile().await.unwrap();
    tokio::time::sleep(Duration::from_millis(3200)).await;
    c.reconcile().await.unwrap();
    assert_eq!(fake.logins(), 1);
    assert_eq!(
        fake.refreshes().len(),
        1,
        "within the last quarter of its life the token is renewed before use, not after a 401"
    );
}

#[tokio::test]
async fn a_wrong_password_is_an_auth_failure() {
    let fake = FakeSurfSense::start(Config::default()).await.unwrap();
    let c = connector(&fake, "wrong");
    match c.reconcile().await {
        Err(ConnectorError::Auth(msg)) => assert!(msg.contains("wrong email or password"), "{msg}"),
        other => panic!("expected an auth failure, got {other:?}"),
    }
}

#[tokio::test]
async fn a_personal_access_token_works_and_a_gated_workspace_is_skipped_not_fatal() {
    let fake = FakeSurfSense::start(Config::default()).await.unwrap();
    let pat = fake.create_pat();
    fake.set_api_access(fake.seed.ops, false);
    let c = connector(&fake, &pat);
    let snap = c.reconcile().await.expect("the open workspace still syncs");
    assert_eq!(fake.logins(), 0, "a PAT needs no login");
    assert!(snap
        .pending
        .iter()
        .all(|r| r.agent.as_deref().unwrap().starts_with("Research")));
    assert_eq!(snap.pending.len(), 3);
    let note = snap.note.unwrap();
    assert!(
        note.contains("Ops: API access is not enabled for this workspace."),
        "the skipped workspace is named on the health line: {note}"
    );
}

#[tokio::test]
async fn an_old_server_without_pending_interrupts_says_which_version_is_needed() {
    // A server that answers Starlette's plain 404 for the route.
    let fake = FakeSurfSense::start(Config::default()).await.unwrap();
    let c = SurfSense::new(SurfSenseConfig {
        base_url: format!("{}/old", fake.url()),
        secret: Some(Secret::new(fake.create_pat())),
        settings: Settings::default(),
        http: countersign_connector::http::client(),
        clock: Arc::new(SystemClock),
    });
    match c.reconcile().await {
        Err(ConnectorError::Protocol(msg)) => assert!(msg.contains("v0.0.36.3"), "{msg}"),
        other => panic!("expected a clear version error, got {other:?}"),
    }
}
