//! The Molecule connector against the fake server, and its parsers against
//! random input. Modules mirror `src/`.

mod wire {
    use countersign_molecule::wire::{parse_frame, parse_history, parse_pending, parse_workspaces};
    use proptest::prelude::*;
    use serde_json::Value;

    /// Arbitrary JSON, biased towards the shapes Molecule uses.
    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            ".*".prop_map(Value::String),
            prop_oneof![
                Just("APPROVAL_REQUESTED"),
                Just("APPROVAL_APPROVED"),
                Just("APPROVAL_DENIED"),
                Just("APPROVAL_ESCALATED"),
                Just("AGENT_MESSAGE"),
                Just("2026-04-27T14:02:11Z"),
            ]
            .prop_map(|s| Value::String(s.into())),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                prop::collection::btree_map(
                    prop_oneof![
                        Just("event".to_owned()),
                        Just("workspace_id".to_owned()),
                        Just("timestamp".to_owned()),
                        Just("payload".to_owned()),
                        Just("approval_id".to_owned()),
                        Just("action".to_owned()),
                        Just("id".to_owned()),
                        Just("created_at".to_owned()),
                        ".*".prop_map(|s| s),
                    ],
                    inner,
                    0..8,
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn names(_: &str) -> Option<String> {
        None
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn no_input_makes_a_parser_panic(text in ".*", bytes in prop::collection::vec(any::<u8>(), 0..256), value in json()) {
            let expiry = chrono::Duration::minutes(10);
            let as_text = value.to_string();
            for t in [text.as_str(), as_text.as_str()] {
                let _ = parse_frame(t, &names, expiry);
                let _ = parse_pending(t.as_bytes(), expiry);
                let _ = parse_history(t.as_bytes());
                let _ = parse_workspaces(t.as_bytes());
            }
            let _ = parse_pending(&bytes, expiry);
            let wrapped = serde_json::json!([value]).to_string();
            let _ = parse_pending(wrapped.as_bytes(), expiry);
        }
    }
}

mod connector {
    use countersign_connector::{Connector, Delivered};
    use countersign_fakes::molecule::{Config, FakeMolecule};
    use countersign_model::{Decision, Delivery, Outcome, Request, Secret, SystemClock};
    use countersign_molecule::{Molecule, MoleculeConfig, Settings};
    use std::sync::Arc;

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
            attempts: 1,
            next_attempt_at: None,
            confirmed_at: None,
            note: None,
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
        // The first answer was lost; the outbox sends again and gets a 404.
        assert_eq!(
            c.deliver(&request, &decision(Outcome::Approve))
                .await
                .unwrap(),
            Delivered::Confirmed,
            "history shows this reviewer approved it, so it is ours, not someone else's"
        );
        assert_eq!(fake.received_decisions().len(), 2);
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
