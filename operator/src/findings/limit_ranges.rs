//! The LimitRanges of the restored namespaces, and which of them refused a restored object:
//! Kubernetes' LimitRanger names the bound it enforced, never the LimitRange that holds it.

use serde_json::Value;

use super::text::cap;

/// LimitRanges kept per bundle, and bounds kept per LimitRange.
const MAX_LIMIT_RANGES: usize = 50;
const MAX_BOUNDS: usize = 32;
const MAX_FIELD_BYTES: usize = 253;

/// A LimitRange of a restored namespace.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LimitRangeEvidence {
    pub path: String,
    pub namespace: String,
    pub name: String,
    pub bounds: Vec<Bound>,
}

/// One bound of a LimitRange: `spec.limits[type=Container].max.memory: 1Gi`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Bound {
    /// `Container`, `Pod` or `PersistentVolumeClaim`.
    pub limit_type: String,
    /// `max`, `min` or `maxLimitRequestRatio`.
    pub constraint: String,
    /// `cpu`, `memory`, `storage`, ...
    pub resource: String,
    pub value: String,
}

impl Bound {
    /// The field, as `kubectl edit` shows it.
    pub fn field(&self) -> String {
        format!(
            "spec.limits[type={}].{}.{}",
            self.limit_type, self.constraint, self.resource
        )
    }
}

/// The bound a LimitRanger refusal enforced, read from Kubernetes' message
/// (plugin/pkg/admission/limitranger/admission.go): `maximum memory usage per Container is
/// 1Gi, but limit is 2Gi`, `minimum cpu usage per Pod is 100m.  No request is specified`,
/// `cpu max limit to request ratio per Container is 2, but provided ratio is 4.000000`.
pub(crate) fn enforced_bound(message: &str) -> Option<Bound> {
    for (word, constraint) in [("maximum ", "max"), ("minimum ", "min")] {
        let Some((_, rest)) = message.split_once(word) else {
            continue;
        };
        let Some((resource, rest)) = rest.split_once(" usage per ") else {
            continue;
        };
        let (limit_type, rest) = rest.split_once(" is ")?;
        let value = rest.split([',', ' ']).next()?.trim_end_matches('.');
        return bound(limit_type, constraint, resource, value);
    }
    let (head, rest) = message.split_once(" max limit to request ratio per ")?;
    let resource = head.rsplit([' ', '[', ':']).next()?;
    let (limit_type, rest) = rest.split_once(" is ")?;
    let value = rest.split([',', ' ']).next()?;
    bound(limit_type, "maxLimitRequestRatio", resource, value)
}

fn bound(limit_type: &str, constraint: &str, resource: &str, value: &str) -> Option<Bound> {
    let word = |s: &str| !s.is_empty() && !s.contains(char::is_whitespace);
    (word(limit_type) && word(resource) && word(value)).then(|| Bound {
        limit_type: cap(limit_type, MAX_FIELD_BYTES),
        constraint: constraint.to_string(),
        resource: cap(resource, MAX_FIELD_BYTES),
        value: cap(value, MAX_FIELD_BYTES),
    })
}

/// A LimitRange's JSON, read into its bounds; None past the bound on how many are kept.
pub(crate) fn read(path: &str, range: &Value, kept: usize) -> Option<LimitRangeEvidence> {
    if kept >= MAX_LIMIT_RANGES {
        return None;
    }
    let text = |v: &Value| match v {
        Value::String(s) => cap(s, MAX_FIELD_BYTES),
        other => cap(&other.to_string(), MAX_FIELD_BYTES),
    };
    let mut bounds = Vec::new();
    for item in range["spec"]["limits"].as_array().into_iter().flatten() {
        let limit_type = text(&item["type"]);
        for constraint in ["max", "min", "maxLimitRequestRatio"] {
            for (resource, value) in item[constraint].as_object().into_iter().flatten() {
                bounds.push(Bound {
                    limit_type: limit_type.clone(),
                    constraint: constraint.to_string(),
                    resource: cap(resource, MAX_FIELD_BYTES),
                    value: text(value),
                });
            }
        }
    }
    bounds.truncate(MAX_BOUNDS);
    Some(LimitRangeEvidence {
        path: path.to_string(),
        namespace: text(&range["metadata"]["namespace"]),
        name: text(&range["metadata"]["name"]),
        bounds,
    })
}

/// The LimitRange of `namespace` holding the bound a refusal enforced (same type, constraint,
/// resource; the same value first), with that bound.
pub(crate) fn refusing<'a>(
    ranges: &'a [LimitRangeEvidence],
    namespace: &str,
    enforced: &Bound,
) -> Option<(&'a LimitRangeEvidence, &'a Bound)> {
    let candidates = || {
        ranges
            .iter()
            .filter(move |r| r.namespace == namespace)
            .flat_map(|r| r.bounds.iter().map(move |b| (r, b)))
            .filter(|(_, b)| {
                b.limit_type == enforced.limit_type
                    && b.constraint == enforced.constraint
                    && b.resource == enforced.resource
            })
    };
    candidates()
        .find(|(_, b)| b.value == enforced.value)
        .or_else(|| candidates().next())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_enforced_bound_is_read_from_each_of_kubernetes_messages() {
        let max = enforced_bound(
            "pods \"web-0\" is forbidden: [maximum memory usage per Container is 64Mi, but limit \
             is 128Mi, maximum cpu usage per Container is 1, but limit is 2]",
        )
        .unwrap();
        assert_eq!(
            max.field(),
            "spec.limits[type=Container].max.memory",
            "{max:?}"
        );
        assert_eq!(max.value, "64Mi");
        let min =
            enforced_bound("minimum cpu usage per Pod is 100m.  No request is specified").unwrap();
        assert_eq!(
            (min.field().as_str(), min.value.as_str()),
            ("spec.limits[type=Pod].min.cpu", "100m")
        );
        let ratio = enforced_bound(
            "pods \"a\" is forbidden: cpu max limit to request ratio per Container is 2, but \
             provided ratio is 4.000000",
        )
        .unwrap();
        assert_eq!(
            ratio.field(),
            "spec.limits[type=Container].maxLimitRequestRatio.cpu"
        );
        assert_eq!(ratio.value, "2");
        assert_eq!(enforced_bound("maximum  usage per  is , but"), None);
        assert_eq!(enforced_bound("exceeded quota: q"), None);
    }

    #[test]
    fn the_range_holding_the_bound_is_found_in_the_namespace() {
        let json = |ns: &str, name: &str, max: &str| {
            serde_json::json!({
                "metadata": {"namespace": ns, "name": name},
                "spec": {"limits": [{"type": "Container", "max": {"memory": max}}]},
            })
        };
        let ranges: Vec<LimitRangeEvidence> = [
            json("other", "small", "64Mi"),
            json("shop", "defaults", "1Gi"),
            json("shop", "small", "64Mi"),
        ]
        .iter()
        .enumerate()
        .filter_map(|(i, v)| read(&format!("f{i}"), v, i))
        .collect();
        let enforced =
            enforced_bound("maximum memory usage per Container is 64Mi, but limit is 1Gi").unwrap();
        let (range, bound) = refusing(&ranges, "shop", &enforced).unwrap();
        assert_eq!(
            (range.namespace.as_str(), range.name.as_str()),
            ("shop", "small")
        );
        assert_eq!(bound.value, "64Mi");
        assert_eq!(refusing(&ranges, "none", &enforced), None);
        assert!(read("f", &json("a", "b", "1"), MAX_LIMIT_RANGES).is_none());
    }
}
