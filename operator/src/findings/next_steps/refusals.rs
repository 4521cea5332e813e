//! What to do about an object the API server refused, by what refused it (Kubernetes'
//! admission and validation) and Velero 1.18's restore options:
//! - restore filters and mappings: https://velero.io/docs/v1.18/resource-filtering/,
//!   https://velero.io/docs/v1.18/restore-reference/ (`--namespace-mappings`)
//! - resource modifiers: https://velero.io/docs/v1.18/restore-resource-modifiers/
//!   (`velero restore create --resource-modifier-configmap`, pkg/cmd/cli/restore/create.go)
//! - LimitRanges: https://kubernetes.io/docs/concepts/policy/limit-range/
//! - Pod Security: https://kubernetes.io/docs/concepts/security/pod-security-admission/
//! - admission policies: https://kubernetes.io/docs/reference/access-authn-authz/validating-admission-policy/

/// `<resource> <namespace>/<name>` (or `<resource> <name>`) of a refused object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RefusedObject<'a> {
    pub resource: &'a str,
    pub namespace: Option<&'a str>,
    pub name: &'a str,
}

impl std::fmt::Display for RefusedObject<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.resource, self.name),
            None => write!(f, "{} {}", self.resource, self.name),
        }
    }
}

impl RefusedObject<'_> {
    /// `kubectl -n <ns> <verb> <resource> <name>`.
    fn kubectl(&self, verb: &str) -> String {
        match self.namespace {
            Some(ns) => format!("kubectl -n {ns} {verb} {} {}", self.resource, self.name),
            None => format!("kubectl {verb} {} {}", self.resource, self.name),
        }
    }
}

fn backup_or_placeholder(backup: Option<&str>) -> &str {
    backup.unwrap_or("BACKUP")
}

/// A LimitRange bound refused restored pods or claims.
pub(crate) fn limit_range_refused(
    namespace: &str,
    name: &str,
    field: &str,
    value: &str,
    backup: Option<&str>,
) -> String {
    format!(
        "Raise {field} (now {value}) of LimitRange {namespace}/{name} (`kubectl -n {namespace} \
         edit limitrange {name}`), or fit the restored objects to it with a restore resource \
         modifier: `velero restore create --from-backup {} --resource-modifier-configmap \
         CONFIGMAP`.",
        backup_or_placeholder(backup)
    )
}

/// The enforce level of a namespace's Pod Security refused restored pods.
pub(crate) fn pod_security_refused(namespace: &str, level: &str) -> String {
    format!(
        "Namespace {namespace} enforces Pod Security level {level} (label \
         pod-security.kubernetes.io/enforce): make the restored pods meet it with a restore \
         resource modifier (`--resource-modifier-configmap`), or set the level they meet: \
         `kubectl label namespace {namespace} pod-security.kubernetes.io/enforce=baseline \
         --overwrite`."
    )
}

/// A ValidatingAdmissionPolicy refused restored objects.
pub(crate) fn policy_denied(policy: &str, binding: Option<&str>) -> String {
    let binding = binding
        .map(|b| format!(" or leave their namespace out of binding {b}'s spec.matchResources"))
        .unwrap_or_default();
    format!(
        "ValidatingAdmissionPolicy {policy} refused them: allow them in its spec.validations \
         (`kubectl get validatingadmissionpolicy {policy} -o yaml`){binding}, then restore \
         them again."
    )
}

/// Velero restored into a namespace that was being deleted.
pub(crate) fn namespace_terminating(namespace: &str, backup: Option<&str>) -> String {
    format!(
        "Wait until namespace {namespace} is gone (`kubectl get namespace {namespace}`; its \
         finalizers can hold it in Terminating), then restore again, or into another namespace: \
         `velero restore create --from-backup {} --namespace-mappings \
         {namespace}:{namespace}-restored`.",
        backup_or_placeholder(backup)
    )
}

/// An existing object differs from the backup's in a field that cannot change.
pub(crate) fn immutable_field(object: Option<&RefusedObject<'_>>) -> String {
    match object {
        Some(o) => format!(
            "{o} exists with an immutable field that differs from the backup's: delete it \
             (`{}`) and restore it again, or keep it and leave it out with \
             `--exclude-resources {}`.",
            o.kubectl("delete"),
            o.resource
        ),
        None => "Delete the existing objects the quotes name (their immutable fields differ \
                 from the backup's) and restore them again."
            .to_string(),
    }
}

/// Velero's ServiceAccount may not do what the restore needed.
pub(crate) fn rbac_forbidden(user: Option<&str>, namespace: &str) -> String {
    let user = user.unwrap_or("Velero's ServiceAccount");
    format!(
        "Grant {user} what the quote says it cannot do: `velero install` binds it to \
         cluster-admin (ClusterRoleBinding velero); `kubectl auth can-i --list --as {user} -n \
         {namespace}` shows what it may do now."
    )
}

/// Admission refused an object for a reason no rule names.
pub(crate) fn admission_refused(
    object: Option<&RefusedObject<'_>>,
    backup: Option<&str>,
) -> String {
    let which = object.map_or_else(|| "the refused object".to_string(), |o| o.to_string());
    format!(
        "Ask the API server again without restoring: take {which} from `velero backup download \
         {}` and `kubectl create --dry-run=server -f` it; the refusal repeats until the \
         admission configuration named in the quote allows it.",
        backup_or_placeholder(backup)
    )
}

/// The API server's validation refused an object of the backup.
pub(crate) fn object_invalid(object: Option<&RefusedObject<'_>>, backup: Option<&str>) -> String {
    let which = object.map_or_else(|| "the refused objects".to_string(), |o| o.to_string());
    format!(
        "The field the quote names is not valid in this cluster for {which}: change it while \
         restoring with a resource modifier (`velero restore create --from-backup {} \
         --resource-modifier-configmap CONFIGMAP`), or leave the object out.",
        backup_or_placeholder(backup)
    )
}

/// A LimitRange bound refused restored objects, and the LimitRange was not collected.
pub(crate) fn limit_range_unknown(namespace: &str, field: &str, backup: Option<&str>) -> String {
    format!(
        "Raise {field} in the LimitRange of namespace {namespace} that sets it (`kubectl -n \
         {namespace} get limitranges -o yaml`), or fit the restored objects to it with a restore \
         resource modifier: `velero restore create --from-backup {} \
         --resource-modifier-configmap CONFIGMAP`.",
        backup_or_placeholder(backup)
    )
}
