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

/// The corrections of the reference's "Verified against the real server".
mod verified {
    use super::*;

    async fn post(c: &Client, url: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        let mut rb = c.post(url).json(&body);
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        let r = rb.send().await.unwrap();
        (r.status(), r.json().await.unwrap_or(Value::Null))
    }

    #[tokio::test]
    async fn registration_refuses_reserved_mail_domains_with_422() {
        let f = FakeClawith::start(Config::default()).await.unwrap();
        let c = Client::new();
        let url = format!("{}/api/auth/register/init", f.url());
        for email in ["kim@example.test", "kim@box.localhost", "kim@mail.invalid"] {
            let (status, body) = post(
                &c,
                &url,
                None,
                json!({"username": "kim", "email": email, "password": "kimpass1"}),
            )
            .await;
            assert_eq!(
                status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "email-validator refuses special-use domains such as {email}"
            );
            assert_eq!(body["error"]["code"], "validation_error");
        }
        let (status, _) = post(
            &c,
            &url,
            None,
            json!({"username": "kim", "email": "kim@globex.com", "password": "kimpass1"}),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::CREATED,
            "a real-looking domain is taken"
        );
    }

    #[tokio::test]
    async fn a_user_from_register_init_stays_inactive_after_joining() {
        let f = FakeClawith::start(Config::default()).await.unwrap();
        let c = Client::new();
        let (status, body) = post(
            &c,
            &format!("{}/api/auth/register/init", f.url()),
            None,
            json!({"username": "kim", "email": "kim@globex.com", "password": "kimpass1"}),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(body["needs_company_setup"], true);
        let token = body["access_token"].as_str().unwrap().to_owned();
        let code = f.invitation_code(&f.seed.tenant_id, 5);
        let (status, joined) = post(
            &c,
            &format!("{}/api/tenants/join", f.url()),
            Some(&token),
            json!({"invitation_code": code}),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::OK,
            "an inactive user may join: {joined}"
        );
        let token = login(&c, &f.url(), "kim@globex.com", "kimpass1").await;
        let r = c
            .get(format!("{}/api/enterprise/approvals", f.url()))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::UNAUTHORIZED,
            "without a mail server the joined user stays inactive"
        );
        assert_eq!(
            r.json::<Value>().await.unwrap()["detail"],
            "User not found or inactive"
        );
        let (status, _) = post(
            &c,
            &format!("{}/api/auth/register", f.url()),
            None,
            json!({"username": "lou", "email": "lou@globex.com", "password": "loupass1",
                   "invitation_code": f.invitation_code(&f.seed.tenant_id, 1)}),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
        let token = login(&c, &f.url(), "lou@globex.com", "loupass1").await;
        let r = c
            .get(format!("{}/api/enterprise/approvals", f.url()))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::OK,
            "registering with an invitation code gives an active member at once"
        );
    }

    #[tokio::test]
    async fn a_new_company_gets_a_slug_with_a_random_suffix() {
        let f = FakeClawith::start(Config::default()).await.unwrap();
        let c = Client::new();
        let token = login(&c, &f.url(), "dana@example.org", "hunter22").await;
        let (status, body) = post(
            &c,
            &format!("{}/api/tenants/self-create", f.url()),
            Some(&token),
            json!({"name": "Globex"}),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
        let slug = body["tenant"]["slug"].as_str().unwrap();
        assert!(
            slug.starts_with("globex-") && slug.len() == "globex-".len() + 6,
            "Globex → globex-<6 hex>, never the bare name: {slug}"
        );
        assert!(
            body["access_token"].is_string(),
            "a user already in a company gets a second user record and its token"
        );
    }

    #[tokio::test]
    async fn after_a_company_is_deleted_its_member_logs_in_to_the_other_one() {
        let f = FakeClawith::start(Config::default()).await.unwrap();
        let c = Client::new();
        let (globex, _) = f.create_company("Globex");
        f.add_to_company(&f.seed.dana_id, &globex, "org_admin");
        let r: Value = c
            .post(format!("{}/api/auth/login", f.url()))
            .json(&json!({"login_identifier": "dana@example.org", "password": "hunter22"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            r["requires_tenant_selection"], true,
            "two companies: pick one"
        );
        f.delete_company(&globex);
        let r: Value = c
            .post(format!("{}/api/auth/login", f.url()))
            .json(&json!({"login_identifier": "dana@example.org", "password": "hunter22"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            r["user"]["tenant_id"], f.seed.tenant_id,
            "a plain TokenResponse straight into the remaining company: {r}"
        );
        let (status, body) = post(
            &c,
            &format!("{}/api/auth/login", f.url()),
            None,
            json!({"login_identifier": "dana@example.org", "password": "hunter22", "tenant_id": globex}),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(
            body["detail"],
            "This account does not belong to the selected organization."
        );
    }

    #[tokio::test]
    async fn a_policy_patch_replaces_the_whole_map() {
        let f = FakeClawith::start(Config::default()).await.unwrap();
        let c = Client::new();
        let token = login(&c, &f.url(), "dana@example.org", "hunter22").await;
        let agent = f.seed.archivist_id.clone();
        let r = c
            .patch(format!("{}/api/agents/{agent}", f.url()))
            .bearer_auth(&token)
            .json(&json!({"autonomy_policy": {"write_workspace_files": "L3"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            f.policy(&agent).unwrap(),
            json!({"write_workspace_files": "L3"}),
            "the map is replaced, not merged"
        );
        let before = f.received_resolves().len();
        assert!(
            f.autonomy(
                &agent,
                "write_workspace_files",
                "",
                json!({"tool": "write_file"})
            )
            .is_some(),
            "the new level applies: L3 raises an approval"
        );
        assert!(
            f.autonomy(&agent, "delete_files", "", json!({"tool": "delete_file"}))
                .is_none(),
            "delete_files was left out, so it fell back to L2: no approval"
        );
        assert_eq!(f.received_resolves().len(), before);
    }

    #[tokio::test]
    async fn org_users_names_the_active_users_of_the_callers_company() {
        let f = FakeClawith::start(Config::default()).await.unwrap();
        let c = Client::new();
        let token = login(&c, &f.url(), "eli@example.org", "elipass1").await;
        let list: Value = c
            .get(format!("{}/api/org/users", f.url()))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let names: Vec<&str> = list
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|u| u["display_name"].as_str())
            .collect();
        assert!(
            names.contains(&"Dana") && names.contains(&"Eli Navarro"),
            "any signed-in user reads the company's users: {names:?}"
        );
    }

    #[tokio::test]
    async fn a_stopped_fake_refuses_connections_and_comes_back_with_its_state() {
        let f = FakeClawith::start(Config::default()).await.unwrap();
        let c = Client::new();
        let token = login(&c, &f.url(), "dana@example.org", "hunter22").await;
        f.stop().await;
        let err = c
            .post(format!(
                "{}/api/enterprise/approvals/{}/resolve",
                f.url(),
                f.seed.approvals[0]
            ))
            .bearer_auth(&token)
            .json(&json!({"action": "approve"}))
            .send()
            .await
            .unwrap_err();
        assert!(err.is_connect(), "refused at connect time: {err}");
        assert!(
            f.received_resolves().is_empty(),
            "a refused resolve was never received"
        );
        f.restart().await.unwrap();
        let r = c
            .get(format!(
                "{}/api/enterprise/approvals?status_filter=pending",
                f.url()
            ))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "the same token works again");
        assert_eq!(
            r.json::<Value>().await.unwrap().as_array().unwrap().len(),
            2
        );
    }
}
