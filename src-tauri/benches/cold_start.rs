//! How long the desktop app takes from launch to the inbox count, on a big
//! store: `cargo bench -p countersign-desktop --bench cold_start`.
//!
//! Uses the store the history bench builds (1,000,000 ended requests and
//! 10,000 pending), named by `COLD_START_DB=path`; build it once with
//! `HISTORY_DB=path cargo bench -p countersign-store --bench history`.
//! Copies it into a fresh data dir, launches the release app in
//! a private desktop (Xvfb, D-Bus, tauri-driver: the e2e harness) and
//! times from the start of the WebDriver session, which launches the app,
//! until the navigation shows the inbox count. Median of `COLD_START_RUNS`
//! launches (default 5), each on a copy of the same store with the page
//! cache warm, as when a user reopens the app.
//!
//! Run by `cargo test` (without `--bench`), it launches the app once on a
//! small store it writes itself, as a check that the bench still works.

#[path = "../tests/e2e/harness.rs"]
#[allow(dead_code)]
mod harness;

use harness::Desktop;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A small store for the check `cargo test` runs: `pending` requests.
fn small_store(path: &Path, pending: usize) {
    use countersign_model::{Kind, NewAccount, ObservedRequest, Platform, SecretStoreKind};
    let store = countersign_store::Store::open(path).unwrap();
    let now = chrono::Utc::now();
    let account = store
        .add_account(
            &NewAccount {
                name: "prod".into(),
                platform: Platform::Molecule,
                base_url: "http://127.0.0.1:1".into(),
                reviewer: "dana".into(),
                secret_store: SecretStoreKind::None,
                settings: serde_json::json!({"workspace_id": "ws"}),
            },
            "ref",
            now,
        )
        .unwrap();
    for i in 0..pending {
        let o = ObservedRequest {
            remote_id: format!("r{i}"),
            route: serde_json::json!({}),
            kind: Kind::Approval,
            title: format!("deploy build {i}"),
            action: "deploy".into(),
            arguments: serde_json::json!({"build": i}),
            description: None,
            agent: Some("Release Manager".into()),
            tier: None,
            created_at: now,
            deadline: None,
            allowed_decisions: Vec::new(),
            link: None,
            extra: Default::default(),
            raw: serde_json::json!({}),
        };
        store.upsert_request(account.id, &o, now).unwrap();
    }
}

fn main() {
    let runs: usize = std::env::var("COLD_START_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let bench = std::env::args().any(|a| a == "--bench");
    let dir = tempfile::tempdir().unwrap();
    let db = match std::env::var_os("COLD_START_DB") {
        Some(p) => PathBuf::from(p),
        None if bench => {
            eprintln!(
                "set COLD_START_DB to a big store; build one with \
                 HISTORY_DB=/tmp/big.sqlite3 cargo bench -p countersign-store --bench history"
            );
            std::process::exit(2);
        }
        None => {
            let p = dir.path().join("small.sqlite3");
            small_store(&p, 200);
            p
        }
    };
    let runs = if bench { runs } else { 1 };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut times = Vec::new();
    for run in 0..runs {
        let ms = rt.block_on(async {
            let app = Desktop::launch(|dir| {
                std::fs::copy(&db, dir.join("countersign.sqlite3"))
                    .expect("the big store copies into the data dir");
            })
            .await;
            let count = app
                .until(
                    "the inbox count shows",
                    "document.querySelector('[data-testid=count-inbox]')?.textContent",
                    Duration::from_secs(60),
                )
                .await;
            let ms = app.started.elapsed().as_secs_f64() * 1e3;
            if !bench {
                assert_eq!(
                    count.as_str(),
                    Some("200"),
                    "the inbox count is every pending request in the store"
                );
            }
            println!("run {}: inbox count {count} after {ms:.0} ms", run + 1);
            app.close().await;
            ms
        });
        times.push(ms);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "cold start to the inbox count: median {:.0} ms, min {:.0} ms, max {:.0} ms ({runs} launches)",
        times[times.len() / 2],
        times[0],
        times[times.len() - 1]
    );
}
