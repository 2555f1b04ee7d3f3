//! Faithful fakes of the agent platforms Countersign talks to, served on
//! `127.0.0.1:0` for tests and demos.
//!
//! Each fake follows the "fake-server contract" of its protocol document in
//! `shared/protocols/`: the same routes, auth rules, status codes, bodies and
//! quirks as the real platform, plus controls a test needs (create requests,
//! decide as another reviewer, drop connections, stall, fail, go down) and a
//! record of every decision received.

pub mod clawith;
pub mod harn;
#[cfg(feature = "hostile")]
pub mod hostile;
pub mod langgraph;
pub mod molecule;
pub mod opencode;
pub mod surfsense;

/// A fake's server task: `app` served on `listener` until the task is
/// aborted (each fake aborts it when dropped).
fn spawn_server(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    name: &'static str,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!("fake {name} stopped: {e}");
        }
    })
}
