//! Runs a fake SurfSense server for demos and manual testing, seeded with
//! the protocol doc's fixtures (five paused threads in two workspaces):
//!
//! ```text
//! fake-surfsense --port 8000
//! SURF_PASSWORD='correct horse' countersign account add surfsense --name surf \
//!     --url http://127.0.0.1:8000 --username kim@example.net --secret-env SURF_PASSWORD
//! ```

use clap::Parser;
use countersign_fakes::surfsense::{Config, FakeSurfSense};

#[derive(Parser)]
#[command(about = "A fake SurfSense server on 127.0.0.1")]
struct Args {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let fake =
        FakeSurfSense::start_on(([127, 0, 0, 1], args.port).into(), Config::default()).await?;
    println!("{}", fake.url());
    eprintln!(
        "sign in as {} with password `{}`",
        fake.seed.email, fake.seed.password
    );
    tokio::signal::ctrl_c().await?;
    Ok(())
}
