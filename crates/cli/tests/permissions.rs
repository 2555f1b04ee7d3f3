//! Who may read the data dir: the real `countersign` binary, run under a
//! permissive `umask 022` (the usual default), must still leave the data dir
//! 0700 and the store with its `-wal`/`-shm` and exports 0600, and must
//! tighten a data dir and store an older version left world-readable.
#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// `countersign --data-dir DIR`, started by `sh` after `umask 022`, so the
/// modes below come from the binary, not from the test runner's umask.
fn countersign(dir: &Path) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(r#"umask 022; exec "$0" "$@""#)
        .arg(env!("CARGO_BIN_EXE_countersign"))
        .arg("--data-dir")
        .arg(dir)
        .env_remove("COUNTERSIGN_DATA_DIR")
        .env_remove("RUST_LOG")
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
        .env("MOLECULE_TOKEN", "perm-token");
    cmd
}

fn run(dir: &Path, args: &[&str]) -> Output {
    let o = countersign(dir)
        .args(args)
        .output()
        .expect("countersign runs");
    assert!(
        o.status.success(),
        "`countersign {}` should succeed on a fresh data dir: {}",
        args.join(" "),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// A command that writes a row: adding an account (no server is asked).
fn add_account(dir: &Path, name: &str) -> Output {
    run(
        dir,
        &[
            "account",
            "add",
            "molecule",
            "--name",
            name,
            "--url",
            "http://127.0.0.1:1",
            "--secret-env",
            "MOLECULE_TOKEN",
            "--secret-store",
            "file",
        ],
    )
}

/// The mode as `ls -l` users read it in octal: "0600".
fn mode(path: &Path) -> String {
    let m = std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{} should exist: {e}", path.display()))
        .permissions()
        .mode();
    format!("{:04o}", m & 0o7777)
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn db(dir: &Path) -> PathBuf {
    dir.join("countersign.sqlite3")
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Kills the long-running `countersign sync` when the test ends, pass or fail.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn under_umask_022_the_data_dir_is_0700_and_the_store_its_wal_and_shm_are_0600() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("data");
    let db = db(&dir);
    let (wal, shm) = (with_suffix(&db, "-wal"), with_suffix(&db, "-shm"));

    // `sync` keeps the store open, so its -wal and -shm stay to be looked at
    // (SQLite deletes them when the last connection closes).
    let sync = countersign(&dir)
        .arg("sync")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("countersign sync starts");
    let _sync = Running(sync);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(wal.exists() && shm.exists()) {
        assert!(
            Instant::now() < deadline,
            "a running `countersign sync` has the store open in WAL mode, so -wal and -shm exist"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // A second process writes while the first holds the store open.
    add_account(&dir, "prod");
    let rows = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("SELECT count(*) FROM accounts", [], |r| r.get::<_, i64>(0))
        .unwrap();
    assert_eq!(
        rows, 1,
        "the account add was written, so the WAL saw a write"
    );

    assert_eq!(
        mode(&dir),
        "0700",
        "the data dir holds every request an agent sent: only its owner may enter, whatever the umask"
    );
    for (path, what) in [(&db, "store"), (&wal, "-wal"), (&shm, "-shm")] {
        assert_eq!(
            mode(path),
            "0600",
            "the {what} holds request payloads: only its owner may read it, though umask 022 would give 0644"
        );
    }
}

#[test]
fn an_export_to_a_file_is_0600_under_umask_022() {
    let dir = tempfile::tempdir().unwrap();
    add_account(dir.path(), "prod");
    let out = dir.path().join("archive.jsonl");
    run(
        dir.path(),
        &[
            "export",
            "--format",
            "jsonl",
            "--output",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(
        mode(&out),
        "0600",
        "an export holds every request's payload: by default only its owner may read it"
    );
}

#[test]
fn a_looser_data_dir_and_store_left_by_an_older_version_are_tightened_on_open_and_logged() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let db = db(dir);
    let (wal, shm) = (with_suffix(&db, "-wal"), with_suffix(&db, "-shm"));
    // What an older version left: the store made under umask 022, and still
    // open in another process (the app), so its -wal and -shm are there too.
    let older = countersign_store::Store::open(&db).unwrap();
    older.pending_count().unwrap();
    for (path, m) in [(dir, 0o755), (&db, 0o644), (&wal, 0o644), (&shm, 0o644)] {
        set_mode(path, m);
    }

    let o = run(dir, &["account", "list"]);

    assert_eq!(
        mode(dir),
        "0700",
        "opening a data dir others may read closes it to them"
    );
    for (path, what) in [(&db, "store"), (&wal, "-wal"), (&shm, "-shm")] {
        assert_eq!(
            mode(path),
            "0600",
            "opening a world-readable {what} makes it private to its owner"
        );
    }
    let stderr = String::from_utf8_lossy(&o.stderr);
    let dir_lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("tightened") && l.contains(&format!("{} from 0755", dir.display())))
        .collect();
    assert_eq!(
        dir_lines.len(),
        1,
        "one warning says the data dir was tightened and from what: {stderr}"
    );
    let file_lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("tightened") && l.contains(&format!("{} (was 0644)", db.display())))
        .collect();
    assert_eq!(
        file_lines.len(),
        1,
        "one warning names the store and its old mode: {stderr}"
    );
    assert!(
        file_lines[0].contains(&format!("{} (was 0644)", wal.display()))
            && file_lines[0].contains(&format!("{} (was 0644)", shm.display())),
        "the same line names the -wal and -shm it tightened: {stderr}"
    );

    let o = run(dir, &["account", "list"]);
    assert!(
        !String::from_utf8_lossy(&o.stderr).contains("tightened"),
        "once private, opening again says nothing: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    drop(older);
}
