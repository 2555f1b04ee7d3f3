//! How fast the store serves a big inbox: `cargo bench -p countersign-store`.
//!
//! Writes 10,000 pending requests (as a first sync of a busy account would),
//! replays them (a reconnect), then times the queries the inbox and history
//! views run. Prints one line per measurement; the README quotes them.

mod common;
use common::median_ms;

use chrono::{Duration, TimeZone, Utc};
use countersign_model::{
    AllowedDecision, DecisionDraft, Kind, NewAccount, ObservedRequest, Outcome, Platform,
    SecretStoreKind,
};
use countersign_store::{HistoryQuery, PendingQuery, Store};
use serde_json::json;
use std::time::Instant;

const N: usize = 10_000;

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("bench.sqlite3")).unwrap();
    let t0 = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
    let account = store
        .add_account(
            &NewAccount {
                name: "bench".into(),
                platform: Platform::Molecule,
                base_url: "http://127.0.0.1:9".into(),
                reviewer: "dana".into(),
                secret_store: SecretStoreKind::None,
                settings: json!({}),
            },
            "none",
            t0,
        )
        .unwrap();
    let requests: Vec<ObservedRequest> = (0..N)
        .map(|i| ObservedRequest {
            remote_id: format!("req-{i}"),
            route: json!({"workspace_id": "ws"}),
            kind: Kind::Approval,
            title: format!("deploy service {i}"),
            action: "deploy".into(),
            arguments: json!({"service": format!("svc-{i}"), "replicas": i % 9, "note": "rolling update with health checks"}),
            description: Some("CI green on main".into()),
            agent: Some(format!("agent {}", i % 20)),
            tier: None,
            created_at: t0 + Duration::seconds(i as i64),
            deadline: (i % 3 == 0).then(|| t0 + Duration::minutes(10 + (i % 50) as i64)),
            allowed_decisions: vec![AllowedDecision::Approve, AllowedDecision::Deny],
            link: None,
            extra: Default::default(),
            raw: json!({"id": i}),
        })
        .collect();

    // A reconcile writes a whole snapshot in one transaction.
    let t = Instant::now();
    store.upsert_requests(account.id, &requests, t0).unwrap();
    let first = t.elapsed();
    let t = Instant::now();
    store.upsert_requests(account.id, &requests, t0).unwrap();
    let replay = t.elapsed();
    // A push channel writes one request at a time.
    let t = Instant::now();
    for r in requests.iter().take(1000) {
        store.upsert_request(account.id, r, t0).unwrap();
    }
    println!(
        "one pushed request (its own transaction): {:.0} µs",
        t.elapsed().as_secs_f64() * 1e6 / 1000.0
    );
    println!(
        "first sync of {N} requests: {:.0} ms ({:.0} µs each)",
        first.as_secs_f64() * 1e3,
        first.as_secs_f64() * 1e6 / N as f64
    );
    println!(
        "replay of {N} requests (reconnect): {:.0} ms",
        replay.as_secs_f64() * 1e3
    );

    let inbox = median_ms(7, || {
        assert_eq!(store.pending(&PendingQuery::default()).unwrap().len(), N)
    });
    println!("inbox query, {N} pending, most urgent first: {inbox:.1} ms");
    let search = median_ms(21, || {
        let hits = store
            .pending(&PendingQuery {
                search: Some("svc-4242".into()),
                ..Default::default()
            })
            .unwrap();
        assert!(!hits.is_empty());
    });
    println!("full-text search over {N} requests: {search:.2} ms");
    let count = median_ms(21, || assert_eq!(store.pending_count().unwrap(), N as i64));
    println!("pending count (tray): {count:.2} ms");

    for r in store
        .pending(&PendingQuery {
            limit: Some(2000),
            ..Default::default()
        })
        .unwrap()
    {
        store
            .record_decision(&DecisionDraft {
                request_id: r.id,
                outcome: Outcome::Approve,
                comment: Some("ok".into()),
                edited_arguments: None,
                response: None,
                decided_by: "dana".into(),
                decided_at: t0,
            })
            .unwrap();
    }
    let history = median_ms(7, || {
        assert_eq!(
            store
                .history(&HistoryQuery {
                    limit: Some(500),
                    ..Default::default()
                })
                .unwrap()
                .len(),
            500
        )
    });
    println!("history page (500 of 2,000 decided): {history:.1} ms");
}
