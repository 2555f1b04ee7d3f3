//! Runs a fake Molecule AI server for demos and manual testing:
//!
//! ```text
//! fake-molecule --port 8080 --admin-token dev-token --workspace "Release Manager"
//! curl -X POST localhost:8080/__fake/approvals -d '{"action":"push tag v2.4.0","reason":"CI green"}'
//! ```

use clap::Parser;
use countersign_fakes::molecule::{Config, FakeMolecule};
use std::time::Duration;

#[derive(Parser)]
#[command(about = "A fake Molecule AI platform server on 127.0.0.1")]
struct Args {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    #[arg(long)]
    admin_token: Option<String>,
    /// Seconds before pending approvals auto-expire.
    #[arg(long, default_value_t = 600)]
    expiry_secs: u64,
    /// Workspaces to create at start.
    #[arg(long)]
    workspace: Vec<String>,
    /// Approvals to create at start, spread over the workspaces: "action|reason".
    #[arg(long)]
    approval: Vec<String>,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let config = Config {
        admin_token: args.admin_token,
        expiry: Duration::from_secs(args.expiry_secs),
        ..Config::default()
    };
    let fake = FakeMolecule::start_on(([127, 0, 0, 1], args.port).into(), config).await?;
    let mut workspaces: Vec<String> = args
        .workspace
        .iter()
        .map(|name| fake.add_workspace(name, None))
        .collect();
    if workspaces.is_empty() {
        workspaces.push(fake.add_workspace("Agent", None));
    }
    for (i, spec) in args.approval.iter().enumerate() {
        let (action, reason) = spec.split_once('|').unwrap_or((spec, ""));
        fake.create_approval(&workspaces[i % workspaces.len()], action, reason);
    }
    println!("{}", fake.url());
    tokio::signal::ctrl_c().await?;
    fake.stop().await;
    Ok(())
}
