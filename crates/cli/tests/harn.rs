//! The `countersign` binary with a harn project's event log: adding the
//! account by path, listing, and every answer verb harn takes.

use countersign_fakes::harn::{ApprovalOptions, FakeHarnLog, WaitOutcome};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Output;
use std::time::Duration;
use tokio::process::Command;

async fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_countersign"))
        .arg("--data-dir")
        .arg(dir)
        .env_remove("COUNTERSIGN_DATA_DIR")
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
        .args(args)
        .output()
        .await
        .expect("countersign runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

async fn pending(dir: &Path) -> Vec<Value> {
    let o = run(dir, &["pending", "--json"]).await;
    assert!(o.status.success(), "{}", text(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// The local id of the ask under harn request id `request`; its remote id
/// is `<request id>@<event id of its request event>`.
fn id_of(list: &[Value], request: &str) -> String {
    list.iter()
        .find(|r| {
            r["remote_id"]
                .as_str()
                .and_then(|id| id.rsplit_once('@'))
                .is_some_and(|(id, _)| id == request)
        })
        .unwrap_or_else(|| panic!("{request} listed in {list:?}"))["id"]
        .to_string()
}

#[tokio::test]
async fn a_harn_project_is_added_by_path_and_answered_from_the_command_line() {
    let data = tempfile::tempdir().unwrap();
    let project = tempfile::tempdir().unwrap();
    let log = FakeHarnLog::create(project.path());
    let approval = log.request_approval(
        "deploy production",
        &ApprovalOptions {
            reviewers: vec!["alice".into()],
            ..Default::default()
        },
    );
    let question = log.ask_user(
        "How many replicas?",
        Some(json!({"type": "integer"})),
        None,
        Duration::from_secs(600),
    );
    let escalation = log.escalate_to("sre-oncall", "disk almost full");
    let (wa, wq, we) = (
        log.wait(&approval),
        log.wait(&question),
        log.wait(&escalation),
    );

    let project_dir = project.path().to_str().unwrap();
    let o = run(
        data.path(),
        &[
            "account",
            "add",
            "harn",
            "--name",
            "agents",
            "--event-log",
            project_dir,
            "--reviewer",
            "alice",
        ],
    )
    .await;
    assert!(
        o.status.success(),
        "adding by project directory works: {}",
        text(&o.stderr)
    );
    assert!(
        text(&o.stdout).contains("events.sqlite"),
        "the log found under .harn/ is shown: {}",
        text(&o.stdout)
    );

    let o = run(data.path(), &["sync", "--once"]).await;
    assert!(o.status.success(), "{}", text(&o.stderr));
    let list = pending(data.path()).await;
    assert_eq!(
        list.len(),
        3,
        "approval, question and escalation are all listed"
    );

    let q = id_of(&list, &question);
    let o = run(
        data.path(),
        &["decide", &q, "answer", "--value", "\"three\""],
    )
    .await;
    assert!(
        !o.status.success(),
        "an answer that breaks the schema is refused before it is written"
    );
    assert!(
        text(&o.stderr).contains("schema"),
        "and the message says why: {}",
        text(&o.stderr)
    );
    let o = run(data.path(), &["decide", &q, "approve"]).await;
    assert!(
        text(&o.stderr).contains("accepts only: respond"),
        "a question cannot be approved: {}",
        text(&o.stderr)
    );
    let o = run(data.path(), &["decide", &q, "answer", "--value", "3"]).await;
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(
        wq.result(Duration::from_secs(2)).unwrap().0,
        WaitOutcome::Completed(json!(3)),
        "the script gets 3"
    );

    let o = run(
        data.path(),
        &[
            "decide",
            &id_of(&list, &approval),
            "approve",
            "--comment",
            "go",
        ],
    )
    .await;
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(matches!(
        wa.result(Duration::from_secs(2)).unwrap().0,
        WaitOutcome::Completed(_)
    ));

    let o = run(
        data.path(),
        &["decide", &id_of(&list, &escalation), "accept"],
    )
    .await;
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(matches!(
        we.result(Duration::from_secs(2)).unwrap().0,
        WaitOutcome::Completed(_)
    ));
    assert!(pending(data.path()).await.is_empty());
    countersign_fakes::harn::verify_log(log.path()).expect("valid provenance");
}

#[tokio::test]
async fn a_missing_event_log_is_one_clear_line() {
    let data = tempfile::tempdir().unwrap();
    let nowhere = tempfile::tempdir().unwrap();
    let o = run(
        data.path(),
        &[
            "account",
            "add",
            "harn",
            "--name",
            "x",
            "--event-log",
            nowhere.path().to_str().unwrap(),
        ],
    )
    .await;
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(
        err.contains("no harn event log") && err.lines().count() == 1,
        "{err}"
    );
}
