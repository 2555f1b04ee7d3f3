//! The OpenCode connector against the fake server: the global event
//! stream, replies with their directory, replies made elsewhere, Basic
//! auth, a dropped stream, and the identity of an ask (a decision reaches
//! only the ask it was made on).

use chrono::Utc;
use countersign_connector::{Connector, ConnectorError, Delivered, Update, UpdateStream};
use countersign_fakes::opencode::{Config, FakeOpenCode};
use countersign_model::{
    AllowedDecision, Decision, Delivery, ObservedRequest, Outcome, Platform, Request, Secret,
    Status,
};
use countersign_opencode::{OpenCode, OpenCodeConfig, Settings};
use futures::StreamExt;
use std::time::Duration;

fn connector(fake: &FakeOpenCode, password: Option<&str>) -> OpenCode {
    OpenCode::new(OpenCodeConfig {
        base_url: fake.url(),
        password: password.map(Secret::new),
        settings: Settings::default(),
        reviewer: "dana".into(),
        http: countersign_connector::http::client(),
    })
}

fn decided(o: &ObservedRequest, outcome: Outcome, comment: Option<&str>) -> (Request, Decision) {
    let request = Request::observed_as_pending(o, 1, "oc", Platform::Opencode);
    let decision = Decision {
        id: 1,
        request_id: 1,
        outcome,
        comment: comment.map(str::to_owned),
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
    };
    (request, decision)
}

/// The next update that is not a resync, within `within`.
async fn next_update(stream: &mut UpdateStream, within: Duration) -> Update {
    tokio::time::timeout(within, async {
        loop {
            match stream.next().await {
                Some(Ok(Update::Resync)) => continue,
                Some(Ok(u)) => return u,
                other => panic!("stream ended: {other:?}"),
            }
        }
    })
    .await
    .expect("an update in time")
}

#[tokio::test]
async fn a_permission_asked_on_the_stream_arrives_within_a_second_with_its_details() {
    let fake = FakeOpenCode::start(Config::default()).await.unwrap();
    let c = connector(&fake, None);
    let mut stream = c.subscribe().await.unwrap().expect("OpenCode pushes");
    let id = fake
        .ask_bash("/home/me/site", "ses_a", "echo hello-from-agent")
        .unwrap();
    let Update::Request(r) = next_update(&mut stream, Duration::from_secs(1)).await else {
        panic!("a request")
    };
    assert_eq!(r.remote_id, id);
    assert_eq!(r.title, "bash: echo hello-from-agent");
    assert_eq!(
        r.route["directory"], "/home/me/site",
        "the reply must name the request's instance"
    );
    assert_eq!(
        r.allowed_decisions,
        vec![
            AllowedDecision::Approve,
            AllowedDecision::Deny,
            AllowedDecision::AlwaysAllow
        ]
    );
    let always = r
        .extra
        .facts
        .iter()
        .find(|f| f.name == "always allows")
        .unwrap();
    assert_eq!(always.value, serde_json::json!(["echo *"]));
    let snap = c.reconcile().await.unwrap();
    assert_eq!(
        snap.pending
            .iter()
            .map(|p| p.remote_id.as_str())
            .collect::<Vec<_>>(),
        vec![id.as_str()],
        "a directory seen on the stream is listed on every reconcile"
    );
}

#[tokio::test]
async fn once_always_and_reject_with_a_message_reach_opencode() {
    let fake = FakeOpenCode::start(Config::default()).await.unwrap();
    let c = connector(&fake, None);
    let dir = fake.cwd();
    fake.ask_bash(&dir, "ses_1", "ls -la").unwrap();
    fake.ask_bash(&dir, "ses_2", "echo one").unwrap();
    fake.ask_bash(&dir, "ses_3", "rm -rf build").unwrap();
    let snap = c.reconcile().await.unwrap();
    assert_eq!(
        snap.pending.len(),
        3,
        "the server's own instance is always listed"
    );
    let by = |cmd: &str| {
        snap.pending
            .iter()
            .find(|r| r.title.ends_with(cmd))
            .unwrap()
            .clone()
    };

    let (r, d) = decided(&by("ls -la"), Outcome::Approve, Some("fine"));
    assert_eq!(c.deliver(&r, &d).await, Ok(Delivered::Confirmed));
    let (r, d) = decided(&by("echo one"), Outcome::AlwaysAllow, None);
    assert_eq!(c.deliver(&r, &d).await, Ok(Delivered::Confirmed));
    let (r, d) = decided(
        &by("rm -rf build"),
        Outcome::Deny,
        Some("Use cargo clean instead."),
    );
    assert_eq!(c.deliver(&r, &d).await, Ok(Delivered::Confirmed));

    let replies: Vec<(String, Option<String>)> = fake
        .replies()
        .into_iter()
        .map(|r| (r.reply, r.message))
        .collect();
    assert_eq!(
        replies,
        vec![
            ("once".into(), None),
            ("always".into(), None),
            ("reject".into(), Some("Use cargo clean instead.".into())),
        ],
        "a comment goes along only with reject, where the agent reads it as feedback"
    );
    assert!(
        fake.ask_bash(&dir, "ses_9", "echo two").is_none(),
        "always allowed `echo *` for the whole instance"
    );
}

#[tokio::test]
async fn a_reply_made_elsewhere_removes_the_request() {
    let fake = FakeOpenCode::start(Config::default()).await.unwrap();
    let c = connector(&fake, None);
    let mut stream = c.subscribe().await.unwrap().unwrap();
    let dir = fake.cwd();
    let id = fake.ask_bash(&dir, "ses_t", "make deploy").unwrap();
    let _asked = next_update(&mut stream, Duration::from_secs(1)).await;
    assert!(fake.reply_elsewhere(&dir, &id, "once"));
    let Update::Resolved(res) = next_update(&mut stream, Duration::from_secs(1)).await else {
        panic!("a resolution")
    };
    assert_eq!(res.remote_id, id);
    assert_eq!(
        res.status,
        Status::ResolvedElsewhere,
        "the terminal answered, not us"
    );
    assert_eq!(res.outcome.as_deref(), Some("once"));
    // Replying now is a 404: resolved elsewhere, never retried.
    let o = c.reconcile().await.unwrap();
    assert!(o.pending.is_empty());
}

#[tokio::test]
async fn our_own_reply_comes_back_as_ours() {
    let fake = FakeOpenCode::start(Config::default()).await.unwrap();
    let c = connector(&fake, None);
    let mut stream = c.subscribe().await.unwrap().unwrap();
    fake.ask_bash(&fake.cwd(), "ses_o", "npm test").unwrap();
    let Update::Request(r) = next_update(&mut stream, Duration::from_secs(1)).await else {
        panic!()
    };
    let (req, d) = decided(&r, Outcome::Approve, None);
    c.deliver(&req, &d).await.unwrap();
    let Update::Resolved(res) = next_update(&mut stream, Duration::from_secs(1)).await else {
        panic!()
    };
    assert_eq!(
        res.decided_by.as_deref(),
        Some("dana"),
        "the replied event of our own reply is credited to us"
    );
    assert_eq!(res.status, Status::Approved);
}

#[tokio::test]
async fn a_cascaded_request_is_not_replied_to_and_ends_resolved_elsewhere() {
    let fake = FakeOpenCode::start(Config::default()).await.unwrap();
    let c = connector(&fake, None);
    let dir = fake.cwd();
    fake.ask_bash(&dir, "ses_s", "echo a").unwrap();
    fake.ask_bash(&dir, "ses_s", "echo b").unwrap();
    let snap = c.reconcile().await.unwrap();
    let (r, d) = decided(&snap.pending[0], Outcome::Deny, None);
    c.deliver(&r, &d).await.unwrap();
    let (r, d) = decided(&snap.pending[1], Outcome::Approve, None);
    assert!(
        matches!(c.deliver(&r, &d).await, Ok(Delivered::ResolvedElsewhere(_))),
        "reject cascades to the session's other requests: the second is gone, so it ended elsewhere"
    );
    assert_eq!(
        fake.reply_posts(),
        vec![snap.pending[0].remote_id.clone()],
        "only the reject is sent: a reply to a cascaded request would answer 404"
    );
}

#[tokio::test]
async fn basic_auth_is_sent_everywhere_and_a_wrong_password_is_an_auth_failure() {
    let fake = FakeOpenCode::start(Config {
        password: Some("s3cret".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    let good = connector(&fake, Some("s3cret"));
    let mut stream = good.subscribe().await.unwrap().unwrap();
    fake.ask_bash(&fake.cwd(), "ses_x", "whoami").unwrap();
    assert!(matches!(
        next_update(&mut stream, Duration::from_secs(1)).await,
        Update::Request(_)
    ));
    assert_eq!(good.reconcile().await.unwrap().pending.len(), 1);
    let bad = connector(&fake, Some("nope"));
    assert!(matches!(
        bad.reconcile().await,
        Err(ConnectorError::Auth(_))
    ));
    assert!(matches!(
        bad.subscribe().await,
        Err(ConnectorError::Auth(_))
    ));
}

#[tokio::test]
async fn a_dropped_stream_ends_and_a_new_one_starts_with_a_resync() {
    let fake = FakeOpenCode::start(Config::default()).await.unwrap();
    let c = connector(&fake, None);
    let mut stream = c.subscribe().await.unwrap().unwrap();
    assert!(
        matches!(stream.next().await, Some(Ok(Update::Resync))),
        "server.connected asks for a re-list"
    );
    fake.drop_streams();
    let end = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            match stream.next().await {
                None | Some(Err(_)) => return,
                Some(Ok(_)) => continue,
            }
        }
    })
    .await;
    assert!(end.is_ok(), "the engine sees the drop and reconnects");
    let mut again = c.subscribe().await.unwrap().unwrap();
    assert!(matches!(again.next().await, Some(Ok(Update::Resync))));
}

/// An `external_directory` ask of one tool call, as the `bash` tool makes
/// before asking for the command itself.
fn outside_ask(session: &str) -> serde_json::Value {
    serde_json::json!({"sessionID": session, "permission": "external_directory",
        "patterns": ["/etc/*"], "always": ["/etc/*"], "metadata": {"filepath": "/etc/hosts"},
        "tool": {"messageID": "msg_2010a2e94001FmJdN0A2AgoMLy", "callID": "call_9e5be37f971b"}})
}

fn bash_ask(command: &str) -> serde_json::Value {
    serde_json::json!({"permission": "bash", "patterns": [command],
        "always": [format!("{} *", command.split(' ').next().unwrap())],
        "metadata": {"command": command}})
}

#[tokio::test]
async fn a_decision_is_not_sent_when_the_tool_call_moved_on_to_a_new_ask() {
    let fake = FakeOpenCode::start(Config::default()).await.unwrap();
    let c = connector(&fake, None);
    let dir = fake.cwd();
    let first = fake.ask(&dir, outside_ask("ses_r")).unwrap();
    let snap = c.reconcile().await.unwrap();
    let (r, d) = decided(&snap.pending[0], Outcome::Approve, None);
    // Before the decision goes out, the terminal allows the first ask and
    // the same tool call asks for the command.
    let second = fake
        .ask_again(&dir, &first, "once", bash_ask("cat /etc/shadow"))
        .expect("the tool call asks again");
    // Some 1.x releases answer 200 to a reply for an id no longer pending;
    // only a look at the list first tells that the ask is gone.
    fake.set_legacy_unknown_ok(true);

    assert_eq!(
        c.deliver(&r, &d).await,
        Ok(Delivered::ResolvedElsewhere(
            countersign_connector::resolved_elsewhere(&first)
        )),
        "the ask decided is no longer pending: it ended elsewhere"
    );
    assert!(
        fake.reply_posts().is_empty(),
        "nothing may be sent once the decided ask is gone, got {:?}",
        fake.reply_posts()
    );
    let still = fake.pending(&dir);
    assert_eq!(
        (still.len(), still[0]["id"].as_str(), &still[0]["patterns"]),
        (
            1,
            Some(second.as_str()),
            &serde_json::json!(["cat /etc/shadow"])
        ),
        "the new ask nobody decided is untouched"
    );

    let next = c.reconcile().await.unwrap();
    assert_eq!(
        next.pending
            .iter()
            .map(|p| p.remote_id.as_str())
            .collect::<Vec<_>>(),
        vec![second.as_str()],
        "the new ask is a new request, under its own id"
    );
    assert_ne!(second, first, "OpenCode gives every ask a fresh id");
    let call = |o: &ObservedRequest| {
        o.extra
            .facts
            .iter()
            .find(|f| f.name == "tool call")
            .map(|f| f.value.clone())
    };
    assert_eq!(
        call(&next.pending[0]),
        call(&snap.pending[0]),
        "both asks belong to one tool call: the call id is not the identity"
    );
}

#[tokio::test]
async fn a_decision_is_refused_and_not_sent_when_the_ask_changed_under_its_id() {
    let fake = FakeOpenCode::start(Config::default()).await.unwrap();
    let c = connector(&fake, None);
    let dir = fake.cwd();
    let id = fake.ask_bash(&dir, "ses_c", "ls build").unwrap();
    let snap = c.reconcile().await.unwrap();
    let (r, d) = decided(&snap.pending[0], Outcome::Approve, None);
    assert!(fake.reask_same_id(
        &dir,
        &id,
        serde_json::json!({"patterns": ["rm -rf build"], "metadata": {"command": "rm -rf build"}})
    ));

    let got = c.deliver(&r, &d).await;
    assert!(
        matches!(&got, Err(ConnectorError::Rejected(m)) if m.contains("changed since you decided")),
        "approving `ls build` must not approve `rm -rf build`; got {got:?}"
    );
    assert!(
        fake.reply_posts().is_empty(),
        "nothing may be sent for a changed ask, got {:?}",
        fake.reply_posts()
    );
    assert_eq!(
        fake.pending(&dir)[0]["patterns"],
        serde_json::json!(["rm -rf build"]),
        "the changed ask waits for a new decision"
    );
}

#[tokio::test]
async fn the_remote_id_is_the_permission_id_of_the_ask_whatever_the_instance() {
    let fake = FakeOpenCode::start(Config::default()).await.unwrap();
    let cwd = fake.cwd();
    // The server's own directory named in the settings too: its instance
    // is listed both with and without `?directory=`.
    let c = OpenCode::new(OpenCodeConfig {
        base_url: fake.url(),
        password: None,
        settings: Settings {
            directories: vec![cwd.clone()],
            ..Default::default()
        },
        reviewer: "dana".into(),
        http: countersign_connector::http::client(),
    });
    let mut stream = c.subscribe().await.unwrap().unwrap();
    let first = fake.ask(&cwd, outside_ask("ses_i")).unwrap();
    let Update::Request(pushed) = next_update(&mut stream, Duration::from_secs(1)).await else {
        panic!("a request")
    };
    assert_eq!(
        pushed.remote_id, first,
        "the pushed ask's remote id is its permission id"
    );
    assert!(
        first.starts_with("per_") && first.len() == 30,
        "a permission id is `per_` + 12 hex + 14 characters: {first}"
    );
    let second = fake
        .ask_again(&cwd, &first, "once", bash_ask("cat /etc/hosts"))
        .unwrap();
    let snap = c.reconcile().await.unwrap();
    assert_eq!(
        snap.pending
            .iter()
            .map(|p| p.remote_id.as_str())
            .collect::<Vec<_>>(),
        vec![second.as_str()],
        "one ask listed by two names of one instance is one request, under its permission id"
    );
    assert_eq!(
        snap.pending[0].raw["id"], second,
        "the remote id is the listed request's own `id`"
    );
}

#[path = "opencode/fuzz.rs"]
mod fuzz;
