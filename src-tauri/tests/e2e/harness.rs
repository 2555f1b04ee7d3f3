//! A private desktop for one end-to-end test: its own X server (Xvfb), its
//! own D-Bus session with a notification server (dunst), a bus recorder
//! (dbus-monitor) and a keychain (gnome-keyring), its own data dir and HOME,
//! and the real Countersign binary driven through tauri-driver and
//! WebKitWebDriver. Nothing touches the user's display, bus, keyring or data.

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tempfile::TempDir;

/// One app at a time: each test's desktop (WebKit, Xvfb, D-Bus) is heavy
/// for a two-core machine, and timing assertions need a quiet one.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub struct Desktop {
    _turn: tokio::sync::MutexGuard<'static, ()>,
    pub client: Client,
    /// DISPLAY and DBUS_SESSION_BUS_ADDRESS of this private desktop.
    session: Vec<(&'static str, String)>,
    pub data: TempDir,
    /// The app's HOME (and XDG dirs under it): `~/.config/autostart` is here.
    pub home: TempDir,
    pub bus_log: PathBuf,
    children: Vec<(&'static str, Child)>,
    /// When the app was asked to start (the WebDriver session began): what
    /// a start-up time counts from (read by `benches/cold_start.rs`).
    #[allow(dead_code)]
    pub started: std::time::Instant,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn spawn(name: &'static str, cmd: &mut Command) -> (&'static str, Child) {
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {name} ({e}); scripts/setup.sh installs it"));
    (name, child)
}

/// An X display number nobody uses.
fn free_display() -> u32 {
    (0..400)
        .map(|i| 100 + (std::process::id() + i * 7) % 800)
        .find(|n| !Path::new(&format!("/tmp/.X{n}-lock")).exists())
        .expect("a free X display")
}

async fn eventually_true(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..200 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

impl Desktop {
    /// Starts everything. `prepare` may fill the data dir before the app starts.
    pub async fn launch(prepare: impl FnOnce(&Path)) -> Desktop {
        Self::launch_with(prepare, true).await
    }

    /// [`Desktop::launch`]; without `dunst`, no notification server runs
    /// (a test brings its own, see `notification_server.rs`).
    pub async fn launch_with(prepare: impl FnOnce(&Path), dunst: bool) -> Desktop {
        Self::launch_args(prepare, dunst, &[]).await
    }

    /// [`Desktop::launch_with`], starting the app with `args`.
    pub async fn launch_args(prepare: impl FnOnce(&Path), dunst: bool, args: &[&str]) -> Desktop {
        let turn = ONE_AT_A_TIME.lock().await;
        let data = tempfile::tempdir().unwrap();
        let home = tempfile::tempdir().unwrap();
        prepare(data.path());
        let mut children = Vec::new();

        let display = free_display();
        let display_env = format!(":{display}");
        children.push(spawn(
            "Xvfb",
            Command::new("Xvfb")
                .args([
                    &display_env,
                    "-screen",
                    "0",
                    "1280x860x24",
                    "-nolisten",
                    "tcp",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        ));
        let socket = PathBuf::from(format!("/tmp/.X11-unix/X{display}"));
        eventually_true("Xvfb", || socket.exists()).await;

        let (name, mut bus) = spawn(
            "dbus-daemon",
            Command::new("dbus-daemon")
                .args(["--session", "--nofork", "--print-address=1"])
                .stdout(Stdio::piped())
                .stderr(Stdio::null()),
        );
        let mut address = String::new();
        BufReader::new(bus.stdout.take().unwrap())
            .read_line(&mut address)
            .unwrap();
        let address = address.trim().to_owned();
        children.push((name, bus));

        let env = |cmd: &mut Command| {
            cmd.env("DISPLAY", &display_env)
                .env("DBUS_SESSION_BUS_ADDRESS", &address)
                .env("HOME", home.path())
                .env("XDG_RUNTIME_DIR", home.path())
                .env("XDG_DATA_HOME", home.path().join("data"))
                .env("XDG_CONFIG_HOME", home.path().join("config"))
                .env("COUNTERSIGN_DATA_DIR", data.path())
                .env_remove("WAYLAND_DISPLAY");
        };

        let mut keyring = Command::new("sh");
        keyring
            .args([
                "-c",
                "echo -n pw | gnome-keyring-daemon --unlock --components=secrets",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        env(&mut keyring);
        let status = keyring
            .status()
            .expect("gnome-keyring-daemon (scripts/setup.sh)");
        assert!(status.success(), "the test keyring did not start");

        if dunst {
            let mut dunst = Command::new("dunst");
            dunst.stdout(Stdio::null()).stderr(Stdio::null());
            env(&mut dunst);
            children.push(spawn("dunst", &mut dunst));
        }

        let bus_log = home.path().join("bus.log");
        let mut monitor = Command::new("dbus-monitor");
        monitor
            .args([
                "--address",
                &address,
                "interface='org.freedesktop.Notifications'",
            ])
            .stdout(std::fs::File::create(&bus_log).unwrap())
            .stderr(Stdio::null());
        children.push(spawn("dbus-monitor", &mut monitor));

        let port = free_port();
        let mut driver = Command::new("tauri-driver");
        driver
            .args([
                "--port",
                &port.to_string(),
                "--native-port",
                &free_port().to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        env(&mut driver);
        children.push(spawn("tauri-driver", &mut driver));
        eventually_true("tauri-driver", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        })
        .await;

        let mut caps = serde_json::Map::new();
        caps.insert(
            "tauri:options".into(),
            json!({"application": env!("CARGO_BIN_EXE_countersign-desktop"), "args": args}),
        );
        // Both of rustls' crypto back ends are in the tree; pick one.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let started = std::time::Instant::now();
        let client = ClientBuilder::rustls()
            .unwrap()
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a WebDriver session with the app");
        let session = vec![
            ("DISPLAY", display_env.clone()),
            ("DBUS_SESSION_BUS_ADDRESS", address.clone()),
        ];
        Desktop {
            _turn: turn,
            client,
            session,
            data,
            home,
            bus_log,
            children,
            started,
        }
    }

    /// Runs JavaScript in the window and returns its value. WebKitWebDriver
    /// now and then answers a busy moment with an empty `unknown error`;
    /// that one is retried.
    pub async fn js(&self, script: &str) -> Value {
        let mut last = None;
        for _ in 0..3 {
            match self.client.execute(script, vec![]).await {
                Ok(v) => return v,
                Err(fantoccini::error::CmdError::Standard(e))
                    if e.error == fantoccini::error::ErrorStatus::UnknownError =>
                {
                    last = Some(e.to_string());
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("script failed: {e}\n{script}"),
            }
        }
        panic!(
            "script failed three times: {}\n{script}",
            last.unwrap_or_default()
        );
    }

    /// Calls a Countersign command as the UI does.
    pub async fn invoke(&self, cmd: &str) -> Value {
        let script = format!(
            "const done = arguments[arguments.length - 1];
             window.__TAURI__.core.invoke('{cmd}').then(done, (e) => done({{error: e}}));"
        );
        self.client
            .execute_async(&script, vec![])
            .await
            .expect("command runs")
    }

    /// Polls `check` (a JavaScript expression) until it is truthy.
    /// Waits until an account is connected (its live channel is up).
    pub async fn until_connected(&self, timeout: Duration) {
        self.until(
            "an account is connected",
            "window.__TAURI__.core.invoke('accounts').then(a => a.some(x => x.state === 'connected'))",
            timeout,
        )
        .await;
    }

    pub async fn until(&self, what: &str, check: &str, timeout: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let v = self.js(&format!("return ({check});")).await;
            if !(v.is_null() || v == json!(false) || v == json!(0) || v == json!("")) {
                return v;
            }
            if tokio::time::Instant::now() >= deadline {
                let screen = self
                    .js("return document.body.innerText.slice(0, 3000)")
                    .await;
                panic!(
                    "timed out after {timeout:?} waiting until {what}; the window shows:\n{}",
                    screen.as_str().unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
    }

    /// Waits until exactly `n` elements carry `data-testid=testid`.
    pub async fn count(&self, what: &str, testid: &str, n: usize) {
        let check = format!("document.querySelectorAll('[data-testid={testid}]').length === {n}");
        self.until(what, &check, std::time::Duration::from_secs(20))
            .await;
    }

    /// Clicks an element, finding it again if a re-render replaced it.
    pub async fn click(&self, css: &str) {
        let mut last = String::new();
        for _ in 0..10 {
            match self.client.find(Locator::Css(css)).await {
                Ok(el) => match el.click().await {
                    Ok(()) => return,
                    Err(e) => last = e.to_string(),
                },
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("could not click {css}: {last}");
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let el = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"));
        el.clear().await.unwrap();
        el.send_keys(text).await.unwrap();
    }

    /// Presses keys the way a person does, on whatever has focus.
    pub async fn keys(&self, keys: &str) {
        let body = self.client.find(Locator::Css("#main")).await.unwrap();
        body.send_keys(keys).await.unwrap();
    }

    /// A command that runs inside this private desktop session.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.envs(self.session.iter().map(|(k, v)| (*k, v.as_str())));
        cmd
    }

    /// The ids of the app's windows on this display; only those shown
    /// (mapped) when `visible`.
    #[allow(dead_code)]
    pub fn windows(&self, visible: bool) -> Vec<String> {
        let mut cmd = self.command("xdotool");
        cmd.arg("search");
        if visible {
            cmd.arg("--onlyvisible");
        }
        let out = cmd
            .args(["--name", "^Countersign$"])
            .output()
            .expect("xdotool (scripts/setup.sh installs it)");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The address of this desktop's session bus.
    #[allow(dead_code)]
    pub fn bus_address(&self) -> String {
        self.session
            .iter()
            .find(|(k, _)| *k == "DBUS_SESSION_BUS_ADDRESS")
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    pub fn bus(&self) -> String {
        std::fs::read_to_string(&self.bus_log).unwrap_or_default()
    }

    /// Saves a screenshot when `COUNTERSIGN_SHOTS` names a folder.
    pub async fn shot(&self, name: &str) {
        if let Some(dir) = std::env::var_os("COUNTERSIGN_SHOTS") {
            // WebKit's capture can lag the DOM: let two frames paint, and
            // keep the second capture.
            let frames = "const done = arguments[arguments.length - 1];
                requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(done, 300)));";
            let _ = self.client.execute_async(frames, vec![]).await;
            let _ = self.client.screenshot().await;
            let png = self.client.screenshot().await.unwrap();
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(Path::new(&dir).join(format!("{name}.png")), png).unwrap();
        }
    }

    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        self.stop_children();
    }

    fn stop_children(&mut self) {
        // SIGTERM, not SIGKILL: tauri-driver must take WebKitWebDriver down with it.
        for (_, child) in self.children.iter_mut().rev() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
        }
        for (_, child) in self.children.iter_mut().rev() {
            for _ in 0..50 {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(40));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        self.children.clear();
    }
}

impl Drop for Desktop {
    fn drop(&mut self) {
        self.stop_children();
    }
}

/// Puts a Molecule AI account "prod" (reviewer dana, its token in the file
/// keychain) into the store in `dir`, as if the user had added it before
/// this launch.
pub fn seed_molecule_account(dir: &Path, url: &str, token: &str) {
    let store = countersign_store::Store::open(&dir.join("countersign.sqlite3")).unwrap();
    let file = countersign_model::SecretStoreKind::File;
    countersign_secrets::Secrets::new(dir)
        .put(file, "prod", &countersign_model::Secret::new(token))
        .unwrap();
    store
        .add_account(
            &countersign_model::NewAccount {
                name: "prod".into(),
                platform: countersign_model::Platform::Molecule,
                base_url: url.into(),
                reviewer: "dana".into(),
                secret_store: file,
                settings: json!({}),
            },
            "prod",
            chrono::Utc::now(),
        )
        .unwrap();
}
