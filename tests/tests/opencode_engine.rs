//! An OpenCode account running in the sync engine: asks arrive from the
//! event stream, replies made in the terminal remove them, a dropped
//! stream loses nothing, and our own replies end as ours.

use countersign_fakes::opencode::{Config, FakeOpenCode};
use countersign_inbox::{AccountInput, DecisionInput, Inbox, RequestView};
use countersign_model::{Delivery, Outcome, Platform, SecretStoreKind, Status, SystemClock};
use countersign_sync::{Backoff, Options};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

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

async fn setup() -> (tempfile::TempDir, Inbox, FakeOpenCode) {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        backoff: Backoff {
            base: Duration::from_millis(50),
            max: Duration::from_millis(300),
        },
        auth_retry: Duration::from_secs(60),
        lease: Duration::from_secs(30),
        outbox_every: Duration::from_millis(200),
        uncertain_retry: Duration::from_millis(500),
        waiting_check: Duration::from_millis(200),
    };
    let inbox = Inbox::open_with(dir.path(), Arc::new(SystemClock), options).unwrap();
    let fake = FakeOpenCode::start(Config::default()).await.unwrap();
    inbox
        .add_account(AccountInput {
            name: "oc".into(),
            platform: Platform::Opencode,
            base_url: fake.url(),
            reviewer: Some("dana".into()),
            secret: None,
            secret_store: SecretStoreKind::File,
            settings: json!({}),
        })
        .await
        .unwrap();
    (dir, inbox, fake)
}

fn find(inbox: &Inbox, remote: &str) -> Option<RequestView> {
    inbox
        .pending(&Default::default())
        .unwrap()
        .into_iter()
        .chain(inbox.history(&Default::default()).unwrap())
        .find(|r| r.remote_id == remote)
}

#[tokio::test]
async fn asks_arrive_live_replies_elsewhere_leave_and_a_dropped_stream_loses_nothing() {
    let (_dir, inbox, fake) = setup().await;
    let running = inbox.run().await.unwrap();
    let project = "/home/me/site";
    // Wait for the subscription before asking.
    until("connected", || {
        inbox.accounts().unwrap()[0].health.starts_with("connected")
    })
    .await;

    let first = fake.ask_bash(project, "ses_1", "cargo publish").unwrap();
    let asked = tokio::time::Instant::now();
    until("the ask is in the inbox", || find(&inbox, &first).is_some()).await;
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "a pushed ask shows within a second"
    );

    fake.reply_elsewhere(project, &first, "once");
    until("the terminal's reply removes it", || {
        find(&inbox, &first).is_some_and(|r| r.status == Status::ResolvedElsewhere)
    })
    .await;

    // The next ask's event is lost and the stream drops: the reconnect's
    // re-list (in a directory learned from the stream) still finds it.
    fake.drop_events("permission.asked", true);
    let lost = fake.ask_bash(project, "ses_2", "git push --force").unwrap();
    fake.drop_streams();
    until("the lost ask is found after the reconnect", || {
        find(&inbox, &lost).is_some_and(|r| r.status == Status::Pending)
    })
    .await;
    fake.drop_events("permission.asked", false);

    let id = find(&inbox, &lost).unwrap().id;
    let d = inbox
        .decide(DecisionInput {
            request_id: id,
            outcome: Outcome::Deny,
            comment: Some("never force-push main".into()),
            edited_arguments: None,
            response: None,
        })
        .await
        .unwrap();
    assert_eq!(d.delivery, Delivery::Confirmed);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = find(&inbox, &lost).unwrap();
    assert_eq!(
        after.status,
        Status::Denied,
        "the replied event of our own reply does not turn it into 'resolved elsewhere'"
    );
    assert_eq!(
        inbox.store().decision(d.id).unwrap().delivery,
        Delivery::Confirmed
    );
    let reply = fake.replies().pop().unwrap();
    assert_eq!(reply.message.as_deref(), Some("never force-push main"));
    running.stop().await;
}
