//! A DebugBundle as the controller watches it: readable by our types, or not. The API server
//! may store a bundle our types cannot read (a CRD older or newer than this operator, a status
//! written by hand); decoded as a plain `DebugBundle`, one such object would fail the watch's
//! every list and stop every bundle in the cluster. Here it is a value like any other, whose
//! reconcile fails it alone (InvalidSpec, naming the field) and whose deletion still works.

use std::borrow::Cow;

use k8s_openapi::{NamespaceResourceScope, apimachinery::pkg::apis::meta::v1::ObjectMeta};
use kube::Resource;
use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error as _};
use velero_debug_crd::DebugBundle;

#[derive(Clone, Debug)]
pub(crate) enum WatchedBundle {
    Readable(Box<DebugBundle>),
    Unreadable(Box<UnreadableBundle>),
}

/// A stored DebugBundle that does not decode: its metadata, why not, and the raw object.
#[derive(Clone, Debug)]
pub(crate) struct UnreadableBundle {
    pub metadata: ObjectMeta,
    /// `spec.since: premature end of input`: the field and what is wrong with it.
    pub error: String,
    pub raw: serde_json::Value,
}

impl UnreadableBundle {
    /// Whether the status already says this generation failed: written once, never again,
    /// since each write would wake the watch and write again.
    pub fn failure_recorded(&self) -> bool {
        let status = &self.raw["status"];
        status["phase"] == "Failed"
            && status["observedGeneration"].as_i64() == self.metadata.generation
    }
}

impl<'de> Deserialize<'de> for WatchedBundle {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = serde_json::Value::deserialize(deserializer)?;
        match serde_path_to_error::deserialize::<_, DebugBundle>(&raw) {
            Ok(bundle) => Ok(Self::Readable(Box::new(bundle))),
            Err(e) => {
                // The API server validates metadata: without it, nothing can be done anyway.
                let metadata =
                    ObjectMeta::deserialize(&raw["metadata"]).map_err(D::Error::custom)?;
                let error = format!("{}: {}", e.path(), e.inner());
                Ok(Self::Unreadable(Box::new(UnreadableBundle {
                    metadata,
                    error,
                    raw,
                })))
            }
        }
    }
}

impl Serialize for WatchedBundle {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Readable(bundle) => bundle.serialize(serializer),
            Self::Unreadable(unreadable) => unreadable.raw.serialize(serializer),
        }
    }
}

impl Resource for WatchedBundle {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(dt: &()) -> Cow<'_, str> {
        DebugBundle::kind(dt)
    }

    fn group(dt: &()) -> Cow<'_, str> {
        DebugBundle::group(dt)
    }

    fn version(dt: &()) -> Cow<'_, str> {
        DebugBundle::version(dt)
    }

    fn plural(dt: &()) -> Cow<'_, str> {
        DebugBundle::plural(dt)
    }

    fn meta(&self) -> &ObjectMeta {
        match self {
            Self::Readable(bundle) => &bundle.metadata,
            Self::Unreadable(unreadable) => &unreadable.metadata,
        }
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        match self {
            Self::Readable(bundle) => &mut bundle.metadata,
            Self::Unreadable(unreadable) => &mut unreadable.metadata,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watched(spec: &str, status: &str) -> WatchedBundle {
        let json = format!(
            r#"{{"apiVersion":"velerodebug.io/v1alpha1","kind":"DebugBundle","metadata":{{"name":"b","namespace":"velero","generation":2,"finalizers":["velerodebug.io/archive-cleanup"]}},"spec":{spec},"status":{status}}}"#
        );
        serde_json::from_str(&json).unwrap()
    }

    #[test]
    fn a_readable_bundle_is_a_debug_bundle() {
        let w = watched(r#"{"restore":"r1"}"#, "{}");
        let WatchedBundle::Readable(b) = &w else {
            panic!("{w:?}")
        };
        assert_eq!(b.spec.restore.as_deref(), Some("r1"));
        assert_eq!(w.meta().name.as_deref(), Some("b"));
    }

    #[test]
    fn an_unreadable_bundle_keeps_its_metadata_and_names_the_field() {
        // What a newer CRD could store: a number where this operator reads a string, and a
        // time it cannot parse in status.
        for (spec, status, field) in [
            (r#"{"restore":7}"#, "{}", "spec.restore"),
            (
                r#"{"restore":"r1"}"#,
                r#"{"startTime":"2026-11-20T10:00:00.1234567890+30:00"}"#,
                "status.startTime",
            ),
            (
                r#"{"restore":"r1","maxLogBytesPerContainer":1e30}"#,
                "{}",
                "spec.maxLogBytesPerContainer",
            ),
        ] {
            let w = watched(spec, status);
            let WatchedBundle::Unreadable(u) = &w else {
                panic!("{spec} {status}: read as {w:?}")
            };
            assert!(u.error.starts_with(field), "{field}: {}", u.error);
            assert_eq!(w.meta().namespace.as_deref(), Some("velero"));
            assert_eq!(w.meta().finalizers.as_ref().map(Vec::len), Some(1));
            assert!(!u.failure_recorded());
            // Written back as it came (the finalizer patches it).
            let back = serde_json::to_value(&w).unwrap();
            assert_eq!(back["spec"], u.raw["spec"]);
        }
        let w = watched(
            r#"{"restore":7}"#,
            r#"{"phase":"Failed","observedGeneration":2}"#,
        );
        let WatchedBundle::Unreadable(u) = &w else {
            panic!("{w:?}")
        };
        assert!(u.failure_recorded());
    }
}
