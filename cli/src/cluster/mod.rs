//! The cluster and its DebugBundles: the client from kubectl's flags (client.rs), the bundle
//! `create` sends (create.rs, with since.rs), Velero's Restores and Backups it may name
//! (targets.rs), following a bundle until it finished (wait.rs) and asking for a new URL
//! (refresh.rs). api_mock.rs is the mock API server their tests talk to.

#[cfg(test)]
mod api_mock;
pub(crate) mod client;
pub(crate) mod create;
pub(crate) mod refresh;
mod since;
pub(crate) mod targets;
pub(crate) mod wait;
