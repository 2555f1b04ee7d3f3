//! End to end through the real desktop app, as a reviewer uses it: a
//! private X display and D-Bus (see `harness`), the fake Molecule AI server,
//! and the built `countersign-desktop` driven over WebDriver.
//!
//! Set `COUNTERSIGN_SHOTS=docs/screenshots` to save the views as PNGs.

mod harness;
mod notification_server;

use countersign_fakes::molecule::{Config, FakeMolecule};
use harness::Desktop;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const TOKEN: &str = "e2e-admin-token-7f3a";
const SECOND: Duration = Duration::from_secs(1);
const PATIENT: Duration = Duration::from_secs(20);

/// True once the detail pane shows the highlighted row's request.
const DETAIL_FOLLOWS: &str = "document.querySelector('.current .row-title')?.textContent === document.querySelector('[data-testid=detail-title]')?.textContent";

fn rows(kind: &str) -> String {
    format!("document.querySelectorAll('[data-testid={kind}]').length")
}

/// A new user adds an account in the form: picks the platform, fills the
/// fields (`data-testid=account-<name>` → value), optionally takes a
/// screenshot, saves, and waits until an account's health line `t`
/// satisfies the JavaScript predicate `healthy`.
async fn add_account(
    app: &Desktop,
    platform: &str,
    fields: &[(&str, &str)],
    shot: Option<&str>,
    what: &str,
    healthy: &str,
) {
    app.until(
        "the account form",
        "document.querySelector('[data-testid=account-form]')",
        PATIENT,
    )
    .await;
    app.click(&format!(
        "[data-testid=account-platform] option[value={platform}]"
    ))
    .await;
    for (name, value) in fields {
        app.type_into(&format!("[data-testid=account-{name}]"), value)
            .await;
    }
    if let Some(name) = shot {
        app.shot(name).await;
    }
    app.click("[data-testid=account-save]").await;
    app.until(
        what,
        &format!(
            "[...document.querySelectorAll('[data-testid=account-health]')].some(e => {{ const t = e.textContent; return {healthy}; }})"
        ),
        PATIENT,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reviewer_triages_live_requests_from_the_app() {
    let fake = FakeMolecule::start(Config::with_admin_token(TOKEN))
        .await
        .unwrap();
    let ws = fake.add_workspace("Release Manager", None);
    let app = Desktop::launch(|_| {}).await;

    // A new user lands on the account form and adds the fake platform.
    add_account(
        &app,
        "molecule",
        &[
            ("name", "prod"),
            ("url", fake.url().as_str()),
            ("token", TOKEN),
            ("reviewer", "dana"),
        ],
        None,
        "the account is connected",
        "t === 'connected'",
    )
    .await;
    let account_file = std::fs::read(app.data.path().join("countersign.sqlite3")).unwrap();
    assert!(
        !account_file
            .windows(TOKEN.len())
            .any(|w| w == TOKEN.as_bytes()),
        "the token went to the keychain, not the database"
    );
    assert!(
        !app.data.path().join("secrets.json").exists(),
        "no file store was needed"
    );

    // A request created on the platform appears without any user action.
    app.keys("gi").await;
    app.until(
        "the inbox",
        "document.querySelector('[data-testid=inbox-list]')",
        PATIENT,
    )
    .await;
    let hostile_action = "<img src=x onerror=\"window.__pwned=1\">";
    let hostile_reason = "<script>window.__pwned=2</script> please";
    let hostile_task = "<img src=y onerror=window.__pwned=3>TASK-SECRET-ARG";
    let created = Instant::now();
    let first = fake.create_task_approval(&ws, hostile_action, hostile_reason, hostile_task);
    app.count("the request shows", "request-row", 1).await;
    let latency = created.elapsed();
    assert!(
        latency < SECOND,
        "a pushed request must show within a second; took {latency:?}"
    );

    // Agent text is text: shown literally, never run or parsed as HTML.
    app.until(
        "its detail",
        "document.querySelector('[data-testid=detail-title]')",
        PATIENT,
    )
    .await;
    let shown = app
        .js(
            "return [document.querySelector('[data-testid=row-title]').textContent,
                     document.querySelector('[data-testid=detail-title]').textContent,
                     document.querySelector('[data-testid=detail-reason]').textContent,
                     document.querySelector('[data-testid=args-tree]').textContent]",
        )
        .await;
    assert_eq!(
        shown[0], hostile_action,
        "the row shows the action as typed"
    );
    assert_eq!(shown[1], hostile_action, "so does the detail title");
    assert_eq!(shown[2], hostile_reason, "and the reason");
    assert!(
        shown[3].as_str().unwrap().contains(hostile_task),
        "the arguments tree holds the literal task id"
    );
    let injected = app
        .js("return {pwned: window.__pwned ?? null,
                     foreignImages: document.querySelectorAll('img:not(.logo)').length,
                     scripts: document.querySelectorAll('script').length}")
        .await;
    assert_eq!(
        injected,
        json!({"pwned": null, "foreignImages": 0, "scripts": 1}),
        "nothing the agent wrote ran"
    );
    app.click("[data-testid=toggle-raw]").await;
    let raw = app
        .js("return document.querySelector('[data-testid=raw-json]').textContent")
        .await;
    assert!(
        raw.as_str().unwrap().contains(hostile_task),
        "the raw JSON is shown as text too"
    );

    // The tray shows what the inbox shows.
    let status = app.invoke("status").await;
    assert_eq!(status["pending"], 1);
    assert_eq!(
        status["tray"], "Countersign — 1 pending request",
        "the tray count equals the pending count"
    );

    // Approve with the keyboard; the decision reaches the platform.
    app.keys("a").await;
    let mut waited = 0;
    while fake.received_decisions().is_empty() && waited < 200 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += 1;
    }
    let received = fake.received_decisions();
    assert_eq!(received.len(), 1, "pressing `a` sent one decision");
    assert_eq!(received[0].approval_id, first);
    assert_eq!(received[0].workspace_id, ws);
    assert_eq!(
        received[0].body,
        json!({"decision": "approved", "decided_by": "dana"})
    );
    app.count("the inbox is empty", "request-row", 0).await;

    // It moved to history.
    app.keys("gh").await;
    app.count("history lists it", "history-row", 1).await;
    let entry = app
        .js("return document.querySelector('[data-testid=history-row]').textContent")
        .await;
    assert!(
        entry.as_str().unwrap().contains("approved"),
        "history says approved: {entry}"
    );

    // A request decided on the platform leaves the inbox by itself, and its
    // notification closes.
    app.keys("gi").await;
    let second = fake.create_approval(&ws, "rotate prod db creds", "quarterly");
    app.count("the second request shows", "request-row", 1)
        .await;
    let notified = app.bus();
    assert!(
        notified.contains("Release Manager: rotate prod db creds"),
        "a notification names the agent and the action"
    );
    assert!(
        !notified.contains("TASK-SECRET-ARG"),
        "argument values never go into notifications (they reach lock screens)"
    );
    // Clicking the notification (through dunst, as a person would) opens
    // the app on its request, whatever view was showing.
    app.keys("gh").await;
    app.until(
        "history shows",
        "document.querySelector('[data-testid=history-list]')",
        PATIENT,
    )
    .await;
    let clicked = app
        .command("dunstctl")
        .args(["action", "0"])
        .status()
        .expect("dunstctl");
    assert!(clicked.success(), "dunst took the click");
    app.until(
        "the clicked request is open",
        "document.querySelector('[data-testid=inbox-list]') && document.querySelector('[data-testid=detail-title]')?.textContent === 'rotate prod db creds'",
        PATIENT,
    )
    .await;
    fake.decide_as(&second, "denied", "bob");
    app.count("it leaves the inbox", "request-row", 0).await;
    let closed_at = Instant::now();
    while !app.bus().contains("CloseNotification") && closed_at.elapsed() < Duration::from_secs(10)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let bus = app.bus();
    assert!(
        bus.contains("member=Notify"),
        "notifications went over D-Bus:\n{bus}"
    );
    assert!(
        bus.contains("CloseNotification"),
        "the notification closed once resolved elsewhere:\n{bus}"
    );
    let status = app.invoke("status").await;
    assert_eq!(status["pending"], 0);
    assert_eq!(status["tray"], "Countersign — nothing pending");

    // Another process (the CLI) decides on the same data dir: the app shows
    // it at once and its engine delivers it from the shared outbox.
    let third = fake.create_approval(&ws, "scale workers to 40", "queue backlog");
    app.count("the third request shows", "request-row", 1).await;
    let other =
        countersign_store::Store::open(&app.data.path().join("countersign.sqlite3")).unwrap();
    let pending = other.pending(&Default::default()).unwrap();
    other
        .record_decision(&countersign_model::DecisionDraft {
            request_id: pending[0].id,
            outcome: countersign_model::Outcome::Deny,
            comment: Some("from the terminal".into()),
            edited_arguments: None,
            response: None,
            decided_by: "dana".into(),
            decided_at: chrono::Utc::now(),
        })
        .unwrap();
    app.until(
        "the app shows the outside decision",
        &format!("{} === 0", rows("request-row")),
        Duration::from_secs(3),
    )
    .await;
    let sent = Instant::now();
    while fake.approval(&third).unwrap().status == "pending" && sent.elapsed() < PATIENT {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        fake.approval(&third).unwrap().status,
        "denied",
        "the app delivered the other process's decision"
    );

    // Activity: agent messages reported by the platform.
    fake.emit(
        "AGENT_MESSAGE",
        &ws,
        json!({"message": "Release v2.4.0 is live", "name": "Release Manager"}),
    );
    app.keys("ga").await;
    app.until(
        "the activity feed",
        &format!("{} >= 1", rows("activity-row")),
        PATIENT,
    )
    .await;

    // The shortcuts list.
    app.keys("?").await;
    app.until(
        "the shortcuts dialog",
        "document.querySelector('[data-testid=shortcuts]')",
        PATIENT,
    )
    .await;
    app.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_pending_requests_render_as_a_window_of_rows() {
    const N: usize = 10_000;
    let app = Desktop::launch(|dir| seed(dir, N)).await;
    app.until(
        "the inbox",
        &format!("{} > 0", rows("request-row")),
        PATIENT,
    )
    .await;
    let count = app
        .js("return document.querySelector('[data-testid=count-inbox]').textContent")
        .await;
    assert_eq!(
        count,
        Value::String(N.to_string()),
        "all of them are pending"
    );
    let in_dom = app
        .js(&format!("return {}", rows("request-row")))
        .await
        .as_u64()
        .unwrap();
    assert!(
        in_dom < 100,
        "only a window of rows is in the DOM, not {N}: {in_dom}"
    );

    app.js("const l = document.querySelector('[data-testid=inbox-list]'); l.scrollTop = l.scrollHeight; return 0").await;
    let last = app
        .until(
            "the last request renders after scrolling",
            "[...document.querySelectorAll('[data-testid=row-title]')].map(e => e.textContent).find(t => t === 'request 10000')",
            PATIENT,
        )
        .await;
    assert_eq!(last, "request 10000");
    let in_dom = app
        .js(&format!("return {}", rows("request-row")))
        .await
        .as_u64()
        .unwrap();
    assert!(in_dom < 100, "still a window after scrolling: {in_dom}");
    for _ in 0..5 {
        app.keys("k").await;
    }
    app.until(
        "the detail follows the keyboard",
        "document.querySelector('[data-testid=detail-title]')",
        PATIENT,
    )
    .await;
    app.close().await;
}

/// Fills a data dir with one account (pointing nowhere) and `n` pending
/// requests, as if synced earlier.
fn seed(dir: &std::path::Path, n: usize) {
    use countersign_model::{
        AllowedDecision, Kind, NewAccount, ObservedRequest, Platform, SecretStoreKind,
    };
    let store = countersign_store::Store::open(&dir.join("countersign.sqlite3")).unwrap();
    let now = chrono::Utc::now();
    let account = store
        .add_account(
            &NewAccount {
                name: "big".into(),
                platform: Platform::Molecule,
                base_url: "http://127.0.0.1:9".into(),
                reviewer: "dana".into(),
                secret_store: SecretStoreKind::None,
                settings: json!({}),
            },
            "none",
            now,
        )
        .unwrap();
    for i in 1..=n {
        let created = now - chrono::Duration::seconds((n - i) as i64);
        store
            .upsert_request(
                account.id,
                &ObservedRequest {
                    remote_id: format!("r{i}"),
                    route: json!({}),
                    kind: Kind::Approval,
                    title: format!("request {i}"),
                    action: "deploy".into(),
                    arguments: json!({"n": i}),
                    description: None,
                    agent: Some(format!("agent {}", i % 7)),
                    tier: None,
                    created_at: created,
                    deadline: None,
                    allowed_decisions: vec![AllowedDecision::Approve, AllowedDecision::Deny],
                    link: None,
                    extra: Default::default(),
                    raw: json!({"n": i}),
                },
                now,
            )
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_history_rows_page_in_as_the_reviewer_scrolls() {
    const N: i64 = 100_000;
    let now = chrono::Utc::now();
    let app = Desktop::launch(|dir| seed_history(dir, N, now)).await;
    let opened = Instant::now();
    app.keys("gh").await;
    app.until(
        "history rows",
        &format!("{} > 0", rows("history-row")),
        PATIENT,
    )
    .await;
    let shown_in = opened.elapsed();
    assert!(
        shown_in < SECOND,
        "history must show rows within a second of opening it; took {shown_in:?}"
    );
    app.until(
        "the counts",
        "document.querySelector('[data-testid=history-total]')?.textContent === '100,000 in history'",
        PATIENT,
    )
    .await;
    let newest = app
        .js("return document.querySelector('[data-testid=history-title]').textContent")
        .await;
    assert_eq!(newest, "rollback build 100000", "newest first");

    // Far down: scrolling loads page after page until an old row shows.
    let far = "deploy build 98001";
    let scrolled = Instant::now();
    loop {
        let found = app
            .js(&format!(
                "const l = document.querySelector('[data-testid=history-list]');
                 const hit = [...document.querySelectorAll('[data-testid=history-title]')].some(e => e.textContent === '{far}');
                 if (!hit) l.scrollTop = l.scrollHeight;
                 return hit"
            ))
            .await;
        if found == json!(true) {
            break;
        }
        assert!(
            scrolled.elapsed() < Duration::from_secs(60),
            "scrolling never reached {far}"
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let loaded = app
        .js("return document.querySelector('[data-testid=history-loaded]').textContent")
        .await;
    let loaded: i64 = loaded
        .as_str()
        .unwrap()
        .trim_end_matches(" loaded")
        .replace(',', "")
        .parse()
        .unwrap();
    assert!(
        (2_000..N).contains(&loaded),
        "pages loaded as the list scrolled, not all at once: {loaded}"
    );
    let in_dom = app
        .js(&format!("return {}", rows("history-row")))
        .await
        .as_u64()
        .unwrap();
    assert!(
        in_dom < 200,
        "only a window of rows is in the DOM, not {loaded}: {in_dom}"
    );
    let held: i64 = app
        .js("return document.querySelector('[data-testid=history-loaded]').dataset.held")
        .await
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        held <= 9 * 200 && held < loaded,
        "memory holds a window of pages around the view, not all {loaded} rows listed: {held}"
    );
    // Back at the top, the dropped first page is fetched again.
    app.js("document.querySelector('[data-testid=history-list]').scrollTop = 0")
        .await;
    app.until(
        "the newest row again",
        "document.querySelector('[data-testid=history-title]')?.textContent === 'rollback build 100000'",
        PATIENT,
    )
    .await;
    app.keys("j").await;
    app.until("the detail follows", DETAIL_FOLLOWS, PATIENT)
        .await;

    // A "to" date jumps to that day: rows ended on it or before.
    let day = (now - chrono::Duration::days(300)).date_naive();
    let day_end = day.succ_opt().unwrap().and_hms_opt(0, 0, 0).unwrap();
    app.js(&format!(
        "const d = document.querySelector('[data-testid=history-to]');
         d.value = '{day}'; d.dispatchEvent(new Event('change')); return 0"
    ))
    .await;
    app.until(
        "history from that day down",
        &format!(
            "(() => {{ const t = [...document.querySelectorAll('[data-testid=history-when]')].map(e => e.dataset.ended);
                 return t.length > 0 && t.every(x => new Date(x) < new Date({y}, {m}, {d})); }})()",
            y = day_end.format("%Y"),
            m = day_end.format("%m").to_string().parse::<u32>().unwrap() - 1,
            d = day_end.format("%d").to_string().parse::<u32>().unwrap(),
        ),
        PATIENT,
    )
    .await;
    let first = app
        .js("return new Date(document.querySelector('[data-testid=history-when]').dataset.ended).getTime()")
        .await
        .as_f64()
        .unwrap();
    let day_start = day
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp_millis() as f64;
    assert!(
        first > day_start - 2.0 * 86_400_000.0,
        "the first row is from that day (its end in the local zone), not far older: {first}"
    );

    // Search: matched words marked in the titles, as text.
    app.type_into("[data-testid=history-search]", "rollback")
        .await;
    app.until(
        "marked search hits",
        "[...document.querySelectorAll('[data-testid=history-title] mark')].length > 0 && [...document.querySelectorAll('[data-testid=history-title] mark')].every(m => m.textContent.toLowerCase() === 'rollback')",
        PATIENT,
    )
    .await;
    app.shot("history-big").await;

    app.keys("gs").await;
    let size = app
        .until(
            "the store size",
            "(() => { const t = document.querySelector('[data-testid=store-size]')?.textContent ?? ''; return / MB in /.test(t) && t; })()",
            PATIENT,
        )
        .await;
    assert!(
        size.as_str().unwrap().starts_with("Local store: "),
        "{size}"
    );
    let status = app.invoke("status").await;
    assert!(
        status["store_bytes"].as_u64().unwrap() > 1_000_000,
        "the store's size is reported: {status}"
    );
    app.close().await;
}

/// One account and `n` ended requests, one an hour back from `now`
/// (request `n` newest), written with SQL in one transaction: the schema's
/// triggers set when each ended and the history counter. Every tenth is a
/// rollback.
fn seed_history(dir: &std::path::Path, n: i64, now: chrono::DateTime<chrono::Utc>) {
    use countersign_model::{NewAccount, Platform, SecretStoreKind};
    let path = dir.join("countersign.sqlite3");
    let store = countersign_store::Store::open(&path).unwrap();
    let account = store
        .add_account(
            &NewAccount {
                name: "archive".into(),
                platform: Platform::Molecule,
                base_url: "http://127.0.0.1:9".into(),
                reviewer: "dana".into(),
                secret_store: SecretStoreKind::None,
                settings: json!({}),
            },
            "none",
            now,
        )
        .unwrap();
    drop(store);
    let mut conn = rusqlite::Connection::open(&path).unwrap();
    let tx = conn.transaction().unwrap();
    {
        let mut insert = tx
            .prepare(
                "INSERT INTO requests (account_id, remote_id, route, kind, title, action, arguments,
                    agent, created_at, allowed_decisions, status, outcome, decided_by, decided_at,
                    raw, first_seen_at, updated_at)
                 VALUES (?1, ?2, '{}', 'approval', ?3, ?4, ?5, ?6, ?7, '[\"approve\",\"deny\"]',
                    ?8, ?9, 'dana', ?10, '{}', ?7, ?10)",
            )
            .unwrap();
        for i in 1..=n {
            let ended = now - chrono::Duration::hours(n - i);
            let action = if i % 10 == 0 { "rollback" } else { "deploy" };
            let (status, outcome) = if i % 3 == 0 {
                ("denied", "deny")
            } else {
                ("approved", "approve")
            };
            insert
                .execute(rusqlite::params![
                    account.id,
                    format!("h{i}"),
                    format!("{action} build {i}"),
                    action,
                    format!("{{\"build\":{i}}}"),
                    format!("agent {}", i % 7),
                    ended - chrono::Duration::minutes(5),
                    status,
                    outcome,
                    ended,
                ])
                .unwrap();
        }
    }
    tx.commit().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_view_shows_what_the_reviewer_has() {
    let fake = FakeMolecule::start(Config::with_admin_token(TOKEN))
        .await
        .unwrap();
    let release = fake.add_workspace("Release Manager", None);
    let data = fake.add_workspace("Data Pipeline", None);
    let support = fake.add_workspace("Support Agent", None);
    let billing = fake.add_workspace("Billing Sub-agent", Some(&support));
    let url = fake.url();
    let app = Desktop::launch(|dir| {
        let store = countersign_store::Store::open(&dir.join("countersign.sqlite3")).unwrap();
        let secrets = countersign_secrets::Secrets::new(dir);
        let file = countersign_model::SecretStoreKind::File;
        for (name, url) in [
            ("acme-prod", url.as_str()),
            ("staging", "http://127.0.0.1:9"),
        ] {
            secrets
                .put(file, name, &countersign_model::Secret::new(TOKEN))
                .unwrap();
            store
                .add_account(
                    &countersign_model::NewAccount {
                        name: name.into(),
                        platform: countersign_model::Platform::Molecule,
                        base_url: url.into(),
                        reviewer: "dana".into(),
                        secret_store: file,
                        settings: json!({}),
                    },
                    name,
                    chrono::Utc::now(),
                )
                .unwrap();
        }
    })
    .await;
    // Molecule replays nothing: events sent before the socket is up are only
    // recovered as requests by reconciling, so wait for the live connection.
    app.until(
        "acme-prod is connected",
        "window.__TAURI__.core.invoke('accounts').then(a => a.some(x => x.name === 'acme-prod' && x.state === 'connected'))",
        PATIENT,
    )
    .await;
    let asked = [
        (
            &release,
            "push tag v2.4.0 to production",
            "CI green on main; 412 tests pass; changelog reviewed",
            "REL-311",
        ),
        (
            &data,
            "DROP TABLE staging_events_2025",
            "Free 1.2 TB; table unused since March",
            "DATA-77",
        ),
        (
            &billing,
            "refund $1,240.00 to customer #88121",
            "Duplicate charge confirmed by the payment processor",
            "SUP-5120",
        ),
        (
            &support,
            "send apology email to 3,402 customers",
            "Outage notice drafted by the agent",
            "SUP-5121",
        ),
        (
            &data,
            "rotate prod db credentials",
            "Quarterly rotation (OPS-12)",
            "OPS-12",
        ),
    ];
    let mut ids = Vec::new();
    for (ws, action, reason, task) in asked {
        ids.push(fake.create_task_approval(ws, action, reason, task));
    }
    app.count("the inbox lists them", "request-row", 5).await;

    // History: one approved here, one decided by someone else.
    app.keys("a").await;
    app.count("one decided", "request-row", 4).await;
    assert_eq!(
        fake.approval(&ids[0]).unwrap().status,
        "approved",
        "the first one, approved with `a`"
    );
    fake.decide_as(&ids[4], "denied", "bob (canvas)");
    app.count("one resolved elsewhere", "request-row", 3).await;
    fake.create_task_approval(
        &release,
        "deploy hotfix 2.4.1",
        "Fixes the login redirect loop",
        "REL-312",
    );
    app.count("a new one arrives", "request-row", 4).await;
    app.keys("jj").await;
    app.until("the detail of the third", DETAIL_FOLLOWS, PATIENT)
        .await;
    app.shot("inbox").await;

    fake.emit(
        "AGENT_MESSAGE",
        &release,
        json!({"message": "Release v2.4.0 is live on 3 regions", "name": "Release Manager"}),
    );
    fake.emit(
        "WORKSPACE_DEGRADED",
        &data,
        json!({"error_rate": 0.31, "sample_error": "timeout talking to warehouse"}),
    );
    fake.emit(
        "DELEGATION_FAILED",
        &support,
        json!({"delegation_id": "d-9", "target_id": billing, "error": "sub-agent offline"}),
    );
    app.keys("ga").await;
    // Three events, plus the escalation of the sub-agent's refund request.
    app.count("the activity feed", "activity-row", 4).await;
    app.shot("activity").await;

    app.keys("gh").await;
    app.count("history", "history-row", 2).await;
    let history = app
        .js("return document.querySelector('[data-testid=history-list]').textContent")
        .await;
    let history = history.as_str().unwrap();
    assert!(history.contains("approved"), "{history}");
    assert!(
        history.contains("resolved elsewhere") && history.contains("by bob (canvas)"),
        "who decided elsewhere is shown: {history}"
    );
    app.keys("j").await;
    app.until("history detail", DETAIL_FOLLOWS, PATIENT).await;
    app.shot("history").await;

    app.keys("gs").await;
    app.until(
        "the broken account explains itself",
        "[...document.querySelectorAll('[data-testid=account-health]')].some(e => /backing off|connect/.test(e.textContent) && e.textContent !== 'connected')",
        PATIENT,
    )
    .await;
    let cards = app.js(&format!("return {}", rows("account-card"))).await;
    assert_eq!(
        cards, 2,
        "both accounts are listed; one broken account never hides the other"
    );
    app.shot("accounts").await;

    app.keys("gi").await;
    app.count("back in the inbox", "request-row", 4).await;
    app.keys("j").await;
    app.until("a detail", DETAIL_FOLLOWS, PATIENT).await;
    app.click("[data-testid=toggle-raw]").await;
    app.shot("detail").await;
    app.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clawith_request_is_approved_from_the_app_and_l2_activity_shows() {
    use countersign_fakes::clawith::{Config as ClawithConfig, FakeClawith};
    let fake = FakeClawith::start(ClawithConfig::default()).await.unwrap();
    let app = Desktop::launch(|_| {}).await;

    add_account(
        &app,
        "clawith",
        &[
            ("name", "claw"),
            ("url", fake.url().as_str()),
            ("login", "dana@example.org"),
            ("token", "hunter22"),
        ],
        Some("clawith-form"),
        "the account polls",
        "t === 'polling'",
    )
    .await;

    app.keys("gi").await;
    app.count("both L3 approvals", "request-row", 2).await;
    app.until("the first one's detail", DETAIL_FOLLOWS, PATIENT)
        .await;
    let title = app
        .js("return document.querySelector('[data-testid=detail-title]').textContent")
        .await;
    app.shot("clawith-detail").await;
    app.keys("a").await;
    app.count("it left the inbox", "request-row", 1).await;
    let received = fake.received_resolves();
    assert_eq!(received.len(), 1, "one resolve reached Clawith");
    assert_eq!(received[0].body, json!({"action": "approve"}));
    let approved = fake.approval(&received[0].approval_id).unwrap();
    assert_eq!(approved.status, "approved");
    let path = approved.details["args"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| {
            approved.details["args"]["path"]
                .as_str()
                .unwrap()
                .to_owned()
        });
    assert!(
        path.contains(title.as_str().unwrap().rsplit(' ').next().unwrap()),
        "the request approved is the one shown: {title} / {path}"
    );

    app.keys("ga").await;
    app.until(
        "the L2 item",
        "[...document.querySelectorAll('[data-testid=activity-row]')].some(e => e.textContent.includes('[Archivist] executed: write_workspace_files'))",
        PATIENT,
    )
    .await;
    app.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_harn_approval_and_question_are_answered_from_the_app() {
    use countersign_fakes::harn::{ApprovalOptions, FakeHarnLog, WaitOutcome};
    let project = tempfile::tempdir().unwrap();
    let log = FakeHarnLog::create(project.path());
    let approval = log.request_approval(
        "deploy production",
        &ApprovalOptions {
            args: Some(json!({"environment": "prod", "service": "api"})),
            reviewers: vec!["alice".into(), "bob".into()],
            capabilities: vec!["deploy.production".into()],
            ..Default::default()
        },
    );
    let question = log.ask_user(
        "How many replicas?",
        Some(json!({"type": "integer"})),
        None,
        std::time::Duration::from_secs(3600),
    );
    let (approval_waiter, question_waiter) = (log.wait(&approval), log.wait(&question));
    let app = Desktop::launch(|_| {}).await;

    add_account(
        &app,
        "harn",
        &[
            ("name", "agents"),
            ("url", project.path().to_str().unwrap()),
            ("reviewer", "alice"),
        ],
        None,
        "the account watches the log",
        "t === 'connected'",
    )
    .await;

    app.keys("gi").await;
    app.count("the approval and the question", "request-row", 2)
        .await;
    app.js("[...document.querySelectorAll('[data-testid=request-row]')].find(e => e.textContent.includes('How many replicas')).click(); return true")
        .await;
    app.until(
        "the answer form",
        "document.querySelector('[data-testid=answer-input]')",
        PATIENT,
    )
    .await;
    app.type_into("[data-testid=answer-input]", "3").await;
    app.shot("harn-question").await;
    app.click("[data-testid=answer-send]").await;
    app.count("the question left the inbox", "request-row", 1)
        .await;
    let (got, _) = question_waiter
        .result(std::time::Duration::from_secs(5))
        .expect("the waiting script got the answer");
    assert_eq!(
        got,
        WaitOutcome::Completed(json!(3)),
        "the integer answer, typed as a number"
    );

    app.until("the approval's detail", DETAIL_FOLLOWS, PATIENT)
        .await;
    app.until(
        "its capability is shown",
        "document.querySelector('[data-testid=detail]').textContent.includes('deploy.production')",
        PATIENT,
    )
    .await;
    app.shot("harn-approval").await;
    app.keys("a").await;
    app.count("the approval left the inbox", "request-row", 0)
        .await;
    let (got, _) = approval_waiter
        .result(std::time::Duration::from_secs(5))
        .expect("the waiting script was released");
    let WaitOutcome::Completed(record) = got else {
        panic!("approved, got {got:?}")
    };
    assert_eq!(
        record["reviewers"],
        json!(["alice"]),
        "approved as the account's reviewer"
    );
    countersign_fakes::harn::verify_log(log.path()).expect("the app's rows carry valid provenance");
    app.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_surfsense_thread_with_two_asks_is_decided_from_the_app_in_one_resume() {
    use countersign_fakes::surfsense::{Config as SurfConfig, FakeSurfSense, ResumeOutcome};
    let fake = FakeSurfSense::start(SurfConfig::default()).await.unwrap();
    let app = Desktop::launch(|_| {}).await;

    add_account(
        &app,
        "surfsense",
        &[
            ("name", "surf"),
            ("url", fake.url().as_str()),
            ("login", fake.seed.email.as_str()),
            ("token", fake.seed.password.as_str()),
        ],
        None,
        "the account polls and says what it watches",
        "t.startsWith('polling') && t.includes('watching 6 threads in 2 workspaces')",
    )
    .await;
    app.shot("surfsense-account").await;

    app.keys("gi").await;
    app.count("every ask of every thread", "request-row", 6)
        .await;
    // Which tool each ask of the thread stands for, by the id SurfSense
    // routes decisions with (its listing order is not the stream's).
    let tool_of: std::collections::HashMap<String, String> = fake
        .pending(fake.seed.drafts_thread)
        .iter()
        .map(|v| {
            (
                v["tool_call_id"].as_str().unwrap_or_default().to_owned(),
                v["action_requests"][0]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect();
    let open = |needle: &str| {
        format!("const row = [...document.querySelectorAll('[data-testid=request-row]')].find(e => e.textContent.includes('{needle}')); row.click(); return true")
    };
    app.js(&open("rm /documents/archive")).await;
    app.until(
        "the thread notice",
        "document.querySelector('[data-testid=detail-title]')?.textContent.startsWith('rm ') && !!document.querySelector('[data-testid=group-note]')",
        PATIENT,
    )
    .await;
    app.until(
        "the whole-thread buttons and the comment notice",
        "!!document.querySelector('[data-testid=group-approve]') && !!document.querySelector('[data-testid=comment-not-sent]')",
        PATIENT,
    )
    .await;
    app.shot("surfsense-first-ask").await;
    app.keys("d").await;
    app.count("the denied ask left the inbox", "request-row", 5)
        .await;
    assert!(
        fake.received_resumes().is_empty(),
        "the first decision is held: the thread resumes only with both"
    );

    app.js(&open("send_gmail_email")).await;
    app.until(
        "the second ask says one of two is decided",
        "document.querySelector('[data-testid=detail-title]')?.textContent.startsWith('send_gmail_email') && !!document.querySelector('[data-testid=group-note]')?.textContent.includes('1 of 2 decided')",
        PATIENT,
    )
    .await;
    app.shot("surfsense-second-ask").await;
    app.keys("a").await;
    app.count("both asks are answered", "request-row", 4).await;
    let resumes = fake.received_resumes();
    assert_eq!(resumes.len(), 1, "one resume carried both decisions");
    assert_eq!(resumes[0].outcome, ResumeOutcome::Applied);
    let mut decided: Vec<(String, String)> = resumes[0].body["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let id = d["tool_call_id"].as_str().unwrap_or_default();
            (
                tool_of
                    .get(id)
                    .cloned()
                    .unwrap_or_else(|| format!("unknown {id}")),
                d["type"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    decided.sort();
    assert_eq!(
        decided,
        vec![
            ("rm".to_owned(), "reject".to_owned()),
            ("send_gmail_email".to_owned(), "approve".to_owned())
        ],
        "each decision carries the id of the ask it was made on: the deny for rm, the approval for the e-mail"
    );
    assert!(fake.pending(fake.seed.drafts_thread).is_empty());
    app.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_opencode_permission_is_denied_with_feedback_from_the_app() {
    use countersign_fakes::opencode::{Config as OcConfig, FakeOpenCode};
    let fake = FakeOpenCode::start(OcConfig {
        password: Some("oc-pass".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    let app = Desktop::launch(|_| {}).await;
    add_account(
        &app,
        "opencode",
        &[
            ("name", "coder"),
            ("url", fake.url().as_str()),
            ("token", "oc-pass"),
        ],
        None,
        "the account follows the event stream",
        "t.startsWith('connected')",
    )
    .await;

    app.keys("gi").await;
    let id = fake
        .ask_bash("/home/me/site", "ses_e2e", "rm -rf node_modules")
        .unwrap();
    app.count("the ask arrives live", "request-row", 1).await;
    app.until("its detail", DETAIL_FOLLOWS, PATIENT).await;
    app.until(
        "the always hint names the pattern",
        "!!document.querySelector('[data-testid=always-hint]')?.textContent.includes('rm *')",
        PATIENT,
    )
    .await;
    app.type_into("[data-testid=comment]", "Use npm ci instead.")
        .await;
    app.shot("opencode-detail").await;
    let second = fake
        .ask_bash("/home/me/site", "ses_e2e_2", "git push --force")
        .unwrap();
    app.count("a second ask arrives behind it", "request-row", 2)
        .await;
    app.click("[data-testid=deny]").await;
    app.count("the denied one left the inbox", "request-row", 1)
        .await;
    app.until(
        "the next ask opens with an empty comment box",
        "document.querySelector('[data-testid=detail-title]')?.textContent.includes('git push') && document.querySelector('[data-testid=comment]')?.value === ''",
        PATIENT,
    )
    .await;
    let replies = fake.replies();
    assert!(
        replies.iter().all(|r| r.id != second),
        "nothing was sent for the ask the comment was not written on"
    );
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].id, id);
    assert_eq!(
        replies[0].directory, "/home/me/site",
        "answered in its own instance"
    );
    assert_eq!(replies[0].reply, "reject");
    assert_eq!(replies[0].message.as_deref(), Some("Use npm ci instead."));
    app.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_langgraph_interrupt_is_answered_from_the_app() {
    use countersign_fakes::langgraph::{payloads, Config as LgConfig, FakeLangGraph};
    let fake = FakeLangGraph::start(LgConfig::default()).await.unwrap();
    let (thread, ids) = fake.interrupted(
        "approvals",
        vec![(
            payloads::agent_inbox(
                "send_email",
                json!({"to": "board@example.com", "subject": "Q3 numbers"}),
                true,
                true,
                true,
                true,
            ),
            None,
        )],
    );
    let app = Desktop::launch(|_| {}).await;
    add_account(
        &app,
        "langgraph",
        &[("name", "graphs"), ("url", fake.url().as_str())],
        None,
        "the account polls",
        "t.startsWith('polling') && t.includes('1 interrupted threads')",
    )
    .await;
    app.keys("gi").await;
    app.count("the interrupt", "request-row", 1).await;
    app.until("its detail", DETAIL_FOLLOWS, PATIENT).await;
    app.until(
        "the answer box for a respond",
        "!!document.querySelector('[data-testid=answer-input]')",
        PATIENT,
    )
    .await;
    app.type_into("[data-testid=answer-input]", "Send it after the audit.")
        .await;
    app.shot("langgraph-detail").await;
    app.click("[data-testid=answer-send]").await;
    app.count("it left the inbox", "request-row", 0).await;
    let runs = fake.runs();
    assert_eq!(runs.len(), 1);
    assert_eq!(
        runs[0].resume,
        json!({ids[0].clone(): [{"type": "response", "args": "Send it after the audit."}]}),
        "answered by interrupt id with Agent Inbox's response shape"
    );
    assert_eq!(fake.thread(&thread).unwrap().0, "idle");
    app.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approve_pressed_on_a_notification_decides_the_request_once() {
    let fake = FakeMolecule::start(Config::with_admin_token(TOKEN))
        .await
        .unwrap();
    let ws = fake.add_workspace("Release Manager", None);
    let url = fake.url();
    let app = Desktop::launch_with(
        |dir| {
            harness::seed_molecule_account(dir, &url, TOKEN);
            // The user turned decide buttons on (they are off by default).
            std::fs::write(dir.join("desktop.json"), r#"{"notify_actions": true}"#).unwrap();
        },
        false,
    )
    .await;
    let server = notification_server::NotificationServer::start(&app.bus_address()).await;
    app.until_connected(PATIENT).await;

    let approval = fake.create_approval(&ws, "push tag v2.4.0", "CI green");
    let note = server
        .wait_for("the request", 1, PATIENT, |n| {
            n.summary.contains("push tag v2.4.0")
        })
        .await;
    assert_eq!(
        note.actions,
        vec!["default", "approve", "deny"],
        "with decide buttons on, a plain approval's notification carries Approve and Deny"
    );

    server.press(note.id, "approve").await;
    let pressed = Instant::now();
    while fake.received_decisions().is_empty() && pressed.elapsed() < PATIENT {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let received = fake.received_decisions();
    assert_eq!(
        received.len(),
        1,
        "the press sent one decision: {received:?}"
    );
    assert_eq!(received[0].body["decision"], "approved", "the one pressed");
    assert_eq!(
        fake.approval(&approval).unwrap().status,
        "approved",
        "the platform took it"
    );
    // A follow-up notification says what became of the press.
    server
        .wait_for("the follow-up", 1, PATIENT, |n| {
            n.summary == "Approved · delivered" && n.body == "push tag v2.4.0"
        })
        .await;
    let status = app.invoke("status").await;
    assert_eq!(
        status["pending"], 0,
        "the request left the inbox for history"
    );

    // A second press of the same button does nothing more.
    server.press(note.id, "approve").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        fake.received_decisions().len(),
        1,
        "a repeated press never sends a second decision"
    );

    // Buttons off: a new request's notification only opens the app.
    let prefs = app
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             window.__TAURI__.core.invoke('set_prefs', {prefs: {dnd: false, notify_activity: false, notify_actions: false}}).then(done, done);",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(prefs["notify_actions"], false);
    fake.create_approval(&ws, "rotate prod db creds", "quarterly");
    let plain = server
        .wait_for("the second request", 1, PATIENT, |n| {
            n.summary.contains("rotate prod db creds")
        })
        .await;
    assert_eq!(
        plain.actions,
        vec!["default"],
        "with decide buttons off, a notification has none"
    );
    app.close().await;
}

/// A Molecule AI account `prod` on `url`, its token in the file store.
/// Runs the CLI on the app's data dir, as a user at a terminal would.
fn cli(dir: &std::path::Path, args: &[&str]) {
    // Built beside this test binary (target/<profile>/deps/e2e-…).
    let exe = std::env::current_exe().unwrap();
    let cli = exe.parent().unwrap().parent().unwrap().join("countersign");
    let o = std::process::Command::new(&cli)
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "{} runs ({e}); cargo builds it with the workspace",
                cli.display()
            )
        });
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_hours_hold_notifications_then_one_summary_and_urgent_ones_break_through() {
    let fake = FakeMolecule::start(Config::with_admin_token(TOKEN))
        .await
        .unwrap();
    let ws = fake.add_workspace("Release Manager", None);
    let url = fake.url();
    let local = chrono::Local::now().time();
    let quiet = format!(
        "{}-{}",
        (local - chrono::Duration::hours(1)).format("%H:%M"),
        (local + chrono::Duration::hours(1)).format("%H:%M")
    );
    let app = Desktop::launch_with(
        |dir| harness::seed_molecule_account(dir, &url, TOKEN),
        false,
    )
    .await;
    let dir = app.data.path().to_owned();
    // Quiet now, and (Molecule's requests expire in 10 minutes) urgent
    // ones wait too.
    cli(&dir, &["notifications", "quiet-hours", &quiet]);
    cli(&dir, &["notifications", "urgent", "off"]);
    let server = notification_server::NotificationServer::start(&app.bus_address()).await;
    app.until(
        "prod is connected and the quiet hours are read",
        "Promise.all([window.__TAURI__.core.invoke('accounts'), window.__TAURI__.core.invoke('prefs')])
            .then(([a, p]) => a.some(x => x.state === 'connected') && p.quiet_hours !== null && !p.urgent_breaks_through)",
        PATIENT,
    )
    .await;
    for action in ["push tag v1", "push tag v2", "push tag v3"] {
        fake.create_approval(&ws, action, "release");
    }
    app.until(
        "the three arrive in the inbox",
        "window.__TAURI__.core.invoke('status').then(s => s.pending === 3)",
        PATIENT,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        server.shown().is_empty(),
        "during quiet hours nothing is notified: {:?}",
        server.shown()
    );

    // Quiet hours end (turned off from the CLI, picked up within a second).
    cli(&dir, &["notifications", "quiet-hours", "off"]);
    server
        .wait_for("the end of quiet hours", 1, PATIENT, |_| true)
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let shown = server.shown();
    assert_eq!(shown.len(), 1, "one summary, not three: {shown:?}");
    assert_eq!(
        shown[0].summary, "3 new requests waiting",
        "it names how many arrived while it was quiet"
    );

    // Urgent ones break through: quiet again, a request due in 10 minutes.
    cli(&dir, &["notifications", "quiet-hours", &quiet]);
    cli(&dir, &["notifications", "urgent", "on"]);
    app.until(
        "the quiet hours are back",
        "window.__TAURI__.core.invoke('prefs').then(p => p.quiet_hours !== null && p.urgent_breaks_through)",
        PATIENT,
    )
    .await;
    fake.create_approval(&ws, "rotate prod db creds", "expires soon");
    // A request due before the quiet hours end is notified anyway.
    server
        .wait_for("the urgent request", 1, PATIENT, |n| {
            n.summary.contains("rotate prod db creds")
        })
        .await;
    app.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snoozed_request_leaves_the_inbox_then_comes_back_and_notifies_again() {
    let fake = FakeMolecule::start(Config::with_admin_token(TOKEN))
        .await
        .unwrap();
    let ws = fake.add_workspace("Release Manager", None);
    let url = fake.url();
    let app = Desktop::launch_with(
        |dir| harness::seed_molecule_account(dir, &url, TOKEN),
        false,
    )
    .await;
    let server = notification_server::NotificationServer::start(&app.bus_address()).await;
    app.until_connected(PATIENT).await;
    fake.create_approval(&ws, "push tag v2.4.0", "release");
    app.count("the request shows", "request-row", 1).await;
    app.until("the detail", DETAIL_FOLLOWS, PATIENT).await;
    assert_eq!(
        server.count(|n| n.summary.contains("push tag v2.4.0")),
        1,
        "notified once on arrival"
    );

    // `s` snoozes it for an hour: out of the inbox, counted in the tray.
    app.keys("s").await;
    app.count("it leaves the inbox", "request-row", 0).await;
    app.until(
        "the tray counts it as snoozed",
        "window.__TAURI__.core.invoke('status').then(s => s.tray.includes('(1 snoozed)'))",
        PATIENT,
    )
    .await;
    app.click("[data-testid=filter-snoozed]").await;
    app.count("the Snoozed filter lists it", "request-row", 1)
        .await;
    app.click("[data-testid=filter-snoozed]").await;

    // Snoozed again, for two seconds (from the CLI): it comes back by
    // itself and is notified again.
    let id = app
        .js("return window.__TAURI__.core.invoke('pending', {filter: {snoozed: true}}).then(p => p[0].id)")
        .await;
    cli(app.data.path(), &["snooze", &id.to_string(), "2s"]);
    app.count("it is back in the inbox", "request-row", 1).await;
    // A request back from a snooze is notified again.
    server
        .wait_for("the request back from its snooze", 2, PATIENT, |n| {
            n.summary.contains("push tag v2.4.0")
        })
        .await;
    app.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decide_buttons_only_where_a_plain_decision_fits_and_after_the_notification_server_restarts(
) {
    use countersign_fakes::langgraph::{payloads, Config as LgConfig, FakeLangGraph};
    let fake = FakeMolecule::start(Config::with_admin_token(TOKEN))
        .await
        .unwrap();
    let ws = fake.add_workspace("Release Manager", None);
    let url = fake.url();
    let graphs = FakeLangGraph::start(LgConfig::default()).await.unwrap();
    // An interrupt that takes only a written answer.
    graphs.interrupted(
        "approvals",
        vec![(
            payloads::agent_inbox(
                "send_email",
                json!({"to": "board@example.com"}),
                false,
                false,
                true,
                false,
            ),
            None,
        )],
    );
    let app = Desktop::launch_with(
        |dir| {
            harness::seed_molecule_account(dir, &url, TOKEN);
            std::fs::write(
                dir.join("notifications.json"),
                r#"{"notify_actions": true}"#,
            )
            .unwrap();
        },
        false,
    )
    .await;
    let server = notification_server::NotificationServer::start(&app.bus_address()).await;
    app.until_connected(PATIENT).await;

    // Text that hides characters: open it and read it first.
    fake.create_approval(&ws, "push tag v2.4.0\u{202E}lave", "release");
    let hidden = server
        .wait_for("the request hiding characters", 1, PATIENT, |n| {
            n.summary.contains("push tag v2.4.0")
        })
        .await;
    assert_eq!(
        hidden.actions,
        vec!["default"],
        "a request whose text hides characters gets no decide buttons"
    );
    assert!(
        hidden.summary.contains("⟨U+202E⟩") && !hidden.summary.contains('\u{202E}'),
        "the notification shows the override as a marker, never obeys it: {:?}",
        hidden.summary
    );

    // A request that needs a written answer.
    app.keys("gs").await;
    app.click("[data-testid=add-account]").await;
    add_account(
        &app,
        "langgraph",
        &[("name", "graphs"), ("url", graphs.url().as_str())],
        None,
        "the LangGraph account polls",
        "t.startsWith('polling')",
    )
    .await;
    let answer = server
        .wait_for("the interrupt", 1, PATIENT, |n| {
            n.summary.contains("send_email")
        })
        .await;
    assert_eq!(
        answer.actions,
        vec!["default"],
        "a request that takes a written answer cannot be decided by a button"
    );

    // The notification server restarts (a new process, a new bus name,
    // its ids from 1 again): the app keeps showing and obeys the new one.
    server.stop().await;
    let server = notification_server::NotificationServer::start(&app.bus_address()).await;
    let approval = fake.create_approval(&ws, "rotate prod db creds", "quarterly");
    let plain = server
        .wait_for("a request after the restart", 1, PATIENT, |n| {
            n.summary.contains("rotate prod db creds")
        })
        .await;
    assert_eq!(
        plain.actions,
        vec!["default", "approve", "deny"],
        "a plain approval still gets its buttons from the restarted server"
    );
    server.press(plain.id, "approve").await;
    let pressed = Instant::now();
    while fake.received_decisions().is_empty() && pressed.elapsed() < PATIENT {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        fake.approval(&approval).unwrap().status,
        "approved",
        "the restarted server's press decided the request it was shown for"
    );
    assert_eq!(
        fake.received_decisions().len(),
        1,
        "one press, one decision (the hidden request shown earlier under the same id stays undecided)"
    );
    app.close().await;
}

/// "Open at login" in the Accounts view's About section: off at first
/// (no autostart entry), on writes `~/.config/autostart/Countersign.desktop`
/// starting this very binary with `--autostart`, off removes it again. The
/// section also shows the workspace version and the data dir.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_at_login_adds_and_removes_the_autostart_entry() {
    let app = Desktop::launch(|_| {}).await;
    let autostart = app.home.path().join(".config/autostart");
    let entry = autostart.join("Countersign.desktop");
    // With no account the app opens on the Accounts view.
    let switch = "[data-testid=open-at-login]";
    app.until(
        "the About section's switch",
        &format!(
            "document.querySelector('{switch}') && !document.querySelector('{switch}').disabled"
        ),
        PATIENT,
    )
    .await;
    let version = app
        .js("return document.querySelector('[data-testid=about-version]').textContent")
        .await;
    assert_eq!(
        version,
        json!(format!("Countersign {}", env!("CARGO_PKG_VERSION"))),
        "About shows the one workspace version"
    );
    let store = app
        .js("return document.querySelector('[data-testid=store-size]').textContent")
        .await;
    let data_dir = app.data.path().display().to_string();
    assert!(
        store
            .as_str()
            .unwrap()
            .ends_with(&format!(" in {data_dir}")),
        "About names the data dir: {store}"
    );
    assert_eq!(
        app.js(&format!(
            "return document.querySelector('{switch}').checked"
        ))
        .await,
        json!(false),
        "Open at login is off by default"
    );
    assert!(
        !entry.exists(),
        "nothing is written to the autostart list before the user asks"
    );

    app.click(switch).await;
    for _ in 0..100 {
        if entry.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let text = std::fs::read_to_string(&entry)
        .unwrap_or_else(|e| panic!("turned on, the switch writes {}: {e}", entry.display()));
    let exec = format!(
        "Exec={} --autostart",
        env!("CARGO_BIN_EXE_countersign-desktop")
    );
    assert!(
        text.lines().any(|l| l == exec),
        "the entry starts this app, hidden in the tray:\n{text}"
    );
    assert!(
        text.contains("[Desktop Entry]") && text.contains("Type=Application"),
        "the entry is a desktop entry:\n{text}"
    );
    app.until(
        "the switch shows on",
        &format!("document.querySelector('{switch}').checked && !document.querySelector('{switch}').disabled"),
        PATIENT,
    )
    .await;
    let about = app.invoke("about").await;
    assert_eq!(about["open_at_login"], json!(true), "{about}");

    app.click(switch).await;
    for _ in 0..100 {
        if !entry.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!entry.exists(), "turned off, the switch removes the entry");
    let about = app.invoke("about").await;
    assert_eq!(about["open_at_login"], json!(false), "{about}");
    app.close().await;
}

/// Started by the autostart entry (`--autostart`), the app runs with its
/// window hidden, waiting in the tray; opening it again from the menu (a
/// second launch) shows the window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn started_at_login_the_app_waits_hidden_until_opened() {
    let app = Desktop::launch_args(|_| {}, true, &["--autostart"]).await;
    let status = app.invoke("status").await;
    assert!(status["pending"].is_number(), "the app runs: {status}");
    assert!(
        !app.windows(false).is_empty(),
        "the app has its main window"
    );
    tokio::time::sleep(SECOND).await;
    assert!(
        app.windows(true).is_empty(),
        "started at login, the window stays hidden"
    );

    let mut again = app.command(env!("CARGO_BIN_EXE_countersign-desktop"));
    again
        .env("HOME", app.home.path())
        .env("XDG_RUNTIME_DIR", app.home.path())
        .env("COUNTERSIGN_DATA_DIR", app.data.path())
        .env_remove("WAYLAND_DISPLAY")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut second = again.spawn().expect("a second launch");
    let start = Instant::now();
    while app.windows(true).is_empty() && start.elapsed() < PATIENT {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !app.windows(true).is_empty(),
        "opened from the menu, the running app shows its window"
    );
    for _ in 0..100 {
        if matches!(second.try_wait(), Ok(Some(_))) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = second.kill();
    let _ = second.wait();
    app.close().await;
}
