//! `countersign notifications …`: the switches the desktop app shares,
//! set from a terminal or a script.

use std::path::Path;
use std::process::{Command, Output};

fn countersign(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_countersign"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("COUNTERSIGN_DATA_DIR")
        .env_remove("RUST_LOG")
        .output()
        .expect("countersign runs")
}

fn shown(dir: &Path) -> serde_json::Value {
    let o = countersign(dir, &["notifications", "show", "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).expect("show --json prints one JSON object")
}

#[test]
fn switches_set_from_the_cli_are_saved_for_the_app() {
    let dir = tempfile::tempdir().unwrap();
    let fresh = shown(dir.path());
    assert_eq!(
        fresh["notify_actions"], false,
        "decide buttons are off until turned on"
    );
    assert_eq!(
        fresh["quiet_hours"],
        serde_json::Value::Null,
        "no quiet hours at first"
    );

    let o = countersign(dir.path(), &["notifications", "quiet-hours", "22:00-07:00"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("quiet hours     22:00-07:00 local time"),
        "the new state is printed: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(countersign(dir.path(), &["notifications", "actions", "on"])
        .status
        .success());
    let o = countersign(dir.path(), &["notifications", "dnd", "on", "--for", "1h"]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("do not disturb  on until"),
        "a timed pause says when it ends: {}",
        String::from_utf8_lossy(&o.stdout)
    );

    let saved = shown(dir.path());
    assert_eq!(
        saved["quiet_hours"]["start"], "22:00:00",
        "kept in the data dir"
    );
    assert_eq!(saved["notify_actions"], true);
    assert_eq!(saved["dnd"], true);
    assert!(saved["dnd_until"].is_string(), "the pause ends by itself");
    let file = std::fs::read_to_string(dir.path().join("notifications.json")).unwrap();
    assert!(
        file.contains("22:00"),
        "the app reads the same file the CLI wrote: {file}"
    );

    assert!(
        countersign(dir.path(), &["notifications", "quiet-hours", "off"])
            .status
            .success()
    );
    assert_eq!(
        shown(dir.path())["quiet_hours"],
        serde_json::Value::Null,
        "off clears them"
    );
}

#[test]
fn a_bad_spec_is_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["notifications", "quiet-hours", "late"][..],
        &["notifications", "quiet-hours", "22:00-22:00"][..],
        &["notifications", "dnd", "on", "--for", "tomorrow"][..],
    ] {
        let o = countersign(dir.path(), args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(
            o.status.code(),
            Some(2),
            "refused as bad input: {args:?} {err}"
        );
        assert_eq!(
            err.trim().lines().count(),
            1,
            "one line says what was expected: {err}"
        );
    }
    assert!(
        !dir.path().join("notifications.json").exists(),
        "nothing is saved from a bad spec"
    );
}
