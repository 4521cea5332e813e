//! The operator binary: parses its flags (args.rs) and runs the process (process.rs).

use clap::Parser;

fn main() -> anyhow::Result<()> {
    // Before the runtime's threads exist.
    velero_debug_operator::allocator::tune();
    let args = velero_debug_operator::Args::parse();
    // Multi-threaded even with one thread: `block_in_place` needs it.
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.runtime_threads)
        .enable_all()
        .build()?
        .block_on(velero_debug_operator::run(args))
}
