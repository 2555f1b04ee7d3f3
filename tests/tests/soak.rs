//! Disconnect soak: thousands of events pushed by the Molecule AI fake and
//! the OpenCode fake while the push connection is dropped dozens of times
//! at seeded random points. Afterwards the inbox must hold exactly what the
//! server holds, with one row per request, and no request may have been
//! announced as new (what the desktop app turns into a notification) more
//! than once.
//!
//! The seed comes from `SOAK_SEED`, else the clock; it is printed and is in
//! every assertion message, so a failure can be replayed. The periodic
//! safety-net reconcile is kept out of reach (Molecule's is set to an hour,
//! OpenCode's is a minute, longer than a run), so what is lost while a
//! connection is down can only come back through the reconcile after each
//! reconnect.

use countersign_fakes::molecule::{Config as MoleculeConfig, FakeMolecule};
use countersign_fakes::opencode::{Config as OpenCodeConfig, FakeOpenCode};
use countersign_inbox::{AccountInput, Inbox};
use countersign_model::{Platform, Secret, SecretStoreKind, Status, SystemClock};
use countersign_sync::{Backoff, Options, SyncEvent};
use serde_json::json;
use std::collections::{BTreeSet, HashMap};
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Events pushed per platform (asks, answers elsewhere, repeats).
const EVENTS: usize = 5_000;
/// Connection drops per platform.
const DROPS: usize = 50;
/// At most this many requests pending on a server at once: Molecule lists
/// and keeps per-workspace history only 50 rows deep.
const MAX_PENDING: usize = 40;

/// splitmix64: small, seedable, good enough to pick points and actions.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// `count` distinct event indices in `1..total`, ascending: where the
    /// connection drops.
    fn drop_points(&mut self, count: usize, total: usize) -> Vec<usize> {
        let mut points = BTreeSet::new();
        while points.len() < count {
            points.insert(1 + self.below(total - 1));
        }
        points.into_iter().collect()
    }
}

/// The run's seed, printed so that a failure can be replayed.
fn seed(platform: &str) -> u64 {
    let seed = std::env::var("SOAK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    eprintln!("{platform} soak: SOAK_SEED={seed}");
    seed
}

fn options() -> Options {
    Options {
        backoff: Backoff {
            base: Duration::from_millis(20),
            max: Duration::from_millis(200),
        },
        auth_retry: Duration::from_secs(60),
        lease: Duration::from_secs(30),
        outbox_every: Duration::from_millis(500),
        uncertain_retry: Duration::from_millis(500),
        waiting_check: Duration::from_millis(200),
    }
}

/// What the desktop app would have shown as a notification, per request:
/// `src-tauri/src/events.rs` notifies for every `RequestAdded` whose
/// request is pending, and for nothing else that concerns a new request.
#[derive(Clone, Default)]
struct Notified {
    per_request: Arc<Mutex<HashMap<String, u32>>>,
    /// The receiver fell behind: counts would be incomplete.
    lagged: Arc<AtomicBool>,
}

impl Notified {
    fn follow(inbox: &Inbox) -> (Self, tokio::task::JoinHandle<()>) {
        let me = Self::default();
        let mut rx = inbox.engine().events();
        let out = me.clone();
        let task = tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(SyncEvent::RequestAdded(r)) if r.status.is_pending() => {
                        let mut map = out.per_request.lock().unwrap();
                        *map.entry(r.remote_id).or_default() += 1;
                    }
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        out.lagged.store(true, Ordering::SeqCst)
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                }
            }
        });
        (me, task)
    }

    fn counts(&self) -> HashMap<String, u32> {
        self.per_request.lock().unwrap().clone()
    }
}

/// Polls `check` until it holds, for at most `secs`.
async fn until(what: &str, secs: u64, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Gives the engine up to 15 s (far below any safety-net reconcile) to
/// catch up; the checks that follow say what is wrong if it does not.
async fn settle(mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !done() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Lets the engine run between pushes at an uneven pace, so drops land
/// in bursts, quiet moments and mid-reconcile alike.
async fn pace(rng: &mut Rng) {
    if rng.below(3) == 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    } else {
        tokio::task::yield_now().await;
    }
}

fn local_pending(inbox: &Inbox, account: i64) -> BTreeSet<String> {
    inbox
        .store()
        .pending_for_account(account)
        .unwrap()
        .into_iter()
        .map(|r| r.remote_id)
        .collect()
}

/// Checks what a user would see after the soak against the server's truth.
fn assert_in_step(
    inbox: &Inbox,
    account: i64,
    notified: &Notified,
    server_pending: &BTreeSet<String>,
    server_resolved: &BTreeSet<String>,
    run: &str,
) {
    let local = local_pending(inbox, account);
    let missing: Vec<_> = server_pending.difference(&local).collect();
    let stale: Vec<_> = local.difference(server_pending).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "{run}: the inbox shows exactly what waits on the server, since every reconnect \
         reconciles; missing locally {missing:?}, pending locally but not on the server {stale:?}"
    );

    let mut rows: HashMap<String, u32> = HashMap::new();
    let mut status: HashMap<String, Status> = HashMap::new();
    inbox
        .store()
        .for_each_request(|r| {
            if r.account_id == account {
                *rows.entry(r.remote_id.clone()).or_default() += 1;
                status.insert(r.remote_id, r.status);
            }
            ControlFlow::Continue(())
        })
        .unwrap();
    let doubled: Vec<_> = rows.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        doubled.is_empty(),
        "{run}: a request seen again after a reconnect is the same row, not a second one: {doubled:?}"
    );
    for id in server_resolved {
        if let Some(s) = status.get(id) {
            assert_eq!(
                *s,
                Status::ResolvedElsewhere,
                "{run}: {id} was answered on the server, so history says resolved elsewhere"
            );
        }
    }

    assert!(
        !notified.lagged.load(Ordering::SeqCst),
        "{run}: the event channel kept up, so the notification counts are complete"
    );
    let counts = notified.counts();
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "{run}: a request is announced as new once, however often it is listed or replayed \
         after reconnects: {twice:?}"
    );
    let unannounced: Vec<_> = local
        .iter()
        .filter(|id| !counts.contains_key(*id))
        .collect();
    assert!(
        unannounced.is_empty(),
        "{run}: every request waiting in the inbox was announced when it arrived: {unannounced:?}"
    );
    let strangers: Vec<_> = counts.keys().filter(|id| !rows.contains_key(*id)).collect();
    assert!(
        strangers.is_empty(),
        "{run}: only stored requests are announced: {strangers:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn molecule_soak_of_pushes_and_dropped_sockets_ends_in_step_with_the_server() {
    let seed = seed("molecule");
    let run = format!("molecule soak, SOAK_SEED={seed}");
    let mut rng = Rng(seed ^ 0x6d6f_6c65);
    let started = Instant::now();

    let dir = tempfile::tempdir().unwrap();
    let inbox = Inbox::open_with(dir.path(), Arc::new(SystemClock), options()).unwrap();
    let fake = FakeMolecule::start(MoleculeConfig::with_admin_token("admin-token"))
        .await
        .unwrap();
    let root = fake.add_workspace("Release Manager", None);
    let workspaces = vec![
        fake.add_workspace("Sub-agent", Some(&root)),
        fake.add_workspace("Researcher", None),
        fake.add_workspace("Ops", None),
        root,
    ];
    let account = inbox
        .add_account(AccountInput {
            name: "prod".into(),
            platform: Platform::Molecule,
            base_url: fake.url(),
            reviewer: Some("dana".into()),
            secret: Some(Secret::new("admin-token")),
            secret_store: SecretStoreKind::File,
            // The safety-net reconcile never runs during the soak.
            settings: json!({"reconcile_secs": 3600}),
        })
        .await
        .unwrap()
        .id;
    let (notified, follower) = Notified::follow(&inbox);
    let running = inbox.run().await.unwrap();

    let mut pending: Vec<(String, String, String)> = Vec::new(); // (id, workspace, action)
    let mut resolved = BTreeSet::new();
    let mut events = 0;
    let mut drops = 0;
    let mut opened = 0;
    let points = rng.drop_points(DROPS, EVENTS);
    let mut n = 0u64;
    while events < EVENTS {
        if drops < points.len() && events >= points[drops] {
            // Drop only a live socket, so every drop is a real disconnect.
            until(
                &format!("{run}: reconnected after drop {drops}"),
                10,
                || fake.sockets_opened() > opened && fake.socket_count() > 0,
            )
            .await;
            opened = fake.sockets_opened();
            fake.drop_sockets();
            drops += 1;
        }
        let roll = rng.below(100);
        if pending.len() < 5 || (roll < 45 && pending.len() < MAX_PENDING) {
            n += 1;
            let ws = rng.pick(&workspaces).clone();
            let action = format!("deploy build {n}");
            let id = fake.create_approval(&ws, &action, "soak");
            // A child's approval is also escalated to its parent.
            events += if ws == workspaces[0] { 2 } else { 1 };
            pending.push((id, ws, action));
        } else if roll < 90 {
            let (id, _, _) = pending.swap_remove(rng.below(pending.len()));
            let verdict = if rng.below(2) == 0 {
                "approved"
            } else {
                "denied"
            };
            assert!(
                fake.decide_as(&id, verdict, "bob"),
                "{run}: {id} was pending"
            );
            resolved.insert(id);
            events += 1;
        } else {
            // The socket repeats an event of a request still pending.
            let (id, ws, action) = rng.pick(&pending).clone();
            fake.emit(
                "APPROVAL_REQUESTED",
                &ws,
                json!({"approval_id": id, "action": action, "reason": "soak", "task_id": ""}),
            );
            events += 1;
        }
        pace(&mut rng).await;
    }

    until(
        &format!("{run}: reconnected after the last drop"),
        10,
        || fake.sockets_opened() > opened && fake.socket_count() > 0,
    )
    .await;
    let server: BTreeSet<String> = pending.iter().map(|(id, _, _)| id.clone()).collect();
    for id in &server {
        assert_eq!(
            fake.approval(id).map(|a| a.status).as_deref(),
            Some("pending"),
            "{run}: the driver's record of the server"
        );
    }
    // Bounded well below the safety-net reconcile: only what reconnects
    // reconciled counts.
    settle(|| local_pending(&inbox, account) == server).await;
    assert_in_step(&inbox, account, &notified, &server, &resolved, &run);
    assert_eq!(drops, DROPS, "{run}: every planned drop happened");
    assert!(
        fake.sockets_opened() > DROPS,
        "{run}: the engine reconnected after every drop"
    );
    eprintln!(
        "{run}: {events} events, {drops} disconnects, {} requests ({} still pending), {:.1} s",
        n,
        server.len(),
        started.elapsed().as_secs_f64()
    );
    running.stop().await;
    follower.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opencode_soak_of_events_and_cut_streams_ends_in_step_with_the_server() {
    let seed = seed("opencode");
    let run = format!("opencode soak, SOAK_SEED={seed}");
    let mut rng = Rng(seed ^ 0x6f70_656e);
    let started = Instant::now();

    let dir = tempfile::tempdir().unwrap();
    let inbox = Inbox::open_with(dir.path(), Arc::new(SystemClock), options()).unwrap();
    let fake = FakeOpenCode::start(OpenCodeConfig::default())
        .await
        .unwrap();
    let account = inbox
        .add_account(AccountInput {
            name: "oc".into(),
            platform: Platform::Opencode,
            base_url: fake.url(),
            reviewer: Some("dana".into()),
            secret: None,
            secret_store: SecretStoreKind::File,
            settings: json!({}),
        })
        .await
        .unwrap()
        .id;
    let (notified, follower) = Notified::follow(&inbox);
    let running = inbox.run().await.unwrap();
    let site = "/home/me/site".to_owned();
    let dirs = [fake.cwd(), site.clone()];
    until(&format!("{run}: connected"), 10, || fake.open_streams() > 0).await;
    // The second project is learnt from its first event, before the soak.
    let first = fake.ask_bash(&site, "ses_0", "ls").unwrap();
    until(&format!("{run}: the project is known"), 10, || {
        local_pending(&inbox, account).contains(&first)
    })
    .await;
    let mut events = 1;

    let server_pending = |fake: &FakeOpenCode| -> Vec<(String, String)> {
        dirs.iter()
            .flat_map(|d| {
                fake.pending(d)
                    .into_iter()
                    .map(|r| (r["id"].as_str().unwrap().to_owned(), d.clone()))
            })
            .collect()
    };
    let mut created = BTreeSet::from([first]);
    let mut drops = 0;
    let mut opened = 0;
    let points = rng.drop_points(DROPS, EVENTS);
    let mut n = 0u64;
    while events < EVENTS {
        if drops < points.len() && events >= points[drops] {
            until(
                &format!("{run}: reconnected after drop {drops}"),
                10,
                || fake.streams_opened() > opened && fake.open_streams() > 0,
            )
            .await;
            opened = fake.streams_opened();
            // Half the drops end the stream, half cut it mid-frame.
            if rng.below(2) == 0 {
                fake.drop_streams();
            } else {
                fake.cut_streams();
            }
            drops += 1;
        }
        let pending = server_pending(&fake);
        let roll = rng.below(100);
        if pending.len() < 5 || (roll < 45 && pending.len() < MAX_PENDING) {
            n += 1;
            let d = rng.pick(&dirs).clone();
            let session = format!("ses_{}", rng.below(8));
            if let Some(id) = fake.ask_bash(&d, &session, &format!("tool{n} --run")) {
                created.insert(id);
                events += 1;
            }
        } else if roll < 90 {
            let (id, d) = rng.pick(&pending).clone();
            // "reject" also rejects the rest of the session, "always"
            // releases what its pattern now allows: one event per request.
            let reply = *rng.pick(&["once", "once", "once", "always", "reject"]);
            assert!(
                fake.reply_elsewhere(&d, &id, reply),
                "{run}: {id} was pending"
            );
            events += pending.len() - server_pending(&fake).len();
        } else {
            // The stream repeats the ask of a request still pending.
            let (id, d) = rng.pick(&pending).clone();
            assert!(
                fake.reask_same_id(&d, &id, json!({})),
                "{run}: {id} was pending"
            );
            events += 1;
        }
        pace(&mut rng).await;
    }

    until(
        &format!("{run}: reconnected after the last drop"),
        10,
        || fake.streams_opened() > opened && fake.open_streams() > 0,
    )
    .await;
    let server: BTreeSet<String> = server_pending(&fake)
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let resolved: BTreeSet<String> = created.difference(&server).cloned().collect();
    settle(|| local_pending(&inbox, account) == server).await;
    assert_in_step(&inbox, account, &notified, &server, &resolved, &run);
    assert_eq!(drops, DROPS, "{run}: every planned drop happened");
    assert!(
        fake.streams_opened() > DROPS,
        "{run}: the engine reconnected after every drop"
    );
    eprintln!(
        "{run}: {events} events, {drops} disconnects, {n} asks ({} still pending), {:.1} s",
        server.len(),
        started.elapsed().as_secs_f64()
    );
    running.stop().await;
    follower.abort();
}
