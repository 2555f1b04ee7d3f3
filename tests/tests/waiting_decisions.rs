//! A decision made while its platform is down lands within seconds of the
//! platform's return, exactly once, even when the account's reconnect
//! backoff has grown long: while a decision waits, the account checks the
//! platform every 5 s (the default). Tried with every fake that can be
//! stopped and started again on its port with its state kept.

use countersign_fakes::{molecule, surfsense};
use countersign_inbox::{AccountInput, DecisionInput, Inbox, Running};
use countersign_model::{
    ConnectionState, Delivery, Outcome, Platform, Secret, SecretStoreKind, SystemClock,
};
use countersign_sync::{Backoff, Options};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The shipped options, but a backoff so long that, without the check
/// while a decision waits, the next try would come 15 to 30 s later.
fn slow_backoff() -> Options {
    Options {
        backoff: Backoff {
            base: Duration::from_secs(30),
            max: Duration::from_secs(60),
        },
        ..Options::default()
    }
}

/// The longest a waiting decision may take after the platform is back:
/// the 5 s check, plus a reconnect and the delivery itself.
const LANDS_WITHIN: Duration = Duration::from_millis(7500);

async fn open(
    platform: Platform,
    url: String,
    secret: &str,
    settings: Value,
) -> (tempfile::TempDir, Inbox, i64) {
    let dir = tempfile::tempdir().unwrap();
    let inbox = Inbox::open_with(dir.path(), Arc::new(SystemClock), slow_backoff()).unwrap();
    let id = inbox
        .add_account(AccountInput {
            name: "acct".into(),
            platform,
            base_url: url,
            reviewer: Some("dana".into()),
            secret: Some(Secret::new(secret)),
            secret_store: SecretStoreKind::File,
            settings,
        })
        .await
        .unwrap()
        .id;
    (dir, inbox, id)
}

async fn until(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn state(inbox: &Inbox, account: i64) -> Option<ConnectionState> {
    inbox.store().health(account).unwrap().map(|h| h.state)
}

/// Decides `request` while the platform is down, brings it back, and
/// returns how long the decision took to be confirmed after that.
async fn decide_while_down<F: std::future::Future<Output = ()>>(
    inbox: &Inbox,
    account: i64,
    request: i64,
    outcome: Outcome,
    stop: impl std::future::Future<Output = ()>,
    restart: impl FnOnce() -> F,
) -> Duration {
    stop.await;
    until(
        "the account noticed the outage",
        Duration::from_secs(20),
        || state(inbox, account) == Some(ConnectionState::BackingOff),
    )
    .await;
    let d = inbox
        .decide(DecisionInput {
            request_id: request,
            outcome,
            comment: None,
            edited_arguments: None,
            response: None,
        })
        .await
        .unwrap();
    assert_eq!(
        d.delivery,
        Delivery::Queued,
        "the platform is down, so the decision waits"
    );
    // Long enough for the backoff to be well under way.
    tokio::time::sleep(Duration::from_secs(6)).await;
    restart().await;
    let back = Instant::now();
    until(
        "the decision was delivered",
        Duration::from_secs(40),
        || inbox.store().decision(d.id).unwrap().delivery == Delivery::Confirmed,
    )
    .await;
    back.elapsed()
}

#[tokio::test]
async fn a_molecule_decision_queued_during_an_outage_lands_within_seconds_once() {
    let fake = molecule::FakeMolecule::start(molecule::Config::with_admin_token("t"))
        .await
        .unwrap();
    let ws = fake.add_workspace("Release Manager", None);
    fake.create_approval(&ws, "push tag v2.4.0", "CI green");
    let (_dir, inbox, account) = open(Platform::Molecule, fake.url(), "t", json!({})).await;
    let running: Running = inbox.run().await.unwrap();
    until("a request is pending", Duration::from_secs(10), || {
        inbox.pending(&Default::default()).unwrap().len() == 1
    })
    .await;
    let request = inbox.pending(&Default::default()).unwrap()[0].id;
    let took = decide_while_down(
        &inbox,
        account,
        request,
        Outcome::Approve,
        fake.stop(),
        || async { fake.restart().await.unwrap() },
    )
    .await;
    assert!(
        took <= LANDS_WITHIN,
        "the approval reached Molecule {took:?} after it came back; the backoff alone would \
         have waited 15 to 30 s"
    );
    assert_eq!(
        fake.received_decisions().len(),
        1,
        "exactly one decide call, however often the account looked"
    );
    running.stop().await;
}

#[tokio::test]
async fn a_surfsense_decision_queued_during_an_outage_lands_within_seconds_once() {
    let fake = surfsense::FakeSurfSense::start(surfsense::Config::default())
        .await
        .unwrap();
    let (_dir, inbox, account) = open(
        Platform::Surfsense,
        fake.url(),
        &fake.seed.password,
        json!({"login": fake.seed.email, "poll_secs": 5}),
    )
    .await;
    let running: Running = inbox.run().await.unwrap();
    until("the asks are listed", Duration::from_secs(10), || {
        inbox.pending(&Default::default()).unwrap().len() == 6
    })
    .await;
    let automation = inbox
        .pending(&Default::default())
        .unwrap()
        .into_iter()
        .find(|r| r.action == "create_automation")
        .unwrap()
        .id;
    let took = decide_while_down(
        &inbox,
        account,
        automation,
        Outcome::Approve,
        fake.stop(),
        || async { fake.restart().await.unwrap() },
    )
    .await;
    assert!(
        took <= LANDS_WITHIN,
        "the approval reached SurfSense {took:?} after it came back; the backoff alone would \
         have waited 15 to 30 s"
    );
    let applied: Vec<_> = fake
        .applied()
        .into_iter()
        .filter(|a| a.action == "create_automation")
        .collect();
    assert_eq!(applied.len(), 1, "the thread was resumed exactly once");
    assert_eq!(
        fake.received_resumes().len(),
        1,
        "no second resume, and none before the server was back"
    );
    assert_eq!(fake.logins(), 1, "the session outlived the outage");
    running.stop().await;
}
