//! `serve`: a bundle answered as a read-only Kubernetes API on loopback, so `kubectl get,
//! describe, logs` and Velero's `describe --details` and `logs` work with no cluster. The
//! bundle is unpacked into a temporary folder (removed on exit), its objects loaded, and a
//! kubeconfig for the server written next to it.

mod access;
mod bounded_yaml;
mod columns;
mod coverage;
mod discovery;
mod downloads;
mod files;
mod kinds;
mod kube_columns;
mod kubeconfig;
mod logs;
mod objects;
mod openapi;
mod reads;
mod responses;
mod routes;
mod selectors;
mod server;
mod session;
mod tables;

pub(crate) use session::{Options, serve, temp_folder};
