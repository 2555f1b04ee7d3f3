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

    /// Presses button `key` of notification `id`.
    pub async fn press(&self, id: u32, key: &str) {
        let emitter = SignalEmitter::new(&self.conn, PATH).unwrap();
        Server::action_invoked(&emitter, id, key).await.unwrap();
    }
}
