//! Shared helpers of the end-to-end tests: the environment that `tests/env/lifecycle/env-up.sh` describes
//! in `env.json`, clients for it, per-test isolation (own namespace, unique names, and a
//! [`Cleanup`](cleanup::Cleanup) guard that deletes what the test made), and the objects the
//! tests and the bench make and read. One module per subject; a test imports each helper from
//! its subject's module.

// The environment and a test's footing in it.
pub mod cleanup;
pub mod context;
pub mod env;
pub mod operators;
pub mod polling;
pub mod rbac;

// Velero's objects, as its server makes them or as made by hand.
pub mod backups;
pub mod operations;
pub mod restores;
pub mod storage_locations;
pub mod velero_cli;

// DebugBundles, their archives and their diagnosis.
pub mod archives;
pub mod auto_bundles;
pub mod bundle_watch;
pub mod bundles;
pub mod findings;
pub mod recorded_events;

// Nodes, pods and their logs.
pub mod data_mover;
pub mod kwok_logs;
pub mod nodes;
pub mod real_node;
pub mod volumes;

// The object stores, and what a test puts in front of them or of the API server.
pub mod api_proxy;
pub mod forward_proxy;
pub mod holding_proxy;
pub mod store_proxy;
pub mod stores;
pub mod sts;
pub mod webhook;

// The kubectl plugin and the report in a browser.
pub mod browser;
pub mod plugin;
pub mod served;
