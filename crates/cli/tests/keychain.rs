//! The OS keychain path, for real: each run gets its own D-Bus session and a
//! fresh, unlocked gnome-keyring (Secret Service), so nothing touches the
//! user's keyring. Needs `dbus-run-session`, `gnome-keyring-daemon` and
//! `secret-tool`, which `scripts/setup.sh` installs.

use countersign_fakes::molecule::{Config, FakeMolecule};
use tokio::process::Command;

const TOKEN: &str = "keychain-token-4711";

#[tokio::test]
async fn the_token_lives_in_the_keychain_and_leaves_with_the_account() {
    let dir = tempfile::tempdir().unwrap();
    // gnome-keyring keeps its keyrings under $HOME: give it a throwaway one.
    let home = tempfile::tempdir().unwrap();
    let fake = FakeMolecule::start(Config::with_admin_token(TOKEN))
        .await
        .unwrap();
    let ws = fake.add_workspace("Release Manager", None);
    fake.create_approval(&ws, "deploy", "");

    let script = r#"
        set -e
        echo -n pw | gnome-keyring-daemon --unlock --components=secrets >/dev/null
        sleep 1
        "$CS" --data-dir "$DIR" account add molecule --name kc --url "$URL" --secret-env TOKEN
        test ! -e "$DIR/secrets.json"
        "$CS" --data-dir "$DIR" sync --once
        echo "keyring entries: $(secret-tool search --all service countersign 2>&1 | grep -c '^secret = ')"
        "$CS" --data-dir "$DIR" account remove kc
        echo "after remove: $(secret-tool search --all service countersign 2>&1 | grep -c '^secret = ' || true)"
    "#;
    let out = Command::new("dbus-run-session")
        .args(["--", "sh", "-c", script])
        .env("CS", env!("CARGO_BIN_EXE_countersign"))
        .env("DIR", dir.path())
        .env("URL", fake.url())
        .env("TOKEN", TOKEN)
        .env("HOME", home.path())
        .env("XDG_DATA_HOME", home.path().join("data"))
        .env("XDG_RUNTIME_DIR", home.path())
        .env_remove("COUNTERSIGN_DATA_DIR")
        .output()
        .await
        .expect("dbus-run-session is installed (scripts/setup.sh)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "keychain run failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("kc: 1 pending"),
        "the token read back from the keychain works: {stdout}"
    );
    assert!(
        stdout.contains("keyring entries: 1"),
        "the token is in the keychain: {stdout}"
    );
    assert!(
        stdout.contains("after remove: 0"),
        "removing the account removes its secret: {stdout}"
    );
    assert!(
        !stdout.contains(TOKEN) && !stderr.contains(TOKEN),
        "the token is never printed"
    );
}
