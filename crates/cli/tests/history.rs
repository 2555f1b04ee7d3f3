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
