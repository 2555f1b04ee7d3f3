//! The fake Molecule AI server follows `shared/protocols/molecule.md`: the
//! exact status codes and bodies a connector must handle. If the fake drifts
//! from the doc, connector tests against it prove nothing.

use countersign_fakes::molecule::{Config, FakeMolecule};
use futures::StreamExt;
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

const ADMIN: &str = "admin-token";

async fn fake() -> (FakeMolecule, String) {
    let fake = FakeMolecule::start(Config::with_admin_token(ADMIN))
        .await
        .unwrap();
    let ws = fake.add_workspace("Release Manager", None);
    (fake, ws)
}

async fn body(r: reqwest::Response) -> (StatusCode, String) {
    (r.status(), r.text().await.unwrap())
}

#[tokio::test]
async fn auth_answers_with_the_exact_bodies() {
    let (f, ws) = fake().await;
    let c = Client::new();
    let url = f.url();
    let (s, b) = body(
        c.get(format!("{url}/approvals/pending"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (s, b.as_str()),
        (
            StatusCode::UNAUTHORIZED,
            r#"{"error":"admin auth required"}"#
        )
    );
    let (s, b) = body(
        c.get(format!("{url}/approvals/pending"))
            .bearer_auth("nope")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (s, b.as_str()),
        (
            StatusCode::UNAUTHORIZED,
            r#"{"error":"invalid admin auth token"}"#
        )
    );
    let (s, _) = body(
        c.get(format!("{url}/approvals/pending"))
            .header("Authorization", format!("bearer {ADMIN}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        s,
        StatusCode::UNAUTHORIZED,
        "the `Bearer ` prefix is case-sensitive"
    );
    let (s, b) = body(
        c.get(format!("{url}/workspaces/{ws}/approvals"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (s, b.as_str()),
        (
            StatusCode::UNAUTHORIZED,
            r#"{"error":"missing workspace auth token"}"#
        )
    );
    let (s, b) = body(
        c.get(format!("{url}/approvals/pending"))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (s, b.as_str()),
        (StatusCode::OK, "[]"),
        "an empty list is [], never null"
    );
}

#[tokio::test]
async fn edge_middleware_quirks() {
    let (f, _) = fake().await;
    let c = Client::new();
    let url = f.url();
    let r = c
        .get(format!("{url}/approvals/pending"))
        .bearer_auth(ADMIN)
        .header("Origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        body(r).await,
        (StatusCode::FORBIDDEN, String::new()),
        "unlisted Origin: 403, empty body"
    );
    for path in [
        "/nope",
        "/workspaces/x/approvals/y/approve",
        "/workspaces/x/approvals/y/deny",
    ] {
        let (s, b) = body(c.post(format!("{url}{path}")).send().await.unwrap()).await;
        assert_eq!(
            (s, b.as_str()),
            (StatusCode::NOT_FOUND, "404 page not found"),
            "{path}"
        );
    }
    let (s, b) = body(c.delete(format!("{url}/health")).send().await.unwrap()).await;
    assert_eq!(
        (s, b.as_str()),
        (StatusCode::NOT_FOUND, "404 page not found"),
        "wrong method is a 404 too"
    );

    f.rate_limit_next(1, 9);
    let r = c.get(format!("{url}/health")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers()["retry-after"], "9");
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"error": "rate limit exceeded", "retry_after": 9})
    );

    let saas = FakeMolecule::start(Config {
        saas_org_id: Some("org".into()),
        ..Config::with_admin_token(ADMIN)
    })
    .await
    .unwrap();
    let r = c
        .get(format!("{}/approvals/pending", saas.url()))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(
        body(r).await,
        (StatusCode::NOT_FOUND, String::new()),
        "TenantGuard: bare 404"
    );
    let r = c
        .get(format!("{}/approvals/pending", saas.url()))
        .bearer_auth(ADMIN)
        .header("X-Molecule-Org-Id", "org")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn decide_follows_the_handler() {
    let (f, ws) = fake().await;
    let c = Client::new();
    let id = f.create_approval(&ws, "push tag", "CI green");
    let decide = |body: &'static str, approval: String| {
        let c = c.clone();
        let url = format!("{}/workspaces/{ws}/approvals/{approval}/decide", f.url());
        async move {
            body_of(
                c.post(url)
                    .bearer_auth(ADMIN)
                    .body(body)
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    async fn body_of(r: reqwest::Response) -> (u16, String) {
        (r.status().as_u16(), r.text().await.unwrap())
    }
    assert_eq!(
        decide("", id.clone()).await,
        (400, r#"{"error":"invalid request body"}"#.into())
    );
    assert_eq!(
        decide(r#"{"decision":"approve"}"#, id.clone()).await,
        (
            400,
            r#"{"error":"decision must be 'approved' or 'denied'"}"#.into()
        )
    );
    assert_eq!(
        decide(r#"{"decision":"denied"}"#, "not-a-uuid".into()).await,
        (500, r#"{"error":"failed to update"}"#.into())
    );
    let (code, _) = decide(r#"{"decision":"denied"}"#, id.clone()).await;
    assert_eq!(code, 200);
    assert_eq!(
        f.approval(&id).unwrap().decided_by.as_deref(),
        Some("human"),
        "decided_by defaults to human"
    );
    assert_eq!(
        decide(r#"{"decision":"approved"}"#, id.clone()).await,
        (
            404,
            r#"{"error":"approval not found or already decided"}"#.into()
        ),
        "first writer wins; later ones get the one 404"
    );
    assert_eq!(
        f.received_decisions().len(),
        5,
        "every call is recorded, refused ones too"
    );
}

#[tokio::test]
async fn listing_expires_old_rows_but_history_does_not() {
    let (f, ws) = fake().await;
    let c = Client::new();
    let id = f.create_approval(&ws, "old", "");
    f.backdate(&id, std::time::Duration::from_secs(601));
    let hist = format!("{}/workspaces/{ws}/approvals", f.url());
    let rows: Vec<Value> = c
        .get(&hist)
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        rows[0]["status"], "pending",
        "per-workspace history never expires anything"
    );
    let pending: Vec<Value> = c
        .get(format!("{}/approvals/pending", f.url()))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        pending.is_empty(),
        "listing pending denied the old row first"
    );
    let rows: Vec<Value> = c
        .get(&hist)
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (rows[0]["status"].as_str(), rows[0]["decided_by"].as_str()),
        (Some("denied"), Some("auto-expired"))
    );

    for i in 0..55 {
        f.create_approval(&ws, &format!("a{i}"), "");
    }
    let pending: Vec<Value> = c
        .get(format!("{}/approvals/pending", f.url()))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(pending.len(), 50, "capped at 50 with no pagination");
    assert_eq!(pending[0]["action"], "a54", "newest first");
    assert!(
        pending[0].get("task_id").is_none(),
        "the pending list omits task_id"
    );
}

#[tokio::test]
async fn sse_sends_a_ping_then_only_its_workspace() {
    let (f, ws) = fake().await;
    let other = f.add_workspace("Other", None);
    let c = Client::new();
    let mut stream = c
        .get(format!("{}/workspaces/{ws}/events/stream", f.url()))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .bytes_stream();
    let mut seen = String::new();
    let first = stream.next().await.unwrap().unwrap();
    seen.push_str(&String::from_utf8_lossy(&first));
    assert!(seen.starts_with(": ping"), "{seen:?}");
    f.create_approval(&other, "not mine", "");
    f.create_approval(&ws, "mine", "");
    while !seen.contains("mine") {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(5), stream.next())
            .await
            .expect("a frame for this workspace")
            .unwrap()
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(
        !seen.contains("not mine"),
        "other workspaces' events stay off this stream"
    );
    let data = seen.lines().find(|l| l.starts_with("data: ")).unwrap();
    let frame: Value = serde_json::from_str(&data[6..]).unwrap();
    assert_eq!(frame["type"], "APPROVAL_REQUESTED");
    assert!(
        frame["timestamp"].is_i64(),
        "SSE timestamps are unix milliseconds"
    );
    assert_eq!(frame["data"]["action"], "mine");
}

#[tokio::test]
async fn org_tokens_are_minted_used_and_revoked() {
    let (f, _) = fake().await;
    let c = Client::new();
    let url = f.url();
    let minted: Value = c
        .post(format!("{url}/org/tokens"))
        .bearer_auth(ADMIN)
        .json(&json!({"name": "countersign"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = minted["auth_token"].as_str().unwrap().to_owned();
    assert_eq!(token.len(), 43, "32 bytes, base64url without padding");
    assert_eq!(minted["prefix"].as_str().unwrap(), &token[..8]);
    let r = c
        .get(format!("{url}/approvals/pending"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "an org token works like the admin token"
    );
    let list: Value = c
        .get(format!("{url}/org/tokens"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["count"], 1);
    assert!(
        list["tokens"][0].get("auth_token").is_none(),
        "the secret is shown once only"
    );
    let id = minted["id"].as_str().unwrap();
    let r = c
        .delete(format!("{url}/org/tokens/{id}"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = c
        .get(format!("{url}/approvals/pending"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "a revoked token is refused"
    );
    let r = c
        .delete(format!("{url}/org/tokens/{id}"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn control_routes_take_json_as_curl_sends_it() {
    let (f, _) = fake().await;
    // `curl -d '{...}'` labels its body application/x-www-form-urlencoded.
    let r = Client::new()
        .post(format!("{}/__fake/approvals", f.url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(r#"{"action":"rotate prod db creds","reason":"quarterly"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "the README's demo command must work"
    );
    let id = r.json::<Value>().await.unwrap()["approval_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(f.approval(&id).unwrap().action, "rotate prod db creds");
}

#[tokio::test]
async fn ids_match_in_any_case_and_are_echoed_as_the_path_spelled_them() {
    let (f, ws) = fake().await;
    let c = Client::new();
    let upper_ws = ws.to_uppercase();
    let created: Value = c
        .post(format!("{}/workspaces/{upper_ws}/approvals", f.url()))
        .bearer_auth(ADMIN)
        .json(&json!({"action": "push tag", "reason": "CI green"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["approval_id"].as_str().unwrap().to_owned();
    assert_eq!(
        id,
        id.to_lowercase(),
        "the database's own ids are lower-case"
    );
    let events = |c: Client, url: String| async move {
        c.get(format!("{url}/events"))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap()
            .json::<Vec<Value>>()
            .await
            .unwrap()
    };
    let newest = events(c.clone(), f.url()).await[0].clone();
    assert_eq!(
        (
            newest["event_type"].as_str(),
            newest["workspace_id"].as_str()
        ),
        (Some("APPROVAL_REQUESTED"), Some(upper_ws.as_str())),
        "REQUESTED is filed under the workspace id as the agent wrote it"
    );
    assert_eq!(
        f.approval(&id).unwrap().workspace_id,
        ws,
        "the row keeps the database's spelling"
    );
    let upper_id = id.to_uppercase();
    let r = c
        .post(format!(
            "{}/workspaces/{upper_ws}/approvals/{upper_id}/decide",
            f.url()
        ))
        .bearer_auth(ADMIN)
        .json(&json!({"decision": "denied", "decided_by": "mcp-client"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "Postgres matches UUIDs in any case"
    );
    assert_eq!(r.json::<Value>().await.unwrap()["approval_id"], upper_id);
    let newest = events(c.clone(), f.url()).await[0].clone();
    assert_eq!(
        (
            newest["event_type"].as_str(),
            newest["workspace_id"].as_str(),
            newest["payload"]["approval_id"].as_str()
        ),
        (
            Some("APPROVAL_DENIED"),
            Some(upper_ws.as_str()),
            Some(upper_id.as_str())
        ),
        "the decision event echoes both ids as the decider spelled them"
    );
}

#[tokio::test]
async fn a_purge_deletes_pending_approvals_without_an_event() {
    let (f, ws) = fake().await;
    let child = f.add_workspace("Child", Some(&ws));
    let c = Client::new();
    let id = f.create_approval(&child, "deploy", "");
    assert!(f.purge_workspace(&ws));
    assert!(f.approval(&id).is_none(), "descendants' approvals go too");
    let pending: Vec<Value> = c
        .get(format!("{}/approvals/pending", f.url()))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(pending.is_empty());
    let history: Vec<Value> = c
        .get(format!("{}/workspaces/{child}/approvals", f.url()))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        history.is_empty(),
        "the history of a purged workspace is empty"
    );
    let events: Vec<Value> = c
        .get(format!("{}/events", f.url()))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        events[0]["event_type"], "APPROVAL_ESCALATED",
        "the last event is still the create's: a purge announces no approval's end"
    );
}
