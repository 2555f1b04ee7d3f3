//! `history`, `export` and `prune` on a large store filled straight
//! through SQL (seconds, not minutes, in a debug build).

use countersign_model::{NewAccount, Platform, SecretStoreKind};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

fn countersign(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_countersign"));
    cmd.arg("--data-dir")
        .arg(dir)
        .env_remove("COUNTERSIGN_DATA_DIR")
        .env_remove("RUST_LOG");
    cmd
}

/// A store with `ended` approved requests (ending one second apart) and
/// `pending` pending ones. Times are written as rusqlite writes them, so
/// they compare with what the store binds.
fn fill(dir: &Path, ended: u32, pending: u32) {
    // Private, as the app makes it: a looser dir would add a warning to
    // the output being checked.
    countersign_store::private::dir(dir).unwrap();
    let path = dir.join("countersign.sqlite3");
    let store = countersign_store::Store::open(&path).unwrap();
    let account = store
        .add_account(
            &NewAccount {
                name: "prod".into(),
                platform: Platform::Molecule,
                base_url: "http://127.0.0.1:1".into(),
                reviewer: "dana".into(),
                secret_store: SecretStoreKind::None,
                settings: serde_json::json!({}),
            },
            "ref",
            chrono::Utc::now(),
        )
        .unwrap();
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(&format!(
        "BEGIN;
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {total})
         INSERT INTO requests (account_id, remote_id, route, kind, title, action, arguments,
             agent, created_at, allowed_decisions, status, decided_by, decided_at, raw,
             first_seen_at, updated_at)
         SELECT {id}, 'r' || i, '{{}}', 'approval', 'deploy ' || i, 'deploy', '{{}}', 'bot',
             strftime('%Y-%m-%d %H:%M:%S+00:00', '2026-01-01', '+' || i || ' seconds'), '[\"approve\",\"deny\"]',
             CASE WHEN i <= {ended} THEN 'approved' ELSE 'pending' END,
             CASE WHEN i <= {ended} THEN 'dana' END,
             CASE WHEN i <= {ended} THEN strftime('%Y-%m-%d %H:%M:%S+00:00', '2026-01-01', '+' || i || ' seconds') END,
             '{{}}', '2026-01-01 00:00:00+00:00', '2026-01-01 00:00:00+00:00'
         FROM n;
         COMMIT;",
        total = ended + pending,
        id = account.id,
    ))
    .unwrap();
}

fn lines(args: &[&str], dir: &Path) -> (Vec<String>, String, Option<i32>) {
    let o = countersign(dir).args(args).output().unwrap();
    (
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(str::to_owned)
            .collect(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
        o.status.code(),
    )
}

#[test]
fn paging_by_before_returns_every_ended_request_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), 25, 3);
    let mut seen = Vec::new();
    let mut args: Vec<String> = vec![
        "history".into(),
        "--json".into(),
        "--limit".into(),
        "10".into(),
    ];
    loop {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let (rows, err, code) = lines(&a, dir.path());
        assert_eq!(code, Some(0), "{err}");
        for r in rows {
            let v: serde_json::Value = serde_json::from_str(&r).expect("JSON Lines");
            seen.push(v["id"].as_i64().unwrap());
        }
        let Some(more) = err
            .lines()
            .find_map(|l| l.strip_prefix("more: countersign history --before "))
        else {
            break;
        };
        let cursor = more.split(' ').next().unwrap().to_owned();
        args = vec![
            "history".into(),
            "--json".into(),
            "--limit".into(),
            "10".into(),
            "--before".into(),
            cursor,
        ];
    }
    let want: Vec<i64> = (1..=25).rev().collect();
    assert_eq!(
        seen, want,
        "every ended request once, newest first; no pending one"
    );
}

#[test]
fn history_json_into_a_closed_pipe_exits_zero_at_once() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), 20_000, 0);
    let mut child = countersign(dir.path())
        .args(["history", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with('{'), "{first}");
    let status = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(
        status.code(),
        Some(0),
        "a closed pipe is not an error: {err}"
    );
    assert!(err.is_empty(), "and says nothing: {err}");
}

#[test]
fn a_bad_cursor_or_date_is_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), 1, 0);
    for args in [
        &["history", "--before", "nope"][..],
        &["history", "--since", "yesterday"],
        &["export", "--format", "csv", "--until", "7y"],
        &["prune", "--before", "2026-13-40"],
    ] {
        let (_, err, code) = lines(args, dir.path());
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn prune_refuses_without_yes_off_a_terminal_and_keeps_pending() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), 10, 2);
    let o = countersign(dir.path())
        .args(["prune", "--before", "2030-01-01"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("--yes"));
    let (rows, _, _) = lines(&["history", "--json"], dir.path());
    assert_eq!(rows.len(), 10, "nothing was deleted");

    let (out, err, code) = lines(&["prune", "--before", "2030-01-01", "--yes"], dir.path());
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.iter().any(|l| l.contains("deleted 10 requests")),
        "{out:?}"
    );
    let (rows, _, _) = lines(&["history", "--json"], dir.path());
    assert!(rows.is_empty(), "history is gone");
    let (rows, _, _) = lines(&["export", "--format", "jsonl"], dir.path());
    assert_eq!(rows.len(), 2, "the pending requests stay");
}

/// Max RSS in kB of one `countersign` run, as GNU time reports it
/// (`scripts/setup.sh` installs it).
fn peak_rss_kb(dir: &Path, args: &[&str]) -> Option<i64> {
    let time = Path::new("/usr/bin/time");
    assert!(
        time.exists(),
        "GNU time measures the export's memory: run scripts/setup.sh"
    );
    let o = Command::new(time)
        .args(["-f", "%M"])
        .arg(env!("CARGO_BIN_EXE_countersign"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("COUNTERSIGN_DATA_DIR")
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stderr)
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
}

#[cfg(target_os = "linux")]
#[test]
fn export_memory_does_not_grow_with_the_number_of_rows() {
    let small = tempfile::tempdir().unwrap();
    fill(small.path(), 20_000, 10);
    let large = tempfile::tempdir().unwrap();
    fill(large.path(), 200_000, 10);
    let a = peak_rss_kb(small.path(), &["export", "--format", "jsonl"]).unwrap();
    let b = peak_rss_kb(large.path(), &["export", "--format", "jsonl"]).unwrap();
    assert!(
        b < a + 16 * 1024,
        "10x the rows must not need more memory: {a} kB for 20k, {b} kB for 200k"
    );
}

/// What [`fill_varied`] wrote for one ended request.
struct Ended {
    id: i64,
    account: &'static str,
    platform: Platform,
    agent: &'static str,
    status: &'static str,
    ended_at: chrono::DateTime<chrono::Utc>,
    title: String,
}

/// Two accounts on two platforms, `n` ended requests of every ended
/// status and a few agents ending in pairs (ties), some saying `rollback`
/// or `zeppelin`, plus pending ones saying both (they must never show).
/// Times are bound by rusqlite, so they are text in the store's format.
fn fill_varied(dir: &Path, n: usize) -> Vec<Ended> {
    let path = dir.join("countersign.sqlite3");
    let store = countersign_store::Store::open(&path).unwrap();
    let accounts = [("prod", Platform::Molecule), ("ops", Platform::Clawith)];
    let ids: Vec<i64> = accounts
        .iter()
        .map(|(name, platform)| {
            store
                .add_account(
                    &NewAccount {
                        name: (*name).into(),
                        platform: *platform,
                        base_url: "http://127.0.0.1:1".into(),
                        reviewer: "dana".into(),
                        secret_store: SecretStoreKind::None,
                        settings: serde_json::json!({}),
                    },
                    "ref",
                    chrono::Utc::now(),
                )
                .unwrap()
                .id
        })
        .collect();
    drop(store);
    let t0 = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .unwrap()
        .to_utc();
    let agents = ["bot", "janitor", "auditor"];
    let statuses = [
        "approved",
        "denied",
        "expired",
        "resolved_elsewhere",
        "cancelled",
    ];
    let mut conn = rusqlite::Connection::open(&path).unwrap();
    let tx = conn.transaction().unwrap();
    let mut out = Vec::new();
    {
        let mut ins = tx
            .prepare(
                "INSERT INTO requests (id, account_id, remote_id, route, kind, title, action,
                    arguments, agent, created_at, allowed_decisions, status, decided_at, raw,
                    first_seen_at, updated_at)
                 VALUES (?1, ?2, ?3, '{}', 'approval', ?4, 'deploy', '{}', ?5, ?6,
                    '[\"approve\",\"deny\"]', ?7, ?8, '{}', ?6, ?9)",
            )
            .unwrap();
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut below = |k: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % k as u64) as usize
        };
        for i in 0..n + 5 {
            let id = i as i64 + 1;
            let a = below(2);
            let agent = agents[below(3)];
            let pending = i >= n;
            let status = if pending {
                "pending"
            } else {
                statuses[below(statuses.len())]
            };
            let mut title = format!("deploy service {i}");
            if pending || below(4) != 0 {
                title.push_str(" rollback");
            }
            if pending || i % 9 == 4 {
                title.push_str(" zeppelin");
            }
            // Two rows per instant, half of them at fractional seconds.
            let ended_at = t0 + chrono::Duration::milliseconds((i as i64 / 2) * 1_500);
            ins.execute(rusqlite::params![
                id,
                ids[a],
                format!("r{i}"),
                title,
                agent,
                t0 - chrono::Duration::days(1),
                status,
                (!pending).then_some(ended_at),
                if pending { t0 } else { ended_at },
            ])
            .unwrap();
            if !pending {
                out.push(Ended {
                    id,
                    account: accounts[a].0,
                    platform: accounts[a].1,
                    agent,
                    status,
                    ended_at,
                    title,
                });
            }
        }
    }
    tx.commit().unwrap();
    out
}

/// Runs `countersign ARGS` exactly as a `more:` line spells them (the
/// user pastes it), so the line must carry the filters and the data dir.
fn run_more_line(line: &str) -> (Vec<String>, String, Option<i32>) {
    let rest = line
        .strip_prefix("more: countersign ")
        .unwrap_or_else(|| panic!("a more: line names the command to run: {line}"));
    let args: Vec<String> = rest
        .split_whitespace()
        .map(|w| {
            assert!(
                !w.contains('\''),
                "these filters need no quoting, so the line has none: {line}"
            );
            w.to_owned()
        })
        .collect();
    let o = Command::new(env!("CARGO_BIN_EXE_countersign"))
        .args(&args)
        .env_remove("COUNTERSIGN_DATA_DIR")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    (
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(str::to_owned)
            .collect(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
        o.status.code(),
    )
}

#[test]
fn filters_and_search_page_with_before_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let rows = fill_varied(dir.path(), 400);
    let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc();
    let (since, until) = ("2026-01-01T00:00:30Z", "2026-01-01T00:04:15.5Z");
    type Pick = fn(&Ended) -> bool;
    let cases: [(&[&str], u32, Pick); 4] = [
        (
            &[
                "--search",
                "rollback",
                "--platform",
                "clawith",
                "--status",
                "denied",
            ],
            3,
            |r| {
                r.platform == Platform::Clawith
                    && r.status == "denied"
                    && r.title.contains("rollback")
            },
        ),
        (
            &[
                "--search",
                "ROLL",
                "--account",
                "prod",
                "--agent",
                "janitor",
            ],
            4,
            |r| r.account == "prod" && r.agent == "janitor" && r.title.contains("rollback"),
        ),
        (&["--search", "zeppelin", "--status", "expired"], 2, |r| {
            r.status == "expired" && r.title.contains("zeppelin")
        }),
        (
            &["--search", "zepp", "--since", since, "--until", until],
            1,
            |r| r.title.contains("zeppelin"),
        ),
    ];
    for (filters, limit, pick) in cases {
        let (lo, hi) = (at(since), at(until));
        let windowed = filters.contains(&"--since");
        let mut want: Vec<&Ended> = rows
            .iter()
            .filter(|r| pick(r) && (!windowed || (r.ended_at >= lo && r.ended_at < hi)))
            .collect();
        want.sort_by_key(|r| std::cmp::Reverse((r.ended_at, r.id)));
        let want: Vec<i64> = want.iter().map(|r| r.id).collect();
        assert!(
            want.len() > 2 * limit as usize,
            "{filters:?}: enough rows for several pages ({})",
            want.len()
        );

        let limit = limit.to_string();
        let mut args = vec!["history", "--json", "--limit", limit.as_str()];
        args.extend_from_slice(filters);
        let (mut page, mut err, mut code) = lines(&args, dir.path());
        let mut seen = Vec::new();
        let mut pages = 0;
        loop {
            assert_eq!(code, Some(0), "{filters:?}: {err}");
            pages += 1;
            assert!(
                page.len() <= limit.parse().unwrap(),
                "{filters:?}: a page holds at most --limit rows"
            );
            for line in &page {
                let v: serde_json::Value = serde_json::from_str(line).expect("JSON Lines");
                seen.push(v["id"].as_i64().unwrap());
            }
            let Some(more) = err.lines().find(|l| l.starts_with("more: ")) else {
                break;
            };
            assert!(
                more.contains(&format!("--limit {limit}")) && more.contains(" --json"),
                "{filters:?}: the next page keeps its size and format: {more}"
            );
            (page, err, code) = run_more_line(more);
        }
        assert_eq!(
            seen, want,
            "{filters:?}: following the more: lines shows exactly the filtered rows, each \
             once, newest first, ties by id"
        );
        assert_eq!(
            pages,
            want.len().div_ceil(limit.parse().unwrap()),
            "{filters:?}: no empty page at the end: a more: line only when more follows"
        );
    }
}

#[test]
fn prune_yes_keeps_an_undelivered_decision_and_pending_requests() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), 10, 3);
    // Request 11 is a Molecule approval as Molecule names them (UUIDs), so
    // a decision on it is only held up by the platform being unreachable.
    rusqlite::Connection::open(dir.path().join("countersign.sqlite3"))
        .unwrap()
        .execute(
            "UPDATE requests SET remote_id = '6f1c2a4e-93b7-4d0e-a5c8-2b9e7d1f0a31',
                route = '{\"workspace_id\":\"0c9e5b1a-7d42-4f6e-8a3b-5e2d9c4f1b70\"}'
             WHERE id = 11",
            [],
        )
        .unwrap();
    let o = countersign(dir.path())
        .args(["decide", "11", "deny", "--comment", "not today"])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(3),
        "the platform cannot be reached, so the decision waits in the outbox: {} {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );

    let (out, err, code) = lines(
        &[
            "prune",
            "--before",
            "2100-01-01",
            "--keep-decisions",
            "--yes",
        ],
        dir.path(),
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.iter()
            .any(|l| l.contains("dropped the raw payloads of 10 requests")),
        "only the ten delivered requests lose their payloads, not the one whose decision \
         waits: {out:?}"
    );

    let (out, err, code) = lines(&["prune", "--before", "2100-01-01", "--yes"], dir.path());
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.iter().any(|l| l.contains("will delete 10 requests")),
        "the count asked about leaves the undelivered decision out: {out:?}"
    );
    assert!(
        out.iter().any(|l| l.contains("deleted 10 requests")),
        "and prune deletes what it said: {out:?}"
    );

    let (rows, _, _) = lines(&["history", "--json"], dir.path());
    let history: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| serde_json::from_str(r).unwrap())
        .collect();
    assert_eq!(
        history.len(),
        1,
        "the denied request stays in history while its decision waits: {rows:?}"
    );
    assert_eq!(history[0]["id"], 11, "{rows:?}");
    assert_eq!(
        history[0]["delivery"], "queued",
        "its decision is still queued, so `sync` still delivers it: {rows:?}"
    );

    let store = countersign_store::Store::open(&dir.path().join("countersign.sqlite3")).unwrap();
    let open = store.open_decision_for(11).unwrap();
    assert_eq!(
        open.map(|d| d.comment),
        Some(Some("not today".into())),
        "the decision kept everything it will send"
    );
    assert!(
        store.request(11).unwrap().raw.get("pruned").is_none(),
        "the request it answers kept its payload (the connector checks against it)"
    );
    assert_eq!(
        store.pending_count().unwrap(),
        2,
        "the two requests still waiting for a decision stay in the inbox"
    );
}
