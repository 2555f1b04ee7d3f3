//! A fake Clawith server (`shared/protocols/clawith.md`, release v1.11.3).
//!
//! Seeded per the doc: platform admin "dana" (password `hunter22`) who
//! created agent "Archivist", member "eli" (`elipass1`), two pending L3
//! approvals (legacy and runtime details) and one L2 notification.

mod routes;
mod state;

pub use state::{Approval, Config, ReceivedResolve, Seed};

use chrono::Utc;
use serde_json::Value;
use state::Shared;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// A running fake Clawith server on `127.0.0.1`.
pub struct FakeClawith {
    addr: SocketAddr,
    shared: Arc<Shared>,
    pub seed: Seed,
    task: tokio::task::JoinHandle<()>,
}

impl FakeClawith {
    pub async fn start(config: Config) -> std::io::Result<Self> {
        Self::start_on(([127, 0, 0, 1], 0).into(), config).await
    }

    pub async fn start_on(addr: SocketAddr, config: Config) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (shared, seed) = Shared::new(config);
        let shared = Arc::new(shared);
        let app = routes::router(shared.clone());
        let task = crate::spawn_server(listener, app, "clawith");
        Ok(Self {
            addr,
            shared,
            seed,
            task,
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// One autonomy check of `level` (L1/L2/L3) by `agent_id`; the approval
    /// id for L3. A runtime check of a tool call that already has an
    /// approval writes nothing and returns that approval's id, unchanged,
    /// whatever `level` and `details` say now (v1.11.3's re-check).
    pub fn autonomy(
        &self,
        agent_id: &str,
        action_type: &str,
        level: &str,
        details: Value,
    ) -> Option<String> {
        self.shared.autonomy(agent_id, action_type, level, details)
    }

    /// `n` L3 approvals from one tool call: they share one `created_at`.
    pub fn l3_batch(&self, n: usize) -> Vec<String> {
        let now = Utc::now();
        let agent = self.seed.archivist_id.clone();
        (0..n)
            .filter_map(|i| {
                self.shared.autonomy_at(
                    &agent,
                    "delete_files",
                    "L3",
                    serde_json::json!({"tool": "delete_file", "args": format!("{{'path': 'workspace/tmp/{i}.md'}}"),
                                       "requested_by": self.seed.dana_id}),
                    now,
                )
            })
            .collect()
    }

    /// Resolves as another user would in the web UI.
    pub fn resolve_as(&self, approval_id: &str, user_id: &str, approve: bool) {
        self.shared
            .apply_resolve(approval_id, user_id, approve, None);
    }

    pub fn approval(&self, id: &str) -> Option<Approval> {
        self.shared
            .data()
            .approvals
            .iter()
            .find(|a| a.id == id)
            .cloned()
    }

    pub fn delete_approval(&self, id: &str) {
        self.shared.data().approvals.retain(|a| a.id != id);
    }

    pub fn received_resolves(&self) -> Vec<ReceivedResolve> {
        self.shared.data().received.clone()
    }

    /// How many login calls arrived.
    pub fn logins(&self) -> u32 {
        self.shared.data().logins
    }

    /// Every issued token stops working (expired, or a rotated secret).
    pub fn expire_tokens(&self) {
        self.shared.data().tokens.clear();
    }

    pub fn set_resolve_delay(&self, delay: Duration) {
        self.shared.data().resolve_delay = delay;
    }

    /// "main-HEAD mode": 500 on every list endpoint.
    pub fn set_main_head(&self, on: bool) {
        self.shared.data().main_head = on;
    }

    /// Whether a notification is marked read.
    pub fn notification_read(&self, id: &str) -> Option<bool> {
        self.shared
            .data()
            .notifications
            .iter()
            .find(|n| n.id == id)
            .map(|n| n.is_read)
    }
}

impl Drop for FakeClawith {
    fn drop(&mut self) {
        self.task.abort();
    }
}
