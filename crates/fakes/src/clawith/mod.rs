//! A fake Clawith server (`shared/protocols/clawith.md`, release v1.11.3).
//!
//! Seeded per the doc: platform admin "dana" (password `hunter22`) who
//! created agent "Archivist", member "eli" (`elipass1`), two pending L3
//! approvals (legacy and runtime details) and one L2 notification.
//!
//! It follows the reference's "Verified against the real server" too:
//! registration validates e-mail addresses (422 on reserved domains),
//! users made by `register/init` stay inactive after joining, company
//! slugs get a random suffix, a deleted company leaves its users' other
//! company for their next login, a policy PATCH replaces the whole map,
//! `GET /api/org/users` names the company's users, and [`FakeClawith::stop`]
//! makes every call (a resolve too) fail at connect time.

mod routes;
mod state;

pub use state::{default_policy, deliverable_email, Approval, Config, ReceivedResolve, Seed, User};

use chrono::Utc;
use serde_json::Value;
use state::Shared;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A running fake Clawith server on `127.0.0.1`.
pub struct FakeClawith {
    addr: SocketAddr,
    shared: Arc<Shared>,
    pub seed: Seed,
    server: Mutex<Option<(watch::Sender<bool>, JoinHandle<()>)>>,
}

impl FakeClawith {
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

    fn serve(&self, listener: TcpListener) {
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
                tracing::warn!("fake clawith stopped: {e}");
            }
        });
        *self.server.lock().unwrap_or_else(|e| e.into_inner()) = Some((stop_tx, task));
    }

    /// Takes the server down: closes every idle connection and stops
    /// listening, so every call, a resolve included, is refused at connect
    /// time ("Connection refused": provably never received). State is
    /// kept for [`Self::restart`].
    pub async fn stop(&self) {
        let server = self.server.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some((stop, task)) = server {
            let _ = stop.send(true);
            if tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .is_err()
            {
                tracing::warn!("fake clawith did not stop in time");
            }
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

    /// A new company, as `POST /api/tenants/self-create` makes it: its id
    /// and its slug (the name's with a random suffix).
    pub fn create_company(&self, name: &str) -> (String, String) {
        self.shared.create_company(name)
    }

    /// Puts the user record `user_id` into a company as `role` (a second
    /// user record for the same identity when it already has one, as
    /// joining does). Returns the record now in the company.
    pub fn add_to_company(&self, user_id: &str, tenant_id: &str, role: &str) -> User {
        let user = self.user(user_id).expect("the user exists");
        self.shared.add_to_company(&user, tenant_id, role)
    }

    /// An agent of a company; returns its id.
    pub fn add_agent(&self, name: &str, creator_id: &str, tenant_id: &str) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        self.shared.data().agents.push(state::Agent {
            id: id.clone(),
            name: name.into(),
            creator_id: creator_id.into(),
            tenant_id: tenant_id.into(),
            deleted: false,
            autonomy_policy: default_policy(),
        });
        id
    }

    /// Deletes a company and everything in it (its user records, agents,
    /// approvals, notifications, audit rows). A user who was also in
    /// another company now logs in straight into that one.
    pub fn delete_company(&self, tenant_id: &str) {
        self.shared.delete_company(tenant_id);
    }

    /// An invitation code for a company, as an admin makes one.
    pub fn invitation_code(&self, tenant_id: &str, max_uses: u32) -> String {
        let code = uuid::Uuid::new_v4().simple().to_string()[..8].to_uppercase();
        self.shared
            .data()
            .invitation_codes
            .push(state::InvitationCode {
                code: code.clone(),
                tenant_id: tenant_id.into(),
                max_uses,
                used: 0,
            });
        code
    }

    /// A user record by id.
    pub fn user(&self, id: &str) -> Option<User> {
        self.shared
            .data()
            .users
            .iter()
            .find(|u| u.id == id)
            .cloned()
    }

    /// The user records of one login (email or username), one per company.
    pub fn users_named(&self, login: &str) -> Vec<User> {
        self.shared
            .data()
            .users
            .iter()
            .filter(|u| u.email == login || u.username == login)
            .cloned()
            .collect()
    }

    /// How many `GET /api/org/users` calls arrived.
    pub fn org_user_lists(&self) -> u32 {
        self.shared.data().org_user_lists
    }

    /// An agent's autonomy policy.
    pub fn policy(&self, agent_id: &str) -> Option<Value> {
        self.shared
            .data()
            .agents
            .iter()
            .find(|a| a.id == agent_id)
            .map(|a| a.autonomy_policy.clone())
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
        if let Some((_, task)) = self.server.lock().unwrap_or_else(|e| e.into_inner()).take() {
            task.abort();
        }
    }
}
