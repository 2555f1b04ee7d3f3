//! SurfSense credentials: desktop login (email + password) giving a 1 h
//! access JWT and a rotating refresh token, or a personal access token
//! (`ss_pat_…`). Renewal is single-flight: one refresh at a time, and a
//! caller whose token was refused renews only if nobody did meanwhile.
//!
//! Logins are scarce (5 a minute per IP), so the session lives in the
//! [`SessionStore`] as well as in memory: every process of the data dir
//! takes the store's lock, adopts a session another process renewed, and
//! refreshes rather than logging in. A stored session is bound to a digest
//! of the URL, email and password it was made with: after the password
//! changes it is never used, so a wrong password is reported as one.

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use countersign_connector::http::{self, retry_after, status_error, transport};
use countersign_connector::{ConnectorError, SessionLock, SessionStore};
use countersign_model::{Clock, Secret};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// What the account authenticates with.
#[derive(Debug, Clone)]
pub enum Credential {
    Password { email: String, password: Secret },
    Token(Secret),
}

impl Credential {
    /// A PAT when the secret looks like one, else a password for `email`.
    pub fn from_secret(email: &str, secret: Secret) -> Self {
        if secret.expose().starts_with("ss_pat_") {
            Credential::Token(secret)
        } else {
            Credential::Password {
                email: email.to_owned(),
                password: secret,
            }
        }
    }
}

#[derive(Clone)]
struct Tokens {
    access: Secret,
    issued: DateTime<Utc>,
    expires: DateTime<Utc>,
    refresh: Option<Secret>,
}

impl Tokens {
    /// Renew a quarter of the lifetime before expiry, at most 2 minutes.
    fn due(&self, now: DateTime<Utc>) -> bool {
        let margin = ((self.expires - self.issued) / 4).min(ChronoDuration::minutes(2));
        now >= self.expires - margin
    }
}

impl Tokens {
    /// The stored form: the tokens and what they were made for.
    fn to_stored(&self, made_for: &str) -> Secret {
        Secret::new(
            json!({
                "v": 1,
                "for": made_for,
                "access": self.access.expose(),
                "issued": self.issued.timestamp(),
                "expires": self.expires.timestamp(),
                "refresh": self.refresh.as_ref().map(|r| r.expose().to_owned()),
            })
            .to_string(),
        )
    }

    /// A stored session, if it was made for these credentials.
    fn from_stored(stored: &Secret, made_for: &str) -> Option<Tokens> {
        let v: Value = serde_json::from_str(stored.expose()).ok()?;
        if v.get("for").and_then(Value::as_str) != Some(made_for) {
            return None;
        }
        let time = |k: &str| {
            v.get(k)
                .and_then(Value::as_i64)
                .and_then(|s| DateTime::from_timestamp(s, 0))
        };
        Some(Tokens {
            access: Secret::new(v.get("access")?.as_str()?),
            issued: time("issued")?,
            expires: time("expires")?,
            refresh: v.get("refresh").and_then(Value::as_str).map(Secret::new),
        })
    }
}

pub struct Auth {
    base: String,
    credential: Option<Credential>,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    tokens: tokio::sync::Mutex<Option<Tokens>>,
    sessions: Option<Arc<dyn SessionStore>>,
}

/// The `detail` (or `detail.errorCode`/`message`) of an error body.
pub fn detail(body: &[u8]) -> String {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return http::excerpt(body);
    };
    match v.get("detail") {
        Some(Value::String(s)) => s.clone(),
        Some(d @ Value::Object(_)) => d
            .get("message")
            .or_else(|| d.get("errorCode"))
            .and_then(Value::as_str)
            .unwrap_or("request refused")
            .to_owned(),
        _ => v
            .pointer("/error/message")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| http::excerpt(body)),
    }
}

impl Auth {
    pub fn new(
        base: String,
        credential: Option<Credential>,
        http: reqwest::Client,
        clock: Arc<dyn Clock>,
        sessions: Option<Arc<dyn SessionStore>>,
    ) -> Self {
        Self {
            base,
            credential,
            http,
            clock,
            tokens: tokio::sync::Mutex::new(None),
            sessions,
        }
    }

    /// What a stored session must have been made for: a digest of the
    /// server, email and password (never the password itself).
    fn made_for(&self, email: &str, password: &Secret) -> String {
        let mut h = Sha256::new();
        for part in [self.base.as_str(), email, password.expose()] {
            h.update(part.as_bytes());
            h.update([0u8]);
        }
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Runs a blocking session-store call off the async threads. A store
    /// that fails is logged and then done without: the session stays in
    /// memory.
    async fn on_store<T: Send + 'static>(
        &self,
        f: impl FnOnce(
                &dyn SessionStore,
            ) -> Result<T, countersign_connector::session::SessionStoreError>
            + Send
            + 'static,
    ) -> Option<T> {
        let store = self.sessions.clone()?;
        match tokio::task::spawn_blocking(move || f(store.as_ref())).await {
            Ok(Ok(v)) => Some(v),
            Ok(Err(e)) => {
                tracing::warn!("surfsense: {e}; keeping the session in memory only");
                None
            }
            Err(e) => {
                tracing::warn!("surfsense: session store task failed: {e}");
                None
            }
        }
    }

    /// The `Authorization` value to send now.
    pub async fn header(&self) -> Result<Secret, ConnectorError> {
        self.renewed(None).await
    }

    /// The `Authorization` value after `refused` got a 401: a new one, or
    /// the one another caller renewed meanwhile.
    pub async fn after_refusal(&self, refused: &Secret) -> Result<Secret, ConnectorError> {
        self.renewed(Some(refused)).await
    }

    async fn renewed(&self, refused: Option<&Secret>) -> Result<Secret, ConnectorError> {
        let credential = self.credential.as_ref().ok_or_else(|| {
            ConnectorError::Auth("no password or token stored for this account".into())
        })?;
        let (email, password) = match credential {
            Credential::Token(t) => {
                if refused.is_some() {
                    return Err(ConnectorError::Auth(
                        "the personal access token was refused (revoked or expired)".into(),
                    ));
                }
                return Ok(Secret::new(format!("Bearer {}", t.expose())));
            }
            Credential::Password { email, password } => (email, password),
        };
        let mut slot = self.tokens.lock().await;
        let now = self.clock.now();
        let usable = |t: &Tokens| {
            let stale = refused.is_some_and(|r| r.expose() == bearer(&t.access).expose());
            !stale && !t.due(now)
        };
        if let Some(t) = slot.as_ref().filter(|t| usable(t)) {
            return Ok(bearer(&t.access));
        }
        // One renewal at a time across processes; the lock is released
        // when `_held` drops, after the new session is stored.
        let _held: Option<SessionLock> = self.on_store(|s| s.lock()).await;
        let made_for = self.made_for(email, password);
        let stored = self
            .on_store(|s| s.load())
            .await
            .flatten()
            .and_then(|s| Tokens::from_stored(&s, &made_for));
        if let Some(t) = stored.as_ref().filter(|t| usable(t)) {
            // Another process renewed it meanwhile.
            let header = bearer(&t.access);
            *slot = stored;
            return Ok(header);
        }
        // The stored refresh token is the newest: another process may have
        // rotated the one we hold.
        let refresh = stored
            .and_then(|t| t.refresh)
            .or_else(|| slot.as_ref().and_then(|t| t.refresh.clone()));
        if let Some(refresh) = refresh {
            match self.refresh(&refresh).await {
                Ok(answer) => {
                    let tokens = self.tokens_from(&answer, Some(refresh))?;
                    return Ok(self.keep(&mut slot, tokens, made_for).await);
                }
                Err(ConnectorError::Auth(why)) => {
                    tracing::info!("surfsense: refresh refused ({why}); logging in again");
                }
                Err(e) => return Err(e),
            }
        }
        *slot = None;
        self.on_store(|s| s.clear()).await;
        let answer = self.login(email, password).await?;
        let tokens = self.tokens_from(&answer, None)?;
        Ok(self.keep(&mut slot, tokens, made_for).await)
    }

    /// Keeps new tokens in memory and in the session store; returns the
    /// header to send.
    async fn keep(&self, slot: &mut Option<Tokens>, tokens: Tokens, made_for: String) -> Secret {
        let header = bearer(&tokens.access);
        let stored = tokens.to_stored(&made_for);
        self.on_store(move |s| s.save(&stored)).await;
        *slot = Some(tokens);
        header
    }

    /// Reads a login or refresh answer. A `null` refresh token (a replay
    /// inside the rotation grace window) keeps the one we have.
    fn tokens_from(
        &self,
        answer: &Value,
        current: Option<Secret>,
    ) -> Result<Tokens, ConnectorError> {
        let access = answer
            .get("access_token")
            .and_then(Value::as_str)
            .ok_or_else(|| ConnectorError::Protocol("token answer without access_token".into()))?;
        let now = self.clock.now();
        let expires = answer
            .get("access_expires_at")
            .and_then(Value::as_i64)
            .and_then(|s| DateTime::from_timestamp(s, 0))
            .filter(|e| *e > now)
            .unwrap_or(now + ChronoDuration::hours(1));
        let refresh = match answer.get("refresh_token").and_then(Value::as_str) {
            Some(r) => Some(Secret::new(r)),
            None => current,
        };
        Ok(Tokens {
            access: Secret::new(access),
            issued: now,
            expires,
            refresh,
        })
    }

    async fn login(&self, email: &str, password: &Secret) -> Result<Value, ConnectorError> {
        let resp = self
            .http
            .post(format!("{}/auth/desktop/login", self.base))
            .json(&json!({"email": email, "password": password.expose()}))
            .send()
            .await
            .map_err(transport)?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = http::body(resp).await?;
        match status.as_u16() {
            200 => serde_json::from_slice(&body)
                .map_err(|e| ConnectorError::Protocol(format!("login answer: {e}"))),
            400 => Err(ConnectorError::Auth(format!(
                "wrong email or password ({})",
                detail(&body)
            ))),
            403 => Err(ConnectorError::Auth(format!(
                "SurfSense refused the login: {}",
                detail(&body)
            ))),
            404 => Err(ConnectorError::Auth(
                "this server offers no desktop login (Google sign-in, or older than v0.0.30); \
                 use a personal access token instead"
                    .into(),
            )),
            // The limiter answers before the password is looked at: this
            // says nothing about it, so it is never reported as a refusal.
            429 => {
                let wait = retry_after(&headers);
                tracing::info!(
                    "surfsense: sign-in refused for now (5 a minute per IP); the password was not checked; retry in {}s",
                    wait.as_secs()
                );
                Err(ConnectorError::RateLimited { retry_after: wait })
            }
            _ => Err(status_error(status, &headers, detail(&body))),
        }
    }

    async fn refresh(&self, token: &Secret) -> Result<Value, ConnectorError> {
        // No cookies: with one, the server would answer in cookie mode.
        let resp = self
            .http
            .post(format!("{}/auth/jwt/refresh", self.base))
            .json(&json!({"refresh_token": token.expose()}))
            .send()
            .await
            .map_err(transport)?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = http::body(resp).await?;
        match status.as_u16() {
            200 => serde_json::from_slice(&body)
                .map_err(|e| ConnectorError::Protocol(format!("refresh answer: {e}"))),
            400 | 401 | 403 => Err(ConnectorError::Auth(detail(&body))),
            _ => Err(status_error(status, &headers, detail(&body))),
        }
    }
}

fn bearer(access: &Secret) -> Secret {
    Secret::new(format!("Bearer {}", access.expose()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use countersign_model::SystemClock;

    fn auth() -> Auth {
        Auth::new(
            "http://127.0.0.1:9".into(),
            None,
            reqwest::Client::new(),
            Arc::new(SystemClock),
            None,
        )
    }

    #[test]
    fn a_refresh_answer_without_a_new_refresh_token_keeps_the_current_one() {
        let answer = json!({"access_token": "a2", "refresh_token": null, "access_expires_at": Utc::now().timestamp() + 3600});
        let t = auth()
            .tokens_from(&answer, Some(Secret::new("rt_current")))
            .expect("valid answer");
        assert_eq!(
            t.refresh.map(|r| r.expose().to_owned()),
            Some("rt_current".to_owned()),
            "inside the grace window the server sends null; the token we hold stays valid"
        );
    }

    #[test]
    fn a_rotated_refresh_token_replaces_the_old_one() {
        let answer = json!({"access_token": "a2", "refresh_token": "rt_new", "access_expires_at": Utc::now().timestamp() + 3600});
        let t = auth()
            .tokens_from(&answer, Some(Secret::new("rt_old")))
            .expect("valid answer");
        assert_eq!(
            t.refresh.map(|r| r.expose().to_owned()),
            Some("rt_new".to_owned())
        );
    }

    #[test]
    fn a_stored_session_is_used_only_for_the_password_it_was_made_with() {
        let a = auth();
        let now = Utc::now();
        let tokens = Tokens {
            access: Secret::new("a1"),
            issued: now,
            expires: now + ChronoDuration::hours(1),
            refresh: Some(Secret::new("rt")),
        };
        let made_for = a.made_for("kim@example.net", &Secret::new("right"));
        let stored = tokens.to_stored(&made_for);
        assert!(
            !stored.expose().contains("right"),
            "the stored session holds a digest of the password, never the password"
        );
        let back = Tokens::from_stored(&stored, &made_for).expect("same credentials");
        assert_eq!(
            back.refresh.map(|r| r.expose().to_owned()),
            Some("rt".into())
        );
        let other = a.made_for("kim@example.net", &Secret::new("wrong"));
        assert!(
            Tokens::from_stored(&stored, &other).is_none(),
            "after a password change the session must not hide whether the new one is right"
        );
    }

    #[test]
    fn error_details_are_read_from_strings_and_objects() {
        assert_eq!(
            detail(br#"{"detail":"Thread not found"}"#),
            "Thread not found"
        );
        assert_eq!(
            detail(br#"{"detail":{"errorCode":"THREAD_BUSY","message":"busy"}}"#),
            "busy"
        );
    }
}
