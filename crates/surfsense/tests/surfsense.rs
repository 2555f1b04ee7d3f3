//! The SurfSense connector against the fake server: discovery across
//! workspaces and threads, what each card offers, resuming a thread in one
//! call, the resume stream, and tokens that expire and rotate.

use chrono::Utc;
use countersign_connector::session::MemorySessionStore;
use countersign_connector::{Connector, ConnectorError, Delivered, SessionStore};
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
    sharing(fake, secret, None)
}

/// A connector keeping its session in `sessions`: connectors given one
/// store are like processes sharing a data dir.
fn sharing(fake: &FakeSurfSense, secret: &str, sessions: Option<MemorySessionStore>) -> SurfSense {
    SurfSense::new(SurfSenseConfig {
        base_url: fake.url(),
        secret: Some(Secret::new(secret)),
        settings: Settings {
            email: fake.seed.email.clone(),
            ..Default::default()
        },
        http: countersign_connector::http::client(),
        clock: Arc::new(SystemClock),
        sessions: sessions.map(|s| Arc::new(s) as Arc<dyn SessionStore>),
    })
}

async fn start() -> (FakeSurfSense, SurfSense) {
    let fake = FakeSurfSense::start(Config::default()).await.unwrap();
    let c = connector(&fake, &fake.seed.password.clone());
    (fake, c)
}

/// The ask `remote` names: a full remote id, or `thread:tool_call_id` of a
/// stamped ask (its remote id goes on with `:interrupt_id`).
fn find<'a>(pending: &'a [ObservedRequest], remote: &str) -> &'a ObservedRequest {
    pending
        .iter()
        .find(|r| r.remote_id == remote || r.remote_id.starts_with(&format!("{remote}:")))
        .unwrap_or_else(|| panic!("{remote} should be listed"))
}

/// The remote id of the stamped ask `call` of a thread: thread, tool call
/// and interrupt ids.
fn rid(fake: &FakeSurfSense, thread: i64, call: &str) -> String {
    let iid = fake
        .pending(thread)
        .iter()
        .find(|v| v["tool_call_id"] == call)
        .and_then(|v| v["interrupt_id"].as_str().map(str::to_owned))
        .unwrap_or_else(|| panic!("{call} is pending on thread {thread}"));
    format!("{thread}:{call}:{iid}")
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
        note: None,
        unsure_since: None,
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
        rid(&fake, 318, "call_Qm81xv"),
        rid(&fake, 318, "call_Hd20pe"),
        rid(&fake, 319, "call_Lx02aa"),
        format!("412:{doom_key}"),
        rid(&fake, 413, "call_Au77qz"),
        rid(&fake, 414, "call_Lg19kk"),
    ];
    expected.sort();
    assert_eq!(
        remote, expected,
        "every pending interrupt of the five paused threads in both workspaces is one request, \
         known by thread, tool call and interrupt (parent-side: thread and interrupt)"
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
            r.remote_id.starts_with("319:call_Lx02aa:"),
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
    assert_eq!(result, vec![Ok(Delivered::Confirmed); 2]);
    let resumes = fake.received_resumes();
    assert_eq!(
        resumes.len(),
        1,
        "one /resume call answers the whole thread"
    );
    assert_eq!(resumes[0].outcome, ResumeOutcome::Applied);
    let sent = &resumes[0].body;
    assert_eq!(sent["workspace_id"], 7);
    let mut decisions = sent["decisions"].as_array().cloned().unwrap();
    decisions.sort_by_key(|d| d["tool_call_id"].as_str().unwrap_or("").to_owned());
    assert_eq!(
        decisions,
        vec![
            json!({"type": "edit", "edited_action": {"name": "send_gmail_email", "args": {"subject": "Q3 plan (v2)"}},
             "tool_call_id": "call_Hd20pe"}),
            json!({"type": "reject", "edited_action": null, "tool_call_id": "call_Qm81xv"}),
        ],
        "one decision per pending ask, each with its tool_call_id (routed by id: the \
         pending list's order is not the stream's)"
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
        .any(|r| r.remote_id.starts_with("413:call_Again1:")));
    assert!(again
        .pending
        .iter()
        .all(|r| !r.remote_id.starts_with("413:call_Au77qz:")));
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
        .any(|r| r.remote_id.starts_with(&format!("415:{key}:"))));
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
        sessions: None,
    });
    match c.reconcile().await {
        Err(ConnectorError::Protocol(msg)) => assert!(msg.contains("v0.0.36.3"), "{msg}"),
        other => panic!("expected a clear version error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_decision_never_reaches_a_second_ask_under_the_same_tool_call_id() {
    let (fake, c) = start().await;
    let thread = fake.add_thread(fake.seed.research, "Tidy documents");
    fake.interrupt(
        thread,
        fixtures::kb_rm("call_Task01", "/documents/cs-race-A.md"),
    );
    let snap = c.reconcile().await.unwrap();
    let first = find(&snap.pending, &format!("{thread}:call_Task01")).clone();
    // Before the reviewer's approval is sent, the first ask is answered in
    // the web app and the subagent asks again in the same task.
    let second_iid = fake
        .ask_again(
            thread,
            "call_Task01",
            "approve",
            fixtures::kb_rm("call_Task01", "/documents/cs-approve.md"),
        )
        .unwrap();
    let resumes_before = fake.received_resumes().len();
    let (r, d) = decided(&first, 1, Outcome::Approve, None);
    assert_eq!(
        c.deliver(&r, &d).await,
        Ok(Delivered::ResolvedElsewhere(
            countersign_connector::resolved_elsewhere(&first.remote_id)
        )),
        "the ask the reviewer approved is gone; its approval must not go anywhere"
    );
    assert_eq!(
        fake.received_resumes().len(),
        resumes_before,
        "nothing is sent: the only pending ask is one nobody has seen"
    );
    assert!(
        !fake
            .applied()
            .iter()
            .any(|a| a.args["path"] == "/documents/cs-approve.md"),
        "the second rm did not run"
    );
    let again = c.reconcile().await.unwrap();
    let second = find(&again.pending, &format!("{thread}:call_Task01"));
    assert_eq!(
        second.remote_id,
        format!("{thread}:call_Task01:{second_iid}"),
        "the second ask is a request of its own, shown as new"
    );
    assert_ne!(second.remote_id, first.remote_id);
    assert_eq!(
        second.arguments,
        json!({"path": "/documents/cs-approve.md"})
    );
}

#[tokio::test]
async fn an_ask_whose_arguments_differ_from_what_was_decided_is_not_sent() {
    let (fake, c) = start().await;
    let snap = c.reconcile().await.unwrap();
    let auto = find(&snap.pending, "413:call_Au77qz");
    let (mut r, d) = decided(auto, 1, Outcome::Approve, None);
    // What the reviewer saw, not what the platform holds now.
    r.arguments = json!({"name": "a different automation"});
    match c.deliver(&r, &d).await {
        Err(ConnectorError::Rejected(msg)) => assert!(msg.contains("changed"), "{msg}"),
        other => panic!("a changed ask is refused and shown again, got {other:?}"),
    }
    assert!(fake.received_resumes().is_empty(), "nothing was sent");
}

#[tokio::test]
async fn a_deny_of_the_doom_loop_guard_that_surfsense_ignores_is_reported() {
    let (fake, c) = start().await;
    let snap = c.reconcile().await.unwrap();
    let doom = find(&snap.pending, &format!("{}", 412)).clone();
    let (r, d) = decided(&doom, 1, Outcome::Deny, None);
    match c.deliver(&r, &d).await {
        Ok(Delivered::ConfirmedWithNote(note)) => assert!(
            note.contains("SurfSense continued the run despite the deny"),
            "{note}"
        ),
        other => {
            panic!("v0.0.38 runs on after this deny; the reviewer must be told, got {other:?}")
        }
    }
    assert_eq!(fake.applied()[0].effect, "continued");
}

#[tokio::test]
async fn a_deny_of_the_doom_loop_guard_that_ends_the_turn_is_plainly_confirmed() {
    let fake = FakeSurfSense::start(Config {
        doom_loop_reject_ignored: false,
        ..Default::default()
    })
    .await
    .unwrap();
    let c = connector(&fake, &fake.seed.password.clone());
    let snap = c.reconcile().await.unwrap();
    let doom = find(&snap.pending, "412").clone();
    let (r, d) = decided(&doom, 1, Outcome::Deny, None);
    assert_eq!(
        c.deliver(&r, &d).await,
        Ok(Delivered::Confirmed),
        "a server that honours the deny ends the turn; no note"
    );
    assert_eq!(fake.applied()[0].effect, "turn_ended");
}

#[tokio::test]
async fn processes_sharing_a_session_log_in_once() {
    let fake = FakeSurfSense::start(Config::default()).await.unwrap();
    let store = MemorySessionStore::default();
    let password = fake.seed.password.clone();
    for _ in 0..20 {
        // A new connector each time, like a new CLI process.
        let c = sharing(&fake, &password, Some(store.clone()));
        c.reconcile()
            .await
            .expect("signed in from the shared session");
    }
    assert_eq!(
        fake.logins(),
        1,
        "SurfSense allows 5 logins a minute; the session is reused, not made again"
    );
    fake.expire_access_tokens();
    let c = sharing(&fake, &password, Some(store.clone()));
    c.reconcile().await.expect("refreshed");
    let other = sharing(&fake, &password, Some(store.clone()));
    other
        .reconcile()
        .await
        .expect("the refreshed session is shared");
    assert_eq!(
        fake.logins(),
        1,
        "an expired token is refreshed, not logged in again"
    );
    assert_eq!(
        fake.refreshes()
            .iter()
            .map(|r| r.outcome.as_str())
            .collect::<Vec<_>>(),
        vec!["rotated"],
        "one refresh, by one process; the next adopts it instead of replaying the old token"
    );
    let stored = store.current().expect("kept").expose().to_owned();
    assert!(
        !stored.contains(&password),
        "the password is never part of the session"
    );
}

#[tokio::test]
async fn a_changed_password_is_tried_even_with_a_stored_session() {
    let fake = FakeSurfSense::start(Config::default()).await.unwrap();
    let store = MemorySessionStore::default();
    sharing(&fake, &fake.seed.password.clone(), Some(store.clone()))
        .reconcile()
        .await
        .unwrap();
    match sharing(&fake, "not the password", Some(store.clone()))
        .reconcile()
        .await
    {
        Err(ConnectorError::Auth(msg)) => assert!(msg.contains("wrong email or password"), "{msg}"),
        other => panic!("the session was made with another password; got {other:?}"),
    }
}

#[tokio::test]
async fn the_sixth_login_in_a_minute_is_rate_limited_with_its_wait() {
    let fake = FakeSurfSense::start(Config::default()).await.unwrap();
    let password = fake.seed.password.clone();
    for _ in 0..5 {
        connector(&fake, &password).reconcile().await.unwrap();
    }
    match connector(&fake, "not the password").reconcile().await {
        Err(ConnectorError::RateLimited { retry_after }) => assert!(
            retry_after > Duration::ZERO && retry_after <= Duration::from_secs(60),
            "the wait is the one the server gives: {retry_after:?}"
        ),
        other => panic!(
            "the limiter answers before the password is checked, so this is rate limiting, \
             not a wrong password; got {other:?}"
        ),
    }
    assert_eq!(fake.rate_limited_logins(), 1);
}

#[tokio::test]
async fn the_probe_tells_whether_surfsense_answers() {
    let (fake, c) = start().await;
    c.probe().await.expect("up");
    fake.stop().await;
    assert!(
        matches!(c.probe().await, Err(ConnectorError::Unavailable(_))),
        "a stopped server refuses the connection"
    );
    fake.restart().await.unwrap();
    c.probe().await.expect("back, with the same session");
    assert_eq!(fake.logins(), 1);
}

#[path = "surfsense/fuzz.rs"]
mod fuzz;
