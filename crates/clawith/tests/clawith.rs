//! The Clawith connector against the fake Clawith server (v1.11.3
//! behaviour), and its parsers against random input.

mod connector {
    use chrono::Utc;
    use countersign_clawith::{Clawith, ClawithConfig, Settings};
    use countersign_connector::{Connector, ConnectorError, Delivered};
    use countersign_fakes::clawith::{Config, FakeClawith};
    use countersign_model::{
        Clock, Decision, Delivery, ManualClock, ObservedRequest, Outcome, Platform, Request,
        Secret, SystemClock,
    };
    use serde_json::json;
    use std::sync::Arc;
    use std::time::Duration;

    fn connector_with(
        url: &str,
        login: &str,
        password: &str,
        settings: Settings,
        clock: Arc<dyn Clock>,
    ) -> Clawith {
        Clawith::new(ClawithConfig {
            base_url: url.into(),
            password: Some(Secret::new(password)),
            reviewer: login.into(),
            settings: Settings {
                login: login.into(),
                ..settings
            },
            http: countersign_connector::http::client(),
            clock,
        })
    }

    fn dana(url: &str) -> Clawith {
        connector_with(
            url,
            "dana@example.org",
            "hunter22",
            Settings::default(),
            Arc::new(SystemClock),
        )
    }

    fn stored(o: &ObservedRequest) -> Request {
        Request::observed_as_pending(o, 1, "c", Platform::Clawith)
    }

    fn decision(outcome: Outcome, attempts: u32, error: Option<&str>) -> Decision {
        Decision {
            id: 1,
            request_id: 1,
            outcome,
            comment: None,
            edited_arguments: None,
            response: None,
            decided_by: "dana@example.org".into(),
            decided_at: Utc::now(),
            delivery: Delivery::Sent,
            error: error.map(str::to_owned),
            attempts,
            next_attempt_at: None,
            confirmed_at: None,
            note: None,
            // An earlier attempt given here is one that got no answer.
            unsure_since: error.map(|_| Utc::now()),
        }
    }

    async fn request_for(c: &Clawith, remote_id: &str) -> Request {
        let snap = c.reconcile().await.unwrap();
        stored(
            snap.pending
                .iter()
                .find(|r| r.remote_id == remote_id)
                .expect("listed"),
        )
    }

    #[tokio::test]
    async fn logs_in_and_lists_pending_l3_approvals_with_readable_arguments() {
        let fake = FakeClawith::start(Config::default()).await.unwrap();
        let c = dana(&fake.url());
        let snap = c.reconcile().await.unwrap();
        assert_eq!(snap.pending.len(), 2, "both seeded approvals are pending");
        let legacy = snap
            .pending
            .iter()
            .find(|r| r.remote_id == fake.seed.approvals[0])
            .unwrap();
        assert_eq!(
            legacy.arguments["args"],
            json!({"path": "workspace/drafts/q3.md"}),
            "the legacy Python-repr args string is shown as a readable tree"
        );
        assert_eq!(legacy.agent.as_deref(), Some("Archivist"));
        assert_eq!(legacy.tier.as_deref(), Some("L3"));
        assert_eq!(legacy.title, "delete_file workspace/drafts/q3.md");
        let runtime = snap
            .pending
            .iter()
            .find(|r| r.remote_id == fake.seed.approvals[1])
            .unwrap();
        assert_eq!(
            runtime.arguments["args"],
            json!({"path": "workspace/old/notes.md"}),
            "dict args stay a dict"
        );
        assert!(
            runtime.arguments.get("runtime_scope").is_some(),
            "unknown keys are kept"
        );
        assert!(
            snap.activity
                .iter()
                .any(|a| a.event_type == "autonomy_l2" && a.agent.as_deref() == Some("Archivist")),
            "the seeded L2 notification is activity: {:?}",
            snap.activity
        );
        let new = fake
            .autonomy(
                &fake.seed.archivist_id,
                "send_external_message",
                "L3",
                json!({"tool": "send_email"}),
            )
            .unwrap();
        let again = c.reconcile().await.unwrap();
        assert!(
            again.pending.iter().any(|r| r.remote_id == new),
            "a new L3 request appears after one poll"
        );
        assert_eq!(fake.logins(), 1, "the token is reused between polls");
    }

    #[tokio::test]
    async fn a_user_in_several_companies_chooses_one() {
        let fake = FakeClawith::start(Config {
            multi_tenant: true,
            ..Config::default()
        })
        .await
        .unwrap();
        let unsure = dana(&fake.url());
        let err = unsure.reconcile().await.unwrap_err();
        assert!(
            matches!(&err, ConnectorError::Auth(m) if m.contains("Default (default)") && m.contains("Acme Corp (acme)")),
            "the choices are named: {err}"
        );
        let settings = Settings {
            tenant: Some("default".into()),
            ..Settings::default()
        };
        let chosen = connector_with(
            &fake.url(),
            "dana@example.org",
            "hunter22",
            settings,
            Arc::new(SystemClock),
        );
        assert_eq!(
            chosen.reconcile().await.unwrap().pending.len(),
            2,
            "the Default company's approvals"
        );
        let settings = Settings {
            tenant: Some("Acme Corp".into()),
            ..Settings::default()
        };
        let acme = connector_with(
            &fake.url(),
            "dana@example.org",
            "hunter22",
            settings,
            Arc::new(SystemClock),
        );
        assert!(
            acme.reconcile().await.unwrap().pending.is_empty(),
            "another company, other approvals"
        );
    }

    #[tokio::test]
    async fn approve_and_reject_send_exactly_those_words() {
        let fake = FakeClawith::start(Config::default()).await.unwrap();
        let c = dana(&fake.url());
        let [a, b] = fake.seed.approvals.clone();
        assert_eq!(
            c.deliver(
                &request_for(&c, &a).await,
                &decision(Outcome::Approve, 1, None)
            )
            .await
            .unwrap(),
            Delivered::Confirmed
        );
        assert_eq!(
            c.deliver(
                &request_for(&c, &b).await,
                &decision(Outcome::Deny, 1, None)
            )
            .await
            .unwrap(),
            Delivered::Confirmed
        );
        let bodies: Vec<_> = fake
            .received_resolves()
            .into_iter()
            .map(|r| r.body)
            .collect();
        assert_eq!(
            bodies,
            [json!({"action": "approve"}), json!({"action": "reject"})]
        );
        assert_eq!(fake.approval(&a).unwrap().status, "approved");
        assert_eq!(fake.approval(&b).unwrap().status, "rejected");
        assert!(c
            .deliver(
                &request_for(&c, &fake.l3_batch(1)[0]).await,
                &decision(Outcome::Edit, 1, None)
            )
            .await
            .is_err());
        assert_eq!(
            fake.received_resolves().len(),
            2,
            "nothing but approve/reject is ever sent"
        );
    }

    #[tokio::test]
    async fn remote_id_is_the_approvals_own_id_and_a_runtime_recheck_is_the_same_ask() {
        let fake = FakeClawith::start(Config::default()).await.unwrap();
        let c = dana(&fake.url());
        let agent = fake.seed.archivist_id.clone();
        let run = uuid::Uuid::new_v4().to_string();
        let runtime = |path: &str| {
            json!({"tool": "delete_file", "args": {"path": path}, "requested_by": fake.seed.dana_id,
                   "runtime_scope": {"run_id": run, "tool_call_id": "call_9", "workspace_scope": "agent"}})
        };
        let id = fake
            .autonomy(&agent, "delete_files", "L3", runtime("workspace/a.md"))
            .unwrap();
        let before = c.reconcile().await.unwrap().pending.len();
        let seen = request_for(&c, &id).await;
        assert_eq!(
            seen.remote_id, id,
            "the remote id is the approval's own id and nothing else"
        );
        // The Run checks the same tool call again (after a policy change,
        // with other arguments): Clawith finds the row and writes nothing.
        let again = fake.autonomy(&agent, "delete_files", "L2", runtime("workspace/b.md"));
        assert_eq!(again.as_deref(), Some(id.as_str()));
        let snap = c.reconcile().await.unwrap();
        assert_eq!(
            snap.pending.len(),
            before,
            "a re-check is the same ask, not a new request"
        );
        let same: Vec<_> = snap.pending.iter().filter(|r| r.remote_id == id).collect();
        assert_eq!(
            same[0].arguments["args"]["path"], "workspace/a.md",
            "and it still asks what the reviewer saw"
        );
        let legacy = json!({"tool": "delete_file", "args": "{'path': 'workspace/c.md'}"});
        let one = fake
            .autonomy(&agent, "delete_files", "L3", legacy.clone())
            .unwrap();
        let two = fake.autonomy(&agent, "delete_files", "L3", legacy).unwrap();
        let snap = c.reconcile().await.unwrap();
        assert!(
            [&one, &two]
                .iter()
                .all(|id| snap.pending.iter().any(|r| &r.remote_id == *id)),
            "a legacy ask raised again is a second request under its own id"
        );
        assert_eq!(
            c.deliver(&seen, &decision(Outcome::Deny, 1, None))
                .await
                .unwrap(),
            Delivered::Confirmed,
            "the ask checked before sending is the one decided"
        );
        assert_eq!(fake.approval(&id).unwrap().status, "rejected");
    }

    #[tokio::test]
    async fn an_approval_resolved_before_sending_gets_nothing_and_ends_with_who() {
        let fake = FakeClawith::start(Config::default()).await.unwrap();
        let c = dana(&fake.url());
        let a = fake.seed.approvals[0].clone();
        let request = request_for(&c, &a).await;
        fake.resolve_as(&a, &fake.seed.eli_id, false);
        let Delivered::ResolvedElsewhere(res) = c
            .deliver(&request, &decision(Outcome::Approve, 1, None))
            .await
            .unwrap()
        else {
            panic!("an approval no longer pending is not a failure to retry");
        };
        assert_eq!(res.outcome.as_deref(), Some("rejected"));
        assert_eq!(
            res.decided_by.as_deref(),
            Some("Eli Navarro"),
            "issue 19: the resolver is named as GET /api/org/users names them, not by id"
        );
        assert!(
            fake.received_resolves().is_empty(),
            "the pending list showed it decided, so no resolve was sent"
        );
        let gone = c.resolve_missing(&[request]).await.unwrap();
        assert_eq!(
            gone[0].outcome.as_deref(),
            Some("rejected"),
            "the poll learns the final status too"
        );
    }

    #[tokio::test]
    async fn an_approval_deleted_before_sending_gets_nothing() {
        let fake = FakeClawith::start(Config::default()).await.unwrap();
        let c = dana(&fake.url());
        let a = fake.seed.approvals[1].clone();
        let request = request_for(&c, &a).await;
        fake.delete_approval(&a);
        let got = c
            .deliver(&request, &decision(Outcome::Approve, 1, None))
            .await
            .unwrap();
        assert!(
            matches!(&got, Delivered::ResolvedElsewhere(r) if r.outcome.is_none()),
            "gone without an outcome: {got:?}"
        );
        assert!(
            fake.received_resolves().is_empty(),
            "nothing is sent for an approval no longer listed"
        );
    }

    #[tokio::test]
    async fn a_first_attempt_never_claims_an_outcome_it_did_not_send() {
        let fake = FakeClawith::start(Config::default()).await.unwrap();
        let c = dana(&fake.url());
        let a = fake.seed.approvals[0].clone();
        let request = request_for(&c, &a).await;
        // dana approves in Clawith's web UI before Countersign sends.
        fake.resolve_as(&a, &fake.seed.dana_id, true);
        let got = c
            .deliver(&request, &decision(Outcome::Approve, 1, None))
            .await
            .unwrap();
        assert!(
            matches!(&got, Delivered::ResolvedElsewhere(r) if r.outcome.as_deref() == Some("approved")),
            "nothing of ours was sent, so the approval is someone else's doing: {got:?}"
        );
    }

    #[tokio::test]
    async fn an_account_that_cannot_see_an_approval_sends_nothing_for_it() {
        let fake = FakeClawith::start(Config::default()).await.unwrap();
        let request = request_for(&dana(&fake.url()), &fake.seed.approvals[0]).await;
        let eli = connector_with(
            &fake.url(),
            "eli",
            "elipass1",
            Settings::default(),
            Arc::new(SystemClock),
        );
        assert!(
            eli.reconcile().await.unwrap().pending.is_empty(),
            "members only see their own agents' approvals"
        );
        let got = eli
            .deliver(&request, &decision(Outcome::Approve, 1, None))
            .await
            .unwrap();
        assert!(
            matches!(got, Delivered::ResolvedElsewhere(_)),
            "not in this account's pending list: not this account's to answer"
        );
        assert!(
            fake.received_resolves().is_empty(),
            "an ask the account cannot see cannot be confirmed, so nothing is sent"
        );
        assert_eq!(
            fake.approval(&fake.seed.approvals[0]).unwrap().status,
            "pending",
            "the approval stays for those who may answer it"
        );
    }

    #[tokio::test]
    async fn a_slow_resolve_that_times_out_is_not_sent_again() {
        let fake = FakeClawith::start(Config {
            resolve_delay: Duration::from_secs(3),
            ..Config::default()
        })
        .await
        .unwrap();
        let settings = Settings {
            resolve_timeout_secs: 1,
            ..Settings::default()
        };
        let c = connector_with(
            &fake.url(),
            "dana@example.org",
            "hunter22",
            settings,
            Arc::new(SystemClock),
        );
        let a = fake.seed.approvals[0].clone(); // legacy: approving runs the tool
        let request = request_for(&c, &a).await;
        let first = c
            .deliver(&request, &decision(Outcome::Approve, 1, None))
            .await
            .unwrap_err();
        assert!(
            matches!(first, ConnectorError::Uncertain(_)),
            "a timeout is uncertain, not failed: {first}"
        );
        let retry = c
            .deliver(
                &request,
                &decision(Outcome::Approve, 2, Some(&first.to_string())),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(retry, ConnectorError::Uncertain(_)),
            "still pending: wait, do not resend"
        );
        tokio::time::sleep(Duration::from_millis(3200)).await;
        let settled = c
            .deliver(&request, &decision(Outcome::Approve, 3, Some("timed out")))
            .await
            .unwrap();
        assert_eq!(
            settled,
            Delivered::Confirmed,
            "the next poll shows our approval went through"
        );
        assert_eq!(
            fake.received_resolves().len(),
            1,
            "the resolve was sent exactly once"
        );
        assert_eq!(fake.approval(&a).unwrap().status, "approved");
    }

    #[tokio::test]
    async fn an_expired_token_means_one_new_login_and_sync_goes_on() {
        let fake = FakeClawith::start(Config::default()).await.unwrap();
        let c = dana(&fake.url());
        c.reconcile().await.unwrap();
        fake.expire_tokens();
        assert_eq!(
            c.reconcile().await.unwrap().pending.len(),
            2,
            "the poll still works"
        );
        assert_eq!(fake.logins(), 2, "exactly one new login after the 401");
    }

    #[tokio::test]
    async fn logs_in_again_before_the_token_expires() {
        let fake = FakeClawith::start(Config {
            token_lifetime: Duration::from_secs(3600),
            ..Config::default()
        })
        .await
        .unwrap();
        let clock = Arc::new(ManualClock::new(Utc::now()));
        let c = connector_with(
            &fake.url(),
            "dana@example.org",
            "hunter22",
            Settings::default(),
            clock.clone(),
        );
        c.reconcile().await.unwrap();
        clock.advance(chrono::Duration::minutes(30));
        c.reconcile().await.unwrap();
        assert_eq!(fake.logins(), 1, "half an hour left: keep the token");
        clock.advance(chrono::Duration::minutes(27));
        c.reconcile().await.unwrap();
        assert_eq!(
            fake.logins(),
            2,
            "three minutes left: log in again before it lapses"
        );
    }

    #[tokio::test]
    async fn a_wrong_password_is_an_auth_failure_without_a_storm() {
        let fake = FakeClawith::start(Config::default()).await.unwrap();
        let c = connector_with(
            &fake.url(),
            "dana@example.org",
            "nope",
            Settings::default(),
            Arc::new(SystemClock),
        );
        let err = c.reconcile().await.unwrap_err();
        assert!(
            matches!(&err, ConnectorError::Auth(m) if m.contains("Invalid credentials")),
            "{err}"
        );
        assert_eq!(
            fake.logins(),
            1,
            "one refused login, no retries inside the call"
        );
    }

    #[tokio::test]
    async fn rows_sharing_a_created_at_are_all_kept() {
        let fake = FakeClawith::start(Config::default()).await.unwrap();
        let batch = fake.l3_batch(6);
        let snap = dana(&fake.url()).reconcile().await.unwrap();
        for id in &batch {
            assert!(
                snap.pending.iter().any(|r| &r.remote_id == id),
                "{id} lost among identical timestamps"
            );
        }
        assert_eq!(snap.pending.len(), 8);
    }

    #[tokio::test]
    async fn l2_activity_is_reported_and_marked_read_on_clawith() {
        let fake = FakeClawith::start(Config::default()).await.unwrap();
        let c = dana(&fake.url());
        fake.autonomy(
            &fake.seed.archivist_id,
            "send_feishu_message",
            "L2",
            json!({"tool": "send_feishu_message"}),
        );
        let snap = c.reconcile().await.unwrap();
        let item = snap
            .activity
            .iter()
            .find(|a| a.title == "[Archivist] executed: send_feishu_message")
            .expect("the L2 action is reported");
        let id = item.remote_id.strip_prefix("notification:").unwrap();
        assert_eq!(fake.notification_read(id), Some(false));
        c.mark_activity_read(&item.remote_id).await.unwrap();
        assert_eq!(
            fake.notification_read(id),
            Some(true),
            "read in Countersign is read on Clawith"
        );
    }

    #[tokio::test]
    async fn a_broken_server_is_a_transient_error() {
        let fake = FakeClawith::start(Config::default()).await.unwrap();
        fake.set_main_head(true);
        let err = dana(&fake.url()).reconcile().await.unwrap_err();
        assert!(err.is_transient(), "a 500 is retried with backoff: {err}");
    }

    #[tokio::test]
    async fn a_resolve_refused_at_connect_time_is_not_sent_and_goes_again_at_once() {
        let fake = FakeClawith::start(Config::default()).await.unwrap();
        let c = dana(&fake.url());
        let a = fake.seed.approvals[0].clone();
        let request = request_for(&c, &a).await;
        fake.stop().await;
        let first = c
            .deliver(&request, &decision(Outcome::Deny, 1, None))
            .await
            .unwrap_err();
        assert!(
            matches!(&first, ConnectorError::Unavailable(m) if m.starts_with("not sent")),
            "connection refused means Clawith never got it, so it is 'not sent', not uncertain: {first}"
        );
        fake.restart().await.unwrap();
        let retry = Decision {
            // The engine records no unsure time for a failure that never left.
            unsure_since: None,
            ..decision(Outcome::Deny, 2, Some(&first.to_string()))
        };
        assert_eq!(
            c.deliver(&request, &retry).await.unwrap(),
            Delivered::Confirmed,
            "no tool can be running for a request never received: no ten-minute wait"
        );
        assert_eq!(
            fake.received_resolves().len(),
            1,
            "the fake's log shows exactly one resolve"
        );
        assert_eq!(fake.approval(&a).unwrap().status, "rejected");
    }

    fn bound_to(
        url: &str,
        tenant: Option<&str>,
        tenant_id: Option<String>,
    ) -> (Clawith, Arc<std::sync::Mutex<Vec<String>>>) {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = seen.clone();
        let c = connector_with(
            url,
            "dana@example.org",
            "hunter22",
            Settings {
                tenant: tenant.map(str::to_owned),
                tenant_id,
                ..Settings::default()
            },
            Arc::new(SystemClock),
        )
        .on_company_bound(Arc::new(move |id: &str| {
            kept.lock().unwrap().push(id.to_owned())
        }));
        (c, seen)
    }

    #[tokio::test]
    async fn an_account_stays_in_its_company_after_that_company_is_deleted() {
        let fake = FakeClawith::start(Config::default()).await.unwrap();
        let (globex, slug) = fake.create_company("Globex");
        let record = fake.add_to_company(&fake.seed.dana_id, &globex, "org_admin");
        let agent = fake.add_agent("Ledger", &record.id, &globex);
        let ours = fake
            .autonomy(&agent, "delete_files", "L3", json!({"tool": "delete_file"}))
            .unwrap();
        let (c, seen) = bound_to(&fake.url(), Some("Globex"), None);
        let snap = c.reconcile().await.unwrap();
        assert_eq!(
            snap.pending
                .iter()
                .map(|r| r.remote_id.as_str())
                .collect::<Vec<_>>(),
            vec![ours.as_str()],
            "only Globex's approval, none of the Default company's"
        );
        assert_eq!(
            *seen.lock().unwrap(),
            vec![globex.clone()],
            "the name given at setup is resolved to the company id once and handed back to keep"
        );
        assert!(slug.starts_with("globex-"), "a slug is never just the name");
        fake.delete_company(&globex);
        fake.expire_tokens();
        let err = c.reconcile().await.unwrap_err();
        assert!(
            matches!(&err, ConnectorError::Auth(m)
                if m.contains("company Globex no longer exists or you are no longer a member")),
            "Clawith now logs dana into her other company; the account must refuse it: {err}"
        );
        let (later, seen) = bound_to(&fake.url(), Some("Globex"), Some(globex.clone()));
        let err = later.reconcile().await.unwrap_err();
        assert!(
            matches!(&err, ConnectorError::Auth(m) if m.contains("company Globex no longer exists")),
            "a new process with the kept id refuses as well: {err}"
        );
        assert!(seen.lock().unwrap().is_empty(), "nothing new is bound");
    }

    #[tokio::test]
    async fn a_company_deleted_before_the_first_login_is_not_swapped_for_another() {
        let fake = FakeClawith::start(Config::default()).await.unwrap();
        let (globex, _) = fake.create_company("Globex");
        fake.add_to_company(&fake.seed.dana_id, &globex, "org_admin");
        fake.delete_company(&globex);
        let (c, seen) = bound_to(&fake.url(), Some("Globex"), None);
        let err = c.reconcile().await.unwrap_err();
        assert!(
            matches!(&err, ConnectorError::Auth(m) if m.contains("company Globex no longer exists")),
            "the login lands in Default, which is not Globex by name: {err}"
        );
        assert!(
            seen.lock().unwrap().is_empty(),
            "the wrong company is never kept"
        );
        let (plain, seen) = bound_to(&fake.url(), None, None);
        assert_eq!(plain.reconcile().await.unwrap().pending.len(), 2);
        assert_eq!(
            *seen.lock().unwrap(),
            vec![fake.seed.tenant_id.clone()],
            "without a company named, the user's only company is the one kept"
        );
    }

    #[tokio::test]
    async fn resolver_names_come_from_the_company_user_list_read_rarely() {
        let fake = FakeClawith::start(Config::default()).await.unwrap();
        let c = dana(&fake.url());
        let [a, b] = fake.seed.approvals.clone();
        let first = request_for(&c, &a).await;
        let second = request_for(&c, &b).await;
        fake.resolve_as(&a, &fake.seed.eli_id, true);
        fake.resolve_as(&b, &fake.seed.eli_id, false);
        let gone = c.resolve_missing(&[first]).await.unwrap();
        assert_eq!(gone[0].decided_by.as_deref(), Some("Eli Navarro"));
        let gone = c.resolve_missing(&[second]).await.unwrap();
        assert_eq!(gone[0].decided_by.as_deref(), Some("Eli Navarro"));
        assert_eq!(
            fake.org_user_lists(),
            1,
            "the user list is cached, not read for every resolution"
        );
    }
}

mod wire {
    use countersign_clawith::wire::{rows, ApprovalRow};

    #[test]
    fn an_ask_with_other_details_under_the_same_id_is_a_changed_ask() {
        use countersign_clawith::wire::changed;
        let seen = serde_json::json!({"id": "a", "agent_id": "g", "action_type": "delete_files",
            "details": {"tool": "delete_file", "args": {"path": "workspace/a.md"}},
            "agent_name": "Archivist", "status": "pending"});
        let mut now = seen.clone();
        now["agent_name"] = "Renamed".into();
        assert_eq!(
            changed(&seen, &now),
            None,
            "a renamed agent asks the same thing"
        );
        now["details"]["args"]["path"] = "workspace/b.md".into();
        assert_eq!(
            changed(&seen, &now),
            Some("details"),
            "other arguments are another ask, whatever the id"
        );
        now = seen.clone();
        now["action_type"] = "send_external_message".into();
        assert_eq!(changed(&seen, &now), Some("action_type"));
    }

    #[test]
    fn both_datetime_forms_parse() {
        let (ok, bad) = rows::<ApprovalRow>(
            br#"[{"id":"a","agent_id":"g","action_type":"x","status":"pending","created_at":"2026-09-01T09:15:02.517204Z"},
                 {"id":"b","agent_id":"g","action_type":"x","status":"pending","created_at":"2026-09-01T09:15:02+00:00"},
                 {"id":"c","agent_id":"g","action_type":"x","status":"pending","created_at":"yesterday"}]"#,
            "approval",
        )
        .unwrap();
        assert_eq!(
            ok.len(),
            2,
            "`Z` and `+00:00`, with or without microseconds"
        );
        assert_eq!(bad.len(), 1, "a malformed row is reported, not fatal");
    }
}

#[path = "clawith/fuzz.rs"]
mod fuzz;
