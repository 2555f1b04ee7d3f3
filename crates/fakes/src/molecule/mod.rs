//! A fake Molecule AI platform server (`shared/protocols/molecule.md`).
//!
//! Start one with [`FakeMolecule::start`]; drive it through the handle's
//! methods, or over HTTP through the `/__fake/*` control routes (used by the
//! `fake-molecule` binary for demos and the desktop app's end-to-end tests).

mod routes;
mod state;

pub use state::{Approval, Config, OrgToken, ReceivedDecision, Workspace};

use state::Shared;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{watch, Mutex};
use tokio::task::JoinHandle;

/// A running fake Molecule AI server.
pub struct FakeMolecule {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: Mutex<Option<(watch::Sender<bool>, JoinHandle<()>)>>,
}

impl FakeMolecule {
    /// Starts a server on `127.0.0.1:0`.
    pub async fn start(config: Config) -> std::io::Result<Self> {
        Self::start_on("127.0.0.1:0".parse().expect("valid address"), config).await
    }

    /// Starts a server on the given loopback address.
    pub async fn start_on(addr: SocketAddr, config: Config) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(config));
        let fake = Self {
            addr,
            shared,
            server: Mutex::new(None),
        };
        fake.serve(listener).await;
        Ok(fake)
    }

    async fn serve(&self, listener: TcpListener) {
        let (stop_tx, mut stop_rx) = watch::channel(false);
        let app = routes::router(self.shared.clone());
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stop_rx.wait_for(|stop| *stop).await;
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::warn!("fake molecule server stopped: {e}");
            }
        });
        *self.server.lock().await = Some((stop_tx, task));
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Takes the server down: closes every connection and stops listening,
    /// so clients see "connection refused". State is kept for [`Self::restart`].
    pub async fn stop(&self) {
        if let Some((stop, task)) = self.server.lock().await.take() {
            self.shared.kick_sockets();
            let _ = stop.send(true);
            if tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .is_err()
            {
                tracing::warn!("fake molecule server did not stop in time");
            }
        }
    }

    /// Brings a stopped server back on the same port.
    pub async fn restart(&self) -> std::io::Result<()> {
        let listener = TcpListener::bind(self.addr).await?;
        self.serve(listener).await;
        Ok(())
    }

    /// Adds a workspace; returns its id.
    pub fn add_workspace(&self, name: &str, parent: Option<&str>) -> String {
        self.shared.add_workspace(name, parent)
    }

    /// Creates an approval the way an agent does (`POST …/approvals`),
    /// emitting APPROVAL_REQUESTED (and ESCALATED to a parent). Returns its id.
    pub fn create_approval(&self, workspace_id: &str, action: &str, reason: &str) -> String {
        self.create_task_approval(workspace_id, action, reason, "")
    }

    /// [`Self::create_approval`] with a `task_id`, the one argument-like
    /// field Molecule approvals carry.
    pub fn create_task_approval(
        &self,
        workspace_id: &str,
        action: &str,
        reason: &str,
        task_id: &str,
    ) -> String {
        self.shared
            .create_approval(workspace_id, action, reason, task_id)
            .expect("workspace exists")
    }

    /// Decides an approval as another reviewer would (the canvas, say).
    /// False when it was not pending.
    pub fn decide_as(&self, approval_id: &str, decision: &str, decided_by: &str) -> bool {
        self.shared.decide(approval_id, None, decision, decided_by)
    }

    /// Makes an approval look `age` old, so the next pending list expires it.
    pub fn backdate(&self, approval_id: &str, age: Duration) {
        self.shared.backdate(approval_id, age);
    }

    /// The row of an id, matched regardless of case as Postgres does.
    pub fn approval(&self, approval_id: &str) -> Option<Approval> {
        self.shared.approval(approval_id)
    }

    /// Purges a workspace (`DELETE /workspaces/:id?purge=true`): it, its
    /// descendants and all their approvals, pending ones included, vanish
    /// without an event. False for an unknown workspace.
    pub fn purge_workspace(&self, workspace_id: &str) -> bool {
        self.shared.purge_workspace(workspace_id)
    }

    /// Every decide call received, in order, including refused ones.
    pub fn received_decisions(&self) -> Vec<ReceivedDecision> {
        self.shared.received_decisions()
    }

    /// Sends an event to every canvas-mode WebSocket client.
    pub fn emit(&self, event: &str, workspace_id: &str, payload: serde_json::Value) {
        self.shared.emit(event, workspace_id, payload);
    }

    /// Sends a raw text frame (malformed-input tests).
    pub fn send_raw_ws(&self, text: &str) {
        self.shared.send_raw(text.to_owned());
    }

    /// Closes every WebSocket abruptly (no close frame).
    pub fn drop_sockets(&self) {
        self.shared.kick_sockets();
    }

    /// While on, WebSocket messages are silently dropped (a full buffer).
    pub fn set_dropping_ws(&self, on: bool) {
        self.shared.faults().drop_ws = on;
    }

    /// Drops every `n`th WebSocket/SSE message silently (0 stops dropping).
    pub fn drop_every(&self, n: u32) {
        self.shared.faults().drop_every = n;
    }

    /// The next `count` API requests answer `status` (503 gets the
    /// `platform_unavailable` body).
    pub fn fail_next(&self, count: u32, status: u16) {
        let mut f = self.shared.faults();
        f.fail_next = count;
        f.fail_status = status;
    }

    /// The next `count` API requests get 429 with `Retry-After`.
    pub fn rate_limit_next(&self, count: u32, retry_after_secs: u64) {
        let mut f = self.shared.faults();
        f.rate_limit_next = count;
        f.retry_after_secs = retry_after_secs;
    }

    /// Delays every API response by `by` (None to stop).
    pub fn set_stall(&self, by: Option<Duration>) {
        self.shared.faults().stall = by;
    }

    /// "Second instance": decisions made through REST emit no WebSocket event.
    pub fn set_second_instance(&self, on: bool) {
        self.shared.faults().second_instance = on;
    }

    /// How many WebSocket clients are connected now.
    pub fn socket_count(&self) -> usize {
        self.shared.socket_count()
    }

    /// How many WebSocket clients have connected since the start, closed
    /// ones included: a count that grows by one on every reconnect, so a
    /// test can wait for the client to come back after [`Self::drop_sockets`].
    pub fn sockets_opened(&self) -> usize {
        self.shared.sockets_opened()
    }
}
