//! HTTP plumbing every REST connector needs: one well-configured client,
//! bounded body reads, and status codes mapped to [`ConnectorError`].

use crate::ConnectorError;
use reqwest::{header::HeaderMap, Response, StatusCode};
use std::time::Duration;

/// Largest response body a connector reads. Agents write request details;
/// a runaway one must not eat the reviewer's memory.
pub const MAX_BODY: usize = 16 * 1024 * 1024;

/// The HTTP client connectors share: rustls, bounded timeouts, and no
/// default headers (Molecule answers 403 to an unlisted `Origin`).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .user_agent(concat!("countersign/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// A client for long-lived streams (SSE, a resumed run answering for
/// minutes): no total timeout, only `read_timeout` between bytes.
pub fn stream_client(read_timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(read_timeout)
        .user_agent(concat!("countersign/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// Maps a transport failure to an error that says whether the request
/// left. A failure to connect (refused, DNS, TLS, connect timeout) means
/// the platform never received it: [`ConnectorError::Unavailable`], safe
/// to send again. Anything after connecting (a timeout waiting for the
/// answer, a reset, a body cut short) may come after the platform took the
/// request: [`ConnectorError::Uncertain`], so a decision is not sent again
/// before the platform's state says how it ended.
pub fn transport(err: reqwest::Error) -> ConnectorError {
    // reqwest's Display includes the URL but never headers, so no token.
    if err.is_connect() || err.is_builder() {
        return ConnectorError::Unavailable(format!(
            "not sent, could not connect: {}",
            without_url(&err)
        ));
    }
    let what = if err.is_timeout() {
        "sent, but no answer in time"
    } else {
        "sent, but the connection failed before the answer"
    };
    ConnectorError::Uncertain(format!("{what}: {}", without_url(&err)))
}

fn without_url(err: &reqwest::Error) -> String {
    let mut source: Option<&dyn std::error::Error> = Some(err);
    let mut last = err.to_string();
    while let Some(e) = source {
        last = e.to_string();
        source = e.source();
    }
    last
}

/// Reads a body up to [`MAX_BODY`] bytes.
pub async fn body(mut resp: Response) -> Result<Vec<u8>, ConnectorError> {
    let mut buf = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(transport)? {
        if buf.len() + chunk.len() > MAX_BODY {
            return Err(ConnectorError::Protocol(format!(
                "response larger than {} MiB",
                MAX_BODY / 1024 / 1024
            )));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

/// Parses `Retry-After` (seconds form; dates are rare and treated as 60 s).
pub fn retry_after(headers: &HeaderMap) -> Duration {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(60))
}

/// A short, printable excerpt of an error body, for messages.
pub fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let mut out: String = text.chars().take(200).collect();
    if text.chars().count() > 200 {
        out.push('…');
    }
    out
}

/// The generic mapping of an unsuccessful status; connectors handle the
/// codes that mean something special on their platform first.
pub fn status_error(status: StatusCode, headers: &HeaderMap, message: String) -> ConnectorError {
    match status.as_u16() {
        401 | 403 => ConnectorError::Auth(message),
        429 => ConnectorError::RateLimited {
            retry_after: retry_after(headers),
        },
        408 | 500..=599 => ConnectorError::Unavailable(format!("HTTP {status}: {message}")),
        _ => ConnectorError::Rejected(format!("HTTP {status}: {message}")),
    }
}

/// The UTF-8 byte-order mark an event stream may begin with.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// An event stream's bytes without the byte-order marks they may begin
/// with (the SSE spec allows one). `eventsource-stream` 0.2 panics on one:
/// it cuts one byte off a first character three bytes long. Every SSE
/// stream is read through this; a BOM split across chunks is dropped too.
pub fn without_bom<S, B, E>(bytes: S) -> futures::stream::BoxStream<'static, Result<Vec<u8>, E>>
where
    S: futures::Stream<Item = Result<B, E>> + Send + 'static,
    B: AsRef<[u8]> + Send,
    E: Send + 'static,
{
    use futures::StreamExt;
    // `Some(head)`: the first bytes, held until they are known not to be
    // (the start of) a BOM.
    let start = (Box::pin(bytes.fuse()), Some(Vec::new()));
    futures::stream::unfold(start, |(mut s, mut head)| async move {
        loop {
            match s.next().await {
                Some(Ok(chunk)) => {
                    let Some(mut h) = head.take() else {
                        return Some((Ok(chunk.as_ref().to_vec()), (s, None)));
                    };
                    h.extend_from_slice(chunk.as_ref());
                    // Every leading BOM: the reader would choke on a second.
                    let mut rest = h.as_slice();
                    while let Some(r) = rest.strip_prefix(BOM) {
                        rest = r;
                    }
                    if rest.len() < BOM.len() && BOM.starts_with(rest) {
                        head = Some(rest.to_vec());
                        continue;
                    }
                    return Some((Ok(rest.to_vec()), (s, None)));
                }
                Some(Err(e)) => return Some((Err(e), (s, head))),
                None => {
                    let h = head.take().filter(|h| !h.is_empty())?;
                    return Some((Ok(h), (s, None)));
                }
            }
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn a_refused_connection_is_not_sent_and_a_silent_server_is_sent_unknown() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = closed.local_addr().unwrap();
        drop(closed);
        let http = reqwest::Client::new();
        let err = http
            .post(format!("http://{addr}/resolve"))
            .send()
            .await
            .unwrap_err();
        assert!(
            matches!(transport(err), ConnectorError::Unavailable(m) if m.starts_with("not sent")),
            "nothing listens: the request never left, so sending again is safe"
        );

        // Reads the whole request, then never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = sock.read(&mut buf).await;
            tokio::time::sleep(Duration::from_secs(5)).await;
        });
        let err = http
            .post(format!("http://{addr}/resolve"))
            .timeout(Duration::from_millis(300))
            .body("{}")
            .send()
            .await
            .unwrap_err();
        assert!(
            matches!(transport(err), ConnectorError::Uncertain(m) if m.starts_with("sent")),
            "the server got the request and said nothing: it may have applied it"
        );
        server.abort();
    }
}
