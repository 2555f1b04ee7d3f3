//! The sync engine running against a fake Molecule AI server, in process:
//! live push, lossy sockets, outages, races with other reviewers, expiry,
//! hostile frames. Each test has its own temp data dir and fake.

use countersign_fakes::molecule::{Config, FakeMolecule};
use countersign_inbox::{AccountInput, DecisionInput, Inbox, Running};
use countersign_model::{
    ConnectionState, Delivery, Outcome, Platform, Secret, SecretStoreKind, Status, SystemClock,
};
use countersign_sync::{Backoff, Options};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

const TOKEN: &str = "admin-token";

struct Harness {
    _dir: tempfile::TempDir,
    inbox: Inbox,
    fake: FakeMolecule,
    ws: String,
}

fn fast() -> Options {
    Options {
        backoff: Backoff {
            base: Duration::from_millis(50),
            max: Duration::from_millis(400),
        },
        auth_retry: Duration::from_secs(60),
        lease: Duration::from_secs(30),
        outbox_every: Duration::from_millis(200),
        uncertain_retry: Duration::from_millis(300),
        waiting_check: Duration::from_millis(200),
    }
}

async fn harness(config: Config) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let inbox = Inbox::open_with(dir.path(), Arc::new(SystemClock), fast()).unwrap();
    let fake = FakeMolecule::start(config).await.unwrap();
    let ws = fake.add_workspace("Release Manager", None);
    Harness {
        _dir: dir,
        inbox,
        fake,
        ws,
    }
}

impl Harness {
    async fn add(&self, name: &str, token: &str, settings: Value) -> i64 {
        self.inbox
            .add_account(AccountInput {
                name: name.into(),
                platform: Platform::Molecule,
                base_url: self.fake.url(),
                reviewer: Some("dana".into()),
                secret: Some(Secret::new(token)),
                secret_store: SecretStoreKind::File,
                settings,
            })
            .await
            .unwrap()
            .id
    }

    fn pending(&self) -> Vec<countersign_inbox::RequestView> {
        self.inbox.pending(&Default::default()).unwrap()
    }

    fn state(&self, account_id: i64) -> Option<ConnectionState> {
        self.inbox
            .store()
            .health(account_id)
            .unwrap()
            .map(|h| h.state)
    }

    async fn run(&self) -> Running {
        self.inbox.run().await.unwrap()
    }

    /// Starts the engine and waits until `account` is subscribed.
    async fn run_connected(&self, account: i64) -> Running {
        let running = self.run().await;
        until("connected", || {
            self.state(account) == Some(ConnectionState::Connected)
        })
        .await;
        running
    }

    async fn decide(&self, request_id: i64, outcome: Outcome) -> countersign_model::Decision {
        self.inbox
            .decide(DecisionInput {
                request_id,
                outcome,
                comment: None,
                edited_arguments: None,
                response: None,
            })
            .await
            .unwrap()
    }
}

/// Polls `check` until it holds, for at most 10 s.
async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn deciding_on_the_server_marks_the_request_resolved_elsewhere() {
    let h = harness(Config::with_admin_token(TOKEN)).await;
    let acc = h.add("prod", TOKEN, json!({})).await;
    let running = h.run_connected(acc).await;

    let id = h.fake.create_approval(&h.ws, "push tag v2.4.0", "CI green");
    until("the request is pending", || h.pending().len() == 1).await;
    h.fake.decide_as(&id, "approved", "bob");
    until("it left the inbox", || h.pending().is_empty()).await;

    let r = h
        .inbox
        .store()
        .request_by_remote(acc, &id)
        .unwrap()
        .unwrap();
    assert_eq!(
        r.status,
        Status::ResolvedElsewhere,
        "bob decided it, not this user"
    );
    assert_eq!(
        r.outcome.as_deref(),
        Some("approved"),
        "history says what bob did"
    );
    assert_eq!(r.decided_by.as_deref(), Some("bob"));
    running.stop().await;
}

#[tokio::test]
async fn requests_created_while_disconnected_are_not_lost() {
    let h = harness(Config::with_admin_token(TOKEN)).await;
    let acc = h.add("prod", TOKEN, json!({})).await;
    let running = h.run_connected(acc).await;

    h.fake.stop().await;
    until("the engine noticed", || {
        h.state(acc) != Some(ConnectionState::Connected)
    })
    .await;
    for i in 0..3 {
        h.fake
            .create_approval(&h.ws, &format!("offline action {i}"), "");
    }
    h.fake.restart().await.unwrap();
    until("all three arrived after reconnecting", || {
        h.pending().len() == 3
    })
    .await;
    until("connected again", || {
        h.state(acc) == Some(ConnectionState::Connected)
    })
    .await;
    running.stop().await;
}

#[tokio::test]
async fn silently_dropped_socket_messages_are_recovered_by_reconciling() {
    let h = harness(Config::with_admin_token(TOKEN)).await;
    let acc = h.add("prod", TOKEN, json!({"reconcile_secs": 1})).await;
    let running = h.run_connected(acc).await;

    h.fake.set_dropping_ws(true);
    h.fake.create_approval(&h.ws, "lost on the socket", "");
    h.fake.set_dropping_ws(false);
    until("the periodic reconcile found it", || h.pending().len() == 1).await;
    assert_eq!(
        h.fake.socket_count(),
        1,
        "the socket stayed up; only a message was lost"
    );

    h.fake.drop_sockets();
    let id = h.fake.create_approval(&h.ws, "after an abrupt close", "");
    until("the reconnect's reconcile found it", || {
        h.pending().iter().any(|r| r.remote_id == id)
    })
    .await;
    running.stop().await;
}

#[tokio::test]
async fn an_approval_decided_elsewhere_first_ends_resolved_elsewhere_and_nothing_is_sent() {
    let h = harness(Config::with_admin_token(TOKEN)).await;
    let acc = h.add("prod", TOKEN, json!({})).await;
    let id = h.fake.create_approval(&h.ws, "drop table", "");
    h.inbox.sync_once().await.unwrap();
    let local = h.pending()[0].id;
    h.fake.decide_as(&id, "denied", "bob");

    let d = h.decide(local, Outcome::Approve).await;
    assert_eq!(
        d.delivery,
        Delivery::Failed,
        "the platform refused: someone was first"
    );
    let r = h.inbox.store().request(local).unwrap();
    assert_eq!(r.status, Status::ResolvedElsewhere);
    assert_eq!(
        r.decided_by.as_deref(),
        Some("bob"),
        "per-workspace history names who"
    );
    assert_eq!(r.outcome.as_deref(), Some("denied"));

    for _ in 0..2 {
        h.inbox.sync_once().await.unwrap();
    }
    assert!(
        h.fake.received_decisions().is_empty(),
        "the history read before sending showed bob was first: no decide call, then or on later syncs"
    );
    assert!(h.inbox.store().outbox().unwrap().is_empty());
    let _ = acc;
}

#[tokio::test]
async fn requests_the_server_auto_expires_end_as_expired() {
    let h = harness(Config::with_admin_token(TOKEN)).await;
    let acc = h.add("prod", TOKEN, json!({})).await;
    let id = h.fake.create_approval(&h.ws, "old action", "");
    h.inbox.sync_once().await.unwrap();
    let r = h
        .inbox
        .store()
        .request_by_remote(acc, &id)
        .unwrap()
        .unwrap();
    let deadline = r
        .deadline
        .expect("Molecule requests carry the expiry as deadline");
    assert!((deadline - r.created_at).num_minutes() == 10);

    h.fake.backdate(&id, Duration::from_secs(11 * 60));
    h.inbox.sync_once().await.unwrap();
    let r = h
        .inbox
        .store()
        .request_by_remote(acc, &id)
        .unwrap()
        .unwrap();
    assert_eq!(
        r.status,
        Status::Expired,
        "listing expired it on the server, without an event"
    );
    assert_eq!(r.decided_by.as_deref(), Some("auto-expired"));
}

#[tokio::test]
async fn malformed_huge_and_unknown_socket_messages_are_skipped() {
    let h = harness(Config::with_admin_token(TOKEN)).await;
    let acc = h.add("prod", TOKEN, json!({})).await;
    let running = h.run_connected(acc).await;

    let huge_but_allowed = json!({"event": "SOMETHING_NEW", "workspace_id": h.ws,
        "timestamp": "2026-04-27T14:02:11Z", "payload": {"blob": "x".repeat(1024 * 1024)}});
    for frame in [
        "not json at all".to_owned(),
        "{\"event\":\"APPROVAL_REQUESTED\"}".to_owned(),
        json!({"event":"APPROVAL_REQUESTED","workspace_id":h.ws,"timestamp":"2026-04-27T14:02:11Z","payload":"string"}).to_string(),
        json!({"event":"APPROVAL_REQUESTED","workspace_id":h.ws,"timestamp":"yesterday","payload":{}}).to_string(),
        json!({"event":"APPROVAL_APPROVED","workspace_id":h.ws,"timestamp":"2026-04-27T14:02:11Z","payload":{"approval_id":"nope"}}).to_string(),
        "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[".to_owned(),
        huge_but_allowed.to_string(),
    ] {
        h.fake.send_raw_ws(&frame);
    }
    let id = h.fake.create_approval(&h.ws, "valid after garbage", "");
    until("the valid request still arrives", || h.pending().len() == 1).await;
    assert_eq!(h.pending()[0].remote_id, id);
    assert_eq!(
        h.fake.socket_count(),
        1,
        "bad frames are skipped, not a reason to reconnect"
    );

    // Larger than the frame limit: the connection is dropped and rebuilt,
    // and the reconcile on reconnect loses nothing.
    h.fake.send_raw_ws(&"y".repeat(5 * 1024 * 1024));
    let id2 = h
        .fake
        .create_approval(&h.ws, "after an oversized frame", "");
    until("the request after the oversized frame arrives", || {
        h.pending().iter().any(|r| r.remote_id == id2)
    })
    .await;
    running.stop().await;
}

#[tokio::test]
async fn replayed_events_leave_one_row() {
    let h = harness(Config::with_admin_token(TOKEN)).await;
    let acc = h.add("prod", TOKEN, json!({})).await;
    let mut events = h.inbox.engine().events();
    let running = h.run_connected(acc).await;
    let frame = json!({"event":"APPROVAL_REQUESTED","workspace_id":h.ws,
        "timestamp":"2026-04-27T14:02:11.408150231Z",
        "payload":{"approval_id":"0d9e8f7a-6b5c-4d3e-8f21-a0b1c2d3e4f5","action":"push","reason":"","task_id":""}})
    .to_string();
    h.fake.send_raw_ws(&frame);
    h.fake.send_raw_ws(&frame);
    until("stored", || h.pending().len() == 1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(h.pending().len(), 1, "a replay is the same request");
    let mut added = 0;
    while let Ok(e) = events.try_recv() {
        if matches!(e, countersign_sync::SyncEvent::RequestAdded(_)) {
            added += 1;
        }
    }
    assert_eq!(added, 1, "a replay must not notify twice");
    running.stop().await;
}

#[tokio::test]
async fn escalated_approvals_are_answered_with_their_own_workspace() {
    let h = harness(Config::with_admin_token(TOKEN)).await;
    let acc = h.add("prod", TOKEN, json!({})).await;
    let child = h.fake.add_workspace("Sub-agent", Some(&h.ws));
    let running = h.run_connected(acc).await;

    let id = h
        .fake
        .create_approval(&child, "send email to all customers", "");
    until("pending", || h.pending().len() == 1).await;
    until("escalation in the activity feed", || {
        !h.inbox.store().activity(None, 10).unwrap().is_empty()
    })
    .await;
    assert_eq!(
        h.pending().len(),
        1,
        "an escalation is news, not a second request"
    );
    assert_eq!(h.pending()[0].agent.as_deref(), Some("Sub-agent"));

    let d = h.decide(h.pending()[0].id, Outcome::Deny).await;
    assert_eq!(d.delivery, Delivery::Confirmed);
    assert_eq!(h.fake.received_decisions()[0].workspace_id, child);
    assert_eq!(h.fake.approval(&id).unwrap().status, "denied");
    running.stop().await;
}

#[tokio::test]
async fn agent_messages_and_workspace_alerts_reach_the_activity_feed() {
    let h = harness(Config::with_admin_token(TOKEN)).await;
    let acc = h.add("prod", TOKEN, json!({})).await;
    let running = h.run_connected(acc).await;
    h.fake.emit(
        "AGENT_MESSAGE",
        &h.ws,
        json!({"message": "<b>done</b> with the release", "name": "Release Manager"}),
    );
    h.fake
        .emit("WORKSPACE_HEARTBEAT", &h.ws, json!({"active_tasks": 1}));
    h.fake.emit("WORKSPACE_OFFLINE", &h.ws, json!({}));
    until("two items", || {
        h.inbox.store().activity(None, 10).unwrap().len() == 2
    })
    .await;
    let feed = h.inbox.store().activity(None, 10).unwrap();
    assert!(
        feed.iter()
            .any(|a| a.title == "Message: <b>done</b> with the release"),
        "{feed:?}"
    );
    assert!(feed
        .iter()
        .all(|a| a.agent.as_deref() == Some("Release Manager")));
    running.stop().await;
}

#[tokio::test]
async fn rate_limits_are_respected() {
    let h = harness(Config::with_admin_token(TOKEN)).await;
    h.add("prod", TOKEN, json!({})).await;
    h.fake.create_approval(&h.ws, "deploy", "");
    h.fake.rate_limit_next(1, 7);
    let reports = h.inbox.sync_once().await.unwrap();
    let err = reports[0].result.as_ref().unwrap_err().to_string();
    assert!(err.contains("retry in 7s"), "Retry-After is read: {err}");

    h.inbox.sync_once().await.unwrap();
    h.fake.rate_limit_next(1, 30);
    let before = chrono::Utc::now();
    let d = h.decide(h.pending()[0].id, Outcome::Approve).await;
    assert_eq!(
        d.delivery,
        Delivery::Queued,
        "a rate-limited decision waits"
    );
    let wait = d.next_attempt_at.unwrap() - before;
    assert!(
        wait.num_seconds() >= 29,
        "and waits as long as the server asked: {wait}"
    );
}

#[tokio::test]
async fn rest_sends_no_origin_and_the_socket_sends_the_configured_one() {
    let config = Config {
        cors_origins: vec!["http://canvas.local".into()],
        ..Config::with_admin_token(TOKEN)
    };
    let h = harness(config).await;
    let without = h.add("no-origin", TOKEN, json!({})).await;
    let with = h
        .add(
            "with-origin",
            TOKEN,
            json!({"ws_origin": "http://canvas.local"}),
        )
        .await;
    h.fake.create_approval(&h.ws, "deploy", "");
    let running = h.run().await;
    until("the configured account connects", || {
        h.state(with) == Some(ConnectionState::Connected)
    })
    .await;
    until("the other falls back to polling", || {
        h.state(without) == Some(ConnectionState::Polling)
    })
    .await;
    let health = h.inbox.store().health(without).unwrap().unwrap();
    let why = health.last_error.unwrap();
    assert!(
        why.contains("polling instead") && why.contains("CORS_ORIGINS"),
        "the user learns that live updates are off and how to fix it: {why}"
    );
    assert_eq!(
        h.pending().len(),
        2,
        "both accounts list the request: REST sends no Origin, so a refused socket blanks nothing"
    );
    running.stop().await;
}

#[tokio::test]
async fn a_failing_account_never_stops_the_others() {
    let h = harness(Config::with_admin_token(TOKEN)).await;
    let good = h.add("good", TOKEN, json!({})).await;
    let bad = h.add("bad", "wrong", json!({})).await;
    let running = h.run().await;
    until("good connected", || {
        h.state(good) == Some(ConnectionState::Connected)
    })
    .await;
    until("bad refused", || {
        h.state(bad) == Some(ConnectionState::AuthFailed)
    })
    .await;
    h.fake.create_approval(&h.ws, "deploy", "");
    until("the good account still gets requests live", || {
        h.pending().iter().any(|r| r.account == "good")
    })
    .await;
    assert!(h.pending().iter().all(|r| r.account == "good"));
    running.stop().await;
}
