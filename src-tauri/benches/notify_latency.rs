//! How long a pushed request takes to become a desktop notification:
//! `cargo bench -p countersign-desktop --bench notify_latency`.
//!
//! The release app runs in a private desktop (the e2e harness) with a
//! stand-in notification server on its session bus, connected to a fake
//! Molecule AI server that pushes each new approval over its WebSocket.
//! Each sample creates one approval on the fake and times until the app's
//! `Notify` call reaches the notification server. Samples are spaced
//! apart, as requests arrive in real use, so each one is the first of a
//! quiet period. Prints p50 and p99 of `NOTIFY_SAMPLES` (default 200).
//!
//! Run by `cargo test` (without `--bench`), it takes a few samples as a
//! check that the path still works.

#[path = "../tests/e2e/harness.rs"]
#[allow(dead_code)]
mod harness;
#[path = "../tests/e2e/notification_server.rs"]
#[allow(dead_code)]
mod notification_server;

use countersign_fakes::molecule::{Config, FakeMolecule};
use harness::Desktop;
use std::time::{Duration, Instant};

const TOKEN: &str = "bench-admin-token";

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let samples: usize = std::env::var("NOTIFY_SAMPLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if bench { 200 } else { 5 });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let fake = FakeMolecule::start(Config::with_admin_token(TOKEN))
            .await
            .unwrap();
        let ws = fake.add_workspace("Release Manager", None);
        let url = fake.url();
        let app = Desktop::launch_with(
            |dir| harness::seed_molecule_account(dir, &url, TOKEN),
            false,
        )
        .await;
        let server = notification_server::NotificationServer::start(&app.bus_address()).await;
        app.until_connected(Duration::from_secs(30)).await;
        let mut times = Vec::with_capacity(samples);
        for i in 0..samples {
            let title = format!("deploy build {i}");
            let created = Instant::now();
            fake.create_approval(&ws, &title, "release");
            let shown = server
                .wait_for(&title, 1, Duration::from_secs(10), |n| {
                    n.summary.contains(&title)
                })
                .await
                .at;
            times.push(shown.duration_since(created).as_secs_f64() * 1e3);
            // Past the coalescing window: the next one starts a quiet period.
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        times.sort_by(f64::total_cmp);
        let pct = |p: f64| times[((times.len() as f64 - 1.0) * p).round() as usize];
        println!(
            "push → Notify, {samples} requests: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            pct(0.5),
            pct(0.99),
            times[times.len() - 1]
        );
        app.close().await;
    });
}
