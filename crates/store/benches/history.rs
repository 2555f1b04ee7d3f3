//! How history holds up in a big store:
//! `cargo bench -p countersign-store --bench history`.
//!
//! Builds a store of `HISTORY_ROWS` ended requests (default 1,000,000) and
//! `HISTORY_PENDING` pending ones (default 10,000) with text drawn from a
//! vocabulary: six accounts on different platforms, 40 agents, every ended
//! status, a year of times; one word (`rollback`) in about 10% of rows and
//! one (`zeppelin`) in 20. Rows go in through SQL in big transactions, so
//! the schema's own triggers set `ended_at`, the history counter and the
//! full-text index, as they would for rows written one at a time.
//!
//! Then times, as the median of several runs: history pages (first,
//! filtered, deep, searched), the inbox, the history total, and an export
//! of every row as JSON lines. The export runs in a child process of its
//! own, which reports its peak resident memory.
//!
//! `HISTORY_DB=path` keeps the built store at `path` and reuses it when it
//! is there (built for the same sizes), to time again without rebuilding.
//! Run by `cargo test` (without `--bench`), it defaults to 10,000 ended and
//! 1,000 pending, as a quick check that it still runs.

mod common;
use common::median_ms;

use chrono::{DateTime, Duration, TimeZone, Utc};
use countersign_model::{NewAccount, Platform, SecretStoreKind, Status};
use countersign_store::{HistoryCursor, HistoryQuery, PendingQuery, Store};
use rusqlite::{params, Connection};
use serde_json::json;
use std::io::Write;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const COMMON: &str = "rollback";
const RARE: &str = "zeppelin";
const RARE_ROWS: usize = 20;

const ACCOUNTS: &[(&str, Platform, u32)] = &[
    ("prod-molecule", Platform::Molecule, 30),
    ("ops-clawith", Platform::Clawith, 20),
    ("ci-harn", Platform::Harn, 20),
    ("research-surfsense", Platform::Surfsense, 10),
    ("graph-langgraph", Platform::Langgraph, 15),
    ("dev-opencode", Platform::Opencode, 5),
];

const VERBS: &[&str] = &[
    "deploy",
    "restart",
    "scale",
    "delete",
    "migrate",
    "approve",
    "merge",
    "publish",
    "rotate",
    "archive",
    "refund",
    "invite",
    "revoke",
    "provision",
    "drain",
    "promote",
    "tag",
    "backfill",
    "reindex",
    "purge",
    "send",
    "transfer",
    "schedule",
    "upgrade",
];
const OBJECTS: &[&str] = &[
    "payments-api",
    "billing-worker",
    "search-cluster",
    "auth-service",
    "ledger",
    "checkout",
    "notifications",
    "user-profile",
    "inventory",
    "analytics-pipeline",
    "gateway",
    "cdn-edge",
    "mail-relay",
    "feature-flags",
    "scheduler",
    "reporting-db",
    "object-store",
    "vpn-tunnel",
    "ml-trainer",
    "etl-nightly",
    "crm-sync",
    "invoice-batch",
    "support-queue",
    "docs-site",
];
const ENVS: &[&str] = &[
    "production",
    "staging",
    "canary",
    "eu-west-1",
    "us-east-2",
    "ap-south-1",
    "sandbox",
];
const WORDS: &[&str] = &[
    "health",
    "checks",
    "passed",
    "green",
    "build",
    "pipeline",
    "ticket",
    "customer",
    "urgent",
    "quarterly",
    "invoice",
    "latency",
    "budget",
    "window",
    "maintenance",
    "weekend",
    "owner",
    "oncall",
    "pager",
    "incident",
    "capacity",
    "traffic",
    "shard",
    "replica",
    "primary",
    "secondary",
    "schema",
    "column",
    "backup",
    "snapshot",
    "restore",
    "certificate",
    "expiry",
    "token",
    "secret",
    "policy",
    "compliance",
    "audit",
    "review",
    "security",
    "patch",
    "release",
    "candidate",
    "hotfix",
    "branch",
    "commit",
    "diff",
    "lint",
    "coverage",
    "benchmark",
    "regression",
    "alert",
    "dashboard",
    "metric",
    "threshold",
    "quota",
    "limit",
    "region",
    "zone",
    "cluster",
    "node",
    "pod",
    "container",
    "image",
    "registry",
    "artifact",
    "bucket",
    "table",
    "queue",
    "topic",
    "consumer",
    "producer",
    "offset",
    "lag",
    "retry",
    "timeout",
    "deadline",
    "contract",
    "vendor",
    "partner",
    "refund",
    "chargeback",
    "dispute",
    "email",
    "campaign",
    "segment",
    "cohort",
    "experiment",
    "variant",
    "toggle",
    "rollout",
    "percent",
    "gradual",
    "blue",
    "canary",
    "drain",
    "cordon",
    "evict",
    "daemon",
    "cron",
];
const AGENTS: usize = 40;
const REVIEWERS: &[&str] = &["dana", "lee", "sam", "ari", "kim"];

/// Small, fast, reproducible.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }
    fn words(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| self.pick(WORDS))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .map(|v| v.replace('_', "").parse().expect(name))
        .unwrap_or(default)
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 12, 1, 0, 0, 0).unwrap()
}

/// Writes the store at `path`: accounts through the store, requests through SQL.
fn build(path: &Path, rows: usize, pending: usize) {
    let t0 = start();
    {
        let store = Store::open(path).unwrap();
        for (name, platform, _) in ACCOUNTS {
            store
                .add_account(
                    &NewAccount {
                        name: (*name).into(),
                        platform: *platform,
                        base_url: "http://127.0.0.1:9".into(),
                        reviewer: "dana".into(),
                        secret_store: SecretStoreKind::None,
                        settings: json!({}),
                    },
                    "none",
                    t0,
                )
                .unwrap();
        }
    }
    let mut conn = Connection::open(path).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -262144;
         PRAGMA temp_store = MEMORY;",
    )
    .unwrap();
    let weights: u32 = ACCOUNTS.iter().map(|a| a.2).sum();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let total = rows + pending;
    // Ended requests first seen over a year, then the pending ones in the
    // last day; rare-word rows spread evenly through history.
    let year = Duration::days(365).num_milliseconds() as f64;
    let rare_every = (rows / RARE_ROWS).max(1);
    let mut i = 0;
    while i < total {
        let tx = conn.transaction().unwrap();
        {
            let mut ins = tx
                .prepare(
                    "INSERT INTO requests (account_id, remote_id, route, kind, title, action,
                        arguments, description, agent, tier, created_at, deadline,
                        allowed_decisions, link, status, outcome, decided_by, decided_at,
                        comment, raw, first_seen_at, updated_at, extra)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,
                        ?16, ?17, ?18, ?19, ?20, ?21, ?21, '{}')",
                )
                .unwrap();
            let end = (i + 100_000).min(total);
            for n in i..end {
                let is_pending = n >= rows;
                let mut pick = rng.below(weights as usize) as u32;
                let account = ACCOUNTS
                    .iter()
                    .position(|a| {
                        if pick < a.2 {
                            true
                        } else {
                            pick -= a.2;
                            false
                        }
                    })
                    .unwrap() as i64
                    + 1;
                let created = if is_pending {
                    t0 + Duration::days(365) + Duration::seconds((n - rows) as i64 * 8)
                } else {
                    t0 + Duration::milliseconds((n as f64 / rows as f64 * year) as i64)
                        + Duration::seconds(rng.below(600) as i64)
                };
                let verb = rng.pick(VERBS);
                let object = rng.pick(OBJECTS);
                let env = rng.pick(ENVS);
                let len = 4 + rng.below(8);
                let mut note = rng.words(len);
                if rng.below(10) == 0 {
                    note = format!("{note} {COMMON} plan ready");
                }
                if !is_pending && n % rare_every == rare_every / 2 && n / rare_every < RARE_ROWS {
                    note = format!("{note} {RARE}");
                }
                let title = format!("{verb} {object} to {env}");
                let arguments = json!({
                    "target": object,
                    "environment": env,
                    "replicas": rng.below(12),
                    "version": format!("v{}.{}.{}", rng.below(5), rng.below(30), rng.below(100)),
                    "note": note,
                });
                let agent = format!(
                    "agent-{:02}",
                    (rng.below(AGENTS) * rng.below(AGENTS)) / AGENTS
                );
                let kind = match rng.below(20) {
                    0..=15 => "approval",
                    16..=18 => "question",
                    _ => "escalation",
                };
                let deadline = (rng.below(3) == 0).then(|| created + Duration::minutes(30));
                let (status, ended) = if is_pending {
                    (Status::Pending, None)
                } else {
                    let status = match rng.below(100) {
                        0..=49 => Status::Approved,
                        50..=59 => Status::Denied,
                        60..=74 => Status::Expired,
                        75..=94 => Status::ResolvedElsewhere,
                        _ => Status::Cancelled,
                    };
                    let after = match (status, deadline) {
                        (Status::Expired, Some(d)) => d,
                        _ => created + Duration::seconds(5 + rng.below(6 * 3600) as i64),
                    };
                    (status, Some(after))
                };
                let decided = matches!(
                    status,
                    Status::Approved | Status::Denied | Status::ResolvedElsewhere
                );
                let outcome = match status {
                    Status::ResolvedElsewhere => Some(if rng.below(4) == 0 {
                        "denied"
                    } else {
                        "approved"
                    }),
                    Status::Expired => Some("expired"),
                    _ => None,
                };
                let comment = (decided && rng.below(4) == 0).then(|| rng.words(3));
                let remote_id = format!("{}-{n}", ACCOUNTS[account as usize - 1].0);
                ins.execute(params![
                    account,
                    remote_id,
                    json!({"workspace_id": format!("ws-{}", n % 97), "thread_id": format!("t-{n}")}),
                    kind,
                    title,
                    verb,
                    arguments,
                    (rng.below(2) == 0).then(|| format!("{} {}", rng.words(6), rng.words(4))),
                    agent,
                    (rng.below(5) == 0).then_some("high"),
                    created,
                    deadline,
                    r#"["approve","deny"]"#,
                    format!("https://agents.example/{}/{n}", object),
                    status.as_str(),
                    outcome,
                    decided.then(|| rng.pick(REVIEWERS)),
                    if decided { ended } else { None },
                    comment,
                    json!({"id": remote_id, "tool": verb, "input": {"target": object, "environment": env}}),
                    ended.unwrap_or(created),
                ])
                .unwrap();
            }
            i = end;
        }
        tx.commit().unwrap();
    }
    conn.execute_batch(
        "PRAGMA optimize; INSERT INTO requests_fts(requests_fts) VALUES('optimize');",
    )
    .unwrap();
    conn.execute_batch("PRAGMA journal_mode = WAL").unwrap();
}

/// Every request as a JSON line into nothing, in a process of its own;
/// prints rows, seconds and the peak resident memory.
fn export(path: &Path) {
    let store = Store::open(path).unwrap();
    let mut out = std::io::BufWriter::new(std::io::sink());
    let t = Instant::now();
    let mut n = 0u64;
    store
        .for_each_request(|r| {
            serde_json::to_writer(&mut out, &r).unwrap();
            out.write_all(b"\n").unwrap();
            n += 1;
            ControlFlow::Continue(())
        })
        .unwrap();
    out.flush().unwrap();
    let secs = t.elapsed().as_secs_f64();
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0);
    println!("{n} {secs} {hwm}");
}

fn child(var: &str, path: &Path, rows: usize, pending: usize) -> String {
    let out = Command::new(std::env::current_exe().unwrap())
        .env(var, path)
        .env("HISTORY_ROWS", rows.to_string())
        .env("HISTORY_PENDING", pending.to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn main() {
    // `cargo test --all-targets` runs benches without `--bench`: then a
    // small store checks that the bench still works, quickly.
    let bench = std::env::args().any(|a| a == "--bench");
    let rows = env_usize("HISTORY_ROWS", if bench { 1_000_000 } else { 10_000 });
    let pending = env_usize("HISTORY_PENDING", if bench { 10_000 } else { 1_000 });
    if let Some(p) = std::env::var_os("HISTORY_BENCH_BUILD") {
        return build(Path::new(&p), rows, pending);
    }
    if let Some(p) = std::env::var_os("HISTORY_BENCH_EXPORT") {
        return export(Path::new(&p));
    }

    let dir = tempfile::tempdir().unwrap();
    let path = std::env::var_os("HISTORY_DB")
        .map(PathBuf::from)
        .unwrap_or_else(|| dir.path().join("history.sqlite3"));
    if path.exists() {
        let store = Store::open(&path).unwrap();
        let total = store.history_total().unwrap() as usize;
        assert_eq!(
            total,
            rows,
            "{} holds another size; remove it",
            path.display()
        );
    } else {
        let t = Instant::now();
        child("HISTORY_BENCH_BUILD", &path, rows, pending);
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        println!(
            "built {rows} ended + {pending} pending in {:.1} s ({:.0} MB)",
            t.elapsed().as_secs_f64(),
            size as f64 / 1e6
        );
    }

    let store = Store::open(&path).unwrap();
    assert_eq!(store.history_total().unwrap() as usize, rows);
    let runs = 11;
    let page = |q: HistoryQuery| {
        let want = q.limit.unwrap_or(200) as usize;
        let ms = median_ms(runs, || {
            let p = store.history_page(&q).unwrap();
            assert!(!p.rows.is_empty() && p.rows.len() <= want);
        });
        (ms, store.history_page(&q).unwrap().rows.len())
    };
    let report = |what: &str, (ms, n): (f64, usize)| {
        println!("{what}: {ms:.2} ms ({n} rows)");
    };
    let q = HistoryQuery {
        limit: Some(200),
        ..Default::default()
    };
    report("history first page", page(q.clone()));
    report(
        "history page, one account",
        page(HistoryQuery {
            account: Some(ACCOUNTS[1].0.into()),
            ..q.clone()
        }),
    );
    report(
        "history page, one status (denied)",
        page(HistoryQuery {
            statuses: vec![Status::Denied],
            ..q.clone()
        }),
    );
    report(
        "history page, one agent",
        page(HistoryQuery {
            agent: Some("agent-07".into()),
            ..q.clone()
        }),
    );
    // The cursor of the row 90% of the way into history.
    let deep: HistoryCursor = {
        let c = Connection::open(&path).unwrap();
        c.query_row(
            "SELECT ended_at, id FROM requests WHERE ended_at IS NOT NULL
             ORDER BY ended_at DESC, id DESC LIMIT 1 OFFSET ?1",
            [(rows * 9 / 10) as i64],
            |r| {
                Ok(HistoryCursor {
                    ended_at: r.get(0)?,
                    id: r.get(1)?,
                })
            },
        )
        .unwrap()
    };
    report(
        &format!("history page {} rows deep (by cursor)", rows * 9 / 10),
        page(HistoryQuery {
            before: Some(deep),
            ..q.clone()
        }),
    );
    report(
        &format!("history search, common word ({COMMON}, ~10% of rows)"),
        page(HistoryQuery {
            search: Some(COMMON.into()),
            ..q.clone()
        }),
    );
    report(
        &format!("history search, rare word ({RARE}, {RARE_ROWS} rows)"),
        page(HistoryQuery {
            search: Some(RARE.into()),
            ..q.clone()
        }),
    );
    let inbox = median_ms(7, || {
        assert_eq!(
            store.pending(&PendingQuery::default()).unwrap().len(),
            pending
        )
    });
    println!("inbox, {pending} pending, most urgent first: {inbox:.1} ms");
    let list = median_ms(7, || {
        assert_eq!(
            store.pending_list(&PendingQuery::default()).unwrap().len(),
            pending
        )
    });
    println!("inbox list rows (no payloads), {pending} pending: {list:.1} ms");
    let total = median_ms(runs, || {
        assert_eq!(store.history_total().unwrap() as usize, rows)
    });
    println!("history total: {total:.3} ms");
    drop(store);

    let out = child("HISTORY_BENCH_EXPORT", &path, rows, pending);
    let f: Vec<f64> = out.split_whitespace().map(|v| v.parse().unwrap()).collect();
    println!(
        "export of {} requests as JSON lines: {:.1} s ({:.0} rows/s), peak RSS {:.1} MB",
        f[0],
        f[1],
        f[0] / f[1],
        f[2] / 1024.0
    );
}
