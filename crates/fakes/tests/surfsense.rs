//! The fake SurfSense keeps the contract connectors rely on: refresh-token
//! rotation with its grace window, the routing rules of `/resume`, and a
//! run cancelled when the client leaves the stream early.

use countersign_fakes::surfsense::{Config, FakeSurfSense, ResumeOutcome};
use serde_json::{json, Value};
use std::time::Duration;

async fn login(fake: &FakeSurfSense) -> Value {
    reqwest::Client::new()
        .post(format!("{}/auth/desktop/login", fake.url()))
        .json(&json!({"email": fake.seed.email, "password": fake.seed.password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn refresh(fake: &FakeSurfSense, token: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{}/auth/jwt/refresh", fake.url()))
        .json(&json!({"refresh_token": token}))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn a_replayed_refresh_token_gets_null_inside_the_grace_window_and_revokes_the_family_after() {
    let fake = FakeSurfSense::start(Config {
        refresh_grace: Duration::from_millis(300),
        ..Default::default()
    })
    .await
    .unwrap();
    let tokens = login(&fake).await;
    let first = tokens["refresh_token"].as_str().unwrap();
    let (status, rotated) = refresh(&fake, first).await;
    assert_eq!(status, 200);
    let second = rotated["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second, first, "a refresh rotates the token");
    let (status, replay) = refresh(&fake, first).await;
    assert_eq!(status, 200, "a replay inside the grace window still works");
    assert!(
        replay["refresh_token"].is_null(),
        "…but brings no new refresh token"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (status, _) = refresh(&fake, first).await;
    assert_eq!(status, 401, "a replay after the grace window is refused");
    let (status, _) = refresh(&fake, &second).await;
    assert_eq!(status, 401, "…and revokes the whole family");
}

async fn resume(fake: &FakeSurfSense, thread: i64, body: Value) -> reqwest::Response {
    let tokens = login(fake).await;
    reqwest::Client::new()
        .post(format!("{}/api/v1/threads/{thread}/resume", fake.url()))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_partial_answer_is_an_error_frame_in_a_200_and_the_pause_stays() {
    let fake = FakeSurfSense::start(Config::default()).await.unwrap();
    let resp = resume(
        &fake,
        318,
        json!({"workspace_id": 7, "decisions": [{"type": "approve", "tool_call_id": "call_Qm81xv"}]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert!(text.contains(r#""type":"error""#), "{text}");
    assert!(text.ends_with("data: [DONE]\n\n"));
    assert_eq!(fake.pending(318).len(), 2, "nothing was applied");
    assert!(matches!(
        fake.received_resumes()[0].outcome,
        ResumeOutcome::ErrorFrame { .. }
    ));
}

#[tokio::test]
async fn an_unknown_decision_type_is_a_422_before_any_stream() {
    let fake = FakeSurfSense::start(Config::default()).await.unwrap();
    let resp = resume(
        &fake,
        413,
        json!({"workspace_id": 8, "decisions": [{"type": "once"}]}),
    )
    .await;
    assert_eq!(resp.status(), 422);
}

#[tokio::test]
async fn a_client_that_leaves_the_stream_early_cancels_the_run() {
    let fake = FakeSurfSense::start(Config::default()).await.unwrap();
    fake.set_stream_gap(Duration::from_millis(500));
    let mut resp = resume(
        &fake,
        413,
        json!({"workspace_id": 8, "decisions": [{"type": "approve", "tool_call_id": "call_Au77qz"}]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let _first = resp.chunk().await.unwrap();
    drop(resp);
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(
        fake.received_resumes().last().map(|r| r.outcome.clone()),
        Some(ResumeOutcome::Cancelled)
    );
    assert_eq!(
        fake.pending(413).len(),
        1,
        "a cancelled run applies nothing"
    );
}
