//! `countersign sync` killed with SIGKILL again and again, then started
//! once more:
//! - while it delivers queued decisions: every decision reaches the
//!   platform exactly once (the fake's own log of decide calls says so),
//!   and delivery goes on right after the restart instead of waiting for
//!   the dead process's leases to run out;
//! - while its first sync of thousands of requests runs (OpenCode, whose
//!   list is not capped, unlike Molecule's 50): afterwards the local
//!   pending requests are the server's, none twice, and none that was
//!   answered on the server meanwhile comes back;
//! - while Molecule pushes a stream of new and decided approvals over
//!   its WebSocket: the same, once the restarted sync has reconciled.
//!
//! The kill points are drawn from a seed (`CRASH_SEED`, else the clock),
//! printed so a failure can be replayed.

use countersign_fakes::molecule::{Config, FakeMolecule};
use countersign_fakes::opencode::{Config as OcConfig, FakeOpenCode};
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::process::Command;

const TOKEN: &str = "crash-admin-token";
const OC_PASSWORD: &str = "crash-opencode-pw";
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
        .env("OC_PW", OC_PASSWORD)
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

/// `CRASH_SEED`, else the clock; printed so a failure can be replayed.
fn seed() -> u64 {
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
    seed
}

/// Remote ids of the store's pending requests.
fn local_pending(dir: &Path) -> BTreeSet<String> {
    let conn = rusqlite::Connection::open(dir.join("countersign.sqlite3")).unwrap();
    let mut stmt = conn
        .prepare("SELECT remote_id FROM requests WHERE status = 'pending'")
        .unwrap();
    let ids = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    ids
}

/// How many rows the store holds, and the (account, remote id) pairs it
/// holds more than once.
fn rows_and_duplicates(dir: &Path) -> (i64, Vec<(i64, String, i64)>) {
    let conn = rusqlite::Connection::open(dir.join("countersign.sqlite3")).unwrap();
    let rows = conn
        .query_row("SELECT COUNT(*) FROM requests", [], |r| r.get(0))
        .unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT account_id, remote_id, COUNT(*) FROM requests \
             GROUP BY account_id, remote_id HAVING COUNT(*) > 1",
        )
        .unwrap();
    let dups = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    (rows, dups)
}

async fn add_account(dir: &Path, args: &[&str]) {
    let mut all = vec!["account", "add"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--secret-store", "file"]);
    let o = run(dir, &all).await;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// Kills `sync` and waits for it to be gone.
async fn kill(mut sync: tokio::process::Child) {
    sync.start_kill().unwrap();
    sync.wait().await.unwrap();
}

#[tokio::test]
async fn sync_killed_while_delivering_loses_and_repeats_no_decision() {
    let seed = seed();
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

/// Requests waiting on the OpenCode server before the first sync.
const FIRST_SYNC: usize = 3_000;

#[tokio::test]
async fn first_sync_of_thousands_killed_again_and_again_loses_repeats_and_revives_nothing() {
    let seed = seed();
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeOpenCode::start(OcConfig {
        password: Some(OC_PASSWORD.into()),
        ..Default::default()
    })
    .await
    .unwrap();
    let cwd = fake.cwd();
    let mut asked: Vec<String> = (0..FIRST_SYNC)
        .map(|i| {
            fake.ask_bash(&cwd, &format!("ses_{i}"), &format!("make target-{i}"))
                .unwrap()
        })
        .collect();
    let url = fake.url();
    add_account(
        dir.path(),
        &[
            "opencode",
            "--name",
            "coder",
            "--url",
            &url,
            "--secret-env",
            "OC_PW",
        ],
    )
    .await;

    // How long a first sync of them takes here, from a second data dir:
    // from start to the list answered, and from there to the commit (the
    // rows are there).
    let (listed, commits) = {
        let scratch = tempfile::tempdir().unwrap();
        add_account(
            scratch.path(),
            &[
                "opencode",
                "--name",
                "coder",
                "--url",
                &url,
                "--secret-env",
                "OC_PW",
            ],
        )
        .await;
        let lists = fake.list_calls();
        let started = Instant::now();
        let sync = countersign(scratch.path()).arg("sync").spawn().unwrap();
        let mut listed = None;
        while rows_and_duplicates(scratch.path()).0 == 0 {
            if listed.is_none() && fake.list_calls() > lists {
                listed = Some(started.elapsed());
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "a first sync of {FIRST_SYNC} requests ends (CRASH_SEED={seed})"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        kill(sync).await;
        let commits = started.elapsed();
        let listed = listed.unwrap_or(commits / 2);
        (listed, commits - listed)
    };
    println!(
        "a first sync is listed after {listed:?} and stored {commits:?} later (CRASH_SEED={seed})"
    );

    // Answered in the terminal while the kills go on: these must never be
    // pending locally again.
    let mut answered = BTreeSet::new();
    let (mut mid_write, mut landed) = (0, 0);
    // Meanwhile the agents go on: one more ask, one answered.
    let step = |asked: &mut Vec<String>, answered: &mut BTreeSet<String>, rng: &mut Rng| {
        let i = asked.len();
        asked.push(
            fake.ask_bash(&cwd, &format!("ses_{i}"), &format!("make target-{i}"))
                .unwrap(),
        );
        let victim = asked[rng.below(asked.len() as u64) as usize].clone();
        if fake.reply_elsewhere(&cwd, &victim, "once") {
            answered.insert(victim);
        }
    };
    for k in 0..KILLS {
        let lists = fake.list_calls();
        let (stored, _) = rows_and_duplicates(dir.path());
        let sync = countersign(dir.path()).arg("sync").spawn().unwrap();
        // Every other kill (on average) lands between the list and its
        // commit: parsing, then the write transaction; the others anywhere
        // from start-up to just after the commit.
        let spawned = Instant::now();
        let after_list = rng.below(2) == 0;
        if after_list {
            while fake.list_calls() == lists && spawned.elapsed() < Duration::from_secs(10) {
                step(&mut asked, &mut answered, &mut rng);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        let window = if after_list {
            commits
        } else {
            (listed + commits) * 13 / 10
        };
        let after = Duration::from_millis(rng.below(window.as_millis() as u64 + 1));
        let waiting = Instant::now();
        while waiting.elapsed() < after {
            step(&mut asked, &mut answered, &mut rng);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        kill(sync).await;
        let (rows, _) = rows_and_duplicates(dir.path());
        let phase = if rows != stored {
            landed += 1;
            "after its commit"
        } else if fake.list_calls() > lists {
            mid_write += 1;
            "after the list, before its commit"
        } else {
            "before the list"
        };
        println!(
            "kill {} {after:?} after {} ({phase}): {rows} rows stored, {} asked, {} answered \
             (CRASH_SEED={seed})",
            k + 1,
            if after_list { "the list" } else { "start" },
            asked.len(),
            answered.len()
        );
    }
    println!(
        "{mid_write} kills between a list and its commit, {landed} after its commit \
         (CRASH_SEED={seed})"
    );

    let o = run(dir.path(), &["sync", "--once"]).await;
    assert!(
        o.status.success(),
        "a sync after the kills works (CRASH_SEED={seed}): {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let server: BTreeSet<String> = fake
        .pending(&cwd)
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        server.len() >= FIRST_SYNC - answered.len(),
        "the fake still holds what was asked and not answered (CRASH_SEED={seed})"
    );
    let local = local_pending(dir.path());
    let lost: Vec<_> = server.difference(&local).take(5).collect();
    let extra: Vec<_> = local.difference(&server).take(5).collect();
    assert!(
        lost.is_empty() && extra.is_empty(),
        "after the kills the inbox pends exactly what the server does: {} of {} missing \
         (e.g. {lost:?}), {} too many (e.g. {extra:?}) (CRASH_SEED={seed})",
        server.difference(&local).count(),
        server.len(),
        local.difference(&server).count()
    );
    let (rows, dups) = rows_and_duplicates(dir.path());
    assert!(
        dups.is_empty(),
        "no request is stored twice however often its sync was killed: {dups:?} \
         (CRASH_SEED={seed})"
    );
    assert!(
        rows as usize <= asked.len(),
        "no more rows than requests ever asked: {rows} of {} (CRASH_SEED={seed})",
        asked.len()
    );
    let revived: Vec<_> = answered.intersection(&local).take(5).collect();
    assert!(
        revived.is_empty(),
        "a request answered on the server while a sync was killed never pends again: \
         {revived:?} of {} answered (CRASH_SEED={seed})",
        answered.len()
    );
}

/// Molecule workspaces the pushed stream is spread over: each one's
/// history (50 rows) then shows all of its own.
const PUSH_WORKSPACES: usize = 8;
/// Approvals in the pushed stream at most.
const PUSHES: usize = 240;

#[tokio::test]
async fn sync_killed_while_pushes_arrive_ends_equal_to_the_server() {
    let seed = seed();
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeMolecule::start(Config::with_admin_token(TOKEN))
        .await
        .unwrap();
    let workspaces: Vec<String> = (0..PUSH_WORKSPACES)
        .map(|i| fake.add_workspace(&format!("agent {i}"), None))
        .collect();
    let url = fake.url();
    add_account(
        dir.path(),
        &[
            "molecule",
            "--name",
            "prod",
            "--url",
            &url,
            "--secret-env",
            "MOLECULE_TOKEN",
            "--reviewer",
            "dana@countersign",
        ],
    )
    .await;

    // Four in five are decided on the server a few steps after they were
    // pushed, and the stream stops at PUSHES, so fewer than the 50 the
    // pending list shows stay pending (and each workspace's history of 50
    // holds all of its own).
    let mut created: Vec<String> = Vec::new();
    let mut decided_elsewhere = BTreeSet::new();
    let mut push = |created: &mut Vec<String>| {
        let i = created.len();
        if i >= PUSHES {
            return;
        }
        created.push(fake.create_approval(
            &workspaces[i % PUSH_WORKSPACES],
            &format!("push tag v{i}"),
            "CI green",
        ));
        if i >= 3 && !(i - 3).is_multiple_of(5) {
            let id = created[i - 3].clone();
            let verdict = if i.is_multiple_of(2) {
                "approved"
            } else {
                "denied"
            };
            assert!(fake.decide_as(&id, verdict, "ops@terminal"));
            decided_elsewhere.insert(id);
        }
    };
    for k in 0..KILLS {
        let sync = countersign(dir.path()).arg("sync").spawn().unwrap();
        // The socket is up (or about to be) when the stream starts.
        let waiting = Instant::now();
        while fake.socket_count() == 0 && waiting.elapsed() < Duration::from_secs(5) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let after = Duration::from_millis(100 + rng.below(400));
        let step = Instant::now();
        while step.elapsed() < after {
            push(&mut created);
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
        kill(sync).await;
        // While nobody listens the stream goes on: those pushes are lost.
        for _ in 0..rng.below(4) {
            push(&mut created);
        }
        println!(
            "kill {} after {after:?}: {} of {} stored (CRASH_SEED={seed})",
            k + 1,
            rows_and_duplicates(dir.path()).0,
            created.len()
        );
    }

    let server = |created: &[String]| -> BTreeSet<String> {
        created
            .iter()
            .filter(|id| fake.approval(id).is_some_and(|a| a.status == "pending"))
            .cloned()
            .collect()
    };
    assert!(
        server(&created).len() < 50,
        "the test keeps the server's pending list under its cap (CRASH_SEED={seed})"
    );
    let _sync = countersign(dir.path()).arg("sync").spawn().unwrap();
    let restarted = Instant::now();
    loop {
        let (want, have) = (server(&created), local_pending(dir.path()));
        if want == have {
            break;
        }
        assert!(
            restarted.elapsed() < Duration::from_secs(15),
            "the restarted sync reconciles to what the server pends: {} missing, {} too many \
             (CRASH_SEED={seed})",
            want.difference(&have).count(),
            have.difference(&want).count()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // And its socket takes pushes again.
    let waiting = Instant::now();
    while fake.socket_count() == 0 && waiting.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let last = fake.create_approval(&workspaces[0], "push tag after restart", "CI green");
    let pushed = Instant::now();
    while !local_pending(dir.path()).contains(&last) {
        assert!(
            pushed.elapsed() < Duration::from_secs(5),
            "an approval pushed after the restart is listed at once (CRASH_SEED={seed})"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let local = local_pending(dir.path());
    let revived: Vec<_> = decided_elsewhere.intersection(&local).collect();
    assert!(
        revived.is_empty(),
        "an approval decided on the server while sync was dead or dying never pends again: \
         {revived:?} (CRASH_SEED={seed})"
    );
    let (rows, dups) = rows_and_duplicates(dir.path());
    assert!(
        dups.is_empty(),
        "no pushed approval is stored twice: {dups:?} (CRASH_SEED={seed})"
    );
    // Approvals made and decided while no sync ran are never seen at all
    // (Molecule lists only pending ones): fewer rows than approvals is fine.
    assert!(
        rows as usize <= created.len(),
        "no more rows than approvals ever made: {rows} of {} (CRASH_SEED={seed})",
        created.len()
    );
}
