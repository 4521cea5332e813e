//! Objects the API server refused, named by what refused them: Kubernetes' admission and
//! validation each write their own message shape (read in Kubernetes' source, cited at the
//! patterns), so a refusal no rule lists by its cause is still named for what it is, with the
//! object that refused it (the LimitRange, the policy, the namespace) in the title.

use super::{Evidence, Finding, Layer, Severity, from_mentions, plural};
use crate::findings::{
    limit_ranges,
    next_steps::{self, RefusedObject},
    patterns::Pattern,
    text::cap,
};

/// The object of Velero's `error restoring <resource>/<namespace>/<name>: ...` (a
/// cluster-scoped one is `<resource>/<name>`).
pub(super) fn refused_object(message: &str) -> Option<RefusedObject<'_>> {
    let (_, rest) = message.split_once("error restoring ")?;
    let path = rest.split([':', ' ', '"']).next()?;
    let parts: Vec<&str> = path.split('/').collect();
    let (resource, namespace, name) = match parts.as_slice() {
        [resource, namespace, name] => (*resource, Some(*namespace), *name),
        [resource, name] => (*resource, None, *name),
        _ => return None,
    };
    let fine = |s: &str| !s.is_empty();
    (fine(resource) && fine(name) && namespace.is_none_or(fine)).then_some(RefusedObject {
        resource,
        namespace,
        name,
    })
}

/// The text between `open` and the next `close` after it.
fn between<'a>(text: &'a str, open: &str, close: char) -> Option<&'a str> {
    let (_, rest) = text.split_once(open)?;
    let value = rest.split(close).next()?;
    (!value.is_empty()).then_some(value)
}

/// The finding of a refusal pattern: `N objects: <what>`; `then` names the refuser and the
/// next step from the first quote.
fn refusal(
    e: &Evidence,
    pattern: Pattern,
    rule: &'static str,
    what: &str,
    then: impl FnOnce(&Evidence, Finding) -> Finding,
) -> Vec<Finding> {
    from_mentions(e, pattern, Severity::Error, Layer::Items, rule, |_, n| {
        format!("{}: {what}", plural(n, "object", "objects"))
    })
    .map(|f| then(e, f))
    .into_iter()
    .collect()
}

/// `N objects: ...` with what follows the colon replaced.
fn retitled(f: Finding, what: &str) -> Finding {
    let count = f.title.split(':').next().unwrap_or_default().to_string();
    Finding {
        title: cap(&format!("{count}: {what}"), 160),
        ..f
    }
}

pub(super) fn limit_range_refused(e: &Evidence) -> Vec<Finding> {
    let backup = e.target.backup_name.as_deref();
    refusal(
        e,
        Pattern::LimitRangeRefused,
        "limit-range-refused",
        "refused by a LimitRange",
        |e, f| {
            let namespace = refused_object(&f.quote).and_then(|o| o.namespace);
            let Some(enforced) = limit_ranges::enforced_bound(&f.quote) else {
                return f;
            };
            let found =
                namespace.and_then(|ns| limit_ranges::refusing(&e.limit_ranges, ns, &enforced));
            match (found, namespace) {
                (Some((range, bound)), _) => {
                    let what = format!(
                        "refused by LimitRange {}/{} ({} {})",
                        range.namespace,
                        range.name,
                        bound.field(),
                        bound.value
                    );
                    let step = next_steps::limit_range_refused(
                        &range.namespace,
                        &range.name,
                        &bound.field(),
                        &bound.value,
                        backup,
                    );
                    retitled(f, &what).next_step(step)
                }
                (None, Some(ns)) => {
                    let what = format!(
                        "refused by a LimitRange of namespace {ns} ({} {})",
                        enforced.field(),
                        enforced.value
                    );
                    let step = next_steps::limit_range_unknown(ns, &enforced.field(), backup);
                    retitled(f, &what).next_step(step)
                }
                (None, None) => f,
            }
        },
    )
}

pub(super) fn pod_security_refused(e: &Evidence) -> Vec<Finding> {
    refusal(
        e,
        Pattern::PodSecurityRefused,
        "pod-security-refused",
        "refused by Pod Security admission",
        |_, f| {
            let level = between(&f.quote, "violates PodSecurity \"", '"').map(str::to_string);
            let namespace = refused_object(&f.quote).and_then(|o| o.namespace);
            match (level, namespace) {
                (Some(level), Some(ns)) => {
                    let level = level.split(':').next().unwrap_or_default().to_string();
                    let what = format!("refused by Pod Security level {level} of namespace {ns}");
                    let step = next_steps::pod_security_refused(ns, &level);
                    retitled(f, &what).next_step(step)
                }
                _ => f,
            }
        },
    )
}

pub(super) fn policy_denied(e: &Evidence) -> Vec<Finding> {
    refusal(
        e,
        Pattern::PolicyDenied,
        "admission-policy-denied",
        "denied by a ValidatingAdmissionPolicy",
        |_, f| {
            let Some(policy) = between(&f.quote, "ValidatingAdmissionPolicy '", '\'') else {
                return f;
            };
            let policy = policy.to_string();
            let binding = between(&f.quote, "with binding '", '\'').map(str::to_string);
            let what = format!("denied by ValidatingAdmissionPolicy {policy}");
            let step = next_steps::policy_denied(&policy, binding.as_deref());
            retitled(f, &what).next_step(step)
        },
    )
}

pub(super) fn namespace_terminating(e: &Evidence) -> Vec<Finding> {
    let backup = e.target.backup_name.as_deref();
    refusal(
        e,
        Pattern::NamespaceTerminating,
        "namespace-terminating",
        "refused: their namespace was being deleted",
        |_, f| {
            let Some(ns) = between(&f.quote, "new content in namespace ", ' ') else {
                return f;
            };
            let ns = ns.to_string();
            let what = format!("refused: namespace {ns} was being deleted");
            let step = next_steps::namespace_terminating(&ns, backup);
            retitled(f, &what).next_step(step)
        },
    )
}

pub(super) fn immutable_field(e: &Evidence) -> Vec<Finding> {
    refusal(
        e,
        Pattern::ImmutableField,
        "immutable-field",
        "an existing object's immutable field differs from the backup's",
        |_, f| {
            let step = next_steps::immutable_field(refused_object(&f.quote).as_ref());
            f.next_step(step)
        },
    )
}

pub(super) fn rbac_forbidden(e: &Evidence) -> Vec<Finding> {
    let namespace = e.target.velero_namespace();
    refusal(
        e,
        Pattern::RbacForbidden,
        "rbac-forbidden",
        "Velero was not authorized (RBAC)",
        |_, f| {
            let user = between(&f.quote, "is forbidden: User \"", '"').map(str::to_string);
            let step = next_steps::rbac_forbidden(user.as_deref(), namespace);
            match &user {
                Some(u) => retitled(f, &format!("{u} was not authorized (RBAC)")),
                None => f,
            }
            .next_step(step)
        },
    )
}

pub(super) fn admission_refused(e: &Evidence) -> Vec<Finding> {
    let backup = e.target.backup_name.as_deref();
    refusal(
        e,
        Pattern::AdmissionRefused,
        "admission-refused",
        "refused by admission (forbidden)",
        |_, f| {
            let step = next_steps::admission_refused(refused_object(&f.quote).as_ref(), backup);
            f.next_step(step)
        },
    )
}

pub(super) fn object_invalid(e: &Evidence) -> Vec<Finding> {
    let backup = e.target.backup_name.as_deref();
    refusal(
        e,
        Pattern::ObjectInvalid,
        "object-invalid",
        "refused by the API server's validation (invalid)",
        |_, f| {
            let step = next_steps::object_invalid(refused_object(&f.quote).as_ref(), backup);
            f.next_step(step)
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refused_object_is_read_from_velero_s_message() {
        let o =
            refused_object("error restoring pods/shop/web-0: pods \"web-0\" is forbidden").unwrap();
        assert_eq!(
            (o.resource, o.namespace, o.name),
            ("pods", Some("shop"), "web-0")
        );
        let cluster =
            refused_object("error restoring storageclasses.storage.k8s.io/fast: x").unwrap();
        assert_eq!(cluster.namespace, None);
        assert_eq!(cluster.to_string(), "storageclasses.storage.k8s.io fast");
        assert_eq!(refused_object("error restoring pods//x: y"), None);
        assert_eq!(refused_object("error restoring a/b/c/d: y"), None);
        assert_eq!(refused_object("no refusal here"), None);
    }
}
