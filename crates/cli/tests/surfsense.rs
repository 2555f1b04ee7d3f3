//! The `countersign` binary with a SurfSense account: adding it by email
//! and password or by personal access token, holding a thread's first
//! decision, and answering a whole thread at once.

use countersign_fakes::surfsense::{Config, FakeSurfSense};
use serde_json::Value;
use std::path::Path;
use std::process::Output;
use tokio::process::Command;

async fn run(dir: &Path, envs: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_countersign"));
    cmd.arg("--data-dir")
        .arg(dir)
        .env_remove("COUNTERSIGN_DATA_DIR")
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.args(args).output().await.expect("countersign runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The local id of the ask `thread:tool_call_id` (its remote id goes on
/// with `:interrupt_id`).
fn id_of(list: &[Value], remote: &str) -> String {
    list.iter()
        .find(|r| {
            r["remote_id"]
                .as_str()
                .is_some_and(|id| id.starts_with(&format!("{remote}:")))
        })
        .unwrap_or_else(|| panic!("{remote} is listed"))["id"]
        .to_string()
}

async fn pending(dir: &Path) -> Vec<Value> {
    let o = run(dir, &[], &["pending", "--json"]).await;
    assert!(o.status.success(), "{}", text(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[tokio::test]
async fn a_thread_is_answered_from_the_command_line_in_one_resume() {
    let fake = FakeSurfSense::start(Config::default()).await.unwrap();
    let data = tempfile::tempdir().unwrap();
    let url = fake.url();
    let o = run(
        data.path(),
        &[("SURF_PASSWORD", &fake.seed.password)],
        &[
            "account",
            "add",
            "surfsense",
            "--name",
            "surf",
            "--url",
            &url,
            "--username",
            &fake.seed.email,
            "--secret-env",
            "SURF_PASSWORD",
            "--secret-store",
            "file",
        ],
    )
    .await;
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = run(data.path(), &[], &["sync", "--once"]).await;
    assert!(o.status.success(), "{}", text(&o.stderr));
    let list = pending(data.path()).await;
    assert_eq!(list.len(), 6, "every ask of every thread is listed");

    let rm = id_of(&list, "318:call_Qm81xv");
    let o = run(
        data.path(),
        &[],
        &["decide", &rm, "deny", "--comment", "keep the archive"],
    )
    .await;
    assert_eq!(
        o.status.code(),
        Some(3),
        "held counts as queued: {}",
        text(&o.stderr)
    );
    let out = text(&o.stdout);
    assert!(
        out.contains("waiting for 1 more"),
        "the user learns the thread needs one more decision: {out}"
    );
    assert!(
        out.contains("drops decision comments"),
        "and that SurfSense will not see the comment: {out}"
    );
    assert!(fake.received_resumes().is_empty());

    let o = run(
        data.path(),
        &[],
        &["decide", &id_of(&list, "318:call_Hd20pe"), "always"],
    )
    .await;
    assert!(
        text(&o.stderr).contains("accepts only: approve, deny, edit"),
        "a Gmail card does not offer always: {}",
        text(&o.stderr)
    );
    let o = run(
        data.path(),
        &[],
        &["decide", &id_of(&list, "318:call_Hd20pe"), "approve"],
    )
    .await;
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(fake.received_resumes().len(), 1);
    assert!(fake.pending(318).is_empty());
}

#[tokio::test]
async fn a_personal_access_token_account_approves_a_whole_thread() {
    let fake = FakeSurfSense::start(Config::default()).await.unwrap();
    fake.interrupt(
        fake.seed.automation_thread,
        countersign_fakes::surfsense::fixtures::kb_rm("call_Two002", "/documents/old.md"),
    );
    let pat = fake.create_pat();
    let data = tempfile::tempdir().unwrap();
    let url = fake.url();
    let o = run(
        data.path(),
        &[("SURF_PAT", &pat)],
        &[
            "account",
            "add",
            "surfsense",
            "--name",
            "surf",
            "--url",
            &url,
            "--token-env",
            "SURF_PAT",
            "--secret-store",
            "file",
        ],
    )
    .await;
    assert!(o.status.success(), "{}", text(&o.stderr));
    run(data.path(), &[], &["sync", "--once"]).await;
    let list = pending(data.path()).await;
    let o = run(
        data.path(),
        &[],
        &[
            "decide",
            &id_of(&list, "413:call_Au77qz"),
            "approve",
            "--thread",
        ],
    )
    .await;
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("decided all of thread “Morning digest”"));
    assert_eq!(
        fake.received_resumes().len(),
        1,
        "both asks went in one call"
    );
    assert_eq!(fake.applied().len(), 2);
    assert_eq!(fake.logins(), 0, "a token account never logs in");
}

#[tokio::test]
async fn twenty_commands_in_a_minute_sign_in_once() {
    // The real limit: 5 logins a minute per IP.
    let fake = FakeSurfSense::start(Config::default()).await.unwrap();
    let data = tempfile::tempdir().unwrap();
    let url = fake.url();
    let envs = [("SURF_PASSWORD", fake.seed.password.as_str())];
    let add = [
        "account",
        "add",
        "surfsense",
        "--name",
        "surf",
        "--url",
        &url,
        "--username",
        &fake.seed.email,
        "--secret-env",
        "SURF_PASSWORD",
        "--secret-store",
        "file",
    ];
    let o = run(data.path(), &envs, &add).await;
    assert!(o.status.success(), "{}", text(&o.stderr));
    let mut commands = 1;
    for _ in 0..16 {
        let o = run(data.path(), &[], &["sync", "--once"]).await;
        assert!(o.status.success(), "sync {commands}: {}", text(&o.stderr));
        commands += 1;
    }
    let list = pending(data.path()).await;
    commands += 1;
    for (remote, how) in [("318:call_Qm81xv", "deny"), ("318:call_Hd20pe", "approve")] {
        let o = run(data.path(), &[], &["decide", &id_of(&list, remote), how]).await;
        assert!(
            o.status.code() == Some(0) || o.status.code() == Some(3),
            "{}",
            text(&o.stderr)
        );
        commands += 1;
    }
    assert_eq!(commands, 20);
    assert_eq!(
        fake.received_resumes().len(),
        1,
        "the thread was answered, so every command was signed in"
    );
    assert_eq!(
        fake.logins(),
        1,
        "each command reuses the stored session instead of logging in again"
    );
    assert_eq!(fake.rate_limited_logins(), 0);
    let secrets = std::fs::read_to_string(data.path().join("secrets.json")).unwrap();
    assert!(
        secrets.contains(".session"),
        "the session is kept in the account's secret store"
    );
}

#[tokio::test]
async fn a_deny_surfsense_ran_on_after_says_so_in_decide_show_and_history() {
    let fake = FakeSurfSense::start(Config::default()).await.unwrap();
    let data = tempfile::tempdir().unwrap();
    let url = fake.url();
    let o = run(
        data.path(),
        &[("SURF_PASSWORD", &fake.seed.password)],
        &[
            "account",
            "add",
            "surfsense",
            "--name",
            "surf",
            "--url",
            &url,
            "--username",
            &fake.seed.email,
            "--secret-env",
            "SURF_PASSWORD",
            "--secret-store",
            "file",
        ],
    )
    .await;
    assert!(o.status.success(), "{}", text(&o.stderr));
    run(data.path(), &[], &["sync", "--once"]).await;
    let list = pending(data.path()).await;
    let doom = list
        .iter()
        .find(|r| r["action"] == "unknown_tool")
        .expect("the doom-loop guard is listed")["id"]
        .to_string();
    let o = run(data.path(), &[], &["decide", &doom, "deny"]).await;
    let said = text(&o.stdout);
    assert!(
        said.contains("delivered, but SurfSense continued the run despite the deny"),
        "{said}"
    );
    let shown = text(&run(data.path(), &[], &["show", &doom]).await.stdout);
    assert!(
        shown.contains("SurfSense continued the run despite the deny"),
        "{shown}"
    );
    let history = run(data.path(), &[], &["history", "--json"]).await;
    let rows: Vec<Value> = String::from_utf8_lossy(&history.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("history --json prints JSON Lines"))
        .collect();
    let doom_id: i64 = doom.parse().unwrap();
    let row = rows.iter().find(|r| r["id"] == doom_id).unwrap();
    assert!(
        row["delivery_note"]
            .as_str()
            .is_some_and(|n| n.contains("despite the deny")),
        "{row}"
    );
}
