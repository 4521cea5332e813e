//! Installing like a real operator: the Helm chart's rendered manifests match deploy/, the
//! chart's ServiceAccount can do what the operator needs and nothing more, and the chart's
//! DebugBundle ClusterRoles give viewers and creators what they say, as the real API server's
//! authorizer answers it. (The whole suite also runs the operator under this identity:
//! run-e2e.sh.)

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use k8s_openapi::api::{
    authorization::v1::{ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec},
    core::v1::Secret,
    rbac::v1::RoleBinding,
};
use kube::{
    Api, Client,
    api::{ListParams, PostParams},
    config::{KubeConfigOptions, Kubeconfig},
};
use velero_debug_crd::{AUTO_BUNDLE_LEDGER, DebugBundle, INSTALL_RECORD, TERMINATION_RECORD};
use velero_debug_e2e::{
    context::{TestCtx, create_namespace},
    env::Env,
    polling::eventually,
};

const SERVICE_ACCOUNT: &str = "system:serviceaccount:velero:velero-debug-operator";

fn script(name: &str) -> std::path::PathBuf {
    velero_debug_e2e::env::tests_dir().join("env").join(name)
}

#[tokio::test]
async fn deploy_manifests_and_the_chart_crd_match_a_fresh_render() -> Result<()> {
    let out = tokio::process::Command::new("bash")
        .arg(script("packaging/render-manifests.sh"))
        .arg("--check")
        .output()
        .await?;
    ensure!(
        out.status.success(),
        "deploy/ drifted from the chart:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// One question to the authorizer about the chart's ServiceAccount.
struct Access {
    verb: &'static str,
    group: &'static str,
    resource: &'static str,
    subresource: &'static str,
    namespace: &'static str,
    name: &'static str,
}

const fn access(
    verb: &'static str,
    group: &'static str,
    resource: &'static str,
    namespace: &'static str,
) -> Access {
    Access {
        verb,
        group,
        resource,
        subresource: "",
        namespace,
        name: "",
    }
}

fn attributes(a: &Access) -> ResourceAttributes {
    ResourceAttributes {
        verb: Some(a.verb.into()),
        group: Some(a.group.into()),
        resource: Some(a.resource.into()),
        subresource: Some(a.subresource.into()).filter(|s: &String| !s.is_empty()),
        namespace: Some(a.namespace.into()).filter(|s: &String| !s.is_empty()),
        name: Some(a.name.into()).filter(|s: &String| !s.is_empty()),
        ..Default::default()
    }
}

/// The authorizer's answer for `user` in `groups`.
async fn allowed_as(
    client: &Client,
    user: &str,
    groups: &[&str],
    attributes: ResourceAttributes,
) -> Result<bool> {
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(user.into()),
            groups: Some(groups.iter().map(|g| g.to_string()).collect()),
            resource_attributes: Some(attributes),
            ..Default::default()
        },
        ..Default::default()
    };
    let answer = Api::<SubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await?;
    Ok(answer.status.context("no status")?.allowed)
}

async fn allowed(client: &Client, a: &Access) -> Result<bool> {
    let groups = [
        "system:serviceaccounts",
        "system:serviceaccounts:velero",
        "system:authenticated",
    ];
    allowed_as(client, SERVICE_ACCOUNT, &groups, attributes(a)).await
}

#[tokio::test]
async fn the_service_account_may_do_what_the_operator_needs_and_nothing_more() -> Result<()> {
    let env = Env::load()?;
    let client = env.client().await?;
    let named = |mut a: Access, name: &'static str| {
        a.name = name;
        a
    };
    let sub = |mut a: Access, subresource: &'static str| {
        a.subresource = subresource;
        a
    };
    let needed = [
        access("watch", "velerodebug.io", "debugbundles", "velero"),
        access("create", "velerodebug.io", "debugbundles", "velero"),
        access("delete", "velerodebug.io", "debugbundles", "velero"),
        sub(
            access("patch", "velerodebug.io", "debugbundles", "velero"),
            "status",
        ),
        sub(
            access("update", "velerodebug.io", "debugbundles", "velero"),
            "finalizers",
        ),
        access("watch", "velero.io", "restores", "velero"),
        access("get", "velero.io", "backups", "velero"),
        named(
            access("get", "", "configmaps", "velero"),
            AUTO_BUNDLE_LEDGER,
        ),
        named(
            access("patch", "", "configmaps", "velero"),
            AUTO_BUNDLE_LEDGER,
        ),
        // The record of what this install wrote (install_record.rs).
        named(access("get", "", "configmaps", "velero"), INSTALL_RECORD),
        named(access("patch", "", "configmaps", "velero"), INSTALL_RECORD),
        // How Velero's data-path pods ended (recorder/), from the pods it watches.
        named(
            access("get", "", "configmaps", "velero"),
            TERMINATION_RECORD,
        ),
        named(
            access("patch", "", "configmaps", "velero"),
            TERMINATION_RECORD,
        ),
        access("watch", "", "pods", "velero"),
        // The ConfigMaps Velero's flags name, by the chart's default names (read only).
        named(
            access("get", "", "configmaps", "velero"),
            "node-agent-config",
        ),
        named(
            access("get", "", "configmaps", "velero"),
            "repo-maintenance-job-config",
        ),
        access("list", "velero.io", "podvolumerestores", "velero"),
        access("list", "velero.io", "datauploads", "velero"),
        access("get", "velero.io", "backupstoragelocations", "velero"),
        access("create", "velero.io", "serverstatusrequests", "velero"),
        access("list", "", "pods", "velero"),
        sub(access("get", "", "pods", "velero"), "log"),
        access("get", "apps", "deployments", "velero"),
        access("create", "events.k8s.io", "events", "velero"),
        named(access("get", "", "secrets", "velero"), "cloud-credentials"),
        access("create", "coordination.k8s.io", "leases", "velero"),
        named(
            access("update", "coordination.k8s.io", "leases", "velero"),
            "velero-debug-operator",
        ),
        access("get", "", "nodes", ""),
        access("list", "", "nodes", ""),
        access(
            "list",
            "snapshot.storage.k8s.io",
            "volumesnapshotcontents",
            "",
        ),
        access(
            "list",
            "snapshot.storage.k8s.io",
            "volumesnapshotclasses",
            "",
        ),
        access("list", "storage.k8s.io", "csidrivers", ""),
        access("get", "velero.io", "backuprepositories", "velero"),
        access("list", "velero.io", "backuprepositories", "velero"),
        access("list", "batch", "jobs", "velero"),
        access("list", "", "events", "velero"),
        // The workloads' cluster-scoped objects: the PVs behind their claims, StorageClasses,
        // VolumeAttachments.
        access("get", "", "persistentvolumes", ""),
        access("list", "", "persistentvolumes", ""),
        access("list", "storage.k8s.io", "storageclasses", ""),
        access("list", "storage.k8s.io", "volumeattachments", ""),
        // The workloads of every namespace, read only (rbac.workloadNamespaces ["*"], the
        // default): pods, claims, quotas, snapshots, events.
        access("list", "", "pods", "default"),
        access("get", "", "pods", "default"),
        access("get", "", "persistentvolumeclaims", "default"),
        access("list", "", "persistentvolumeclaims", "default"),
        access("list", "", "resourcequotas", "default"),
        access(
            "list",
            "snapshot.storage.k8s.io",
            "volumesnapshots",
            "default",
        ),
        access("list", "", "pods", ""),
        access("list", "", "persistentvolumeclaims", ""),
        access("list", "", "events", "default"),
        access("list", "", "events", ""),
        access("list", "batch", "jobs", "default"),
        access("list", "apps", "deployments", "default"),
        // Its own CRD: read for the install mark on archives (orphans.rs), and brought up to
        // date at start (crds.applyOnStart).
        named(
            access(
                "get",
                "apiextensions.k8s.io",
                "customresourcedefinitions",
                "",
            ),
            "debugbundles.velerodebug.io",
        ),
        named(
            access(
                "patch",
                "apiextensions.k8s.io",
                "customresourcedefinitions",
                "",
            ),
            "debugbundles.velerodebug.io",
        ),
    ];
    let forbidden = [
        // Secrets: only the BSL credential, only in Velero's namespace.
        named(
            access("get", "", "secrets", "kube-system"),
            "cloud-credentials",
        ),
        access("list", "", "secrets", "velero"),
        named(access("get", "", "secrets", "velero"), "some-other-secret"),
        access("create", "", "secrets", "velero"),
        access("list", "", "secrets", ""),
        // No writes beyond its own objects.
        access("create", "", "pods", "velero"),
        access("delete", "", "pods", "velero"),
        access("update", "apps", "deployments", "velero"),
        access("delete", "velero.io", "backups", "velero"),
        access("delete", "velero.io", "restores", "velero"),
        access("create", "velero.io", "restores", "velero"),
        // Each event is made, never patched into an earlier one's series.
        access("patch", "events.k8s.io", "events", "velero"),
        // The record of automatic bundles lives in the ledger, not on Velero's objects.
        access("patch", "velero.io", "restores", "velero"),
        access("patch", "velero.io", "backups", "velero"),
        access("update", "velero.io", "restores", "velero"),
        // ConfigMaps: only the ledger, which the chart makes (Velero's plugins read
        // ConfigMaps of its namespace).
        access("create", "", "configmaps", "velero"),
        named(
            access("patch", "", "configmaps", "velero"),
            "some-other-configmap",
        ),
        named(
            access("delete", "", "configmaps", "velero"),
            AUTO_BUNDLE_LEDGER,
        ),
        named(access("delete", "", "configmaps", "velero"), INSTALL_RECORD),
        named(
            access("patch", "", "configmaps", "velero"),
            "node-agent-config",
        ),
        named(
            access("delete", "", "configmaps", "velero"),
            TERMINATION_RECORD,
        ),
        // Velero's pods are watched in its namespace only.
        access("watch", "", "pods", ""),
        access("update", "velero.io", "backupstoragelocations", "velero"),
        access("create", "velerodebug.io", "debugbundles", "default"),
        access("patch", "", "nodes", ""),
        access("delete", "", "namespaces", ""),
        // Data-path infrastructure: read, in Velero's namespace for its own kinds, never written.
        access("delete", "batch", "jobs", "velero"),
        access("create", "batch", "jobs", "velero"),
        access("list", "velero.io", "backuprepositories", "default"),
        access("patch", "velero.io", "backuprepositories", "velero"),
        access(
            "delete",
            "snapshot.storage.k8s.io",
            "volumesnapshotcontents",
            "",
        ),
        access("patch", "storage.k8s.io", "csidrivers", ""),
        // Its own CRD only, and never created or deleted by it.
        named(
            access(
                "patch",
                "apiextensions.k8s.io",
                "customresourcedefinitions",
                "",
            ),
            "backups.velero.io",
        ),
        access(
            "create",
            "apiextensions.k8s.io",
            "customresourcedefinitions",
            "",
        ),
        named(
            access(
                "delete",
                "apiextensions.k8s.io",
                "customresourcedefinitions",
                "",
            ),
            "debugbundles.velerodebug.io",
        ),
        named(
            access("update", "coordination.k8s.io", "leases", "velero"),
            "someone-elses-lease",
        ),
        access(
            "create",
            "rbac.authorization.k8s.io",
            "rolebindings",
            "velero",
        ),
        // The workloads are read everywhere (rbac.workloadNamespaces ["*"], the default), and
        // never written; no Secret and no ConfigMap anywhere but those named above.
        access("update", "", "pods", "default"),
        access("delete", "", "persistentvolumeclaims", "default"),
        access("create", "", "events", "default"),
        access("get", "", "secrets", "default"),
        access("list", "", "secrets", "default"),
        access("watch", "", "secrets", ""),
        access("get", "", "secrets", "kube-system"),
        access("list", "", "configmaps", ""),
        access("get", "", "configmaps", "kube-system"),
        access("list", "", "configmaps", "default"),
        access("update", "", "persistentvolumes", ""),
        access("delete", "storage.k8s.io", "volumeattachments", ""),
        access("get", "", "configmaps", "velero"),
        access("list", "", "configmaps", "velero"),
        named(
            access("get", "", "configmaps", "velero"),
            "some-other-configmap",
        ),
    ];
    let cases = needed
        .iter()
        .map(|a| (a, true))
        .chain(forbidden.iter().map(|a| (a, false)));
    for (a, want) in cases {
        ensure!(
            allowed(&client, a).await? == want,
            "the ServiceAccount {} {} {}/{} {} in {:?} (name {:?})",
            if want {
                "cannot, but the operator needs to,"
            } else {
                "may, more than it needs,"
            },
            a.verb,
            a.group,
            a.resource,
            a.subresource,
            a.namespace,
            a.name
        );
    }
    Ok(())
}

/// Binds `cluster_role` to `group` in `namespace`.
async fn bind(client: &Client, namespace: &str, cluster_role: &str, group: &str) -> Result<()> {
    let binding: RoleBinding = serde_json::from_value(serde_json::json!({
        "metadata": {"name": format!("e2e-{cluster_role}")},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cluster_role},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": group}],
    }))?;
    Api::<RoleBinding>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &binding)
        .await?;
    Ok(())
}

/// Whether a member of `group` may `verb` debugbundles (`subresource` "" for none) in
/// `namespace`.
async fn group_may(
    client: &Client,
    group: &str,
    verb: &str,
    subresource: &str,
    namespace: &str,
) -> Result<bool> {
    let attributes = ResourceAttributes {
        verb: Some(verb.into()),
        group: Some("velerodebug.io".into()),
        resource: Some("debugbundles".into()),
        subresource: Some(subresource.into()).filter(|s: &String| !s.is_empty()),
        namespace: Some(namespace.into()),
        ..Default::default()
    };
    allowed_as(
        client,
        "e2e-person",
        &[group, "system:authenticated"],
        attributes,
    )
    .await
}

#[tokio::test]
async fn the_debugbundle_cluster_roles_give_viewers_reading_and_creators_writing() -> Result<()> {
    let t = &TestCtx::new().await?;
    // Bound in a namespace of the test's own: deleting it takes the bindings along.
    let ns = create_namespace(&t.client, &t.cleanup, "roles").await?;
    for (role, group) in [
        ("velero-debug-operator-viewer", "e2e:viewers"),
        ("velero-debug-operator-creator", "e2e:creators"),
        ("admin", "e2e:admins"),
        ("edit", "e2e:editors"),
        ("view", "e2e:view"),
    ] {
        bind(&t.client, &ns, role, group).await?;
    }
    let reading = [("get", ""), ("list", ""), ("watch", ""), ("get", "status")];
    let writing = [
        ("create", ""),
        ("delete", ""),
        ("patch", ""),
        ("update", ""),
    ];
    let cases = reading
        .iter()
        .map(|(verb, sub)| ("e2e:viewers", *verb, *sub, true))
        .chain(
            writing
                .iter()
                .map(|(verb, sub)| ("e2e:viewers", *verb, *sub, false)),
        )
        .chain(
            reading
                .iter()
                .chain(&writing)
                .map(|(verb, sub)| ("e2e:creators", *verb, *sub, true)),
        )
        .chain([
            // Status is the operator's to write.
            ("e2e:creators", "patch", "status", false),
            // Reading a bundle gives Velero's logs: not for the built-in edit and view roles
            // by default (rbac.aggregateTo).
            ("e2e:editors", "get", "", false),
            ("e2e:editors", "create", "", false),
            ("e2e:view", "get", "", false),
        ]);
    for (group, verb, sub, want) in cases {
        ensure!(
            group_may(&t.client, group, verb, sub, &ns).await? == want,
            "a member of {group} {} {verb} debugbundles {sub}",
            if want { "cannot" } else { "may" }
        );
    }
    // The creator is aggregated into the built-in admin role by default; the aggregation
    // controller adds its rules shortly after the chart is installed.
    eventually(
        "admin to hold the creator's rules",
        Duration::from_secs(30),
        || async {
            let create = group_may(&t.client, "e2e:admins", "create", "", &ns).await?;
            let read = group_may(&t.client, "e2e:admins", "get", "status", &ns).await?;
            Ok((create && read).then_some(()))
        },
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn the_operator_kubeconfig_authenticates_as_the_service_account() -> Result<()> {
    let env = Env::load()?;
    let out = tokio::process::Command::new("bash")
        .arg(script("lifecycle/operator/sa-kubeconfig.sh"))
        .output()
        .await?;
    ensure!(
        out.status.success(),
        "sa-kubeconfig.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = String::from_utf8(out.stdout)?.trim().to_string();
    let config = kube::Config::from_custom_kubeconfig(
        Kubeconfig::read_from(&path)?,
        &KubeConfigOptions::default(),
    )
    .await?;
    let client = Client::try_from(config)?;
    Api::<DebugBundle>::namespaced(client.clone(), &env.namespace)
        .list(&ListParams::default().limit(1))
        .await
        .context("the ServiceAccount cannot list DebugBundles")?;
    match Api::<Secret>::namespaced(client, "kube-system")
        .list(&ListParams::default().limit(1))
        .await
    {
        Err(kube::Error::Api(e)) if e.code == 403 => Ok(()),
        other => anyhow::bail!("listing kube-system Secrets as the ServiceAccount: {other:?}"),
    }
}
