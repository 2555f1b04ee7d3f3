//! The sync engine running a Clawith account against the fake: polling,
//! re-login while running, and a slow resolve that must not be sent twice.

use countersign_fakes::clawith::{Config, FakeClawith};
use countersign_inbox::{AccountInput, DecisionInput, Inbox};
use countersign_model::{
    ConnectionState, Delivery, Outcome, Platform, Secret, SecretStoreKind, SystemClock,
};
use countersign_sync::{Backoff, Options};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn setup(
    config: Config,
    settings: serde_json::Value,
) -> (tempfile::TempDir, Inbox, FakeClawith, i64) {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        backoff: Backoff {
            base: Duration::from_millis(50),
            max: Duration::from_millis(400),
        },
        auth_retry: Duration::from_secs(60),
        lease: Duration::from_secs(30),
        outbox_every: Duration::from_millis(200),
        uncertain_retry: Duration::from_millis(500),
        waiting_check: Duration::from_millis(200),
    };
    let inbox = Inbox::open_with(dir.path(), Arc::new(SystemClock), options).unwrap();
    let fake = FakeClawith::start(config).await.unwrap();
    let mut settings = settings;
    settings["login"] = json!("dana@example.org");
    let account = inbox
        .add_account(AccountInput {
            name: "claw".into(),
            platform: Platform::Clawith,
            base_url: fake.url(),
            reviewer: None,
            secret: Some(Secret::new("hunter22")),
            secret_store: SecretStoreKind::File,
            settings,
        })
        .await
        .unwrap();
    (dir, inbox, fake, account.id)
}

#[tokio::test]
async fn a_running_account_polls_and_logs_in_again_after_its_token_dies() {
    let (_dir, inbox, fake, acc) = setup(Config::default(), json!({"poll_secs": 1})).await;
    let running = inbox.run().await.unwrap();
    let state = || inbox.store().health(acc).unwrap().map(|h| h.state);
    until("polling", || state() == Some(ConnectionState::Polling)).await;
    until("the seeded approvals", || {
        inbox.pending(&Default::default()).unwrap().len() == 2
    })
    .await;

    fake.expire_tokens();
    let new = fake
        .autonomy(
            &fake.seed.archivist_id,
            "modify_soul",
            "L3",
            json!({"tool": "edit_soul"}),
        )
        .unwrap();
    until("the new request after a re-login", || {
        inbox
            .pending(&Default::default())
            .unwrap()
            .iter()
            .any(|r| r.remote_id == new)
    })
    .await;
    assert_eq!(
        fake.logins(),
        2,
        "one login at start, one after the token died"
    );
    assert_eq!(
        state(),
        Some(ConnectionState::Polling),
        "the account never left its normal state"
    );

    fake.resolve_as(&new, &fake.seed.eli_id, true);
    until("resolved elsewhere", || {
        inbox
            .pending(&Default::default())
            .unwrap()
            .iter()
            .all(|r| r.remote_id != new)
    })
    .await;
    running.stop().await;
}

#[tokio::test]
async fn a_slow_approval_is_sent_once_and_confirmed_from_the_pending_list() {
    let config = Config {
        resolve_delay: Duration::from_secs(3),
        ..Config::default()
    };
    let (_dir, inbox, fake, _acc) =
        setup(config, json!({"poll_secs": 1, "resolve_timeout_secs": 1})).await;
    inbox.sync_once().await.unwrap();
    let legacy = inbox
        .pending(&Default::default())
        .unwrap()
        .into_iter()
        .find(|r| r.remote_id == fake.seed.approvals[0])
        .unwrap();
    let d = inbox
        .decide(DecisionInput {
            request_id: legacy.id,
            outcome: Outcome::Approve,
            comment: None,
            edited_arguments: None,
            response: None,
        })
        .await
        .unwrap();
    assert_eq!(
        d.delivery,
        Delivery::Queued,
        "no answer in time: not confirmed, not failed"
    );
    assert!(
        d.error.unwrap().contains("instead of sending again"),
        "the user is told why it waits"
    );

    let running = inbox.run().await.unwrap();
    until("the approval is confirmed", || {
        inbox.store().decision(d.id).unwrap().delivery == Delivery::Confirmed
    })
    .await;
    running.stop().await;
    assert_eq!(
        fake.received_resolves().len(),
        1,
        "approving runs a tool: it must never be sent twice"
    );
    assert_eq!(
        fake.approval(&fake.seed.approvals[0]).unwrap().status,
        "approved"
    );
}

#[tokio::test]
async fn a_decision_queued_while_clawith_refuses_connections_lands_within_one_backoff_step_of_its_return(
) {
    let (_dir, inbox, fake, acc) = setup(Config::default(), json!({"poll_secs": 1})).await;
    inbox.sync_once().await.unwrap();
    let legacy = inbox
        .pending(&Default::default())
        .unwrap()
        .into_iter()
        .find(|r| r.remote_id == fake.seed.approvals[0])
        .unwrap();
    fake.stop().await;
    let d = inbox
        .decide(DecisionInput {
            request_id: legacy.id,
            outcome: Outcome::Deny,
            comment: None,
            edited_arguments: None,
            response: None,
        })
        .await
        .unwrap();
    assert_eq!(d.delivery, Delivery::Queued, "Clawith is down: queued");
    assert_eq!(
        d.unsure_since, None,
        "a refused connection is 'not sent': nothing can be running on Clawith"
    );
    let running = inbox.run().await.unwrap();
    let state = || inbox.store().health(acc).unwrap().map(|h| h.state);
    until("backing off", || {
        state() == Some(ConnectionState::BackingOff)
    })
    .await;
    // Let the engine fail a few more times while Clawith is away.
    tokio::time::sleep(Duration::from_millis(800)).await;
    fake.restart().await.unwrap();
    let back = tokio::time::Instant::now();
    until("delivered", || {
        inbox.store().decision(d.id).unwrap().delivery == Delivery::Confirmed
    })
    .await;
    let took = back.elapsed();
    // One step: the longest backoff (400 ms) or the waiting check (200 ms),
    // plus the calls themselves; the old rule waited 600 s.
    assert!(
        took < Duration::from_millis(1500),
        "delivered {took:?} after Clawith came back, within one backoff step"
    );
    let sent = fake.received_resolves();
    assert_eq!(
        sent.len(),
        1,
        "the fake's log shows exactly one resolve: {sent:?}"
    );
    assert_eq!(sent[0].status, 200);
    assert_eq!(
        fake.approval(&fake.seed.approvals[0]).unwrap().status,
        "rejected"
    );
    running.stop().await;
}
