//! The canvas-mode WebSocket: connect, pump frames into updates, ping (the
//! server never does), and end the stream when the connection is dead.

use crate::{wire, Inner};
use countersign_connector::{ConnectorError, Update, UpdateStream};
use futures::{SinkExt, StreamExt};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

const PING_EVERY: Duration = Duration::from_secs(20);
/// No frame (not even a pong) for this long means the connection is dead.
const SILENCE_LIMIT: Duration = Duration::from_secs(60);
/// A frame larger than this closes the connection; the engine reconnects
/// and reconciles, so nothing is lost.
const MAX_FRAME: usize = 4 * 1024 * 1024;

fn ws_url(base: &str) -> String {
    let url = if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        base.to_owned()
    };
    format!("{url}/ws")
}

fn header(value: &str) -> Result<HeaderValue, ConnectorError> {
    HeaderValue::from_str(value)
        .map_err(|_| ConnectorError::Rejected(format!("invalid header value `{value}`")))
}

pub(crate) async fn open(inner: Arc<Inner>) -> Result<UpdateStream, ConnectorError> {
    let mut req = ws_url(&inner.base)
        .into_client_request()
        .map_err(|e| ConnectorError::Rejected(format!("invalid WebSocket URL: {e}")))?;
    // Canvas mode: no X-Workspace-ID, no auth. Origin only when configured.
    if let Some(origin) = &inner.cfg.settings.ws_origin {
        req.headers_mut().insert("Origin", header(origin)?);
    }
    if let Some(org) = &inner.cfg.settings.org_id {
        req.headers_mut().insert("X-Molecule-Org-Id", header(org)?);
    }
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_FRAME))
        .max_frame_size(Some(MAX_FRAME));
    let connect = tokio_tungstenite::connect_async_with_config(req, Some(config), false);
    let (ws, _) = match tokio::time::timeout(Duration::from_secs(15), connect).await {
        Err(_) => {
            return Err(ConnectorError::Unavailable(
                "WebSocket connect timed out".into(),
            ))
        }
        Ok(Err(WsError::Http(resp))) => {
            let status = resp.status().as_u16();
            return Err(match status {
                401 | 403 => ConnectorError::Auth(format!(
                    "WebSocket refused with {status}: set the account's WebSocket origin to one of the server's CORS_ORIGINS"
                )),
                _ => ConnectorError::Unavailable(format!("WebSocket upgrade answered {status}")),
            });
        }
        Ok(Err(e)) => return Err(ConnectorError::Unavailable(format!("WebSocket: {e}"))),
        Ok(Ok(pair)) => pair,
    };
    let (tx, rx) = mpsc::channel(1024);
    tokio::spawn(pump(inner, ws, tx));
    Ok(
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|u| (u, rx)) })
            .boxed(),
    )
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn pump(inner: Arc<Inner>, mut ws: Ws, tx: mpsc::Sender<Result<Update, ConnectorError>>) {
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    let mut last_seen = Instant::now();
    let expiry = inner.expiry();
    loop {
        tokio::select! {
            frame = ws.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    last_seen = Instant::now();
                    let update = handle_text(&inner, text.as_str(), expiry).await;
                    if let Some(update) = update {
                        if tx.send(Ok(update)).await.is_err() {
                            return;
                        }
                    }
                }
                Some(Ok(Message::Close(_))) | None => return,
                Some(Ok(_)) => last_seen = Instant::now(),
                Some(Err(e)) => {
                    let _ = tx.send(Err(ConnectorError::Unavailable(format!("WebSocket: {e}")))).await;
                    return;
                }
            },
            _ = ping.tick() => {
                if last_seen.elapsed() > SILENCE_LIMIT {
                    let _ = tx.send(Err(ConnectorError::Unavailable("WebSocket went silent".into()))).await;
                    return;
                }
                if ws.send(Message::Ping(Vec::new().into())).await.is_err() {
                    return;
                }
            }
            _ = tx.closed() => {
                let _ = ws.close(None).await;
                return;
            }
        }
    }
}

/// Parses one frame; logs and drops what cannot be used.
async fn handle_text(inner: &Inner, text: &str, expiry: chrono::Duration) -> Option<Update> {
    let lookup = |ws: &str| inner.name_of(ws);
    let mut parsed = wire::parse_frame(text, &lookup, expiry);
    // REQUESTED carries no workspace name: learn it once, then re-parse.
    if let Ok(Some(Update::Request(r))) = &parsed {
        if r.agent.as_deref() == r.route.get("workspace_id").and_then(|v| v.as_str()) {
            inner.refresh_names().await;
            parsed = wire::parse_frame(text, &lookup, expiry);
        }
    }
    match parsed {
        Ok(update) => update,
        Err(why) => {
            let preview: String = text.chars().take(120).collect();
            tracing::warn!("molecule: skipping WebSocket message ({why}): {preview:?}");
            None
        }
    }
}
