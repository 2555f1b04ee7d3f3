//! `countersign sync` killed with SIGKILL while it delivers queued
//! decisions, again and again, then started once more: every decision
//! reaches the platform exactly once (the fake's own log of decide calls
//! says so), and delivery goes on right after the restart instead of
//! waiting for the dead process's leases to run out.
//!
//! The kill points are drawn from a seed (`CRASH_SEED`, else the clock),
//! printed so a failure can be replayed.

use countersign_fakes::molecule::{Config, FakeMolecule};
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::process::Command;

const TOKEN: &str = "crash-admin-token";
/// Under the 50 the server lists as pending at once.
const DECISIONS: usize = 48;
const KILLS: usize = 8;

fn countersign(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_countersign"));
    cmd.arg("--data-dir")
        .arg(dir)
        .env_remove("COUNTERSIGN_DATA_DIR")
        .env_remove("RUST_LOG")
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
        .env("MOLECULE_TOKEN", TOKEN)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    cmd
}

async fn run(dir: &Path, args: &[&str]) -> std::process::Output {
    let o = countersign(dir)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .output()
        .await
        .expect("countersign runs");
    o
}

/// A small deterministic generator for the kill points (xorshift).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// How many decisions the store holds in each delivery state.
fn deliveries(dir: &Path) -> HashMap<String, i64> {
    let conn = rusqlite::Connection::open(dir.join("countersign.sqlite3")).unwrap();
    let mut stmt = conn
        .prepare("SELECT delivery, COUNT(*) FROM decisions GROUP BY delivery")
        .unwrap();
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    rows
}

#[tokio::test]
async fn sync_killed_while_delivering_loses_and_repeats_no_decision() {
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    println!("CRASH_SEED={seed}");
    let mut rng = Rng(seed);

    let dir = tempfile::tempdir().unwrap();
    let fake = FakeMolecule::start(Config::with_admin_token(TOKEN))
        .await
        .unwrap();
    // Two workspaces, so each one's history (50 rows) shows all of its own.
    let workspaces = [
        fake.add_workspace("Release Manager", None),
        fake.add_workspace("Billing", None),
    ];
    let o = run(
        dir.path(),
        &[
            "account",
            "add",
            "molecule",
            "--name",
            "prod",
            "--url",
            &fake.url(),
            "--secret-env",
            "MOLECULE_TOKEN",
            "--secret-store",
            "file",
            "--reviewer",
            "dana@countersign",
        ],
    )
    .await;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for i in 0..DECISIONS {
        fake.create_approval(&workspaces[i % 2], &format!("deploy build {i}"), "release");
    }
    let o = run(dir.path(), &["sync", "--once"]).await;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = run(dir.path(), &["pending", "--json"]).await;
    let pending: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(pending.len(), DECISIONS);

    // Decided while the platform is down: all queued.
    fake.stop().await;
    for r in &pending {
        let id = r["id"].to_string();
        let o = run(dir.path(), &["decide", &id, "approve"]).await;
        assert_eq!(o.status.code(), Some(3), "queued while down");
    }
    fake.restart().await.unwrap();
    // Each call takes a while, so kills land in the middle of deliveries.
    fake.set_stall(Some(Duration::from_millis(60)));

    for kill in 0..KILLS {
        let seen = fake.received_decisions().len();
        let mut sync = countersign(dir.path()).arg("sync").spawn().unwrap();
        // Killed while delivering: at a random moment after its first
        // decide call arrived (unless nothing is left to deliver).
        let waiting = Instant::now();
        while fake.received_decisions().len() == seen
            && seen < DECISIONS
            && waiting.elapsed() < Duration::from_secs(10)
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let after = Duration::from_millis(rng.below(400));
        tokio::time::sleep(after).await;
        sync.start_kill().unwrap();
        sync.wait().await.unwrap();
        println!(
            "kill {} {after:?} after its first decide call: {:?} (CRASH_SEED={seed})",
            kill + 1,
            deliveries(dir.path())
        );
    }

    let restarted = Instant::now();
    let before = fake.received_decisions().len();
    let _sync = countersign(dir.path()).arg("sync").spawn().unwrap();
    let mut started = None;
    loop {
        if started.is_none() && fake.received_decisions().len() > before {
            started = Some(restarted.elapsed());
        }
        let d = deliveries(dir.path());
        if d.get("confirmed").copied().unwrap_or(0) == DECISIONS as i64 {
            break;
        }
        assert!(
            restarted.elapsed() < Duration::from_secs(30),
            "after the restart, every decision is delivered within seconds, not when a dead \
             process's lease runs out: {d:?} (CRASH_SEED={seed})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if before < DECISIONS {
        let started = started.unwrap_or_else(|| restarted.elapsed());
        assert!(
            started < Duration::from_secs(5),
            "delivery starts within 5 s of the restart; took {started:?} (CRASH_SEED={seed})"
        );
    }

    let mut calls: HashMap<String, usize> = HashMap::new();
    for r in fake.received_decisions() {
        *calls.entry(r.approval_id).or_default() += 1;
    }
    assert_eq!(
        calls.len(),
        DECISIONS,
        "every decision reached the platform (CRASH_SEED={seed})"
    );
    let twice: Vec<_> = calls.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "no decision is sent twice, even when its sender died after sending it: {twice:?} \
         (CRASH_SEED={seed})"
    );
    for r in &pending {
        let approval = r["remote_id"].as_str().unwrap();
        assert_eq!(
            fake.approval(approval).map(|a| a.status),
            Some("approved".to_owned()),
            "the platform holds what the reviewer decided (CRASH_SEED={seed})"
        );
    }
}
