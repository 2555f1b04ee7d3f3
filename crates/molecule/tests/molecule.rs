//! The Molecule connector against the fake server, and its parsers against
//! random input. Modules mirror `src/`.

#[path = "molecule/fuzz.rs"]
mod fuzz;

mod identity {
    use countersign_model::{Platform, Request};
    use countersign_molecule::wire::{changed, parse_history, parse_pending};

    fn seen() -> Request {
        let (pending, _) = parse_pending(
            br#"[{"id":"0D9E8F7A-6B5C-4D3E-8F21-A0B1C2D3E4F5","workspace_id":"7A6B5C4D-3E2F-4A1B-9C8D-E7F6A5B4C3D2",
                  "workspace_name":"W","action":"push tag v2.4.0","reason":"CI green","status":"pending",
                  "created_at":"2026-04-27T14:02:11.40815Z"}]"#,
            chrono::Duration::minutes(10),
        )
        .unwrap();
        Request::observed_as_pending(&pending[0], 1, "prod", Platform::Molecule)
    }

    #[test]
    fn ids_are_kept_in_lower_case() {
        let r = seen();
        assert_eq!(
            (r.remote_id.as_str(), r.route["workspace_id"].as_str()),
            (
                "0d9e8f7a-6b5c-4d3e-8f21-a0b1c2d3e4f5",
                Some("7a6b5c4d-3e2f-4a1b-9c8d-e7f6a5b4c3d2")
            ),
            "the server matches ids in any case, so one spelling is kept"
        );
    }

    #[test]
    fn a_row_with_another_action_or_reason_is_a_changed_ask() {
        let r = seen();
        let row = |action: &str, reason: &str| {
            let body = serde_json::json!([{"id": "0d9e8f7a-6b5c-4d3e-8f21-a0b1c2d3e4f5", "task_id": "",
                "action": action, "reason": reason, "status": "pending"}]);
            parse_history(body.to_string().as_bytes())
                .unwrap()
                .remove(0)
        };
        assert_eq!(
            changed(&r, &row("push tag v2.4.0", "CI green")),
            None,
            "the same ask, and the pending list's missing task id is no change"
        );
        assert_eq!(
            changed(&r, &row("push tag v9.9.9", "CI green")),
            Some("action")
        );
        assert_eq!(
            changed(&r, &row("push tag v2.4.0", "skip CI")),
            Some("reason"),
            "another reason is another ask, whatever the id"
        );
    }
}

mod connector {
    use countersign_connector::{Connector, Delivered, Update, UpdateStream};
    use countersign_fakes::molecule::{Config, FakeMolecule};
    use countersign_model::{Decision, Delivery, Outcome, Request, Secret, Status, SystemClock};
    use countersign_molecule::{Molecule, MoleculeConfig, Settings};
    use futures::StreamExt;
    use serde_json::json;
    use std::sync::Arc;
    use std::time::Duration;

    fn connector(url: &str) -> Molecule {
        with_settings(url, Settings::default())
    }

    fn with_settings(url: &str, settings: Settings) -> Molecule {
        Molecule::new(MoleculeConfig {
            base_url: url.into(),
            token: Some(Secret::new("tok")),
            reviewer: "dana".into(),
            settings,
            http: countersign_connector::http::client(),
            clock: Arc::new(SystemClock),
        })
    }

    fn stored(o: &countersign_model::ObservedRequest) -> Request {
        Request::observed_as_pending(o, 1, "prod", countersign_model::Platform::Molecule)
    }

    fn decision(outcome: Outcome) -> Decision {
        attempt(outcome, 1)
    }

    /// The `n`th attempt to deliver a decision.
    fn attempt(outcome: Outcome, attempts: u32) -> Decision {
        Decision {
            id: 1,
            request_id: 1,
            outcome,
            comment: None,
            edited_arguments: None,
            response: None,
            decided_by: "dana".into(),
            decided_at: chrono::Utc::now(),
            delivery: Delivery::Sent,
            error: None,
            attempts,
            next_attempt_at: None,
            confirmed_at: None,
            note: None,
            unsure_since: None,
        }
    }

    #[tokio::test]
    async fn a_retry_after_a_lost_answer_is_recognised_as_our_own_decision() {
        let fake = FakeMolecule::start(Config::with_admin_token("tok"))
            .await
            .unwrap();
        let ws = fake.add_workspace("W", None);
        fake.create_approval(&ws, "deploy", "");
        let c = connector(&fake.url());
        let snapshot = c.reconcile().await.unwrap();
        let request = stored(&snapshot.pending[0]);

        assert_eq!(
            c.deliver(&request, &decision(Outcome::Approve))
                .await
                .unwrap(),
            Delivered::Confirmed
        );
        // The first answer was lost; the outbox tries again.
        assert_eq!(
            c.deliver(&request, &attempt(Outcome::Approve, 2))
                .await
                .unwrap(),
            Delivered::Confirmed,
            "history shows this reviewer approved it, so it is ours, not someone else's"
        );
        assert_eq!(
            fake.received_decisions().len(),
            1,
            "the retry read the history first and sent nothing"
        );
    }

    /// A workspace with one pending approval, and a connector that has
    /// listed it.
    async fn one_pending() -> (FakeMolecule, String, String, Molecule, Request) {
        let fake = FakeMolecule::start(Config::with_admin_token("tok"))
            .await
            .unwrap();
        let ws = fake.add_workspace("W", None);
        let id = fake.create_task_approval(&ws, "deploy", "CI green", "task-7");
        let c = connector(&fake.url());
        let request = stored(&c.reconcile().await.unwrap().pending[0]);
        (fake, ws, id, c, request)
    }

    /// The next update `pick` accepts, within five seconds.
    async fn next<T>(stream: &mut UpdateStream, pick: impl Fn(Update) -> Option<T>) -> T {
        tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                let update = stream.next().await.expect("stream open").expect("no error");
                if let Some(found) = pick(update) {
                    return found;
                }
            }
        })
        .await
        .expect("the update arrives")
    }

    #[tokio::test]
    async fn an_id_echoed_in_upper_case_is_the_same_request() {
        let fake = FakeMolecule::start(Config::with_admin_token("tok"))
            .await
            .unwrap();
        let ws = fake.add_workspace("W", None);
        let c = connector(&fake.url());
        let mut stream = c.subscribe().await.unwrap().expect("Molecule pushes");
        while fake.socket_count() == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let http = reqwest::Client::new();
        // An agent that spells its workspace id in upper case asks.
        let created: serde_json::Value = http
            .post(format!(
                "{}/workspaces/{}/approvals",
                fake.url(),
                ws.to_uppercase()
            ))
            .bearer_auth("tok")
            .json(&json!({"action": "deploy", "reason": "CI green"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = created["approval_id"].as_str().unwrap().to_owned();
        let pushed = next(&mut stream, |u| match u {
            Update::Request(r) => Some(r),
            _ => None,
        })
        .await;
        assert_eq!(pushed.remote_id, id, "the remote id is the approval's id");
        let listed = c.reconcile().await.unwrap().pending.remove(0);
        assert_eq!(
            (&listed.remote_id, &listed.route),
            (&pushed.remote_id, &pushed.route),
            "the pushed ask and the listed one are one request, whatever case the event used"
        );
        // Another client decides it, spelling both ids in upper case.
        let r = http
            .post(format!(
                "{}/workspaces/{}/approvals/{}/decide",
                fake.url(),
                ws.to_uppercase(),
                id.to_uppercase()
            ))
            .bearer_auth("tok")
            .json(&json!({"decision": "denied", "decided_by": "mcp-client"}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
        let resolved = next(&mut stream, |u| match u {
            Update::Resolved(res) => Some(res),
            _ => None,
        })
        .await;
        assert_eq!(
            resolved.remote_id, listed.remote_id,
            "the upper-case echo resolves the lower-case request"
        );
        assert_eq!(resolved.decided_by.as_deref(), Some("mcp-client"));
    }

    #[tokio::test]
    async fn an_approval_decided_before_sending_gets_nothing_even_under_our_name() {
        let (fake, _, id, c, request) = one_pending().await;
        // Someone in the canvas, whose decided_by happens to be our name.
        assert!(fake.decide_as(&id, "approved", "dana"));
        let got = c
            .deliver(&request, &decision(Outcome::Approve))
            .await
            .unwrap();
        assert!(
            matches!(&got, Delivered::ResolvedElsewhere(r)
                if r.status == Status::ResolvedElsewhere && r.outcome.as_deref() == Some("approved")),
            "a first attempt sent nothing before, so the decision is not ours: {got:?}"
        );
        assert!(
            fake.received_decisions().is_empty(),
            "history showed it decided, so no decide was sent"
        );
    }

    #[tokio::test]
    async fn an_approval_expired_before_sending_gets_nothing() {
        let (fake, _, id, c, request) = one_pending().await;
        fake.backdate(&id, Duration::from_secs(601));
        c.reconcile().await.unwrap(); // the server expires it while listing
        let got = c
            .deliver(&request, &decision(Outcome::Approve))
            .await
            .unwrap();
        assert!(
            matches!(&got, Delivered::ResolvedElsewhere(r) if r.status == Status::Expired),
            "auto-expired is expired, not someone's decision: {got:?}"
        );
        assert!(fake.received_decisions().is_empty());
    }

    #[tokio::test]
    async fn a_purged_approval_ends_withdrawn_and_gets_nothing() {
        let (fake, ws, _, c, request) = one_pending().await;
        assert!(fake.purge_workspace(&ws));
        let got = c
            .deliver(&request, &decision(Outcome::Approve))
            .await
            .unwrap();
        assert!(
            matches!(&got, Delivered::ResolvedElsewhere(r) if r.status == Status::Cancelled),
            "a row gone from a short history was purged, not decided: {got:?}"
        );
        assert!(
            fake.received_decisions().is_empty(),
            "nothing is sent for an ask that no longer exists"
        );
        let gone = c.resolve_missing(&[request]).await.unwrap();
        assert_eq!(
            gone[0].status,
            Status::Cancelled,
            "the poll says withdrawn too"
        );
    }

    #[tokio::test]
    async fn the_ask_checked_before_sending_is_the_one_decided() {
        let (fake, ws, id, c, request) = one_pending().await;
        assert_eq!(request.remote_id, id);
        assert_eq!(
            c.deliver(&request, &decision(Outcome::Deny)).await.unwrap(),
            Delivered::Confirmed
        );
        let sent = fake.received_decisions();
        assert_eq!(
            (
                sent.len(),
                sent[0].workspace_id.as_str(),
                sent[0].approval_id.as_str()
            ),
            (1, ws.as_str(), id.as_str()),
            "one decide, to the approval's own workspace, in lower case"
        );
        assert_eq!(fake.approval(&id).unwrap().status, "denied");
    }

    #[tokio::test]
    async fn only_approve_and_deny_are_sent_and_bad_ids_never_leave() {
        let fake = FakeMolecule::start(Config::with_admin_token("tok"))
            .await
            .unwrap();
        let ws = fake.add_workspace("W", None);
        fake.create_approval(&ws, "deploy", "");
        let c = connector(&fake.url());
        let mut request = stored(&c.reconcile().await.unwrap().pending[0]);
        assert!(c
            .deliver(&request, &decision(Outcome::AlwaysAllow))
            .await
            .is_err());
        request.remote_id = "not-a-uuid".into();
        assert!(
            c.deliver(&request, &decision(Outcome::Approve))
                .await
                .is_err(),
            "a non-UUID id would be a 500 from Postgres; refuse it locally"
        );
        assert!(
            fake.received_decisions().is_empty(),
            "nothing reached the platform"
        );
    }

    #[tokio::test]
    async fn errors_explain_what_to_fix() {
        let fake = FakeMolecule::start(Config {
            saas_org_id: Some("org-1".into()),
            ..Config::with_admin_token("tok")
        })
        .await
        .unwrap();
        let err = connector(&fake.url())
            .reconcile()
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("org id"),
            "a bare 404 from a SaaS tenant means the org id is missing: {err}"
        );

        fake.fail_next(1, 503);
        let with_org = Settings {
            org_id: Some("org-1".into()),
            ..Settings::default()
        };
        let c = with_settings(&fake.url(), with_org);
        let err = c.reconcile().await.unwrap_err();
        assert!(err.is_transient(), "a 503 is worth retrying: {err}");
        assert!(c.reconcile().await.is_ok(), "and the next call succeeds");
    }
}
