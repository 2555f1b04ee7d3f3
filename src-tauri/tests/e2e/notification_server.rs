//! A stand-in notification server for tests: it owns
//! `org.freedesktop.Notifications` on a desktop's private session bus,
//! advertises buttons (`actions`), records every notification shown, and
//! presses a button (emits `ActionInvoked`) when told to, as a person
//! would. dunst cannot be scripted to press a notification's buttons.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use zbus::object_server::SignalEmitter;
use zbus::zvariant::OwnedValue;

const PATH: &str = "/org/freedesktop/Notifications";

/// One `Notify` call as received.
#[derive(Debug, Clone)]
pub struct Shown {
    pub id: u32,
    pub summary: String,
    pub body: String,
    /// Action keys (the labels left out).
    pub actions: Vec<String>,
    /// When it arrived (read by `benches/notify_latency.rs`).
    #[allow(dead_code)]
    pub at: std::time::Instant,
}

#[derive(Default)]
struct Server {
    shown: Arc<Mutex<Vec<Shown>>>,
    next: u32,
}

#[zbus::interface(name = "org.freedesktop.Notifications")]
impl Server {
    fn get_capabilities(&self) -> Vec<String> {
        vec!["actions".into(), "body".into()]
    }

    #[allow(clippy::too_many_arguments)]
    fn notify(
        &mut self,
        _app_name: String,
        _replaces_id: u32,
        _app_icon: String,
        summary: String,
        body: String,
        actions: Vec<String>,
        _hints: HashMap<String, OwnedValue>,
        _expire_timeout: i32,
    ) -> u32 {
        self.next += 1;
        let keys = actions.chunks(2).map(|pair| pair[0].clone()).collect();
        self.shown.lock().unwrap().push(Shown {
            id: self.next,
            summary,
            body,
            actions: keys,
            at: std::time::Instant::now(),
        });
        self.next
    }

    fn close_notification(&self, _id: u32) {}

    fn get_server_information(&self) -> (String, String, String, String) {
        (
            "test".into(),
            "countersign".into(),
            "1".into(),
            "1.2".into(),
        )
    }

    #[zbus(signal)]
    async fn action_invoked(
        emitter: &SignalEmitter<'_>,
        id: u32,
        action_key: &str,
    ) -> zbus::Result<()>;
}

pub struct NotificationServer {
    conn: zbus::Connection,
    shown: Arc<Mutex<Vec<Shown>>>,
}

impl NotificationServer {
    /// Starts serving on the bus at `address`.
    pub async fn start(address: &str) -> Self {
        let server = Server::default();
        let shown = server.shown.clone();
        let conn = zbus::connection::Builder::address(address)
            .unwrap()
            .name("org.freedesktop.Notifications")
            .unwrap()
            .serve_at(PATH, server)
            .unwrap()
            .build()
            .await
            .expect("the test notification server owns its name");
        Self { conn, shown }
    }

    pub fn shown(&self) -> Vec<Shown> {
        self.shown.lock().unwrap().clone()
    }

    /// Stops serving, as a notification server that quits (or restarts)
    /// does: its name goes back to the bus.
    #[allow(dead_code)]
    pub async fn stop(self) {
        self.conn
            .release_name("org.freedesktop.Notifications")
            .await
            .expect("the name was ours");
    }

    /// How many notifications so far satisfy `pred`.
    pub fn count(&self, pred: impl Fn(&Shown) -> bool) -> usize {
        self.shown
            .lock()
            .unwrap()
            .iter()
            .filter(|n| pred(n))
            .count()
    }

    /// Waits until `n` notifications satisfy `pred` (failing the test,
    /// saying `what` and what was shown, after `within`) and returns the
    /// latest of them.
    pub async fn wait_for(
        &self,
        what: &str,
        n: usize,
        within: std::time::Duration,
        pred: impl Fn(&Shown) -> bool,
    ) -> Shown {
        let start = std::time::Instant::now();
        loop {
            let matching: Vec<Shown> = self.shown().into_iter().filter(|s| pred(s)).collect();
            if matching.len() >= n {
                return matching.into_iter().last().unwrap();
            }
            assert!(
                start.elapsed() < within,
                "{what}: never notified; shown: {:?}",
                self.shown()
            );
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
    }

    /// Presses button `key` of notification `id`.
    pub async fn press(&self, id: u32, key: &str) {
        let emitter = SignalEmitter::new(&self.conn, PATH).unwrap();
        Server::action_invoked(&emitter, id, key).await.unwrap();
    }
}
