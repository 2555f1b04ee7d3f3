//! A fake SurfSense server (`shared/protocols/surfsense.md`, release
//! v0.0.38) following the doc's fake-server contract.
//!
//! Seeded with user `kim@example.net` (password `correct horse`), two
//! workspaces and the doc's fixtures: two parallel stamped asks in one
//! thread (KB `rm` and a Gmail send), an MCP ask offering
//! `approve_always`, the doom-loop guard, `automation_create`, a
//! legacy-shaped value, and an idle thread. Failure injection: expired
//! access tokens, refresh replays, 409 with `Retry-After`, a silent gap
//! mid-stream, error frames, re-interrupts, the PAT gate, a server that
//! stops and comes back. As the real v0.0.38 does (`surfsense.md`,
//! "Verified against the real server"): 5 logins a minute per IP, a
//! second ask of one subagent under the same `tool_call_id`
//! ([`FakeSurfSense::ask_again`]), pending asks listed in another order
//! than the stream gave them, a doom-loop reject that runs on, reserved
//! e-mail domains refused at registration.

mod routes;
mod state;

pub use state::{fixtures, Applied, Config, ReceivedResume, RefreshCall, ResumeOutcome, Seed};

use serde_json::Value;
use state::Shared;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// The running server: a stop signal and its task.
type Server = (watch::Sender<bool>, tokio::task::JoinHandle<()>);

/// A running fake SurfSense server on `127.0.0.1`.
pub struct FakeSurfSense {
    addr: SocketAddr,
    shared: Arc<Shared>,
    pub seed: Seed,
    server: Mutex<Option<Server>>,
}

impl FakeSurfSense {
    pub async fn start(config: Config) -> std::io::Result<Self> {
        Self::start_on(([127, 0, 0, 1], 0).into(), config).await
    }

    pub async fn start_on(addr: SocketAddr, config: Config) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (shared, seed) = Shared::new(config);
        let fake = Self {
            addr,
            shared: Arc::new(shared),
            seed,
            server: Mutex::new(None),
        };
        fake.serve(listener);
        Ok(fake)
    }

    /// Serves on `listener`, with each client's address known (the login
    /// limit is per IP).
    fn serve(&self, listener: TcpListener) {
        let (stop, mut stopped) = watch::channel(false);
        let app =
            routes::router(self.shared.clone()).into_make_service_with_connect_info::<SocketAddr>();
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::warn!("fake surfsense stopped: {e}");
            }
        });
        *self.server_slot() = Some((stop, task));
    }

    fn server_slot(&self) -> std::sync::MutexGuard<'_, Option<Server>> {
        self.server.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the server down: it stops listening and its connections
    /// close, so clients see "connection refused". Threads, asks and
    /// tokens are kept for [`Self::restart`].
    pub async fn stop(&self) {
        let Some((stop, task)) = self.server_slot().take() else {
            return;
        };
        let _ = stop.send(true);
        let abort = task.abort_handle();
        if tokio::time::timeout(Duration::from_secs(2), task)
            .await
            .is_err()
        {
            // A resume stream still open: cut it, as a dying server would.
            abort.abort();
        }
    }

    /// Brings a stopped server back on the same port, with its state.
    pub async fn restart(&self) -> std::io::Result<()> {
        let listener = TcpListener::bind(self.addr).await?;
        self.serve(listener);
        Ok(())
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A subagent asks again in one task: its pending ask under
    /// `tool_call_id` is answered elsewhere with `decision` (with the rest
    /// of the thread), and a new ask arrives under the **same**
    /// `tool_call_id` with a new `interrupt_id` and `value`'s action.
    /// Returns the new `interrupt_id`.
    pub fn ask_again(
        &self,
        thread_id: i64,
        tool_call_id: &str,
        decision: &str,
        value: Value,
    ) -> Option<String> {
        self.shared
            .data()
            .ask_again(thread_id, tool_call_id, decision, value)
    }

    /// Logins refused by the rate limit (429) so far.
    pub fn rate_limited_logins(&self) -> u32 {
        self.shared.data().rate_limited_logins
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
        if let Some((_, task)) = self.server_slot().take() {
            task.abort();
        }
    }
}
