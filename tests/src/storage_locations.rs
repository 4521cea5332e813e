//! BackupStorageLocations of a test's own over the environment's bucket.

use anyhow::Result;
use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api,
    api::{DeleteParams, DynamicObject, PostParams},
};
use velero_debug_operator::velero::resource as velero_resource;

use crate::context::{TestCtx, unique_name};

/// A BSL of the test's own over the environment's bucket, changed by `patch`.
pub async fn storage_location(t: &TestCtx, patch: serde_json::Value) -> Result<String> {
    let (env, client, cleanup) = (&t.env, &t.client, &t.cleanup);
    let name = unique_name("bsl");
    let mut spec = serde_json::json!({
        "provider": "aws",
        "objectStorage": {"bucket": env.s3.bucket, "prefix": format!("{name}-prefix")},
        "config": {"region": env.s3.region, "s3ForcePathStyle": "true", "s3Url": env.s3.endpoint, "checksumAlgorithm": ""},
    });
    merge(&mut spec, patch);
    let api: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        &env.namespace,
        &velero_resource("BackupStorageLocation"),
    );
    let obj = DynamicObject::new(&name, &velero_resource("BackupStorageLocation"))
        .within(&env.namespace)
        .data(serde_json::json!({"spec": spec}));
    api.create(&PostParams::default(), &obj).await?;
    cleanup.delete(
        &velero_resource("BackupStorageLocation"),
        Some(&env.namespace),
        &name,
    );
    Ok(name)
}

/// The Secret `name` (one rbac.credentialSecrets grants in the e2e install) holding `text`.
pub async fn credential_secret(t: &TestCtx, name: &str, text: &str) -> Result<()> {
    let secrets: Api<Secret> = Api::namespaced(t.client.clone(), &t.env.namespace);
    let _ = secrets.delete(name, &DeleteParams::default()).await;
    let secret: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name}, "stringData": {"cloud": text},
    }))?;
    secrets.create(&PostParams::default(), &secret).await?;
    t.cleanup.delete(
        &kube::core::ApiResource::erase::<Secret>(&()),
        Some(&t.env.namespace),
        name,
    );
    Ok(())
}

/// Merges JSON `b` into `a`: objects key by key, anything else replaced.
pub(crate) fn merge(a: &mut serde_json::Value, b: serde_json::Value) {
    match (a, b) {
        (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(serde_json::Value::Null), v);
            }
        }
        (a, b) => *a = b,
    }
}
