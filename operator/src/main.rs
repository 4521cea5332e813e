//! The operator binary: parses its flags and runs the process (process.rs).

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    velero_debug_operator::run(velero_debug_operator::Args::parse()).await
}
