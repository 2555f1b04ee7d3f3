//! The fake Clawith server follows `shared/protocols/clawith.md` (v1.11.3):
//! the status codes, bodies and quirks the connector must handle.

use countersign_fakes::clawith::{Config, FakeClawith};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

async fn login(c: &Client, url: &str, who: &str, password: &str) -> String {
    let v: Value = c
        .post(format!("{url}/api/auth/login"))
        .json(&json!({"login_identifier": who, "password": password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["access_token"].as_str().expect("a token").to_owned()
}

#[tokio::test]
async fn errors_use_the_envelope_and_auth_follows_the_table() {
    let f = FakeClawith::start(Config::default()).await.unwrap();
    let c = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let url = f.url();
    let r = c
        .get(format!("{url}/api/enterprise/approvals"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().contains_key("x-trace-id"));
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["detail"], "Not authenticated");
    assert_eq!(body["error"]["code"], "http_401");
    let r = c
        .get(format!("{url}/api/enterprise/approvals"))
        .bearer_auth("junk")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap()["detail"],
        "Invalid or expired token"
    );
    let r = c
        .post(format!("{url}/api/auth/login"))
        .json(&json!({"login_identifier": "dana", "password": "nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.json::<Value>().await.unwrap()["detail"],
        "Invalid credentials"
    );
    let r = c.get(format!("{url}/api/agents")).send().await.unwrap();
    assert_eq!(
        r.status(),
        StatusCode::TEMPORARY_REDIRECT,
        "no trailing slash: 307"
    );

    let legacy = FakeClawith::start(Config {
        legacy_403: true,
        ..Config::default()
    })
    .await
    .unwrap();
    let r = c
        .get(format!("{}/api/enterprise/approvals", legacy.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::FORBIDDEN,
        "older FastAPI answers 403 without a header"
    );
}

#[tokio::test]
async fn lists_and_resolves_follow_v1_11_3() {
    let f = FakeClawith::start(Config::default()).await.unwrap();
    let c = Client::new();
    let url = f.url();
    let token = login(&c, &url, "dana@example.org", "hunter22").await;
    let get = |path: String| c.get(format!("{url}{path}")).bearer_auth(&token).send();

    let r = get("/api/enterprise/approvals?status_filter=open".into())
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::INTERNAL_SERVER_ERROR,
        "a junk status_filter is a 500"
    );
    let list: Vec<Value> = get("/api/enterprise/approvals?status_filter=pending".into())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.len(), 2);
    assert!(
        list[0]["created_at"].as_str().unwrap().ends_with('Z'),
        "enterprise routes write Z"
    );
    assert_eq!(list[0]["agent_name"], "Archivist");
    let agent = &f.seed.archivist_id;
    let per_agent: Vec<Value> = get(format!("/api/agents/{agent}/approvals"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        per_agent[0]["created_at"]
            .as_str()
            .unwrap()
            .ends_with("+00:00"),
        "hand-built dicts write +00:00"
    );
    assert!(per_agent[0].get("agent_name").is_none());

    let [a, b] = f.seed.approvals.clone();
    let resolve = |id: &str, body: Value| {
        c.post(format!("{url}/api/enterprise/approvals/{id}/resolve"))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let r = resolve(&a, json!({})).await.unwrap();
    assert_eq!(
        r.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "route A: a missing action is a 422"
    );
    let r = resolve(&a, json!({"action": "APPROVE"})).await.unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["status"], "rejected",
        "anything but exactly `approve` rejects"
    );
    assert_eq!(
        v["agent_name"],
        Value::Null,
        "route A leaves agent_name empty"
    );
    let r = resolve(&a, json!({"action": "approve"})).await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        r.json::<Value>().await.unwrap()["detail"],
        "Approval already resolved"
    );
    let r = resolve(
        "00000000-0000-4000-8000-000000000000",
        json!({"action": "approve"}),
    )
    .await
    .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap()["detail"],
        "Approval not found"
    );

    let eli = login(&c, &url, "eli", "elipass1").await;
    let r = c
        .post(format!("{url}/api/enterprise/approvals/{b}/resolve"))
        .bearer_auth(&eli)
        .json(&json!({"action": "approve"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::BAD_REQUEST,
        "a permission failure is a 400, not a 403"
    );
    assert_eq!(
        r.json::<Value>().await.unwrap()["detail"],
        "Only the agent creator or platform admin can resolve approvals"
    );
    let r = c
        .post(format!("{url}/api/agents/{agent}/approvals/{b}/resolve"))
        .bearer_auth(&token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["status"], "rejected",
        "route B: a missing action means reject"
    );
    assert!(v["resolved_at"].as_str().unwrap().ends_with("+00:00"));

    let r = get("/api/notifications?limit=201".into()).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let tool: Vec<Value> = get("/api/notifications?category=tool".into())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(tool.iter().all(|n| n["type"] == "autonomy_l2") && !tool.is_empty());
    let resolved: Vec<Value> = get("/api/notifications?category=approval".into())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let same_time: Vec<&Value> = resolved
        .iter()
        .filter(|n| n["type"] == "approval_resolved")
        .collect();
    assert!(!same_time.is_empty(), "resolving notifies the creator");
    let r = c
        .post(format!("{url}/api/notifications/not-an-id/read"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"ok": true}),
        "always ok, even for unknown ids"
    );
    let r = c
        .get(format!("{url}/api/enterprise/audit-logs"))
        .bearer_auth(&eli)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::FORBIDDEN,
        "audit logs are admin-only"
    );
    let audit: Vec<Value> = get("/api/enterprise/audit-logs".into())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(audit
        .iter()
        .any(|r| r["action"] == "autonomy_check:write_workspace_files"
            && r["details"]["level"] == "L2"));
}

#[tokio::test]
async fn a_runtime_recheck_reuses_its_approval_and_a_legacy_check_never_does() {
    let f = FakeClawith::start(Config::default()).await.unwrap();
    let agent = f.seed.archivist_id.clone();
    let run = uuid::Uuid::new_v4().to_string();
    let runtime = |path: &str| {
        json!({"tool": "delete_file", "args": {"path": path}, "requested_by": f.seed.dana_id,
               "runtime_scope": {"run_id": run, "tool_call_id": "call_7", "workspace_scope": "agent"}})
    };
    let first = f
        .autonomy(&agent, "delete_files", "L3", runtime("workspace/a.md"))
        .unwrap();
    assert_eq!(
        f.approval(&first).unwrap().details["runtime_scope"]["approval_correlation_id"],
        format!("approval:{first}"),
        "v1.11.3 writes the correlation id of the row it creates"
    );
    let again = f.autonomy(&agent, "delete_files", "L2", runtime("workspace/b.md"));
    assert_eq!(
        again.as_deref(),
        Some(first.as_str()),
        "the re-check of one tool call finds its approval, even after a policy change"
    );
    assert_eq!(
        f.approval(&first).unwrap().details["args"]["path"],
        "workspace/a.md",
        "the row is written once: a re-check does not rewrite it"
    );
    let legacy = json!({"tool": "delete_file", "args": "{'path': 'workspace/a.md'}"});
    let one = f.autonomy(&agent, "delete_files", "L3", legacy.clone());
    let two = f.autonomy(&agent, "delete_files", "L3", legacy);
    assert_ne!(one, two, "each legacy check is a new row with a random id");
}
