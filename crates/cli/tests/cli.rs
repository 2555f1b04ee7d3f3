//! The `countersign` binary against a fake Molecule AI server, as a reviewer
//! on a terminal (or a script) uses it. Every test has its own temp data dir
//! and its own fake on 127.0.0.1:0.

use countersign_fakes::molecule::{Config, FakeMolecule};
use serde_json::Value;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const TOKEN: &str = "s3cret-admin-token";

fn countersign(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_countersign"));
    cmd.arg("--data-dir")
        .arg(dir)
        .env_remove("COUNTERSIGN_DATA_DIR")
        .env_remove("RUST_LOG")
        // No keychain in tests: make that deterministic, whatever the host runs.
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
        .env("MOLECULE_TOKEN", TOKEN)
        .env("BAD_TOKEN", "wrong-token")
        .kill_on_drop(true);
    cmd
}

async fn run(dir: &Path, args: &[&str]) -> Output {
    countersign(dir)
        .args(args)
        .output()
        .await
        .expect("countersign runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

async fn add_account(dir: &Path, name: &str, url: &str, token_var: &str) {
    let o = run(
        dir,
        &[
            "account",
            "add",
            "molecule",
            "--name",
            name,
            "--url",
            url,
            "--secret-env",
            token_var,
            "--secret-store",
            "file",
            "--reviewer",
            "dana@countersign",
        ],
    )
    .await;
    assert!(o.status.success(), "account add failed: {}", stderr(&o));
}

async fn pending_json(dir: &Path) -> Vec<Value> {
    let o = run(dir, &["pending", "--json"]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_slice(&o.stdout).expect("pending --json prints one JSON array")
}

async fn setup() -> (tempfile::TempDir, FakeMolecule, String) {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeMolecule::start(Config::with_admin_token(TOKEN))
        .await
        .unwrap();
    let ws = fake.add_workspace("Release Manager", None);
    add_account(dir.path(), "prod", &fake.url(), "MOLECULE_TOKEN").await;
    (dir, fake, ws)
}

#[tokio::test]
async fn a_request_created_on_the_server_shows_after_sync_once_and_approving_reaches_it() {
    let (dir, fake, ws) = setup().await;
    let approval = fake.create_approval(&ws, "push tag v2.4.0", "CI green on main");

    let o = run(dir.path(), &["sync", "--once"]).await;
    assert!(o.status.success(), "sync --once failed: {}", stderr(&o));
    let pending = pending_json(dir.path()).await;
    assert_eq!(
        pending.len(),
        1,
        "the one request on the server is pending locally"
    );
    let r = &pending[0];
    for field in [
        "id",
        "account",
        "platform",
        "remote_id",
        "kind",
        "title",
        "action",
        "agent",
        "status",
        "created_at",
        "deadline",
        "allowed_decisions",
        "decided_by",
        "decided_at",
        "comment",
    ] {
        assert!(
            r.get(field).is_some(),
            "pending --json objects carry `{field}`: {r}"
        );
    }
    assert_eq!(r["remote_id"], approval.as_str());
    assert_eq!(
        r["agent"], "Release Manager",
        "the workspace name is the agent"
    );
    assert_eq!(r["description"], "CI green on main");

    let id = r["id"].to_string();
    let o = run(
        dir.path(),
        &["decide", &id, "approve", "--comment", "ship it"],
    )
    .await;
    assert!(
        o.status.success(),
        "decide failed: {} {}",
        stdout(&o),
        stderr(&o)
    );
    let received = fake.received_decisions();
    assert_eq!(received.len(), 1, "one decide call reaches the platform");
    assert_eq!(
        received[0].workspace_id, ws,
        "decided with the approval's own workspace"
    );
    assert_eq!(received[0].approval_id, approval);
    assert_eq!(
        received[0].body,
        serde_json::json!({"decision": "approved", "decided_by": "dana@countersign"}),
        "the body is exactly what Molecule accepts, with the reviewer's name"
    );
    assert_eq!(fake.approval(&approval).unwrap().status, "approved");

    assert!(
        pending_json(dir.path()).await.is_empty(),
        "a decided request leaves the inbox"
    );
    let o = run(dir.path(), &["history", "--json", "--search", "ship"]).await;
    let history: Vec<Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).expect("history --json prints JSON Lines"))
        .collect();
    assert_eq!(history.len(), 1, "the comment is searchable in history");
    assert_eq!(history[0]["status"], "approved");
    assert_eq!(history[0]["delivery"], "confirmed");
    assert_eq!(history[0]["decided_by"], "dana@countersign");
}

/// Reads lines until one contains `needle`.
async fn wait_for(
    lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    needle: &str,
) -> String {
    tokio::time::timeout(Duration::from_secs(15), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains(needle) {
                return line;
            }
        }
        panic!("sync exited before printing {needle:?}");
    })
    .await
    .unwrap_or_else(|_| panic!("sync never printed {needle:?}"))
}

#[tokio::test]
async fn a_running_sync_shows_a_new_request_within_a_second() {
    let (dir, fake, ws) = setup().await;
    let mut child = countersign(dir.path())
        .arg("sync")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    wait_for(&mut lines, "prod: connected").await;

    let created = Instant::now();
    fake.create_approval(&ws, "drop table invoices", "cleanup");
    let line = wait_for(&mut lines, "+ ").await;
    let latency = created.elapsed();
    assert!(
        line.contains("drop table invoices"),
        "the printed line names the action: {line}"
    );
    assert!(
        latency < Duration::from_secs(1),
        "pushed requests must show within a second, took {latency:?}"
    );
    assert_eq!(
        pending_json(dir.path()).await.len(),
        1,
        "and it is in the store"
    );
    child.kill().await.unwrap();
}

#[tokio::test]
async fn a_decision_made_while_the_platform_is_down_is_queued_and_delivered_exactly_once() {
    let (dir, fake, ws) = setup().await;
    let approval = fake.create_approval(&ws, "rotate prod db creds", "quarterly");
    assert!(run(dir.path(), &["sync", "--once"]).await.status.success());
    let id = pending_json(dir.path()).await[0]["id"].to_string();

    fake.stop().await;
    let o = run(
        dir.path(),
        &["decide", &id, "deny", "--comment", "not on a Friday"],
    )
    .await;
    assert_eq!(
        o.status.code(),
        Some(3),
        "exit 3 tells a script the decision is queued, not delivered: {} {}",
        stdout(&o),
        stderr(&o)
    );
    assert!(
        stdout(&o).contains("queued"),
        "the user is told: {}",
        stdout(&o)
    );
    assert!(
        pending_json(dir.path()).await.is_empty(),
        "a queued decision already left the inbox"
    );
    let o = run(dir.path(), &["sync", "--once"]).await;
    assert_eq!(
        o.status.code(),
        Some(1),
        "sync --once fails while the platform is down"
    );

    fake.restart().await.unwrap();
    let o = run(dir.path(), &["sync", "--once"]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(run(dir.path(), &["sync", "--once"]).await.status.success());
    let received = fake.received_decisions();
    assert_eq!(received.len(), 1, "delivered exactly once: {received:?}");
    assert_eq!(received[0].body["decision"], "denied");
    assert_eq!(fake.approval(&approval).unwrap().status, "denied");
    let shown: Value =
        serde_json::from_slice(&run(dir.path(), &["show", &id, "--json"]).await.stdout).unwrap();
    assert_eq!(shown["delivery"], "confirmed");
    assert_eq!(
        shown["comment"], "not on a Friday",
        "the comment is kept locally"
    );
}

#[tokio::test]
async fn one_account_with_a_bad_token_does_not_stop_the_other() {
    let (dir, fake, ws) = setup().await;
    add_account(dir.path(), "broken", &fake.url(), "BAD_TOKEN").await;
    fake.create_approval(&ws, "deploy", "");

    let o = run(dir.path(), &["sync", "--once"]).await;
    assert_eq!(
        o.status.code(),
        Some(1),
        "a failed account makes sync --once fail"
    );
    assert!(
        stdout(&o).contains("broken: failed: authentication failed"),
        "{}",
        stdout(&o)
    );
    assert_eq!(
        pending_json(dir.path()).await.len(),
        1,
        "the good account still synced"
    );

    let o = run(dir.path(), &["account", "list", "--json"]).await;
    let accounts: Vec<Value> = serde_json::from_slice(&o.stdout).unwrap();
    let broken = accounts.iter().find(|a| a["name"] == "broken").unwrap();
    assert_eq!(broken["state"], "auth_failed");
    assert!(
        broken["health"]
            .as_str()
            .unwrap()
            .contains("invalid admin auth token"),
        "the platform's reason is shown: {broken}"
    );
}

#[tokio::test]
async fn secrets_never_reach_the_database_or_any_output() {
    let (dir, fake, ws) = setup().await;
    fake.create_approval(&ws, "deploy", "");
    let mut everything = String::new();
    for args in [
        &["sync", "--once"][..],
        &["account", "list", "--json"],
        &["account", "list"],
        &["pending", "--json"],
        &["-vv", "show", "1", "--json"],
        &["export", "--format", "jsonl"],
    ] {
        let o = run(dir.path(), args).await;
        everything.push_str(&stdout(&o));
        everything.push_str(&stderr(&o));
    }
    assert!(!everything.contains(TOKEN), "the token appeared in output");
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("countersign.sqlite3")
        {
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !bytes.windows(TOKEN.len()).any(|w| w == TOKEN.as_bytes()),
                "the token is in {}",
                path.display()
            );
        }
    }
}

#[tokio::test]
async fn without_a_keychain_account_add_fails_clearly_unless_file_is_chosen() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(
        dir.path(),
        &[
            "account",
            "add",
            "molecule",
            "--name",
            "p",
            "--url",
            "http://127.0.0.1:9",
            "--secret-env",
            "MOLECULE_TOKEN",
        ],
    )
    .await;
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("no OS keychain") && err.contains("--secret-store file"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one clear line: {err}");
    let o = run(dir.path(), &["account", "list", "--json"]).await;
    assert_eq!(
        stdout(&o).trim(),
        "[]",
        "a failed add leaves no account behind"
    );
}

#[tokio::test]
async fn bad_input_is_one_line_on_stderr_and_a_non_zero_exit() {
    let (dir, _fake, _ws) = setup().await;
    for (args, code) in [
        (&["show", "999"][..], 1),
        (&["decide", "999", "approve"], 1),
        (&["decide", "abc", "approve"], 2),
        (&["decide", "1", "maybe"], 2),
        (
            &["account", "add", "nope", "--name", "x", "--url", "http://x"],
            2,
        ),
        (
            &[
                "account", "add", "molecule", "--name", "x", "--url", "ftp://x",
            ],
            1,
        ),
        (
            &[
                "account",
                "add",
                "molecule",
                "--name",
                "x",
                "--url",
                "http://u:p@x",
            ],
            1,
        ),
        (
            &[
                "account",
                "add",
                "molecule",
                "--name",
                "y",
                "--url",
                "http://x",
                "--secret-env",
                "UNSET_VAR_X",
            ],
            1,
        ),
        (&["account", "remove", "ghost"], 1),
        (&["history", "--status", "weird"], 2),
    ] {
        let o = run(dir.path(), args).await;
        assert_eq!(o.status.code(), Some(code), "{args:?}: {}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"), "{args:?} panicked");
        if code == 1 {
            assert_eq!(
                stderr(&o).trim().lines().count(),
                1,
                "{args:?}: {}",
                stderr(&o)
            );
        }
    }
}

#[tokio::test]
async fn export_writes_every_request_and_decision() {
    let (dir, fake, ws) = setup().await;
    fake.create_approval(&ws, "a, \"quoted\" action", "x");
    fake.create_approval(&ws, "second", "y");
    run(dir.path(), &["sync", "--once"]).await;
    run(dir.path(), &["decide", "1", "approve"]).await;

    let o = run(dir.path(), &["export", "--format", "jsonl"]).await;
    let lines: Vec<Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "one line per request");
    let decided = lines.iter().find(|l| l["status"] == "approved").unwrap();
    assert_eq!(
        decided["decisions"].as_array().unwrap().len(),
        1,
        "with its decisions"
    );
    assert!(
        decided["raw"].is_object(),
        "and the raw payload as received"
    );

    let out = dir.path().join("all.csv");
    let o = run(
        dir.path(),
        &[
            "export",
            "--format",
            "csv",
            "--output",
            out.to_str().unwrap(),
        ],
    )
    .await;
    assert!(o.status.success());
    let csv = std::fs::read_to_string(out).unwrap();
    assert_eq!(csv.lines().count(), 3, "a header and two rows: {csv}");
    assert!(
        csv.contains("\"a, \"\"quoted\"\" action\""),
        "fields are CSV-quoted: {csv}"
    );
}

mod clawith {
    use super::*;
    use countersign_fakes::clawith::{Config, FakeClawith};

    #[tokio::test]
    async fn a_clawith_account_syncs_decides_and_shows_l2_activity() {
        let dir = tempfile::tempdir().unwrap();
        let fake = FakeClawith::start(Config::default()).await.unwrap();
        let o = countersign(dir.path())
            .args([
                "account",
                "add",
                "clawith",
                "--name",
                "claw",
                "--url",
                &fake.url(),
                "--username",
                "dana@example.org",
                "--secret-env",
                "CLAWITH_PASSWORD",
                "--secret-store",
                "file",
            ])
            .env("CLAWITH_PASSWORD", "hunter22")
            .output()
            .await
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        let o = run(dir.path(), &["sync", "--once"]).await;
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stdout(&o).contains("claw: 2 pending"), "{}", stdout(&o));

        let pending = pending_json(dir.path()).await;
        let legacy = pending
            .iter()
            .find(|r| r["remote_id"] == fake.seed.approvals[0].as_str())
            .unwrap();
        assert_eq!(legacy["agent"], "Archivist");
        assert_eq!(legacy["tier"], "L3");
        let id = legacy["id"].to_string();
        let o = run(
            dir.path(),
            &["decide", &id, "deny", "--comment", "keep the draft"],
        )
        .await;
        assert!(o.status.success(), "{} {}", stdout(&o), stderr(&o));
        assert_eq!(
            fake.received_resolves()[0].body,
            serde_json::json!({"action": "reject"})
        );
        let shown: Value =
            serde_json::from_slice(&run(dir.path(), &["show", &id, "--json"]).await.stdout)
                .unwrap();
        assert_eq!(shown["status"], "denied");
        assert_eq!(
            shown["decided_by"], "dana@example.org",
            "decided as the login, by default"
        );

        // Approving the runtime one: Clawith reports the outcome only in a
        // notification, which the next sync attaches to the request.
        let runtime = pending
            .iter()
            .find(|r| r["remote_id"] == fake.seed.approvals[1].as_str())
            .unwrap();
        let rid = runtime["id"].to_string();
        assert!(run(dir.path(), &["decide", &rid, "approve"])
            .await
            .status
            .success());
        assert!(run(dir.path(), &["sync", "--once"]).await.status.success());
        let shown: Value =
            serde_json::from_slice(&run(dir.path(), &["show", &rid, "--json"]).await.stdout)
                .unwrap();
        let reports = shown["reports"].as_array().unwrap();
        assert!(
            reports
                .iter()
                .any(|r| r["details"]["body"] == "Original Agent Run queued to resume"),
            "the result Clawith reported is in the request's history: {reports:?}"
        );
        let text = stdout(&run(dir.path(), &["show", &rid]).await);
        assert!(
            text.contains("Original Agent Run queued to resume"),
            "{text}"
        );

        let o = run(dir.path(), &["activity", "--json"]).await;
        let items: Vec<Value> = serde_json::from_slice(&o.stdout).unwrap();
        assert!(
            items
                .iter()
                .any(|a| a["title"] == "[Archivist] executed: write_workspace_files"),
            "the L2 action shows in `countersign activity`: {items:?}"
        );
        let o = run(dir.path(), &["account", "list", "--json"]).await;
        assert!(
            !stdout(&o).contains("hunter22"),
            "the password is never printed"
        );

        let o = countersign(dir.path())
            .args([
                "account",
                "add",
                "clawith",
                "--name",
                "nouser",
                "--url",
                &fake.url(),
                "--secret-env",
                "CLAWITH_PASSWORD",
                "--secret-store",
                "file",
            ])
            .env("CLAWITH_PASSWORD", "hunter22")
            .output()
            .await
            .unwrap();
        assert_eq!(o.status.code(), Some(1));
        assert!(
            stderr(&o).contains("username"),
            "a missing --username is explained: {}",
            stderr(&o)
        );
    }

    async fn claw(dir: &Path, args: &[&str], password: &str) -> Output {
        countersign(dir)
            .args(args)
            .env("CLAWITH_PASSWORD", password)
            .output()
            .await
            .unwrap()
    }

    /// Issue 19 as a reviewer meets it: a decision made while Clawith is
    /// down, a colleague's decision, and the account's company deleted.
    #[tokio::test]
    async fn a_clawith_account_stays_in_its_company_and_delivers_right_after_a_refusal() {
        let dir = tempfile::tempdir().unwrap();
        let fake = FakeClawith::start(Config::default()).await.unwrap();
        let (globex, _) = fake.create_company("Globex");
        let dana = fake.add_to_company(&fake.seed.dana_id, &globex, "org_admin");
        let eli = fake.add_to_company(&fake.seed.eli_id, &globex, "member");
        let ledger = fake.add_agent("Ledger", &dana.id, &globex);
        let raise = |path: &str| {
            fake.autonomy(
                &ledger,
                "delete_files",
                "L3",
                serde_json::json!({"tool": "delete_file", "args": {"path": path}}),
            )
            .unwrap()
        };
        let (first, second) = (raise("q3.md"), raise("q4.md"));
        let o = claw(
            dir.path(),
            &[
                "account",
                "add",
                "clawith",
                "--name",
                "claw",
                "--url",
                &fake.url(),
                "--username",
                "dana@example.org",
                "--tenant",
                "Globex",
                "--secret-env",
                "CLAWITH_PASSWORD",
                "--secret-store",
                "file",
            ],
            "hunter22",
        )
        .await;
        assert!(o.status.success(), "{}", stderr(&o));
        let o = run(dir.path(), &["sync", "--once"]).await;
        assert!(
            stdout(&o).contains("claw: 2 pending"),
            "Globex's two approvals, none of the Default company's: {}",
            stdout(&o)
        );
        let pending = pending_json(dir.path()).await;
        let id_of = |remote: &str| {
            pending.iter().find(|r| r["remote_id"] == remote).unwrap()["id"].to_string()
        };
        let (first_id, second_id) = (id_of(&first), id_of(&second));

        // Decided while Clawith refuses connections.
        fake.stop().await;
        let o = run(dir.path(), &["decide", &first_id, "deny"]).await;
        assert_eq!(o.status.code(), Some(3), "queued: {}", stderr(&o));
        let said = stdout(&o);
        assert!(
            said.contains("nothing reached claw") && said.contains("as soon as claw answers"),
            "a refused connection is reported as not sent, to go out as soon as Clawith is back: {said}"
        );
        assert!(
            !said.contains("may still be running"),
            "no talk of a running tool for a request never received: {said}"
        );
        fake.restart().await.unwrap();
        let o = run(dir.path(), &["sync", "--once"]).await;
        assert!(
            stdout(&o).contains("1 decisions delivered"),
            "the first sync after Clawith's return delivers it, not one ten minutes later: {} {}",
            stdout(&o),
            stderr(&o)
        );
        let sent = fake.received_resolves();
        assert_eq!(sent.len(), 1, "sent exactly once: {sent:?}");
        assert_eq!(sent[0].body, serde_json::json!({"action": "reject"}));

        // A colleague resolves the other one in Clawith's web UI.
        fake.resolve_as(&second, &eli.id, true);
        assert!(run(dir.path(), &["sync", "--once"]).await.status.success());
        let shown: Value = serde_json::from_slice(
            &run(dir.path(), &["show", &second_id, "--json"])
                .await
                .stdout,
        )
        .unwrap();
        assert_eq!(
            shown["decided_by"], "Eli Navarro",
            "GET /api/org/users names the colleague, so the id is not shown: {shown}"
        );

        // The company is deleted: Clawith now logs dana into Default.
        fake.delete_company(&globex);
        fake.expire_tokens();
        let o = run(dir.path(), &["sync", "--once"]).await;
        assert_eq!(
            o.status.code(),
            Some(1),
            "the account fails: {}",
            stdout(&o)
        );
        assert!(
            stdout(&o).contains("company Globex no longer exists or you are no longer a member"),
            "{}",
            stdout(&o)
        );
        let listed = stdout(&run(dir.path(), &["account", "list"]).await);
        assert!(
            listed.contains("no longer exists"),
            "the account's health says why: {listed}"
        );
        let history = stdout(&run(dir.path(), &["history", "--json"]).await);
        for foreign in &fake.seed.approvals {
            assert!(
                !history.contains(foreign.as_str()),
                "nothing of the Default company is stored: {history}"
            );
        }
        assert!(
            history.contains(first.as_str()) && history.contains(second.as_str()),
            "the rows the account had stay: {history}"
        );

        // Pointed at the other company with `account edit`, a wrong
        // password first: the new secret replaces the stored one.
        let o = claw(
            dir.path(),
            &[
                "account",
                "edit",
                "claw",
                "--tenant",
                "Default",
                "--secret-env",
                "CLAWITH_PASSWORD",
            ],
            "wrong-password",
        )
        .await;
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(
            stdout(&o).contains("the stored secret is replaced")
                && stdout(&o).contains("history is kept"),
            "{}",
            stdout(&o)
        );
        let o = run(dir.path(), &["sync", "--once"]).await;
        assert!(
            stdout(&o).contains("wrong login or password"),
            "the edited secret is the one used: {}",
            stdout(&o)
        );
        let o = claw(
            dir.path(),
            &[
                "account",
                "edit",
                "claw",
                "--secret-env",
                "CLAWITH_PASSWORD",
            ],
            "hunter22",
        )
        .await;
        assert!(o.status.success(), "{}", stderr(&o));
        let o = run(dir.path(), &["sync", "--once"]).await;
        assert!(
            stdout(&o).contains("claw: 2 pending"),
            "now bound to Default, its approvals: {} {}",
            stdout(&o),
            stderr(&o)
        );
        let history = stdout(&run(dir.path(), &["history", "--json"]).await);
        assert!(
            history.contains(first.as_str()) && history.contains(second.as_str()),
            "editing the account kept its history: {history}"
        );
        let o = run(dir.path(), &["account", "list", "--json"]).await;
        assert!(
            !stdout(&o).contains("hunter22"),
            "the password is never printed"
        );
    }
}

#[tokio::test]
async fn a_snoozed_request_leaves_pending_until_its_time_and_a_bad_time_is_refused() {
    let (dir, fake, ws) = setup().await;
    fake.create_approval(&ws, "rotate prod db creds", "quarterly");
    fake.create_approval(&ws, "push tag v2.4.0", "release");
    assert!(run(dir.path(), &["sync", "--once"]).await.status.success());
    let pending = pending_json(dir.path()).await;
    let id = pending[0]["id"].to_string();

    let o = run(dir.path(), &["snooze", &id, "2h"]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("snoozed request"), "{}", stdout(&o));
    let after = pending_json(dir.path()).await;
    assert_eq!(after.len(), 1, "the snoozed request is out of the list");
    assert_ne!(after[0]["id"].to_string(), id, "the other one stays");
    let o = run(dir.path(), &["pending", "--json", "--snoozed"]).await;
    let snoozed: Vec<Value> = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(snoozed.len(), 1, "--snoozed lists it");
    assert!(
        snoozed[0]["snoozed_until"].is_string(),
        "with when it comes back: {}",
        snoozed[0]
    );

    // Molecule's requests expire 10 minutes after they are raised: a
    // snooze ends 5 minutes before that, not 2 hours later.
    let until = chrono::DateTime::parse_from_rfc3339(snoozed[0]["snoozed_until"].as_str().unwrap())
        .unwrap();
    let deadline =
        chrono::DateTime::parse_from_rfc3339(snoozed[0]["deadline"].as_str().unwrap()).unwrap();
    assert_eq!(
        deadline - until,
        chrono::Duration::minutes(5),
        "a snooze never runs into the deadline"
    );

    for bad in ["soon", "5x", "2026-13-01"] {
        let o = run(dir.path(), &["snooze", &id, bad]).await;
        assert_eq!(o.status.code(), Some(2), "{bad}: {}", stderr(&o));
        assert_eq!(
            stderr(&o).trim().lines().count(),
            1,
            "one line: {}",
            stderr(&o)
        );
    }
}

#[tokio::test]
async fn hidden_characters_are_shown_as_markers_with_a_warning_and_json_stays_exact() {
    let (dir, fake, ws) = setup().await;
    // Reads as "deploy docs.txt" with the override obeyed.
    let action = "deploy \u{202E}txt.exe\u{200B}";
    fake.create_approval(&ws, action, "from pаypal"); // Cyrillic а
    assert!(run(dir.path(), &["sync", "--once"]).await.status.success());

    let o = run(dir.path(), &["pending"]).await;
    let text = stdout(&o);
    assert!(
        text.contains("deploy ⟨U+202E⟩txt.exe⟨U+200B⟩"),
        "the override is shown, never obeyed: {text}"
    );
    assert!(
        !text.contains('\u{202E}'),
        "no live bidi control reaches the terminal"
    );
    assert!(text.contains("[hidden]"), "the row is marked: {text}");

    let json = pending_json(dir.path()).await;
    assert_eq!(
        json[0]["action"], action,
        "JSON keeps the exact text for scripts"
    );
    let id = json[0]["id"].to_string();
    let shown = stdout(&run(dir.path(), &["show", &id]).await);
    assert!(
        shown.contains("WARNING:") && shown.contains("⟨U+202E⟩ (changes text direction)"),
        "show says what is hidden: {shown}"
    );
    assert!(
        shown.contains("pаypal"),
        "and names the mixed-script word: {shown}"
    );

    let o = run(dir.path(), &["decide", &id, "deny"]).await;
    assert!(o.status.success(), "deciding still works: {}", stderr(&o));
    assert!(
        stdout(&o).contains("warning: request"),
        "decide repeats the warning: {}",
        stdout(&o)
    );
}
