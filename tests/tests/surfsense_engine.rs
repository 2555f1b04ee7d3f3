//! A SurfSense account through the inbox and the sync engine: decisions on
//! a thread's asks are held until all are made and then sent in one
//! resume; failures put the asks back with the reason; a busy thread is
//! retried.

use countersign_fakes::surfsense::{Config, FakeSurfSense, ResumeOutcome};
use countersign_inbox::{AccountInput, DecisionInput, Inbox, RequestView};
use countersign_model::{
    Delivery, Outcome, Platform, Secret, SecretStoreKind, Status, SystemClock,
};
use countersign_sync::{Backoff, Options};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

async fn setup() -> (tempfile::TempDir, Inbox, FakeSurfSense) {
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
    let fake = FakeSurfSense::start(Config::default()).await.unwrap();
    inbox
        .add_account(AccountInput {
            name: "surf".into(),
            platform: Platform::Surfsense,
            base_url: fake.url(),
            reviewer: Some("kim".into()),
            secret: Some(Secret::new(fake.seed.password.clone())),
            secret_store: SecretStoreKind::File,
            settings: json!({"login": fake.seed.email}),
        })
        .await
        .unwrap();
    for report in inbox.sync_once().await.unwrap() {
        report.result.expect("first sync");
    }
    (dir, inbox, fake)
}

fn by_remote(inbox: &Inbox, remote: &str) -> RequestView {
    inbox
        .pending(&Default::default())
        .unwrap()
        .into_iter()
        .chain(inbox.history(&Default::default()).unwrap())
        .find(|r| r.remote_id == remote || r.remote_id.starts_with(&format!("{remote}:")))
        .unwrap_or_else(|| panic!("{remote} is known"))
}

fn input(id: i64, outcome: Outcome) -> DecisionInput {
    DecisionInput {
        request_id: id,
        outcome,
        comment: None,
        edited_arguments: None,
        response: None,
    }
}

#[tokio::test]
async fn a_two_ask_thread_is_resumed_once_after_both_are_decided() {
    let (_dir, inbox, fake) = setup().await;
    let rm = by_remote(&inbox, "318:call_Qm81xv");
    let mail = by_remote(&inbox, "318:call_Hd20pe");
    assert_eq!(
        rm.group_note.as_deref(),
        Some("thread “Clean up drafts”: 0 of 2 decided; they are sent together once all are")
    );

    let first = inbox.decide(input(rm.id, Outcome::Deny)).await.unwrap();
    assert_eq!(first.delivery, Delivery::Queued);
    assert_eq!(
        first.error.as_deref(),
        Some(
            "held: thread “Clean up drafts” takes its decisions only together; waiting for 1 more"
        ),
        "the user sees why nothing was sent yet"
    );
    assert!(
        fake.received_resumes().is_empty(),
        "a partial answer is never sent"
    );
    // A sync pass in between must not send the half-decided thread either.
    inbox.sync_once().await.unwrap();
    assert!(
        fake.received_resumes().is_empty(),
        "the outbox holds the decision back"
    );
    assert_eq!(
        by_remote(&inbox, "318:call_Hd20pe").group_note.as_deref(),
        Some("thread “Clean up drafts”: 1 of 2 decided; they are sent together once all are")
    );

    let mut edit = input(mail.id, Outcome::Edit);
    edit.edited_arguments = Some(json!({"subject": "Q3 plan (final)"}));
    let second = inbox.decide(edit).await.unwrap();
    assert_eq!(second.delivery, Delivery::Confirmed, "{:?}", second.error);
    let resumes = fake.received_resumes();
    assert_eq!(resumes.len(), 1, "one call carries both decisions");
    assert_eq!(resumes[0].outcome, ResumeOutcome::Applied);
    assert_eq!(
        resumes[0].body["decisions"].as_array().map(Vec::len),
        Some(2)
    );
    assert_eq!(
        inbox.store().decision(first.id).unwrap().delivery,
        Delivery::Confirmed,
        "the held decision went with the second one"
    );
    assert_eq!(by_remote(&inbox, "318:call_Qm81xv").status, Status::Denied);
    assert!(fake.pending(318).is_empty());
    let mail_after = fake
        .applied()
        .into_iter()
        .find(|a| a.action == "send_gmail_email")
        .unwrap();
    assert_eq!(mail_after.args["subject"], "Q3 plan (final)");
}

#[tokio::test]
async fn a_whole_thread_can_be_approved_at_once() {
    let (_dir, inbox, fake) = setup().await;
    let rm = by_remote(&inbox, "318:call_Qm81xv");
    let decisions = inbox
        .decide_group(rm.id, Outcome::Approve, None)
        .await
        .unwrap();
    assert_eq!(decisions.len(), 2);
    let last = inbox.store().decision(decisions[1].id).unwrap();
    assert_eq!(last.delivery, Delivery::Confirmed);
    assert_eq!(fake.received_resumes().len(), 1);
    assert!(fake.applied().iter().all(|a| a.effect == "ran"));
}

#[tokio::test]
async fn an_error_frame_puts_the_asks_back_with_its_message() {
    let (_dir, inbox, fake) = setup().await;
    let auto = by_remote(&inbox, "413:call_Au77qz");
    fake.fail_next_resume("PREMIUM_QUOTA_EXHAUSTED", "Your premium quota is used up.");
    let d = inbox
        .decide(input(auto.id, Outcome::Approve))
        .await
        .unwrap();
    assert_eq!(d.delivery, Delivery::Failed);
    let after = by_remote(&inbox, "413:call_Au77qz");
    assert_eq!(
        after.status,
        Status::Pending,
        "the pause stayed, so the ask is back in the inbox"
    );
    assert!(
        after
            .delivery_error
            .as_deref()
            .is_some_and(|e| e.contains("Your premium quota is used up.")),
        "the error is shown with the request: {:?}",
        after.delivery_error
    );
    let again = inbox
        .decide(input(auto.id, Outcome::Approve))
        .await
        .unwrap();
    assert_eq!(
        again.delivery,
        Delivery::Confirmed,
        "it can be decided again"
    );
}

#[tokio::test]
async fn a_busy_thread_is_retried_until_it_takes_the_decision() {
    let (_dir, inbox, fake) = setup().await;
    let auto = by_remote(&inbox, "413:call_Au77qz");
    fake.busy_for(413, 1);
    let d = inbox
        .decide(input(auto.id, Outcome::Approve))
        .await
        .unwrap();
    assert_eq!(
        d.delivery,
        Delivery::Queued,
        "409 leaves the decision queued"
    );
    assert!(
        d.error
            .as_deref()
            .is_some_and(|e| e.contains("rate limited")),
        "{:?}",
        d.error
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    inbox.sync_once().await.unwrap();
    assert_eq!(
        inbox.store().decision(d.id).unwrap().delivery,
        Delivery::Confirmed
    );
    let outcomes: Vec<_> = fake
        .received_resumes()
        .into_iter()
        .map(|r| r.outcome)
        .collect();
    assert_eq!(
        outcomes,
        vec![ResumeOutcome::Refused(409), ResumeOutcome::Applied]
    );
}

#[tokio::test]
async fn the_account_line_says_how_many_threads_are_watched() {
    let (_dir, inbox, _fake) = setup().await;
    let account = &inbox.accounts().unwrap()[0];
    assert!(
        account
            .health
            .contains("watching 6 threads in 2 workspaces, 5 paused"),
        "{}",
        account.health
    );
    assert_eq!(account.pending, 6);
}

#[tokio::test]
async fn a_decision_on_an_ask_replaced_before_sending_reaches_nothing_and_the_new_ask_shows() {
    let (_dir, inbox, fake) = setup().await;
    let thread = fake.add_thread(fake.seed.research, "Tidy documents");
    fake.interrupt(
        thread,
        countersign_fakes::surfsense::fixtures::kb_rm("call_Task01", "/documents/cs-race-A.md"),
    );
    inbox.sync_once().await.unwrap();
    let first = by_remote(&inbox, &format!("{thread}:call_Task01"));
    assert_eq!(first.arguments, json!({"path": "/documents/cs-race-A.md"}));
    let mut events = inbox.engine().events();
    // The ask is answered in the web app and the subagent asks again, in
    // the same task, before the reviewer's approval goes out.
    fake.ask_again(
        thread,
        "call_Task01",
        "reject",
        countersign_fakes::surfsense::fixtures::kb_rm("call_Task01", "/documents/cs-approve.md"),
    );
    let resumes = fake.received_resumes().len();
    let d = inbox
        .decide(input(first.id, Outcome::Approve))
        .await
        .unwrap();
    assert_eq!(
        d.delivery,
        Delivery::Failed,
        "the approval was for an ask that no longer exists"
    );
    assert_eq!(
        fake.received_resumes().len(),
        resumes,
        "nothing was sent to SurfSense"
    );
    assert!(
        !fake
            .applied()
            .iter()
            .any(|a| a.args["path"] == "/documents/cs-approve.md"),
        "the rm nobody saw did not run"
    );
    let old = inbox.store().request(first.id).unwrap();
    assert_eq!(old.status, Status::ResolvedElsewhere);
    let pending = inbox.pending(&Default::default()).unwrap();
    let second = pending
        .iter()
        .find(|r| r.remote_id.starts_with(&format!("{thread}:call_Task01:")))
        .expect("the new ask is in the inbox right away, without waiting for the next poll");
    assert_ne!(second.id, first.id, "it is a request of its own");
    assert_eq!(second.status, Status::Pending);
    assert_eq!(
        second.arguments,
        json!({"path": "/documents/cs-approve.md"})
    );
    let mut announced = false;
    while let Ok(e) = events.try_recv() {
        if let countersign_inbox::SyncEvent::RequestAdded(r) = e {
            announced |= r.id == second.id;
        }
    }
    assert!(
        announced,
        "the new ask is announced (and so notified) like any new request"
    );
}

#[tokio::test]
async fn a_deny_surfsense_ignored_is_recorded_with_what_happened() {
    let (_dir, inbox, _fake) = setup().await;
    let doom = by_remote(&inbox, "412");
    let d = inbox.decide(input(doom.id, Outcome::Deny)).await.unwrap();
    assert_eq!(d.delivery, Delivery::Confirmed);
    assert!(
        d.note
            .as_deref()
            .is_some_and(|n| n.contains("SurfSense continued the run despite the deny")),
        "the reviewer must learn the agent went on: {:?}",
        d.note
    );
    let shown = inbox.detail(doom.id).unwrap();
    assert!(
        shown.decisions.iter().any(|x| x.note == d.note),
        "the note stays with the decision in its history"
    );
}
