//! Secrets never leave the secret store: a whole session of the real
//! `countersign` binary (add accounts, sync, decide, a wrong token and a
//! wrong password, exports, history, show), with debug logging on, against
//! fake Molecule and Clawith servers on 127.0.0.1. Then every file in the
//! data dir (the store, its `-wal` and `-shm` while they exist, lock files,
//! the exports) and every byte the CLI printed is searched for each secret.
//! Only `secrets.json`, the file secret store chosen with `--secret-store
//! file`, may hold them.

use countersign_fakes::clawith::FakeClawith;
use countersign_fakes::molecule::{Config, FakeMolecule};
use std::path::{Path, PathBuf};
use tokio::process::Command;

/// Molecule's admin token: recognisable, so any copy of it is found.
const TOKEN: &str = "tok-LEAKCHECK-7f3a9";
/// A token Molecule refuses.
const WRONG_TOKEN: &str = "tok-LEAKCHECK-wrong-2b8e";
/// The fake Clawith's seeded password for dana.
const PASSWORD: &str = "hunter22";
/// A password Clawith refuses.
const WRONG_PASSWORD: &str = "pw-LEAKCHECK-wrong-4c1d";
/// The header of every JWT the fake Clawith issues (`{"alg":"HS256",
/// "typ":"JWT"}`, base64url): the start of the token a login returns, which
/// the Clawith connector keeps in memory only.
const JWT_HEADER: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

const SECRETS: [&str; 5] = [TOKEN, WRONG_TOKEN, PASSWORD, WRONG_PASSWORD, JWT_HEADER];

fn countersign(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_countersign"));
    cmd.arg("--data-dir")
        .arg(dir)
        // Debug logging everywhere: a secret in any log line would show.
        .arg("-vv")
        .env_remove("COUNTERSIGN_DATA_DIR")
        .env_remove("RUST_LOG")
        // No keychain in tests: secrets go to the file store, which we skip.
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
        .env("MOLECULE_TOKEN", TOKEN)
        .env("WRONG_TOKEN", WRONG_TOKEN)
        .env("CLAWITH_PASSWORD", PASSWORD)
        .env("WRONG_PASSWORD", WRONG_PASSWORD)
        .kill_on_drop(true);
    cmd
}

/// Everything the CLI printed, on both streams, and whether it succeeded.
#[derive(Default)]
struct Session {
    printed: Vec<u8>,
    failures: Vec<String>,
}

impl Session {
    async fn run(&mut self, dir: &Path, args: &[&str]) -> bool {
        self.output(countersign(dir).args(args), args)
            .await
            .status
            .success()
    }

    async fn output(&mut self, cmd: &mut Command, args: &[&str]) -> std::process::Output {
        let o = cmd.output().await.expect("countersign runs");
        self.printed.extend_from_slice(&o.stdout);
        self.printed.extend_from_slice(&o.stderr);
        if !o.status.success() {
            self.failures.push(args.join(" "));
        }
        o
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Every file under `dir`, in subdirectories too.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn add_molecule(name: &str, url: &str, env: &str) -> Vec<String> {
    [
        "account",
        "add",
        "molecule",
        "--name",
        name,
        "--url",
        url,
        "--secret-env",
        env,
        "--secret-store",
        "file",
        "--reviewer",
        "dana@countersign",
    ]
    .map(String::from)
    .to_vec()
}

fn add_clawith(name: &str, url: &str, env: &str) -> Vec<String> {
    [
        "account",
        "add",
        "clawith",
        "--name",
        name,
        "--url",
        url,
        "--username",
        "dana@example.org",
        "--secret-env",
        env,
        "--secret-store",
        "file",
    ]
    .map(String::from)
    .to_vec()
}

#[tokio::test]
async fn no_secret_reaches_the_store_its_wal_logs_exports_or_any_output() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let molecule = FakeMolecule::start(Config::with_admin_token(TOKEN))
        .await
        .unwrap();
    let ws = molecule.add_workspace("Release Manager", None);
    molecule.create_approval(&ws, "push tag v2.4.0", "CI green on main");
    molecule.create_approval(&ws, "drop table users", "cleanup");
    let clawith = FakeClawith::start(Default::default()).await.unwrap();
    let mut s = Session::default();

    let args = add_molecule("prod", &molecule.url(), "MOLECULE_TOKEN");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert!(
        s.run(dir, &args).await,
        "adding the good Molecule account works"
    );

    // Held open for the whole session, so SQLite never deletes the -wal and
    // -shm (it does when the last connection closes) and whatever the CLI
    // wrote through them is still there to search.
    let holder = rusqlite::Connection::open(dir.join("countersign.sqlite3")).unwrap();
    let _: i64 = holder
        .query_row("SELECT count(*) FROM accounts", [], |r| r.get(0))
        .unwrap();

    let args = add_clawith("claw", &clawith.url(), "CLAWITH_PASSWORD");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert!(
        s.run(dir, &args).await,
        "adding the good Clawith account works"
    );
    assert!(
        s.run(dir, &["sync", "--once"]).await,
        "both good accounts sync"
    );
    assert!(s.run(dir, &["pending"]).await);
    let o = s
        .output(countersign(dir).args(["pending", "--json"]), &["pending"])
        .await;
    let pending: Vec<serde_json::Value> =
        serde_json::from_slice(&o.stdout).expect("pending --json prints a JSON array");
    let ids: Vec<String> = pending
        .iter()
        .filter(|r| r["account"] == "prod")
        .map(|r| r["id"].to_string())
        .collect();
    assert_eq!(ids.len(), 2, "both Molecule requests synced: {pending:?}");
    assert!(
        s.run(dir, &["decide", &ids[0], "approve", "--comment", "ship it"])
            .await,
        "approving a Molecule request works"
    );
    assert!(s.run(dir, &["decide", &ids[1], "deny"]).await);
    let claw = pending
        .iter()
        .find(|r| r["account"] == "claw")
        .expect("the Clawith requests synced")["id"]
        .to_string();
    assert!(
        s.run(dir, &["decide", &claw, "deny", "--comment", "not now"])
            .await,
        "denying a Clawith request works, with its session"
    );
    assert_eq!(
        molecule.received_decisions().len(),
        2,
        "both decisions were sent with the token, so it was used"
    );

    // Wrong credentials: the errors must not quote them.
    let args = add_molecule("broken", &molecule.url(), "WRONG_TOKEN");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    s.run(dir, &args).await;
    let args = add_clawith("claw-broken", &clawith.url(), "WRONG_PASSWORD");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    s.run(dir, &args).await;
    s.run(dir, &["sync", "--once"]).await;
    assert!(
        s.failures.iter().any(|f| f.contains("sync")),
        "a wrong token and a wrong password make something fail, so their errors were printed: {:?}",
        s.failures
    );
    // A trace-level sync too: the HTTP layers' own logs must not carry them.
    s.output(
        countersign(dir)
            .env("RUST_LOG", "trace")
            .args(["sync", "--once"]),
        &["RUST_LOG=trace sync --once"],
    )
    .await;

    let jsonl = dir.join("export.jsonl");
    let csv = dir.join("export.csv");
    for (format, path) in [("jsonl", &jsonl), ("csv", &csv)] {
        assert!(
            s.run(
                dir,
                &[
                    "export",
                    "--format",
                    format,
                    "--output",
                    path.to_str().unwrap()
                ]
            )
            .await,
            "export --format {format} to a file works"
        );
    }
    for args in [
        &["export", "--format", "jsonl"][..],
        &["export", "--format", "csv"],
        &["history"],
        &["history", "--json"],
        &["show", &ids[0]],
        &["show", &ids[0], "--json"],
        &["show", &claw, "--json"],
        &["account", "list"],
        &["account", "list", "--json"],
        &["activity", "--json"],
    ] {
        assert!(s.run(dir, args).await, "`{}` works", args.join(" "));
    }

    let wal = dir.join("countersign.sqlite3-wal");
    let shm = dir.join("countersign.sqlite3-shm");
    assert!(
        wal.exists() && shm.exists(),
        "the held connection keeps the -wal and -shm, so they are searched too"
    );
    assert!(
        std::fs::metadata(&wal).unwrap().len() > 0,
        "the WAL holds the session's writes (none checkpointed away by a last close)"
    );
    let all = files(dir);
    for must in [&jsonl, &csv, &wal, &shm] {
        assert!(all.contains(must), "{} is searched", must.display());
    }
    let secrets_file = dir.join("secrets.json");
    let stored = std::fs::read(&secrets_file).expect("secrets.json holds the secrets");
    for secret in [TOKEN, PASSWORD] {
        assert!(
            contains(&stored, secret),
            "the file secret store holds `{secret}`, so the search below can find it where it should not be"
        );
    }
    assert!(
        clawith.logins() > 0,
        "Clawith issued login tokens, so there were JWTs that could leak"
    );
    assert!(
        contains(&s.printed, "authentication failed"),
        "the wrong credentials' errors are in the captured output being searched"
    );

    let mut leaks = Vec::new();
    for secret in SECRETS {
        if contains(&s.printed, secret) {
            leaks.push(format!("`{secret}` in the CLI's output"));
        }
        for path in all.iter().filter(|p| **p != secrets_file) {
            let bytes = std::fs::read(path).unwrap();
            if contains(&bytes, secret) {
                leaks.push(format!("`{secret}` in {}", path.display()));
            }
        }
    }
    assert!(
        leaks.is_empty(),
        "secrets belong only in the secret store, never in the database, its WAL, logs, exports or output: {leaks:#?}"
    );
    drop(holder);
}
