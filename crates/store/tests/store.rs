//! Store behaviour a user relies on: nothing duplicated, nothing lost,
//! everything findable. Modules mirror `src/`.

use chrono::{DateTime, Duration, TimeZone, Utc};
use countersign_model::{
    AllowedDecision, DecisionDraft, Kind, NewAccount, ObservedActivity, ObservedRequest, Outcome,
    Platform, SecretStoreKind,
};
use countersign_store::Store;
use serde_json::json;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 4, 27, 14, 0, 0).unwrap()
}

fn account(store: &Store, name: &str) -> i64 {
    store
        .add_account(
            &NewAccount {
                name: name.into(),
                platform: Platform::Molecule,
                base_url: "http://127.0.0.1:1".into(),
                reviewer: "dana".into(),
                secret_store: SecretStoreKind::None,
                settings: json!({}),
            },
            "ref",
            t0(),
        )
        .unwrap()
        .id
}

fn observed(remote_id: &str, action: &str, arguments: serde_json::Value) -> ObservedRequest {
    ObservedRequest {
        remote_id: remote_id.into(),
        route: json!({"workspace_id": "ws"}),
        kind: Kind::Approval,
        title: action.into(),
        action: action.into(),
        arguments: arguments.clone(),
        description: Some("because".into()),
        agent: Some("Release Manager".into()),
        tier: None,
        created_at: t0(),
        deadline: None,
        allowed_decisions: vec![AllowedDecision::Approve, AllowedDecision::Deny],
        link: None,
        extra: Default::default(),
        raw: json!({"id": remote_id, "action": action, "arguments": arguments}),
    }
}

fn decide(store: &Store, request_id: i64, outcome: Outcome) -> countersign_model::Decision {
    store
        .record_decision(&DecisionDraft {
            request_id,
            outcome,
            comment: Some("looks fine".into()),
            edited_arguments: None,
            response: None,
            decided_by: "dana".into(),
            decided_at: t0(),
        })
        .unwrap()
}

mod migrations {
    #[test]
    fn migrations_are_valid_and_apply_from_empty() {
        countersign_store::migrations::migrations()
            .validate()
            .expect("every migration must apply cleanly to an empty database");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.sqlite3");
        let store = countersign_store::Store::open(&path).unwrap();
        drop(store);
        // Opening again must find the schema current and not re-run anything.
        let store = countersign_store::Store::open(&path).unwrap();
        assert!(
            store.accounts().unwrap().is_empty(),
            "a fresh database has no accounts"
        );
    }

    #[test]
    fn stored_surfsense_asks_get_their_interrupt_id_so_a_waiting_decision_finds_its_ask() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.sqlite3");
        let mut conn = rusqlite::Connection::open(&path).unwrap();
        countersign_store::migrations::migrations()
            .to_version(&mut conn, 4)
            .unwrap();
        conn.execute_batch(
            r#"INSERT INTO accounts (id, name, platform, base_url, reviewer, secret_store, secret_ref, created_at)
                 VALUES (1, 'surf', 'surfsense', 'http://127.0.0.1:1', 'kim', 'file', 'r', '2026-01-01T00:00:00Z');
               INSERT INTO requests (account_id, remote_id, route, kind, title, action, arguments, created_at,
                   allowed_decisions, status, raw, first_seen_at, updated_at)
                 VALUES (1, '318:call_A', '{"thread_id":318,"tool_call_id":"call_A","interrupt_id":"i1","key":"call_A"}',
                   'approval', 'rm', 'rm', '{}', '2026-01-01T00:00:00Z', '[]', 'pending', '{}',
                   '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z'),
                        (1, '412:i9', '{"thread_id":412,"tool_call_id":null,"interrupt_id":"i9","key":"i9"}',
                   'approval', 'loop', 'unknown_tool', '{}', '2026-01-01T00:00:00Z', '[]', 'pending', '{}',
                   '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z');"#,
        )
        .unwrap();
        drop(conn);
        let store = countersign_store::Store::open(&path).unwrap();
        assert!(
            store
                .request_by_remote(1, "318:call_A:i1")
                .unwrap()
                .is_some(),
            "a stamped ask is now known by tool_call_id and interrupt_id; without the rename \
             it would vanish at the next sync and a decision waiting on it with it"
        );
        assert!(
            store.request_by_remote(1, "412:i9").unwrap().is_some(),
            "a parent-side ask was already known by its interrupt_id"
        );
    }
}

mod requests {
    use super::*;
    use countersign_model::{Resolution, Status};
    use countersign_store::{HistoryQuery, PendingQuery};

    #[test]
    fn replaying_the_same_events_keeps_one_row_each() {
        let store = Store::open_in_memory().unwrap();
        let acc = account(&store, "prod");
        let events = [
            observed("a", "push tag", json!({})),
            observed("b", "drop table", json!({})),
        ];
        for _ in 0..2 {
            for e in &events {
                store.upsert_request(acc, e, t0()).unwrap();
            }
        }
        let pending = store.pending(&PendingQuery::default()).unwrap();
        assert_eq!(
            pending.len(),
            2,
            "a replay must update in place, not add rows"
        );
        let again = store.upsert_request(acc, &events[0], t0()).unwrap();
        assert!(
            !again.created && !again.changed,
            "an identical replay is neither new nor a change, so it raises no notification"
        );
    }

    #[test]
    fn a_list_is_the_same_rows_without_their_payloads() {
        let store = Store::open_in_memory().unwrap();
        let acc = account(&store, "prod");
        for (i, action) in ["push tag", "drop table", "rotate keys"].iter().enumerate() {
            let mut o = observed(&i.to_string(), action, json!({"blob": "x".repeat(10_000)}));
            o.deadline = (i == 1).then(|| t0() + Duration::minutes(5));
            store.upsert_request(acc, &o, t0()).unwrap();
        }
        let full = store.pending(&PendingQuery::default()).unwrap();
        let list = store.pending_list(&PendingQuery::default()).unwrap();
        assert_eq!(
            list.iter().map(|r| (r.id, &r.action)).collect::<Vec<_>>(),
            full.iter().map(|r| (r.id, &r.action)).collect::<Vec<_>>(),
            "the inbox list shows the same requests in the same order as the full query"
        );
        assert!(
            list.iter()
                .all(|r| r.arguments.is_null() && r.raw.is_null()),
            "a list row leaves the payloads out, so 10,000 rows stay small; the detail has them"
        );
        assert!(
            full.iter()
                .all(|r| r.arguments["blob"].as_str().map(str::len) == Some(10_000)),
            "the full query still has every argument"
        );
    }

    #[test]
    fn a_request_knows_when_it_ended() {
        let store = Store::open_in_memory().unwrap();
        let acc = account(&store, "prod");
        let r = store
            .upsert_request(acc, &observed("1", "x", json!({})), t0())
            .unwrap()
            .request;
        assert_eq!(r.ended_at, None, "a pending request has not ended");
        decide(&store, r.id, Outcome::Approve);
        let ended = store.request(r.id).unwrap();
        assert!(
            ended.ended_at.is_some(),
            "a decided request has ended: history sorts and shows it by that time"
        );
    }

    #[test]
    fn the_same_remote_id_on_two_accounts_is_two_requests() {
        let store = Store::open_in_memory().unwrap();
        let (a, b) = (account(&store, "a"), account(&store, "b"));
        store
            .upsert_request(a, &observed("x", "act", json!({})), t0())
            .unwrap();
        store
            .upsert_request(b, &observed("x", "act", json!({})), t0())
            .unwrap();
        let counts = store.pending_counts().unwrap();
        assert_eq!(
            (counts[&a], counts[&b]),
            (1, 1),
            "the account list counts each account's own requests"
        );
        assert_eq!(
            store.pending(&PendingQuery::default()).unwrap().len(),
            2,
            "remote ids are only unique within one account"
        );
    }

    #[test]
    fn a_replay_never_resurrects_a_decided_request() {
        let store = Store::open_in_memory().unwrap();
        let acc = account(&store, "prod");
        let req = store
            .upsert_request(acc, &observed("a", "push tag", json!({})), t0())
            .unwrap()
            .request;
        decide(&store, req.id, Outcome::Approve);
        store
            .upsert_request(acc, &observed("a", "push tag", json!({"late": true})), t0())
            .unwrap();
        assert_eq!(
            store.request(req.id).unwrap().status,
            Status::Approved,
            "a reconnect replaying a request must not put a decided request back in the inbox"
        );
    }

    #[test]
    fn full_text_search_finds_a_word_inside_the_arguments() {
        let store = Store::open_in_memory().unwrap();
        let acc = account(&store, "prod");
        let hit = store
            .upsert_request(
                acc,
                &observed(
                    "a",
                    "run_sql",
                    json!({"query": "DELETE FROM invoices WHERE paid"}),
                ),
                t0(),
            )
            .unwrap()
            .request;
        store
            .upsert_request(
                acc,
                &observed("b", "run_sql", json!({"query": "SELECT 1"})),
                t0(),
            )
            .unwrap();
        let found = store
            .pending(&PendingQuery {
                search: Some("invoices".into()),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(
            found.iter().map(|r| r.id).collect::<Vec<_>>(),
            vec![hit.id],
            "a word that only appears inside the arguments must find exactly that request"
        );
        decide(&store, hit.id, Outcome::Deny);
        let by_comment = store
            .history(&HistoryQuery {
                search: Some("looks".into()),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(
            by_comment.len(),
            1,
            "the reviewer's comment is searchable in history"
        );
        let hostile = store
            .history(&HistoryQuery {
                search: Some("\"unbalanced (NEAR".into()),
                ..Default::default()
            })
            .unwrap();
        assert!(
            hostile.is_empty(),
            "FTS syntax typed by a user is matched as words, not an error"
        );
    }

    #[test]
    fn a_platform_time_in_the_future_does_not_jump_the_history_queue() {
        let store = Store::open_in_memory().unwrap();
        let acc = account(&store, "prod");
        let far = store
            .upsert_request(acc, &observed("1", "x", json!({})), t0())
            .unwrap()
            .request;
        let year_10000 = Utc.with_ymd_and_hms(9999, 12, 31, 0, 0, 0).unwrap() + Duration::days(2);
        store
            .apply_resolution(
                far.id,
                &Resolution {
                    remote_id: "1".into(),
                    status: Status::Approved,
                    outcome: Some("approved".into()),
                    decided_by: Some("skewed clock".into()),
                    decided_at: Some(year_10000),
                },
                t0(),
            )
            .unwrap();
        let later = store
            .upsert_request(acc, &observed("2", "y", json!({})), t0())
            .unwrap()
            .request;
        decide(&store, later.id, Outcome::Approve);
        let stored = store.request(far.id).unwrap();
        assert_eq!(
            stored.decided_at,
            Some(t0()),
            "a decision time after the moment it was learnt is capped at that moment"
        );
        let page = store.history_page(&HistoryQuery::default()).unwrap();
        assert_eq!(
            page.rows.iter().map(|r| r.id).collect::<Vec<_>>(),
            vec![later.id, far.id],
            "history stays newest first by when Countersign saw each end"
        );
    }

    #[test]
    fn history_filters_by_status_account_agent_and_time() {
        let store = Store::open_in_memory().unwrap();
        let (a, b) = (account(&store, "a"), account(&store, "b"));
        let ra = store
            .upsert_request(a, &observed("1", "x", json!({})), t0())
            .unwrap()
            .request;
        let rb = store
            .upsert_request(b, &observed("2", "y", json!({})), t0())
            .unwrap()
            .request;
        decide(&store, ra.id, Outcome::Approve);
        store
            .apply_resolution(
                rb.id,
                &Resolution {
                    remote_id: "2".into(),
                    status: Status::Expired,
                    outcome: Some("denied".into()),
                    decided_by: Some("auto-expired".into()),
                    decided_at: Some(t0() + Duration::hours(1)),
                },
                t0() + Duration::hours(2),
            )
            .unwrap()
            .expect("a pending request changes when it expires");
        let ids = |q: HistoryQuery| {
            store
                .history(&q)
                .unwrap()
                .into_iter()
                .map(|r| r.id)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            ids(HistoryQuery::default()),
            vec![rb.id, ra.id],
            "newest decision first"
        );
        assert_eq!(
            ids(HistoryQuery {
                statuses: vec![Status::Expired],
                ..Default::default()
            }),
            vec![rb.id]
        );
        assert_eq!(
            ids(HistoryQuery {
                account: Some("a".into()),
                ..Default::default()
            }),
            vec![ra.id]
        );
        assert_eq!(
            ids(HistoryQuery {
                agent: Some("Release Manager".into()),
                ..Default::default()
            })
            .len(),
            2
        );
        assert_eq!(
            ids(HistoryQuery {
                since: Some(t0() + Duration::minutes(30)),
                ..Default::default()
            }),
            vec![rb.id],
            "only the expiry happened after the cut-off"
        );
        assert!(store.pending(&PendingQuery::default()).unwrap().is_empty());
    }

    #[test]
    fn inbox_orders_by_deadline_then_age() {
        let store = Store::open_in_memory().unwrap();
        let acc = account(&store, "a");
        let mut old = observed("old", "old", json!({}));
        old.created_at = t0() - Duration::hours(2);
        let mut urgent = observed("urgent", "urgent", json!({}));
        urgent.deadline = Some(t0() + Duration::minutes(5));
        let mut later = observed("later", "later", json!({}));
        later.deadline = Some(t0() + Duration::minutes(50));
        for r in [&old, &later, &urgent] {
            store.upsert_request(acc, r, t0()).unwrap();
        }
        let order: Vec<String> = store
            .pending(&PendingQuery::default())
            .unwrap()
            .into_iter()
            .map(|r| r.remote_id)
            .collect();
        assert_eq!(
            order,
            ["urgent", "later", "old"],
            "deadlines first, soonest first, then oldest"
        );
    }
}

mod decisions {
    use super::*;

    #[test]
    fn an_attempt_sent_without_answer_is_remembered_from_its_first_time() {
        let store = Store::open_in_memory().unwrap();
        let acc = account(&store, "prod");
        let req = store
            .upsert_request(acc, &observed("a", "x", json!({})), t0())
            .unwrap()
            .request;
        let d = decide(&store, req.id, Outcome::Deny);
        let lease = Duration::minutes(2);
        store.claim_due(acc, None, t0(), lease, false).unwrap();
        let refused = store
            .update_decision(
                d.id,
                &DecisionUpdate::Retry {
                    error: "not sent".into(),
                    at: t0(),
                },
                t0(),
            )
            .unwrap();
        assert_eq!(
            refused.unsure_since, None,
            "a failure that never left leaves nothing to check before sending again"
        );
        let later = t0() + Duration::seconds(40);
        store.claim_due(acc, None, later, lease, false).unwrap();
        store
            .update_decision(
                d.id,
                &DecisionUpdate::RetryUnsure {
                    error: "no answer".into(),
                    at: later,
                },
                later,
            )
            .unwrap();
        let again = later + Duration::seconds(15);
        store.claim_due(acc, None, again, lease, false).unwrap();
        let d = store
            .update_decision(
                d.id,
                &DecisionUpdate::RetryUnsure {
                    error: "still pending".into(),
                    at: again,
                },
                again,
            )
            .unwrap();
        assert_eq!(
            d.unsure_since,
            Some(later),
            "the wait for a running tool counts from the first attempt that got no answer, \
             or it would never end"
        );
        assert_eq!(d.delivery, countersign_model::Delivery::Queued);
    }

    #[test]
    fn a_dead_senders_lease_is_taken_over_at_once_a_live_ones_never() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("countersign.sqlite3");
        let sender = Store::open(&path).unwrap();
        let acc = account(&sender, "prod");
        let req = sender
            .upsert_request(acc, &observed("a", "x", json!({})), t0())
            .unwrap()
            .request;
        decide(&sender, req.id, Outcome::Approve);
        let lease = Duration::minutes(2);
        assert_eq!(
            sender
                .claim_due(acc, None, t0(), lease, false)
                .unwrap()
                .len(),
            1,
            "the first sender takes the decision"
        );

        let other = Store::open(&path).unwrap();
        assert!(
            other
                .claim_due(acc, None, t0() + Duration::seconds(1), lease, false)
                .unwrap()
                .is_empty(),
            "while its sender is alive (the app, say), a second process (the CLI) must not send it too"
        );
        // The sender's store closes: what the OS does to its lock when its
        // process is killed.
        drop(sender);
        let taken = other
            .claim_due(acc, None, t0() + Duration::seconds(2), lease, false)
            .unwrap();
        assert_eq!(
            taken.len(),
            1,
            "a dead sender's decision goes again at once, not after its two-minute lease"
        );
        assert_eq!(
            taken[0].decision.attempts, 2,
            "it counts as a second attempt"
        );
        let third = Store::open(&path).unwrap();
        assert!(
            third
                .claim_due(acc, None, t0() + Duration::seconds(3), lease, false)
                .unwrap()
                .is_empty(),
            "the new holder is alive: its lease is honoured in turn"
        );
    }

    #[test]
    fn a_request_stays_as_decided_while_its_decision_is_on_its_way() {
        let store = Store::open_in_memory().unwrap();
        let acc = account(&store, "prod");
        let id = store
            .upsert_request(
                acc,
                &observed("a", "write_file", json!({"path": "/a.md"})),
                t0(),
            )
            .unwrap()
            .request
            .id;
        decide(&store, id, Outcome::Approve);
        let later = store
            .upsert_request(acc, &observed("a", "rm", json!({"path": "/b.md"})), t0())
            .unwrap();
        assert!(
            !later.changed,
            "nothing the reviewer saw may change under a decision"
        );
        let stored = store.request(id).unwrap();
        assert_eq!(
            (stored.action.as_str(), stored.arguments.clone()),
            ("write_file", json!({"path": "/a.md"})),
            "the connector checks the platform against what was approved, so a newer \
             version must not replace it before the decision is sent"
        );
    }
    use countersign_model::{Delivery, Status};
    use countersign_store::DecisionUpdate;

    #[test]
    fn a_decision_is_stored_before_delivery_and_claimed_once() {
        let store = Store::open_in_memory().unwrap();
        let acc = account(&store, "prod");
        let req = store
            .upsert_request(acc, &observed("a", "x", json!({})), t0())
            .unwrap()
            .request;
        let d = decide(&store, req.id, Outcome::Approve);
        assert_eq!(d.delivery, Delivery::Queued);
        assert_eq!(store.request(req.id).unwrap().status, Status::Approved);
        assert_eq!(
            store.outbox().unwrap().len(),
            1,
            "an undelivered decision sits in the outbox"
        );

        let lease = Duration::minutes(2);
        let first = store.claim_due(acc, None, t0(), lease, false).unwrap();
        let second = store.claim_due(acc, None, t0(), lease, false).unwrap();
        assert_eq!(first.len(), 1);
        assert!(
            second.is_empty(),
            "a claimed decision must not be handed to a second sender"
        );
        let after_lease = store
            .claim_due(acc, None, t0() + Duration::minutes(3), lease, false)
            .unwrap();
        assert_eq!(
            after_lease.len(),
            1,
            "a sender that died must not strand the decision"
        );
        assert_eq!(after_lease[0].decision.attempts, 2);

        store
            .update_decision(d.id, &DecisionUpdate::Confirmed, t0())
            .unwrap();
        assert!(
            store.outbox().unwrap().is_empty(),
            "confirmed decisions leave the outbox"
        );
    }

    #[test]
    fn retry_waits_for_its_time() {
        let store = Store::open_in_memory().unwrap();
        let acc = account(&store, "prod");
        let req = store
            .upsert_request(acc, &observed("a", "x", json!({})), t0())
            .unwrap()
            .request;
        let d = decide(&store, req.id, Outcome::Deny);
        store
            .claim_due(acc, None, t0(), Duration::minutes(2), false)
            .unwrap();
        let at = t0() + Duration::seconds(30);
        store
            .update_decision(
                d.id,
                &DecisionUpdate::Retry {
                    error: "down".into(),
                    at,
                },
                t0(),
            )
            .unwrap();
        assert!(store
            .claim_due(
                acc,
                None,
                t0() + Duration::seconds(10),
                Duration::minutes(2),
                false
            )
            .unwrap()
            .is_empty());
        assert_eq!(
            store
                .claim_due(acc, None, at, Duration::minutes(2), false)
                .unwrap()
                .len(),
            1
        );
        store
            .update_decision(
                d.id,
                &DecisionUpdate::Retry {
                    error: "down".into(),
                    at: at + Duration::hours(1),
                },
                at,
            )
            .unwrap();
        assert_eq!(
            store
                .claim_due(acc, None, at, Duration::minutes(2), true)
                .unwrap()
                .len(),
            1,
            "once the platform is back, a scheduled retry goes at once"
        );
    }

    #[test]
    fn refused_decisions_are_rejected_before_they_are_stored() {
        let store = Store::open_in_memory().unwrap();
        let acc = account(&store, "prod");
        let req = store
            .upsert_request(acc, &observed("a", "x", json!({})), t0())
            .unwrap()
            .request;
        let edit = store.record_decision(&DecisionDraft {
            request_id: req.id,
            outcome: Outcome::Edit,
            comment: None,
            edited_arguments: Some(json!({})),
            response: None,
            decided_by: "dana".into(),
            decided_at: t0(),
        });
        assert!(
            edit.is_err(),
            "Molecule does not allow edits, so the store must refuse one"
        );
        decide(&store, req.id, Outcome::Approve);
        let twice = store.record_decision(&DecisionDraft {
            request_id: req.id,
            outcome: Outcome::Deny,
            comment: None,
            edited_arguments: None,
            response: None,
            decided_by: "dana".into(),
            decided_at: t0(),
        });
        assert!(twice.is_err(), "a request is decided once");
        assert_eq!(store.decisions_for(req.id).unwrap().len(), 1);
    }

    #[test]
    fn a_not_allowed_failure_puts_the_request_back_in_the_inbox() {
        let store = Store::open_in_memory().unwrap();
        let acc = account(&store, "prod");
        let req = store
            .upsert_request(acc, &observed("a", "x", json!({})), t0())
            .unwrap()
            .request;
        let d = decide(&store, req.id, Outcome::Approve);
        let failed = store
            .update_decision(
                d.id,
                &DecisionUpdate::Failed {
                    error: "not allowed".into(),
                    reopen: true,
                },
                t0(),
            )
            .unwrap();
        assert_eq!(failed.delivery, Delivery::Failed);
        assert_eq!(failed.error.as_deref(), Some("not allowed"));
        assert_eq!(store.request(req.id).unwrap().status, Status::Pending);
    }
}

mod accounts {
    use super::*;

    #[test]
    fn removing_an_account_keeps_its_history_and_frees_its_name() {
        let store = Store::open_in_memory().unwrap();
        let acc = account(&store, "prod");
        let req = store
            .upsert_request(acc, &observed("a", "x", json!({})), t0())
            .unwrap()
            .request;
        decide(&store, req.id, Outcome::Approve);
        assert!(
            store
                .add_account(
                    &NewAccount {
                        name: "prod".into(),
                        platform: Platform::Molecule,
                        base_url: "http://x".into(),
                        reviewer: "r".into(),
                        secret_store: SecretStoreKind::None,
                        settings: json!({}),
                    },
                    "r2",
                    t0()
                )
                .is_err(),
            "two active accounts cannot share a name"
        );
        store.remove_account("prod", t0()).unwrap();
        assert!(store.accounts().unwrap().is_empty());
        assert_eq!(
            store.history(&Default::default()).unwrap().len(),
            1,
            "a removed account's decisions stay browsable"
        );
        account(&store, "prod");
    }
}

mod activity {
    use super::*;

    #[test]
    fn activity_is_stored_once() {
        let store = Store::open_in_memory().unwrap();
        let acc = account(&store, "prod");
        let item = ObservedActivity {
            remote_id: "ev1".into(),
            event_type: "WORKSPACE_OFFLINE".into(),
            title: "Workspace went offline".into(),
            agent: Some("Release Manager".into()),
            details: json!({}),
            occurred_at: t0(),
            raw: json!({}),
            request_remote_id: Some("a".into()),
        };
        assert!(store.insert_activity(acc, &item).unwrap().is_some());
        assert!(
            store.insert_activity(acc, &item).unwrap().is_none(),
            "a replayed event is not a new item"
        );
        let feed = store.activity(None, 10).unwrap();
        assert_eq!(feed.len(), 1);
        assert!(store.mark_activity_read(feed[0].id).unwrap());
        assert!(store.activity(Some("prod"), 10).unwrap()[0].read);
        assert_eq!(
            store.activity_for_request(acc, "a").unwrap().len(),
            1,
            "an item naming a request is found from that request"
        );
    }
}

mod search_fuzz {
    use super::*;
    use countersign_store::{HistoryQuery, PendingQuery};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]
        #[test]
        fn any_search_text_is_a_query_not_an_error(text in ".*") {
            let store = Store::open_in_memory().unwrap();
            let acc = account(&store, "prod");
            store.upsert_request(acc, &observed("a", "x", json!({"q": text.clone()})), t0()).unwrap();
            let pending = store.pending(&PendingQuery { search: Some(text.clone()), ..Default::default() });
            prop_assert!(pending.is_ok(), "pending search failed: {:?}", pending.err());
            let history = store.history(&HistoryQuery { search: Some(text), ..Default::default() });
            prop_assert!(history.is_ok(), "history search failed: {:?}", history.err());
        }
    }
}

mod snooze {
    use super::*;
    use countersign_store::{PendingQuery, Snoozed};

    fn listed(store: &Store, at: DateTime<Utc>) -> usize {
        store
            .pending(&PendingQuery {
                snoozed: Snoozed::AwakeAt(at),
                ..Default::default()
            })
            .unwrap()
            .len()
    }

    #[test]
    fn a_snoozed_request_leaves_the_list_and_comes_back_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("countersign.sqlite3");
        let store = Store::open(&path).unwrap();
        let acc = account(&store, "prod");
        let r = store
            .upsert_request(acc, &observed("a", "x", json!({})), t0())
            .unwrap()
            .request;
        let until = store.snooze(r.id, t0() + Duration::hours(1), t0()).unwrap();
        assert_eq!(until, t0() + Duration::hours(1));
        assert_eq!(listed(&store, t0()), 0, "snoozed: out of the inbox list");
        assert_eq!(
            store.snoozed_count(t0()).unwrap(),
            1,
            "the tray can say one is snoozed"
        );
        drop(store);
        let store = Store::open(&path).unwrap();
        assert_eq!(
            listed(&store, t0() + Duration::minutes(30)),
            0,
            "a restart keeps the snooze"
        );
        assert!(
            store
                .wake_due(t0() + Duration::minutes(59))
                .unwrap()
                .is_empty(),
            "not before its time"
        );
        let woken = store.wake_due(t0() + Duration::hours(1)).unwrap();
        assert_eq!(
            woken.len(),
            1,
            "its time come, it wakes (to be notified again)"
        );
        assert!(
            store
                .wake_due(t0() + Duration::hours(2))
                .unwrap()
                .is_empty(),
            "and wakes once"
        );
        assert_eq!(
            listed(&store, t0() + Duration::hours(1)),
            1,
            "back in the inbox"
        );
    }

    #[test]
    fn a_snooze_ends_before_the_deadline_and_a_due_request_cannot_sleep() {
        let store = Store::open_in_memory().unwrap();
        let acc = account(&store, "prod");
        let mut o = observed("a", "x", json!({}));
        o.deadline = Some(t0() + Duration::minutes(30));
        let r = store.upsert_request(acc, &o, t0()).unwrap().request;
        let until = store.snooze(r.id, t0() + Duration::hours(3), t0()).unwrap();
        assert_eq!(
            until,
            t0() + Duration::minutes(25),
            "it comes back five minutes before its deadline, not after it expired"
        );
        let late = store.snooze(
            r.id,
            t0() + Duration::hours(1),
            t0() + Duration::minutes(27),
        );
        assert!(
            late.is_err(),
            "three minutes before the deadline there is nothing to snooze into"
        );
        decide(&store, r.id, Outcome::Approve);
        assert!(
            store.snooze(r.id, t0() + Duration::hours(1), t0()).is_err(),
            "a decided request cannot be snoozed"
        );
    }
}
