//! The operator binary: parses its flags and runs the process (process.rs).

use clap::Parser;

fn main() -> anyhow::Result<()> {
    // Before the runtime's threads exist.
    velero_debug_operator::allocator::limit_arenas();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(velero_debug_operator::run(
            velero_debug_operator::Args::parse(),
        ))
}
