//! A fake SurfSense server (`shared/protocols/surfsense.md`, release
//! v0.0.38) following the doc's fake-server contract.
//!
//! Seeded with user `kim@example.net` (password `correct horse`), two
//! workspaces and the doc's fixtures: two parallel stamped asks in one
//! thread (KB `rm` and a Gmail send), an MCP ask offering
//! `approve_always`, the doom-loop guard, `automation_create`, a
//! legacy-shaped value, and an idle thread. Failure injection: expired
//! access tokens, refresh replays, 409 with `Retry-After`, a silent gap
//! mid-stream, error frames, re-interrupts, the PAT gate.

mod routes;
mod state;

pub use state::{fixtures, Applied, Config, ReceivedResume, RefreshCall, ResumeOutcome, Seed};

use serde_json::Value;
use state::Shared;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// A running fake SurfSense server on `127.0.0.1`.
pub struct FakeSurfSense {
    addr: SocketAddr,
    shared: Arc<Shared>,
    pub seed: Seed,
    task: tokio::task::JoinHandle<()>,
}

impl FakeSurfSense {
    pub async fn start(config: Config) -> std::io::Result<Self> {
        Self::start_on(([127, 0, 0, 1], 0).into(), config).await
    }

    pub async fn start_on(addr: SocketAddr, config: Config) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (shared, seed) = Shared::new(config);
        let shared = Arc::new(shared);
        let app = routes::router(shared.clone());
        let task = crate::spawn_server(listener, app, "surfsense");
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

    /// Adds a workspace; returns its id.
    pub fn add_workspace(&self, name: &str) -> i64 {
        let mut d = self.shared.data();
        let id = d.new_id();
        d.workspaces.push(state::Workspace {
            id,
            name: name.into(),
            api_access_enabled: true,
        });
        id
    }

    /// Adds a thread with nothing pending; returns its id.
    pub fn add_thread(&self, workspace_id: i64, title: &str) -> i64 {
        let mut d = self.shared.data();
        let id = d.new_id();
        let now = chrono::Utc::now();
        let created_by = d.users[0].0.clone();
        d.threads.push(state::Thread {
            id,
            workspace_id,
            title: title.into(),
            created_by,
            created_at: now,
            updated_at: now,
            pending: Vec::new(),
            busy: false,
            assistant_message_id: None,
        });
        id
    }

    /// The agent pauses on `value` (normalised like the server does);
    /// returns the card key (`tool_call_id ?? interrupt_id`).
    pub fn interrupt(&self, thread_id: i64, value: Value) -> Option<String> {
        self.shared.data().push_interrupt(thread_id, value)
    }

    /// The thread's pending interrupts, as `pending-interrupts` lists them.
    pub fn pending(&self, thread_id: i64) -> Vec<Value> {
        self.shared
            .data()
            .thread(thread_id)
            .map(|t| t.pending.clone())
            .unwrap_or_default()
    }

    /// Resumes a thread as the web UI would (every card the same way).
    pub fn resume_elsewhere(&self, thread_id: i64, decision: &str) {
        let mut d = self.shared.data();
        let n = d.thread(thread_id).map(|t| t.pending.len()).unwrap_or(0);
        let routed = vec![serde_json::json!({"type": decision}); n];
        d.apply(thread_id, &routed);
    }

    pub fn received_resumes(&self) -> Vec<ReceivedResume> {
        self.shared.data().resumes.clone()
    }

    /// What every applied decision did.
    pub fn applied(&self) -> Vec<Applied> {
        self.shared.data().applied.clone()
    }

    /// Tools an `approve_always` added to an MCP connector's trusted list.
    pub fn trusted_tools(&self) -> Vec<String> {
        self.shared.data().trusted_tools.clone()
    }

    pub fn logins(&self) -> u32 {
        self.shared.data().logins
    }

    pub fn refreshes(&self) -> Vec<RefreshCall> {
        self.shared.data().refreshes.clone()
    }

    /// Calls to `pending-interrupts` so far.
    pub fn pending_calls(&self) -> u32 {
        self.shared.data().pending_calls
    }

    /// Every access token issued so far stops working.
    pub fn expire_access_tokens(&self) {
        self.shared.expire_access_tokens();
    }

    /// The next resume streams an error frame with this code and message.
    pub fn fail_next_resume(&self, code: &str, message: &str) {
        self.shared.data().fail_next_resume = Some((code.into(), message.into()));
    }

    /// The next `n` resumes of the thread get 409 THREAD_BUSY.
    pub fn busy_for(&self, thread_id: i64, n: u32) {
        self.shared.data().busy_replies.insert(thread_id, n);
    }

    /// Silence in the middle of each resume stream.
    pub fn set_stream_gap(&self, gap: Duration) {
        self.shared.data().stream_gap = gap;
    }

    /// The thread pauses again on `values` right after its next resume.
    pub fn reinterrupt_after_resume(&self, thread_id: i64, values: Vec<Value>) {
        self.shared.data().reinterrupt.insert(thread_id, values);
    }

    /// A personal access token for the seeded user.
    pub fn create_pat(&self) -> String {
        let token = format!("ss_pat_{}", uuid::Uuid::new_v4().simple());
        let mut d = self.shared.data();
        let user = d.users[0].0.clone();
        d.pats.insert(token.clone(), user);
        token
    }

    /// Turns a workspace's API access (the PAT gate) on or off.
    pub fn set_api_access(&self, workspace_id: i64, on: bool) {
        if let Some(w) = self
            .shared
            .data()
            .workspaces
            .iter_mut()
            .find(|w| w.id == workspace_id)
        {
            w.api_access_enabled = on;
        }
    }
}

impl Drop for FakeSurfSense {
    fn drop(&mut self) {
        self.task.abort();
    }
}
